//! Use of tokens and API keys: last use, and counts per day.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;

use tooken_core::api::DailyUsage;

use crate::row::to_ms;
use crate::sql::{Arg, SqlBuilder};
use crate::{Result, Store};

/// Rows per statement when recording usage (5 binds each). SQLite finds
/// each bind's placeholder by a linear search, so binding a statement costs
/// the square of its placeholders: a few dozen rows do better than hundreds.
const USAGE_ROWS_PER_STATEMENT: usize = 32;

/// Use of one token or API key since the last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageBatch {
    pub id: String,
    pub days: Vec<DayUse>,
}

/// Use on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayUse {
    pub day: NaiveDate,
    /// Successful verifications.
    pub verifications: i64,
    /// Authenticated API calls.
    pub api_calls: i64,
    /// The latest use that day.
    pub last_used_at: DateTime<Utc>,
}

impl Store {
    /// Adds gathered use to the store in one transaction: daily counts add
    /// up and last-use times only move forward. Each credential's use is one
    /// narrow row per day (its last use is the latest over those rows), and
    /// rows go in [`USAGE_ROWS_PER_STATEMENT`] at a time: a busy second
    /// touches thousands of tokens, and rewriting each token's row, one
    /// statement each, made the flush the busiest writer of all.
    pub async fn record_usage(&self, api_keys: &[UsageBatch], tokens: &[UsageBatch]) -> Result<()> {
        if api_keys.is_empty() && tokens.is_empty() {
            return Ok(());
        }
        let greatest = self.backend().greatest(
            "coalesce(usage_daily.last_used_at, 0)",
            "excluded.last_used_at",
        );
        let mut w = self.write().await?;
        let days: Vec<_> = api_keys
            .iter()
            .chain(tokens)
            .flat_map(|b| b.days.iter().map(move |d| (b, d)))
            .collect();
        for chunk in days.chunks(USAGE_ROWS_PER_STATEMENT) {
            let mut q = SqlBuilder::new(
                "INSERT INTO usage_daily (subject_id, day, verifications, api_calls, last_used_at) \
                 VALUES ",
            );
            for (i, (b, d)) in chunk.iter().enumerate() {
                q.push(if i == 0 { "(" } else { ", (" })
                    .bind(Arg::Text(b.id.clone()))
                    .push(", ")
                    .bind(Arg::Text(d.day.to_string()))
                    .push(", ")
                    .bind(Arg::Int(d.verifications))
                    .push(", ")
                    .bind(Arg::Int(d.api_calls))
                    .push(", ")
                    .bind(Arg::Int(to_ms(d.last_used_at)))
                    .push(")");
            }
            q.push(&format!(
                " ON CONFLICT (subject_id, day) DO UPDATE SET \
                 verifications = usage_daily.verifications + excluded.verifications, \
                 api_calls = usage_daily.api_calls + excluded.api_calls, \
                 last_used_at = {greatest}"
            ));
            q.query().execute(w.conn()).await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Daily use of a token or API key from `since` on, oldest first.
    pub async fn daily_usage(&self, id: &str, since: NaiveDate) -> Result<Vec<DailyUsage>> {
        let rows = sqlx::query(
            "SELECT day, verifications, api_calls FROM usage_daily \
             WHERE subject_id = $1 AND day >= $2 ORDER BY day",
        )
        .bind(id)
        .bind(since.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let day: String = r.try_get("day")?;
                Ok(DailyUsage {
                    date: day
                        .parse()
                        .map_err(|_| crate::StoreError::Corrupt(format!("usage day {day:?}")))?,
                    verifications: r.try_get("verifications")?,
                    api_calls: r.try_get("api_calls")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::Connection;

    /// A store written before last use moved to the daily rows keeps each
    /// credential's last use (and its existing daily counts).
    #[tokio::test]
    async fn last_use_survives_the_move_to_daily_rows() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let mut before = sqlx::migrate!("migrations/sqlite");
        before.migrations = Cow::Owned(
            before
                .migrations
                .iter()
                .filter(|m| m.version < 4)
                .cloned()
                .collect(),
        );
        before.run(&mut conn).await.unwrap();
        for sql in [
            "INSERT INTO workspaces (id, name, created_at) VALUES ('ws_1', 'default', 0)",
            "INSERT INTO api_keys (id, workspace_id, mode, name, secret_hash, hint, created_at, last_used_at) \
             VALUES ('key_1', 'ws_1', 'live', 'k', x'01', 'h', 0, 1700000000000)",
            "INSERT INTO tokens (id, workspace_id, mode, name, scopes, secret_hash, hint, created_at, created_by, last_used_at) \
             VALUES ('tk_1', 'ws_1', 'live', 't', '[]', x'02', 'h', 0, 'key_1', 1700000005000)",
            "INSERT INTO tokens (id, workspace_id, mode, name, scopes, secret_hash, hint, created_at, created_by) \
             VALUES ('tk_2', 'ws_1', 'live', 'never', '[]', x'03', 'h', 0, 'key_1')",
            "INSERT INTO usage_daily (subject_id, day, verifications, api_calls) VALUES ('tk_1', '2023-11-14', 7, 2)",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();

        let store = crate::Store::open(&url).await.unwrap();
        let token = store
            .token("ws_1", tooken_core::Mode::Live, "tk_1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            token.last_used_at.unwrap().timestamp_millis(),
            1700000005000
        );
        let never = store
            .token("ws_1", tooken_core::Mode::Live, "tk_2")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(never.last_used_at, None);
        let key = store.api_key("key_1").await.unwrap().unwrap();
        assert_eq!(key.last_used_at.unwrap().timestamp_millis(), 1700000000000);
        let days = store
            .daily_usage("tk_1", "2023-11-01".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(days.len(), 1);
        assert_eq!((days[0].verifications, days[0].api_calls), (7, 2));
    }

    /// Each day's row keeps that day's last use, and counts add up over
    /// flushes.
    #[tokio::test]
    async fn each_day_row_keeps_its_own_last_use() {
        use sqlx::Row;

        use crate::{DayUse, Store, UsageBatch};

        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("u.db").display());
        let store = Store::open(&url).await.unwrap();
        let late: chrono::DateTime<chrono::Utc> = "2030-01-01T23:59:59Z".parse().unwrap();
        let early: chrono::DateTime<chrono::Utc> = "2030-01-02T00:00:01Z".parse().unwrap();
        let batch = UsageBatch {
            id: "tk_1".into(),
            days: vec![
                DayUse {
                    day: late.date_naive(),
                    verifications: 2,
                    api_calls: 0,
                    last_used_at: late,
                },
                DayUse {
                    day: early.date_naive(),
                    verifications: 0,
                    api_calls: 1,
                    last_used_at: early,
                },
            ],
        };
        store
            .record_usage(&[], std::slice::from_ref(&batch))
            .await
            .unwrap();
        store.record_usage(&[], &[batch]).await.unwrap();
        let rows = sqlx::query(
            "SELECT day, verifications, api_calls, last_used_at FROM usage_daily ORDER BY day",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let got: Vec<(String, i64, i64, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r.get("day"),
                    r.get("verifications"),
                    r.get("api_calls"),
                    r.get("last_used_at"),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("2030-01-01".into(), 4, 0, late.timestamp_millis()),
                ("2030-01-02".into(), 0, 2, early.timestamp_millis()),
            ]
        );
    }
}
