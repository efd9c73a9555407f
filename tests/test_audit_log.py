"""The audit log: chained HMACs, append-only in the database, verify_audit."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from incidents import audit
from incidents.actors import Actor
from incidents.models import AuditCheckpoint, AuditEvent

TABLE = "incidents_auditevent"
TESTER = Actor.system("tester")
CHECKPOINTS = "incidents_auditcheckpoint"


def verify_audit(*args: str) -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return exc.code, err.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def log(db):
    for n in range(1, 11):
        audit.append("test.event", actor=TESTER, data={"n": n, "text": "ünïcode ✓"})
    return list(AuditEvent.objects.order_by("seq"))


def raw(sql: str, params: list | None = None, table: str = TABLE) -> None:
    """Tamper as an attacker with database access would: triggers off, then SQL."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(sql, params or [])
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def test_an_intact_log_verifies(log):
    assert [e.seq for e in log] == list(range(1, 11))
    assert log[0].prev_mac == audit.GENESIS
    assert all(b.prev_mac == a.mac for a, b in zip(log, log[1:], strict=False))
    assert verify_audit() == (0, "Audit log intact: 10 events verified.\n")


def test_a_changed_row_is_named(log):
    raw(f"UPDATE {TABLE} SET data = %s WHERE seq = 4", ['{"n": 400}'])
    code, message = verify_audit()
    assert code == 1
    assert message.startswith("Audit log broken at sequence 4: row 4 was changed")


@pytest.mark.parametrize(
    "change",
    [
        "verb = 'test.other'",
        "ip = '10.9.8.7'",
        "actor_id = 424242",
        "incident_id = 424242",
        "object_type = 'incident'",
        "object_id = '99'",
        "created_at = created_at + interval '1 second'",
        'data = \'{"n": 5, "text": "ünïcode ✓", "extra": 1}\'',
    ],
)
def test_every_column_is_covered_by_the_mac(log, change):
    """Leaving any column out of the MAC would let it be rewritten unnoticed."""
    raw(f"UPDATE {TABLE} SET {change} WHERE seq = 5")
    code, message = verify_audit()
    assert code == 1
    assert message.startswith("Audit log broken at sequence 5: row 5 was changed")


def test_the_ip_is_signed_as_recorded(db, rf):
    request = rf.get("/", REMOTE_ADDR="192.0.2.7")
    event = audit.append("test.event", actor=Actor.from_request(request))
    assert event.ip == "192.0.2.7"
    assert verify_audit()[0] == 0
    raw(f"UPDATE {TABLE} SET ip = '192.0.2.8' WHERE seq = {event.seq}")
    assert verify_audit()[1].startswith(
        f"Audit log broken at sequence {event.seq}: row {event.seq} was changed"
    )


def test_a_changed_actor_or_time_is_named(log):
    raw(f"UPDATE {TABLE} SET actor_name = 'someone-else' WHERE seq = 7")
    assert verify_audit()[1].startswith("Audit log broken at sequence 7")


def test_a_removed_row_is_named(log):
    raw(f"DELETE FROM {TABLE} WHERE seq = 6")
    code, message = verify_audit()
    assert code == 1
    assert message.startswith(
        "Audit log broken at sequence 6: row 6 is missing (next is 7)"
    )


def test_a_cut_tail_is_named_from_the_checkpoint(log):
    # The chain of rows 1..8 is still perfect: only the head anchor notices.
    raw(f"DELETE FROM {TABLE} WHERE seq > 8")
    code, message = verify_audit()
    assert code == 1
    assert message.startswith(
        "Audit log broken at sequence 9: audit log ends at seq 8 but checkpoint "
        "says 10: rows 9..10 are missing"
    )


def test_appends_after_a_cut_tail_keep_working_and_leave_the_gap_named(log):
    raw(f"DELETE FROM {TABLE} WHERE seq > 8")
    event = audit.append("test.event", actor=TESTER)
    assert event.seq == 11 and event.prev_mac == log[-1].mac
    code, message = verify_audit()
    assert code == 1
    assert message.startswith(
        "Audit log broken at sequence 9: row 9 is missing (next is 11)"
    )


