CREATE INDEX session_userid_active_idx ON users.session (userid)
    WHERE revokedat IS NULL;
