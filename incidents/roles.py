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
    "incidents.run_probes",
]
# Actions are default-deny: run_actions and approve_actions are granted per playbook
# (django-guardian). Commanders may break glass where they may run actions.
COMMANDER = [*RESPONDER, "incidents.command_incident", "incidents.break_glass"]
ROLES: dict[str, list[str] | None] = {
    "Viewer": VIEWER,
    "Responder": RESPONDER,
    "Commander": COMMANDER,
    "Admin": None,  # every permission
}


def ensure_roles(group_model, permission_model) -> None:  # noqa: ANN001
    """Create the groups (or reset their permissions to the definition above).
    A permission that does not exist yet (an older migration state) is skipped; the
    migration that adds it calls this again."""
    for role, names in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=role)
        if names is None:
            group.permissions.set(permission_model.objects.all())
            continue
        wanted = {tuple(name.split(".")) for name in names}
        perms = [
            p
            for p in permission_model.objects.filter(
                codename__in=[code for _, code in wanted]
            ).select_related("content_type")
            if (p.content_type.app_label, p.codename) in wanted
        ]
        group.permissions.set(perms)


def migrate_roles(apps) -> None:  # noqa: ANN001
    """For data migrations: create the permissions the models declare so far (Django
    normally does that only after all migrations), then (re)define the roles."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    ensure_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))
