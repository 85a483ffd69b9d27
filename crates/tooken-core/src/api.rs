//! The API's wire format: request and response bodies, shared by the server
//! (which documents them in OpenAPI), the client library and the CLI.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::token::{TokenStatus, VerifyCode};
use crate::{Mode, Scope, Secret};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// `invalid_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `request_timeout`, `payload_too_large`, `rate_limited`,
    /// `unavailable` or `internal`.
    pub error: String,
    pub message: String,
    /// The request field at fault, for validation errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The scope the operation needs, for `forbidden`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_scope: Option<String>,
}

/// The `WWW-Authenticate` value of a `401` (RFC 6750): with
/// `error="invalid_token"` when a credential was presented.
pub fn www_authenticate_unauthorized(credential_presented: bool) -> &'static str {
    if credential_presented {
        r#"Bearer realm="tooken", error="invalid_token""#
    } else {
        r#"Bearer realm="tooken""#
    }
}

/// The `WWW-Authenticate` value of a `403` for want of `scope` (RFC 6750).
/// A validated scope is ASCII without quotes or control characters, so
/// this is a valid header value.
pub fn www_authenticate_insufficient_scope(scope: &str) -> String {
    format!(r#"Bearer error="insufficient_scope", scope="{scope}""#)
}

/// A token, as the API shows it. Never includes the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenObject {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub mode: Mode,
    pub scopes: Vec<Scope>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// Prefix, mode and last four characters of the current secret.
    pub hint: String,
    pub status: TokenStatus,
    pub created_at: DateTime<Utc>,
    /// The id of the API key or token that created it.
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The token through which it was created, if any.
    pub parent_id: Option<String>,
}

/// A token together with its secret: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenWithSecret {
    #[serde(flatten)]
    pub token: TokenObject,
    /// The token's secret. Shown once; Tooken keeps only its SHA-256.
    pub secret: Secret,
}

/// `POST /v1/tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// 1–128 characters.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// At most 1024 characters; no control characters but tab and line breaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    /// At most 50 scopes, each matching `^[a-z][a-z0-9_.-]*(:[a-z0-9_.*-]+)*$`.
    #[serde(default)]
    #[schema(value_type = Vec<Scope>, max_items = 50)]
    pub scopes: Vec<String>,
    /// A JSON object of at most 4 KiB, returned on verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// RFC 3339 time. Give this or `expires_in`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Lifetime in seconds from now (at most ten years).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 315_360_000)]
    pub expires_in: Option<i64>,
}

/// `PATCH /v1/tokens/{id}`: absent fields are left alone; `null` clears.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 128)]
    pub name: Option<String>,
    /// As on create; `null` clears it.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, max_length = 1024)]
    pub description: Option<Option<String>>,
    /// `null` clears it.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Option<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Scope>>, max_items = 50)]
    pub scopes: Option<Vec<String>>,
    /// `null` removes the expiry (if the workspace policy allows).
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

/// `POST /v1/tokens/{id}/rotate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateToken {
    /// 0–604800 seconds during which the previous secret keeps working.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604_800)]
    pub grace_period_seconds: i64,
}

/// `POST /v1/tokens/{id}/revoke`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeToken {
    /// Why, for the audit log: at most 256 characters, no control characters
    /// but tab and line breaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256)]
    pub reason: Option<String>,
}

/// A page of a list, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    /// Pass as `starting_after` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `POST /v1/tokens/verify`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The token a client presented to your service.
    pub token: Secret,
    /// Scopes the token must hold (a `resource:*` scope covers `resource:…`).
    #[serde(default)]
    #[schema(value_type = Vec<Scope>, max_items = 50)]
    pub scopes: Vec<String>,
}

/// What a downstream service needs to know about a verified token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifiedToken {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyResponse {
    /// True exactly when `code` is `VALID`.
    pub valid: bool,
    pub code: VerifyCode,
    /// Present whenever the token exists (in the caller's workspace and mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<VerifiedToken>,
}

/// `POST /v1/oauth/introspect` (form-encoded).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntrospectRequest {
    pub token: Secret,
    /// Accepted and ignored, as RFC 7662 allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type_hint: Option<String>,
}

/// RFC 7662 introspection response. Inactive tokens get `{"active":false}` only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntrospectResponse {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
}

/// `PATCH /v1/settings`: absent fields are left alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_expiration: Option<bool>,
    /// 1 second to ten years; `null` removes the limit.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 315_360_000)]
    pub max_token_ttl_seconds: Option<Option<i64>>,
    /// 1 second to ten years, at most `max_token_ttl_seconds`; `null`
    /// removes the default.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 315_360_000)]
    pub default_token_ttl_seconds: Option<Option<i64>>,
    /// 2–12 lowercase letters or digits, not `tok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9]{2,12}$")]
    pub token_prefix: Option<String>,
    /// 1–36500 days; `null` keeps events forever.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 36_500)]
    pub audit_retention_days: Option<Option<i64>>,
}

