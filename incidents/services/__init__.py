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
from .grants import GRANTABLE, UnknownGrant, grant_on_playbook, revoke_on_playbook
from .lifecycle import TransitionError, change_commander, change_status, open_incident
from .runbooks import (
    ImportResult,
    RunbookSource,
    carry_grants,
    check_runbook,
    import_runbook,
)
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
from .severities import severity_level

__all__ = [
    "DIAGNOSIS",
    "GRANTABLE",
    "PREVIEW_SALT",
    "Diagnosis",
    "ImportResult",
    "Previewed",
    "RunRefused",
    "RunbookSource",
    "RunResult",
    "TickResult",
    "TransitionError",
    "UnknownGrant",
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
    "grant_on_playbook",
    "import_runbook",
    "open_incident",
    "preview_action",
    "preview_token",
    "probe_for_routing",
    "request_run",
    "revoke_on_playbook",
    "run_diagnosis",
    "severity_level",
    "tick_step",
]
