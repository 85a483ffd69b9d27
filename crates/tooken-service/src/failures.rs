//! Authentication failures for the audit log, aggregated in memory per
//! workspace, client address and reason over a time window, so a flood of
//! bad requests adds a handful of events with counts, not one row each.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tooken_core::Mode;
use tooken_store::{AuthFailureEvent, Store};

/// Failures are summed over windows this long.
pub const WINDOW_SECONDS: i64 = 60;
/// Sample hints kept per window: enough to investigate, bounded in size.
const MAX_HINTS: usize = 5;

/// Why an attempt failed, as the audit event's `reason` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <credential>`, or several headers.
    Malformed,
    /// A well-formed credential no one has.
    Unknown,
    Revoked,
    Expired,
    /// A token's previous secret, past its grace period.
    Rotated,
    /// The address was answered `429` without checking anything.
    RateLimited,
    /// A token without the scope the operation needs.
    InsufficientScope,
    /// A token where only an API key may act.
    ApiKeyRequired,
    /// A dashboard sign-in with a wrong email or password.
    DashboardLogin,
    /// A dashboard sign-in refused for too many failures.
    DashboardLoginThrottled,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Missing => "missing",
            FailureReason::Malformed => "malformed",
            FailureReason::Unknown => "unknown",
            FailureReason::Revoked => "revoked",
            FailureReason::Expired => "expired",
            FailureReason::Rotated => "rotated",
            FailureReason::RateLimited => "rate_limited",
            FailureReason::InsufficientScope => "insufficient_scope",
            FailureReason::ApiKeyRequired => "api_key_required",
            FailureReason::DashboardLogin => "dashboard_login",
            FailureReason::DashboardLoginThrottled => "dashboard_login_throttled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    workspace_id: Option<String>,
    mode: Option<Mode>,
    client_addr: Option<String>,
    reason: FailureReason,
}

#[derive(Debug)]
struct Tally {
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    count: u64,
    hints: Vec<String>,
}

/// One failed attempt.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The workspace the credential belongs to, when it is known.
    pub workspace_id: Option<String>,
    pub mode: Option<Mode>,
    pub client_addr: Option<String>,
    pub reason: FailureReason,
    /// The credential's display hint when it parses; never the secret.
    pub hint: Option<String>,
}

#[derive(Debug, Default)]
pub struct FailureLog {
    // std Mutex: held for a map update only, never across an await.
    pending: Mutex<HashMap<Key, Tally>>,
}

impl FailureLog {
    pub fn record(&self, f: Failure, now: DateTime<Utc>) {
        let key = Key {
            workspace_id: f.workspace_id,
            mode: f.mode,
            client_addr: f.client_addr,
            reason: f.reason,
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let tally = pending.entry(key).or_insert(Tally {
            first: now,
            last: now,
            count: 0,
            hints: Vec::new(),
        });
        tally.count += 1;
        tally.last = tally.last.max(now);
        if let Some(hint) = f.hint {
            if tally.hints.len() < MAX_HINTS && !tally.hints.contains(&hint) {
                tally.hints.push(hint);
            }
        }
    }

    /// Writes windows that have closed by `now` (all of them when `all`).
    pub async fn flush(&self, store: &Store, now: DateTime<Utc>, all: bool) {
        let closed: Vec<(Key, Tally)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let keys: Vec<Key> = pending
                .iter()
                .filter(|(_, t)| all || t.first + Duration::seconds(WINDOW_SECONDS) <= now)
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| pending.remove_entry(&k))
                .collect()
        };
        if closed.is_empty() {
            return;
        }
        let events: Vec<AuthFailureEvent> = closed
            .iter()
            .map(|(k, t)| AuthFailureEvent {
                workspace_id: k.workspace_id.clone(),
                mode: k.mode,
                client_addr: k.client_addr.clone(),
                details: json!({
                    "reason": k.reason.as_str(),
                    "count": t.count,
                    "first_at": t.first,
                    "last_at": t.last,
                    "hints": t.hints,
                }),
            })
            .collect();
        if let Err(e) = store.record_auth_failures(&events, now).await {
            tracing::warn!(error = %e, "could not record authentication failures; will retry");
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (k, t) in closed {
                pending.entry(k).or_insert(t);
            }
        }
    }

    /// How many distinct windows are waiting to be written.
    pub fn pending_windows(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_collapses_into_one_window_per_address_and_reason() {
        let log = FailureLog::default();
        let now = Utc::now();
        for i in 0..100_000u32 {
            log.record(
                Failure {
                    workspace_id: None,
                    mode: None,
                    client_addr: Some(format!("127.0.0.{}", 1 + i % 2)),
                    reason: FailureReason::Unknown,
                    hint: Some(format!("tok_live_…{:04}", i % 10_000)),
                },
                now,
            );
        }
        assert_eq!(log.pending_windows(), 2);
        let pending = log.pending.lock().unwrap();
        let tally = pending.values().next().unwrap();
        assert_eq!(tally.count, 50_000);
        assert_eq!(tally.hints.len(), MAX_HINTS);
    }
}
