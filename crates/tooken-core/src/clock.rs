//! The clock is injected so that expiry and grace periods can be tested
//! without sleeping.

use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Duration, DurationRound, Utc};

pub trait Clock: Send + Sync + 'static {
    /// The current time, truncated to milliseconds (the store's precision).
    fn now(&self) -> DateTime<Utc>;

    /// A monotonic reading, for measuring how long something has lasted (a
    /// cache entry's age): unlike [`Clock::now`], it never jumps when the
    /// wall clock is set.
    fn monotonic(&self) -> Instant {
        Instant::now()
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_to_millis(Utc::now())
    }
}

/// A clock that only moves when told to. For tests.
///
/// [`ManualClock::advance`] moves both its wall time and its monotonic
/// reading; [`ManualClock::set`] moves only the wall time, as setting a
/// system clock would.
#[derive(Debug)]
pub struct ManualClock(Mutex<Readings>);

#[derive(Debug)]
struct Readings {
    now: DateTime<Utc>,
    monotonic: Instant,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(Readings {
            now: truncate_to_millis(start),
            monotonic: Instant::now(),
        }))
    }

    /// Moves time forward by `by` (backward, for the wall time only, when
    /// `by` is negative).
    pub fn advance(&self, by: Duration) {
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        r.now += by;
        if let Ok(forward) = by.to_std() {
            r.monotonic += forward;
        }
    }

    pub fn set(&self, to: DateTime<Utc>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).now = truncate_to_millis(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).now
    }

    fn monotonic(&self) -> Instant {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).monotonic
    }
}

pub fn truncate_to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::milliseconds(1)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = "2030-01-01T00:00:00.123456Z".parse().unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), truncate_to_millis(start));
        let (t0, m0) = (clock.now(), clock.monotonic());
        assert_eq!((clock.now(), clock.monotonic()), (t0, m0));
        clock.advance(Duration::milliseconds(1500));
        assert_eq!(clock.now(), t0 + Duration::milliseconds(1500));
        assert_eq!(
            clock.monotonic(),
            m0 + std::time::Duration::from_millis(1500)
        );
        // Setting the wall clock (even backwards) is no passing of time.
        clock.set(t0 - Duration::days(1));
        assert_eq!(clock.now(), t0 - Duration::days(1));
        assert_eq!(
            clock.monotonic(),
            m0 + std::time::Duration::from_millis(1500)
        );
        clock.advance(Duration::seconds(-5));
        assert_eq!(clock.now(), t0 - Duration::days(1) - Duration::seconds(5));
        assert_eq!(
            clock.monotonic(),
            m0 + std::time::Duration::from_millis(1500)
        );
    }

    #[test]
    fn the_system_clock_is_truncated_to_milliseconds_and_moves_forward() {
        let a = SystemClock.now();
        assert_eq!(a.timestamp_subsec_nanos() % 1_000_000, 0);
        let m = SystemClock.monotonic();
        assert!(SystemClock.monotonic() >= m);
        assert!(SystemClock.now() >= a);
    }
}
