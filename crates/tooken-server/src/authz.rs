//! Gateways (SPEC §12): the route rules (`GET|PUT /v1/authz/rules`) and the
//! forward-auth endpoint that nginx (`auth_request`), Caddy
//! (`forward_auth`), Traefik (`forwardAuth`) and Envoy (HTTP `ext_authz`)
//! ask about each request before letting it through. The decision is the
//! service's ([`tooken_service::Service::forward`]); this module reads the
//! gateway's request and renders the answer ([`answer`], which the gRPC
//! `Check` service shares).
//!
//! # What a gateway sends
//!
//! - Its own credential (an API key, or a token with `tokens:verify`) in
//!   `Tooken-Gateway-Key`, or, for gateways that cannot add a header to
//!   their auth request without also sending it upstream (Traefik), in the
//!   path: `/v1/authz/traefik/{gateway_key}` (the request log shows the
//!   path with the key redacted; metrics show the route template).
//! - The client's `Authorization: Bearer <token>`, as the client sent it.
//! - The original method and URI: in `X-Forwarded-Method` (or
//!   `X-Original-Method`) and `X-Forwarded-Uri` (or `X-Original-URI`);
//!   when both names of one are sent they must agree. Without a method
//!   header, the request's own method is the original one (nginx's
//!   subrequests keep it). Envoy's HTTP `ext_authz` appends the original
//!   path to the configured prefix instead: on
//!   `/v1/authz/forward/{original path}` the request's own method and the
//!   path after `/v1/authz/forward` are the original ones, and those
//!   headers are not read (a client could have sent them).
//! - The client's address in `X-Forwarded-For`/`Forwarded`, read as for
//!   every request: only from a trusted proxy (SPEC §10).
//!
//! `?deny_status=403` (not on Envoy's form, whose query string is the
//! client's) turns a rate-limit refusal from `429` into `403` with
//! `X-Tooken-Code: RATE_LIMITED`, for nginx, whose `auth_request` passes on
//! only `401` and `403`.
//!
//! # What it answers
//!
//! `200` with the token's `X-Tooken-Token-Id`, `X-Tooken-Scopes` and
//! `X-Tooken-Metadata` (or `X-Tooken-Metadata-Omitted: too-large`) for the
//! gateway to pass upstream, or with none of them on a public route;
//! `401` (section 3's body and `WWW-Authenticate`) when the client's token
//! is missing or not accepted; `403` with `X-Tooken-Code` when a rule
//! refuses (`INSUFFICIENT_SCOPE` with `required_scope`, a caveat's code,
//! `NO_MATCHING_RULE`, `PATH_REFUSED`). A refusal of the gateway's own
//! key carries `X-Tooken-Error: invalid_gateway_key`, so a gateway (and
//! whoever reads its logs) can tell it from a refused client.
//!
//! Every answer says `Cache-Control: no-store`, unless the server runs with
//! `--gateway-cache-seconds N`: then a `200` may be reused by the gateway
//! for at most `N` seconds (never past the token's expiry), which is how
//! long a revoked token may still get through such a gateway. Every `200`
//! also names, in `x-envoy-auth-headers-to-remove`, the `X-Tooken-*`
//! request headers it does not set, so that Envoy removes what a client
//! sent under those names.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use tooken_core::authz::{
    envoy_original_uri, metadata_header, scopes_header, MetadataHeader, RulesAnswer, RulesSpec,
    ERROR_INVALID_GATEWAY_KEY, FORWARD_PATH, HEADER_CODE, HEADER_ERROR, HEADER_GATEWAY_KEY,
    HEADER_METADATA, HEADER_METADATA_OMITTED, HEADER_SCOPES, HEADER_TOKEN_ID,
    METADATA_OMITTED_TOO_LARGE,
};
use tooken_core::token::VerifyCode;
use tooken_core::Credential;
use tooken_service::{Caller, ClientCredential, Decision, Forwarded, Rejection, ServiceError};

use crate::auth::authenticate;
use crate::client::client_ip;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::AppState;

/// Largest `PUT /v1/authz/rules` body: room for the 1,000 rules allowed,
/// and for a list far over that limit to be told so.
pub const RULES_BODY_BYTES: usize = 1024 * 1024;

/// The path prefix of the route with the gateway's key in the path.
pub const KEYED_FORWARD_PREFIX: &str = "/v1/authz/traefik/";

