//! Use of API keys and tokens (last use, and counts per day), gathered in
//! memory and written to the store in batches, so that verifying or calling
//! the API never costs a database write.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tooken_store::{DayUse, Store, UsageBatch};

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

#[derive(Debug)]
pub struct Usage {
    // std Mutex: held for a map update only, never across an await.
    pending: Mutex<Pending>,
    /// Written out every [`FLUSH_INTERVAL`] while serving (else only when
    /// the server stops, or when asked).
    periodic: bool,
}

impl Default for Usage {
    fn default() -> Self {
        Usage {
            pending: Mutex::default(),
            periodic: true,
        }
    }
}

#[derive(Debug, Default)]
struct Pending {
    api_keys: HashMap<String, Tally>,
    tokens: HashMap<String, Tally>,
}

/// One credential's use since the last flush, per UTC day (almost always
/// one day; two when a flush interval spans midnight).
#[derive(Debug, Clone, Default)]
struct Tally {
    days: Vec<DayUse>,
}

impl Tally {
    fn add(&mut self, at: DateTime<Utc>, kind: Use) {
        let date = at.date_naive();
        let day = match self.days.iter().position(|d| d.day == date) {
            Some(i) => &mut self.days[i],
            None => {
                self.days.push(DayUse {
                    day: date,
                    verifications: 0,
                    api_calls: 0,
                    last_used_at: at,
                });
                self.days.last_mut().expect("just pushed")
            }
        };
        day.last_used_at = day.last_used_at.max(at);
        match kind {
            Use::Verification => day.verifications += 1,
            Use::ApiCall => day.api_calls += 1,
        }
    }

    /// Adds `other`'s use (a batch that could not be written) to this one.
    fn merge(&mut self, other: Tally) {
        for d in other.days {
            match self.days.iter_mut().find(|mine| mine.day == d.day) {
                Some(mine) => {
                    mine.verifications += d.verifications;
                    mine.api_calls += d.api_calls;
                    mine.last_used_at = mine.last_used_at.max(d.last_used_at);
                }
                None => self.days.push(d),
            }
        }
    }
}

fn add(map: &mut HashMap<String, Tally>, id: &str, at: DateTime<Utc>, kind: Use) {
    match map.get_mut(id) {
        Some(t) => t.add(at, kind),
        None => {
            let mut t = Tally::default();
            t.add(at, kind);
            map.insert(id.to_owned(), t);
        }
    }
}

fn batches(map: &HashMap<String, Tally>) -> Vec<UsageBatch> {
    map.iter()
        .map(|(id, t)| UsageBatch {
            id: id.clone(),
            days: t.days.clone(),
        })
        .collect()
}

impl Usage {
    /// Use gathered in memory and written out only when the server stops
    /// (or [`Usage::flush`] is called): for telling a request's own writes
    /// from a periodic flush.
    pub fn held_until_stop() -> Usage {
        Usage {
            periodic: false,
            ..Usage::default()
        }
    }

    /// Is gathered use written out every [`FLUSH_INTERVAL`] while serving?
    pub fn is_periodic(&self) -> bool {
        self.periodic
    }

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
                    target.entry(id).or_default().merge(t);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

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
        let days = &p.tokens["tk"].days;
        assert_eq!(days.len(), 2);
        let on = |date: NaiveDate| days.iter().find(|d| d.day == date).unwrap();
        let (d1, d2) = (on(day1.date_naive()), on(day2.date_naive()));
        assert_eq!((d1.verifications, d1.api_calls), (3, 0));
        assert_eq!((d2.verifications, d2.api_calls), (0, 1));
        // Each day keeps its own last use: a flush across midnight must not
        // stamp the earlier day with a time of the later one.
        assert_eq!(d1.last_used_at, day1);
        assert_eq!(d2.last_used_at, day2);
        let key = &p.api_keys["key"].days;
        assert_eq!((key.len(), key[0].api_calls), (1, 1));
    }

    #[test]
    fn a_batch_that_could_not_be_written_is_merged_back() {
        let day1: DateTime<Utc> = "2030-01-01T10:00:00Z".parse().unwrap();
        let later: DateTime<Utc> = "2030-01-01T11:00:00Z".parse().unwrap();
        let mut mine = Tally::default();
        mine.add(day1, Use::Verification);
        let mut failed = Tally::default();
        failed.add(later, Use::ApiCall);
        failed.add(later, Use::Verification);
        mine.merge(failed);
        assert_eq!(mine.days.len(), 1);
        let d = &mine.days[0];
        assert_eq!(
            (d.verifications, d.api_calls, d.last_used_at),
            (2, 1, later)
        );
    }
}
