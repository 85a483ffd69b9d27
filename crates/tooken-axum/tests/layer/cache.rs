//! What the cache serves, for how long, and what it holds.

use std::time::Duration;

use chrono::TimeDelta;
use reqwest::StatusCode;

use crate::helpers::{spawn_service, spawn_tooken};

#[tokio::test]
async fn a_revoked_token_passes_within_the_cache_ttl_and_not_after() {
    const TTL: Duration = Duration::from_millis(300);
    let tooken = spawn_tooken().await;
    let service = spawn_service(tooken.layer().await.cache_ttl(TTL).build()).await;
    let token = tooken.issue(&["invoices:read"], None, None).await;

    assert_eq!(service.invoices(&token.secret).await, StatusCode::OK);
    tooken.revoke(&token).await;
    // Ages are read on the layer's clock: time passes only when moved.
    tooken.clock.advance(TimeDelta::milliseconds(299));
    assert_eq!(
        service.invoices(&token.secret).await,
        StatusCode::OK,
        "within the TTL the cached answer serves; the revocation is not seen yet"
    );
    tooken.clock.advance(TimeDelta::milliseconds(1));
    service
        .get("/invoices", &token.secret)
        .await
        .assert_invalid_token();
}

#[tokio::test]
async fn answers_within_the_ttl_come_from_the_cache() {
    let mut tooken = spawn_tooken().await;
    let layer = tooken
        .layer()
        .await
        .cache_ttl(Duration::from_secs(3600))
        .build();
    let service = spawn_service(layer.clone()).await;
    let token = tooken
        .issue(&["invoices:read"], None, None)
        .await
        .secret
        .expose()
        .to_owned();
    let never_seen = tooken
        .issue(&["invoices:read"], None, None)
        .await
        .secret
        .expose()
        .to_owned();
    assert_eq!(service.invoices(&token).await, StatusCode::OK);

    tooken.stop().await;
    // Tooken is gone; the cached answer still serves...
    assert_eq!(service.invoices(&token).await, StatusCode::OK);
    // ...and scopes are still checked per route against it.
    let res = service.post("/invoices", &token, "{}").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    // A token never verified cannot be.
    service
        .get("/invoices", &never_seen)
        .await
        .assert_unavailable();
}

#[tokio::test]
async fn an_expired_token_is_never_served_from_the_cache() {
    let tooken = spawn_tooken().await;
    let layer = tooken
        .layer()
        .await
        .cache_ttl(Duration::from_secs(3600))
        .build();
    let service = spawn_service(layer.clone()).await;
    let token = tooken
        .issue(&["invoices:read"], None, Some(60))
        .await
        .secret;
    assert_eq!(service.invoices(&token).await, StatusCode::OK);
    assert_eq!(layer.cache_len(), 1);

    tooken.clock.advance(TimeDelta::seconds(59));
    assert_eq!(service.invoices(&token).await, StatusCode::OK);
    // At expires_at the hour-long cache entry is no longer used: Tooken is
    // asked again, and says EXPIRED.
    tooken.clock.advance(TimeDelta::seconds(1));
    service
        .get("/invoices", &token)
        .await
        .assert_invalid_token();
}

#[tokio::test]
async fn a_zero_ttl_asks_tooken_every_time() {
    let tooken = spawn_tooken().await;
    let layer = tooken.layer().await.cache_ttl(Duration::ZERO).build();
    let service = spawn_service(layer).await;
    let token = tooken.issue(&["invoices:read"], None, None).await;
    assert_eq!(service.invoices(&token.secret).await, StatusCode::OK);
    tooken.revoke(&token).await;
    service
        .get("/invoices", &token.secret)
        .await
        .assert_invalid_token();
}

#[tokio::test]
async fn the_cache_holds_hashes_not_tokens_and_stays_bounded() {
    let tooken = spawn_tooken().await;
    let layer = tooken.layer().await.cache_capacity(2).build();
    let service = spawn_service(layer.clone()).await;
    let mut secrets = Vec::new();
    for _ in 0..4 {
        let secret = tooken
            .issue(&["invoices:read"], None, None)
            .await
            .secret
            .expose()
            .to_owned();
        assert_eq!(service.get("/whoami", &secret).await.status, StatusCode::OK);
        secrets.push(secret);
        assert!(layer.cache_len() <= 2, "{layer:?}");
    }
    assert_eq!(layer.cache_len(), 2);
    // Asking again with a cached token adds nothing.
    assert_eq!(
        service.get("/whoami", &secrets[3]).await.status,
        StatusCode::OK
    );
    assert_eq!(layer.cache_len(), 2);
    // The layer's Debug (what a log line could show) names no secret; the
    // cache itself is keyed by SHA-256 (see the crate's unit tests).
    let shown = format!("{layer:?}");
    assert!(shown.contains("cached: 2"), "{shown}");
    for secret in &secrets {
        assert!(!shown.contains(secret.as_str()));
    }
}
