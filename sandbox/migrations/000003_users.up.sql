CREATE TABLE users.account (
    id uuid PRIMARY KEY,
    username text NOT NULL UNIQUE,
    email text NOT NULL UNIQUE,
    role text NOT NULL DEFAULT 'reader',
    createdat timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users.session (
    id uuid PRIMARY KEY,
    userid uuid NOT NULL REFERENCES users.account (id),
    tokenhash text NOT NULL,
    ip inet,
    useragent text,
    createdat timestamptz NOT NULL DEFAULT now(),
    lastseenat timestamptz NOT NULL DEFAULT now(),
    expiresat timestamptz NOT NULL,
    revokedat timestamptz
);
