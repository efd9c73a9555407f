"""A simulated volume for the runbook's `df -h` and `du -sh /var/lib/postgresql/data`.

Filling the worker's real disk is not acceptable, so the stack describes the
database host's volumes in root/disk/volumes.json and the console's disk family
reads that file instead of the worker's disks when TARGET_DISK_VOLUMES names it.
The data volume's used space is a fixed part plus the real size, measured at each
`df`, of the target database's files: DROP TABLE really frees space on it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from . import database

DATA_MOUNT = "/var/lib/postgresql/data"
HEALTHY_FREE = 0.45  # the volume's share left free right after seeding
GIB = 1024**3


def report_path(root: Path) -> Path:
    return root / "disk" / "volumes.json"


def measured(path: Path) -> int:
    """Bytes allocated under `path`, as du counts them."""
    total = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                continue
    return total


def read(root: Path) -> dict:
    return json.loads(report_path(root).read_text())


def write(root: Path, report: dict) -> None:
    path = report_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, path)


def ensure_volume(root: Path, socket: str) -> None:
    """Describe the volumes once, sized so the healthy database leaves 45 % free."""
    if report_path(root).exists():
        return
    files = database.database_dir(root, socket)
    size = int(measured(files) / (1 - HEALTHY_FREE))
    write(
        root,
        {
            "host": "yomira-db-1 (Yomira in a box)",
            "volumes": [
                {"mount": "/", "device": "/dev/vda1", "size": 20 * GIB,
                 "used": int(6.3 * GIB), "measure": []},
                {"mount": DATA_MOUNT, "device": "/dev/vdb", "size": size,
                 "used": 0, "measure": [str(files)]},
            ],
            # What `du` of a path on the database host measures here.
            "paths": {DATA_MOUNT: str(database.pgdata(root).resolve())},
        },
    )  # fmt: skip


def data_volume(report: dict) -> dict:
    return next(v for v in report["volumes"] if v["mount"] == DATA_MOUNT)


def free_fraction(root: Path) -> float:
    volume = data_volume(read(root))
    used = volume["used"] + sum(measured(Path(p)) for p in volume["measure"])
    return 1 - used / volume["size"]


def fill(root: Path, free_percent: float) -> str:
    """Other files on the volume (WAL kept for a stuck replica, server logs) take
    what leaves `free_percent` free beside the database's real files."""
    report = read(root)
    volume = data_volume(report)
    files = sum(measured(Path(p)) for p in volume["measure"])
    volume["used"] = max(0, int(volume["size"] * (1 - free_percent / 100)) - files)
    volume["filled_by"] = "pg_wal retained for a stuck replication slot, server logs"
    write(root, report)
    return (
        f"{DATA_MOUNT}: {volume['used'] // 1024**2} MB of other files beside "
        f"{files // 1024**2} MB of database files: {free_percent:g} % free"
    )


def unfill(root: Path) -> str:
    report = read(root)
    volume = data_volume(report)
    volume["used"] = 0
    volume.pop("filled_by", None)
    write(root, report)
    return f"{DATA_MOUNT}: only the database's files left on it"
