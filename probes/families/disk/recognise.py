"""`df` and `du`: disk usage on the worker host, always probes."""

from __future__ import annotations

from ...binding import PROBE, Binding
from ...text import brace_parameters, variables_in


def recognise_disk(tokens: list[str], text: str) -> Binding:
    tool = tokens[0]
    flags = [t for t in tokens[1:] if t.startswith("-")]
    paths = [t for t in tokens[1:] if not t.startswith("-")]
    if tool == "du" and not paths:
        paths = ["."]
    spec = {"tool": tool, "paths": paths, "human": any("h" in f for f in flags)}
    return Binding(PROBE, "disk", brace_parameters(text), variables_in(text), spec)
