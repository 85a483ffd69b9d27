-- Times are BIGINT milliseconds since the Unix epoch (UTC).
-- Secrets are never stored: only their SHA-256 (32-byte BLOBs).

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    require_expiration BIGINT NOT NULL DEFAULT 0,
    max_token_ttl_seconds BIGINT,
    default_token_ttl_seconds BIGINT,
    token_prefix TEXT NOT NULL DEFAULT 'tkn',
    audit_retention_days BIGINT
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    mode TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    name TEXT NOT NULL,
    secret_hash BYTEA NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    regenerated_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_keys_by_workspace ON api_keys(workspace_id, id);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    mode TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    name TEXT NOT NULL,
    description TEXT,
    scopes TEXT NOT NULL,          -- JSON array of scope strings
    metadata TEXT,                 -- JSON object
    secret_hash BYTEA NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    -- The secret replaced by the last rotation, valid until previous_valid_until.
    previous_secret_hash BYTEA UNIQUE,
    previous_valid_until BIGINT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    parent_id TEXT REFERENCES tokens(id),
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT,
    revoked_reason TEXT
);
CREATE INDEX tokens_by_workspace ON tokens(workspace_id, mode, id);
CREATE INDEX tokens_by_parent ON tokens(parent_id);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL,
    mode TEXT,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    actor_hint TEXT,
    action TEXT NOT NULL,
    target_kind TEXT,
    target_id TEXT,
    client_addr TEXT,
    user_agent TEXT,
    request_id TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (workspace_id, seq)
);
CREATE INDEX audit_events_by_workspace ON audit_events(workspace_id, id);
