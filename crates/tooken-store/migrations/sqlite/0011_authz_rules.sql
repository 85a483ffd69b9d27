-- Gateway route rules (SPEC §12): one ordered list per workspace and mode,
-- stored as the JSON array the API shows (validated before it is written).
-- No row: no rules, so a gateway refuses every request.
CREATE TABLE authz_rules (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    mode TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    rules TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, mode)
);
