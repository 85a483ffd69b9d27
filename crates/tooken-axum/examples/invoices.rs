//! An invoices API that accepts Tooken tokens.
//!
//! - `GET /invoices` needs `invoices:read` and lists the invoices of the
//!   customer named in the token's metadata (`{"customer": "acme"}`);
//! - `POST /invoices` needs `invoices:write` and records who created it;
//! - `GET /whoami` needs any valid token and shows it as the service sees it.
//!
//! ```sh
//! # A verifier credential: a token that can only verify.
//! curl -s http://127.0.0.1:7878/v1/tokens -H "Authorization: Bearer $TOOKEN_API_KEY" \
//!   -H 'Content-Type: application/json' -d '{"name":"invoices-api","scopes":["tokens:verify"]}'
//! TOOKEN_URL=http://127.0.0.1:7878 TOOKEN_VERIFY_KEY=tkn_live_... \
//!   cargo run -p tooken-axum --example invoices
//! curl -s http://127.0.0.1:3000/invoices -H "Authorization: Bearer $TOKEN"
//! ```
//!
//! Environment: `TOOKEN_URL` (default `http://127.0.0.1:7878`),
//! `TOOKEN_VERIFY_KEY` (required), `INVOICES_LISTEN` (default
//! `127.0.0.1:3000`), `TOOKEN_CACHE_TTL_MS` (default 5000).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tooken_axum::{Tooken, TookenToken};

#[derive(Debug, Clone, Serialize)]
pub struct Invoice {
    pub id: u64,
    pub customer: Option<String>,
    pub amount_cents: i64,
    /// The id of the token that created it.
    pub created_by: String,
}

#[derive(Debug, Deserialize)]
pub struct NewInvoice {
    pub amount_cents: i64,
}

/// The invoices, in memory.
#[derive(Debug, Clone, Default)]
pub struct Invoices(Arc<Mutex<Vec<Invoice>>>);

/// The customer a token acts for, from its metadata.
fn customer(token: &TookenToken) -> Option<String> {
    token
        .metadata_value("customer")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

async fn list_invoices(State(invoices): State<Invoices>, token: TookenToken) -> Json<Value> {
    let customer = customer(&token);
    let all = invoices.0.lock().unwrap_or_else(PoisonError::into_inner);
    let mine: Vec<&Invoice> = all.iter().filter(|i| i.customer == customer).collect();
    Json(json!({ "data": mine }))
}

async fn create_invoice(
    State(invoices): State<Invoices>,
    token: TookenToken,
    Json(new): Json<NewInvoice>,
) -> (StatusCode, Json<Invoice>) {
    let mut all = invoices.0.lock().unwrap_or_else(PoisonError::into_inner);
    let invoice = Invoice {
        id: all.len() as u64 + 1,
        customer: customer(&token),
        amount_cents: new.amount_cents,
        created_by: token.id,
    };
    all.push(invoice.clone());
    (StatusCode::CREATED, Json(invoice))
}

async fn whoami(token: TookenToken) -> Json<TookenToken> {
    Json(token)
}

/// The service: every route needs a valid token; `/invoices` also needs a
/// scope per method.
pub fn app(tooken: Tooken) -> Router {
    Router::new()
        .route(
            "/invoices",
            get(list_invoices)
                .route_layer(tooken.require("invoices:read"))
                .merge(post(create_invoice).route_layer(tooken.require("invoices:write"))),
        )
        .route("/whoami", get(whoami))
        .layer(tooken)
        .with_state(Invoices::default())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut tooken = Tooken::from_env()?;
    if let Ok(ms) = std::env::var("TOOKEN_CACHE_TTL_MS") {
        tooken = tooken.cache_ttl(Duration::from_millis(ms.parse()?));
    }
    let tooken = tooken.build();
    let listen = std::env::var("INVOICES_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!(addr = %listener.local_addr()?, ?tooken, "invoices API listening");
    axum::serve(listener, app(tooken)).await?;
    Ok(())
}