def test_appends_after_cut_checkpoints_do_not_reuse_a_number(log):
    raw(f"DELETE FROM {CHECKPOINTS} WHERE seq > 8", table=CHECKPOINTS)
    assert audit.append("test.event", actor=TESTER).seq == 11


def test_a_cut_tail_is_named_from_the_log_stream(
    log, caplog, tmp_path, django_capture_on_commit_callbacks
):
    """Cut both tables: the log lines shipped elsewhere still know the head."""
    stream = tmp_path / "console.log"
    with caplog.at_level("INFO", logger="incidents.audit"):
        with django_capture_on_commit_callbacks(execute=True):
            audit.append("test.event", actor=TESTER, data={"n": 11})
        assert "audit head seq=11 mac=" in caplog.text
        stream.write_text(caplog.text)
    raw(f"DELETE FROM {TABLE} WHERE seq > 9")
    raw(f"DELETE FROM {CHECKPOINTS} WHERE seq > 9", table=CHECKPOINTS)
    assert verify_audit()[0] == 0  # both tables agree: only the stream knows better
    code, message = verify_audit("--log", str(stream))
    assert code == 1
    assert (
        "audit log ends at seq 9 but log stream says 11: rows 10..11 are missing"
        in (message)
    )
    assert verify_audit("--log", str(tmp_path / "absent.log"))[0] == 1


def test_a_cut_checkpoint_table_is_named(log):
    raw(f"DELETE FROM {CHECKPOINTS} WHERE seq > 7", table=CHECKPOINTS)
    code, message = verify_audit()
    assert code == 1
    assert "checkpoints end at seq 7 but the audit log at 10" in message


def test_every_append_is_checkpointed_on_commit_only(
    log, caplog, django_capture_on_commit_callbacks
):
    assert list(AuditCheckpoint.objects.values_list("seq", "mac", "created_at")) == [
        (e.seq, e.mac, e.created_at) for e in log
    ]
    with (
        caplog.at_level("INFO", logger="incidents.audit"),
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        audit.append("test.event", actor=TESTER)
        raise RuntimeError("the change failed")
    # A rolled-back append leaves no checkpoint and no log line claiming it.
    assert AuditCheckpoint.objects.count() == 10
    assert "seq=11" not in caplog.text
    assert verify_audit()[0] == 0


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {CHECKPOINTS} SET mac = 'x' WHERE seq = 1",
        f"DELETE FROM {CHECKPOINTS} WHERE seq = 10",
        f"TRUNCATE {CHECKPOINTS}",
    ],
)
def test_the_database_refuses_to_rewrite_checkpoints(log, statement):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert AuditCheckpoint.objects.count() == 10


def test_an_inserted_row_is_named(log):
    # A forged row that even copies the previous MAC as its link: no key, no valid MAC.
    last = log[-1]
    raw(
        f"INSERT INTO {TABLE} (seq, created_at, actor_name, verb, object_type, object_id, "
        "data, prev_mac, mac) VALUES (11, now(), 'mallory', 'test.event', '', '', '{}', %s, %s)",
        [last.mac, "f" * 64],
    )
    assert verify_audit()[1].startswith(
        "Audit log broken at sequence 11: row 11 was changed"
    )


def test_renumbering_to_hide_a_deletion_is_named(log):
    raw(f"DELETE FROM {TABLE} WHERE seq = 3")
    raw(f"UPDATE {TABLE} SET seq = seq - 1 WHERE seq > 3")
    assert verify_audit()[1].startswith(
        "Audit log broken at sequence 3: row 3 does not link to row 2"
    )


def test_the_key_comes_from_the_environment(log, settings):
    settings.AUDIT_HMAC_KEY = "another-key"
    assert verify_audit()[1].startswith(
        "Audit log broken at sequence 1: row 1 was changed"
    )


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {TABLE} SET verb = 'x' WHERE seq = 1",
        f"DELETE FROM {TABLE} WHERE seq = 1",
        f"TRUNCATE {TABLE}",
    ],
)
def test_the_database_refuses_to_rewrite_history(log, statement):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert AuditEvent.objects.count() == 10


