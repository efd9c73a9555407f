"""The target database: Yomira's schema (its migration files) and believable data
for every table the runbook queries. Seeded once, in one transaction; the stack
keeps it across restarts. Rows are dated relative to the moment of seeding."""

from __future__ import annotations

import psycopg

from . import migrations

# Fixed ids a drill or a test can name ({userId} of §12, :id of §6).
SAMPLE_USER_ID = "7d1f3c2a-5b8e-4f6a-9c0d-2e4b6a8c1f3e"  # "mangaka_rin": an uploader
SAMPLE_SOURCE_ID = 3  # mangadex-mirror: the one answering 429s
USERS = 480
OLD_PARTITION_ROWS = 220_000  # analytics.pageview_2025_01: launch month, bot spike
MONTH_ROWS = 4_000  # every later month

SOURCES = [
    ("asura-scans", "https://asuracomic.net", 60),
    ("flame-comics", "https://flamecomics.xyz", 30),
    ("mangadex-mirror", "https://api.mangadex.org", 120),
    ("reaper-scans", "https://reaperscans.com", 40),
    ("webtoons-official", "https://www.webtoons.com", 90),
    ("comick", "https://api.comick.fun", 60),
    ("bato", "https://bato.to", 20),
    ("manganato", "https://chapmanganato.to", 45),
]

OLD_PARTITION = f"""
INSERT INTO analytics.pageview (path, userid, referrer, useragent, viewedat)
SELECT '/series/' || (1 + g % 700) || '/chapter/' || (1 + g % 180),
       CASE WHEN g % 3 = 0 THEN md5('user-' || (1 + g % {USERS}))::uuid END,
       (ARRAY['https://www.google.com/','https://twitter.com/','',
              'https://www.reddit.com/r/manga/'])[1 + g % 4],
       (ARRAY['Mozilla/5.0 (compatible; AhrefsBot/7.0)',
              'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Yomira/3.4'])[1 + g % 2],
       timestamptz '2025-01-01 00:00:00+00' + (g % 2678000) * interval '1 second'
FROM generate_series(1, {OLD_PARTITION_ROWS}) g;
"""

