"""Roles get their new permissions; existing commands get the four-eyes default."""

import re

from django.db import migrations

from incidents.roles import migrate_roles

# The four-eyes rule as it stood when this migration was written, copied here so
# that history does not change when the command families' own rules do.
FOUR_EYES = re.compile(
    r"\b(DELETE|DROP|TRUNCATE)\b|pg_terminate_backend|revoke|FLUSHALL|FLUSHDB", re.I
)


def needs_approval(kind, text, spec):
    if kind != "action":
        return False
    if spec.get("method") == "DELETE":
        return True
    return bool(FOUR_EYES.search(spec.get("sql") or spec.get("url") or text))


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
