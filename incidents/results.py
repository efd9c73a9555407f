"""A finished run's result as a person acts on it: SQL rows as tables (numbers
right-aligned, long cells folded), an HTTP answer as its status, timing and body
(JSON pretty-printed), and in a table the pickers: a cell whose column names a
parameter of another runnable command of the playbook offers that command, with
the value filled in.

The binding is generic: a column fills a parameter when its name is one the
parameter answers to (probes.commands.parameter_columns: its name, the column the
runbook compares a `$n` with, the resource of a generic `:id`) and the family
accepts the value (a pid must be a number). Everything shown comes from the row's
`result` and `output`, both redacted before they were stored; what is derived here
(a pretty-printed body) is redacted again on the way out."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from probes import commands, redaction
from probes.tables import http_body

from .models import Command, StepExecution

NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
# A cell longer than this, or of several lines, is folded to its first line.
FOLD_AT = 100
# Rows drawn per table (the text output keeps 200, the data up to 1000).
ROWS_SHOWN = 200
# The runs form's limit on a parameter (incidents.services.runs).
MAX_VALUE = 500


@dataclass(frozen=True)
class Offer:
    """A command a cell's value can be handed to."""

    command_id: int
    kind: str  # probe or action
    label: str  # "terminate": the action's confirm word; "run" for a probe
    title: str  # where it stands and what it runs
    params: tuple[tuple[str, str], ...]  # (name, value) as the form posts them


@dataclass
class Cell:
    text: str | None  # None is NULL
    numeric: bool = False  # its column holds numbers only: right-aligned
    offers: list[Offer] = field(default_factory=list)

    @property
    def folded(self) -> bool:
        return self.text is not None and (len(self.text) > FOLD_AT or "\n" in self.text)

    @property
    def short(self) -> str:
        """The folded cell's first line, cut."""
        first = (self.text or "").split("\n", 1)[0]
        return first[:FOLD_AT]


@dataclass(frozen=True)
class Column:
    name: str
    numeric: bool


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Cell]]
    count: int  # rows the statement returned (some may not be kept or drawn)
    status: str

    @property
    def hidden(self) -> int:
        return max(0, self.count - len(self.rows))


@dataclass
class HttpAnswer:
    method: str
    status: int | None
    reason: str
    elapsed_ms: float | None
    headers: list[tuple[str, str]]
    body: str | None  # None: not found in the output (show the output instead)
    json: bool
    truncated: bool

    @property
    def tone(self) -> str:
        if self.status is None:
            return "unknown"
        if self.status < 300:
            return "ok"
        return "redirect" if self.status < 400 else "error"


@dataclass
class Shown:
    """What the result partial draws: tables, an HTTP answer, or neither (the
    output as text)."""

    tables: list[Table] = field(default_factory=list)
    http: HttpAnswer | None = None


# --- pickers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Consumer:
    command: Command
    columns: dict[str, frozenset[str]]  # parameter -> column names that fill it


class Pickers:
    """A playbook's runnable commands that take parameters a result column can
    fill. Built once per drawing of the checklist from the commands it loaded."""

    def __init__(self, playbook_commands: Iterable[Command]) -> None:
        self.consumers = []
        for command in playbook_commands:
            if not command.is_runnable or not command.parameters:
                continue
            columns = commands.parameter_columns(command)
            if set(columns) == set(command.parameters):  # every one can be filled
                self.consumers.append(Consumer(command, columns))

    @classmethod
    def of_playbook(cls, playbook_id: int) -> Pickers:
        return cls(
            Command.objects.filter(playbook_id=playbook_id)
            .exclude(kind=Command.Kind.MANUAL)
            .select_related("step")
        )

    def usable(
        self, can: dict[str, bool], exclude: int | None = None
    ) -> list[Consumer]:
        """Those this person may run (the server checks again on every POST), that
        are configured here, other than the command whose result this is."""
        allowed = {
            Command.Kind.ACTION: bool(can.get("actions")),
            Command.Kind.PROBE: bool(can.get("probes")),
        }
        return [
            c
            for c in self.consumers
            if c.command.pk != exclude
            and allowed.get(c.command.kind, False)
            and not commands.missing_targets(c.command)
        ]


