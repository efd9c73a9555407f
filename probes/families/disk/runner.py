"""`df` and `du` equivalents on the worker host.

When TARGET_DISK_VOLUMES names a volumes file (Yomira in a box writes one), the
commands read the database host it describes instead of the worker's disks: each
volume's size, a fixed used part, and directories whose real size is measured at
each run; `du` of a path on that host measures the directory it maps to. Off
unless the variable is set."""

from __future__ import annotations

import json
import os
import shutil
import time

from ... import targets
from ...runtime import Context, Result, clip, table, within_deadline

REAL_FILESYSTEMS = {
    "ext2",
    "ext3",
    "ext4",
    "xfs",
    "btrfs",
    "zfs",
    "overlay",
    "tmpfs",
    "vfat",
    "f2fs",
    "nfs",
    "nfs4",
    "virtiofs",
    "9p",
}


def human(size: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if size < 1024 or unit == "T":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}P"


def mounts() -> list[str]:
    seen, found = set(), []
    try:
        with open("/proc/mounts") as f:
            for line in f:
                device, point, fstype = line.split()[:3]
                if fstype in REAL_FILESYSTEMS and device not in seen:
                    seen.add(device)
                    found.append(point)
    except OSError:
        found = ["/"]
    return found or ["/"]


def run(command, params: dict[str, str], ctx: Context) -> Result:  # noqa: ANN001
    spec = command.spec
    # statvfs or a directory listing on a hung network mount blocks in the kernel,
    # where nothing can interrupt it: answer at the deadline (both are read-only).
    return within_deadline(
        ctx,
        lambda: _run(spec, ctx),
        lambda: Result(
            False,
            f"The filesystem did not answer within {ctx.timeout:g} s "
            "(a hung network mount?).",
            timed_out=True,
        ),
    )


def _run(spec: dict, ctx: Context) -> Result:
    if volumes := targets.value("DISK_VOLUMES"):
        return _simulated(volumes, spec, ctx)
    if spec["tool"] == "df":
        return _df(spec.get("paths") or mounts(), ctx)
    return _du(spec.get("paths") or ["."], ctx)


def _df(paths: list[str], ctx: Context) -> Result:
    rows, worst = [], 0.0
    for path in paths:
        try:
            usage = shutil.disk_usage(path)
        except OSError as exc:
            rows.append((path, "?", "?", "?", "?", exc.strerror))
            continue
        pct = usage.used / usage.total * 100 if usage.total else 0
        worst = max(worst, pct)
        rows.append(
            (
                path,
                human(usage.total),
                human(usage.used),
                human(usage.free),
                f"{pct:.0f}%",
                "",
            )
        )
    text = table(["Mounted on", "Size", "Used", "Avail", "Use%", "Error"], rows)
    return Result(
        True,
        f"fullest filesystem {worst:.0f}% used",
        clip(text, ctx),
        {"max_used_percent": round(worst, 1)},
    )


def _du(paths: list[str], ctx: Context) -> Result:
    deadline = time.monotonic() + ctx.remaining() * 0.8
    lines, ok = [], True
    for path in paths:
        if not os.path.exists(path):
            lines.append(f"du: cannot access '{path}': No such file or directory")
            ok = False
            continue
        total, complete = _size(path, deadline)
        lines.append(
            f"{human(total)}\t{path}"
            + ("" if complete else "\t(partial: time ran out)")
        )
    return Result(
        ok, lines[0] if len(lines) == 1 else f"{len(lines)} paths", "\n".join(lines)
    )


def _size(path: str, deadline: float) -> tuple[int, bool]:
    if os.path.isfile(path):
        return os.path.getsize(path), True
    total, stack = 0, [path]
    while stack:
        if time.monotonic() > deadline:
            return total, False
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
        except OSError:
            continue
    return total, True


def _simulated(path: str, spec: dict, ctx: Context) -> Result:
    """`df`/`du` on the host a volumes file describes (see the module docstring)."""
    try:
        with open(path) as f:
            report = json.load(f)
        volumes = report["volumes"]
        mapped = report.get("paths", {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Result(False, f"TARGET_DISK_VOLUMES cannot be read: {exc}")
    deadline = time.monotonic() + ctx.remaining() * 0.8
    if spec["tool"] == "du":
        lines, ok = [], True
        for asked in spec.get("paths") or ["."]:
            real = next(
                (r + asked[len(p) :] for p, r in mapped.items() if asked.startswith(p)),
                None,
            )
            if real is None or not os.path.exists(real):
                lines.append(f"du: cannot access '{asked}': No such file or directory")
                ok = False
                continue
            total, complete = _size(real, deadline)
            lines.append(
                f"{human(total)}\t{asked}" + ("" if complete else "\t(partial)")
            )
        return Result(
            ok, lines[0] if len(lines) == 1 else f"{len(lines)} paths", "\n".join(lines)
        )
    rows, worst = [], 0.0
    for volume in volumes:
        used = int(volume.get("used", 0))
        for directory in volume.get("measure", []):
            used += _size(directory, deadline)[0]
        size = int(volume["size"])
        pct = used / size * 100 if size else 0
        worst = max(worst, pct)
        rows.append(
            (
                volume.get("device", "-"),
                human(size),
                human(used),
                human(max(0, size - used)),
                f"{pct:.0f}%",
                volume["mount"],
            )
        )
    text = table(["Filesystem", "Size", "Used", "Avail", "Use%", "Mounted on"], rows)
    return Result(
        True,
        f"fullest filesystem {worst:.0f}% used ({report.get('host', 'target host')})",
        clip(text, ctx),
        {"max_used_percent": round(worst, 1)},
    )
