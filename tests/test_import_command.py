"""`manage.py import_runbook`: the contract, idempotence, revisions, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from incidents.models import Command, Playbook, Runbook, Step
from tests.conftest import ROOT, YOMIRA_RUNBOOK

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("import_runbook", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_it_imports_the_bundled_runbook():
    out = run(str(YOMIRA_RUNBOOK))
    assert "as revision 1" in out
    assert (
        "12 playbooks, 61 steps, 64 commands (20 probes, 17 actions, 27 manual)" in out
    )
    runbook = Runbook.objects.get()
    assert (runbook.revision, runbook.version, runbook.is_current) == (1, "1.0.0", True)
    assert Playbook.objects.filter(runbook=runbook).count() == 12
    assert Step.objects.filter(playbook__runbook=runbook).count() == 61
    assert Command.objects.filter(playbook__runbook=runbook).count() == 64
    step = Step.objects.get(playbook__number=5, number=3)
    assert [
        (c.kind, c.executor, c.parameters) for c in step.commands.order_by("position")
    ] == [
        ("action", "sql", ["pid"]),
        ("action", "sql", ["pid"]),
    ]


def test_importing_the_same_file_twice_changes_nothing():
    run(str(YOMIRA_RUNBOOK))
    before = list(Command.objects.values_list("pk", flat=True))
    out = run(str(YOMIRA_RUNBOOK))
    assert out.startswith("Unchanged:")
    assert Runbook.objects.count() == 1
    assert list(Command.objects.values_list("pk", flat=True)) == before


def test_a_changed_file_makes_a_new_revision(tmp_path):
    run(str(YOMIRA_RUNBOOK))
    changed = tmp_path / "yomira.md"
    changed.write_text(
        YOMIRA_RUNBOOK.read_text().replace(
            "6. **Escalate**", "6. **Escalate to the IC**"
        )
    )
    out = run(str(changed))
    assert "as revision 2" in out
    old, new = Runbook.objects.order_by("revision")
    assert (old.is_current, new.is_current) == (False, True)
    assert Playbook.objects.current().count() == 12
    current = Playbook.objects.current().get(number=1)
    assert current.steps.get(number=6).title == "Escalate to the IC"
    # The old revision stays intact for incidents that started with it.
    assert old.playbooks.get(number=1).steps.get(number=6).title == "Escalate"


def test_dry_run_json_prints_the_contract_and_imports_nothing():
    out = run(str(YOMIRA_RUNBOOK), "--dry-run", "--json")
    doc = json.loads(out)
    assert Runbook.objects.count() == 0
    # The contract's keys, plus (issue 13) how the file was read and what was not
    # understood: additions, so scripts reading the contract keep working.
    assert set(doc) == {
        "title",
        "version",
        "sha256",
        "playbooks",
        "shape",
        "not_understood",
    }
    assert (doc["shape"], doc["not_understood"]) == ("numbered playbooks", [])
    assert doc["version"] == "1.0.0"
    first = doc["playbooks"][0]
    assert set(first) == {
        "number",
        "slug",
        "title",
        "alerts",
        "severity",
        "severity_text",
        "path",
        "escalation",
        "diagnosis",
        "steps",
    }
    assert (first["severity"], first["severity_text"]) == ("critical", "Critical")
    assert first["slug"] == "high-api-error-rate-5xx"
    assert first["steps"][0] == {
        "number": 1,
        "title": "Check `/health/ready`",
        "links": [],
        "commands": [
            {
                "language": "bash",
                "text": "curl https://api.yomira.app/health/ready",
                "kind": "probe",
                "executor": "http",
                "parameters": [],
            }
        ],
    }
    assert first["steps"][1]["links"] == [3]
    assert [len(p["steps"]) for p in doc["playbooks"]] == [
        6,
        5,
        7,
        5,
        5,
        4,
        5,
        4,
        5,
        4,
        5,
        6,
    ]


BAD_INPUTS = {
    "binary.png": (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        3,
        "not a Markdown text file",
    ),
    "latin1.md": (
        "# Runbook\n\n## 1. Caf\xe9 down\n".encode("latin-1"),
        3,
        "not UTF-8",
    ),
    "notes.md": (
        b"# Team notes\n\nJust some text.\n\n## Contacts\n",
        1,
        "not a runbook: no numbered playbooks",
    ),
    "empty.md": (b"\n\n", 1, "the file is empty"),
    "steps.md": (
        b"# R\n\n## 1. Queue backed up\n\n### Steps\n\nRestart the consumers.\n",
        5,
        "steps must be a numbered list",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_names_the_line_and_imports_nothing(tmp_path, name):
    content, line, message = BAD_INPUTS[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CommandError) as excinfo:
        run(str(path))
    assert str(excinfo.value).startswith(f"{path}:{line}: ")
    assert message in str(excinfo.value)
    assert Runbook.objects.count() == 0 and Playbook.objects.count() == 0


def test_a_missing_file_is_a_clear_error():
    with pytest.raises(CommandError, match="cannot read /nonexistent/runbook.md"):
        run("/nonexistent/runbook.md")


def test_a_bad_file_leaves_the_current_revision_untouched(tmp_path):
    run(str(YOMIRA_RUNBOOK))
    broken = tmp_path / "yomira.md"
    # Same title, but the step list of §4 is broken: nothing may change.
    broken.write_text(
        YOMIRA_RUNBOOK.read_text().replace("1. **Verify:**", "- **Verify:**", 1)
    )
    with pytest.raises(CommandError, match="steps of playbook 4 start at 2"):
        run(str(broken))
    assert list(Runbook.objects.values_list("revision", "is_current")) == [(1, True)]


def dry_run_json(path) -> subprocess.CompletedProcess:  # noqa: ANN001
    """The command as a user runs it, in its own process (real exit code)."""
    return subprocess.run(
        [
            sys.executable,
            "manage.py",
            "import_runbook",
            str(path),
            "--dry-run",
            "--json",
        ],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_command_exits_non_zero_on_bad_input(tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("# Not a runbook\n\nHello.\n")
    proc = dry_run_json(bad)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"{bad}:1: not a runbook: no numbered playbooks" in proc.stderr


def test_the_command_prints_json_on_stdout_only():
    proc = dry_run_json(YOMIRA_RUNBOOK)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["playbooks"]) == 12


def test_a_new_parser_version_re_reads_an_unchanged_file(monkeypatch):
    run(str(YOMIRA_RUNBOOK))
    from incidents import runbook

    newer = runbook.PARSER_VERSION + 1
    monkeypatch.setattr("incidents.runbook.PARSER_VERSION", newer)
    assert "as revision 2" in run(str(YOMIRA_RUNBOOK))
    assert Runbook.objects.get(is_current=True).parser_version == newer
    assert run(str(YOMIRA_RUNBOOK)).startswith("Unchanged:")
