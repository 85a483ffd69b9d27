//! `POST /v1/tokens/verify`: always 200, the verdict in `valid` and `code`.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tooken_client::{CreateToken, VerifyCode, VerifyRequest};
use tooken_core::{Credential, Mode};

use crate::helpers::TestApp;

async fn verify(app: &TestApp, token: &str, scopes: &[&str]) -> tooken_client::VerifyResponse {
    app.client
        .verify(&VerifyRequest {
            token: token.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        })
        .await
        .unwrap()
}

store_test! {
    async fn valid_token_with_its_details(app) {
        let issued = app
            .client
            .create_token(&CreateToken {
                name: "svc".into(),
                scopes: vec!["invoices:read".into()],
                metadata: Some(json!({"customer": "acme"})),
                expires_in: Some(600),
                ..Default::default()
            })
            .await
            .unwrap();
        let r = verify(&app, &issued.secret, &["invoices:read"]).await;
        assert!(r.valid);
        assert_eq!(r.code, VerifyCode::Valid);
        let t = r.token.unwrap();
        assert_eq!(t.id, issued.token.id);
        assert_eq!(t.name, "svc");
        assert_eq!(t.metadata.unwrap()["customer"], "acme");
        assert_eq!(t.expires_at, issued.token.expires_at);
        assert_eq!(t.mode, Mode::Live);
        // No scopes asked: valid too.
        assert!(verify(&app, &issued.secret, &[]).await.valid);
    }
}

store_test! {
    async fn malformed(app) {
        for bad in [
            "",
            "hello",
            "tkn_live_short",
            &format!("{} ", app.token("t", &[]).await.secret.expose()),
        ] {
            let r = verify(&app, bad, &[]).await;
            assert!(!r.valid);
            assert_eq!(r.code, VerifyCode::Malformed, "{bad:?}");
            assert!(r.token.is_none());
        }
    }
}

store_test! {
    async fn not_found(app) {
        let never_issued = Credential::generate("tkn", Mode::Live);
        let r = verify(&app, never_issued.expose(), &[]).await;
        assert_eq!((r.valid, r.code), (false, VerifyCode::NotFound));
        assert!(r.token.is_none());
        // An API key is not a token.
        let r = verify(&app, &app.api_key, &[]).await;
        assert_eq!(r.code, VerifyCode::NotFound);
    }
}

store_test! {
    async fn expired(app) {
        let issued = app
            .client
            .create_token(&CreateToken {
                name: "t".into(),
                expires_in: Some(30),
                ..Default::default()
            })
            .await
            .unwrap();
        app.clock.advance(chrono::Duration::seconds(29));
        assert!(verify(&app, &issued.secret, &[]).await.valid);
        app.clock.advance(chrono::Duration::seconds(1));
        let r = verify(&app, &issued.secret, &[]).await;
        assert_eq!((r.valid, r.code), (false, VerifyCode::Expired));
        assert_eq!(r.token.unwrap().id, issued.token.id);
    }
}

store_test! {
    async fn revoked(app) {
        let issued = app.token("t", &[]).await;
        app.client
            .revoke_token(&issued.token.id, None)
            .await
            .unwrap();
        let r = verify(&app, &issued.secret, &[]).await;
        assert_eq!((r.valid, r.code), (false, VerifyCode::Revoked));
        assert!(r.token.is_some());
    }
}

store_test! {
    async fn insufficient_scope_and_wildcards(app) {
        let narrow = app.token("narrow", &["invoices:read"]).await;
        let r = verify(&app, &narrow.secret, &["invoices:write"]).await;
        assert_eq!((r.valid, r.code), (false, VerifyCode::InsufficientScope));
        assert!(r.token.is_some());
        let r = verify(&app, &narrow.secret, &["invoices:read", "payments:read"]).await;
        assert_eq!(r.code, VerifyCode::InsufficientScope);

        let wide = app.token("wide", &["invoices:*"]).await;
        assert!(
            verify(&app, &wide.secret, &["invoices:read", "invoices:write"])
                .await
                .valid
        );
        assert!(
            verify(&app, &wide.secret, &["invoices:read:own"])
                .await
                .valid
        );
        assert_eq!(
            verify(&app, &wide.secret, &["payments:read"]).await.code,
            VerifyCode::InsufficientScope
        );
        assert_eq!(
            verify(&app, &wide.secret, &["invoices"]).await.code,
            VerifyCode::InsufficientScope
        );
    }
}

store_test! {
    async fn verify_always_answers_200_in_the_documented_shape(app) {
        let (status, body) = app
            .call(
                Method::POST,
                "/v1/tokens/verify",
                Some(r#"{"token":"nonsense"}"#),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"valid": false, "code": "MALFORMED"}));
    }
}

store_test! {
    async fn verification_updates_last_used_at(mut app) {
        let issued = app.token("t", &[]).await;
        app.clock.advance(chrono::Duration::seconds(3));
        assert!(verify(&app, &issued.secret, &[]).await.valid);
        app.stop().await;
        let last: Option<i64> = sqlx::query_scalar("SELECT max(last_used_at) FROM usage_daily WHERE subject_id = $1")
            .bind(&issued.token.id)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
        assert_eq!(last, Some(app.clock_now().timestamp_millis()));
    }
}

// Regression: numbers in metadata came back off by one unit in the last
// place (the JSON parser's fast float path is not exact).
store_test! {
    async fn metadata_numbers_come_back_exactly(app) {
        let body = r#"{"name": "svc", "metadata": {"x": -1.4049482673580393e+289, "y": 0.30000000000000004, "z": 5e-324}}"#;
        let (status, created) = app.call(Method::POST, "/v1/tokens", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let r = verify(&app, created["secret"].as_str().unwrap(), &[]).await;
        let metadata = r.token.unwrap().metadata.unwrap();
        assert_eq!(metadata["x"].as_f64(), Some(-1.4049482673580393e+289));
        assert_eq!(metadata["y"].as_f64(), Some(0.30000000000000004));
        assert_eq!(metadata["z"].as_f64(), Some(5e-324));
        let (_, listed) = app.call(Method::GET, &format!("/v1/tokens/{}", created["id"].as_str().unwrap()), None).await;
        assert_eq!(listed["metadata"]["x"].as_f64(), Some(-1.4049482673580393e+289));
    }
}
