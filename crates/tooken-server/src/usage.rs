//! Use of API keys and tokens (last use, and counts per day), gathered in
//! memory and written to the store in batches, so that verifying or calling
//! the API never costs a database write.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tooken_store::{Store, UsageBatch};

/// How often gathered use is written to the store.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// What a use was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A successful verification of a token.
    Verification,
    /// An authenticated call to the API.
    ApiCall,
}

#[derive(Debug, Default)]
pub struct Usage {
    // std Mutex: held for a map update only, never across an await.
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    api_keys: HashMap<String, Tally>,
    tokens: HashMap<String, Tally>,
}

#[derive(Debug, Clone)]
struct Tally {
    last: DateTime<Utc>,
    days: HashMap<NaiveDate, (i64, i64)>,
}

impl Tally {
    fn add(&mut self, at: DateTime<Utc>, kind: Use, n: i64) {
        self.last = self.last.max(at);
        let day = self.days.entry(at.date_naive()).or_default();
        match kind {
            Use::Verification => day.0 += n,
            Use::ApiCall => day.1 += n,
        }
    }
}

fn add(map: &mut HashMap<String, Tally>, id: &str, at: DateTime<Utc>, kind: Use) {
    match map.get_mut(id) {
        Some(t) => t.add(at, kind, 1),
        None => {
            let mut t = Tally {
                last: at,
                days: HashMap::new(),
            };
            t.add(at, kind, 1);
            map.insert(id.to_owned(), t);
        }
    }
}

fn batches(map: &HashMap<String, Tally>) -> Vec<UsageBatch> {
    map.iter()
        .map(|(id, t)| UsageBatch {
            id: id.clone(),
            last_used_at: t.last,
            days: t.days.iter().map(|(d, (v, c))| (*d, *v, *c)).collect(),
        })
        .collect()
}

impl Usage {
    pub fn record_api_key(&self, id: &str, at: DateTime<Utc>) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        add(&mut p.api_keys, id, at, Use::ApiCall);
    }

    pub fn record_token(&self, id: &str, at: DateTime<Utc>, kind: Use) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        add(&mut p.tokens, id, at, kind);
    }

    /// Writes everything gathered so far. On failure the batch is merged
    /// back, to be tried again with the next flush.
    pub async fn flush(&self, store: &Store) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.api_keys.is_empty() && batch.tokens.is_empty() {
            return;
        }
        if let Err(e) = store
            .record_usage(&batches(&batch.api_keys), &batches(&batch.tokens))
            .await
        {
            tracing::warn!(error = %e, "could not record usage; will retry");
            let mut guard = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let p = &mut *guard;
            for (target, source) in [
                (&mut p.api_keys, batch.api_keys),
                (&mut p.tokens, batch.tokens),
            ] {
                for (id, t) in source {
                    let entry = target.entry(id).or_insert_with(|| Tally {
                        last: t.last,
                        days: HashMap::new(),
                    });
                    entry.last = entry.last.max(t.last);
                    for (day, (v, c)) in t.days {
                        let d = entry.days.entry(day).or_default();
                        d.0 += v;
                        d.1 += c;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_day_and_kind() {
        let u = Usage::default();
        let day1: DateTime<Utc> = "2030-01-01T23:59:59Z".parse().unwrap();
        let day2: DateTime<Utc> = "2030-01-02T00:00:01Z".parse().unwrap();
        for _ in 0..3 {
            u.record_token("tk", day1, Use::Verification);
        }
        u.record_token("tk", day2, Use::ApiCall);
        u.record_api_key("key", day1);
        let p = u.pending.lock().unwrap();
        let t = &p.tokens["tk"];
        assert_eq!(t.last, day2);
        assert_eq!(t.days[&day1.date_naive()], (3, 0));
        assert_eq!(t.days[&day2.date_naive()], (0, 1));
        assert_eq!(p.api_keys["key"].days[&day1.date_naive()], (0, 1));
    }
}
