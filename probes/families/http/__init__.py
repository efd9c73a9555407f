"""HTTP requests through httpx: `curl` and request lines. GET/HEAD/OPTIONS are
probes; other methods are actions, previewed as the exact request."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ...binding import ACTION, Binding, CommandLike
from ...family import BaseFamily, Call, Preview
from ...runtime import Context, Result
from ...text import DESTRUCTIVE
from . import preview as http_preview
from . import runner
from .recognise import recognise_curl, recognise_http_line, resolve_http_paths

WORD = re.compile(r"[A-Za-z][A-Za-z-]*")


class HttpFamily(BaseFamily):
    name = "http"
    label = "HTTP request (httpx)"
    programs = frozenset({"curl"})
    languages = frozenset({"http"})
    examples = (
        ("bash", "curl -s https://api.yomira.app/health"),
        ("bash", "curl -X POST https://api.yomira.app/admin/crawler/pause"),
        ("http", "DELETE /admin/users/{userId}/sessions"),
    )

    def recognise(self, call: Call) -> Binding | None:
        return recognise_curl(call.tokens, call.text)

    def recognise_text(self, text: str, language: str) -> Binding | None:
        # A request line is a command wherever it is written: an `http` block, a
        # shell block, inline code or a comment (`# PUT /admin/settings {...}`).
        return recognise_http_line(text)

    def settle(self, bindings: list[Binding]) -> None:
        resolve_http_paths(bindings)

    def run(self, command: CommandLike, params: dict[str, str], ctx: Context) -> Result:
        return runner.run(command, params, ctx)

    def preview(
        self, command: CommandLike, params: dict[str, str], ctx: Context
    ) -> Preview:
        return http_preview.preview(command, params)

    def confirm_word(self, command: CommandLike) -> str:
        # The last real path segment: "revoke-all", "pause", "reset-stuck".
        path = urlsplit(command.spec.get("url", "")).path
        segments = [seg for seg in path.split("/") if WORD.fullmatch(seg)]
        segments = [seg for seg in segments if seg not in {"api", "admin"}]
        return (segments[-1] if segments else command.spec.get("method", "run")).lower()

    def targets(self, command: CommandLike) -> list[str]:
        return []  # its ${NAME}s are in its text (base URL, Authorization header)

    def needs_approval(self, command: CommandLike) -> bool:
        if command.kind != ACTION:
            return False
        if command.spec.get("method") == "DELETE":
            return True
        return bool(DESTRUCTIVE.search(command.spec.get("url") or command.text))


FAMILY = HttpFamily()
