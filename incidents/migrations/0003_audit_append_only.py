"""Make the audit log append-only in the database itself, and unmanaged (so neither
the application nor Django's flush ever deletes from it)."""

from django.db import migrations

TABLE = "incidents_auditevent"

POSTGRES_UP = f"""
CREATE OR REPLACE FUNCTION yomira_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on {TABLE} refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER auditevent_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION yomira_audit_append_only();
CREATE TRIGGER auditevent_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION yomira_audit_append_only();
"""
POSTGRES_DOWN = f"""
DROP TRIGGER IF EXISTS auditevent_no_update_delete ON {TABLE};
DROP TRIGGER IF EXISTS auditevent_no_truncate ON {TABLE};
DROP FUNCTION IF EXISTS yomira_audit_append_only();
"""
# SQLite has no TRUNCATE: its `DELETE FROM t` fires the delete trigger.
SQLITE_UP = [
    f"""CREATE TRIGGER auditevent_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused'); END;""",
    f"""CREATE TRIGGER auditevent_no_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END;""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS auditevent_no_update;",
    "DROP TRIGGER IF EXISTS auditevent_no_delete;",
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


class Migration(migrations.Migration):
    dependencies = [("incidents", "0002_incidents_and_audit")]

    operations = [
        migrations.RunPython(install, uninstall),
        migrations.AlterModelOptions(
            name="auditevent",
            options={"managed": False, "ordering": ["seq"]},
        ),
    ]
