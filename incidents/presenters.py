"""Shape a playbook for its page: rendered Markdown, command cards where their code
blocks stand, resolved cross-references. Shared by the library and (later) the
incident checklist, which passes its own command template."""

from __future__ import annotations

import json
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, partial
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString

from .models import (
    STEP_PENDING,
    AuditEvent,
    Command,
    Incident,
    Playbook,
    Step,
    StepExecution,
    step_state,
)
from .rendering import CodeBlock, render_inline, render_markdown
from .results import Pickers

COMMAND_BLOCK_TEMPLATE = "incidents/partials/command_block.html"


@dataclass
class Link:
    number: int
    title: str
    url: str


@dataclass
class StepView:
    step: Step
    title: SafeString
    body: SafeString
    links: list[Link]
    inline_commands: list[Command] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)


@dataclass
class PlaybookView:
    playbook: Playbook
    alert_condition: SafeString
    context: list[tuple[str, SafeString]]
    diagnosis: SafeString
    diagnosis_inline: list[Command]
    steps: list[StepView]
    counts: dict[str, int]


_BLOCK_CACHE: OrderedDict[tuple, str] = OrderedDict()
_BLOCK_CACHE_SIZE = 4096


def command_block_html(template: str, block: CodeBlock, commands: list[Command]) -> str:
    """A code block's command cards. They depend only on the commands (and their
    binding, which an admin may edit), so each process renders them once."""
    key = (
        template,
        block.index,
        *(
            (
                c.pk,
                c.kind,
                c.executor,
                json.dumps([c.parameters, c.spec], sort_keys=True),
            )
            for c in commands
        ),
    )
    html = _BLOCK_CACHE.get(key)
    if html is None:
        html = render_to_string(template, {"commands": commands, "block": block})
        _BLOCK_CACHE[key] = html
        if len(_BLOCK_CACHE) > _BLOCK_CACHE_SIZE:
            _BLOCK_CACHE.popitem(last=False)
    return html


def playbook_links(playbook: Playbook) -> tuple[dict[str, str], dict[int, str]]:
    """Cross-references to the playbook's siblings (one query): the URL of each by
    number and anchor, and each one's title by number."""
    siblings = list(
        Playbook.objects.filter(runbook_id=playbook.runbook_id).values_list(
            "number", "slug", "anchor", "title"
        )
    )
    xrefs: dict[str, str] = {}
    titles: dict[int, str] = {}
    for number, slug, anchor, title in siblings:
        url = reverse("incidents:playbook_detail", args=[slug])
        xrefs[str(number)] = xrefs[anchor] = url
        titles[number] = title
    return xrefs, titles


def blocks_of(
    commands: list[Command], template: str, block_context: dict | None
) -> Callable[[CodeBlock], str | None]:
    """A code block's command cards, for render_markdown (None: not a command's)."""
    grouped: dict[int, list[Command]] = defaultdict(list)
    for c in commands:
        if c.block is not None:
            grouped[c.block].append(c)

    def block_html(block: CodeBlock) -> str | None:
        if block.index not in grouped:
            return None
        if block_context is not None:  # per-incident: cached by the caller instead
            context = {
                "commands": grouped[block.index],
                "block": block,
                **block_context,
            }
            return render_to_string(template, context)
        return command_block_html(template, block, grouped[block.index])

    return block_html


def step_view(
    step: Step,
    commands: list[Command],
    links: tuple[dict[str, str], dict[int, str]],
    template: str = COMMAND_BLOCK_TEMPLATE,
    block_context: dict | None = None,
) -> StepView:
    """One step drawn: its title, its Markdown with the command cards in place."""
    xrefs, titles = links
    return StepView(
        step=step,
        title=render_inline(step.title, xrefs),
        body=render_markdown(
            step.body, xrefs, blocks_of(commands, template, block_context)
        ),
        links=[Link(n, titles[n], xrefs[str(n)]) for n in step.links if n in titles],
        inline_commands=[c for c in commands if c.block is None],
        commands=commands,
    )