/// `X-Tooken-Code` of a request no rule matches.
pub const CODE_NO_MATCHING_RULE: &str = "NO_MATCHING_RULE";
/// `X-Tooken-Code` of a request whose path is refused (SPEC §12).
pub const CODE_PATH_REFUSED: &str = "PATH_REFUSED";

/// Envoy's HTTP `ext_authz`: request headers to remove before the
/// request goes upstream, named by the authorization server.
const ENVOY_HEADERS_TO_REMOVE: &str = "x-envoy-auth-headers-to-remove";

/// Longest `--gateway-cache-seconds`.
pub const MAX_GATEWAY_CACHE_SECONDS: u32 = 300;

/// How the forward-auth answers may be reused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayOptions {
    /// How long a gateway may reuse a `200` (`Cache-Control: private,
    /// max-age`), at most [`MAX_GATEWAY_CACHE_SECONDS`]; `0` (the default):
    /// never (`no-store`). A revoked token gets through a caching gateway
    /// for up to this long.
    pub cache_seconds: u32,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/authz/rules", get(get_authz_rules).put(put_authz_rules))
        .route(FORWARD_PATH, any(forward_auth))
        .route("/v1/authz/forward/", any(forward_auth))
        .route("/v1/authz/forward/{*original}", any(forward_auth))
        .route("/v1/authz/traefik/{gateway_key}", any(forward_auth))
}

