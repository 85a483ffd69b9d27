//! Who gets through, and what handlers see.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tooken_core::{Credential, Mode};

use crate::helpers::{spawn_service, spawn_tooken, UNAUTHORIZED_BODY};

#[tokio::test]
async fn a_valid_token_reaches_the_handler_with_its_id_scopes_and_metadata() {
    let tooken = spawn_tooken().await;
    let service = spawn_service(tooken.layer().await.build()).await;
    let acme = tooken
        .issue(
            &["invoices:read", "invoices:write"],
            Some(json!({"customer": "acme", "tier": 2})),
            Some(3600),
        )
        .await;

    let me = service.get("/whoami", &acme.secret).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(
        me.json(),
        json!({
            "id": acme.token.id,
            "name": "client",
            "scopes": ["invoices:read", "invoices:write"],
            "metadata": {"customer": "acme", "tier": 2},
            "expires_at": acme.token.expires_at,
            "mode": "live",
        })
    );

    let created = service
        .post("/invoices", &acme.secret, r#"{"amount_cents":1200}"#)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.json(),
        json!({"id": 1, "customer": "acme", "amount_cents": 1200, "created_by": acme.token.id})
    );
    let listed = service.get("/invoices", &acme.secret).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.json()["data"], json!([created.json()]));

    // Another customer's token sees none of acme's invoices.
    let globex = tooken
        .issue(
            &["invoices:read"],
            Some(json!({"customer": "globex"})),
            None,
        )
        .await;
    let listed = service.get("/invoices", &globex.secret).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.json(), json!({"data": []}));
}

