"""The playbook library: login required, faithful rendering, search, escaping."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.services import import_runbook
from tests.conftest import IMPORTER


def test_pages_require_login(client, yomira):
    for url in ["/playbooks/", "/playbooks/redis-down-unreachable/", "/"]:
        response = client.get(url, follow=True)
        assert response.redirect_chain[-1][0].startswith("/accounts/login/?next=")
        assert b"Sign in" in response.content


def test_the_library_lists_every_playbook(responder_client, yomira):
    page = responder_client.get("/playbooks/").content.decode()
    for p in yomira.playbooks.all():
        assert f'href="/playbooks/{p.slug}/"' in page
    assert "12 of 12 playbooks" in page
    assert '<code class="alert">HighErrorRate</code>' in page
    assert 'class="sev sev-critical"' in page
    assert "2 probes" in page and "3 actions" in page
    assert 'class="runbook-group"' not in page  # one runbook: no group headings


def test_with_several_runbooks_each_has_its_heading_row(responder_client, yomira):
    # Numbers restart in each runbook: without a heading, two §1 rows look alike.
    import_runbook(
        source=b"---\ntitle: Kube Pod Crash Looping\n---\n# KubePodCrashLooping\n\n"
        b"## Meaning\n\nPods restart.\n\n## Mitigation\n\n1. Read the logs.\n",
        source_name="KubePodCrashLooping.md",
        actor=IMPORTER,
    )
    page = responder_client.get("/playbooks/").content.decode()
    rows = page.count('class="runbook-group"')
    assert rows == 2
    assert ">Kube Pod Crash Looping</th>" in page
    assert f">{yomira.title}</th>" in page
    assert "13 of 13 playbooks" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("redis", ["redis-down-unreachable"]),
        (
            "HealthCheckFailing",
            [
                "postgresql-down-unreachable",
                "redis-down-unreachable",
                "object-storage-unreachable",
            ],
        ),
        ("dbpool", ["db-connection-pool-exhausted"]),
        ("§12", ["security-incident-token-compromise"]),
    ],
)
def test_search_matches_titles_and_alert_names(
    responder_client, yomira, query, expected
):
    page = responder_client.get("/playbooks/", {"q": query}).content.decode()
    found = in_page_order(page, yomira)
    # Names first; playbooks that only mention it in their text come after.
    assert found[: len(expected)] == expected
    named = page[: page.index(f'href="/playbooks/{expected[-1]}/"')]
    assert "” in " not in named


def in_page_order(page: str, runbook) -> list[str]:  # noqa: ANN001
    slugs = [p.slug for p in runbook.playbooks.all()]
    shown = [s for s in slugs if f'href="/playbooks/{s}/"' in page]
    return sorted(shown, key=lambda s: page.index(f'href="/playbooks/{s}/"'))


@pytest.mark.parametrize(
    ("query", "slug", "where"),
    [
        ("terminate", "db-connection-pool-exhausted", "a command of step 3"),
        ("rate limiting", "redis-down-unreachable", "Impact when Redis is down"),
        ("latency-history", "high-api-latency", "Diagnosis"),
        ("maintenance mode", "high-api-latency", "step 5"),
    ],
)
def test_search_finds_what_a_responder_remembers_and_says_where(
    responder_client, yomira, query, slug, where
):
    page = responder_client.get("/playbooks/", {"q": query}).content.decode()
    assert slug in in_page_order(page, yomira), page
    row = page[page.index(f'href="/playbooks/{slug}/"') :]
    row = row[: row.index("</tr>")]
    assert f"“{query}” in {where}" in row


def test_search_with_htmx_returns_only_the_results_fragment(responder_client, yomira):
    response = responder_client.get(
        "/playbooks/", {"q": "disk"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="results">')
    assert "<html" not in html
    assert "/playbooks/disk-space-critical/" in html
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_search_with_no_match_says_so(responder_client, yomira):
    page = responder_client.get("/playbooks/", {"q": "kafka"}).content.decode()
    assert "No playbook title, alert, step, command or symptom matches “kafka”" in page


def test_the_playbook_page_renders_steps_commands_and_context(responder_client, yomira):
    page = responder_client.get(
        "/playbooks/db-connection-pool-exhausted/"
    ).content.decode()
    assert "DB Connection Pool Exhausted" in page
    assert page.count('class="step"') == 5
    assert "Kill stuck queries" in page
    assert page.count("command kind-action") == 3
    assert page.count("command kind-probe") == 2
    assert page.count("command kind-manual") == 2
    assert '<span class="param" title="A responder types this">pid' in page
    assert "<h2>Symptoms</h2>" in page
    # Pygments highlighting of the SQL.
    assert '<span class="k">SELECT</span>' in page


def test_cross_references_link_to_the_other_playbook(responder_client, yomira):
    page = responder_client.get("/playbooks/high-api-error-rate-5xx/").content.decode()
    assert 'href="/playbooks/postgresql-down-unreachable/">§3</a>' in page
    assert 'class="xref" href="/playbooks/postgresql-down-unreachable/"' in page
    page = responder_client.get(
        "/playbooks/postgresql-down-unreachable/"
    ).content.decode()
    # "see §2 step 5" in plain text and "see §11" inside a code comment.
    assert '<a href="/playbooks/high-api-latency/">§2</a>' in page
    assert 'href="/playbooks/failed-migration/"' in page


def test_an_unknown_playbook_is_404(responder_client, yomira):
    assert responder_client.get("/playbooks/no-such-playbook/").status_code == 404


def test_old_revisions_are_not_listed(responder_client, yomira, yomira_source):
    changed = yomira_source.replace(b"## 4. Redis Down", b"## 4. Redis Is Down")
    import_runbook(source=changed, actor=IMPORTER)
    assert responder_client.get("/playbooks/redis-down-unreachable/").status_code == 404
    assert (
        responder_client.get("/playbooks/redis-is-down-unreachable/").status_code == 200
    )


HOSTILE = b"""# Runbook