/// The calling credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Whoami {
    /// `api_key` or `token`.
    pub kind: String,
    pub id: String,
    pub name: String,
    pub hint: String,
    pub workspace: WorkspaceRef,
    pub mode: Mode,
    /// What the credential may do. For API keys: every built-in scope, plus settings.
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkspaceRef {
    pub id: String,
    pub name: String,
}

/// One day of a token's use (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DailyUsage {
    #[schema(value_type = String, format = Date)]
    pub date: chrono::NaiveDate,
    /// Successful verifications of the token.
    pub verifications: i64,
    /// Calls to the Tooken API made with the token.
    pub api_calls: i64,
}

/// `GET /v1/tokens/{id}/usage`: the last days of use, oldest first; days
/// without use are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenUsage {
    pub token_id: String,
    pub last_used_at: Option<DateTime<Utc>>,
    pub data: Vec<DailyUsage>,
}

/// Why a request body was refused: what is wrong, and the field at fault
/// when there is one (`scopes[2]`, `metadata`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub message: String,
    pub field: Option<String>,
}

/// Decodes a request body that must be one JSON object, strictly: anything
/// else (not JSON, an array, a field of the wrong type, an unknown field) is
/// a [`BodyError`] naming the field when it can. Total: never panics.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    // Serde would also accept an array for a struct; the API does not.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') {
        let valid_json = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        let message = if valid_json {
            "request body must be a JSON object"
        } else {
            "request body is not valid JSON"
        };
        return Err(BodyError {
            message: message.into(),
            field: None,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    // Trailing characters after the object are an error too.
    de.end().map_err(|e| BodyError {
        message: format!("request body is not valid JSON: {e}"),
        field: None,
    })?;
    Ok(value)
}

/// A serde error as a [`BodyError`] naming the field. Neither the message
/// nor the field repeats what the client sent unless it may be repeated
/// (see [`crate::redact`]): a secret pasted as a value or a field name is
/// not sent back.
fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> BodyError {
    let path = field_path(e.path());
    let inner = e.into_inner();
    let message = crate::redact::redact_serde_message(&inner.to_string());
    if inner.is_syntax() || inner.is_eof() {
        return BodyError {
            message: format!("request body is not valid JSON: {message}"),
            field: None,
        };
    }
    // The path already ends at an unknown field; a missing one is named
    // only in the message, below the path of its parent.
    let field = match message
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        Some(f) if path.is_empty() => f.to_owned(),
        Some(f) => format!("{path}.{f}"),
        None => path,
    };
    let field = (!field.is_empty()).then_some(field);
    let message = match &field {
        Some(f) => format!("{f}: {message}"),
        None => message,
    };
    BodyError { message, field }
}

