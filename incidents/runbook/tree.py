"""A directory of runbooks (one alert per file, as most teams keep them) read as
one runbook: every Markdown file under it, in path order, numbered across files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from .parse import parse_runbook
from .types import PATH_MAX, NotARunbook, Playbook, Runbook, RunbookError, Section

MARKDOWN_SUFFIXES = (".md", ".markdown")


def is_markdown(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in MARKDOWN_SUFFIXES


def read_directory(root: Path) -> tuple[list[tuple[str, bytes]], list[str]]:
    """Every Markdown file under `root` (relative POSIX paths, sorted) and the
    other files that were not read. Hidden files and folders (`.git`) and symbolic
    links are left out: a link could reach outside the directory."""
    files: list[tuple[str, bytes]] = []
    ignored: list[str] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            full = Path(folder) / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink() or not is_markdown(name):
                ignored.append(rel)
                continue
            files.append((rel, full.read_bytes()))
    files.sort()
    return files, sorted(ignored)


def parse_tree(
    files: Sequence[tuple[str, bytes]],
    *,
    title: str,
    ignored: Sequence[str] = (),
    severities: Mapping[str, str] | None = None,
    allow_partial: bool = False,
) -> Runbook:
    """One runbook from many files. A file that is not a runbook (an index page, a
    README) is skipped and listed; any other error refuses the whole tree, naming
    the file and line. Playbooks are numbered 1..N across the files in path order,
    and each remembers its file (`path`) so an alert's runbook_url finds it."""
    playbooks: list[Playbook] = []
    sections: list[Section] = []
    warnings: list[str] = []
    not_understood: list[str] = []
    reports: list[dict] = []
    digest = hashlib.sha256()
    by_slug: dict[str, Playbook] = {}
    for path, data in sorted(files):
        if len(path) > PATH_MAX:
            raise RunbookError(
                f"the file's path is {len(path)} characters long; at most {PATH_MAX} fit",
                1,
                path[:PATH_MAX],
            )
        file_sha = hashlib.sha256(data).hexdigest()
        digest.update(f"{path}\0{file_sha}\n".encode())
        try:
            parsed = parse_runbook(
                data, path=path, severities=severities, allow_partial=allow_partial
            )
        except NotARunbook as exc:
            reports.append(
                {
                    "path": path,
                    "sha256": file_sha,
                    "playbooks": 0,
                    "skipped": exc.message,
                }
            )
            not_understood.append(f"{path}:{exc.line}: skipped, {exc.message}")
            continue
        renumbered: dict[int, int] = {}
        for playbook in parsed.playbooks:
            renumbered[playbook.number] = len(playbooks) + 1
            playbook.number = len(playbooks) + 1
            if playbook.slug in by_slug:
                other = by_slug[playbook.slug]
                raise RunbookError(
                    f"playbook '{playbook.title}' has the same slug ('{playbook.slug}') "
                    f"as '{other.title}' in {other.path}: two playbooks cannot share a "
                    "page; rename one of them",
                    playbook.line,
                    path,
                )
            by_slug[playbook.slug] = playbook
            playbooks.append(playbook)
        for playbook in parsed.playbooks:
            for step in playbook.steps:
                step.links = [renumbered[n] for n in step.links if n in renumbered]
        sections += [
            Section(f"{s.title} ({path})", s.markdown, s.line) for s in parsed.sections
        ]
        warnings += [f"{path}: {w}" for w in parsed.warnings]
        not_understood += parsed.not_understood
        reports.append(
            {
                "path": path,
                "sha256": file_sha,
                "shape": parsed.shape,
                "playbooks": len(parsed.playbooks),
            }
        )
    for path in ignored:
        digest.update(f"{path}\0-\n".encode())
        not_understood.append(
            f"{path}: not read: only .md and .markdown files are runbooks"
        )
    if not playbooks:
        raise RunbookError(
            f"no runbook found: {len(reports)} Markdown file"
            f"{'' if len(reports) == 1 else 's'}, none of them a runbook"
            + (f" ({len(ignored)} other files not read)" if ignored else ""),
            1,
        )
    return Runbook(
        title=title,
        version="",
        sha256=digest.hexdigest(),
        sections=sections,
        playbooks=playbooks,
        warnings=warnings,
        not_understood=not_understood,
        shape="directory",
        files=reports,
    )
