"""Issue 13's near misses, one test each, on small runbooks written here: each is
either read correctly or refused, and either way the test asserts the reading and the
exact hint (the not-understood entry, or the error's message, line and file).

Pure parser tests, except the Admin's severity alias through the database (marked)."""

from __future__ import annotations

import pytest

from incidents.runbook import RunbookError, parse_runbook
from incidents.runbook.types import Runbook

NAME = "runbook.md"


def read(text: str, **options) -> Runbook:
    return parse_runbook(text, path=NAME, **options)


def refusal(text: str, **options) -> RunbookError:
    with pytest.raises(RunbookError) as info:
        read(text, **options)
    assert info.value.path == NAME
    return info.value


def steps_of(runbook: Runbook, index: int = 0) -> list[tuple[int, str, int]]:
    return [(s.number, s.title, s.line) for s in runbook.playbooks[index].steps]


def shown(runbook: Runbook) -> str:
    """Everything shown as text: preamble, sections, context, diagnosis, steps."""
    parts = [runbook.preamble, *(s.markdown for s in runbook.sections)]
    for p in runbook.playbooks:
        parts += [p.title, p.diagnosis, *(s.markdown for s in p.context)]
        parts += [f"{s.title}\n{s.body}" for s in p.steps]
    return "\n".join(parts)


# --- steps under other names ------------------------------------------------------------

STEP_WORDS = ["Mitigation", "Resolution", "Procedure", "Remediation steps"]


@pytest.mark.parametrize("word", STEP_WORDS)
def test_steps_under_another_name_in_numbered_playbooks(word):
    runbook = read(
        "# Storage runbook\n\n"
        "## 1. Disk full\n\n**Alert:** `DiskFull`\n\n"
        f"### {word}\n\n1. Check `df -h`\n2. Delete old logs\n\n"
        "## 2. CPU high\n\n**Severity:** P1\n\n"
        f"### {word}\n\n1. Look at top\n"
    )
    assert runbook.shape == "numbered playbooks"
    assert [p.title for p in runbook.playbooks] == ["Disk full", "CPU high"]
    assert steps_of(runbook, 0) == [(1, "Check `df -h`", 9), (2, "Delete old logs", 10)]
    assert steps_of(runbook, 1) == [(1, "Look at top", 18)]
    assert runbook.not_understood == []
    assert runbook.warnings == []


@pytest.mark.parametrize("word", STEP_WORDS)
def test_steps_under_another_name_in_a_one_alert_file(word):
    runbook = read(
        "# DiskFull\n\n## Meaning\n\nThe disk is almost full.\n\n"
        f"## {word}\n\n1. Check `df -h`\n2. Delete old logs\n"
    )
    assert runbook.shape == "one playbook per file"
    (playbook,) = runbook.playbooks
    assert (playbook.title, playbook.alerts) == ("DiskFull", ["DiskFull"])
    assert [s.title for s in playbook.context] == ["Meaning"]
    assert steps_of(runbook) == [(1, "Check `df -h`", 9), (2, "Delete old logs", 10)]
    assert runbook.not_understood == []


def test_steps_at_the_playbooks_own_heading_level_belong_to_the_playbook_above():
    runbook = read(
        "# R\n\n## 1. Disk full\n\n**Alert:** `DiskFull`\n\n"
        "## Steps\n\n1. Check df\n2. Delete logs\n\n"
        "## 2. CPU high\n\n**Alert:** `CpuHigh`\n\n### Steps\n\n1. top\n"
    )
    assert [p.title for p in runbook.playbooks] == ["Disk full", "CPU high"]
    assert steps_of(runbook, 0) == [(1, "Check df", 9), (2, "Delete logs", 10)]
    assert steps_of(runbook, 1) == [(1, "top", 18)]
    assert runbook.sections == []
    assert runbook.not_understood == [
        "runbook.md:7: 'Steps' is at the same heading level as the playbooks: read as "
        "part of the playbook above it ('1. Disk full')"
    ]