/// The route rules of the caller's workspace and mode, with warnings about
/// rules that can never match. An API key (of that mode).
#[utoipa::path(get, path = "/v1/authz/rules", tag = "gateways",
    responses((status = 200, body = RulesAnswer), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn get_authz_rules(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<RulesAnswer>> {
    Ok(Json(state.service.authz_rules(&caller).await?))
}

/// Replaces the route rules of the caller's workspace and mode: at most
/// 1,000 rules, first match wins, a request no rule matches is refused.
/// Every node decides by the new rules once this is answered. Recorded in
/// the audit log as `authz_rules.updated` with the old and new rules. An
/// API key (of that mode).
#[utoipa::path(put, path = "/v1/authz/rules", tag = "gateways", request_body = RulesSpec,
    responses((status = 200, body = RulesAnswer,
            description = "The rules as stored, and the rules that can never match"),
        (status = 400, body = ErrorBody,
            description = "A rule is invalid: `field` names it, e.g. `rules[3].path`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "The body is larger than 1 MiB")))]
pub async fn put_authz_rules(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(spec): ApiJson<RulesSpec, RULES_BODY_BYTES>,
) -> ApiResult<Json<RulesAnswer>> {
    Ok(Json(state.service.set_authz_rules(&caller, &spec).await?))
}

/// Forward authentication for gateways (any method; see the module
/// documentation of the server for each gateway's configuration). Also
/// `/v1/authz/forward/{original path}` (Envoy's HTTP `ext_authz`) and
/// `/v1/authz/traefik/{gateway_key}` (the gateway's key in the path).
#[utoipa::path(method(get, post, put, patch, delete, head, options), path = "/v1/authz/forward",
    tag = "gateways",
    security(("gateway_key" = [])),
    params(
        ("Authorization" = Option<String>, Header,
            description = "The client's `Bearer <token>`, as the client sent it"),
        ("X-Forwarded-Method" = Option<String>, Header,
            description = "The original method (or X-Original-Method; default: this request's)"),
        ("X-Forwarded-Uri" = String, Header,
            description = "The original URI, path and query (or X-Original-URI)"),
        ("deny_status" = Option<u16>, Query,
            description = "403: answer a rate-limit refusal 403 with X-Tooken-Code: RATE_LIMITED instead of 429 (nginx)"),
    ),
    responses(
        (status = 200, description = "Let the request through. Headers for the upstream: \
            X-Tooken-Token-Id, X-Tooken-Scopes (space-separated), X-Tooken-Metadata (base64url of \
            the compact JSON) or X-Tooken-Metadata-Omitted: too-large; none of them on a public \
            route"),
        (status = 400, body = ErrorBody, description = "The original method or URI is missing, \
            or sent twice with different values"),
        (status = 401, body = ErrorBody, description = "The client's token is missing or not \
            accepted; or, with X-Tooken-Error: invalid_gateway_key, the gateway's own key",
            headers(("WWW-Authenticate" = String,
                    description = "`Bearer realm=\"tooken\"`, with `error=\"invalid_token\"` when a \
                        credential was presented"),
                ("X-Tooken-Error" = String,
                    description = "`invalid_gateway_key` when the gateway's own key is refused"))),
        (status = 403, body = ErrorBody, description = "Refused by the rules: X-Tooken-Code \
            names why (INSUFFICIENT_SCOPE with required_scope, IP_NOT_ALLOWED, USAGE_EXCEEDED, \
            RATE_LIMITED with deny_status=403, NO_MATCHING_RULE, PATH_REFUSED); or, with \
            X-Tooken-Error: invalid_gateway_key, the gateway's key lacks tokens:verify",
            headers(("X-Tooken-Code" = String, description = "Why the request is refused"),
                ("X-Tooken-Error" = String,
                    description = "`invalid_gateway_key` when it is the gateway's key that is refused"))),
        (status = 429, body = ErrorBody, description = "The token's rate limit (or, for the \
            gateway's address, too many failed authentications)",
            headers(("Retry-After" = i64, description = "Seconds to wait"),
                ("X-Tooken-Code" = String, description = "RATE_LIMITED for the token's rate limit"))),
    ))]
pub async fn forward_auth(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    match decide(&state, &parts).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// What went wrong with the gateway's own request (as opposed to a
/// decision about the client's).
enum ForwardError {
    /// The gateway's key: marked with `X-Tooken-Error`.
    GatewayKey(ApiError),
    Other(ApiError),
}

impl From<ApiError> for ForwardError {
    fn from(e: ApiError) -> Self {
        ForwardError::Other(e)
    }
}

impl IntoResponse for ForwardError {
    fn into_response(self) -> Response {
        let (error, gateway_key) = match self {
            ForwardError::GatewayKey(e) => (e, true),
            ForwardError::Other(e) => (e, false),
        };
        let mut response = error.into_response();
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if gateway_key {
            headers.insert(
                HeaderName::from_static(HEADER_ERROR),
                HeaderValue::from_static(ERROR_INVALID_GATEWAY_KEY),
            );
        }
        response
    }
}

async fn decide(state: &AppState, parts: &Parts) -> Result<Response, ForwardError> {
    let path = parts.uri.path();
    let keyed = path.strip_prefix(KEYED_FORWARD_PREFIX);
    let gateway_key = match keyed {
        Some(key) => Credential::parse(key).map_err(|_| Rejection::malformed()),
        None => gateway_key_header(&parts.headers),
    };
    let gateway = authenticate(parts, state, gateway_key)
        .await
        .map_err(|e| match e {
            e @ ApiError::Unauthorized { .. } => ForwardError::GatewayKey(e),
            other => ForwardError::Other(other),
        })?;
    // Envoy's form: everything after the prefix is the client's.
    let envoy = keyed.is_none() && path != FORWARD_PATH;
    let deny_status = if envoy {
        None
    } else {
        deny_status(parts.uri.query())?
    };
    let (method, uri) = if envoy {
        let original = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .and_then(envoy_original_uri)
            .unwrap_or_else(|| "/".to_owned());
        (parts.method.as_str().to_owned(), original)
    } else {
        let method = one_of(&parts.headers, ["x-forwarded-method", "x-original-method"])?
            .unwrap_or_else(|| parts.method.as_str().to_owned());
        let uri =
            one_of(&parts.headers, ["x-forwarded-uri", "x-original-uri"])?.ok_or_else(|| {
                ApiError::InvalidRequest {
                    message: "the original URI is missing: the gateway must send it in \
                              X-Forwarded-Uri or X-Original-URI"
                        .into(),
                    field: None,
                }
            })?;
        (method, uri)
    };
    if method.is_empty() {
        return Err(ApiError::InvalidRequest {
            message: "the original method is empty".into(),
            field: None,
        }
        .into());
    }
    let credential = client_credential(&parts.headers);
    let request = Forwarded {
        method: &method,
        uri: &uri,
        credential,
        client_ip: client_ip(parts),
    };
    let decision = state
        .service
        .forward(&gateway, &request)
        .await
        .map_err(|e| match e {
            // The gateway's key may not ask (a token without tokens:verify).
            e @ ServiceError::Forbidden { .. } => ForwardError::GatewayKey(e.into()),
            other => ForwardError::Other(other.into()),
        })?;
    let answer = answer(&decision, deny_status, state.gateway, state.service.now());
    Ok(answer.into_response())
}

/// The gateway's key in `Tooken-Gateway-Key`: exactly one, a credential
/// alone (no `Bearer`).
fn gateway_key_header(headers: &HeaderMap) -> Result<Credential, Rejection> {
    let mut values = headers.get_all(HEADER_GATEWAY_KEY).iter();
    let Some(value) = values.next() else {
        return Err(Rejection::missing());
    };
    if values.next().is_some() {
        return Err(Rejection::malformed());
    }
    let text = value.to_str().map_err(|_| Rejection::malformed())?;
    Credential::parse(text).map_err(|_| Rejection::malformed())
}

/// The client's credential as forwarded: one `Authorization: Bearer …`.
pub fn client_credential(headers: &HeaderMap) -> ClientCredential<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return ClientCredential::Missing;
    };
    if values.next().is_some() {
        return ClientCredential::Malformed;
    }
    bearer(value.as_bytes())
}

/// `Bearer <credential>` (one space, as SPEC §3 has it), unparsed.
pub fn bearer(value: &[u8]) -> ClientCredential<'_> {
    match value
        .strip_prefix(b"Bearer ")
        .and_then(|c| std::str::from_utf8(c).ok())
    {
        Some(candidate) => ClientCredential::Bearer(candidate),
        None => ClientCredential::Malformed,
    }
}

