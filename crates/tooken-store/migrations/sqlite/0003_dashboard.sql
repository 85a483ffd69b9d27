-- The web dashboard: people (users), their roles in workspaces, their login
-- sessions, one-time links (first-run setup, invitations) and one-time
-- displays of new secrets. Times are INTEGER milliseconds since the Unix
-- epoch (UTC). Session ids and link tokens are stored only as SHA-256.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,    -- lowercased
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,   -- argon2id, PHC string format
    created_at INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
);

CREATE TABLE memberships (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    role TEXT NOT NULL CHECK (role IN ('owner', 'viewer')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships(user_id);

CREATE TABLE sessions (
    id_hash BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    mode TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    client_addr TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_by_user ON sessions(user_id);

CREATE TABLE user_links (
    token_hash BLOB PRIMARY KEY,
    purpose TEXT NOT NULL CHECK (purpose IN ('setup', 'invite')),
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    email TEXT,                    -- invitations only
    role TEXT NOT NULL CHECK (role IN ('owner', 'viewer')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);

-- A new secret waiting to be shown once: XORed with a one-time pad that only
-- the browser holds (in a cookie), so this row alone reveals nothing.
CREATE TABLE reveals (
    id_hash BLOB PRIMARY KEY,
    session_hash BLOB NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    sealed BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