# --- numbered headings that are not playbooks -------------------------------------------


def test_a_numbered_appendix_is_kept_as_a_section_of_the_runbook():
    runbook = read(
        "# R\n\n"
        "## 1. Disk full\n\n**Alert:** `DiskFull`\n\n### Steps\n\n1. a\n\n"
        "## 2. CPU high\n\n**Alert:** `CpuHigh`\n\n### Steps\n\n1. b\n\n"
        "## 3. Memory\n\n**Severity:** high\n\n### Steps\n\n1. c\n\n"
        "## 4. Appendix\n\nGlossary text.\n"
    )
    assert runbook.shape == "numbered playbooks"
    assert [(p.number, p.title) for p in runbook.playbooks] == [
        (1, "Disk full"),
        (2, "CPU high"),
        (3, "Memory"),
    ]
    assert [(s.title, s.markdown, s.line) for s in runbook.sections] == [
        ("4. Appendix", "Glossary text.", 27)
    ]
    assert runbook.not_understood == [
        "runbook.md:27: '4. Appendix' is numbered like a playbook but has no alert, "
        "severity or Steps section: kept as a section of the runbook, not a playbook"
    ]


def test_a_file_of_numbered_chapters_is_one_playbook_whose_steps_they_are():
    runbook = read(
        "# Queue stuck\n\n## Symptoms\n\nConsumers are slow.\n\n"
        "## 1. Check the consumers\n\nLook at the consumer lag.\n\n"
        "## 2. Restart the consumers\n\n```bash\nsystemctl restart consumer\n```\n"
    )
    assert runbook.shape == "one playbook per file, numbered chapters as steps"
    (playbook,) = runbook.playbooks
    assert playbook.title == "Queue stuck"
    assert [s.title for s in playbook.context] == ["Symptoms"]
    assert steps_of(runbook) == [
        (1, "Check the consumers", 7),
        (2, "Restart the consumers", 11),
    ]
    assert [c.text for c in playbook.steps[1].commands] == [
        "systemctl restart consumer"
    ]
    assert runbook.not_understood == []


def test_a_missing_chapter_number_is_listed():
    runbook = read(
        "# Queue stuck\n\n## 1. Check\n\nLook.\n\n## 2. Restart\n\nRestart.\n\n"
        "## 4. Escalate\n\nCall.\n"
    )
    assert [s.title for s in runbook.playbooks[0].steps] == [
        "Check",
        "Restart",
        "Escalate",
    ]
    assert runbook.not_understood == [
        "runbook.md:11: step numbers jump from 2 to 4: read as step 3 (is a step "
        "missing?)"
    ]


@pytest.mark.parametrize(
    "prefix", ["🔥 ", "Playbook ", "Runbook ", "Scenario "], ids=str.strip
)
def test_an_emoji_or_a_word_before_the_number(prefix):
    separator = ":" if prefix.strip().isalpha() else "."
    runbook = read(
        f"# R\n\n## {prefix}1{separator} Disk full\n\n**Alert:** `DiskFull`\n\n"
        "### Steps\n\n1. a\n\n"
        f"## {prefix}2{separator} CPU high\n\n**Alert:** `CpuHigh`\n\n### Steps\n\n1. b\n"
    )
    assert runbook.shape == "numbered playbooks"
    assert [(p.number, p.title, p.alerts) for p in runbook.playbooks] == [
        (1, "Disk full", ["DiskFull"]),
        (2, "CPU high", ["CpuHigh"]),
    ]
    assert runbook.not_understood == []


# --- most playbooks without steps --------------------------------------------------------

PARTIAL = (
    "# R\n\n"
    "## 1. Disk full\n\n**Alert:** `DiskFull`\n\n### Steps\n\n1. Delete logs\n\n"
    "## 2. CPU high\n\n**Alert:** `CpuHigh`\n\n### Diagnosis\n\nLook at top.\n\n"
    "## 3. Memory\n\n**Alert:** `MemHigh`\n\n### Diagnosis\n\nLook at free.\n"
)


