CREATE TABLE analytics.pageview (
    id bigserial,
    path text NOT NULL,
    userid uuid,
    referrer text,
    useragent text,
    viewedat timestamptz NOT NULL
) PARTITION BY RANGE (viewedat);

DO $$
DECLARE
    month date := date '2025-01-01';
BEGIN
    WHILE month < date '2027-01-01' LOOP
        EXECUTE format(
            'CREATE TABLE analytics.%I PARTITION OF analytics.pageview '
            'FOR VALUES FROM (%L) TO (%L)',
            'pageview_' || to_char(month, 'YYYY_MM'), month, month + interval '1 month');
        month := month + interval '1 month';
    END LOOP;
END $$;

CREATE TABLE monitoring.statement (
    queryid bigint PRIMARY KEY,
    query text NOT NULL,
    calls bigint NOT NULL,
    total_exec_time double precision NOT NULL,
    min_exec_time double precision NOT NULL,
    max_exec_time double precision NOT NULL,
    rows bigint NOT NULL
);
-- The embedded PostgreSQL ships without the pg_stat_statements extension: the
-- view of that name reads the statistics the API's query layer reports.
CREATE VIEW public.pg_stat_statements AS
SELECT 10::oid AS userid, (SELECT oid FROM pg_database
        WHERE datname = current_database()) AS dbid,
       queryid, query, calls, total_exec_time,
       min_exec_time, max_exec_time,
       total_exec_time / greatest(calls, 1) AS mean_exec_time, rows
FROM monitoring.statement;
