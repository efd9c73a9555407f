CREATE TABLE crawler.source (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    baseurl text NOT NULL,
    isactive boolean NOT NULL DEFAULT true,
    ratelimitrpm integer NOT NULL DEFAULT 60,
    createdat timestamptz NOT NULL DEFAULT now(),
    updatedat timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE crawler.job (
    id bigserial PRIMARY KEY,
    sourceid integer NOT NULL REFERENCES crawler.source (id),
    kind text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    scheduledat timestamptz NOT NULL DEFAULT now(),
    startedat timestamptz,
    finishedat timestamptz,
    error text
);
CREATE INDEX job_status_startedat_idx ON crawler.job (status, startedat);

CREATE TABLE crawler.log (
    id bigserial PRIMARY KEY,
    jobid bigint NOT NULL REFERENCES crawler.job (id) ON DELETE CASCADE,
    level text NOT NULL,
    message text NOT NULL,
    createdat timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX log_jobid_idx ON crawler.log (jobid);