def test_most_playbooks_without_steps_is_refused_with_the_allow_partial_hint():
    error = refusal(PARTIAL)
    assert (error.line, error.message) == (
        11,
        "2 of 3 playbooks have no steps (the first: 'CPU high'): no numbered Steps "
        "list, and no Mitigation, Resolution, Remediation or Procedure section with "
        "anything in it. Import with --allow-partial to accept playbooks without steps",
    )
    assert error.where() == "runbook.md:11"


def test_allow_partial_accepts_them_and_lists_each():
    runbook = read(PARTIAL, allow_partial=True)
    assert [(p.title, len(p.steps)) for p in runbook.playbooks] == [
        ("Disk full", 1),
        ("CPU high", 0),
        ("Memory", 0),
    ]
    assert runbook.playbooks[1].diagnosis == "Look at top."
    assert runbook.not_understood == [
        "runbook.md:11: playbook 'CPU high' has no steps (no Steps, Mitigation, "
        "Resolution, Remediation or Procedure section)",
        "runbook.md:19: playbook 'Memory' has no steps (no Steps, Mitigation, "
        "Resolution, Remediation or Procedure section)",
    ]


def test_a_minority_without_steps_is_accepted_and_listed():
    runbook = read(
        PARTIAL.replace("### Diagnosis\n\nLook at free.", "### Steps\n\n1. free -m")
    )
    assert [len(p.steps) for p in runbook.playbooks] == [1, 0, 1]
    assert runbook.not_understood == [
        "runbook.md:11: playbook 'CPU high' has no steps (no Steps, Mitigation, "
        "Resolution, Remediation or Procedure section)"
    ]


# --- severities ----------------------------------------------------------------------------


def with_severity(severity: str) -> str:
    return (
        "# R\n\n## 1. Disk full\n\n**Alert:** `DiskFull`\n"
        f"**Severity:** {severity}\n\n### Steps\n\n1. Delete logs\n"
    )


@pytest.mark.parametrize(
    ("written", "level", "kept"),
    [
        ("P1", "critical", "P1"),
        ("SEV-1", "critical", "SEV-1"),
        ("critical", "critical", "critical"),
        ("`critical`", "critical", "critical"),  # the backticks are markup
        ("🔴 High", "high", "🔴 High"),
        ("Sev-2", "warning", "Sev-2"),
        ("P4", "info", "P4"),
    ],
)
def test_severities_map_to_a_level_and_keep_the_text(written, level, kept):
    runbook = read(with_severity(written))
    (playbook,) = runbook.playbooks
    assert (playbook.severity, playbook.severity_text) == (level, kept)
    assert runbook.not_understood == []


def test_an_unknown_severity_is_kept_as_written_with_no_level_and_listed():
    runbook = read(with_severity("Urgentish"))
    (playbook,) = runbook.playbooks
    assert (playbook.severity, playbook.severity_text) == ("", "Urgentish")
    assert runbook.not_understood == [
        "runbook.md:6: severity 'Urgentish' of 'Disk full' is not one the console "
        "knows (critical, high, warning, info, P1, SEV-2...): kept as written, with no "
        "level; an Admin can add it under Severity aliases"
    ]


def test_an_admin_alias_gives_the_unknown_word_a_level():
    runbook = read(with_severity("Urgentish"), severities={"urgentish": "high"})
    (playbook,) = runbook.playbooks
    assert (playbook.severity, playbook.severity_text) == ("high", "Urgentish")
    assert runbook.not_understood == []
    # An Admin's alias wins over a built-in one of the same word.
    overridden = read(with_severity("P1"), severities={"p1": "high"})
    assert overridden.playbooks[0].severity == "high"


