//! How times and durations read on the dashboard's pages.

use chrono::{DateTime, Utc};

/// `2025-01-31 14:05 UTC`.
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// [`time`], or `none` when there is no time.
pub fn opt_time(t: Option<DateTime<Utc>>, none: &str) -> String {
    t.map(time).unwrap_or_else(|| none.to_owned())
}

/// `3 hours ago`, `in 5 days`, `just now`.
pub fn relative(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    if secs.abs() < 60 {
        return "just now".into();
    }
    let span = human_seconds(secs.abs());
    if secs < 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// A rough, readable length of time: `1 day`, `3 hours`, `45 seconds`.
pub fn human_seconds(secs: i64) -> String {
    let units = [
        (365 * 86_400, "year"),
        (30 * 86_400, "month"),
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
    ];
    for (size, name) in units {
        if secs >= size {
            let n = secs / size;
            return format!("{n} {name}{}", if n == 1 { "" } else { "s" });
        }
    }
    format!("{secs} second{}", if secs == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_seconds(1), "1 second");
        assert_eq!(human_seconds(59), "59 seconds");
        assert_eq!(human_seconds(3600), "1 hour");
        assert_eq!(human_seconds(7 * 86_400), "7 days");
        assert_eq!(human_seconds(400 * 86_400), "1 year");
    }
}
