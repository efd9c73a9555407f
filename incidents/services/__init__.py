"""Writes that touch several models and the audit log: keyword-only, atomic, and
taking an Actor. One module per area; callers keep writing
`services.open_incident(...)`."""

from .approvals import decide_approval, expire
from .checklist import TickResult, add_note, tick_step
from .diagnosis import (
    DIAGNOSIS,
    Diagnosis,
    diagnosis_probes,
    probe_for_routing,
    run_diagnosis,
)
from .lifecycle import TransitionError, change_commander, change_status, open_incident
from .runbooks import ImportResult, carry_grants, check_runbook, import_runbook
from .runs import (
    PREVIEW_SALT,
    Previewed,
    RunRefused,
    RunResult,
    check_preview_token,
    clean_parameters,
    dispatch,
    preview_action,
    preview_token,
    request_run,
)

__all__ = [
    "DIAGNOSIS",
    "PREVIEW_SALT",
    "Diagnosis",
    "ImportResult",
    "Previewed",
    "RunRefused",
    "RunResult",
    "TickResult",
    "TransitionError",
    "add_note",
    "carry_grants",
    "change_commander",
    "change_status",
    "check_preview_token",
    "check_runbook",
    "clean_parameters",
    "decide_approval",
    "diagnosis_probes",
    "dispatch",
    "expire",
    "import_runbook",
    "open_incident",
    "preview_action",
    "preview_token",
    "probe_for_routing",
    "request_run",
    "run_diagnosis",
    "tick_step",
]