@pytest.mark.django_db
def test_an_admin_alias_in_the_database_is_used_by_the_dry_run():
    from incidents.models import SeverityAlias
    from incidents.services import check_runbook

    source = with_severity("🟠 Urgentish")
    before = check_runbook(source=source, source_name=NAME)
    assert (before.playbooks[0].severity, before.playbooks[0].severity_text) == (
        "",
        "🟠 Urgentish",
    )
    assert len(before.not_understood) == 1
    alias = SeverityAlias(alias="  Urgentish ", level="high")
    alias.full_clean()
    alias.save()
    after = check_runbook(source=source, source_name=NAME)
    assert (after.playbooks[0].severity, after.playbooks[0].severity_text) == (
        "high",
        "🟠 Urgentish",
    )
    assert after.not_understood == []


@pytest.mark.django_db
def test_a_new_alias_makes_an_unchanged_file_a_new_revision():
    # The same text, read with a new alias, is read differently: re-importing it
    # must not answer "unchanged" and keep the old, level-less reading.
    from incidents.actors import Actor
    from incidents.models import SeverityAlias
    from incidents.services import import_runbook

    source = with_severity("🟠 Urgentish")
    importer = Actor.system("manage.py")
    first = import_runbook(source=source, source_name=NAME, actor=importer)
    again = import_runbook(source=source, source_name=NAME, actor=importer)
    assert (first.created, again.created) == (True, False)
    SeverityAlias.objects.create(alias="urgentish", level="high")
    third = import_runbook(source=source, source_name=NAME, actor=importer)
    assert third.created and third.runbook.revision == 2
    assert third.runbook.playbooks.get().severity == "high"


# --- alerts ---------------------------------------------------------------------------------


def test_several_alert_names_without_backticks_are_all_read():
    runbook = read(
        "# R\n\n## 1. Disk full\n\n**Alerts:** DiskFull, DiskAlmostFull\n\n"
        "### Steps\n\n1. Delete logs\n"
    )
    assert runbook.playbooks[0].alerts == ["DiskFull", "DiskAlmostFull"]
    assert runbook.not_understood == []


def test_alert_name_a_or_b_in_plain_text_reads_both():
    runbook = read(
        "## Disk filling up\nAlert Name: DiskFull or DiskAlmostFull\n\n"
        "## Mitigation\n\n1. Delete logs\n"
    )
    (playbook,) = runbook.playbooks
    assert playbook.title == "Disk filling up"
    assert playbook.alerts == ["DiskFull", "DiskAlmostFull"]


def test_alerts_in_backticks_are_read_and_a_condition_is_not_a_name():
    runbook = read(
        "# R\n\n## 1. Errors\n\n**Alert:** `HighErrorRate` or `ErrorBudgetBurn` "
        "(rate > 5%)\n\n### Steps\n\n1. a\n"
    )
    assert runbook.playbooks[0].alerts == ["HighErrorRate", "ErrorBudgetBurn"]


# --- severities and alerts in tables ------------------------------------------------------


def test_a_two_column_key_value_table_with_severity_first():
    # A Markdown table needs a header row: a key/value table's first pair is it.
    runbook = read(
        "# R\n\n## 1. Disk full\n\n"
        "| Severity | Critical |\n|---|---|\n| Alert | `DiskFull` |\n\n"
        "### Steps\n\n1. a\n"
    )
    (playbook,) = runbook.playbooks
    assert (playbook.severity, playbook.severity_text) == ("critical", "Critical")
    assert playbook.alerts == ["DiskFull"]
    assert runbook.not_understood == []


def test_a_field_value_table_is_read():
    runbook = read(
        "# R\n\n## 1. Disk full\n\n"
        "| Field | Value |\n|---|---|\n| Alert | `DiskFull` |\n| Severity | SEV-1 |\n\n"
        "### Steps\n\n1. a\n"
    )
    (playbook,) = runbook.playbooks
    assert (playbook.severity, playbook.severity_text) == ("critical", "SEV-1")
    assert playbook.alerts == ["DiskFull"]


