"""`--dry-run` and the real import agree on every input (issue 8, point 11).

Every text the importer stores in a length-limited column is checked by the parser
against the same limit, so an over-long field is a `PATH:LINE: message` from both
the dry run and the import, never a DataError traceback from PostgreSQL. These tests
run on PostgreSQL, which enforces the limits (SQLite does not)."""

from __future__ import annotations

import os
import random
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from incidents.models import Command, Playbook, Runbook, Step
from incidents.runbook import types as limits
from tests.conftest import IMPORTER, YOMIRA_RUNBOOK

pytestmark = pytest.mark.django_db

HEAD = "# Runbook\n\nVersion: 1.0.0\n\n"
STEPS = "### Steps\n\n1. **Look** at it\n   ```bash\n   df -h\n   ```\n"


def playbook(title: str = "Disk Full", header: str = "", steps: str = STEPS) -> str:
    return f"## 1. {title}\n\n{header}\n\n{steps}\n"


OVER_LONG = {
    # name: (runbook text, line named, words the message must hold)
    "step-first-line": (
        HEAD + playbook(steps="### Steps\n\n1. " + "x" * 501 + "\n"),
        11,
        "the title of step 1 of playbook 1 is 501 characters long; at most "
        f"{limits.STEP_TITLE_MAX}",
    ),
    "bold-step-title": (
        HEAD + playbook(steps="### Steps\n\n1. **" + "y " * 260 + "** then\n"),
        11,
        "the title of step 1 of playbook 1 is",
    ),
    "playbook-title-slug": (
        HEAD + playbook(title="Disk " + "a" * 210),
        5,
        f"the slug of playbook 1 is 215 characters long; at most "
        f"{limits.PLAYBOOK_SLUG_MAX}",
    ),
    "playbook-title": (
        HEAD + playbook(title="! " * 160 + "Disk"),
        5,
        f"the title of playbook 1 is 324 characters long; at most "
        f"{limits.PLAYBOOK_TITLE_MAX}",
    ),
    "playbook-anchor": (
        # Spaces around dashes collapse in the slug but not in GitHub's anchor.
        HEAD + playbook(title=("a - " * 75)[:299] + "b"),
        5,
        "the link anchor of playbook 1 is",
    ),
    "slug-grows-under-normalisation": (
        # U+FB00 (the ff ligature) is one character in the title, two in the slug.
        HEAD + playbook(title="\ufb00" * 150),
        5,
        "the slug of playbook 1 is 300 characters long",
    ),
    "severity-word": (
        # The severity as written is kept (the level is one of four words).
        HEAD + playbook(header="**Severity:** " + "Critical" * 13),
        7,
        f"the severity of playbook 1 is 104 characters long; at most "
        f"{limits.SEVERITY_TEXT_MAX}",
    ),
    "severity-note": (
        HEAD + playbook(header="**Severity:** High (" + "n" * 301 + ")"),
        7,
        "the severity note of playbook 1 is 301 characters long",
    ),
    "runbook-title": (
        "# " + "Runbook " * 40 + "\n\n" + playbook(),
        1,
        "the runbook's title is 319 characters long; at most 300",
    ),
    "runbook-key": (
        "# " + "R" * 250 + "\n\n" + playbook(),
        1,
        f"the runbook's title makes a key (slug) of 250 characters; at most "
        f"{limits.RUNBOOK_KEY_MAX}",
    ),
    "runbook-version": (
        "# Runbook\n\nSome text.\n\nVersion: 1." + "0" * 60 + "\n\n" + playbook(),
        5,
        f"the runbook's version is 62 characters long; at most "
        f"{limits.RUNBOOK_VERSION_MAX}",
    ),
    "code-block-language": (
        HEAD
        + playbook(steps="### Steps\n\n1. Run\n   ```" + "l" * 31 + "\n   x\n   ```\n"),
        12,
        f"the language of a code block is 31 characters long; at most "
        f"{limits.LANGUAGE_MAX}",
    ),
}


def run(path: Path, *args: str) -> tuple[str, str]:
    """("ok", "") or ("error", the message): what a user sees, in the same form for
    the dry run and the import. Any other exception fails the test (a traceback)."""
    try:
        call_command(
            "import_runbook", str(path), *args, stdout=StringIO(), stderr=StringIO()
        )
    except CommandError as exc:
        return "error", str(exc)
    return "ok", ""


