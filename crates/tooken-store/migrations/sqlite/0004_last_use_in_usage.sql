-- Last use moves from the (wide) token and API key rows to the (narrow)
-- daily usage rows: recording use then touches one small row per credential
-- and day instead of rewriting the credential's row, and a credential's last
-- use is the latest over its days.
ALTER TABLE usage_daily ADD COLUMN last_used_at INTEGER;

INSERT INTO usage_daily (subject_id, day, verifications, api_calls, last_used_at)
SELECT id, strftime('%Y-%m-%d', last_used_at / 1000, 'unixepoch'), 0, 0, last_used_at
FROM tokens WHERE last_used_at IS NOT NULL
UNION ALL
SELECT id, strftime('%Y-%m-%d', last_used_at / 1000, 'unixepoch'), 0, 0, last_used_at
FROM api_keys WHERE last_used_at IS NOT NULL
ON CONFLICT (subject_id, day) DO UPDATE SET last_used_at = excluded.last_used_at;

ALTER TABLE tokens DROP COLUMN last_used_at;
ALTER TABLE api_keys DROP COLUMN last_used_at;