def present_playbook(
    playbook: Playbook,
    template: str = COMMAND_BLOCK_TEMPLATE,
    block_context: dict | None = None,
    playbook_commands: list[Command] | None = None,
) -> PlaybookView:
    """Three queries whatever the playbook's size: siblings, steps, commands (none
    for the commands when the caller loaded them already)."""
    links = playbook_links(playbook)
    xrefs = links[0]
    steps = list(playbook.steps.all())
    by_step: dict[int | None, list[Command]] = defaultdict(list)
    counts = {kind.value: 0 for kind in Command.Kind}
    if playbook_commands is None:
        playbook_commands = list(playbook.commands.all())
    for command in playbook_commands:
        by_step[command.step_id].append(command)
        counts[command.kind] = counts.get(command.kind, 0) + 1
    diagnosis = by_step.get(None, [])
    return PlaybookView(
        playbook=playbook,
        alert_condition=render_inline(playbook.alert_condition, xrefs),
        context=[
            (s["title"], render_markdown(s["markdown"], xrefs))
            for s in playbook.context
        ],
        diagnosis=render_markdown(
            playbook.diagnosis, xrefs, blocks_of(diagnosis, template, block_context)
        ),
        diagnosis_inline=[c for c in diagnosis if c.block is None],
        steps=[
            step_view(step, by_step.get(step.id, []), links, template, block_context)
            for step in steps
        ],
        counts=counts,
    )


# --- the incident checklist --------------------------------------------------------------

CHECKLIST_COMMAND_TEMPLATE = "incidents/partials/checklist_command_block.html"
# The page costs in proportion to the playbook, not to the incident's history: it
# shows the latest events, the last few ticks and runs of each step and command,
# and links to the rest (the "all runs" page, the exports).
TIMELINE_LIMIT = 50
HISTORY_PER_STEP = 5
RUNS_PER_COMMAND = 3


class Row(NamedTuple):
    """An execution as far as a step's state and its cache key need it: read as
    plain columns (no model, no ORM); the rows a drawn part shows are loaded as
    models only when it is drawn (Loaded)."""

    pk: int
    step_id: int | None
    command_id: int | None
    state: str
    approved_by_id: int | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime


class Loaded:
    """The executions behind rows, as models, built only for the rows a drawn part
    shows: from the columns the rows' own query read (recent_executions), so
    drawing costs no second query."""

    def __init__(self, columns: dict[int, tuple]) -> None:
        self.columns = columns  # per execution: its columns, then its requester's name
        self.by_pk: dict[int, StepExecution] = {}

    def load(self, rows: Iterable[Row]) -> None:
        for row in rows:
            if row.pk not in self.by_pk:
                self.by_pk[row.pk] = execution_from(self.columns[row.pk])

    def of(self, rows: list[Row]) -> list[StepExecution]:
        self.load(rows)
        return [self.by_pk[r.pk] for r in rows]


def execution_from(values: tuple) -> StepExecution:
    """A StepExecution (its requester with the username only) from its columns,
    converted as the ORM would (its JSON fields arrive as text)."""
    fields = StepExecution._meta.concrete_fields
    converted = [
        f.from_db_value(v, None, connection) if hasattr(f, "from_db_value") else v
        for f, v in zip(fields, values, strict=False)
    ]
    execution = StepExecution.from_db(
        connection.alias, [f.attname for f in fields], converted
    )
    requester_id, username = execution.requested_by_id, values[len(fields)]
    if requester_id is not None and username is not None:
        User = get_user_model()  # noqa: N806
        execution.requested_by = User.from_db(
            connection.alias, ["id", User.USERNAME_FIELD], [requester_id, username]
        )
    return execution


class RunsByCommand(Mapping):
    """Each command's last few runs, as models when a run panel asks for them."""

    def __init__(self, rows: dict[int, list[Row]], loaded: Loaded) -> None:
        self.rows, self.loaded = rows, loaded

    def __getitem__(self, command_id: int) -> list[StepExecution]:
        return self.loaded.of(self.rows[command_id])

    def __iter__(self) -> Iterator[int]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class ChecklistStep:
    step: Step
    state: str  # pending, done, skipped
    latest: Row | None
    history_rows: list[Row]  # the last HISTORY_PER_STEP, oldest first
    more: bool = False  # older ticks and runs (the "all runs" page lists them)
    # Every execution fetched for this step (its ticks and its commands' runs),
    # newest first: all of the incident its drawn HTML shows, so the key it is
    # cached under (incidents.fragments.step_html).
    fetched: list[Row] = field(default_factory=list)
    draw: Callable[[], StepView] | None = field(default=None, repr=False)
    loaded: Loaded | None = field(default=None, repr=False)

    @cached_property
    def view(self) -> StepView:
        """The step's title and body with its run panels, drawn only when asked
        for: a step found in the cache costs no Markdown and no template."""
        assert self.draw is not None
        return self.draw()

    @cached_property
    def history(self) -> list[StepExecution]:
        assert self.loaded is not None
        return self.loaded.of(self.history_rows)

    @property
    def number(self) -> int:
        return self.step.number

    @property
    def expected(self) -> int:
        """The tick version this page shows; sent back with every tick."""
        return self.latest.pk if self.latest else 0


@dataclass
class ChecklistTop:
    """What comes before the steps: the context and the Diagnosis (its commands'
    run panels included)."""

    context: list[tuple[str, SafeString]]
    diagnosis: SafeString
    diagnosis_inline: list[Command]