@pytest.mark.parametrize("name", sorted(OVER_LONG))
def test_dry_run_and_import_give_the_same_verdict_on_an_over_long_field(tmp_path, name):
    text, line, words = OVER_LONG[name]
    path = tmp_path / f"{name}.md"
    path.write_text(text)
    dry = run(path, "--dry-run")
    real = run(path)
    assert dry == real
    verdict, message = real
    assert verdict == "error"
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message
    assert Runbook.objects.count() == 0 and Playbook.objects.count() == 0


def test_fields_at_their_limits_import(tmp_path):
    title = "T" * limits.PLAYBOOK_SLUG_MAX
    text = (
        "# "
        + "K" * limits.RUNBOOK_KEY_MAX
        + "\n\nVersion: 1."
        + "0" * (limits.RUNBOOK_VERSION_MAX - 2)
        + "\n\n"
        + playbook(
            title=title,
            header="**Severity:** " + "s" * limits.SEVERITY_TEXT_MAX,
            steps="### Steps\n\n1. "
            + "x" * limits.STEP_TITLE_MAX
            + "\n   ```"
            + "l" * limits.LANGUAGE_MAX
            + "\n   x\n   ```\n",
        )
    )
    path = tmp_path / "limits.md"
    path.write_text(text)
    assert run(path, "--dry-run") == run(path) == ("ok", "")
    step = Step.objects.get()
    assert len(step.title) == limits.STEP_TITLE_MAX
    assert len(Command.objects.get().language) == limits.LANGUAGE_MAX
    assert len(Playbook.objects.get().severity_text) == limits.SEVERITY_TEXT_MAX


def test_a_slug_taken_by_another_runbook_is_refused_by_the_dry_run_too(tmp_path):
    first = tmp_path / "first.md"
    first.write_text("# First\n\n" + playbook())
    second = tmp_path / "second.md"
    second.write_text("# Second\n\n" + playbook())
    assert run(first) == ("ok", "")
    dry, real = run(second, "--dry-run"), run(second)
    assert dry == real
    assert real[0] == "error" and "same slug as one in the runbook 'First'" in real[1]


# --- random malformed runbooks -----------------------------------------------------

# Pieces of runbooks, good and bad; `{word}` is random text, sometimes very long.
PIECES = [
    "## {n}. {word}\n",
    "### Steps\n",
    "### Diagnosis\n",
    "{n}. **{word}** {word}\n",
    "- {word}\n",
    "**Severity:** {word} → {word} + {word} ({word})\n",
    "**Alert:** `{word}` — {word}\n",
    "```{lang}\n{code}\n```\n",
    "```{lang}\n{code}\n",
    "   ```sql\n   {code}\n   ```\n",
    "    {code}\n",
    "`{code}`\n",
    "See §{n} and [x](#{n}-{word})\n",
    "# {word}\n",
    "Version: {word}\n",
    "{word}\n===\n",
    "\n",
    "> {word}\n",
]
CODE = [
    "curl -X POST https://api.example.com/{word}/:id -d '{{\"a\": 1}}'",
    "SELECT * FROM t WHERE {word} = $1;",
    "SELECT pg_cancel_backend({word});",
    'psql ${{DATABASE_URL}} -c "{word}"',
    "redis-cli -u ${{REDIS_URL}} {word}",
    "docker compose exec redis redis-cli {word}",
    "cat <<EOF\n{word}",
    "echo '{word}",
    "$ {word}",
    'PATCH /admin/{word} {{"x": {word}}}',
]
LANGS = ["", "bash", "sql", "console", "yaml", "bash", "sql", "{word}"]


