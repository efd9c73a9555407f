"""Responders may now run probes; Commanders also actions (incidents/roles.py)."""

from django.db import migrations

from incidents.roles import migrate_roles


def update_roles(apps, schema_editor):
    migrate_roles(apps)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0006_execution")]

    operations = [migrations.RunPython(update_roles, migrations.RunPython.noop)]
