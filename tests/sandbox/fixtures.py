"""The simulated Yomira stack for tests: import into a conftest.py

    from tests.sandbox.fixtures import sandbox_stack  # noqa: F401

`sandbox_stack` is one Stack per test session in a temporary directory, started,
with its TARGET_* exported into os.environ (restored afterwards), stopped and
deleted at the end. A test that breaks something heals it (faults.heal or ALL_HEAL)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.stack import Stack


def exported(env: dict[str, str]) -> dict[str, str | None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    return saved


def restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def scratch() -> Path:
    """A folder of its own for a stack, outside pytest's: each pytest session
    that starts takes the others' access to /tmp/pytest-of-<user> away, and the
    embedded PostgreSQL runs as another user (its checkpointer then panics)."""
    return Path(tempfile.mkdtemp(prefix="sandbox-stack-"))


@pytest.fixture(scope="session")
def sandbox_stack() -> Iterator[Stack]:
    stack = Stack(scratch())
    try:
        stack.start()
        saved = exported(stack.env())
        try:
            yield stack
        finally:
            restore(saved)
    finally:
        stack.destroy()  # also when a part failed to start: nothing left running