def random_word(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return rng.choice(["Disk", "db", "API", "pid", "Critical", "High", "x.y", "é"])
    if kind < 0.75:
        alphabet = "aZ09 _-.$:;'\"`()[]{}#§→*\\/\t"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
    if kind < 0.95:  # long enough to pass a column's limit, or close to it
        return rng.choice(["a", "é", " a", "\ufb00", "-", "Critical"]) * rng.randint(
            4, 120
        )
    return "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(1, 30)))


def fill(piece: str, rng: random.Random) -> str:
    piece = piece.replace("{lang}", rng.choice(LANGS))
    piece = piece.replace("{code}", rng.choice(CODE).format(word=random_word(rng)))
    piece = piece.replace("{n}", str(rng.choice([1, 1, 2, 3, 999, 0, 12345])))
    while "{word}" in piece:
        piece = piece.replace("{word}", random_word(rng), 1)
    return piece


def random_runbook(rng: random.Random) -> str:
    """A runbook of one to three playbooks with random fields, then a few random
    pieces inserted at random lines (most inputs still look like runbooks)."""
    lines = [fill("# {word}", rng), "", fill("Version: {word}", rng), ""]
    for number in range(1, rng.randint(2, 4)):
        lines += [fill(f"## {number}. {{word}}", rng), ""]
        if rng.random() < 0.7:
            lines += [fill("**Severity:** {word} → {word} ({word})", rng), ""]
        lines += ["### Steps", ""]
        for step in range(1, rng.randint(2, 4)):
            lines.append(fill(f"{step}. **{{word}}** {{word}}", rng))
            lang, code = rng.choice(LANGS), rng.choice(CODE)
            block = fill(f"```{lang}\n{code}\n```", rng).split("\n")
            lines += ["   " + line for line in block] + [""]
    for _ in range(rng.randint(0, 3)):
        at = rng.randint(0, len(lines))
        lines[at:at] = fill(rng.choice(PIECES), rng).rstrip("\n").split("\n")
    return "\n".join(lines) + "\n"


def test_random_malformed_runbooks_never_give_a_traceback_and_both_modes_agree(
    tmp_path,
):
    rng = random.Random(int(os.environ.get("IMPORT_FUZZ_SEED", "20261129")))
    verdicts = {"ok": 0, "error": 0}
    for index in range(int(os.environ.get("IMPORT_FUZZ_COUNT", "250"))):
        path = tmp_path / f"fuzz{index}.md"
        path.write_text(random_runbook(rng))
        dry = run(path, "--dry-run")
        real = run(path)
        assert dry == real, path.read_text()
        verdict, message = real
        verdicts[verdict] += 1
        if verdict == "error":
            assert message.startswith(f"{path}:"), message
            assert message.split(":")[1].isdigit(), message
    # The generator must exercise both outcomes, or the test proves little.
    assert verdicts["ok"] >= 10 and verdicts["error"] >= 10, verdicts


def test_the_bundled_runbook_still_imports_in_both_modes():
    assert run(YOMIRA_RUNBOOK, "--dry-run") == run(YOMIRA_RUNBOOK) == ("ok", "")


# --- the command as a user runs it ----------------------------------------------------


@pytest.mark.parametrize(
    "name", ["severity-word", "runbook-key", "code-block-language"]
)
def test_the_command_exits_1_with_path_and_line_never_a_traceback(tmp_path, name):
    from tests.test_import_command import dry_run_json

    text, line, words = OVER_LONG[name]
    path = tmp_path / f"{name}.md"
    path.write_text(text)
    proc = dry_run_json(path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{path}:{line}: " in proc.stderr and words in proc.stderr
    assert proc.stdout == ""


# --- grants carried into a new revision ---------------------------------------------


def runbook_of(playbooks: int, version: str) -> bytes:
    body = "".join(
        playbook(title=f"Thing {n}").replace("## 1.", f"## {n}.")
        for n in range(1, playbooks + 1)
    )
    return f"# Grants\n\nVersion: {version}\n\n{body}".encode()


@pytest.mark.parametrize("playbooks", [2, 40])
def test_grants_are_carried_in_a_constant_number_of_queries(
    playbooks, make_user, django_assert_max_num_queries
):
    from guardian.shortcuts import assign_perm, get_perms

    from incidents.services import carry_grants, import_runbook

    first = import_runbook(
        source=runbook_of(playbooks, "1.0.0"), actor=IMPORTER
    ).runbook
    person = make_user("gina")
    for old in first.playbooks.all():
        assign_perm("run_actions", person, old)
    second = import_runbook(
        source=runbook_of(playbooks, "1.0.1"), actor=IMPORTER
    ).runbook
    new = list(second.playbooks.all())
    # Throw away what import_runbook already carried, then carry again, counted.
    from guardian.models import UserObjectPermission

    UserObjectPermission.objects.filter(object_pk__in=[str(p.pk) for p in new]).delete()
    # Before: two queries per playbook (one per kind of holder).
    with django_assert_max_num_queries(6):
        carry_grants(first, new)
    assert all(get_perms(person, p) == ["run_actions"] for p in new)
