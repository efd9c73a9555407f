"""What every family's runner shares: the run context (timeouts, output cap), the
wall-clock deadline and the result. Runners never raise past the task: a failure is a
Result a tired responder can read."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import redaction


@dataclass
class Context:
    """Limits for one run. Every external call must finish before Celery's soft
    time limit, so the worker can still record the outcome."""

    connect_timeout: float = 3.0
    timeout: float = 15.0
    output_cap: int = 64 * 1024
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return max(0.1, self.timeout - (time.monotonic() - self.started))

    @property
    def deadline(self) -> float:
        """The monotonic time by which the whole call must be over."""
        return self.started + self.timeout


class Deadline:
    """One wall-clock deadline for a whole call. Client libraries' timeouts are per
    connect or per read (a target trickling a byte every 0.2 s never trips them),
    so at the deadline a timer runs what each executor registered: shut a socket
    down, cancel a query. The blocked call then fails at once, and the executor,
    seeing `expired`, reports a timeout with whatever it already had.

    with Deadline(ctx) as deadline:
        deadline.on_expiry(lambda: shutdown(sock))
    """

    def __init__(self, ctx: Context, *, grace: float = 0.0) -> None:
        # `grace`: when a library's own timeout is set to the same deadline, let it
        # fire first (its message is clearer); the timer is the backstop.
        self.at = ctx.deadline + grace
        self.expired = False
        self._actions: list[Callable[[], object]] = []
        self.done = False
        self._lock = threading.Lock()

    def __enter__(self) -> Deadline:
        _WATCHDOG.watch(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._actions = []  # the call is over: nothing left to cut off
        self.done = True

    def on_expiry(self, action: Callable[[], object]) -> None:
        """Run `action` at the deadline (at once if it has passed)."""
        with self._lock:
            if not self.expired:
                self._actions.append(action)
                return
        _quietly(action)

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            actions, self._actions = self._actions, []
        for action in actions:
            _quietly(action)


class _Watchdog:
    """One thread per process fires every Deadline that is due (a thread per call
    would cost about 0.1 ms on each probe). Started on first use, and again in a
    forked worker child, which does not inherit threads."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Deadline]] = []
        self._wake = threading.Condition()
        self._count = itertools.count()
        self._pid = 0

    def watch(self, deadline: Deadline) -> None:
        with self._wake:
            if self._pid != os.getpid():
                self._pid, self._due = os.getpid(), []
                threading.Thread(
                    target=self._run, daemon=True, name="deadlines"
                ).start()
            heapq.heappush(self._due, (deadline.at, next(self._count), deadline))
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    self._wake.wait(wait)
                _, _, deadline = heapq.heappop(self._due)
            if not deadline.done:
                deadline._fire()


_WATCHDOG = _Watchdog()
# A child must not inherit the parent's lock, possibly held by a thread it lacks.
os.register_at_fork(after_in_child=_WATCHDOG.__init__)


def _quietly(action: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):  # the socket may be closed already
        action()


def within_deadline(
    ctx: Context, call: Callable[[], Result], on_late: Callable[[], Result]
) -> Result:
    """`call()` on a helper thread, its Result if it is back by the deadline, else
    `on_late()`. For clients that offer no socket to shut (boto3): the thread
    finishes by itself, within the client's own per-read timeout. Only for
    read-only probes: an action must not go on after its result was written."""
    outcome: list[Result | BaseException] = []

    def work() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            outcome.append(exc)

    helper = threading.Thread(target=work, daemon=True, name="executor-call")
    helper.start()
    helper.join(max(0.0, ctx.deadline - time.monotonic()))
    if not outcome:
        return on_late()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def shutdown(sock: socket.socket | None) -> None:
    """Make any call blocked on `sock` return now (close() alone does not)."""
    if sock is not None:
        _quietly(lambda: sock.shutdown(socket.SHUT_RDWR))


@dataclass
class Result:
    ok: bool
    summary: str
    output: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    timed_out: bool = False
    # The output as data (probes/tables.py): SQL rows, an HTTP answer's status.
    structured: dict[str, Any] = field(default_factory=dict)


def first_line(exc: BaseException) -> str:
    """An error's first line, for a summary (drivers add context on later lines)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class ParameterError(ValueError):
    """A responder's parameter that cannot be used as given."""


TRIMMED = "\n… output trimmed"
# Room kept for the note, so a capped text (note included) fits the cap and capping
# it again changes nothing.
NOTE_ROOM = 96


def cap(text: str, limit: int, *, note: str | None = None) -> str:
    """Trim to at most `limit` bytes (UTF-8) including a note saying how much was
    cut. `note` forces the cut (the source was cut already, e.g. a response body
    read only up to the cap) and replaces the note's text.

    Redact *before* capping: a secret cut in two by the cap is not recognised."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit and note is None:
        return text
    if note is not None and len(raw) + NOTE_ROOM <= limit:
        return f"{text}{TRIMMED}: {note}"
    kept = raw[: max(0, limit - NOTE_ROOM)].decode("utf-8", "ignore")
    dropped = len(raw) - len(kept.encode("utf-8"))
    return f"{kept}{TRIMMED}: {note or f'{dropped} more bytes not kept'}"


def clip(text: str, ctx: Context, *, note: str | None = None) -> str:
    """What an executor returns as output: redacted, then capped."""
    return cap(redaction.redact(text), ctx.output_cap, note=note)


def table(columns: list[str], rows: list[tuple], limit: int = 200) -> str:
    """A plain-text table, like psql's, for a <pre>."""
    shown = [["" if v is None else str(v) for v in row] for row in rows[:limit]]
    widths = [len(c) for c in columns]
    for row in shown:
        widths = [max(w, min(len(v), 80)) for w, v in zip(widths, row, strict=False)]
    line = " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False))
    out = [line, "-+-".join("-" * w for w in widths)]
    for row in shown:
        out.append(
            " | ".join(v[:80].ljust(w) for v, w in zip(row, widths, strict=False))
        )
    more = f" (first {limit} shown)" if len(rows) > limit else ""
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''}{more})")
    return "\n".join(out)


def substitute(text: str, params: dict[str, str], *, quote=None) -> str:  # noqa: ANN001
    """Put responder parameters into `{name}` and `/:name` places, quoted for where
    they go (URL paths are percent-encoded, so a value cannot add a path or host)."""
    quote = quote or (lambda v: v)

    def brace(m: re.Match) -> str:
        return quote(params[m.group(1)]) if m.group(1) in params else m.group(0)

    text = re.sub(r"(?<![$\w{])\{([A-Za-z_][\w.-]*)\}(?!\})", brace, text)
    return re.sub(
        r"(?<=/):([A-Za-z_]\w*)",
        lambda m: quote(params[m.group(1)]) if m.group(1) in params else m.group(0),
        text,
    )


def apply_filter(text: str, rule: dict | None) -> str:
    """The lines a `| grep` after the command would have kept. The pattern is the
    runbook's own (imported by an admin), applied to what the command printed."""
    if not rule:
        return text
    pattern = rule["pattern"] if rule.get("regex") else re.escape(rule["pattern"])
    flags = re.I if rule.get("ignore_case") else 0
    keep = [
        ln
        for ln in text.splitlines()
        if bool(re.search(pattern, ln, flags)) != bool(rule.get("invert"))
    ]
    return "\n".join(keep)
