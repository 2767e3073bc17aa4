-- Single sign-on (OpenID Connect). A person who signs in through the
-- identity provider is linked to a Gantry user by the provider's issuer and
-- subject, never by a name or e-mail that can change or be reused.
CREATE TABLE sso_identities (
    issuer        TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email         TEXT,
    groups        TEXT    NOT NULL DEFAULT '[]',
    first_seen    INTEGER NOT NULL,
    last_sign_in  INTEGER NOT NULL,
    -- The latest refresh token, sealed by the service like cluster
    -- credentials, and when the person's groups were last read with it:
    -- one request claims a due refresh (an UPDATE … RETURNING), so parallel
    -- requests never spend one refresh token twice.
    refresh_token BLOB,
    refreshed_at  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (issuer, subject)
);
CREATE UNIQUE INDEX sso_identities_user ON sso_identities (user_id);

-- A provider group gives a role in a team, or (team_id NULL) global admin.
CREATE TABLE group_mappings (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name TEXT    NOT NULL,
    team_id    INTEGER REFERENCES teams (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (role IN ('viewer', 'deployer', 'team_admin', 'global_admin')),
    created_at INTEGER NOT NULL,
    CHECK ((team_id IS NULL) = (role = 'global_admin'))
);
CREATE UNIQUE INDEX group_mappings_unique ON group_mappings (group_name, COALESCE(team_id, 0));

-- NULL: given by a person; otherwise the group it came from, refreshed at
-- each sign-in through the provider.
ALTER TABLE memberships ADD COLUMN from_group TEXT;
-- The group that made this user a global admin (NULL: none).
ALTER TABLE users ADD COLUMN admin_from_group TEXT;
-- Set when the provider stopped letting this user in: their sessions and
-- API tokens are refused until they sign in through it again.
ALTER TABLE users ADD COLUMN deactivated_at INTEGER;
