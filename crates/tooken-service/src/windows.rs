//! Failures counted per key (a client address, an account) over a fixed
//! window that starts at the first failure: what brute-force protection
//! counts, for the API and for dashboard sign-ins alike.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Entries beyond this many keys trigger a sweep of ended windows, so a
/// spray of addresses or emails cannot grow memory without bound.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug)]
struct Window {
    started: DateTime<Utc>,
    failures: u32,
}

/// Failures per key within the current window of each.
#[derive(Debug)]
pub struct FailureWindows<K> {
    window: Duration,
    // std Mutex: held for a map operation only, never across an await.
    windows: Mutex<HashMap<K, Window>>,
}

impl<K: Hash + Eq> FailureWindows<K> {
    /// Windows `window` long.
    pub fn new(window: Duration) -> FailureWindows<K> {
        FailureWindows {
            window,
            windows: Mutex::default(),
        }
    }

    /// How long `key` stays refused: the rest of its window, when it has
    /// `limit` failures or more in it.
    pub fn blocked_for(&self, key: &K, limit: u32, now: DateTime<Utc>) -> Option<Duration> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows
            .get(key)
            .filter(|w| w.failures >= limit && now < w.started + self.window)
            .map(|w| w.started + self.window - now)
    }

    /// Counts a failure of `key`; returns its failures in the window so far.
    pub fn count(&self, key: K, now: DateTime<Utc>) -> u32 {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| now < w.started + self.window);
        }
        let w = windows.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started + self.window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
        w.failures
    }

    /// Forgets `key`'s failures (it succeeded).
    pub fn forget(&self, key: &K) {
        self.windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}
