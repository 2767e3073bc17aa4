-- Sessions name their user in a column, so ending every session of a user
-- (password change, deletion) is one indexed DELETE instead of a scan that
-- decodes every session. Existing sessions cannot be attributed: they end,
-- and their users sign in once more.
DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN user_id BIGINT;
CREATE INDEX sessions_user ON sessions (user_id);

-- The audit log is append-only: TRUNCATE, which row triggers do not see,
-- is refused too.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
