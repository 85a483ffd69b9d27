//! Brute-force protection: repeated authentication failures from one client
//! address are first slowed down, then answered `429` until the window ends.
//! Other addresses are not affected.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// How many failures an address may have before it is slowed, then blocked.
#[derive(Debug, Clone)]
pub struct AuthLimits {
    /// Failures are counted per address over this window.
    pub window: Duration,
    /// After this many failures in a window, each further failure is delayed.
    pub slow_after: u32,
    /// After this many failures in a window, the address gets `429` until
    /// the window ends, without any credential being checked.
    pub block_after: u32,
    /// Delay added per failure beyond `slow_after`, up to `max_delay`.
    pub delay_step: Duration,
    pub max_delay: Duration,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            window: Duration::from_secs(60),
            slow_after: 10,
            block_after: 30,
            delay_step: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        }
    }
}

#[derive(Debug)]
struct Window {
    started: DateTime<Utc>,
    failures: u32,
}

/// Entries beyond this many addresses trigger a sweep of expired windows, so
/// a spray from many addresses cannot grow memory without bound.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub struct Throttle {
    limits: AuthLimits,
    // std Mutex: held for a map lookup only, never across an await.
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl Throttle {
    pub fn new(limits: AuthLimits) -> Throttle {
        Throttle {
            limits,
            windows: Mutex::default(),
        }
    }

    fn window_len(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.limits.window).unwrap_or(chrono::Duration::seconds(60))
    }

    /// `Err(seconds)` when `ip` is blocked: answer 429 with that Retry-After.
    pub fn check(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<(), u64> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match windows.get(&ip) {
            Some(w)
                if w.failures >= self.limits.block_after && now < w.started + self.window_len() =>
            {
                let left = (w.started + self.window_len() - now).num_milliseconds();
                Err(((left + 999) / 1000).max(1) as u64)
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure from `ip`; returns how long to delay the answer.
    pub fn failure(&self, ip: IpAddr, now: DateTime<Utc>) -> Duration {
        let window = self.window_len();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| now < w.started + window);
        }
        let w = windows.entry(ip).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started + window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
        let excess = w.failures.saturating_sub(self.limits.slow_after);
        (self.limits.delay_step * excess).min(self.limits.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AuthLimits {
        AuthLimits {
            window: Duration::from_secs(60),
            slow_after: 2,
            block_after: 4,
            delay_step: Duration::from_millis(10),
            max_delay: Duration::from_millis(25),
        }
    }

    #[test]
    fn slows_then_blocks_then_forgets() {
        let t = Throttle::new(limits());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let now = Utc::now();
        assert_eq!(t.failure(ip, now), Duration::ZERO);
        assert_eq!(t.failure(ip, now), Duration::ZERO);
        assert_eq!(t.failure(ip, now), Duration::from_millis(10));
        assert!(t.check(ip, now).is_ok());
        assert_eq!(t.failure(ip, now), Duration::from_millis(20));
        assert_eq!(t.check(ip, now), Err(60));
        assert_eq!(t.check(ip, now + chrono::Duration::seconds(30)), Err(30));
        assert!(t.check(ip, now + chrono::Duration::seconds(60)).is_ok());
        assert_eq!(
            t.failure(ip, now + chrono::Duration::seconds(60)),
            Duration::ZERO
        );
    }

    #[test]
    fn addresses_are_counted_apart() {
        let t = Throttle::new(limits());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let now = Utc::now();
        for _ in 0..10 {
            t.failure(a, now);
        }
        assert!(t.check(a, now).is_err());
        assert!(t.check(b, now).is_ok());
    }

    #[test]
    fn delay_is_capped() {
        let t = Throttle::new(limits());
        let ip: IpAddr = "::1".parse().unwrap();
        let now = Utc::now();
        let mut last = Duration::ZERO;
        for _ in 0..100 {
            last = t.failure(ip, now);
        }
        assert_eq!(last, Duration::from_millis(25));
    }
}
