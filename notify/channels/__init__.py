"""The channel kinds, listed once (as probes.families lists command families). A
kind's module is imported on first use and exposes `KIND` (notify.channels.base.
Kind): the events it tells about and how it sends.

To add a kind: a module here, one line below, and its choice on Channel.Kind
(tests/notify/test_channels.py checks the two agree)."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from .base import Kind

KINDS: dict[str, str] = {
    "slack": "notify.channels.slack",
    "pagerduty": "notify.channels.pagerduty",
    "email": "notify.channels.email",
}


@cache
def kind(name: str) -> Kind:
    if name not in KINDS:
        raise KeyError(f"no channel kind named {name!r} (known: {', '.join(KINDS)})")
    return import_module(KINDS[name]).KIND
