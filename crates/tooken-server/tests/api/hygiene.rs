//! Secret hygiene and timing at the API: what a client pastes in the wrong
//! place is neither sent back nor logged, and a credential that will be
//! refused takes the same path (a store lookup by hash) whether or not it
//! ever existed. The whole-session check against the real binary is in
//! `crates/tooken/tests/cli/hygiene.rs`.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use chrono::Duration;
use reqwest::{Method, StatusCode};
use tooken_core::audit::hex;
use tooken_core::credential::random_bytes;
use tooken_core::id::{new_id, IdKind};
use tooken_core::{Credential, Mode};
use tower::ServiceExt;

use crate::helpers::*;

/// Log output, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// No 16-character piece of `secret` is in `text`.
fn assert_no_piece_of(secret: &str, text: &str) {
    for piece in secret.as_bytes().windows(16) {
        let piece = std::str::from_utf8(piece).unwrap();
        assert!(!text.contains(piece), "{piece} of a secret in {text}");
    }
}

async fn the_request_log_shows_no_secret_in_the_path() {
    let app = TestApp::on(Backend::Sqlite).start().await;
    let token = app.token("t", &[]).await;
    let link = hex(&random_bytes::<32>());
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    // The app runs on this thread (a current-thread runtime, `oneshot`),
    // so this subscriber sees its spans.
    let _guard = tracing::subscriber::set_default(subscriber);
    let router = tooken_server::app(app.state.clone());
    for path in [
        format!("/v1/tokens/{}", token.secret.expose()),
        format!("/v1/tokens/{}/revoke", token.secret.expose()),
        format!("/dashboard/setup/{link}"),
        format!("/v1/tokens/{}", token.token.id),
        // Traefik's route: the gateway's key in the path.
        format!("/v1/authz/traefik/{}", app.api_key),
    ] {
        let req = Request::get(&path)
            .header("authorization", format!("Bearer {}", app.api_key))
            .body(Body::empty())
            .unwrap();
        let res = router.clone().oneshot(req).await.unwrap();
        assert!(!res.status().is_server_error(), "{path}");
    }
    let text = logs.text();
    for redacted in [
        "path=/v1/tokens/<redacted> ".to_owned(),
        "path=/v1/tokens/<redacted>/revoke ".to_owned(),
        "path=/dashboard/setup/<redacted> ".to_owned(),
        "path=/v1/authz/traefik/<redacted> ".to_owned(),
        // Ids are not secrets, and say which resource a request was about.
        format!("path=/v1/tokens/{} ", token.token.id),
    ] {
        assert!(text.contains(&redacted), "no {redacted:?} in {text}");
    }
    for secret in [token.secret.expose(), link.as_str(), app.api_key.as_str()] {
        assert_no_piece_of(secret, &text);
    }
}