/// The path of the field at fault (`scopes[2]`, `metadata`), each name in
/// it shown only if it may be repeated; empty at the top.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key: name } | Segment::Enum { variant: name } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(crate::redact::shown(name));
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// Deserializes a field that may be absent (`None`), `null` (`Some(None)`)
/// or a value (`Some(Some(v))`), for PATCH bodies where `null` clears.
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Deserialize::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn patch_bodies_tell_absent_from_null() {
        let p: UpdateToken = serde_json::from_str(r#"{"description": null}"#).unwrap();
        assert_eq!(p.description, Some(None));
        assert_eq!(p.metadata, None);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"description":null}"#
        );
    }

    #[test]
    fn a_body_is_one_object_and_nothing_else() {
        let ok: CreateToken = parse_json_object(b" {\"name\": \"a\"}\n").unwrap();
        assert_eq!(ok.name, "a");
        for bad in [
            &br#"{"name": "a"}{"name": "b"}"#[..],
            br#"{"name": "a"} x"#,
            br#"{"name": "a"}]"#,
            br#"["name"]"#,
            b"null",
            b"",
        ] {
            let e = parse_json_object::<CreateToken>(bad).unwrap_err();
            assert_eq!(e.field, None, "{}", String::from_utf8_lossy(bad));
        }
        let e = parse_json_object::<CreateToken>(br#"{"name": "a", "scopes": [1]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("scopes[0]"));
        let e = parse_json_object::<UpdateToken>(br#"{"nme": "a"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("nme"));
        let e = parse_json_object::<VerifyRequest>(b"{}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("token"));
    }

    /// A secret pasted in the wrong place is not sent back: not as a value
    /// of the wrong type, nor as a field name; the field is still named.
    #[test]
    fn refusals_do_not_repeat_secrets() {
        let secret = crate::Credential::generate("tkn", crate::Mode::Live);
        let s = secret.expose();
        for (body, field) in [
            (
                format!(r#"{{"name": "x", "expires_in": "{s}"}}"#),
                Some("expires_in".to_owned()),
            ),
            (
                format!(r#"{{"name": "x", "scopes": "{s}"}}"#),
                Some("scopes".to_owned()),
            ),
            (
                format!(r#"{{"name": "x", "scopes": [["{s}"]]}}"#),
                Some("scopes[0]".to_owned()),
            ),
            (
                format!(r#"{{"name": "x", "{s}": 1}}"#),
                Some("<redacted>".to_owned()),
            ),
            (
                format!(r#"{{"name": "x", "expires_at": "{s}"}}"#),
                Some("expires_at".to_owned()),
            ),
            (format!(r#"{{"name": "x", "scopes": ["{s}"#), None),
            (format!(r#"{{"name": {s}}}"#), None),
        ] {
            let e = parse_json_object::<CreateToken>(body.as_bytes()).unwrap_err();
            assert_eq!(e.field, field, "{body}");
            assert!(!e.message.contains(&s[9..25]), "{}", e.message);
        }
        // Plain names are still named, to help with a typo.
        let e =
            parse_json_object::<CreateToken>(br#"{"name": "x", "expires_inn": 1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("expires_inn"));
        assert!(
            e.message.contains("unknown field `expires_inn`"),
            "{}",
            e.message
        );
        let e = parse_json_object::<CreateToken>(br#"{"name": "x", "expires_in": "soon"}"#)
            .unwrap_err();
        assert!(
            e.message.contains("string \"soon\", expected i64"),
            "{}",
            e.message
        );
    }

    /// The limits the OpenAPI document states are the ones enforced.
    #[test]
    fn documented_limits_are_the_enforced_ones() {
        use utoipa::PartialSchema;
        let create = serde_json::to_value(CreateToken::schema()).unwrap();
        let field = |name: &str| create["properties"][name].clone();
        assert_eq!(field("name")["maxLength"], crate::text::MAX_NAME_CHARS);
        assert_eq!(
            field("description")["maxLength"],
            crate::text::MAX_DESCRIPTION_CHARS
        );
        assert_eq!(field("scopes")["maxItems"], crate::scope::MAX_SCOPES);
        assert_eq!(
            field("expires_in")["maximum"],
            crate::policy::MAX_TTL_SECONDS
        );
        let revoke = serde_json::to_value(RevokeToken::schema()).unwrap();
        assert_eq!(
            revoke["properties"]["reason"]["maxLength"],
            crate::text::MAX_REASON_CHARS
        );
        let settings = serde_json::to_value(UpdateSettings::schema()).unwrap();
        for ttl in ["max_token_ttl_seconds", "default_token_ttl_seconds"] {
            assert_eq!(
                settings["properties"][ttl]["maximum"],
                crate::policy::MAX_TTL_SECONDS
            );
        }
        let scope = serde_json::to_value(Scope::schema()).unwrap();
        assert_eq!(scope["pattern"], crate::scope::SCOPE_PATTERN);
        assert_eq!(scope["maxLength"], crate::scope::MAX_SCOPE_LEN);
    }

    #[test]
    fn numbers_keep_every_digit() {
        let body = br#"{"name": "n", "metadata": {"x": -1.4049482673580393e+289}}"#;
        let req: CreateToken = parse_json_object(body).unwrap();
        assert_eq!(
            req.metadata.unwrap()["x"].as_f64(),
            Some(-1.4049482673580393e+289)
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Decoding never panics, and accepts only a single JSON object
        /// (with whitespace around it at most).
        #[test]
        fn body_decoding_is_total_and_strict(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            for result in [
                parse_json_object::<CreateToken>(&bytes).map(|_| ()),
                parse_json_object::<UpdateSettings>(&bytes).map(|_| ()),
                parse_json_object::<RotateToken>(&bytes).map(|_| ()),
            ] {
                if result.is_ok() {
                    let whole = serde_json::from_slice::<Value>(&bytes);
                    prop_assert!(whole.is_ok_and(|v| v.is_object()));
                }
            }
        }

        /// Any JSON value for any field, and anything after the object:
        /// accepted only when the value has the field's type and nothing
        /// follows; a refusal names the field or says the body is not JSON.
        #[test]
        fn bodies_are_decoded_field_by_field(
            field in "name|description|scopes|metadata|expires_at|expires_in|extra",
            value in json_value(),
            after in "|[ \n]|[ ]?[\\[\\]{}a-z0-9,\":]{1,4}",
        ) {
            let mut body = serde_json::Map::new();
            body.insert("name".into(), Value::from("n"));
            body.insert(field.clone(), value.clone());
            let text = format!("{}{after}", Value::Object(body.clone()));
            let direct = serde_json::from_value::<CreateToken>(Value::Object(body));
            match parse_json_object::<CreateToken>(text.as_bytes()) {
                Ok(req) => {
                    prop_assert!(after.trim().is_empty(), "accepted {text:?}");
                    let direct = direct.unwrap();
                    prop_assert_eq!(
                        serde_json::to_value(&req).unwrap(),
                        serde_json::to_value(&direct).unwrap()
                    );
                }
                Err(e) if direct.is_err() => {
                    let named = e.field.as_deref().map(|f| f.split('[').next().unwrap_or(f));
                    prop_assert_eq!(named, Some(field.as_str()), "{:?}", e);
                }
                Err(e) => {
                    prop_assert!(!after.trim().is_empty(), "refused {text:?}: {e:?}");
                    prop_assert_eq!(e.field, None);
                }
            }
        }
    }
}
