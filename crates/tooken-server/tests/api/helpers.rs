use reqwest::StatusCode;
use serde_json::Value;

pub use tooken_testkit::{Backend, TestApp, UNAUTHORIZED_BODY};

/// Asserts a `400 invalid_request` naming `field`.
pub fn assert_invalid(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert_eq!(body["field"], field, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}