def test_the_orm_cannot_update_or_delete_either(log):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=2).update(verb="changed")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=2).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event = AuditEvent.objects.get(seq=3)
        event.verb = "changed"
        event.save()
    assert verify_audit()[0] == 0


def test_sign_ins_and_failures_are_audited_without_passwords(client, make_user):
    make_user("rita", "Responder")
    client.post("/accounts/login/", {"username": "rita", "password": "wrong-password"})
    client.post(
        "/accounts/login/", {"username": "rita", "password": "correct-horse-battery"}
    )
    client.post("/accounts/logout/")
    verbs = list(
        AuditEvent.objects.filter(verb__startswith="log").values_list("verb", "data")
    )
    assert verbs == [
        ("login.failed", {"username": "rita"}),
        ("login.succeeded", {}),
        ("logout", {}),
    ]
    everything = str(list(AuditEvent.objects.values_list("data", flat=True)))
    assert "wrong-password" not in everything and "correct-horse" not in everything


def test_admin_changes_to_users_groups_and_grants_are_audited(admin_client, make_user):
    rita = make_user("rita")
    admin_client.post(
        f"/admin/auth/user/{rita.pk}/change/",
        {
            "username": "rita",
            "is_active": "on",
            "is_staff": "on",
            "groups": [Group.objects.get(name="Commander").pk],
            "date_joined_0": "2026-11-27",
            "date_joined_1": "10:00:00",
            "initial-date_joined_0": "2026-11-27",
            "initial-date_joined_1": "10:00:00",
        },
    )
    changed = AuditEvent.objects.get(verb="user.changed")
    assert changed.actor_name == "admin" and changed.data["changes"]["is_staff"] == [
        False,
        True,
    ]
    grant = AuditEvent.objects.filter(verb="grant.changed").last()
    assert grant.data == {
        "of": "rita",
        "what": "group",
        "action": "add",
        "items": ["Commander"],
    }
    group = Group.objects.get(name="Viewer")
    group.permissions.add(Permission.objects.get(codename="add_note"))
    grant = AuditEvent.objects.filter(verb="grant.changed").last()
    assert (
        grant.data["items"] == ["incidents.add_note"] and grant.data["of"] == "Viewer"
    )


def test_a_password_change_is_audited_as_changed_never_with_its_value(make_user):
    rita = make_user("rita")
    rita.set_password("new-secret-value")
    rita.save()
    event = AuditEvent.objects.get(verb="user.changed")
    assert event.data["changes"] == {"password": "changed"}
    assert "new-secret" not in str(event.data) and "pbkdf2" not in str(event.data)


def test_runbook_imports_are_audited(yomira):
    event = AuditEvent.objects.get(verb="runbook.imported")
    assert event.actor_name == "manage.py"
    assert event.data["playbooks"] == 12 and event.data["revision"] == 1


