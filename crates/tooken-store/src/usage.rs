//! Use of tokens and API keys: last use, and counts per day.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;

use tooken_core::api::DailyUsage;

use crate::{to_ms, Result, Store};

/// Use of one token or API key since the last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageBatch {
    pub id: String,
    pub last_used_at: DateTime<Utc>,
    /// (day, successful verifications, API calls).
    pub days: Vec<(NaiveDate, i64, i64)>,
}

impl Store {
    /// Adds gathered use to the store in one transaction: last-use times
    /// only move forward, and daily counts add up.
    pub async fn record_usage(&self, api_keys: &[UsageBatch], tokens: &[UsageBatch]) -> Result<()> {
        if api_keys.is_empty() && tokens.is_empty() {
            return Ok(());
        }
        let greatest = self.backend.greatest("coalesce(last_used_at, 0)", "$1");
        let mut tx = self.begin_write().await?;
        for (table, batches) in [("api_keys", api_keys), ("tokens", tokens)] {
            let touch = format!("UPDATE {table} SET last_used_at = {greatest} WHERE id = $2");
            for b in batches {
                sqlx::query(&touch)
                    .bind(to_ms(b.last_used_at))
                    .bind(&b.id)
                    .execute(&mut *tx)
                    .await?;
                for (day, verifications, calls) in &b.days {
                    sqlx::query(
                        "INSERT INTO usage_daily (subject_id, day, verifications, api_calls) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (subject_id, day) DO UPDATE SET \
                         verifications = usage_daily.verifications + excluded.verifications, \
                         api_calls = usage_daily.api_calls + excluded.api_calls",
                    )
                    .bind(&b.id)
                    .bind(day.to_string())
                    .bind(*verifications)
                    .bind(*calls)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        self.commit(tx).await?;
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
