"""The migration files a command's `-path` names, read from the worker's checkout
of the application repository (TARGET_MIGRATIONS_ROOT).

The path is the runbook's, resolved under that root and never outside it: an
absolute path, `..` or a symlink that leads out is refused, so a runbook cannot
make the worker read (or run as SQL) a file elsewhere on its disk. Names follow
golang-migrate's file source: `NNNNNN_title.up.sql` / `.down.sql`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ... import targets
from ...targets import TargetMissing

ROOT = "MIGRATIONS_ROOT"
# golang-migrate's source.DefaultParse; other names in the folder are skipped.
NAME = re.compile(r"^([0-9]+)_(.*)\.(down|up)\.(.*)$")
# A migration is read whole into memory and sent as one query.
MAX_FILE_BYTES = 8 * 1024 * 1024


class RootMissing(TargetMissing):
    """TARGET_MIGRATIONS_ROOT is not set: said with what it must point to."""

    def __init__(self) -> None:
        super().__init__([ROOT])
        self.args = (
            f"Not configured: set {targets.PREFIX}{ROOT} in the worker's environment "
            "to the worker's checkout of the application repository (the command's "
            "-path is read under it).",
        )


class SourceError(Exception):
    """The command's migration files cannot be read: said in words."""


@dataclass(frozen=True)
class File:
    version: int
    title: str
    path: Path  # resolved, inside the root
    shown: str  # relative to the root, for people

    def body(self) -> str:
        if self.path.stat().st_size > MAX_FILE_BYTES:
            raise SourceError(f"{self.shown} is larger than 8 MB: run it by hand.")
        return self.path.read_text(encoding="utf-8")


@dataclass
class Migrations:
    """The folder's files by version and direction (golang-migrate's source)."""

    folder: str  # as the runbook wrote it
    up: dict[int, File] = field(default_factory=dict)
    down: dict[int, File] = field(default_factory=dict)

    @property
    def versions(self) -> list[int]:
        return sorted(set(self.up) | set(self.down))

    def first(self) -> int | None:
        return self.versions[0] if self.versions else None

    def next(self, version: int) -> int | None:
        return next((v for v in self.versions if v > version), None)

    def prev(self, version: int) -> int | None:
        return next((v for v in reversed(self.versions) if v < version), None)

    def has(self, version: int) -> bool:
        return version in self.up or version in self.down


def folder_of(spec: dict) -> str:
    """The folder the command names: `-path DIR` or `-source file://DIR`."""
    raw = (spec.get("path") or "").strip()
    if not raw:
        raise SourceError(
            "The command names no -path: golang-migrate needs the migrations folder."
        )
    if "://" in raw:
        scheme, _, rest = raw.partition("://")
        if scheme != "file":
            raise SourceError(
                f"Only file sources run here (-source {scheme}://…): "
                "use -path with a folder of the checkout."
            )
        raw = rest
    return raw


def resolve(spec: dict) -> tuple[Path, Path, str]:
    """(the root, resolved; the folder, resolved inside it; the folder as written)."""
    folder = folder_of(spec)
    setting = targets.value(ROOT)
    if setting is None:
        raise RootMissing()
    written = PurePosixPath(folder)
    if written.is_absolute() or folder.startswith("~"):
        raise SourceError(
            f"Refused: -path {folder} is absolute; only a folder relative to "
            f"{targets.PREFIX}{ROOT} is read."
        )
    if ".." in written.parts:
        raise SourceError(
            f"Refused: -path {folder} goes up with '..'; only folders inside "
            f"{targets.PREFIX}{ROOT} are read."
        )
    root = Path(setting)
    if not root.is_dir():
        raise SourceError(
            f"{targets.PREFIX}{ROOT} is not a folder on this worker: point it at "
            "the checkout of the application repository."
        )
    root = root.resolve()
    found = (root / written).resolve()
    if not found.is_relative_to(root):  # a symlink on the way leads out
        raise SourceError(
            f"Refused: -path {folder} leads outside {targets.PREFIX}{ROOT} "
            "(through a symlink)."
        )
    if not found.is_dir():
        raise SourceError(
            f"No folder {folder} in {targets.PREFIX}{ROOT}: is the checkout there "
            "and up to date?"
        )
    return root, found, folder


def read(spec: dict) -> Migrations:
    """The migration files of the command's folder."""
    root, folder_path, folder = resolve(spec)
    found = Migrations(folder)
    for entry in sorted(folder_path.iterdir()):
        m = NAME.match(entry.name)
        if not m:
            continue
        real = entry.resolve()
        if not real.is_relative_to(root):
            raise SourceError(
                f"Refused: {folder}/{entry.name} is a symlink leading outside "
                f"{targets.PREFIX}{ROOT}."
            )
        if not real.is_file():
            continue
        version, title, direction = int(m.group(1)), m.group(2), m.group(3)
        files = found.up if direction == "up" else found.down
        if version in files:  # golang-migrate refuses these too
            raise SourceError(
                f"Two {direction} migrations for version {version} in {folder}: "
                f"{files[version].path.name} and {entry.name}."
            )
        shown = str(PurePosixPath(folder) / entry.name)
        files[version] = File(version, title, real, shown)
    if not found.versions:
        raise SourceError(f"No migration files (NNN_name.up.sql) in {folder}.")
    return found
