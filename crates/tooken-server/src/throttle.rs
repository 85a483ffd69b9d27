//! Brute-force protection: repeated authentication failures from one client
//! address are first slowed down, then answered `429` until the window ends.
//! Other addresses are not affected.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tooken_service::FailureWindows;

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
pub struct Throttle {
    limits: AuthLimits,
    failures: FailureWindows<IpAddr>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(AuthLimits::default())
    }
}

impl Throttle {
    pub fn new(limits: AuthLimits) -> Throttle {
        let window =
            chrono::Duration::from_std(limits.window).unwrap_or(chrono::Duration::seconds(60));
        Throttle {
            failures: FailureWindows::new(window),
            limits,
        }
    }

    /// `Err(seconds)` when `ip` is blocked: answer 429 with that Retry-After.
    pub fn check(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<(), u64> {
        match self.failures.blocked_for(&ip, self.limits.block_after, now) {
            Some(left) => Err(((left.num_milliseconds() + 999) / 1000).max(1) as u64),
            None => Ok(()),
        }
    }

    /// Counts a failure from `ip`; returns how long to delay the answer.
    pub fn failure(&self, ip: IpAddr, now: DateTime<Utc>) -> Duration {
        let failures = self.failures.count(ip, now);
        let excess = failures.saturating_sub(self.limits.slow_after);
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
