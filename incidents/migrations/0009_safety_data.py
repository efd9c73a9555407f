"""Roles get their new permissions; existing commands get the four-eyes default."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from incidents.roles import ensure_roles
from incidents.runbook.recognise import needs_approval


def forwards(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    ensure_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))
    Command = apps.get_model("incidents", "Command")
    for command in Command.objects.filter(kind="action"):
        if needs_approval(command.kind, command.text, command.spec):
            command.requires_approval = True
            command.save(update_fields=["requires_approval"])


class Migration(migrations.Migration):
    dependencies = [("incidents", "0008_safety")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
