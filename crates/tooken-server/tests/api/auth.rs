//! Bearer authentication: every failure is the same 401, whatever its cause.

use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tooken_core::{Credential, Mode};

use crate::helpers::{TestApp, UNAUTHORIZED_BODY};

/// Calls `GET /v1/tokens` with `authorization` and checks the exact 401.
async fn assert_rejected(app: &TestApp, authorization: Option<&str>) {
    let (status, headers, body) = app
        .raw(Method::GET, "/v1/tokens", authorization, None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "{authorization:?} → {body}"
    );
    assert_eq!(body, UNAUTHORIZED_BODY);
    let expected = if authorization.is_some() {
        r#"Bearer realm="tooken", error="invalid_token""#
    } else {
        r#"Bearer realm="tooken""#
    };
    assert_eq!(headers["www-authenticate"], expected);
}

store_test! {
    async fn a_valid_api_key_is_accepted(app) {
        let (status, _, _) = app
            .raw(
                Method::GET,
                "/v1/tokens",
                Some(&format!("Bearer {}", app.api_key)),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
}

store_test! {
    async fn absent_header_is_401(app) {
        assert_rejected(&app, None).await;
    }
}

store_test! {
    async fn wrong_scheme_is_401(app) {
        assert_rejected(&app, Some(&format!("Basic {}", app.api_key))).await;
        assert_rejected(&app, Some(&format!("bearer {}", app.api_key))).await;
        assert_rejected(&app, Some(&app.api_key.clone())).await;
    }
}

store_test! {
    async fn two_spaces_after_bearer_is_401(app) {
        assert_rejected(&app, Some(&format!("Bearer  {}", app.api_key))).await;
    }
}

store_test! {
    async fn tab_after_bearer_is_401(app) {
        assert_rejected(&app, Some(&format!("Bearer\t{}", app.api_key))).await;
    }
}

store_test! {
    async fn whitespace_inside_the_value_is_401(app) {
        let (head, tail) = app.api_key.split_at(12);
        assert_rejected(&app, Some(&format!("Bearer {head} {tail}"))).await;
        assert_rejected(&app, Some(&format!("Bearer {} x", app.api_key))).await;
    }
}

// HTTP strips whitespace around a header value before any application sees
// it (RFC 9110 §5.5), so the trailing-whitespace case is sent as raw bytes
// to show exactly what the server does with it: the value it receives is
// the bare key, which is valid; a trailing space followed by more text is not.
store_test! {
    async fn trailing_whitespace_on_the_wire_is_not_part_of_the_value(app) {
        for (suffix, expected) in [(" ", "200"), ("\t", "200"), (" junk", "401")] {
            let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
            let req = format!(
                "GET /v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}{suffix}\r\nConnection: close\r\n\r\n",
                app.api_key
            );
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            assert!(
                out.starts_with(&format!("HTTP/1.1 {expected}")),
                "{suffix:?}: {out}"
            );
        }
    }
}

store_test! {
    async fn leading_whitespace_in_the_credential_is_401(app) {
        assert_rejected(&app, Some(&format!("Bearer \t{}", app.api_key))).await;
    }
}

store_test! {
    async fn wrong_prefix_is_401(app) {
        let other = app.api_key.replacen("tok_", "tkx_", 1);
        assert_rejected(&app, Some(&format!("Bearer {other}"))).await;
    }
}

store_test! {
    async fn bad_checksum_is_401(app) {
        let mut bad = app.api_key.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == 'a' { 'b' } else { 'a' });
        assert_rejected(&app, Some(&format!("Bearer {bad}"))).await;
    }
}

store_test! {
    async fn unknown_key_is_401(app) {
        let unknown = Credential::generate("tok", Mode::Live);
        assert_rejected(&app, Some(&format!("Bearer {}", unknown.expose()))).await;
    }
}

store_test! {
    async fn deleted_key_is_401_on_the_next_request(app) {
        let (secret, key) = app.new_api_key(Mode::Live).await;
        let auth = format!("Bearer {secret}");
        assert_eq!(
            app.raw(Method::GET, "/v1/tokens", Some(&auth), None)
                .await
                .0,
            StatusCode::OK
        );
        let ctx = tooken_store::AuditContext::new(tooken_core::audit::Actor::admin_cli());
        app.store
            .delete_api_key(&key.id, &ctx, chrono::Utc::now())
            .await
            .unwrap()
            .unwrap();
        assert_rejected(&app, Some(&auth)).await;
    }
}

store_test! {
    async fn regenerated_away_key_is_401_and_the_new_one_works(app) {
        let (secret, key) = app.new_api_key(Mode::Live).await;
        let old = format!("Bearer {secret}");
        assert_eq!(
            app.raw(Method::GET, "/v1/tokens", Some(&old), None).await.0,
            StatusCode::OK
        );
        let fresh = Credential::generate("tok", Mode::Live);
        let ctx = tooken_store::AuditContext::new(tooken_core::audit::Actor::admin_cli());
        app.store
            .regenerate_api_key(
                &key.id,
                fresh.hash(),
                fresh.hint(),
                &ctx,
                chrono::Utc::now(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_rejected(&app, Some(&old)).await;
        let new = format!("Bearer {}", fresh.expose());
        assert_eq!(
            app.raw(Method::GET, "/v1/tokens", Some(&new), None).await.0,
            StatusCode::OK
        );
    }
}

store_test! {
    async fn expired_token_is_401(app) {
        let issued = app
            .client
            .create_token(&tooken_client::CreateToken {
                name: "short".into(),
                scopes: vec!["tokens:read".into()],
                expires_in: Some(60),
                ..Default::default()
            })
            .await
            .unwrap();
        let auth = format!("Bearer {}", issued.secret.expose());
        assert_eq!(
            app.raw(Method::GET, "/v1/tokens", Some(&auth), None)
                .await
                .0,
            StatusCode::OK
        );
        app.clock.advance(chrono::Duration::seconds(60));
        assert_rejected(&app, Some(&auth)).await;
    }
}

store_test! {
    async fn revoked_token_is_401(app) {
        let issued = app.token("t", &["tokens:read"]).await;
        let auth = format!("Bearer {}", issued.secret.expose());
        assert_eq!(
            app.raw(Method::GET, "/v1/tokens", Some(&auth), None)
                .await
                .0,
            StatusCode::OK
        );
        app.client
            .revoke_token(&issued.token.id, None)
            .await
            .unwrap();
        assert_rejected(&app, Some(&auth)).await;
    }
}

store_test! {
    async fn a_key_from_the_token_space_is_not_an_api_key(app) {
        // Well-formed, right checksum, but never issued.
        let forged = Credential::generate("tkn", Mode::Live);
        assert_rejected(&app, Some(&format!("Bearer {}", forged.expose()))).await;
    }
}

store_test! {
    async fn openapi_needs_a_credential_too(app) {
        assert_eq!(
            app.raw(Method::GET, "/v1/openapi.json", None, None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}

store_test! {
    async fn health_endpoints_need_no_credential(app) {
        assert_eq!(
            app.raw(Method::GET, "/healthz", None, None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            app.raw(Method::GET, "/readyz", None, None).await.0,
            StatusCode::OK
        );
    }
}