def test_a_table_with_alert_and_severity_columns_is_read():
    runbook = read(
        "# DiskFull\n\n## Impact\n\n"
        "| Alert | Severity |\n|---|---|\n| `DiskFull` | P2 |\n\n"
        "## Mitigation\n\n1. Delete logs\n"
    )
    (playbook,) = runbook.playbooks
    assert playbook.alerts == ["DiskFull"]
    assert (playbook.severity, playbook.severity_text) == ("warning", "P2")
    # The table itself stays in the Impact text, as written.
    assert "| `DiskFull` | P2 |" in playbook.context[0].markdown


# --- front matter and HTML comments ---------------------------------------------------------


def test_front_matter_gives_title_alerts_and_severity_and_is_not_shown():
    runbook = read(
        "---\ntitle: Disk is full\nalerts: [DiskFull, DiskAlmostFull]\n"
        "severity: SEV-2\nweight: 20\n---\n\n# disk\n\n## Mitigation\n\n1. Delete logs\n"
    )
    (playbook,) = runbook.playbooks
    assert (runbook.title, playbook.title) == ("Disk is full", "Disk is full")
    assert playbook.alerts == ["DiskFull", "DiskAlmostFull"]
    assert (playbook.severity, playbook.severity_text) == ("warning", "SEV-2")
    assert steps_of(runbook) == [(1, "Delete logs", 12)]  # lines keep their numbers
    assert "weight" not in shown(runbook) and "---" not in shown(runbook)


def test_front_matter_aliases_are_alerts_too():
    runbook = read(
        "---\nalert: DiskFull\naliases: DiskAlmostFull, DiskFullSoon\n---\n\n"
        "# Disk\n\n## Mitigation\n\n1. Delete logs\n"
    )
    assert runbook.playbooks[0].alerts == ["DiskFull", "DiskAlmostFull", "DiskFullSoon"]


def test_malformed_front_matter_is_refused_naming_its_line():
    error = refusal(
        "---\ntitle: Disk\nalerts: [DiskFull\nseverity: high\n---\n\n# Disk\n\n"
        "## Mitigation\n\n1. a\n"
    )
    assert (error.line, error.where()) == (4, "runbook.md:4")
    assert error.message == (
        "the front matter cannot be read: expected ',' or ']', but got ':'"
    )


def test_front_matter_that_is_not_key_value_fields_is_refused():
    error = refusal("---\n- a\n- b\n---\n\n# Disk\n\n## Mitigation\n\n1. a\n")
    assert (error.line, error.message) == (
        2,
        "the front matter between the '---' lines is not a list of 'key: value' fields",
    )


def test_html_comments_are_not_runbook_text():
    runbook = read(
        "<!-- Licensed under Apache-2.0 -->\n# DiskFull\n\n## Meaning\n\n"
        "Disk <!-- internal: page Bob --> almost full.\n\n## Mitigation\n\n"
        "<!--DS: downstream text\nover two lines-->\n"
        "1. Delete logs <!-- secret note -->\n2. Grow the disk\n\n"
        "```bash\n# <!-- in code, kept -->\ndf -h\n```\n"
    )
    (playbook,) = runbook.playbooks
    assert [s.title for s in playbook.steps] == ["Delete logs", "Grow the disk"]
    text = shown(runbook)
    for hidden in ("Licensed", "page Bob", "downstream", "over two lines", "secret"):
        assert hidden not in text
    assert "<!-- in code, kept -->" in text  # a code block is shown as written
    assert runbook.not_understood == []


# --- step headings --------------------------------------------------------------------------


def test_numbered_sub_headings_under_mitigation_are_steps():
    runbook = read(
        "# DiskFull\n\n## Mitigation\n\nIt depends.\n\n"
        "### 1. Check the disk\n\n```bash\ndf -h\n```\n\n### 2. Delete logs\n\nrm them.\n"
    )
    (playbook,) = runbook.playbooks
    assert steps_of(runbook) == [(1, "Check the disk", 7), (2, "Delete logs", 13)]
    assert [c.text for c in playbook.steps[0].commands] == ["df -h"]
    assert [(s.title, s.markdown) for s in playbook.context] == [
        ("Mitigation", "It depends.")
    ]
    assert runbook.not_understood == []