@dataclass
class Checklist:
    incident: Incident
    alert_condition: SafeString
    steps: list[ChecklistStep]
    # The latest events' numbers, newest first (the events themselves: events()).
    event_seqs: list[int]
    last_seq: int
    runs_by_command: Mapping[int, list[StepExecution]] = field(default_factory=dict)
    pickers: Pickers | None = None
    # Commands with older runs than runs_by_command holds (a link to all of them).
    more_runs: set[int] = field(default_factory=set)
    # The Diagnosis commands' runs fetched (the top's key, as a step's fetched).
    diagnosis_fetched: list[Row] = field(default_factory=list)
    draw_top: Callable[[], ChecklistTop] | None = field(default=None, repr=False)
    loaded: Loaded | None = field(default=None, repr=False)

    def events(self, seqs: Collection[int] | None = None) -> list[AuditEvent]:
        """The latest events (those numbered `seqs` among them), newest first."""
        wanted = (
            self.event_seqs
            if seqs is None
            else [s for s in self.event_seqs if s in seqs]
        )
        if not wanted:
            return []
        return list(self.incident.events.filter(seq__in=wanted).order_by("-seq"))

    def load(self, parts: Iterable[list[Row]]) -> None:
        """The executions of the parts about to be drawn, in one query."""
        assert self.loaded is not None
        self.loaded.load(row for rows in parts for row in rows)

    @cached_property
    def playbook(self) -> ChecklistTop:
        assert self.draw_top is not None
        return self.draw_top()

    @property
    def progress(self) -> tuple[int, int]:
        return sum(s.state != STEP_PENDING for s in self.steps), len(self.steps)

    @property
    def timeline_capped(self) -> bool:
        return len(self.event_seqs) >= TIMELINE_LIMIT


def recent_executions(incident: Incident) -> tuple[list[Row], Loaded]:
    """Each step's last HISTORY_PER_STEP + 1 executions, its latest tick (its
    state, which may be older than the runs after it) and each command's last
    RUNS_PER_COMMAND + 1 runs (the one more says whether there are older ones):
    one query whatever the history, an index walk per step and per command, never
    a sort or a count of the whole history. Oldest first: the rows, and their
    executions as models when asked for (with the requester's name: one query)."""
    table = StepExecution._meta.db_table
    newest = "ORDER BY e.created_at DESC, e.id DESC"
    ticks = ", ".join(["%s"] * len(StepExecution.TICKS))

    def latest(owners: str, where: str, limit: int) -> str:
        return (
            f"SELECT x.id FROM {owners} o CROSS JOIN LATERAL (SELECT e.id FROM"
            f" {table} e WHERE e.incident_id = %s AND {where} {newest}"
            f" LIMIT {limit}) x"
        )

    steps = f"(SELECT id FROM {Step._meta.db_table} WHERE playbook_id = %s)"
    commands = f"(SELECT id FROM {Command._meta.db_table} WHERE playbook_id = %s)"
    sql = " UNION ".join(
        [
            latest(steps, "e.step_id = o.id", HISTORY_PER_STEP + 1),
            latest(steps, f"e.step_id = o.id AND e.state IN ({ticks})", 1),
            latest(commands, "e.command_id = o.id", RUNS_PER_COMMAND + 1),
        ]
    )
    playbook, pk = incident.playbook_id, incident.pk
    tick_states = sorted(t.value for t in StepExecution.TICKS)
    params = [playbook, pk, playbook, pk, *tick_states, playbook, pk]
    fields = StepExecution._meta.concrete_fields
    user = get_user_model()
    columns = ", ".join(f'e."{f.column}"' for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT {columns}, u."{user._meta.get_field(user.USERNAME_FIELD).column}"'
            f" FROM {table} e LEFT JOIN {user._meta.db_table} u"
            f" ON u.id = e.requested_by_id WHERE e.id IN ({sql})"
            " ORDER BY e.created_at, e.id",
            params,
        )
        found = cursor.fetchall()
    at = {f.attname: i for i, f in enumerate(fields)}
    rows = [Row(*(values[at[name]] for name in ROW_COLUMNS)) for values in found]
    return rows, Loaded(
        {row.pk: values for row, values in zip(rows, found, strict=True)}
    )


# What a part's cache key reads of each execution (fragments.rows_key), and its
# step's state.
ROW_COLUMNS = (
    "id",
    "step_id",
    "command_id",
    "state",
    "approved_by_id",
    "started_at",
    "finished_at",
    "created_at",
)


