//! What every page shares: the layout's data, form errors, rendering and
//! links.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_only_given_values_and_encode_them() {
        assert_eq!(url_with("/a", &[("q", None), ("s", Some(""))]), "/a");
        assert_eq!(
            url_with("/a", &[("q", Some("x y&z")), ("s", Some("active"))]),
            "/a?q=x+y%26z&s=active"
        );
    }
}
