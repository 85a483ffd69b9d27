//! The OpenAPI 3 document, generated from the handlers and types.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::AppState;
use tooken_service::Caller;

#[derive(OpenApi)]
#[openapi(
    info(title = "Tooken API", description = "Issue, verify and revoke scoped, expiring tokens."),
    paths(
        crate::tokens::create_token,
        crate::tokens::list_tokens,
        crate::tokens::get_token,
        crate::tokens::update_token,
        crate::tokens::rotate_token,
        crate::tokens::revoke_token,
        crate::tokens::token_usage,
        crate::verify::verify_token,
        crate::verify::introspect,
        crate::authz::get_authz_rules,
        crate::authz::put_authz_rules,
        crate::authz::forward_auth,
        crate::audit::list_events,
        crate::audit::export_events,
        crate::settings::get_settings,
        crate::settings::update_settings,
        crate::system::whoami,
        crate::system::healthz,
        crate::system::readyz,
        crate::metrics::render,
        openapi_json,
    ),
    modifiers(&BearerAuth, &CommonResponses),
    security(("bearer" = [])),
    tags(
        (name = "tokens", description = "Tokens Tooken issues for your systems"),
        (name = "verification", description = "For services that accept Tooken tokens"),
        (name = "gateways", description = "Route rules and forward authentication for nginx, \
            Caddy, Traefik and Envoy (docs/gateways.md)"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "settings", description = "Workspace policy (API keys only)"),
        (name = "system", description = "Identity, health and this document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (tok_live_…/tok_test_…) or a token"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "gateway_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Tooken-Gateway-Key",
                "The gateway's own credential: an API key, or a token with tokens:verify \
                 (Traefik: in the path, /v1/authz/traefik/{gateway_key})",
            ))),
        );
    }
}

/// What an operation may answer besides its own results, added to every
/// operation so that the document names every status the server sends:
/// each `/v1` operation needs a credential (`401`), is subject to the
/// brute-force throttle (`429`) and answers `503` while the store is
/// unreachable; one with parameters or a body may find them invalid
/// (`400`), and a body may be too large (`413`); any may take too long
/// (`408`). The health checks and metrics need no credential.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
                &mut item.head,
                &mut item.options,
            ];
            for op in operations.into_iter().flatten() {
                if !path.starts_with("/v1/") {
                    op.security = Some(Vec::new());
                    continue;
                }
                let has_body = op.request_body.is_some();
                let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let responses = &mut op.responses.responses;
                let mut keep = |status: &str, response: Response| {
                    responses
                        .entry(status.to_owned())
                        .or_insert(RefOr::T(response));
                };
                keep(
                    "408",
                    error_response(
                        "The request was not received and answered within the server's \
                         time limit (30 s by default); the connection is closed",
                        None,
                    ),
                );
                if has_body || has_params {
                    keep("400", error_response("Invalid parameters or body", None));
                }
                if has_body {
                    keep(
                        "413",
                        error_response("The body is larger than 64 KiB", None),
                    );
                }
                // Always these exact ones: they carry headers. (The
                // forward-auth endpoint describes its own 401 and 429: they
                // are about the client's token.)
                let own = path.starts_with("/v1/authz/forward");
                let mut replace = |status: &str, response: Response| {
                    if own && status != "503" {
                        responses
                            .entry(status.to_owned())
                            .or_insert(RefOr::T(response));
                    } else {
                        responses.insert(status.to_owned(), RefOr::T(response));
                    }
                };
                let challenge = "`Bearer realm=\"tooken\"`, with `error=\"invalid_token\"` \
                                 when a credential was presented";
                replace(
                    "401",
                    error_response(
                        "Missing, malformed, unknown, revoked or expired credential",
                        Some(("WWW-Authenticate", Type::String, challenge)),
                    ),
                );
                replace(
                    "429",
                    error_response(
                        "Too many failed authentications from this address",
                        Some(("Retry-After", Type::Integer, "Seconds to wait")),
                    ),
                );
                replace(
                    "503",
                    error_response(
                        "The store is unreachable; try again shortly",
                        Some(("Retry-After", Type::Integer, "Seconds to wait")),
                    ),
                );
            }
        }
    }
}

/// A response in the API's error shape, with one header it always carries.
fn error_response(description: &str, header: Option<(&str, Type, &str)>) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    );
    if let Some((name, ty, about)) = header {
        response = response.header(
            name,
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(ty))
                .description(Some(about))
                .build(),
        );
    }
    response.build()
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/openapi.json", get(openapi_json))
}

/// This document. Like every `/v1` request, it needs a credential.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json"),
        (status = 401, body = crate::error::ErrorBody)))]
pub async fn openapi_json(_caller: Caller) -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
