"""The stack's state file, root/state.json: pids, ports and tokens, shared by every
process that touches the stack (the web process, a worker, a test). Written
atomically under an exclusive lock, so two processes never lose each other's part."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def write(root: Path, state: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".state.", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(state, f, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)  # it holds the control and admin tokens
    os.replace(tmp, root / "state.json")


@contextlib.contextmanager
def locked(root: Path) -> Iterator[dict[str, Any]]:
    """The state to change in place; written back when the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "state.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = read(root)
            yield state
            write(root, state)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive(root: Path, name: str) -> Iterator[None]:
    """One process at a time (two processes starting the stack at once would
    each spawn the same part)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_secrets(root: Path) -> dict[str, Any]:
    """Tokens made once and kept: the console's environment stays valid across
    restarts of the stack."""
    with locked(root) as state:
        state.setdefault("control_token", secrets.token_urlsafe(24))
        state.setdefault("admin_token", "yomira-admin-" + secrets.token_hex(12))
        state.setdefault("aws_access_key_id", "AKIA" + secrets.token_hex(8).upper())
        state.setdefault("aws_secret_access_key", secrets.token_urlsafe(30))
        state.setdefault("parts", {})
        state.setdefault("faults", {})
        return dict(state)