DATA = f"""
INSERT INTO system.setting (key, value, updatedby) VALUES
    ('site.maintenance_mode', 'false', 'bootstrap'),
    ('features.uploads_enabled', 'true', 'bootstrap'),
    ('features.comments_enabled', 'true', 'bootstrap'),
    ('crawler.paused', 'false', 'bootstrap'),
    ('mail.provider', 'resend', 'bootstrap'),
    ('ratelimit.anonymous_rpm', '120', 'bootstrap');

INSERT INTO users.account (id, username, email, role, createdat)
SELECT md5('user-' || g)::uuid,
       (ARRAY['kuro','sora','yuki','haru','ren','mika','aoi','kai','nao','taro'])[1 + g % 10]
           || '_' || (ARRAY['reader','fan','otaku','scan','neko','ink'])[1 + g % 6] || g,
       'user' || g || '@'
           || (ARRAY['gmail.com','proton.me','outlook.com','yahoo.co.jp'])[1 + g % 4],
       CASE WHEN g % 97 = 0 THEN 'moderator' WHEN g % 31 = 0 THEN 'uploader' ELSE 'reader' END,
       now() - (g * interval '19 hours') - interval '30 days'
FROM generate_series(1, {USERS}) g;
INSERT INTO users.account (id, username, email, role, createdat) VALUES
    ('{SAMPLE_USER_ID}', 'mangaka_rin', 'rin@yomira.app', 'uploader',
     now() - interval '400 days');

INSERT INTO users.session (id, userid, tokenhash, ip, useragent, createdat, lastseenat,
                           expiresat, revokedat)
SELECT md5('session-' || g)::uuid,
       md5('user-' || (1 + (g * 7) % {USERS}))::uuid,
       encode(sha256(('refresh-' || g)::bytea), 'hex'),
       ('10.' || (g % 200) || '.' || (g % 250) || '.' || (1 + g % 253))::inet,
       (ARRAY['Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Yomira/3.4',
              'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/141.0',
              'Yomira-Android/3.4.2 (Pixel 8; Android 15)'])[1 + g % 3],
       now() - (g * interval '37 minutes'),
       now() - (g * interval '11 minutes'),
       now() + interval '30 days' - (g * interval '37 minutes'),
       CASE WHEN g % 9 = 0 THEN now() - (g * interval '5 minutes') END
FROM generate_series(1, 1300) g;
INSERT INTO users.session (id, userid, tokenhash, ip, useragent, createdat, lastseenat,
                           expiresat)
SELECT md5('rin-session-' || g)::uuid, '{SAMPLE_USER_ID}',
       encode(sha256(('rin-refresh-' || g)::bytea), 'hex'),
       (ARRAY['203.0.113.24', '198.51.100.7', '203.0.113.24'])[g]::inet,
       (ARRAY['Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Safari/18.1',
              'Yomira-Android/3.4.2 (Pixel 8; Android 15)',
              'Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) Yomira/3.4'])[g],
       now() - g * interval '3 days', now() - g * interval '2 hours',
       now() + interval '27 days'
FROM generate_series(1, 3) g;

INSERT INTO crawler.job (sourceid, kind, status, attempts, scheduledat, startedat,
                         finishedat, error)
SELECT 1 + g % 8,
       (ARRAY['chapter-sync','chapter-sync','cover-fetch','series-index'])[1 + g % 4],
       CASE WHEN g % 23 = 0 THEN 'failed' ELSE 'done' END,
       1 + (g % 23 = 0)::int * 2,
       now() - g * interval '9 minutes',
       now() - g * interval '9 minutes' + interval '4 seconds',
       now() - g * interval '9 minutes' + interval '4 seconds'
           + (30 + g % 240) * interval '1 second',
       CASE WHEN g % 23 = 0 THEN
           (ARRAY['fetch: 429 Too Many Requests','parse: chapter list changed layout',
                  'fetch: context deadline exceeded'])[1 + g % 3] END
FROM generate_series(1, 2200) g;
INSERT INTO crawler.job (sourceid, kind, status, scheduledat, startedat) VALUES
    (5, 'chapter-sync', 'running', now() - interval '3 minutes', now() - interval '2 minutes'),
    (1, 'cover-fetch', 'running', now() - interval '1 minute', now() - interval '40 seconds');
INSERT INTO crawler.job (sourceid, kind, status, scheduledat)
SELECT 1 + g % 8, 'chapter-sync', 'pending', now() + g * interval '4 minutes'
FROM generate_series(1, 24) g;

INSERT INTO crawler.log (jobid, level, message, createdat)
SELECT j.id, v.level, v.message, j.startedat + v.offs * interval '1 second'
FROM crawler.job j
CROSS JOIN LATERAL (VALUES
    ('INFO', 'job started: ' || j.kind, 0),
    (CASE WHEN j.status = 'failed' THEN 'ERROR' ELSE 'INFO' END,
     CASE WHEN j.status = 'failed' THEN coalesce(j.error, 'failed')
          ELSE 'fetched ' || (3 + j.id % 40) || ' chapters' END, 20)
) AS v(level, message, offs)
WHERE j.startedat IS NOT NULL;

INSERT INTO system.auditlog (actorid, action, entitytype, entityid, ip, useragent,
                             metadata, createdat)
SELECT md5('user-' || (1 + (g * 13) % {USERS}))::uuid,
       (ARRAY['auth.login','auth.login','auth.refresh','auth.refresh','auth.logout',
              'chapter.upload','comment.create','auth.login_failed'])[1 + g % 8],
       (ARRAY['session','session','session','session','session','chapter','comment',
              'session'])[1 + g % 8],
       md5('entity-' || g)::uuid::text,
       ('10.' || (g % 200) || '.' || (g % 250) || '.' || (1 + g % 253))::inet,
       'Yomira-Android/3.4.2 (Pixel 8; Android 15)',
       jsonb_build_object('requestid', substr(md5('req-' || g), 1, 16)),
       now() - g * interval '97 seconds'
FROM generate_series(1, 4000) g;

{OLD_PARTITION}INSERT INTO analytics.pageview (path, userid, referrer, useragent, viewedat)
SELECT '/series/' || (1 + g % 900) || '/chapter/' || (1 + g % 220),
       CASE WHEN g % 2 = 0 THEN md5('user-' || (1 + g % {USERS}))::uuid END,
       (ARRAY['https://www.google.com/','','https://discord.com/'])[1 + g % 3],
       'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Yomira/3.4',
       m.month + (g % 2419200) * interval '1 second'
FROM generate_series(timestamptz '2025-02-01 00:00:00+00',
                     date_trunc('month', now()), interval '1 month') AS m(month),
     generate_series(1, {MONTH_ROWS}) g
WHERE m.month + (g % 2419200) * interval '1 second' < now();

INSERT INTO monitoring.statement (queryid, query, calls, total_exec_time, min_exec_time,
                                  max_exec_time, rows) VALUES
    (-6150224930104178821, 'SELECT s.id, s.title, s.slug FROM core.series s WHERE '
        's.search_vector @@ websearch_to_tsquery($1) ORDER BY ts_rank(...) DESC LIMIT $2',
        184220, 2394860.0, 0.9, 412.7, 3684400),
    (-2931005867251938117, 'SELECT c.id, c.number, c.title FROM core.chapter c WHERE '
        'c.seriesid = $1 ORDER BY c.number DESC', 902114, 1623805.2, 0.2, 88.1, 45105700),
    (4182093812730218855, 'INSERT INTO analytics.pageview (path, userid, referrer, '
        'useragent, viewedat) VALUES ($1, $2, $3, $4, $5)', 2210893, 331633.9, 0.05,
        31.2, 2210893),
    (7719630245512044612, 'UPDATE users.session SET lastseenat = now() WHERE id = $1',
        610452, 183135.6, 0.1, 24.8, 610452),
    (1290934411876502553, 'SELECT id, sourceid, status FROM crawler.job WHERE status = $1 '
        'ORDER BY scheduledat LIMIT $2 FOR UPDATE SKIP LOCKED', 88217, 52930.2, 0.3,
        19.9, 88217);
"""


