"""The executor registry: a name, the module that runs it, and what it may do.
Each module has `run(command, params, ctx) -> Result`."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

REGISTRY: dict[str, str] = {
    "http": "probes.executors.http",
    "sql": "probes.executors.sql",
    "redis": "probes.executors.redis",
    "migrate": "probes.executors.migrate",
    "disk": "probes.executors.disk",
    "s3": "probes.executors.s3",
    "smtp": "probes.executors.smtp",
}


def executor(name: str) -> ModuleType:
    if name not in REGISTRY:
        raise KeyError(f"no executor named {name!r}")
    return import_module(REGISTRY[name])
