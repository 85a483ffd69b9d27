//! What a request says about who sent it: the client's address, and the
//! audit context (address, user agent, request id) recorded with every
//! event its operation writes. Read here once, for the API and the
//! dashboard alike.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use tooken_core::audit::Actor;
use tooken_store::AuditContext;

/// The address of the client that sent the request.
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

/// The request's audit context, with `actor` acting.
pub fn audit_context(parts: &Parts, actor: Actor) -> AuditContext {
    let mut ctx = AuditContext::new(actor);
    ctx.client_addr = client_ip(parts).map(|ip| ip.to_string());
    ctx.user_agent = parts
        .headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect());
    ctx.request_id = parts
        .headers
        .get(crate::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    ctx
}