def _offer(consumer: Consumer, values: dict[str, str]) -> Offer | None:
    """The offer for these values, if the command's family accepts them."""
    for value in values.values():
        if not value or len(value) > MAX_VALUE or "\n" in value or "\x00" in value:
            return None
    command = consumer.command
    if commands.parameter_problem(command, values):
        return None
    where = f"step {command.step.number}" if command.step_id else "Diagnosis"
    first = command.text.strip().splitlines()[0][:120]
    is_action = command.kind == Command.Kind.ACTION
    return Offer(
        command_id=command.pk,
        kind=command.kind,
        label=commands.confirm_word(command) if is_action else "run",
        title=f"{where}: {first}",
        params=tuple(sorted(values.items())),
    )


def _place_offers(table: Table, consumers: list[Consumer]) -> None:
    lowered = [c.name.lower() for c in table.columns]
    for consumer in consumers:
        at: dict[str, int] = {}
        for parameter, names in consumer.columns.items():
            index = next((i for i, c in enumerate(lowered) if c in names), None)
            if index is None:
                break
            at[parameter] = index
        else:
            # The offer sits in the cell of the first parameter's column.
            home = min(at.values())
            for row in table.rows:
                values = {p: row[i].text or "" for p, i in at.items()}
                if offer := _offer(consumer, values):
                    row[home].offers.append(offer)


# --- shaping a stored result -----------------------------------------------------


def shown_result(
    execution: StepExecution,
    pickers: Pickers | None = None,
    can: dict[str, bool] | None = None,
    *,
    active: bool = True,
) -> Shown | None:
    """The run's result to draw, or None when the output text says it best.
    Pickers are offered on an active incident only (nothing runs on another)."""
    data = execution.result or {}
    if isinstance(data.get("tables"), list):
        tables = [_table(t) for t in data["tables"] if isinstance(t, dict)]
        if pickers is not None and can and active:
            consumers = pickers.usable(can, exclude=execution.command_id)
            for table in tables:
                _place_offers(table, consumers)
        return Shown(tables=tables) if any(t.columns for t in tables) else None
    if isinstance(data.get("http"), dict):
        return Shown(http=_http(data["http"], execution.output))
    return None


def _table(data: dict) -> Table:
    names = [str(c) for c in data.get("columns") or []]
    rows = [
        [Cell(None if v is None else str(v)) for v in row[: len(names)]]
        for row in (data.get("rows") or [])[:ROWS_SHOWN]
        if isinstance(row, list) and len(row) >= len(names)
    ]
    columns = []
    for i, name in enumerate(names):
        texts = [r[i].text for r in rows if r[i].text is not None]
        numeric = bool(texts) and all(NUMBER.fullmatch(t) for t in texts)
        columns.append(Column(name, numeric))
        for row in rows:
            row[i].numeric = numeric
    count = data.get("count")
    return Table(
        columns=columns,
        rows=rows,
        count=count if isinstance(count, int) else len(rows),
        status=str(data.get("status") or ""),
    )


def _http(data: dict, output: str) -> HttpAnswer:
    headers = [
        (str(h[0]), str(h[1]))
        for h in data.get("headers") or []
        if isinstance(h, list | tuple) and len(h) == 2
    ]
    body = http_body(output, len(headers))
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    pretty = None
    if body is not None and (
        "json" in content_type.lower() or body.lstrip().startswith(("{", "["))
    ):
        pretty = pretty_json(body)
    status = data.get("status")
    elapsed = data.get("elapsed_ms")
    return HttpAnswer(
        method=str(data.get("method") or ""),
        status=status if isinstance(status, int) else None,
        reason=str(data.get("reason") or ""),
        elapsed_ms=elapsed if isinstance(elapsed, int | float) else None,
        headers=headers,
        body=pretty if pretty is not None else body,
        json=pretty is not None,
        truncated=bool(data.get("truncated")),
    )


def pretty_json(text: str) -> str | None:
    """The body indented, or None if it is not JSON (a cut body is not). Decoding
    can reveal what the stored text hid (`\\u0073ecret`), so the value is redacted
    as data (a value under a secret-named key masked whole) and the text again."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    shown = json.dumps(redaction.redact_data(value), indent=2, ensure_ascii=False)
    return redaction.redact(shown)
