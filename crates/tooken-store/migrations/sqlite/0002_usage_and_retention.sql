-- Daily use of tokens (successful verifications, API calls) and API keys
-- (API calls), aggregated in memory and added here in batches.
CREATE TABLE usage_daily (
    subject_id TEXT NOT NULL,
    day TEXT NOT NULL,             -- YYYY-MM-DD, UTC
    verifications INTEGER NOT NULL DEFAULT 0,
    api_calls INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject_id, day)
);

-- Where a workspace's audit chain now starts, after retention pruning: the
-- seq and hash of the last pruned event.
CREATE TABLE audit_anchors (
    workspace_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    pruned_at INTEGER NOT NULL
);

-- Bumped by every write that can make a cached credential wrong (revoking,
-- rotating, changing or deleting one), so caches know when to drop.
CREATE TABLE store_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    counter INTEGER NOT NULL
);
INSERT INTO store_changes (id, counter) VALUES (1, 0);
