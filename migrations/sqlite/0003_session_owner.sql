-- Sessions name their user in a column, so ending every session of a user
-- (password change, deletion) is one indexed DELETE instead of a scan that
-- decodes every session. Existing sessions cannot be attributed: they end,
-- and their users sign in once more.
DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN user_id INTEGER;
CREATE INDEX sessions_user ON sessions (user_id);