store_test! {
    async fn a_secret_in_place_of_an_id_is_not_sent_back(app) {
        let t = app.token("t", &["a:read"]).await;
        let s = &t.secret.expose().to_owned();
        for (method, path, body) in [
            (Method::GET, format!("/v1/tokens/{s}"), None),
            (Method::PATCH, format!("/v1/tokens/{s}"), Some(r#"{"name": "x"}"#)),
            (Method::POST, format!("/v1/tokens/{s}/rotate"), None),
            (Method::POST, format!("/v1/tokens/{s}/revoke"), None),
            (Method::GET, format!("/v1/tokens/{s}/usage"), None),
        ] {
            let (status, body) = app.call(method, &path, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
            let message = body["message"].as_str().unwrap();
            assert!(message.contains("this is a credential, not a token id"), "{message}");
            assert_no_piece_of(s, &body.to_string());
        }
        // Ids and short mistakes are named, as before.
        let id = new_id(IdKind::Token, app.clock_now());
        let (status, body) = app.call(Method::GET, &format!("/v1/tokens/{id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["message"], format!("no token with id {id}"));
        let (_, body) = app.call(Method::GET, "/v1/tokens/tk_oops", None).await;
        assert_eq!(body["message"], "no token with id tk_oops (token ids start with tk_)");
        let link = hex(&random_bytes::<32>());
        let (_, body) = app.call(Method::GET, &format!("/v1/tokens/{link}"), None).await;
        assert_eq!(body["message"], "no token with id <redacted> (token ids start with tk_)");
    }
}

store_test! {
    async fn a_secret_in_a_query_or_a_body_is_not_sent_back(app) {
        let t = app.token("t", &["a:read"]).await;
        let s = &t.secret.expose().to_owned();
        let queries = [
            (format!("/v1/tokens?{s}=1"), "<redacted>"),
            (format!("/v1/audit-log?{s}=1"), "<redacted>"),
            (format!("/v1/tokens?scope={s}"), "scope"),
        ];
        for (path, field) in &queries {
            let (status, body) = app.call(Method::GET, path, None).await;
            assert_invalid(status, &body, field);
            assert_no_piece_of(s, &body.to_string());
        }
        let bodies = [
            ("/v1/tokens", format!(r#"{{"name": "x", "expires_in": "{s}"}}"#), "expires_in"),
            ("/v1/tokens", format!(r#"{{"name": "x", "scopes": "{s}"}}"#), "scopes"),
            ("/v1/tokens", format!(r#"{{"name": "x", "scopes": ["{s}"]}}"#), "scopes[0]"),
            ("/v1/tokens", format!(r#"{{"name": "x", "scopes": ["{s}{s}"]}}"#), "scopes[0]"),
            ("/v1/tokens", format!(r#"{{"name": "x", "{s}": 1}}"#), "<redacted>"),
            ("/v1/tokens/verify", format!(r#"{{"token": "{s}", "scopes": ["{s}"]}}"#), "scopes[0]"),
            ("/v1/tokens/verify", format!(r#"{{"token": ["{s}"]}}"#), "token"),
        ];
        for (path, body, field) in &bodies {
            let (status, answer) = app.call(Method::POST, path, Some(body)).await;
            assert_invalid(status, &answer, field);
            assert_no_piece_of(s, &answer.to_string());
        }
        // A typo is still named, in the field and the message.
        let (status, body) = app.call(Method::GET, "/v1/tokens?nme=x", None).await;
        assert_invalid(status, &body, "nme");
        assert!(body["message"].as_str().unwrap().contains("unknown field `nme`"), "{body}");
        let (status, body) = app
            .call(Method::POST, "/v1/tokens", Some(r#"{"name": "x", "scopes": ["Invoices:Read"]}"#))
            .await;
        assert_invalid(status, &body, "scopes[0]");
        assert!(body["message"].as_str().unwrap().contains(r#"(got "Invoices:Read")"#), "{body}");
        // A form body (introspection) too.
        let res = app
            .http
            .post(format!("{}/v1/oauth/introspect", app.url))
            .bearer_auth(&app.api_key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("tokn={s}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_no_piece_of(s, &res.text().await.unwrap());
    }
}

/// The credential cache's lookups so far: (all, hits).
async fn lookups(app: &TestApp) -> (u64, u64) {
    let (_, _, body) = app.raw(Method::GET, "/metrics", None, None).await;
    let count = |outcome: &str| -> u64 {
        let prefix = format!("tooken_credential_cache_lookups_total{{outcome=\"{outcome}\"}} ");
        body.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    let hits = count("hit");
    (hits + count("miss") + count("bypassed"), hits)
}

/// One `GET /v1/whoami` with `credential`: its status, and how the cache's
/// counts moved.
async fn whoami(app: &TestApp, credential: &str) -> (StatusCode, (u64, u64)) {
    let before = lookups(app).await;
    let (status, _, _) = app
        .raw(
            Method::GET,
            "/v1/whoami",
            Some(&format!("Bearer {credential}")),
            None,
        )
        .await;
    let after = lookups(app).await;
    (status, (after.0 - before.0, after.1 - before.1))
}

store_test! {
    async fn a_refused_credential_takes_the_path_of_an_unknown_one(app) {
        // Cached positive lookups are trusted only while the store can say
        // whether anything changed: the second lookup below must be a hit.
        app.wait_for_change_feed().await;
        let (status, body) = app
            .call(Method::POST, "/v1/tokens", Some(r#"{"name": "brief", "expires_in": 60}"#))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let brief = body["secret"].as_str().unwrap().to_owned();

        // Malformed: refused before any lookup (it reveals nothing stored).
        assert_eq!(whoami(&app, "tkn_live_nope").await, (StatusCode::UNAUTHORIZED, (0, 0)));
        // Unknown: one lookup by hash, in the store.
        let unknown = Credential::generate("tkn", Mode::Live);
        assert_eq!(whoami(&app, unknown.expose()).await, (StatusCode::UNAUTHORIZED, (1, 0)));
        // Known and accepted: once from the store, then from the cache.
        assert_eq!(whoami(&app, &brief).await, (StatusCode::OK, (1, 0)));
        assert_eq!(whoami(&app, &brief).await, (StatusCode::OK, (1, 1)));
        // Known and refused (expired while cached): from the store, like
        // the unknown one, however often it is tried.
        app.clock.advance(Duration::seconds(61));
        for _ in 0..2 {
            assert_eq!(whoami(&app, &brief).await, (StatusCode::UNAUTHORIZED, (1, 0)));
        }

        // A secret rotated away, once its grace period is over: the same.
        let t = app.token("rotated", &[]).await;
        let path = format!("/v1/tokens/{}/rotate", t.token.id);
        let (status, body) = app.call(Method::POST, &path, Some(r#"{"grace_period_seconds": 30}"#)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for _ in 0..2 {
            assert_eq!(whoami(&app, &t.secret).await.0, StatusCode::OK);
        }
        app.clock.advance(Duration::seconds(31));
        assert_eq!(whoami(&app, &t.secret).await, (StatusCode::UNAUTHORIZED, (1, 0)));
    }
}

tooken_testkit::tests! {
    async the_request_log_shows_no_secret_in_the_path,
}
