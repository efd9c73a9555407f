"""`df` and `du` equivalents on the worker host."""

from __future__ import annotations

import os
import shutil
import time

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
