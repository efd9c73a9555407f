CREATE SCHEMA IF NOT EXISTS crawler;
CREATE SCHEMA IF NOT EXISTS users;
CREATE SCHEMA IF NOT EXISTS system;
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE SCHEMA IF NOT EXISTS monitoring;

CREATE TABLE system.setting (
    key text PRIMARY KEY,
    value text NOT NULL,
    updatedat timestamptz NOT NULL DEFAULT now(),
    updatedby text
);

CREATE TABLE system.auditlog (
    id bigserial PRIMARY KEY,
    actorid uuid,
    action text NOT NULL,
    entitytype text,
    entityid text,
    ip inet,
    useragent text,
    metadata jsonb NOT NULL DEFAULT '{}',
    createdat timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auditlog_createdat_idx ON system.auditlog (createdat DESC);
