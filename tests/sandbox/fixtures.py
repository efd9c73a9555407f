"""The simulated Yomira stack for tests: import into a conftest.py

    from tests.sandbox.fixtures import sandbox_stack  # noqa: F401

`sandbox_stack` is one Stack per test session in a temporary directory, started,
with its TARGET_* exported into os.environ (restored afterwards) and stopped at
the end. A test that breaks something heals it (faults.heal or ALL_HEAL)."""

from __future__ import annotations

import os
from collections.abc import Iterator

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


@pytest.fixture(scope="session")
def sandbox_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("sandbox"))
    try:
        stack.start()
        saved = exported(stack.env())
        try:
            yield stack
        finally:
            restore(saved)
    finally:
        stack.stop()  # also when a part failed to start: nothing left running
