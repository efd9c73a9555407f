"""Pages and HTMX fragments. Every view requires login and a permission, checked
here on the server through incidents.access; templates only hide what is refused."""

from .approvals import approval_queue, execution_decide
from .grants import playbook_access, playbook_grant
from .incidents import (
    export_postmortem,
    export_timeline_csv,
    export_timeline_json,
    home,
    incident_changes,
    incident_commander,
    incident_detail,
    incident_list,
    incident_new,
    incident_status,
    note_add,
    step_tick,
)
from .playbooks import playbook_detail, playbook_list, search, target_status
from .runs import command_preview, command_run, execution_detail

__all__ = [
    "approval_queue",
    "command_preview",
    "command_run",
    "execution_decide",
    "execution_detail",
    "export_postmortem",
    "export_timeline_csv",
    "export_timeline_json",
    "home",
    "incident_changes",
    "incident_commander",
    "incident_detail",
    "incident_list",
    "incident_new",
    "incident_status",
    "note_add",
    "playbook_access",
    "playbook_detail",
    "playbook_grant",
    "playbook_list",
    "search",
    "step_tick",
    "target_status",
]
