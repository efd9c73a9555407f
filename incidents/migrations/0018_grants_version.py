"""A counter the database moves whenever anyone's permissions may have changed.

Every request asks "may this person...?"; reading all their grants is the most
expensive query of a page or a poll. incidents/access.py keeps each person's grants
in the process's memory, keyed by this counter, so a cached answer is used only
while nothing that grants anything has changed since it was read.

The counter is moved by statement triggers on every table a grant lives in (roles,
memberships, direct permissions, django-guardian's per-playbook rows), whatever
writes there: the console, the admin, a management command, psql. It moves in the
same transaction as the change, so a revocation is seen by the very next request of
every process once it commits. It is a plain table, not a model: Django's `flush`
(transactional tests) must not reset it, or a cached answer could match again.
"""

from django.db import migrations

GRANT_TABLES = (
    "auth_permission",
    "auth_group",
    "auth_group_permissions",
    "auth_user_groups",
    "auth_user_user_permissions",
    "guardian_userobjectpermission",
    "guardian_groupobjectpermission",
)

CREATE = [
    """
    CREATE TABLE IF NOT EXISTS incidents_grants_version (
        id smallint PRIMARY KEY CHECK (id = 1),
        n bigint NOT NULL
    )
    """,
    "INSERT INTO incidents_grants_version (id, n) VALUES (1, 1) ON CONFLICT DO NOTHING",
    """
    CREATE OR REPLACE FUNCTION incidents_bump_grants_version() RETURNS trigger AS $$
    BEGIN
        INSERT INTO incidents_grants_version (id, n) VALUES (1, 1)
        ON CONFLICT (id) DO UPDATE SET n = incidents_grants_version.n + 1;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    *(
        f"""
        CREATE TRIGGER incidents_grants_version_bump
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION incidents_bump_grants_version()
        """
        for table in GRANT_TABLES
    ),
]

DROP = [
    *(
        f"DROP TRIGGER IF EXISTS incidents_grants_version_bump ON {table}"
        for table in GRANT_TABLES
    ),
    "DROP FUNCTION IF EXISTS incidents_bump_grants_version()",
    "DROP TABLE IF EXISTS incidents_grants_version",
]


# Two indexes for pages that must not grow with history (issue 14): the incident
# list's order (active first, newest first; IncidentQuerySet.active_first) and each
# command's newest runs on one incident (incidents.presenters.recent_executions).
INDEXES = [
    """
    CREATE INDEX IF NOT EXISTS incidents_incident_active_first
    ON incidents_incident ((status = 'resolved'), opened_at DESC)
    """,
    """
    CREATE INDEX IF NOT EXISTS incidents_stepexecution_command_newest
    ON incidents_stepexecution (incident_id, command_id, created_at DESC, id DESC)
    """,
]
DROP_INDEXES = [
    "DROP INDEX IF EXISTS incidents_incident_active_first",
    "DROP INDEX IF EXISTS incidents_stepexecution_command_newest",
]


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0017_runbook_not_understood"),
        ("auth", "0012_alter_user_first_name_max_length"),
        (
            "guardian",
            "0003_remove_groupobjectpermission_guardian_gr_content_ae6aec_idx_and_more",
        ),
    ]

    operations = [
        migrations.RunSQL(CREATE, DROP),
        migrations.RunSQL(INDEXES, DROP_INDEXES),
    ]