@pytest.mark.parametrize("level", ["##", "###"])
@pytest.mark.parametrize("separator", [":", " -", "."])
def test_step_n_headings_are_steps(level, separator):
    runbook = read(
        f"# DiskFull\n\n{level} Step 1{separator} Check the disk\n\ndf\n\n"
        f"{level} Step 2{separator} Delete logs\n\nrm\n"
    )
    assert steps_of(runbook) == [(1, "Check the disk", 3), (2, "Delete logs", 7)]


def test_options_are_steps_listed_as_alternatives():
    runbook = read(
        "# DiskFull\n\n## Mitigation\n\n### Option 1: Delete logs\n\nrm\n\n"
        "### Option 2: Grow the disk (use with caution)\n\ngrow\n"
    )
    assert steps_of(runbook) == [
        (1, "Option 1: Delete logs", 5),
        (2, "Option 2: Grow the disk (use with caution)", 9),
    ]
    assert runbook.not_understood == [
        "runbook.md:3: 'Mitigation' offers 2 options: each is a step, but they are "
        "alternatives, not a sequence"
    ]


def test_mitigation_prose_is_read_block_by_block_and_listed():
    runbook = read(
        "# DiskFull\n\n## Mitigation\n\nDelete the old logs first.\n\n"
        "```bash\ndf -h\n```\n\nThen grow the disk.\n"
    )
    assert steps_of(runbook) == [
        (1, "Delete the old logs first.", 5),
        (2, "Then grow the disk.", 11),
    ]
    assert [c.text for c in runbook.playbooks[0].steps[0].commands] == ["df -h"]
    assert runbook.not_understood == [
        "runbook.md:3: 'Mitigation' of 'DiskFull' has no numbered list: each of its 2 "
        "blocks read as a step"
    ]


def test_a_bullet_list_under_mitigation_is_one_step_per_item_without_the_bullet():
    runbook = read(
        "# DiskFull\n\n## Mitigation\n\n- Delete logs\n- Grow the disk\n  carefully\n"
    )
    assert [(s.title, s.body) for s in runbook.playbooks[0].steps] == [
        ("Delete logs", ""),
        ("Grow the disk", "carefully"),
    ]
    assert runbook.not_understood == [
        "runbook.md:3: 'Mitigation' of 'DiskFull' has no numbered list: each of its 2 "
        "blocks read as a step"
    ]


def test_an_unknown_section_is_context_and_listed():
    runbook = read(
        "# DiskFull\n\n## Meaning\n\nFull.\n\n## Capacity planning\n\nBuy disks.\n\n"
        "## Mitigation\n\n1. Delete logs\n"
    )
    (playbook,) = runbook.playbooks
    assert [s.title for s in playbook.context] == ["Meaning", "Capacity planning"]
    assert runbook.not_understood == [
        "runbook.md:7: section 'Capacity planning' of 'DiskFull' is not one the console "
        "knows (Meaning, Impact, Symptoms, Diagnosis, Mitigation, Steps...): shown as "
        "context"
    ]


def test_an_sql_fence_of_configuration_lines_is_copied_not_run():
    runbook = read(
        "# KubePostgresWal\n\n## Mitigation\n\n1. Set in postgresql.conf:\n\n"
        "   ```sql\n   wal_level = replica  # for the standby\n   max_wal_senders = 10\n"
        "   ```\n\n2. Check it:\n\n   ```sql\n   SHOW wal_level;\n   ```\n",
    )
    config, show = [c for s in runbook.playbooks[0].steps for c in s.commands]
    assert (config.language, config.kind, config.executor) == ("ini", "manual", None)
    assert config.text.startswith("wal_level = replica")
    assert (show.language, show.kind, show.executor) == ("sql", "probe", "sql")
