"""The audit log's index on incident alone goes: the (incident, seq) index serves
every look-up by incident. The single-column one gave PostgreSQL's generic plan for
the poll's and the page's prepared statement (the incident's last event, read
`ORDER BY incident_id DESC, seq DESC LIMIT 1`, see incidents/views/common.py) a
wrong way to it: walk that index and sort the incident's whole history (5.3 ms of
server time for an idle poll at 10,000 events, instead of one index entry). One
index fewer to keep on every audited change too. The table is not Django-managed
(append-only triggers): the index is dropped here, and the field's state says so."""

from django.db import migrations, models
import django.db.models.deletion

INDEX = "incidents_auditevent_incident_id_e698bc03"  # Django's name, from 0002


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0019_worker_heartbeat"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="incident",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="incidents.incident",
            ),
        ),
        migrations.RunSQL(
            f"DROP INDEX IF EXISTS {INDEX}",
            reverse_sql=f"CREATE INDEX IF NOT EXISTS {INDEX} "
            "ON incidents_auditevent (incident_id)",
        ),
    ]
