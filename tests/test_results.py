"""Results you can act on: a stored SQL result is an HTML table (numbers right-aligned,
long cells folded), an HTTP answer its status, timing and indented JSON; a `pid`
cell of "Find long-running queries" offers cancel and terminate to those who may
run them; an action whose preview finds nothing to act on offers no Run, and the
server refuses one."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents.actors import Actor
from incidents.models import AuditEvent, Playbook, StepExecution
from incidents.results import pretty_json
from incidents.services import RunRefused, open_incident, preview_action, request_run
from incidents.services import execution as runner
from probes.redaction import MASK
from probes.runtime import Result
from tests.conftest import grant
from tests.stack import database_url

State = StepExecution.State
LONG_QUERY = "SELECT pg_sleep(600) /* " + "a long comment " * 20 + "*/"


@pytest.fixture
def targets(monkeypatch):  # noqa: ANN201
    """The console's own server as the target database, so previews are real."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    monkeypatch.setenv(
        "TARGET_DATABASE_URL",
        database_url(db),
    )


@pytest.fixture
def pool(yomira, make_user, targets):  # noqa: ANN001, ANN201
    playbook = Playbook.objects.current().get(number=5)  # DB Connection Pool Exhausted
    gina = make_user("gina", "Commander")
    grant(gina, "run_actions", playbooks=[playbook])
    incident = open_incident(playbook=playbook, title="pool", actor=Actor.person(gina))
    commands = playbook.commands.exclude(kind="manual")
    return type(
        "Pool",
        (),
        {
            "incident": incident,
            "gina": gina,
            "find": commands.get(text__contains="query_start < NOW()"),
            "cancel": commands.get(text__startswith="SELECT pg_cancel_backend"),
            "terminate": commands.get(text__startswith="SELECT pg_terminate_backend"),
        },
    )


def finished(pool, result: dict, output: str = "as text") -> StepExecution:  # noqa: ANN001
    return StepExecution.objects.create(
        incident=pool.incident,
        step=pool.find.step,
        command=pool.find,
        state=State.SUCCEEDED,
        requested_by=pool.gina,
        command_text=pool.find.text,
        summary="2 rows",
        output=output,
        result=result,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )


def long_running(*pids: str) -> dict:
    return {
        "tables": [
            {
                "columns": ["pid", "duration", "state", "query"],
                "rows": [[pid, "0:00:41.5", "active", LONG_QUERY] for pid in pids]
                + [["77", None, "idle", "x"]],
                "count": len(pids) + 1,
                "status": "SELECT",
            }
        ]
    }


def step_two(html: str, pool) -> str:  # noqa: ANN001
    start = html.index(f'id="run-{pool.find.pk}"')
    return html[start : html.index(f'id="run-{pool.cancel.pk}"')]


def test_an_sql_result_is_a_table_not_psql_text(pool, client):
    finished(pool, long_running("4242"), output="pid | duration\n----+---------")
    client.force_login(pool.gina)
    html = step_two(
        client.get(f"/incidents/{pool.incident.pk}/").content.decode(), pool
    )
    assert '<table class="result-table">' in html and "----+----" not in html
    assert '<th scope="col" class="num">pid</th>' in html  # numbers right-aligned
    assert '<th scope="col">duration</th>' in html
    assert '<details class="fold"><summary>SELECT pg_sleep(600)' in html  # folded
    assert '<span class="null">NULL</span>' in html


def test_a_pid_cell_offers_cancel_and_terminate_to_who_may_run_them(pool, client):
    finished(pool, long_running("4242", "not-a-pid"))
    client.force_login(pool.gina)
    html = step_two(
        client.get(f"/incidents/{pool.incident.pk}/").content.decode(), pool
    )
    for action, word in ((pool.cancel, "cancel"), (pool.terminate, "terminate")):
        url = f"/incidents/{pool.incident.pk}/commands/{action.pk}/preview"
        form = re.search(
            rf'<form method="post" action="{url}" hx-post="{url}" hx-swap="none".*?</form>',
            html,
            re.S,
        )
        assert form, word
        assert '<input type="hidden" name="param-pid" value="4242">' in form.group(0)
        assert f">{word}</button>" in form.group(0)
    # Three pids, one picker each for the two numeric ones; "not-a-pid" is no pid.
    assert html.count('<details class="picker">') == 2
    assert 'value="not-a-pid"' not in html


def test_no_picker_for_who_may_not_run_the_actions(pool, make_user, client):
    finished(pool, long_running("4242"))
    client.force_login(make_user("rita", "Responder"))  # probes only
    html = step_two(
        client.get(f"/incidents/{pool.incident.pk}/").content.decode(), pool
    )
    assert '<table class="result-table">' in html
    assert "picker" not in html and "/preview" not in html


def test_the_page_runs_as_many_queries_with_result_tables(pool, client):
    from django.core.cache import caches

    client.force_login(pool.gina)
    url = f"/incidents/{pool.incident.pk}/"

    def queries() -> int:
        caches["fragments"].clear()
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    finished(pool, long_running("4242"))
    one = queries()
    for _ in range(3):
        finished(pool, long_running("1", "2", "3"))
    assert queries() == one


