"""Roles get their new permissions; existing commands get the four-eyes default."""

from django.db import migrations

from incidents.roles import migrate_roles
from incidents.runbook.recognise import needs_approval


def forwards(apps, schema_editor):
    migrate_roles(apps)
    Command = apps.get_model("incidents", "Command")
    for command in Command.objects.filter(kind="action"):
        if needs_approval(command.kind, command.text, command.spec):
            command.requires_approval = True
            command.save(update_fields=["requires_approval"])


class Migration(migrations.Migration):
    dependencies = [("incidents", "0008_safety")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
