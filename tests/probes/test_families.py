"""Every command family answers every part of the protocol, on its own examples,
through the same dispatcher the runbook parser uses. A family that forgot a part
fails here, instead of falling back to the confirm word "run" or "No preview"."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
from django.core.exceptions import ValidationError

from incidents.models import Command
from probes import commands, recognise
from probes.binding import ACTION, KINDS, MANUAL, PROBE, Binding
from probes.families import FAMILIES, UnknownFamily, by_program, families, family
from probes.family import BaseFamily, Family, Preview
from probes.preview import preview

NAMES = list(FAMILIES)
PROTOCOL_METHODS = [
    name
    for name, member in inspect.getmembers(Family)
    if inspect.isfunction(member) and not name.startswith("_")
]


def bound(text: str, binding: Binding) -> Command:
    """An unsaved model command, as the console stores it."""
    return Command(
        text=text,
        kind=binding.kind,
        executor=binding.executor or "",
        parameters=binding.parameters,
        variables=binding.variables,
        spec=binding.spec,
    )


def examples() -> list[tuple[str, str, str]]:
    return [(f.name, lang, text) for f in families() for lang, text in f.examples]


def test_the_protocol_has_every_part_the_engine_asks_for() -> None:
    assert set(PROTOCOL_METHODS) == {
        "recognise",
        "recognise_text",
        "settle",
        "run",
        "preview",
        "confirm_word",
        "targets",
        "needs_approval",
        "parameter_problem",
        "display",
    }


@pytest.mark.parametrize("name", NAMES)
def test_each_family_answers_the_whole_protocol(name: str) -> None:
    each = family(name)
    assert isinstance(each, Family)
    assert each.name == name
    assert each.label and isinstance(each.label, str)
    assert isinstance(each.programs, frozenset)
    assert isinstance(each.languages, frozenset)
    assert each.programs or each.languages, "a family nobody can reach"
    assert isinstance(each, BaseFamily)
    for method in PROTOCOL_METHODS:
        own = getattr(type(each), method, None)
        assert callable(own), f"{name} lacks {method}"
        assert own is not getattr(Family, method), f"{name} has the protocol's stub"
    assert each.examples, f"{name} has no examples to be checked on"


def test_what_a_family_must_say_for_itself_has_no_default() -> None:
    """Only parts with a neutral answer have one; the rest are abstract, so a
    family that forgets one cannot even be made."""
    assert BaseFamily.__abstractmethods__ == {
        "recognise",
        "run",
        "preview",
        "confirm_word",
        "targets",
        "needs_approval",
    }

    class Forgetful(BaseFamily):
        name, label = "forgetful", "forgot its confirm word"

        def recognise(self, call):  # noqa: ANN001, ANN201
            return None

    with pytest.raises(TypeError, match="confirm_word"):
        Forgetful()


@pytest.mark.parametrize(("name", "language", "text"), examples())
def test_each_example_is_recognised_and_every_part_answers(
    name: str, language: str, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in [v for v in __import__("os").environ if v.startswith("TARGET_")]:
        monkeypatch.delenv(var)
    binding = recognise.recognise(text, language)
    assert binding.executor == name, f"{text!r} went to {binding.executor}"
    assert binding.kind in (PROBE, ACTION)
    command = bound(text, binding)
    word = commands.confirm_word(command)
    assert isinstance(word, str) and word.strip()
    if binding.kind == ACTION:
        assert word != "run", "an action's confirm word comes from the command"
        assert word.lower() in text.lower()
    needed = family(name).targets(command)
    assert isinstance(needed, list) and all(isinstance(n, str) for n in needed)
    missing = commands.missing_targets(command)
    assert all(m.startswith("TARGET_") for m in missing)
    assert isinstance(commands.needs_approval(command), bool)
    values = {p: "1" for p in binding.parameters}
    assert commands.parameter_problem(command, values) is None
    shown = commands.display_text(command, values)
    assert isinstance(shown, str) and shown.strip()
    seen = preview(command, values)
    assert isinstance(seen, Preview) and seen.headline.strip()
    assert "No preview is possible" not in seen.headline


def test_only_destructive_actions_need_a_second_person_by_default() -> None:
    def approval(text: str, language: str = "bash") -> bool:
        return commands.needs_approval(bound(text, recognise.recognise(text, language)))

    assert approval("DELETE FROM users.session WHERE userid = $1;", "sql")
    assert approval("SELECT pg_terminate_backend($1);", "sql")
    assert not approval("SELECT pg_cancel_backend($1);", "sql")
    assert approval("curl -X DELETE https://api.yomira.app/admin/cache")
    assert approval("curl -X POST https://api.yomira.app/admin/sessions/revoke-all")
    assert not approval("curl -X POST https://api.yomira.app/admin/crawler/pause")
    assert approval('redis-cli -u "${REDIS_URL}" FLUSHALL')
    assert not approval('redis-cli -u "${REDIS_URL}" CONFIG SET maxclients 20000')
    assert not approval("curl https://api.yomira.app/health")  # a probe


def test_a_program_belongs_to_one_family() -> None:
    table = by_program()
    assert table["curl"].name == "http"
    assert table["psql"].name == "sql"
    assert table["redis-cli"].name == "redis"
    claimed = [p for f in families() for p in f.programs]
    assert len(claimed) == len(set(claimed))


def test_text_no_family_claims_is_manual() -> None:
    binding = recognise.recognise("flyctl restart -a yomira-api", "bash")
    assert (binding.kind, binding.executor) == (MANUAL, None)
    assert MANUAL in KINDS
    assert commands.confirm_word(bound("x", binding)) == "run"
    assert commands.needs_approval(bound("x", binding)) is False


def test_an_unknown_family_is_refused_by_name() -> None:
    with pytest.raises(UnknownFamily, match="no command family named 'nope'"):
        family("nope")
    command = Command(text="x", kind="probe", executor="nope")
    with pytest.raises(ValidationError) as refused:
        command.clean_fields(exclude=["playbook", "step", "position"])
    assert "No command family is named 'nope'" in str(refused.value)
    for name in NAMES:  # every family in the table is a valid executor
        Command(text="x", kind="probe", executor=name).clean_fields(
            exclude=["playbook", "step", "position"]
        )


def test_the_engine_and_the_parser_load_without_django_or_celery() -> None:
    """Import-linter checks the imports as written; this checks what actually
    loads, families included (they are imported lazily)."""
    code = (
        "import sys\n"
        "from probes import recognise, commands, preview\n"
        "from probes.families import families\n"
        "from incidents.runbook import parse_runbook\n"
        "for f in families():\n"
        "    for lang, text in f.examples:\n"
        "        recognise.recognise(text, lang)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'celery', 'kombu'))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
