"""The four roles, each a group holding the permissions of the one before it plus
its own. Used by the data migration (with historical models) and by seed_demo."""

from __future__ import annotations

VIEWER = [
    "incidents.view_runbook",
    "incidents.view_playbook",
    "incidents.view_step",
    "incidents.view_command",
    "incidents.view_incident",
    "incidents.view_stepexecution",
    "incidents.export_incident",
]
RESPONDER = [
    *VIEWER,
    "incidents.add_incident",
    "incidents.tick_step",
    "incidents.add_note",
]
COMMANDER = [*RESPONDER, "incidents.command_incident"]
ROLES: dict[str, list[str] | None] = {
    "Viewer": VIEWER,
    "Responder": RESPONDER,
    "Commander": COMMANDER,
    "Admin": None,  # every permission
}


def ensure_roles(group_model, permission_model) -> None:  # noqa: ANN001
    """Create the groups (or reset their permissions to the definition above)."""
    for role, names in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=role)
        if names is None:
            group.permissions.set(permission_model.objects.all())
            continue
        perms = []
        for name in names:
            app_label, codename = name.split(".")
            perms.append(
                permission_model.objects.get(
                    content_type__app_label=app_label, codename=codename
                )
            )
        group.permissions.set(perms)
