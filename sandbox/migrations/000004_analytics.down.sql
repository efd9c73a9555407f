DROP VIEW IF EXISTS public.pg_stat_statements;
DROP TABLE IF EXISTS monitoring.statement;
DROP TABLE IF EXISTS analytics.pageview;
