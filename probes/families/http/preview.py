"""An HTTP action's exact request, as the runbook writes it, and where it goes."""

from __future__ import annotations

from urllib.parse import urlsplit

from ... import targets
from ...binding import CommandLike
from ...family import Preview
from .runner import cleartext_problem, request_parts, shown_parts


def preview(command: CommandLike, params: dict[str, str]) -> Preview:
    """The request as the runbook writes it (`${NAME}` left as the name, the
    runbook's host), and where TARGET_HOSTS sends it. The real request is built
    only to check it can be (every target configured), and never shown."""
    sent_to = request_parts(command.spec, params)[1]  # TargetMissing if one is unset
    method, url, headers, body = shown_parts(command.spec, params)
    lines = [f"{method} {url}"] + [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines += ["", body]
    facts = []
    runbook_host = urlsplit(url).hostname
    if not command.spec.get("base_variable") and runbook_host:
        base = targets.host_map().get(runbook_host.lower())
        if base:
            facts.append(f"{runbook_host} is reached at {base} (TARGET_HOSTS)")
    elif command.spec.get("base_variable"):
        name = command.spec["base_variable"]
        facts.append(f"${{{name}}} is the base URL in TARGET_{name}")
    if problem := cleartext_problem(command.spec, sent_to):
        facts.append(problem)  # and the run will refuse, for the same reason
    return Preview(False, f"Will send {method} {url}", "\n".join(lines), facts=facts)
