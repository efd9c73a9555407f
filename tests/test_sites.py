"""Sites in the console: a command whose target is at a site is sent to that site's
queue; a site with no live worker is said on the checklist and refused at request
time with nothing queued. (tests/integration/test_sites.py runs two real workers.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from incidents.actors import Actor
from incidents.models import Command, StepExecution, WorkerHeartbeat
from incidents.services import RunRefused, request_run, workers
from tests.conftest import signed_in

EU_QUEUE = "site.eu"


@pytest.fixture(autouse=True)
def _fresh_liveness():  # noqa: ANN202
    """The live-sites answer is kept per process for a few seconds."""
    workers.forget_cache()
    yield
    workers.forget_cache()


@pytest.fixture
def broker():  # noqa: ANN201
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(EU_QUEUE, "celery")
    yield client
    client.delete(EU_QUEUE, "celery")


@pytest.fixture
def redis_at_eu(monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("TARGET_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("TARGET_SITE_REDIS_URL", "eu")


@pytest.fixture
def probe(incident) -> Command:
    """§4's `redis-cli ping`-like probe: it needs TARGET_REDIS_URL."""
    command = next(
        c
        for c in Command.objects.filter(
            playbook=incident.playbook, executor="redis", kind=Command.Kind.PROBE
        ).order_by("pk")
        if not c.parameters
    )
    assert "ping" in command.text and not command.spec.get("heavy")
    return command


def eu_worker(age: float = 0.0, stopped: bool = False) -> WorkerHeartbeat:
    now = timezone.now()
    row, _ = WorkerHeartbeat.objects.update_or_create(
        hostname="eu@box",
        defaults={
            "queues": [EU_QUEUE],
            "site": "eu",
            "beat_at": now - timedelta(seconds=age),
            "stopped_at": now if stopped else None,
        },
    )
    workers.forget_cache()
    return row


def run(incident, command, who):  # noqa: ANN001, ANN201
    return request_run(
        incident=incident, command=command, params={}, actor=Actor.person(who)
    )


def test_a_site_with_no_worker_is_refused_before_anything_is_queued(
    incident, probe, commander, redis_at_eu, broker
):
    eu_worker(age=180)
    with pytest.raises(RunRefused) as refused:
        run(incident, probe, commander)
    assert str(refused.value) == (
        "Not sent: site eu has no live worker (last seen 3 min ago): a run would "
        "wait. Start a worker with WORKER_SITE=eu there (or run the command by "
        "hand). Nothing was queued."
    )
    assert not StepExecution.objects.filter(command=probe).exists()
    assert broker.llen(EU_QUEUE) == 0


def test_a_site_that_never_had_a_worker_says_so(
    incident, probe, commander, redis_at_eu
):
    with pytest.raises(RunRefused, match=r"no worker has ever reported"):
        run(incident, probe, commander)


def test_a_stopped_worker_is_not_live(incident, probe, commander, redis_at_eu):
    eu_worker(stopped=True)
    with pytest.raises(RunRefused, match=r"site eu has no live worker"):
        run(incident, probe, commander)


def test_a_run_goes_to_its_sites_queue(
    incident, probe, commander, redis_at_eu, broker, django_capture_on_commit_callbacks
):
    eu_worker()
    with django_capture_on_commit_callbacks(execute=True):
        result = run(incident, probe, commander)
    assert result.created
    assert broker.llen(EU_QUEUE) == 1  # the message waits for eu's worker
    assert broker.llen("celery") == 0
    execution = StepExecution.objects.get(pk=result.execution.pk)
    assert execution.state == StepExecution.State.QUEUED and execution.task_id


def test_no_site_goes_to_the_default_queue_without_any_worker_check(
    incident, probe, commander, monkeypatch, broker, django_capture_on_commit_callbacks
):
    """The usual single-site console: no heartbeat is asked for (a run queued for
    its own worker waits for it; the sweeper ends it if it never comes)."""
    monkeypatch.setenv("TARGET_REDIS_URL", "redis://127.0.0.1:1/0")
    with django_capture_on_commit_callbacks(execute=True):
        result = run(incident, probe, commander)
    assert result.created
    # Sent (a session's real worker may already have taken it), not to a site.
    assert StepExecution.objects.get(pk=result.execution.pk).task_id
    assert broker.llen(EU_QUEUE) == 0


def test_bad_site_settings_refuse_the_run_naming_the_variable(
    incident, probe, commander, redis_at_eu, monkeypatch
):
    monkeypatch.setenv("TARGET_SITES", "REDIS_URL")
    with pytest.raises(
        RunRefused, match=r"^TARGET_SITES: 'REDIS_URL' is not NAME=site"
    ):
        run(incident, probe, commander)
    assert not StepExecution.objects.filter(command=probe).exists()


# --- the checklist says it before the click ---------------------------------------


def test_the_checklist_warns_next_to_run_and_clears_when_the_worker_is_back(
    incident, probe, commander_client, redis_at_eu
):
    url = f"/incidents/{incident.pk}/"
    eu_worker(age=180)
    page = commander_client.get(url).content.decode()
    panel = page[page.index(f'id="run-{probe.pk}"') :]
    panel = panel[: panel.index("</form>")]
    assert (
        "site eu has no live worker (last seen 3 min ago): a run would wait." in panel
    )
    assert "run-probe" in panel  # the Run button is still there, the warning beside it

    eu_worker()  # back: the cached checklist must not keep the warning
    page = commander_client.get(url).content.decode()
    assert "has no live worker" not in page


def test_the_warning_is_not_shown_without_sites(incident, probe, commander_client):
    page = commander_client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "has no live worker" not in page
    assert "site-warning" not in page


def test_the_live_sites_answer_is_cached_per_process(
    redis_at_eu, db, django_assert_num_queries, settings
):
    settings.WORKER_SITES_CACHE_SECONDS = 60
    eu_worker()
    with django_assert_num_queries(1):
        assert workers.site_status("eu").live
        assert workers.site_status("eu").live
        assert not workers.site_status("us").live


def test_a_responder_sees_the_warning_too(incident, probe, responder, redis_at_eu):
    page = signed_in(responder).get(f"/incidents/{incident.pk}/").content.decode()
    assert "site eu has no live worker" in page


# --- the targets page lists the sites --------------------------------------------


def test_the_targets_page_says_which_site_has_no_live_worker(
    viewer_client, redis_at_eu, monkeypatch
):
    monkeypatch.setenv("TARGET_SITES", "api.yomira.app=eu")
    eu_worker(age=180)
    page = viewer_client.get("/targets/").content.decode()
    table = page[page.index('class="targets sites"') :]
    table = table[: table.index("</table>")]
    assert "REDIS_URL" in table and "api.yomira.app" in table
    assert "site eu has no live worker (last seen 3 min ago)" in table
    eu_worker()
    page = viewer_client.get("/targets/").content.decode()
    assert "✓ live" in page and "has no live worker" not in page


def test_the_targets_page_shows_bad_site_settings(viewer_client, db, monkeypatch):
    monkeypatch.setenv("TARGET_SITES", "REDIS_URL")
    page = viewer_client.get("/targets/").content.decode()
    assert "Site settings: TARGET_SITES: &#x27;REDIS_URL&#x27; is not NAME=site" in page


def test_no_sites_no_sites_table(viewer_client, db):
    assert (
        'class="targets sites"' not in viewer_client.get("/targets/").content.decode()
    )
