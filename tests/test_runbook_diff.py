"""What an import would change, read against real revisions in the database: the
diff the upload shows before its Confirm (incidents.services.runbook_diff)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from incidents import runbook as rb
from incidents.models import AuditEvent, Playbook, Runbook
from incidents.services import import_runbook
from incidents.services.runbook_diff import (
    SUMMARY_NAMES,
    RevisionMoved,
    diff_runbook,
    import_reviewed,
)
from incidents.services.runbooks import RunbookSource
from tests.conftest import IMPORTER, TEST_RUNBOOKS, YOMIRA_RUNBOOK

pytestmark = pytest.mark.django_db

CHECK_MEMORY = 'redis-cli -u "${REDIS_URL}" info memory | grep used_memory_human'
SECURITY = "security-incident-token-compromise"
STAMPEDE = """## 12. Cache Stampede

**Alert:** `CacheStampede` — cache hit ratio below 50%
**Severity:** Warning → Slack

### Steps

1. **Check the hit ratio:**
   ```bash
   redis-cli -u "${REDIS_URL}" info stats | grep keyspace
   ```

2. **Warm the cache** from the last snapshot
"""


def changed_yomira() -> str:
    """The bundled runbook edited as a team would: §4's memory check moved into a
    plain-text block (the same command, now manual), its step 3 renamed and a step
    6 added; §5's severity lowered and its step 5 dropped; §12 replaced by a new
    playbook."""
    text = YOMIRA_RUNBOOK.read_text()
    edits = [
        (
            f"   ```bash\n   {CHECK_MEMORY}\n   ```",
            f"   ```text\n   {CHECK_MEMORY}\n   ```",
        ),
        ("3. **Restart Redis** (data", "3. **Restart Redis, last resort** (data"),
        (
            "5. **Monitor rate limit abuse** while Redis is recovering — manually "
            "block abusive IPs at load balancer level if needed\n",
            "5. **Monitor rate limit abuse** while Redis is recovering — manually "
            "block abusive IPs at load balancer level if needed\n\n"
            "6. **Write down** what filled the memory\n",
        ),
        (
            "**Alert:** `DBPoolExhausted` — pool wait p95 > 100ms  \n"
            "**Severity:** Critical → Slack",
            "**Alert:** `DBPoolExhausted` — pool wait p95 > 100ms  \n"
            "**Severity:** Warning → Slack",
        ),
        ("12. [Security Incident (Token Compromise)]", "12. [Cache Stampede]"),
    ]
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    pool_steps = text.index("5. **Tune pool size**")
    text = text[:pool_steps] + text[text.index("---\n\n## 6. Crawler") :]
    return text[: text.index("## 12. Security Incident")] + STAMPEDE


def parse(text: str | bytes, name: str = "yomira.md") -> rb.Runbook:
    return RunbookSource(name=name, text=text).parse()


@pytest.fixture
def grants(yomira, make_user):
    """Per-playbook grants on revision 1: Gina may run §5's actions (kept), the
    Security group may approve §12's (removed by the change)."""
    gina = make_user("gina", "Commander")
    security = Group.objects.create(name="Security")
    pool = Playbook.objects.current().get(number=5)
    token = Playbook.objects.current().get(slug=SECURITY)
    assign_perm("incidents.run_actions", gina, pool)
    assign_perm("incidents.approve_actions", security, token)
    return gina, security


def test_an_unknown_title_is_a_new_runbook_with_every_playbook_added(yomira):
    diff = diff_runbook(parse((TEST_RUNBOOKS / "postgres.md").read_bytes()))
    assert diff.is_new and diff.current is None and diff.next_revision == 1
    assert [p.slug for p in diff.added] == [p.slug for p in diff.parsed.playbooks]
    assert diff.removed == [] and diff.changed == [] and diff.lost == []
    assert diff.summary()["new"] is True


def test_the_same_content_would_change_nothing(yomira):
    diff = diff_runbook(parse(YOMIRA_RUNBOOK.read_bytes()))
    assert diff.unchanged is True
    assert diff.current == yomira and diff.unchanged_count == 12
    assert (diff.added, diff.removed, diff.changed) == ([], [], [])
    assert diff.summary()["unchanged"] is True


def test_an_older_parser_reading_makes_a_new_revision_even_for_the_same_file(yomira):
    Runbook.objects.filter(pk=yomira.pk).update(parser_version=rb.PARSER_VERSION - 1)
    diff = diff_runbook(parse(YOMIRA_RUNBOOK.read_bytes()))
    assert diff.unchanged is False and diff.next_revision == 2
    assert diff.changed == [] and diff.unchanged_count == 12


def test_playbooks_added_removed_and_changed_by_slug(yomira):
    diff = diff_runbook(parse(changed_yomira()))
    assert diff.current == yomira and diff.next_revision == 2
    assert [p.slug for p in diff.added] == ["cache-stampede"]
    assert [p.slug for p in diff.removed] == [SECURITY]
    assert [c.slug for c in diff.changed] == [
        "redis-down-unreachable",
        "db-connection-pool-exhausted",
    ]
    assert diff.unchanged_count == 9


