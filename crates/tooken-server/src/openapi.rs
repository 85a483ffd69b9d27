//! The OpenAPI 3 document, generated from the handlers and types.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::auth::Caller;
use crate::AppState;

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
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "tokens", description = "Tokens Tooken issues for your systems"),
        (name = "verification", description = "For services that accept Tooken tokens"),
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
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/openapi.json", get(openapi_json))
}

/// This document. Like every `/v1` request, it needs a credential.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI 3 document"), (status = 401, body = crate::error::ErrorBody)))]
pub async fn openapi_json(_caller: Caller) -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