#[tokio::test]
async fn missing_header_gets_tookens_exact_401() {
    let tooken = spawn_tooken().await;
    let service = spawn_service(tooken.layer().await.build()).await;
    for path in ["/whoami", "/invoices", "/no-such-route"] {
        let res = service.raw(Method::GET, path, None, None).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(res.body, UNAUTHORIZED_BODY);
        assert_eq!(res.www_authenticate(), Some(r#"Bearer realm="tooken""#));
        assert_eq!(res.headers["content-type"], "application/json");
    }
}

#[tokio::test]
async fn garbage_and_unknown_credentials_get_tookens_exact_401() {
    let tooken = spawn_tooken().await;
    let service = spawn_service(tooken.layer().await.build()).await;
    let token = tooken
        .issue(&["invoices:read"], None, None)
        .await
        .secret
        .expose()
        .to_owned();
    let unknown = Credential::generate("tkn", Mode::Live);
    let api_key = Credential::generate("tok", Mode::Live);
    let cases = [
        "Bearer garbage".to_owned(),
        "Bearer ".to_owned(),
        "Bearer".to_owned(),
        format!("bearer {token}"),
        format!("Bearer  {token}"),
        format!("Basic {token}"),
        token.clone(),
        format!("Bearer {}", unknown.expose()),
        format!("Bearer {}", api_key.expose()),
    ];
    for authorization in &cases {
        let res = service
            .raw(Method::GET, "/invoices", Some(authorization), None)
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{authorization}");
        res.assert_invalid_token();
    }
    // The same token, presented properly, passes.
    assert_eq!(service.invoices(&token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_revoked_or_expired_token_gets_401() {
    let tooken = spawn_tooken().await;
    let service = spawn_service(tooken.layer().await.build()).await;
    let revoked = tooken.issue(&["invoices:read"], None, None).await;
    tooken.revoke(&revoked).await;
    service
        .get("/invoices", &revoked.secret)
        .await
        .assert_invalid_token();
    let expired = tooken.issue(&["invoices:read"], None, Some(60)).await;
    tooken.clock.advance(chrono::TimeDelta::seconds(60));
    service
        .get("/invoices", &expired.secret)
        .await
        .assert_invalid_token();
}

#[tokio::test]
async fn a_token_lacking_the_scope_gets_tookens_exact_403() {
    let tooken = spawn_tooken().await;
    let service = spawn_service(tooken.layer().await.build()).await;
    let reader = tooken
        .issue(&["invoices:read"], None, None)
        .await
        .secret
        .expose()
        .to_owned();

    let res = service
        .post("/invoices", &reader, r#"{"amount_cents":1}"#)
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    assert_eq!(
        res.body,
        r#"{"error":"forbidden","message":"this token lacks the scope invoices:write required for this operation","required_scope":"invoices:write"}"#
    );
    assert_eq!(
        res.www_authenticate(),
        Some(r#"Bearer error="insufficient_scope", scope="invoices:write""#)
    );

    let other = tooken
        .issue(&["users:read"], None, None)
        .await
        .secret
        .expose()
        .to_owned();
    let res = service.get("/invoices", &other).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    assert_eq!(res.json()["required_scope"], "invoices:read");
    assert_eq!(
        res.www_authenticate(),
        Some(r#"Bearer error="insufficient_scope", scope="invoices:read""#)
    );
    // A route without a scope requirement takes any valid token.
    assert_eq!(service.get("/whoami", &other).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_wildcard_scope_covers_every_action_of_its_resource() {
    let tooken = spawn_tooken().await;
    let service = spawn_service(tooken.layer().await.build()).await;
    let all = tooken
        .issue(&["invoices:*"], None, None)
        .await
        .secret
        .expose()
        .to_owned();
    let res = service
        .post("/invoices", &all, r#"{"amount_cents":5}"#)
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(service.invoices(&all).await, StatusCode::OK);
}

#[tokio::test]
async fn a_verifier_that_tooken_refuses_fails_closed() {
    let tooken = spawn_tooken().await;
    // Valid, but without tokens:verify: Tooken answers the verify call 403.
    let weak = tooken
        .issue(&["invoices:read"], None, None)
        .await
        .secret
        .expose()
        .to_owned();
    let layer = tooken_axum::Tooken::builder(&tooken.url, &weak)
        .unwrap()
        .build();
    let service = spawn_service(layer).await;
    let token = tooken
        .issue(&["invoices:read"], None, None)
        .await
        .secret
        .expose()
        .to_owned();
    service.get("/invoices", &token).await.assert_unavailable();
}

async fn token_id(token: tooken_axum::TookenToken) -> String {
    token.id
}

#[tokio::test]
async fn a_scope_check_authenticates_on_its_own_and_in_either_order() {
    use axum::routing::get;
    use axum::Router;

    use crate::helpers::spawn_router;

    let tooken = spawn_tooken().await;
    let layer = tooken.layer().await.build();
    let alone = Router::new()
        .route("/r", get(token_id))
        .route_layer(layer.require("invoices:read"));
    // `route_layer` after `layer`: the scope check runs first.
    let reversed = Router::new()
        .route("/r", get(token_id))
        .layer(layer.clone())
        .route_layer(layer.require("invoices:read"));
    let reader = tooken.issue(&["invoices:read"], None, None).await;
    let other = tooken
        .issue(&["users:read"], None, None)
        .await
        .secret
        .expose()
        .to_owned();
    for app in [alone, reversed] {
        let service = spawn_router(app).await;
        let res = service.raw(Method::GET, "/r", None, None).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        service.get("/r", "garbage").await.assert_invalid_token();
        assert_eq!(
            service.get("/r", &other).await.status,
            StatusCode::FORBIDDEN
        );
        let res = service.get("/r", &reader.secret).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.body, reader.token.id);
    }
}

#[tokio::test]
async fn the_extractor_without_the_layer_fails_closed() {
    use axum::routing::get;
    use axum::Router;

    use crate::helpers::spawn_router;

    let tooken = spawn_tooken().await;
    let token = tooken
        .issue(&[], None, None)
        .await
        .secret
        .expose()
        .to_owned();
    let service = spawn_router(Router::new().route("/r", get(token_id))).await;
    let res = service.get("/r", &token).await;
    assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        res.body,
        r#"{"error":"internal","message":"internal error"}"#
    );
}