def test_steps_added_removed_and_changed(yomira):
    diff = diff_runbook(parse(changed_yomira()))
    redis, pool = diff.changed
    assert [(s.number, s.title) for s in redis.steps_added] == [(6, "Write down")]
    renamed = {s.number: s for s in redis.steps_changed}
    assert renamed[3].title_changed and renamed[3].old_title == "Restart Redis"
    assert renamed[3].new_title == "Restart Redis, last resort"
    assert renamed[2].title_changed is False and renamed[2].body_changed is True
    assert set(renamed) == {2, 3}
    assert [(s.number, s.title) for s in pool.steps_removed] == [(5, "Tune pool size")]
    assert pool.steps_added == [] and pool.steps_changed == []
    assert [(f.name, f.old, f.new) for f in pool.fields] == [
        ("severity", "critical", "warning")
    ]
    assert diff.step_counts() == {"added": 1, "removed": 1, "changed": 2}


def test_a_command_whose_kind_and_executor_change_is_named_by_its_text(yomira):
    diff = diff_runbook(parse(changed_yomira()))
    redis, pool = diff.changed
    [change] = redis.commands_rebound
    assert change.text == CHECK_MEMORY and change.where == "step 2"
    assert (change.old_kind, change.new_kind) == ("probe", "manual")
    assert (change.old_executor, change.new_executor) == ("redis", "")
    assert change.kind_changed and change.executor_changed
    # §5 lost `flyctl ...` (two manual commands), none rebound.
    assert pool.commands_rebound == []
    assert (pool.commands_added, pool.commands_removed) == (0, 2)


def test_grants_are_carried_with_their_playbook_or_named_as_lost(yomira, grants):
    diff = diff_runbook(parse(changed_yomira()))
    assert [str(g) for g in diff.carried] == [
        "person gina: run_actions on db-connection-pool-exhausted"
    ]
    assert [str(g) for g in diff.lost] == [
        f"group Security: approve_actions on {SECURITY}"
    ]
    # What the import then does agrees with what the diff said.
    import_runbook(source=changed_yomira(), source_name="yomira.md", actor=IMPORTER)
    gina, security = grants
    pool = Playbook.objects.current().get(slug="db-connection-pool-exhausted")
    assert gina.has_perm("incidents.run_actions", pool)
    assert not Playbook.objects.current().filter(slug=SECURITY).exists()


def test_open_incidents_on_the_current_revision_are_listed(yomira, incident):
    diff = diff_runbook(parse(changed_yomira()))
    assert diff.open_incident_count == 1 and diff.open_incidents == [incident]
    assert diff.summary()["open_incidents"] == {"count": 1, "names": [incident.pk]}
    incident.status = incident.Status.RESOLVED
    incident.save()
    assert diff_runbook(parse(changed_yomira())).open_incident_count == 0


def test_the_summary_counts_everything_and_names_a_bounded_number(yomira, grants):
    summary = diff_runbook(parse(changed_yomira())).summary()
    assert summary["from_revision"] == 1 and summary["new"] is False
    assert summary["playbooks"] == {
        "added": {"count": 1, "names": ["cache-stampede"]},
        "removed": {"count": 1, "names": [SECURITY]},
        "changed": {
            "count": 2,
            "names": ["redis-down-unreachable", "db-connection-pool-exhausted"],
        },
        "unchanged": 9,
    }
    assert summary["steps"] == {"added": 1, "removed": 1, "changed": 2}
    assert summary["commands_rebound"]["items"] == [
        {
            "playbook": "redis-down-unreachable",
            "text": CHECK_MEMORY,
            "kind": ["probe", "manual"],
            "executor": ["redis", ""],
        }
    ]
    assert summary["grants"]["lost"]["count"] == 1

    many = "# Runbook — Yomira Incident Playbooks\n\n" + "".join(
        f"## {n}. Thing {n}\n\n### Steps\n\n1. **Do it**\n\n" for n in range(1, 81)
    )
    big = diff_runbook(parse(many)).summary()
    assert big["playbooks"]["added"]["count"] == 80
    assert len(big["playbooks"]["added"]["names"]) == SUMMARY_NAMES
    assert big["playbooks"]["removed"]["count"] == 12


def test_the_diff_reads_in_a_fixed_number_of_queries(
    yomira, grants, incident, django_assert_max_num_queries
):
    parsed = parse(changed_yomira())
    with django_assert_max_num_queries(10):
        diff_runbook(parsed)


def test_import_reviewed_imports_only_over_the_reviewed_revision(yomira):
    source = RunbookSource(name="yomira.md", text=changed_yomira())
    with pytest.raises(RevisionMoved):
        import_reviewed(tree=source, actor=IMPORTER, reviewed=(yomira.pk, "0" * 64))
    assert Runbook.objects.filter(key=yomira.key).count() == 1

    result = import_reviewed(
        tree=source, actor=IMPORTER, reviewed=(yomira.pk, yomira.sha256)
    )
    assert result.created and result.runbook.revision == 2
    event = AuditEvent.objects.filter(verb="runbook.imported").latest("seq")
    assert event.data["via"] == "upload"
    assert event.data["diff"]["playbooks"]["added"]["names"] == ["cache-stampede"]
    assert event.data["diff"]["from_revision"] == 1