def test_admins_list_and_filter_the_log_but_cannot_change_it(admin_client, log):
    page = admin_client.get(
        "/admin/incidents/auditevent/?verb=test.event"
    ).content.decode()
    assert page.count("test.event") >= 10
    assert admin_client.get("/admin/incidents/auditevent/add/").status_code == 403
    event = AuditEvent.objects.filter(verb="test.event").first()
    url = f"/admin/incidents/auditevent/{event.pk}/"
    assert admin_client.post(url + "delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(verb="test.event").count() == 10
    detail = admin_client.get(url + "change/").content.decode()
    assert "ünïcode" in detail and 'name="verb"' not in detail  # shown, not editable


def test_a_viewer_cannot_see_the_audit_admin(viewer_client, log):
    assert viewer_client.get("/admin/incidents/auditevent/").status_code == 302


def test_a_nul_byte_in_event_data_is_stored_not_a_crash(db):
    # jsonb refuses \u0000: a hostile path or reason must still be recorded.
    event = audit.append(
        "test.event", actor=TESTER, data={"why": "a\x00b", "k\x00": ["\x00"]}
    )
    event.refresh_from_db()
    assert event.data == {"why": "a\ufffdb", "k\ufffd": ["\ufffd"]}
    assert verify_audit()[0] == 0


def stream_of(path, heads: list[tuple[int, str]]) -> str:
    """A log file as the log shipper keeps it: head lines among other lines."""
    lines = ["2026-11-29 09:00:00 INFO django.server GET /incidents/ 200"]
    lines += [
        f"2026-11-29 09:00:01 INFO incidents.audit {audit.HEAD_LINE % head}"
        for head in heads
    ]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize(
    ("tamper", "verdict"),
    [
        (
            f"UPDATE {TABLE} SET verb = 'test.other' WHERE seq = 4",
            audit.Verdict(False, 3, 4, "row 4 was changed (its MAC does not match)"),
        ),
        (
            f"DELETE FROM {TABLE} WHERE seq = 6",
            audit.Verdict(False, 5, 6, "row 6 is missing (next is 7)"),
        ),
        (
            f"UPDATE {TABLE} SET prev_mac = mac WHERE seq = 3",
            audit.Verdict(False, 2, 3, "row 3 does not link to row 2"),
        ),
    ],
)
def test_the_verdict_names_the_first_bad_row_and_counts_the_good_ones_before_it(
    log, tamper, verdict
):
    raw(tamper)
    assert audit.verify() == verdict


def test_the_command_counts_the_events_verified_before_the_break(log):
    raw(f"UPDATE {TABLE} SET verb = 'test.other' WHERE seq = 4")
    assert verify_audit() == (
        1,
        "Audit log broken at sequence 4: row 4 was changed (its MAC does not match) "
        "(3 events before it verified).\n",
    )


def test_an_empty_log_without_checkpoints_verifies(db):
    assert audit.verify() == audit.Verdict(True, 0)
    assert verify_audit() == (0, "Audit log intact: 0 events verified.\n")


def test_a_cut_tail_verdict_counts_the_rows_that_remain(log):
    raw(f"DELETE FROM {TABLE} WHERE seq > 8")
    assert audit.verify() == audit.Verdict(
        False,
        8,
        9,
        "audit log ends at seq 8 but checkpoint says 10: rows 9..10 are missing",
    )


def test_a_cut_checkpoint_table_names_the_first_missing_checkpoint(log):
    raw(f"DELETE FROM {CHECKPOINTS} WHERE seq > 7", table=CHECKPOINTS)
    assert audit.verify() == audit.Verdict(
        False,
        10,
        8,
        "checkpoints end at seq 7 but the audit log at 10: checkpoints 8..10 are "
        "missing",
    )
    assert verify_audit() == (
        1,
        "Audit log broken at sequence 8: checkpoints end at seq 7 but the audit log "
        "at 10: checkpoints 8..10 are missing (10 events before it verified).\n",
    )


def test_an_emptied_checkpoint_table_is_named_from_checkpoint_one(log):
    raw(f"DELETE FROM {CHECKPOINTS}", table=CHECKPOINTS)
    assert audit.verify() == audit.Verdict(
        False,
        10,
        1,
        "checkpoints end at seq 0 but the audit log at 10: checkpoints 1..10 are "
        "missing",
    )


def test_a_checkpoint_naming_another_mac_is_named(log):
    raw(
        f"UPDATE {CHECKPOINTS} SET mac = %s WHERE seq = 10",
        [log[8].mac],
        table=CHECKPOINTS,
    )
    assert audit.verify() == audit.Verdict(
        False,
        10,
        10,
        "row 10 is not the row the checkpoint recorded (its MAC differs)",
    )


def test_a_log_stream_that_agrees_with_the_log_verifies(log, tmp_path):
    stream = stream_of(tmp_path / "console.log", [(e.seq, e.mac) for e in log[:6]])
    assert verify_audit("--log", stream) == (
        0,
        "Audit log intact: 10 events verified.\n",
    )


def test_a_log_stream_naming_another_mac_is_named(log, tmp_path):
    stream = stream_of(tmp_path / "console.log", [(5, log[5].mac)])
    assert verify_audit("--log", stream) == (
        1,
        "Audit log broken at sequence 5: row 5 is not the row the log stream "
        "recorded (its MAC differs) (10 events before it verified).\n",
    )


def test_a_log_stream_head_for_a_row_that_cannot_exist_is_named(log, tmp_path):
    stream = stream_of(tmp_path / "console.log", [(0, "0" * 64)])
    assert verify_audit("--log", stream) == (
        1,
        "Audit log broken at sequence 0: row 0 is not the row the log stream "
        "recorded (its MAC differs) (10 events before it verified).\n",
    )


def test_the_newest_head_in_a_log_stream_is_found_among_other_lines():
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    lines = [
        "unrelated line",
        f"Nov 29 host yomira[7]: audit head seq=3 mac={a}",
        f"audit head seq=12 mac={b} and audit head seq=9 mac={c}",
        "audit head seq=40 mac=not-a-mac",
    ]
    assert audit.heads_in_log(lines) == audit.Head(12, b, "log stream")
    assert audit.heads_in_log(["nothing here"]) is None


def test_a_number_the_stream_saw_twice_is_judged_by_its_first_head(log, tmp_path):
    """Cut row 10 from both tables and append again: a new row 10 with another MAC,
    which the tables agree on. The stream saw the real row 10 first."""
    heads = [(e.seq, e.mac) for e in log]
    raw(f"DELETE FROM {TABLE} WHERE seq = 10")
    raw(f"DELETE FROM {CHECKPOINTS} WHERE seq = 10", table=CHECKPOINTS)
    again = audit.append(
        "test.event", actor=Actor.system("mallory"), data={"n": "again"}
    )
    assert again.seq == 10 and again.mac != log[-1].mac
    assert verify_audit()[0] == 0
    stream = stream_of(tmp_path / "console.log", [*heads, (again.seq, again.mac)])
    assert audit.heads_in_log(Path(stream).read_text().splitlines()) == audit.Head(
        10, log[-1].mac, "log stream"
    )
    assert verify_audit("--log", stream) == (
        1,
        "Audit log broken at sequence 10: row 10 is not the row the log stream "
        "recorded (its MAC differs) (10 events before it verified).\n",
    )


def test_the_signed_form_of_a_row_never_changes(settings):
    """Rows signed by earlier releases must verify for ever: the bytes the MAC covers
    are fixed (keys sorted, no spaces, the time in UTC whatever the server's zone)."""
    settings.AUDIT_HMAC_KEY = "golden-key"
    settings.TIME_ZONE = "Asia/Kolkata"
    fields = {
        "seq": 7,
        "created_at": datetime(
            2026, 11, 29, 9, 30, 1, 234567, tzinfo=timezone(timedelta(hours=2))
        ),
        "actor_id": 3,
        "actor_name": "rita",
        "verb": "run.approved",
        "incident_id": 42,
        "object_type": "run",
        "object_id": "17",
        "data": {"zeta": [1, "ü"], "alpha": {"b": None, "a": True}},
        "ip": "192.0.2.7",
        "prev_mac": "ab" * 32,
    }
    assert audit.canonical(**fields) == (
        b'[7,"2026-11-29T07:30:01.234567Z",3,"rita","run.approved",42,"run","17",'
        b'{"alpha":{"a":true,"b":null},"zeta":[1,"\\u00fc"]},"192.0.2.7",'
        b'"abababababababababababababababababababababababababababababababab"]'
    )
    assert audit.compute_mac(**fields) == (
        "0fb1bdd40f4cf1f2de35b76d785c4f99f699d3023f8de722776ba07cb722b27c"
    )


def test_without_a_key_nothing_is_signed_or_verified(db, settings):
    settings.AUDIT_HMAC_KEY = ""
    message = "AUDIT_HMAC_KEY is not set: the audit log cannot be signed."
    with pytest.raises(ImproperlyConfigured) as refused:
        audit.append("test.event", actor=TESTER)
    assert str(refused.value) == message
    with pytest.raises(ImproperlyConfigured) as refused:
        audit.verify()
    assert str(refused.value) == message


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_an_event_records_who_did_what_to_which_object_from_where(
    incident, make_user, rf, monkeypatch, vendor
):
    """Both ways of serialising appends (PostgreSQL's lock, SQLite's process lock)
    record the same event."""
    rita = make_user("rita")
    request = rf.get("/", REMOTE_ADDR="192.0.2.9")
    request.user = rita
    monkeypatch.setattr(connection, "vendor", vendor)
    event = audit.append(
        "test.event",
        actor=Actor.from_request(request),
        incident=incident,
        obj=rita,
        data={"why": "checking"},
    )
    monkeypatch.undo()
    event.refresh_from_db()
    assert (
        event.verb,
        event.actor_id,
        event.actor_name,
        event.incident_id,
        event.object_type,
        event.object_id,
        event.data,
        event.ip,
    ) == (
        "test.event",
        rita.pk,
        "rita",
        incident.pk,
        "user",
        str(rita.pk),
        {"why": "checking"},
        "192.0.2.9",
    )
    assert audit.verify().ok


@pytest.mark.parametrize(
    "actor",
    [Actor.person(None), Actor.person(AnonymousUser()), Actor.anonymous()],
    ids=["nobody", "anonymous-user", "anonymous"],
)
def test_an_event_without_actor_or_object_records_blanks(db, actor):
    event = audit.append("test.event", actor=actor)
    event.refresh_from_db()
    assert (
        event.actor_id,
        event.actor_name,
        event.incident_id,
        event.object_type,
        event.object_id,
        event.data,
        event.ip,
    ) == (None, "", None, "", "", {}, None)


def test_a_named_actor_overrides_the_signed_in_user(make_user):
    event = audit.append("test.event", actor=Actor(name="beat", user=make_user("rita")))
    assert (event.actor_name, event.actor_id) == ("beat", event.actor.pk)


def test_a_long_actor_name_is_cut_to_the_column_not_a_failed_append(db):
    event = audit.append("test.event", actor=Actor.system("r" * 200))
    event.refresh_from_db()
    assert event.actor_name == "r" * 150
    assert audit.verify().ok


def test_event_data_that_json_cannot_hold_is_recorded_as_text(db):
    event = audit.append(
        "test.event",
        actor=TESTER,
        data={"at": datetime(2026, 11, 29, 9, 30, tzinfo=UTC), "cost": Decimal("1.50")},
    )
    event.refresh_from_db()
    assert event.data == {"at": "2026-11-29 09:30:00+00:00", "cost": "1.50"}
    assert audit.verify().ok


def test_data_keys_in_any_order_verify(db):
    audit.append(
        "test.event", actor=TESTER, data={"zeta": 1, "alpha": {"y": 2, "b": 3}}
    )
    assert audit.verify() == audit.Verdict(True, 1)


def test_appends_hold_the_advisory_lock_until_the_callers_transaction_ends(db):
    audit.append("test.event", actor=TESTER)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
            "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
        )
        held = [row[0] for row in cursor.fetchall()]
    assert audit.ADVISORY_LOCK_ID in held