## 1. Hostile <script>alert(1)</script> title

**Alert:** `Evil` <img src=x onerror=alert(2)>
**Severity:** Critical -> PagerDuty

### Steps

1. **Click [me](javascript:alert(3))** <b onmouseover=alert(4)>bold</b>
   ```bash
   curl "https://api.example.com/x?<script>alert(5)</script>"
   ```
"""


def test_runbook_html_is_escaped_never_executed(responder_client, db):
    import_runbook(source=HOSTILE, actor=IMPORTER)
    slug = "hostile-scriptalert1script-title"
    page = responder_client.get(f"/playbooks/{slug}/").content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "<b onmouseover" not in page
    assert 'href="javascript:' not in page


def test_the_playbook_page_query_count_does_not_grow_with_steps(
    responder_client, yomira
):
    # The first request of a person also fills this process's grants cache
    # (incidents.access.remember_grants): one query more, whatever the page.
    assert responder_client.get("/playbooks/").status_code == 200
    counts = {}
    for slug in [
        "high-api-error-rate-5xx",
        "postgresql-down-unreachable",
        "memory-oom",
    ]:
        with CaptureQueriesContext(connection) as queries:
            assert responder_client.get(f"/playbooks/{slug}/").status_code == 200
        counts[slug] = len(queries)
    assert len(set(counts.values())) == 1, counts


def test_health_ready_reports_database_and_broker(client, db):
    response = client.get("/health/ready")
    body = response.json()
    assert body["database"] == "ok"
    assert body["broker"] == "ok"
    assert response.status_code == 200


def _runbook(title: str, playbook: str) -> bytes:
    return (
        f"# {title}\n\n## 1. {playbook}\n\n**Severity:** Warning\n\n### Steps\n\n"
        "1. **Look** at it\n"
    ).encode()


def test_a_slug_is_refused_only_while_another_current_runbook_holds_it(
    responder_client, db
):
    """Playbook URLs are by slug: two current runbooks cannot share one, the same
    runbook's next revision can keep its own, and a slug freed by a new revision
    can be taken."""
    from incidents.models import Playbook, Runbook
    from incidents.runbook import RunbookError

    import_runbook(source=_runbook("First", "Shared Name"), actor=IMPORTER)
    with pytest.raises(RunbookError, match="same slug as one in the runbook 'First'"):
        import_runbook(source=_runbook("Second", "Shared Name"), actor=IMPORTER)
    assert Runbook.objects.filter(key="second").count() == 0
    # The same runbook, changed: a new revision keeps its slug.
    import_runbook(
        source=_runbook("First", "Shared Name") + b"\nMore.\n", actor=IMPORTER
    )
    assert Runbook.objects.filter(key="first").count() == 2
    # First renames its playbook: the old revision's slug is free for Second.
    import_runbook(source=_runbook("First", "Another Name"), actor=IMPORTER)
    import_runbook(source=_runbook("Second", "Shared Name"), actor=IMPORTER)
    owner = Playbook.objects.current().get(slug="shared-name").runbook.key
    assert owner == "second"
    page = responder_client.get("/playbooks/shared-name/")
    assert page.status_code == 200


def test_a_search_with_a_nul_is_a_400_in_words(responder_client, yomira):
    response = responder_client.get("/playbooks/", {"q": "pg\x00terminate"})
    assert response.status_code == 400
    assert "The search holds a NUL character" in response.content.decode()


def test_the_playbook_page_names_incidents_already_open_on_it(
    responder_client, viewer_client, incident
):
    """Before a second incident is opened for the same trouble (the fixture's
    incident follows §4; a resolved one is not named)."""
    url = incident.playbook.get_absolute_url()
    html = responder_client.get(url).content.decode()
    assert "Already open" in html
    assert f'href="/incidents/{incident.pk}/">#{incident.pk} {incident.title}' in html
    incident.status = incident.Status.RESOLVED
    incident.save(update_fields=["status"])
    assert "Already open" not in viewer_client.get(url).content.decode()