def test_picking_terminate_previews_it_in_its_own_run_panel(pool, client):
    with connection.cursor() as cursor:  # this test's own backend: a live pid
        cursor.execute("SELECT pg_backend_pid()")
        pid = str(cursor.fetchone()[0])
    client.force_login(pool.gina)
    answer = client.post(
        f"/incidents/{pool.incident.pk}/commands/{pool.terminate.pk}/preview",
        {"param-pid": pid},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    panel = answer[answer.index(f'id="run-{pool.terminate.pk}" hx-swap-oob="true"') :]
    assert f"backend {pid}: user" in panel
    assert "Ask for approval" in panel and 'name="preview" value="' in panel


def test_a_preview_that_finds_nothing_offers_no_run_and_says_so(pool, client):
    client.force_login(pool.gina)
    answer = client.post(
        f"/incidents/{pool.incident.pk}/commands/{pool.terminate.pk}/preview",
        {"param-pid": "99999999"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    panel = answer[answer.index(f'id="run-{pool.terminate.pk}" hx-swap-oob="true"') :]
    panel = panel[
        : panel.index('class="execution') if 'class="execution' in panel else None
    ]
    assert "Nothing to act on:</strong> no backend has pid 99999999" in panel
    assert "Ask for approval" not in panel and "Run action" not in panel
    assert 'name="preview"' not in panel and "Preview again" in panel
    event = AuditEvent.objects.filter(verb="execution.previewed").last()
    assert event.data["nothing"].startswith("no backend has pid 99999999")


def test_the_server_refuses_a_run_confirmed_by_a_preview_that_found_nothing(pool):
    actor = Actor.person(pool.gina)
    bound = {"incident": pool.incident, "command": pool.terminate, "actor": actor}
    shown = preview_action(params={"pid": "99999999"}, **bound)
    assert shown.result.nothing
    with pytest.raises(RunRefused, match="found nothing to act on"):
        request_run(
            params={"pid": "99999999"},
            confirmation="terminate",
            preview=shown.token,
            break_glass_reason="it cannot wait",
            **bound,
        )
    assert not StepExecution.objects.filter(command=pool.terminate).exists()


def test_an_http_answer_shows_status_timing_and_indented_json(pool, client):
    body = '{"status":"ok","items":[1,2]}'
    output = "HTTP 200 OK\ncontent-type: application/json\n\n" + body
    run = finished(
        pool,
        {
            "http": {
                "method": "GET",
                "status": 200,
                "reason": "OK",
                "elapsed_ms": 12.4,
                "headers": [["content-type", "application/json"]],
                "truncated": False,
            }
        },
        output=output,
    )
    client.force_login(pool.gina)
    html = client.get(
        f"/incidents/{pool.incident.pk}/executions/{run.pk}"
    ).content.decode()
    assert (
        '<span class="http-code">200</span> OK <span class="muted">· 12 ms</span>'
        in html
    )
    assert '<pre class="http-body json">{\n  &quot;status&quot;: &quot;ok&quot;' in html
    assert "<dt>content-type</dt><dd>application/json</dd>" in html


def test_pretty_json_never_reveals_what_the_stored_text_escaped(monkeypatch):
    monkeypatch.setenv("TARGET_API_TOKEN", "decoded-secret-1234")
    escaped = '{"note": "\\u0064ecoded-secret-1234", "password": "hunter2"}'
    shown = pretty_json(escaped)
    assert "decoded-secret-1234" not in shown and "hunter2" not in shown
    assert shown.count(MASK) == 2
    assert pretty_json('{"cut": "in ha') is None


def test_a_finished_run_stores_its_data_redacted(pool, monkeypatch):
    monkeypatch.setenv("TARGET_API_TOKEN", "stored-secret-9876")
    run = finished(pool, {})
    StepExecution.objects.filter(pk=run.pk).update(state=State.RUNNING)
    data = {
        "tables": [
            {
                "columns": ["pid", "token", "query"],
                "rows": [["1", "abc", "uses stored-secret-9876"]],
                "count": 1,
            }
        ]
    }
    runner.finish(run, Result(True, "1 row", "text", structured=data))
    run.refresh_from_db()
    assert run.result["tables"][0]["rows"] == [["1", MASK, f"uses {MASK}"]]


def test_a_picker_is_not_offered_on_a_resolved_incident(pool, client):
    from incidents.services import change_status

    finished(pool, long_running("4242"))
    change_status(incident=pool.incident, to="resolved", actor=Actor.person(pool.gina))
    client.force_login(pool.gina)
    html = client.get(f"/incidents/{pool.incident.pk}/").content.decode()
    assert '<table class="result-table">' in html and "picker" not in html


def test_the_result_partial_escapes_what_a_target_sent(pool, client):
    finished(
        pool,
        {"tables": [{"columns": ["<b>c</b>"], "rows": [["<script>x</script>"]]}]},
    )
    client.force_login(pool.gina)
    html = client.get(f"/incidents/{pool.incident.pk}/").content.decode()
    assert "<script>x</script>" not in html and "&lt;script&gt;x" in html
    assert "&lt;b&gt;c&lt;/b&gt;" in html