def test_an_append_inside_a_transaction_takes_no_savepoint(db):
    """Two round trips saved on every audited change: the caller's transaction
    is the append's."""
    from django.test.utils import CaptureQueriesContext

    with transaction.atomic(), CaptureQueriesContext(connection) as appended:
        audit.append("test.no-savepoint", actor=TESTER)
        audit.append("test.no-savepoint", actor=TESTER)
    statements = [query["sql"] for query in appended.captured_queries]
    assert not any("SAVEPOINT" in sql for sql in statements), statements
    assert audit.verify().ok


def test_a_change_never_commits_without_its_record(db, monkeypatch):
    """An append that fails inside the caller's transaction dooms that
    transaction, even when the caller swallows the error: no savepoint of the
    append's own lets the change commit without its event."""

    def refused(*args: object, **kwargs: object) -> None:
        raise DatabaseError("checkpoint refused")

    with transaction.atomic():
        Group.objects.create(name="changed without a record")  # audited itself
        monkeypatch.setattr(audit, "anchor", refused)
        with contextlib.suppress(DatabaseError):  # a caller that carries on
            audit.append("test.change", actor=TESTER)
    assert not Group.objects.filter(name="changed without a record").exists()
    assert not AuditEvent.objects.filter(verb="test.change").exists()