/// The value of whichever of `names` is sent (each at most once; both
/// alike when both are sent).
fn one_of(headers: &HeaderMap, names: [&'static str; 2]) -> Result<Option<String>, ApiError> {
    let mut found: Option<(&str, String)> = None;
    for name in names {
        let mut values = headers.get_all(name).iter();
        let Some(value) = values.next() else {
            continue;
        };
        if values.next().is_some() {
            return Err(ApiError::InvalidRequest {
                message: format!("{name} is sent more than once"),
                field: None,
            });
        }
        // Not necessarily ASCII: a client may send raw UTF-8 in its path.
        let Ok(text) = std::str::from_utf8(value.as_bytes()) else {
            return Err(ApiError::InvalidRequest {
                message: format!("{name} is not UTF-8"),
                field: None,
            });
        };
        match &found {
            Some((first, seen)) if seen != text => {
                return Err(ApiError::InvalidRequest {
                    message: format!("{first} and {name} are both sent, and differ"),
                    field: None,
                })
            }
            Some(_) => {}
            None => found = Some((name, text.to_owned())),
        }
    }
    Ok(found.map(|(_, v)| v))
}

/// `?deny_status=403`, the only query the forward endpoint takes.
fn deny_status(query: Option<&str>) -> Result<Option<StatusCode>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|_| ApiError::invalid("deny_status", "the query string is not valid"))?;
    let mut status = None;
    for (name, value) in pairs {
        if name != "deny_status" {
            return Err(ApiError::InvalidRequest {
                message: format!(
                    "unknown query parameter `{}`: the forward endpoint takes only deny_status",
                    tooken_core::redact::shown(&name)
                ),
                field: None,
            });
        }
        if value != "403" {
            return Err(ApiError::invalid(
                "deny_status",
                "deny_status may only be 403 (for nginx's auth_request)",
            ));
        }
        status = Some(StatusCode::FORBIDDEN);
    }
    Ok(status)
}

/// The answer to a gateway, whichever transport carries it (HTTP here,
/// `CheckResponse` in [`crate::envoy`]).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    /// For the gateway to pass upstream (on `200`) or to the client.
    pub headers: HeaderMap,
    /// The error body of a refusal.
    pub body: Option<ErrorBody>,
    /// On `200`: the `X-Tooken-*` request headers this answer does not
    /// set, which the gateway must remove from the client's request.
    pub remove: Vec<&'static str>,
}

/// The request headers a `200` may set.
pub const UPSTREAM_HEADERS: [&str; 4] = [
    HEADER_TOKEN_ID,
    HEADER_SCOPES,
    HEADER_METADATA,
    HEADER_METADATA_OMITTED,
];