def seed(conn: psycopg.Connection) -> None:
    """Schema (every migration file, version recorded clean) and data, in one
    transaction: a seed cut short leaves nothing, and the next start seeds again."""
    with conn.transaction():
        conn.execute(
            "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, "
            "dirty boolean NOT NULL)"
        )
        for path in migrations.files().values():
            conn.execute(path.read_text())
        migrations.set_state(conn, migrations.latest(), False)
        for name, base, rpm in SOURCES:
            conn.execute(
                "INSERT INTO crawler.source (name, baseurl, ratelimitrpm, createdat) "
                "VALUES (%s, %s, %s, now() - interval '300 days')",
                [name, base, rpm],
            )
        conn.execute(DATA)
    conn.execute("ANALYZE")


def seeded(conn: psycopg.Connection) -> bool:
    return (
        conn.execute("SELECT to_regclass('public.schema_migrations')").fetchone()[0]
        is not None
    )


def restore_old_partition(conn: psycopg.Connection) -> bool:
    """analytics.pageview_2025_01 again, with its rows, if it was dropped (a disk
    drill needs the partition its fix drops). True when it was missing."""
    if conn.execute("SELECT to_regclass('analytics.pageview_2025_01')").fetchone()[0]:
        return False
    with conn.transaction():
        conn.execute(
            "CREATE TABLE analytics.pageview_2025_01 PARTITION OF analytics.pageview "
            "FOR VALUES FROM ('2025-01-01') TO ('2025-02-01')"
        )
        conn.execute(OLD_PARTITION)
    return True
