DROP INDEX IF EXISTS users.session_userid_active_idx;