/// Renders `decision` for a gateway at `now`.
pub fn answer(
    decision: &Decision,
    deny_status: Option<StatusCode>,
    options: GatewayOptions,
    now: DateTime<Utc>,
) -> Answer {
    let refused = |error: ApiError, code: &str| -> Answer {
        let mut answer = from_error(error);
        if let Ok(v) = HeaderValue::from_str(code) {
            answer
                .headers
                .insert(HeaderName::from_static(HEADER_CODE), v);
        }
        answer
    };
    let forbidden = |message: String| ApiError::Forbidden {
        message,
        required_scope: None,
    };
    match decision {
        Decision::PathRefused(why) => refused(
            forbidden(format!("this request path is refused: {why}")),
            CODE_PATH_REFUSED,
        ),
        Decision::NoRule => refused(
            forbidden("no route rule allows this request".into()),
            CODE_NO_MATCHING_RULE,
        ),
        Decision::Anonymous { .. } => allowed(HeaderMap::new(), options.cache_seconds),
        Decision::NoCredential { .. } => from_error(ApiError::Unauthorized {
            credential_presented: false,
        }),
        Decision::Judged {
            verdict,
            missing_scope,
            ..
        } => match (verdict.code, &verdict.token) {
            (VerifyCode::Valid, Some(found)) => {
                let token = &found.token;
                let mut headers = HeaderMap::new();
                let mut set = |name: &'static str, value: &str| {
                    if let Ok(v) = HeaderValue::from_str(value) {
                        headers.insert(HeaderName::from_static(name), v);
                    }
                };
                set(HEADER_TOKEN_ID, &token.id);
                set(HEADER_SCOPES, &scopes_header(&token.scopes));
                match token.metadata.as_ref().filter(|m| !m.is_empty()) {
                    None => {}
                    Some(m) => match metadata_header(m) {
                        MetadataHeader::Value(v) => set(HEADER_METADATA, &v),
                        MetadataHeader::TooLarge => {
                            set(HEADER_METADATA_OMITTED, METADATA_OMITTED_TOO_LARGE)
                        }
                    },
                }
                // Never reused past the moment the secret stops working.
                let until = [token.expires_at, found.previous_valid_until]
                    .into_iter()
                    .flatten()
                    .min();
                let seconds = match until {
                    Some(until) => (until - now)
                        .num_seconds()
                        .clamp(0, i64::from(options.cache_seconds))
                        as u32,
                    None => options.cache_seconds,
                };
                allowed(headers, seconds)
            }
            (VerifyCode::InsufficientScope, _) => {
                let scope = missing_scope.as_ref().map(|s| s.as_str().to_owned());
                let message = match &scope {
                    Some(s) => format!("this token lacks the scope {s} this route requires"),
                    None => "this token lacks a scope this route requires".to_owned(),
                };
                refused(
                    ApiError::Forbidden {
                        message,
                        required_scope: scope,
                    },
                    &code_name(VerifyCode::InsufficientScope),
                )
            }
            // Section 3: the answer does not say why a token is not accepted.
            _ => from_error(ApiError::Unauthorized {
                credential_presented: true,
            }),
        },
    }
    .with_deny_status(deny_status)
}

/// A verify code as the API writes it (`INSUFFICIENT_SCOPE`).
fn code_name(code: VerifyCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Answer {
    /// nginx: a `429` becomes `deny_status`, keeping its headers.
    fn with_deny_status(mut self, deny_status: Option<StatusCode>) -> Answer {
        if let (StatusCode::TOO_MANY_REQUESTS, Some(status)) = (self.status, deny_status) {
            self.status = status;
        }
        self
    }
}

fn allowed(mut headers: HeaderMap, cache_seconds: u32) -> Answer {
    let cache = match cache_seconds {
        0 => HeaderValue::from_static("no-store"),
        n => HeaderValue::from_str(&format!("private, max-age={n}"))
            .unwrap_or(HeaderValue::from_static("no-store")),
    };
    headers.insert(CACHE_CONTROL, cache);
    let remove: Vec<&'static str> = UPSTREAM_HEADERS
        .into_iter()
        .filter(|h| !headers.contains_key(*h))
        .collect();
    if !remove.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&remove.join(",")) {
            headers.insert(HeaderName::from_static(ENVOY_HEADERS_TO_REMOVE), v);
        }
    }
    Answer {
        status: StatusCode::OK,
        headers,
        body: None,
        remove,
    }
}

/// A refusal: the API's error, rendered as everywhere else, never cached.
fn from_error(error: ApiError) -> Answer {
    let (status, mut headers, body) = error.parts();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Answer {
        status,
        headers,
        body: Some(body),
        remove: Vec::new(),
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => (self.status, Json(body)).into_response(),
            None => self.status.into_response(),
        };
        response.headers_mut().extend(self.headers);
        response
    }
}