def checklist_top(
    playbook: Playbook,
    diagnosis: list[Command],
    links: tuple[dict[str, str], dict[int, str]],
    block_context: dict,
) -> ChecklistTop:
    xrefs = links[0]
    return ChecklistTop(
        context=[
            (s["title"], render_markdown(s["markdown"], xrefs))
            for s in playbook.context
        ],
        diagnosis=render_markdown(
            playbook.diagnosis,
            xrefs,
            blocks_of(diagnosis, CHECKLIST_COMMAND_TEMPLATE, block_context),
        ),
        diagnosis_inline=[c for c in diagnosis if c.block is None],
    )


def playbook_parts(
    playbook: Playbook,
) -> tuple[list[Command], list[Step], tuple[dict[str, str], dict[int, str]]]:
    """The playbook's commands (with their steps), steps and cross-references:
    the same until an admin rebinds a command (binding_version) or a runbook is
    imported (new playbooks), so read once per process and binding, not on every
    page and poll (three queries). From the cache a copy, never a shared object."""
    key = f"playbook-parts:{playbook.pk}:{playbook.binding_version}"
    cache = caches["fragments"]
    parts = cache.get(key)
    if parts is None:
        parts = (
            list(playbook.commands.select_related("step")),
            list(playbook.steps.all()),
            playbook_links(playbook),
        )
        cache.set(key, parts, 3600)
    return parts


def present_checklist(
    incident: Incident,
    can: dict[str, bool] | None = None,
    *,
    viewer_id: int | None = None,
    csrf_token: str = "",
) -> Checklist:
    """Constant queries whatever the number of steps and executions: the recent
    executions, the commands, the playbook's siblings and steps, the latest events;
    and a cost bounded by the playbook's size, not the incident's history. Nothing
    is drawn here: each step's view (and the Diagnosis) is drawn when first asked
    for, so a caller that finds a step's HTML in its cache draws nothing of it.
    `viewer_id` hides the approval form on the viewer's own requests; `csrf_token`
    (usually the fragments' sentinel) goes into the run forms so they work without
    JavaScript."""
    by_step: dict[int | None, list[Row]] = defaultdict(list)
    by_command: dict[int, list[Row]] = defaultdict(list)
    rows, loaded = recent_executions(incident)
    for execution in reversed(rows):  # newest first
        by_step[execution.step_id].append(execution)
        if execution.command_id:
            by_command[execution.command_id].append(execution)
    # A command's newest runs are its newest fetched (the rest fetched are older:
    # fetched for their step); one more than shown means there are older ones.
    runs = RunsByCommand(
        {c: fetched[:RUNS_PER_COMMAND] for c, fetched in by_command.items()}, loaded
    )
    more_runs = {
        c for c, fetched in by_command.items() if len(fetched) > RUNS_PER_COMMAND
    }
    # Loaded here (with their steps, for the pickers' titles): the pickers in
    # result tables need them before anything is drawn.
    playbook = incident.playbook
    playbook_commands, playbook_steps, links = playbook_parts(playbook)
    commands_of: dict[int | None, list[Command]] = defaultdict(list)
    for command in playbook_commands:
        commands_of[command.step_id].append(command)
    pickers = Pickers(playbook_commands)
    block_context = {
        "incident": incident,
        "runs_by_command": runs,
        "more_runs": more_runs,
        "can": can or {},
        "viewer_id": viewer_id,
        "csrf_token": csrf_token,
        "pickers": pickers,
    }
    steps = []
    for step in playbook_steps:
        fetched = by_step.get(step.id, [])  # newest first
        # The latest tick decides the state, even when older than what is shown;
        # the newest few fetched are the step's newest few (the rest fetched are
        # older: a tick, or runs fetched for their command).
        state, latest = step_state(fetched)
        history = fetched[:HISTORY_PER_STEP][::-1]
        more = len(fetched) > HISTORY_PER_STEP
        draw = partial(
            step_view,
            step,
            commands_of.get(step.id, []),
            links,
            CHECKLIST_COMMAND_TEMPLATE,
            block_context,
        )
        steps.append(
            ChecklistStep(step, state, latest, history, more, fetched, draw, loaded)
        )
    seqs = list(
        incident.events.order_by("-seq").values_list("seq", flat=True)[:TIMELINE_LIMIT]
    )
    last_seq = seqs[0] if seqs else 0
    return Checklist(
        incident=incident,
        alert_condition=render_inline(playbook.alert_condition, links[0]),
        steps=steps,
        event_seqs=seqs,
        last_seq=last_seq,
        runs_by_command=runs,
        pickers=pickers,
        more_runs=more_runs,
        diagnosis_fetched=by_step.get(None, []),
        draw_top=partial(
            checklist_top, playbook, commands_of.get(None, []), links, block_context
        ),
        loaded=loaded,
    )
