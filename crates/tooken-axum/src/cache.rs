//! The verdict cache.
//!
//! Keyed by the SHA-256 of the presented token, never the token itself: a
//! memory dump of the service does not yield usable credentials. Ages are
//! measured on the monotonic clock (`Instant`, read through the layer's
//! `Clock::monotonic`), so a wall-clock jump cannot stretch a cache
//! lifetime; `expires_at` is compared with the wall clock (`now`), as
//! Tooken itself does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::TookenToken;

/// SHA-256 of a presented token.
pub(crate) type Key = [u8; 32];

/// What Tooken said about a token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    Valid(TookenToken),
    Invalid,
}

#[derive(Debug)]
struct Entry {
    verdict: Verdict,
    /// When the verification that produced `verdict` started: ages count
    /// from before the question was asked, so an entry never outlives its
    /// TTL measured from Tooken's answer.
    verified_at: Instant,
}

/// How long answers are used.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    /// Valid answers are served this long.
    pub valid: Duration,
    /// Invalid answers are served this long.
    pub invalid: Duration,
    /// Valid answers are kept this long (≥ `valid`) for use while Tooken is
    /// unreachable, when so configured.
    pub keep_valid: Duration,
}

#[derive(Debug)]
pub(crate) struct Cache {
    entries: Mutex<HashMap<Key, Entry>>,
    lifetimes: Lifetimes,
    capacity: usize,
}

