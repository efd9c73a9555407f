"""What the API takes and answers, as OpenAPI documents it."""

from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema


class Problem(Schema):
    """Every refusal and error, in one shape."""

    status: int = Field(description="The HTTP status, repeated.")
    code: str = Field(
        description="unauthenticated, forbidden, read_only_token, not_found, "
        "invalid, refused, conflict, rate_limited, server_error, unavailable "
        "(the console's database is down)"
    )
    message: str = Field(description="What went wrong and what to do, in words.")
    fields: dict[str, list[str]] = Field(
        default_factory=dict, description="For `invalid`: each field's problems."
    )


class Error(Schema):
    error: Problem


class CommandOut(Schema):
    id: int
    step: int | None = Field(description="The step's number; null in Diagnosis.")
    text: str = Field(description="The runbook's command, as written.")
    kind: str = Field(description="probe (reads), action (changes) or manual.")
    executor: str = Field(description="The family that runs it; empty if manual.")
    parameters: list[str]
    requires_approval: bool
    runnable: bool


class StepOut(Schema):
    number: int
    title: str
    state: str | None = Field(
        default=None, description="On an incident: pending, done or skipped."
    )
    commands: list[CommandOut]


class PlaybookSummary(Schema):
    number: int
    slug: str
    title: str
    severity: str
    alerts: list[str]
    runbook_revision: int


class ContextOut(Schema):
    title: str
    markdown: str


class PlaybookOut(PlaybookSummary):
    alert_condition: str
    context: list[ContextOut] = Field(description="Symptoms, Impact, as written.")
    diagnosis: list[CommandOut]
    steps: list[StepOut]


class IncidentSummary(Schema):
    id: int
    title: str
    status: str
    severity: str
    drill: bool
    playbook: str = Field(description="The playbook's slug.")
    commander: str | None
    opened_by: str | None
    opened_at: datetime
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    url: str


class IncidentOut(IncidentSummary):
    allowed_statuses: list[str]
    steps: list[StepOut]


class IncidentPage(Schema):
    count: int
    page: int
    pages: int
    results: list[IncidentSummary]


class ExecutionOut(Schema):
    id: int
    incident: int
    step: int | None
    command: int | None
    command_text: str
    state: str
    parameters: dict[str, str]
    requested_by: str
    approved_by: str | None
    break_glass: bool
    summary: str
    output: str
    result: dict
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    approval_expires_at: datetime | None


class AlertOut(Schema):
    id: int
    name: str
    status: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    source: str
    incident: int | None


# Required fields are checked by the pages' forms, after the permission check: a
# body is refused for what it lacks only to someone who may send it.


class OpenIn(Schema):
    playbook: str = Field(default="", description="The playbook's slug (required).")
    title: str = Field(default="", description="Required.")
    request_key: str = Field(
        default="",
        description="Optional one-time key (8-64 of A-Z a-z 0-9 _ -): a retry with "
        "the same key gets the incident the first call opened.",
    )


class StatusIn(Schema):
    status: str = Field(
        default="", description="open, acknowledged, mitigated or resolved."
    )


class CommanderIn(Schema):
    commander: str | None = Field(
        default=None,
        description="The username of someone who may command, or null for nobody.",
    )


class TickIn(Schema):
    state: str = Field(
        default="", description="done, skipped (needs a reason) or reopened."
    )
    reason: str = ""
    expected: int | None = Field(
        default=None,
        description="The id of the latest tick you saw (0 for none): if someone "
        "ticked the step since, nothing is written and you get a conflict.",
    )


class NoteIn(Schema):
    text: str = Field(default="", description="Required, at most 5,000 characters.")
    step: int | None = None
    request_key: str = ""


class NoteOut(Schema):
    seq: int
    text: str
    step: int | None
    created_at: datetime


class PreviewIn(Schema):
    parameters: dict[str, str] = Field(default_factory=dict)


class PreviewOut(Schema):
    headline: str
    detail: str
    facts: list[str]
    rows: int | None
    nothing: str = Field(description="Why there is nothing to act on; empty if any.")
    preview: str = Field(
        description="Send it back with the run, unchanged, with the same parameters."
    )
    confirmation: str = Field(description="The word the run must carry.")
    parameters: dict[str, str]


class RunIn(Schema):
    parameters: dict[str, str] = Field(default_factory=dict)
    confirmation: str = Field(
        default="", description="Actions: the word the preview named."
    )
    preview: str = Field(default="", description="Actions: the preview's token.")
    break_glass: bool = False
    break_glass_reason: str = ""
    confirm_heavy: bool = Field(
        default=False, description="A heavy probe runs only with this set."
    )
    request_key: str = ""


class RunOut(Schema):
    created: bool = Field(description="False: an identical run was in flight.")
    execution: ExecutionOut


class DecisionIn(Schema):
    decision: str = Field(
        default="", description="approve (the run is sent at once) or reject."
    )
    reason: str = Field(default="", description="Why; shown on the timeline.")
