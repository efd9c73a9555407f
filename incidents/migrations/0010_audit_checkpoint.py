"""The audit log's head checkpoint: its own append-only table, seeded with the head
of the log as it stands, so a cut tail is noticed from the first run of verify_audit."""

from django.db import migrations, models
from django.utils import timezone

TABLE = "incidents_auditcheckpoint"

# Same guard as 0003's, on the checkpoint table (a function of its own, so either
# migration can be reversed without the other).
POSTGRES_UP = f"""
CREATE OR REPLACE FUNCTION yomira_checkpoint_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit checkpoints are append-only: % on {TABLE} refused',
        TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER auditcheckpoint_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION yomira_checkpoint_append_only();
CREATE TRIGGER auditcheckpoint_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION yomira_checkpoint_append_only();
"""
POSTGRES_DOWN = f"""
DROP TRIGGER IF EXISTS auditcheckpoint_no_update_delete ON {TABLE};
DROP TRIGGER IF EXISTS auditcheckpoint_no_truncate ON {TABLE};
DROP FUNCTION IF EXISTS yomira_checkpoint_append_only();
"""
# SQLite has no TRUNCATE: its `DELETE FROM t` fires the delete trigger.
SQLITE_UP = [
    f"""CREATE TRIGGER auditcheckpoint_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT,
            'the audit checkpoints are append-only: UPDATE refused'); END;""",
    f"""CREATE TRIGGER auditcheckpoint_no_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT,
            'the audit checkpoints are append-only: DELETE refused'); END;""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS auditcheckpoint_no_update;",
    "DROP TRIGGER IF EXISTS auditcheckpoint_no_delete;",
]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)
    else:
        raise RuntimeError(f"no append-only triggers for the {vendor} database backend")


def uninstall(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


def seed(apps, schema_editor):
    """Anchor the log's current head, if it has one."""
    AuditEvent = apps.get_model("incidents", "AuditEvent")
    AuditCheckpoint = apps.get_model("incidents", "AuditCheckpoint")
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "mac").first()
    if head and not AuditCheckpoint.objects.filter(seq=head[0]).exists():
        AuditCheckpoint.objects.create(
            seq=head[0], mac=head[1], created_at=timezone.now()
        )


class Migration(migrations.Migration):
    dependencies = [("incidents", "0009_safety_data")]

    operations = [
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("seq", models.BigIntegerField(primary_key=True, serialize=False)),
                ("mac", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField()),
            ],
            options={"ordering": ["seq"], "managed": True},
        ),
        migrations.RunPython(install, uninstall),
        migrations.RunPython(seed, migrations.RunPython.noop),
        # Unmanaged from here on: Django's flush (between transactional tests) would
        # TRUNCATE a managed table, which the trigger refuses.
        migrations.AlterModelOptions(
            name="auditcheckpoint",
            options={"managed": False, "ordering": ["seq"]},
        ),
    ]
