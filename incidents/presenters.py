"""Shape a playbook for its page: rendered Markdown, command cards where their code
blocks stand, resolved cross-references. Shared by the library and (later) the
incident checklist, which passes its own command template."""

from __future__ import annotations

import json
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field

from django.db.models import BooleanField, Count, ExpressionWrapper, F, Q, Window
from django.db.models.functions import RowNumber
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


def present_playbook(
    playbook: Playbook,
    template: str = COMMAND_BLOCK_TEMPLATE,
    block_context: dict | None = None,
    playbook_commands: list[Command] | None = None,
) -> PlaybookView:
    """Three queries whatever the playbook's size: siblings, steps, commands (none
    for the commands when the caller loaded them already)."""
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
    steps = list(playbook.steps.all())
    by_step: dict[int | None, list[Command]] = defaultdict(list)
    counts = {kind.value: 0 for kind in Command.Kind}
    if playbook_commands is None:
        playbook_commands = list(playbook.commands.all())
    for command in playbook_commands:
        by_step[command.step_id].append(command)
        counts[command.kind] = counts.get(command.kind, 0) + 1

    def blocks_of(commands: list[Command]):  # noqa: ANN202
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

    step_views = []
    for step in steps:
        commands = by_step.get(step.id, [])
        step_views.append(
            StepView(
                step=step,
                title=render_inline(step.title, xrefs),
                body=render_markdown(step.body, xrefs, blocks_of(commands)),
                links=[
                    Link(n, titles[n], xrefs[str(n)]) for n in step.links if n in titles
                ],
                inline_commands=[c for c in commands if c.block is None],
                commands=commands,
            )
        )
    diagnosis = by_step.get(None, [])
    return PlaybookView(
        playbook=playbook,
        alert_condition=render_inline(playbook.alert_condition, xrefs),
        context=[
            (s["title"], render_markdown(s["markdown"], xrefs))
            for s in playbook.context
        ],
        diagnosis=render_markdown(playbook.diagnosis, xrefs, blocks_of(diagnosis)),
        diagnosis_inline=[c for c in diagnosis if c.block is None],
        steps=step_views,
        counts=counts,
    )


# --- the incident checklist --------------------------------------------------------------

CHECKLIST_COMMAND_TEMPLATE = "incidents/partials/checklist_command_block.html"
# The page costs in proportion to the playbook, not to the incident's history: it
# shows the latest events, the last few ticks and runs of each step and command,
# and links to the rest (the "all runs" page, the exports).
TIMELINE_LIMIT = 100
HISTORY_PER_STEP = 5
RUNS_PER_COMMAND = 3


@dataclass
class ChecklistStep:
    view: StepView
    state: str  # pending, done, skipped
    latest: StepExecution | None
    history: list[StepExecution]  # the last HISTORY_PER_STEP, oldest first
    total: int = 0  # every tick and run of the step

    @property
    def number(self) -> int:
        return self.view.step.number

    @property
    def expected(self) -> int:
        """The tick version this page shows; sent back with every tick."""
        return self.latest.pk if self.latest else 0

    @property
    def more(self) -> int:
        """Ticks and runs not shown (the "all runs" page lists them)."""
        return self.total - len(self.history)


@dataclass
class Checklist:
    incident: Incident
    playbook: PlaybookView
    steps: list[ChecklistStep]
    events: list[AuditEvent]
    last_seq: int
    runs_by_command: dict[int, list[StepExecution]] = field(default_factory=dict)
    pickers: Pickers | None = None
    # Every run of each command (runs_by_command holds only the newest few).
    run_totals: dict[int, int] = field(default_factory=dict)

    @property
    def progress(self) -> tuple[int, int]:
        return sum(s.state != STEP_PENDING for s in self.steps), len(self.steps)

    @property
    def timeline_capped(self) -> bool:
        return len(self.events) >= TIMELINE_LIMIT


def recent_executions(incident: Incident) -> list[StepExecution]:
    """What the page shows of the incident's executions, in one query whatever
    their number: each step's last HISTORY_PER_STEP, each command's last
    RUNS_PER_COMMAND, and each step's latest tick (its state, which may be older
    than the runs after it). Each row carries its ranks and its step's and
    command's totals. Oldest first."""
    newest = [F("created_at").desc(), F("id").desc()]
    is_tick = ExpressionWrapper(
        Q(state__in=StepExecution.TICKS), output_field=BooleanField()
    )
    ranked = incident.executions.select_related("requested_by").annotate(
        step_rank=Window(RowNumber(), partition_by=[F("step_id")], order_by=newest),
        step_total=Window(Count("id"), partition_by=[F("step_id")]),
        command_rank=Window(
            RowNumber(), partition_by=[F("command_id")], order_by=newest
        ),
        command_total=Window(Count("id"), partition_by=[F("command_id")]),
        tick_rank=Window(
            RowNumber(), partition_by=[F("step_id"), is_tick], order_by=newest
        ),
    )
    return list(
        ranked.filter(
            Q(step_rank__lte=HISTORY_PER_STEP)
            | Q(command_rank__lte=RUNS_PER_COMMAND, command_id__isnull=False)
            | Q(tick_rank=1, state__in=StepExecution.TICKS)
        ).order_by("created_at", "id")
    )


def present_checklist(
    incident: Incident,
    can: dict[str, bool] | None = None,
    *,
    viewer_id: int | None = None,
    csrf_token: str = "",
) -> Checklist:
    """Constant queries whatever the number of steps and executions: the playbook's
    three, one for the recent executions, one for the latest events; and a cost
    bounded by the playbook's size, not the incident's history. `viewer_id` hides
    the approval form on the viewer's own requests; `csrf_token` (usually the
    fragments' sentinel) goes into the run forms so they work without JavaScript."""
    by_step: dict[int | None, list[StepExecution]] = defaultdict(list)
    totals: dict[int | None, int] = {}
    runs: dict[int, list[StepExecution]] = defaultdict(list)
    run_totals: dict[int, int] = {}
    for execution in recent_executions(incident):
        by_step[execution.step_id].append(execution)
        totals[execution.step_id] = execution.step_total
        if execution.command_id and execution.command_rank <= RUNS_PER_COMMAND:
            runs[execution.command_id].insert(0, execution)  # newest first
            run_totals[execution.command_id] = execution.command_total
    # Loaded here (with their steps, for the pickers' titles) rather than by
    # present_playbook: the pickers in result tables need them before it draws.
    playbook_commands = list(incident.playbook.commands.select_related("step"))
    pickers = Pickers(playbook_commands)
    block_context = {
        "incident": incident,
        "runs_by_command": runs,
        "run_totals": run_totals,
        "can": can or {},
        "viewer_id": viewer_id,
        "csrf_token": csrf_token,
        "pickers": pickers,
    }
    playbook_view = present_playbook(
        incident.playbook, CHECKLIST_COMMAND_TEMPLATE, block_context, playbook_commands
    )
    steps = []
    for sv in playbook_view.steps:
        fetched = by_step.get(sv.step.id, [])
        # The latest tick decides the state, even when older than what is shown.
        state, latest = step_state(fetched)
        history = [e for e in fetched if e.step_rank <= HISTORY_PER_STEP]
        steps.append(
            ChecklistStep(sv, state, latest, history, totals.get(sv.step.id, 0))
        )
    events = list(incident.events.order_by("-seq")[:TIMELINE_LIMIT])
    last_seq = events[0].seq if events else 0
    return Checklist(
        incident, playbook_view, steps, events, last_seq, runs, pickers, run_totals
    )
