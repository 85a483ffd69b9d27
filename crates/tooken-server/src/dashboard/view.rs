//! What every page shares: the layout's data, rendering, and how times and
//! durations read.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};

use super::error::DashResult;

/// The layout's data: who is signed in, where, and which page is shown.
#[derive(Debug, Clone)]
pub struct Nav {
    pub user_name: String,
    pub user_email: String,
    pub workspace_name: String,
    pub workspaces: Vec<WorkspaceOption>,
    /// Live data shown (else test data).
    pub live: bool,
    /// This session's CSRF token, for the forms of the page.
    pub csrf: String,
    pub owner: bool,
    pub role: &'static str,
    /// The sidebar entry to highlight.
    pub active: &'static str,
}

#[derive(Debug, Clone)]
pub struct WorkspaceOption {
    pub id: String,
    pub name: String,
    pub current: bool,
}

/// Errors of a submitted form, each next to its field.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(Vec<(String, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push((field.into(), message.into()));
    }

    /// The error of `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Renders a page with `200`.
pub fn render(t: &impl Template) -> DashResult<Response> {
    Ok(Html(t.render()?).into_response())
}

/// Renders a page with another status (a form with errors is `400`).
pub fn render_with(status: StatusCode, t: &impl Template) -> DashResult<Response> {
    Ok((status, Html(t.render()?)).into_response())
}

/// After a successful POST: go (GET) to `to`.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// `path?k=v&…` with the pairs that have a non-empty value, encoded.
pub fn url_with(path: &str, pairs: &[(&str, Option<&str>)]) -> String {
    let present: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v)))
        .collect();
    if present.is_empty() {
        return path.to_owned();
    }
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(present).unwrap_or_default()
    )
}

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

    #[test]
    fn urls_keep_only_given_values_and_encode_them() {
        assert_eq!(url_with("/a", &[("q", None), ("s", Some(""))]), "/a");
        assert_eq!(
            url_with("/a", &[("q", Some("x y&z")), ("s", Some("active"))]),
            "/a?q=x+y%26z&s=active"
        );
    }
}