impl Cache {
    pub fn new(lifetimes: Lifetimes, capacity: usize) -> Cache {
        Cache {
            entries: Mutex::new(HashMap::new()),
            lifetimes,
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // The map is consistent after every statement; a panic elsewhere
        // while holding the lock leaves nothing half-done.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// A verdict still within its lifetime at `at`; a valid one only before
    /// the token's `expires_at` (checked against `now`).
    pub fn fresh(&self, key: &Key, at: Instant, now: DateTime<Utc>) -> Option<Verdict> {
        let mut entries = self.lock();
        let entry = entries.get(key)?;
        let age = at.saturating_duration_since(entry.verified_at);
        match &entry.verdict {
            Verdict::Valid(token) if token.is_expired_at(now) => {
                entries.remove(key);
                None
            }
            Verdict::Valid(_) if age < self.lifetimes.valid => Some(entry.verdict.clone()),
            Verdict::Invalid if age < self.lifetimes.invalid => Some(Verdict::Invalid),
            _ => None,
        }
    }

    /// A valid verdict at most `max_age` old and not past `expires_at`: the
    /// fallback while Tooken cannot be asked.
    pub fn last_valid(
        &self,
        key: &Key,
        max_age: Duration,
        at: Instant,
        now: DateTime<Utc>,
    ) -> Option<TookenToken> {
        let entries = self.lock();
        let entry = entries.get(key)?;
        match &entry.verdict {
            Verdict::Valid(token)
                if at.saturating_duration_since(entry.verified_at) < max_age
                    && !token.is_expired_at(now) =>
            {
                Some(token.clone())
            }
            _ => None,
        }
    }

    /// Records a verdict. An older verification finishing late never
    /// replaces a newer one (e.g. a `REVOKED` learnt meanwhile).
    pub fn insert(
        &self,
        key: Key,
        verdict: Verdict,
        verified_at: Instant,
        at: Instant,
        now: DateTime<Utc>,
    ) {
        let lifetime = match &verdict {
            Verdict::Valid(_) => self.lifetimes.keep_valid,
            Verdict::Invalid => self.lifetimes.invalid,
        };
        if self.capacity == 0 || lifetime.is_zero() {
            return;
        }
        let mut entries = self.lock();
        match entries.get(&key) {
            Some(existing) if existing.verified_at > verified_at => return,
            Some(_) => {}
            None if entries.len() >= self.capacity => self.make_room(&mut entries, at, now),
            None => {}
        }
        entries.insert(
            key,
            Entry {
                verdict,
                verified_at,
            },
        );
    }

    /// Drops entries past use; if the cache is still full, drops a tenth of
    /// it, invalid verdicts first, then the oldest. (Amortized: one full
    /// pass every `capacity / 10` insertions at worst.)
    fn make_room(&self, entries: &mut HashMap<Key, Entry>, at: Instant, now: DateTime<Utc>) {
        entries.retain(|_, e| {
            let age = at.saturating_duration_since(e.verified_at);
            match &e.verdict {
                Verdict::Valid(t) => age < self.lifetimes.keep_valid && !t.is_expired_at(now),
                Verdict::Invalid => age < self.lifetimes.invalid,
            }
        });
        if entries.len() < self.capacity {
            return;
        }
        let evict = (self.capacity / 10).max(1);
        let mut by_worth: Vec<(bool, Instant, Key)> = entries
            .iter()
            .map(|(k, e)| (matches!(e.verdict, Verdict::Valid(_)), e.verified_at, *k))
            .collect();
        by_worth.select_nth_unstable_by_key(evict - 1, |&(valid, at, _)| (valid, at));
        for (_, _, key) in &by_worth[..evict] {
            entries.remove(key);
        }
    }

    #[cfg(test)]
    fn keys(&self) -> Vec<Key> {
        self.lock().keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use tooken_core::{Mode, SecretHash};

    const TTL: Duration = Duration::from_secs(5);
    const NEG: Duration = Duration::from_secs(1);

    fn cache(capacity: usize, keep_valid: Duration) -> Cache {
        Cache::new(
            Lifetimes {
                valid: TTL,
                invalid: NEG,
                keep_valid,
            },
            capacity,
        )
    }

    fn token(expires_at: Option<DateTime<Utc>>) -> TookenToken {
        TookenToken {
            id: "tk_1".into(),
            name: "svc".into(),
            scopes: vec![],
            metadata: None,
            expires_at,
            mode: Mode::Live,
        }
    }

    fn key(n: u32) -> Key {
        SecretHash::of(&format!("token-{n}")).0
    }

    #[test]
    fn a_valid_verdict_is_served_for_the_ttl_and_no_longer() {
        let c = cache(10, TTL);
        let t0 = Instant::now();
        let now = Utc::now();
        c.insert(key(1), Verdict::Valid(token(None)), t0, t0, now);
        let hit = c.fresh(&key(1), t0 + TTL - Duration::from_millis(1), now);
        assert_eq!(hit, Some(Verdict::Valid(token(None))));
        assert_eq!(c.fresh(&key(1), t0 + TTL, now), None);
        assert_eq!(c.fresh(&key(2), t0, now), None);
    }

    #[test]
    fn a_valid_verdict_is_never_served_past_expires_at() {
        let c = cache(10, Duration::from_secs(3600));
        let t0 = Instant::now();
        let now = Utc::now();
        let expires = now + TimeDelta::seconds(2);
        c.insert(key(1), Verdict::Valid(token(Some(expires))), t0, t0, now);
        assert!(c
            .fresh(&key(1), t0, expires - TimeDelta::milliseconds(1))
            .is_some());
        // Not even as a fallback.
        assert_eq!(c.last_valid(&key(1), TTL, t0, expires), None);
        assert_eq!(c.fresh(&key(1), t0, expires), None);
        assert_eq!(c.len(), 0, "an expired entry is dropped when met");
    }

    #[test]
    fn an_invalid_verdict_is_served_for_the_negative_ttl() {
        let c = cache(10, TTL);
        let t0 = Instant::now();
        let now = Utc::now();
        c.insert(key(1), Verdict::Invalid, t0, t0, now);
        assert_eq!(c.fresh(&key(1), t0 + NEG / 2, now), Some(Verdict::Invalid));
        assert_eq!(c.fresh(&key(1), t0 + NEG, now), None);
    }

    #[test]
    fn a_late_older_answer_does_not_replace_a_newer_one() {
        let c = cache(10, TTL);
        let t0 = Instant::now();
        let now = Utc::now();
        let later = t0 + Duration::from_millis(10);
        c.insert(key(1), Verdict::Invalid, later, later, now);
        c.insert(key(1), Verdict::Valid(token(None)), t0, later, now);
        assert_eq!(c.fresh(&key(1), later, now), Some(Verdict::Invalid));
    }

    #[test]
    fn the_fallback_uses_only_valid_verdicts_younger_than_max_age() {
        let c = cache(10, Duration::from_secs(60));
        let t0 = Instant::now();
        let now = Utc::now();
        c.insert(key(1), Verdict::Valid(token(None)), t0, t0, now);
        c.insert(key(2), Verdict::Invalid, t0, t0, now);
        let at = t0 + Duration::from_secs(30);
        assert_eq!(c.fresh(&key(1), at, now), None);
        let max_age = Duration::from_secs(60);
        assert_eq!(c.last_valid(&key(1), max_age, at, now), Some(token(None)));
        assert_eq!(c.last_valid(&key(2), max_age, at, now), None);
        assert_eq!(
            c.last_valid(&key(1), Duration::from_secs(30), at, now),
            None
        );
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let c = cache(100, TTL);
        let t0 = Instant::now();
        let now = Utc::now();
        for n in 0..1000 {
            let at = t0 + Duration::from_micros(n.into());
            c.insert(key(n), Verdict::Valid(token(None)), at, at, now);
            assert!(c.len() <= 100);
        }
        // The newest survive.
        assert!(c
            .fresh(&key(999), t0 + Duration::from_millis(1), now)
            .is_some());
        assert!(c
            .fresh(&key(0), t0 + Duration::from_millis(1), now)
            .is_none());
    }

    #[test]
    fn invalid_verdicts_are_evicted_before_valid_ones() {
        let c = cache(10, TTL);
        let t0 = Instant::now();
        let now = Utc::now();
        c.insert(key(0), Verdict::Valid(token(None)), t0, t0, now);
        for n in 1..100 {
            let at = t0 + Duration::from_micros(n.into());
            c.insert(key(n), Verdict::Invalid, at, at, now);
        }
        assert!(c.fresh(&key(0), t0, now).is_some());
    }

    #[test]
    fn expired_entries_are_dropped_before_live_ones_when_full() {
        let c = cache(2, TTL);
        let t0 = Instant::now();
        let now = Utc::now();
        c.insert(key(1), Verdict::Valid(token(None)), t0, t0, now);
        c.insert(key(2), Verdict::Invalid, t0, t0, now);
        // Later, the invalid verdict is past its lifetime: it makes room.
        let at = t0 + NEG;
        c.insert(key(3), Verdict::Valid(token(None)), at, at, now);
        assert_eq!(c.len(), 2);
        assert!(c.fresh(&key(1), at, now).is_some());
        assert!(c.fresh(&key(3), at, now).is_some());
    }

    #[test]
    fn zero_capacity_or_lifetime_caches_nothing() {
        let t0 = Instant::now();
        let now = Utc::now();
        let c = cache(0, TTL);
        c.insert(key(1), Verdict::Valid(token(None)), t0, t0, now);
        assert_eq!(c.len(), 0);
        let c = Cache::new(
            Lifetimes {
                valid: Duration::ZERO,
                invalid: Duration::ZERO,
                keep_valid: Duration::ZERO,
            },
            10,
        );
        c.insert(key(1), Verdict::Valid(token(None)), t0, t0, now);
        c.insert(key(2), Verdict::Invalid, t0, t0, now);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn keys_are_hashes_and_entries_hold_no_secret() {
        let secret = "tkn_live_0123456789abcdefghijABCDEFGHIJ012345";
        let c = cache(10, TTL);
        let t0 = Instant::now();
        let now = Utc::now();
        c.insert(
            SecretHash::of(secret).0,
            Verdict::Valid(token(None)),
            t0,
            t0,
            now,
        );
        assert_eq!(c.keys(), vec![SecretHash::of(secret).0]);
        assert!(!format!("{c:?}").contains(secret));
    }
}
