//! Bad input: a clear `400` naming the field (or `413`), never a 500.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_invalid, TestApp};

async fn create(app: &TestApp, body: &str) -> (StatusCode, serde_json::Value) {
    app.call(Method::POST, "/v1/tokens", Some(body)).await
}

async fn assert_nothing_created(app: &TestApp) {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tokens")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
}

store_test! {
    async fn body_that_is_not_json(app) {
        let (status, body) = create(&app, "name=ci").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_request");
        assert!(
            body["message"].as_str().unwrap().contains("not valid JSON"),
            "{body}"
        );
        let (status, _) = create(&app, r#"{"name": "ci""#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = create(&app, "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_nothing_created(&app).await;
    }
}

store_test! {
    async fn wrong_json_types(app) {
        let (s, b) = create(&app, r#"{"name": 5}"#).await;
        assert_invalid(s, &b, "name");
        let (s, b) = create(&app, r#"{"name": "x", "scopes": "a:b"}"#).await;
        assert_invalid(s, &b, "scopes");
        let (s, b) = create(&app, r#"{"name": "x", "expires_in": "soon"}"#).await;
        assert_invalid(s, &b, "expires_in");
        let (s, _) = create(&app, r#"["name"]"#).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_nothing_created(&app).await;
    }
}

store_test! {
    async fn unknown_fields(app) {
        let (s, b) = create(&app, r#"{"name": "x", "scope": ["a"]}"#).await;
        assert_invalid(s, &b, "scope");
        assert_nothing_created(&app).await;
    }
}

store_test! {
    async fn missing_name(app) {
        let (s, b) = create(&app, r#"{"scopes": []}"#).await;
        assert_invalid(s, &b, "name");
    }
}

store_test! {
    async fn empty_name(app) {
        let (s, b) = create(&app, r#"{"name": ""}"#).await;
        assert_invalid(s, &b, "name");
        let (s, b) = create(&app, r#"{"name": "   "}"#).await;
        assert_invalid(s, &b, "name");
        assert_nothing_created(&app).await;
    }
}

store_test! {
    async fn name_over_128_characters(app) {
        let long = "n".repeat(129);
        let (s, b) = create(&app, &json!({ "name": long }).to_string()).await;
        assert_invalid(s, &b, "name");
        let exact = "n".repeat(128);
        let (s, _) = create(&app, &json!({ "name": exact }).to_string()).await;
        assert_eq!(s, StatusCode::CREATED);
    }
}

store_test! {
    async fn scope_failing_the_pattern(app) {
        for bad in [
            "Invoices:read",
            "invoices:",
            "1x",
            "a b",
            "invoices::read",
            "",
        ] {
            let (s, b) = create(
                &app,
                &json!({ "name": "x", "scopes": ["ok:read", bad] }).to_string(),
            )
            .await;
            assert_invalid(s, &b, "scopes[1]");
        }
        let (s, b) = create(
            &app,
            &json!({ "name": "x", "scopes": ["a".repeat(65)] }).to_string(),
        )
        .await;
        assert_invalid(s, &b, "scopes[0]");
        assert_nothing_created(&app).await;
    }
}

store_test! {
    async fn more_than_50_scopes(app) {
        let scopes: Vec<String> = (0..51).map(|i| format!("s{i}:read")).collect();
        let (s, b) = create(&app, &json!({ "name": "x", "scopes": scopes }).to_string()).await;
        assert_invalid(s, &b, "scopes");
        let scopes: Vec<String> = (0..50).map(|i| format!("s{i}:read")).collect();
        let (s, _) = create(&app, &json!({ "name": "x", "scopes": scopes }).to_string()).await;
        assert_eq!(s, StatusCode::CREATED);
    }
}

store_test! {
    async fn metadata_not_an_object(app) {
        for bad in [json!([1, 2]), json!("text"), json!(3)] {
            let (s, b) = create(&app, &json!({ "name": "x", "metadata": bad }).to_string()).await;
            assert_invalid(s, &b, "metadata");
        }
        assert_nothing_created(&app).await;
    }
}

store_test! {
    async fn metadata_over_4_kib(app) {
        let (s, b) = create(
            &app,
            &json!({ "name": "x", "metadata": { "blob": "x".repeat(4100) } }).to_string(),
        )
        .await;
        assert_invalid(s, &b, "metadata");
        assert_nothing_created(&app).await;
    }
}

store_test! {
    async fn expires_at_unparseable(app) {
        for bad in ["tomorrow", "2030-13-01T00:00:00Z", "2030-01-01"] {
            let (s, b) = create(&app, &json!({ "name": "x", "expires_at": bad }).to_string()).await;
            assert_invalid(s, &b, "expires_at");
        }
        assert_nothing_created(&app).await;
    }
}

store_test! {
    async fn expires_at_in_the_past(app) {
        let past = (app.clock_now() - chrono::Duration::seconds(1)).to_rfc3339();
        let (s, b) = create(
            &app,
            &json!({ "name": "x", "expires_at": past }).to_string(),
        )
        .await;
        assert_invalid(s, &b, "expires_at");
        let now = app.clock_now().to_rfc3339();
        let (s, b) = create(&app, &json!({ "name": "x", "expires_at": now }).to_string()).await;
        assert_invalid(s, &b, "expires_at");
        assert_nothing_created(&app).await;
    }
}

store_test! {
    async fn both_expires_at_and_expires_in(app) {
        let at = (app.clock_now() + chrono::Duration::hours(1)).to_rfc3339();
        let (s, b) = create(
            &app,
            &json!({ "name": "x", "expires_at": at, "expires_in": 3600 }).to_string(),
        )
        .await;
        assert_invalid(s, &b, "expires_in");
        assert_nothing_created(&app).await;
    }
}

store_test! {
    async fn expires_in_out_of_range(app) {
        for bad in [0, -1, 10 * 366 * 24 * 3600] {
            let (s, b) = create(&app, &json!({ "name": "x", "expires_in": bad }).to_string()).await;
            assert_invalid(s, &b, "expires_in");
        }
    }
}

store_test! {
    async fn limit_out_of_range(app) {
        for bad in ["0", "101", "-1", "ten", ""] {
            let (s, b) = app
                .call(Method::GET, &format!("/v1/tokens?limit={bad}"), None)
                .await;
            assert_invalid(s, &b, "limit");
        }
        let (s, _) = app.call(Method::GET, "/v1/tokens?limit=100", None).await;
        assert_eq!(s, StatusCode::OK);
    }
}

store_test! {
    async fn cursor_that_is_not_ours(app) {
        app.token("t", &[]).await;
        for bad in [
            "garbage",
            "tk_01aaaaaaaaaaaaaaaaaaaaaaaa",
            "key_01aaaaaaaaaaaaaaaaaaaaaaaa",
            "'; DROP TABLE tokens; --",
        ] {
            let (s, b) = app
                .call(
                    Method::GET,
                    &format!("/v1/tokens?starting_after={}", urlencode(bad)),
                    None,
                )
                .await;
            assert_invalid(s, &b, "starting_after");
        }
    }
}

store_test! {
    async fn bad_list_filters(app) {
        let (s, b) = app.call(Method::GET, "/v1/tokens?status=gone", None).await;
        assert_invalid(s, &b, "status");
        let (s, b) = app
            .call(Method::GET, "/v1/tokens?scope=Bad%20Scope", None)
            .await;
        assert_invalid(s, &b, "scope");
        let (s, b) = app.call(Method::GET, "/v1/tokens?colour=red", None).await;
        assert_invalid(s, &b, "colour");
    }
}

store_test! {
    async fn body_over_64_kib_is_413(app) {
        let big = json!({ "name": "x", "description": "d".repeat(70 * 1024) }).to_string();
        let (s, b) = create(&app, &big).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(b["error"], "payload_too_large");
        // Without a Content-Length (chunked), the limit still holds.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let head = format!(
            "POST /v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            app.api_key
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        let chunk = format!("400\r\n{}\r\n", " ".repeat(1024));
        for _ in 0..80 {
            if conn.write_all(chunk.as_bytes()).await.is_err() {
                break; // the server may stop reading once the limit is passed
            }
        }
        let _ = conn.write_all(b"0\r\n\r\n").await;
        let mut out = String::new();
        let _ = conn.read_to_string(&mut out).await;
        assert!(out.starts_with("HTTP/1.1 413"), "{out}");
        assert_nothing_created(&app).await;
    }
}

store_test! {
    async fn bad_update_bodies(app) {
        let t = app.token("t", &[]).await;
        let path = format!("/v1/tokens/{}", t.token.id);
        let (s, b) = app
            .call(Method::PATCH, &path, Some(r#"{"name": ""}"#))
            .await;
        assert_invalid(s, &b, "name");
        let (s, b) = app
            .call(Method::PATCH, &path, Some(r#"{"scopes": ["BAD"]}"#))
            .await;
        assert_invalid(s, &b, "scopes[0]");
        let (s, b) = app
            .call(Method::PATCH, &path, Some(r#"{"metadata": [1]}"#))
            .await;
        assert_invalid(s, &b, "metadata");
        let (s, b) = app
            .call(
                Method::PATCH,
                &path,
                Some(r#"{"expires_at": "2000-01-01T00:00:00Z"}"#),
            )
            .await;
        assert_invalid(s, &b, "expires_at");
        let (s, b) = app
            .call(Method::PATCH, &path, Some(r#"{"id": "tk_x"}"#))
            .await;
        assert_invalid(s, &b, "id");
        assert_eq!(
            app.client.get_token(&t.token.id).await.unwrap(),
            t.token,
            "nothing changed"
        );
    }
}

store_test! {
    async fn bad_revoke_and_verify_bodies(app) {
        let t = app.token("t", &[]).await;
        let (s, b) = app
            .call(
                Method::POST,
                &format!("/v1/tokens/{}/revoke", t.token.id),
                Some(&json!({ "reason": "r".repeat(300) }).to_string()),
            )
            .await;
        assert_invalid(s, &b, "reason");
        let (s, b) = app
            .call(Method::POST, "/v1/tokens/verify", Some(r#"{"scopes": []}"#))
            .await;
        assert_invalid(s, &b, "token");
        let (s, b) = app
            .call(
                Method::POST,
                "/v1/tokens/verify",
                Some(r#"{"token": "x", "scopes": ["NO"]}"#),
            )
            .await;
        assert_invalid(s, &b, "scopes[0]");
    }
}

// Regression: trailing bytes after the JSON object were ignored, so
// `{"name":"a"}{"name":"b"}` created a token named `a`.
store_test! {
    async fn anything_after_the_json_object(app) {
        for bad in [r#"{"name": "a"}{"name": "b"}"#, r#"{"name": "a"} x"#, r#"{"name": "a"}]"#] {
            let (s, b) = create(&app, bad).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {b}");
            assert_eq!(b["error"], "invalid_request");
            assert!(b["message"].as_str().unwrap().contains("not valid JSON"), "{b}");
        }
        let (s, _) = create(&app, "{\"name\": \"a\"}\n  ").await;
        assert_eq!(s, StatusCode::CREATED, "trailing whitespace is fine");
    }
}

// Regression: on PostgreSQL a NUL in a stored text field was a 500
// (PostgreSQL refuses NUL in text), and in a query filter too.
store_test! {
    async fn control_characters_in_free_text(app) {
        let (s, b) = create(&app, r#"{"name": "x", "description": "a\u0000b"}"#).await;
        assert_invalid(s, &b, "description");
        let (s, b) = create(&app, r#"{"name": "x", "description": "bell\u0007"}"#).await;
        assert_invalid(s, &b, "description");
        assert_nothing_created(&app).await;
        let (s, b) = create(&app, r#"{"name": "x", "description": "two\nlines\tand a tab"}"#).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let t = b["id"].as_str().unwrap().to_owned();

        let (s, b) = app
            .call(Method::PATCH, &format!("/v1/tokens/{t}"), Some(r#"{"description": "\u0000"}"#))
            .await;
        assert_invalid(s, &b, "description");
        let (s, b) = app
            .call(Method::POST, &format!("/v1/tokens/{t}/revoke"), Some(r#"{"reason": "a\u0000"}"#))
            .await;
        assert_invalid(s, &b, "reason");
        let token = app.client.get_token(&t).await.unwrap();
        assert_eq!(token.description.as_deref(), Some("two\nlines\tand a tab"));
        assert!(token.revoked_at.is_none(), "the refused revocation did not happen");
    }
}

store_test! {
    async fn nul_in_query_filters(app) {
        for (path, field) in [
            ("/v1/tokens?name=a%00b", "name"),
            ("/v1/audit-log?action=a%00", "action"),
            ("/v1/audit-log?actor=%00", "actor"),
            ("/v1/audit-log?target=x%00", "target"),
            ("/v1/audit-log/export?action=%00", "action"),
        ] {
            let (s, b) = app.call(Method::GET, path, None).await;
            assert_invalid(s, &b, field);
        }
    }
}

// Regression: a path segment that does not decode to UTF-8 got a text/plain
// answer instead of the API's error shape.
store_test! {
    async fn path_segment_that_is_not_utf8(app) {
        let auth = format!("Bearer {}", app.api_key);
        for (method, path) in [
            (Method::GET, "/v1/tokens/%FF"),
            (Method::PATCH, "/v1/tokens/%C3%28"),
            (Method::POST, "/v1/tokens/%FF/rotate"),
            (Method::POST, "/v1/tokens/%FF/revoke"),
            (Method::GET, "/v1/tokens/%FF/usage"),
        ] {
            let (s, headers, text) = app.raw(method.clone(), path, Some(&auth), Some("{}")).await;
            assert_eq!(headers["content-type"], "application/json", "{method} {path}: {text}");
            let b: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_invalid(s, &b, "id");
        }
    }
}

// Regression: the OpenAPI document allows a `null` body for rotate and
// revoke (the body is optional); the server refused it. And it took a body
// of whitespace, which is not JSON, for no body.
store_test! {
    async fn null_body_is_no_body(app) {
        let t = app.token("t", &[]).await;
        for blank in ["\n", "  "] {
            let (s, b) = app
                .call(Method::POST, &format!("/v1/tokens/{}/rotate", t.token.id), Some(blank))
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{blank:?}: {b}");
            assert!(b["message"].as_str().unwrap().contains("not valid JSON"), "{b}");
        }
        let (s, b) = app
            .call(Method::POST, &format!("/v1/tokens/{}/rotate", t.token.id), Some(""))
            .await;
        assert_eq!(s, StatusCode::OK, "no body at all: {b}");
        let (s, b) = app
            .call(Method::POST, &format!("/v1/tokens/{}/rotate", t.token.id), Some("null"))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = app
            .call(Method::POST, &format!("/v1/tokens/{}/revoke", t.token.id), Some(" null "))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["status"], "revoked");
    }
}

// Regression: the OpenAPI document says a name is at most 128 characters,
// and the server counted them after trimming whitespace.
store_test! {
    async fn name_length_counts_what_was_sent(app) {
        let padded = format!(" {} ", "n".repeat(127));
        let (s, b) = create(&app, &json!({ "name": padded }).to_string()).await;
        assert_invalid(s, &b, "name");
        let (s, b) = create(&app, &json!({ "name": format!(" {}", "n".repeat(127)) }).to_string()).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        assert_eq!(b["name"], "n".repeat(127));
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
