//! When Tooken cannot be asked: fail closed, or use a recent valid answer
//! if so configured; never let a request through unverified.

use std::time::Duration;

use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use axum::Router;
use chrono::TimeDelta;
use reqwest::{Method, StatusCode};
use tooken_axum::{OnUnavailable, Tooken};
use tooken_core::{Credential, Mode};

use crate::helpers::{spawn_router, spawn_service, spawn_tooken};

#[tokio::test]
async fn an_unreachable_tooken_means_503_and_bad_credentials_still_401() {
    let refusing = tooken_testkit::RefusingPort::new();
    let layer = Tooken::builder(&refusing.url(), "tkn_live_whatever")
        .unwrap()
        .build();
    let service = spawn_service(layer.clone()).await;
    let token = Credential::generate("tkn", Mode::Live);

    let res = service.get("/invoices", token.expose()).await;
    res.assert_unavailable();
    assert!(res.www_authenticate().is_none());
    assert_eq!(layer.cache_len(), 0, "a failure is not an answer to cache");

    let res = service.raw(Method::GET, "/invoices", None, None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    service
        .get("/invoices", "not-a-token")
        .await
        .assert_invalid_token();
}

/// A stand-in for Tooken that answers every verification with `status`,
/// after `delay`.
async fn fake_tooken(status: AxumStatus, delay: Duration) -> String {
    let app = Router::new().route(
        "/v1/tokens/verify",
        post(move || async move {
            tokio::time::sleep(delay).await;
            (
                status,
                [("content-type", "application/json")],
                r#"{"error":"internal","message":"internal error"}"#,
            )
        }),
    );
    spawn_router(app).await.url
}

#[tokio::test]
async fn a_5xx_or_a_slow_tooken_means_503() {
    let token = Credential::generate("tkn", Mode::Live);
    for (status, delay) in [
        (AxumStatus::INTERNAL_SERVER_ERROR, Duration::ZERO),
        (AxumStatus::SERVICE_UNAVAILABLE, Duration::ZERO),
        (AxumStatus::OK, Duration::from_secs(30)),
    ] {
        let url = fake_tooken(status, delay).await;
        let layer = Tooken::builder(&url, "tkn_live_whatever")
            .unwrap()
            .timeout(Duration::from_millis(200))
            .build();
        let service = spawn_service(layer).await;
        service
            .get("/whoami", token.expose())
            .await
            .assert_unavailable();
    }
}

#[tokio::test]
async fn only_use_cached_serves_a_recent_valid_answer_while_tooken_is_down() {
    const TTL: Duration = Duration::from_millis(100);
    let mut tooken = spawn_tooken().await;
    let strict = spawn_service(tooken.layer().await.cache_ttl(TTL).build()).await;
    let lenient = spawn_service(
        tooken
            .layer()
            .await
            .cache_ttl(TTL)
            .on_unavailable(OnUnavailable::UseCached {
                max_age: Duration::from_secs(2 * 3600),
            })
            .build(),
    )
    .await;
    let token = tooken.issue(&["invoices:read"], None, Some(3600)).await;
    let never_seen = tooken
        .issue(&["invoices:read"], None, None)
        .await
        .secret
        .expose()
        .to_owned();
    for service in [&strict, &lenient] {
        let res = service.get("/invoices", &token.secret).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    }

    tooken.stop().await;
    // Past the TTL both layers must ask Tooken again, and cannot.
    tooken.clock.advance(TimeDelta::milliseconds(100));
    strict
        .get("/invoices", &token.secret)
        .await
        .assert_unavailable();
    let res = lenient.get("/invoices", &token.secret).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    // The last answer still carries the token's scopes.
    let res = lenient.post("/invoices", &token.secret, "{}").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    // Never verified: nothing to fall back on.
    lenient
        .get("/invoices", &never_seen)
        .await
        .assert_unavailable();
    // Never past expires_at, even as a fallback (and within its max_age).
    tooken.clock.advance(TimeDelta::seconds(3600));
    lenient
        .get("/invoices", &token.secret)
        .await
        .assert_unavailable();
}
