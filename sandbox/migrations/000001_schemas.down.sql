DROP SCHEMA IF EXISTS monitoring, analytics, system, users, crawler CASCADE;
