"""The layering of DESIGN.md is enforced by import-linter (`lint-imports`, run by
.ci/run and `make lint`). These tests show the contracts hold on the real tree, and
that each one fails when it is broken on purpose, in a copy of the code: a contract
that cannot fail would guard nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")
# Every root package the contracts name: the copy must not fall back on the
# installed tree (an editable install knows only the packages it was made with).
PACKAGES = (
    "yomira_console",
    "drills",
    "alerts",
    "notify",
    "incidents",
    "probes",
    "sandbox",
)


def lint(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache", "--config", str(where / "pyproject.toml")],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The packages and the configuration, to break without harm."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_real_tree_keeps_every_contract() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "0 broken" in done.stdout or "broken" not in done.stdout.split("Contracts:")[-1]
    )


def test_the_copy_is_kept_before_it_is_broken(copy: Path) -> None:
    done = lint(copy)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("module", "line", "contract", "reported"),
    [
        (
            "probes/text.py",
            "import django.conf  # deliberate",
            "The engine and the runbook parser are plain Python",
            "probes.text -> django",
        ),
        (
            "incidents/runbook/slugs.py",
            "from django.utils.text import slugify as _  # deliberate",
            "The engine and the runbook parser are plain Python",
            "incidents.runbook.slugs -> django",
        ),
        (
            "probes/families/sql/recognise.py",
            "from probes.families.http import recognise as _  # deliberate",
            "Command families are independent of each other",
            "probes.families.sql.recognise -> probes.families.http.recognise",
        ),
        (
            "probes/targets.py",
            "import incidents.models  # deliberate",
            "One direction between the apps",
            "probes.targets -> incidents.models",
        ),
        (
            "incidents/models.py",
            "from incidents import services as _  # deliberate",
            "Inside incidents",
            "incidents.models -> incidents.services",
        ),
    ],
)
def test_a_deliberate_violation_fails_its_contract(
    copy: Path, module: str, line: str, contract: str, reported: str
) -> None:
    append(copy / module, line)
    done = lint(copy)
    assert done.returncode != 0
    broken = done.stdout.split("Broken contracts")[-1]
    assert contract in broken
    assert reported in broken


def test_a_module_with_no_place_in_the_layers_is_refused(copy: Path) -> None:
    (copy / "incidents" / "shortcuts.py").write_text('"""Somewhere new."""\n')
    done = lint(copy)
    assert done.returncode != 0
    assert "incidents.shortcuts" in done.stdout + done.stderr
