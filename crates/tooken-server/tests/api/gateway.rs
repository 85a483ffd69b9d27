//! Gateways (SPEC §12): route rules (`GET|PUT /v1/authz/rules`) and the
//! forward-auth endpoint, driven over HTTP as nginx, Caddy, Traefik and
//! Envoy drive it. (The real nginx and Caddy in front of it: `tooken`'s
//! `gateways` tests.)

use chrono::Duration;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tooken_client::{CreateToken, RulesSpec};
use tooken_core::Mode;

use crate::helpers::{assert_invalid, TestApp, UNAUTHORIZED_BODY};

/// The rules most tests run under.
fn rules() -> Value {
    json!({"rules": [
        {"methods": ["GET"], "path": "/invoices/**", "scopes": ["invoices:read"]},
        {"methods": ["POST", "put"], "path": "/invoices/*", "scopes": ["invoices:write"], "cost": 2},
        {"methods": "*", "path": "/health", "anonymous": true},
        {"methods": "*", "path": "/admin/**", "scopes": ["admin"]},
    ]})
}

async fn put_rules(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    app.call(Method::PUT, "/v1/authz/rules", Some(&body.to_string()))
        .await
}

/// One auth subrequest: as nginx sends it (original method and URI in
/// headers), with the gateway's key and the client's token.
struct Sub<'a> {
    key: Option<&'a str>,
    method: &'a str,
    uri: &'a str,
    token: Option<&'a str>,
    extra: Vec<(&'a str, &'a str)>,
    path: String,
}

impl<'a> Sub<'a> {
    fn new(app: &'a TestApp, method: &'a str, uri: &'a str, token: Option<&'a str>) -> Sub<'a> {
        Sub {
            key: Some(&app.api_key),
            method,
            uri,
            token,
            extra: Vec::new(),
            path: "/v1/authz/forward".into(),
        }
    }

    async fn send(&self, app: &TestApp) -> (StatusCode, HeaderMap, Value) {
        let mut req = app
            .http
            .get(format!("{}{}", app.url, self.path))
            .header("x-forwarded-method", self.method)
            .header("x-forwarded-uri", self.uri);
        if let Some(key) = self.key {
            req = req.header("tooken-gateway-key", key);
        }
        if let Some(token) = self.token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        for (k, v) in &self.extra {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, body)
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

/// No `X-Tooken-*` header for the upstream.
fn no_upstream_headers(headers: &HeaderMap) -> bool {
    ["x-tooken-token-id", "x-tooken-scopes", "x-tooken-metadata"]
        .iter()
        .all(|h| !headers.contains_key(*h))
}

store_test! {
    async fn rules_are_stored_per_mode_validated_audited_and_warned_about(app) {
        let (status, body) = app.call(Method::GET, "/v1/authz/rules", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({"rules": [], "warnings": []}));

        let mut with_shadow = rules();
        with_shadow["rules"].as_array_mut().unwrap().push(
            json!({"methods": ["get"], "path": "/invoices/42", "scopes": ["x"]}),
        );
        let (status, body) = put_rules(&app, &with_shadow).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // As stored: methods in capitals, cost only when not 1, anonymous only when true.
        assert_eq!(body["rules"][1], json!({"methods": ["POST", "PUT"], "path": "/invoices/*", "scopes": ["invoices:write"], "cost": 2}));
        assert_eq!(body["rules"][2], json!({"methods": "*", "path": "/health", "scopes": [], "anonymous": true}));
        assert_eq!(body["warnings"].as_array().unwrap().len(), 1, "{body}");
        assert_eq!(body["warnings"][0]["field"], "rules[4]");
        assert_eq!(body["warnings"][0]["shadowed_by"], json!([0]));
        let (_, got) = app.call(Method::GET, "/v1/authz/rules", None).await;
        assert_eq!(got, body);

        // The typed client reads the same.
        let typed = app.client.authz_rules().await.unwrap();
        assert_eq!(typed.rules.rules().len(), 5);

        // A test key has its own (empty) rules, and sets them apart.
        let (test_key, _) = app.new_api_key(Mode::Test).await;
        let test_client = app.client.with_credential(&test_key);
        assert!(test_client.authz_rules().await.unwrap().rules.rules().is_empty());
        let one: RulesSpec = serde_json::from_value(json!({"rules": [{"methods": "*", "path": "/**"}]})).unwrap();
        test_client.set_authz_rules(&one).await.unwrap();
        assert_eq!(app.client.authz_rules().await.unwrap().rules.rules().len(), 5);

        // Audited with the old and new rules, in its mode.
        let events = app.events(&app.workspace_id).await;
        let updates: Vec<_> = events.iter().filter(|e| e.action == "authz_rules.updated").collect();
        assert_eq!(updates.len(), 2);
        assert_eq!(updates[0].mode.as_deref(), Some("live"));
        assert_eq!(updates[0].details["old"], json!([]));
        assert_eq!(updates[0].details["new"], body["rules"]);
        assert_eq!(updates[1].mode.as_deref(), Some("test"));

        // Replacing them records what was replaced.
        let (status, _) = put_rules(&app, &json!({"rules": []})).await;
        assert_eq!(status, StatusCode::OK);
        let events = app.events(&app.workspace_id).await;
        let last = events.iter().rfind(|e| e.action == "authz_rules.updated").unwrap();
        assert_eq!(last.details["old"], body["rules"]);
        assert_eq!(last.details["new"], json!([]));
    }
}

store_test! {
    async fn bad_rules_are_refused_naming_the_field(app) {
        for (rules, field) in [
            (json!([{"methods": ["GET"], "path": "invoices"}]), "rules[0].path"),
            (json!([{"methods": "*", "path": "/a"}, {"methods": ["GET"], "path": "/a/b*"}]), "rules[1].path"),
            (json!([{"methods": ["GET", "FETCH"], "path": "/a"}]), "rules[0].methods[1]"),
            (json!([{"methods": [], "path": "/a"}]), "rules[0].methods"),
            (json!([{"methods": "any", "path": "/a"}]), "rules[0].methods"),
            (json!([{"methods": "*", "path": "/a", "scopes": ["Bad Scope"]}]), "rules[0].scopes[0]"),
            (json!([{"methods": "*", "path": "/a", "anonymous": true, "scopes": ["a"]}]), "rules[0].scopes"),
            (json!([{"methods": "*", "path": "/a", "cost": -1}]), "rules[0].cost"),
            (json!([{"methods": "*", "path": "/a/../b"}]), "rules[0].path"),
            (json!([{"methods": "*", "path": "/a?x=1"}]), "rules[0].path"),
            (json!([{"methods": "*", "path": "/a", "colour": "red"}]), "rules[0].colour"),
        ] {
            let (status, body) = put_rules(&app, &json!({ "rules": rules })).await;
            assert_invalid(status, &body, field);
        }
        // Nothing was stored.
        let (_, body) = app.call(Method::GET, "/v1/authz/rules", None).await;
        assert_eq!(body["rules"], json!([]));
    }
}

store_test! {
    async fn ten_thousand_rules_are_over_the_limit(app) {
        let many: Vec<Value> = (0..10_000)
            .map(|i| json!({"methods": "*", "path": format!("/r{i}")}))
            .collect();
        let (status, body) = put_rules(&app, &json!({ "rules": many })).await;
        assert_invalid(status, &body, "rules");
        assert!(body["message"].as_str().unwrap().contains("1000"), "{body}");
        // At the limit: accepted.
        let (status, body) = put_rules(&app, &json!({ "rules": many[..1_000] })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // A body over 1 MiB is not read at all.
        let huge = format!(r#"{{"rules":[{{"methods":"*","path":"/{}"}}]}}"#, "a".repeat(1 << 20));
        let (status, body) = app.call(Method::PUT, "/v1/authz/rules", Some(&huge)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    }
}

store_test! {
    async fn only_api_keys_manage_rules(app) {
        let token = app.token("t", &["tokens:read", "tokens:write", "tokens:verify", "audit:read"]).await;
        let as_token = app.client.with_credential(token.secret.expose());
        for result in [
            as_token.authz_rules().await.err(),
            as_token.set_authz_rules(&RulesSpec::default()).await.err(),
        ] {
            assert_eq!(result.unwrap().status(), Some(403));
        }
    }
}

store_test! {
    async fn forward_lets_valid_tokens_through_with_their_headers(app) {
        put_rules(&app, &rules()).await;
        let t = app
            .client
            .create_token(&CreateToken {
                name: "svc".into(),
                scopes: vec!["invoices:read".into(), "invoices:write".into()],
                metadata: Some(json!({"customer": "acme"})),
                ..Default::default()
            })
            .await
            .unwrap();
        let secret = t.secret.expose();
        for (method, uri) in [("GET", "/invoices"), ("GET", "/invoices/42/lines"), ("post", "/invoices/42")] {
            let (status, h, body) = Sub::new(&app, method, uri, Some(secret)).send(&app).await;
            assert_eq!(status, StatusCode::OK, "{method} {uri}: {body}");
            assert_eq!(header(&h, "x-tooken-token-id"), Some(t.token.id.as_str()));
            assert_eq!(header(&h, "x-tooken-scopes"), Some("invoices:read invoices:write"));
            // base64url of {"customer":"acme"}, without padding.
            assert_eq!(header(&h, "x-tooken-metadata"), Some("eyJjdXN0b21lciI6ImFjbWUifQ"));
            assert_eq!(header(&h, "cache-control"), Some("no-store"));
            assert_eq!(header(&h, "x-envoy-auth-headers-to-remove"), Some("x-tooken-metadata-omitted"));
        }
        // Counted as uses, like verifications.
        app.flush().await;
        let got = app.client.get_token(&t.token.id).await.unwrap();
        assert_eq!(got.last_used_at, Some(app.clock_now()));
        let (_, _, metrics) = app.raw(Method::GET, "/metrics", None, None).await;
        for line in [
            r#"tooken_verifications_total{code="VALID"} 3"#,
            r#"tooken_authz_decisions_total{outcome="allowed"} 3"#,
        ] {
            assert!(metrics.contains(line), "missing {line}");
        }
    }
}

store_test! {
    async fn forward_refuses_what_the_rules_refuse(app) {
        put_rules(&app, &rules()).await;
        let reader = app.token("reader", &["invoices:read"]).await;
        let reader = reader.secret.expose();
        let expiring = app
            .client
            .create_token(&CreateToken {
                name: "short".into(),
                scopes: vec!["invoices:read".into()],
                expires_in: Some(60),
                ..Default::default()
            })
            .await
            .unwrap();
        let revoked = app.token("gone", &["invoices:read"]).await;
        app.client.revoke_token(&revoked.token.id, None).await.unwrap();
        let test_mode = {
            let (test_key, _) = app.new_api_key(Mode::Test).await;
            let c = app.client.with_credential(&test_key);
            c.create_token(&CreateToken { name: "t".into(), scopes: vec!["invoices:read".into()], ..Default::default() })
                .await
                .unwrap()
        };
        app.clock.advance(Duration::seconds(61));

        // Missing, malformed, unknown, revoked, expired, other mode: section 3's 401.
        for (token, presented) in [
            (None, false),
            (Some("not-a-token"), true),
            (Some("tkn_live_000000000000000000000000000000AAAAAA"), true),
            (Some(revoked.secret.expose()), true),
            (Some(expiring.secret.expose()), true),
            (Some(test_mode.secret.expose()), true),
            (Some(app.api_key.as_str()), true),
        ] {
            let (status, h, body) = Sub::new(&app, "GET", "/invoices/1", token).send(&app).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
            assert_eq!(body.to_string(), UNAUTHORIZED_BODY);
            let www = if presented { r#"Bearer realm="tooken", error="invalid_token""# } else { r#"Bearer realm="tooken""# };
            assert_eq!(header(&h, "www-authenticate"), Some(www));
            assert_eq!(header(&h, "x-tooken-error"), None, "not about the gateway's key");
            assert_eq!(header(&h, "cache-control"), Some("no-store"));
            assert!(no_upstream_headers(&h));
        }

        // A scope missing: 403 naming it.
        let (status, h, body) = Sub::new(&app, "PUT", "/invoices/1", Some(reader)).send(&app).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["required_scope"], "invoices:write");
        assert_eq!(header(&h, "x-tooken-code"), Some("INSUFFICIENT_SCOPE"));
        assert!(no_upstream_headers(&h));

        // No rule: refused, whatever the token.
        for (method, uri) in [("GET", "/customers"), ("DELETE", "/invoices/1"), ("GET", "/")] {
            let (status, h, body) = Sub::new(&app, method, uri, Some(reader)).send(&app).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {body}");
            assert_eq!(header(&h, "x-tooken-code"), Some("NO_MATCHING_RULE"));
            assert_eq!(body["error"], "forbidden");
        }

        // A public route: 200 with nothing about whatever token came.
        for token in [None, Some(reader), Some("garbage")] {
            let (status, h, _) = Sub::new(&app, "DELETE", "/health", token).send(&app).await;
            assert_eq!(status, StatusCode::OK, "{token:?}");
            assert!(no_upstream_headers(&h));
            assert_eq!(
                header(&h, "x-envoy-auth-headers-to-remove"),
                Some("x-tooken-token-id,x-tooken-scopes,x-tooken-metadata,x-tooken-metadata-omitted")
            );
        }
    }
}

store_test! {
    async fn a_revoked_token_is_refused_on_the_very_next_request(app) {
        put_rules(&app, &rules()).await;
        app.wait_for_change_feed().await;
        for round in 0..20 {
            let t = app.token(&format!("r{round}"), &["invoices:read"]).await;
            let sub = Sub::new(&app, "GET", "/invoices/1", Some(t.secret.expose()));
            // Twice: the second answer comes from the node's cache.
            for _ in 0..2 {
                assert_eq!(sub.send(&app).await.0, StatusCode::OK, "round {round}");
            }
            app.client.revoke_token(&t.token.id, None).await.unwrap();
            assert_eq!(sub.send(&app).await.0, StatusCode::UNAUTHORIZED, "round {round}");
        }
    }
}

store_test! {
    async fn new_rules_are_in_force_on_the_very_next_request(app) {
        app.wait_for_change_feed().await;
        let t = app.token("t", &["invoices:read"]).await;
        let sub = Sub::new(&app, "GET", "/invoices/1", Some(t.secret.expose()));
        assert_eq!(sub.send(&app).await.0, StatusCode::FORBIDDEN, "no rules: refused");
        put_rules(&app, &rules()).await;
        assert_eq!(sub.send(&app).await.0, StatusCode::OK);
        assert_eq!(sub.send(&app).await.0, StatusCode::OK);
        put_rules(&app, &json!({"rules": [{"methods": ["GET"], "path": "/invoices/**", "scopes": ["invoices:admin"]}]})).await;
        assert_eq!(sub.send(&app).await.0, StatusCode::FORBIDDEN);
    }
}

store_test! {
    async fn a_bad_gateway_key_is_told_apart_from_a_bad_client_token(app) {
        put_rules(&app, &rules()).await;
        let t = app.token("t", &["invoices:read"]).await;
        let no_verify = app.token("no-verify", &["tokens:read"]).await;
        let verifier = app.token("gateway", &["tokens:verify"]).await;
        for (key, status, www) in [
            (None, StatusCode::UNAUTHORIZED, Some(r#"Bearer realm="tooken""#)),
            (Some("tok_live_nope"), StatusCode::UNAUTHORIZED, Some(r#"Bearer realm="tooken", error="invalid_token""#)),
            (Some("tok_live_000000000000000000000000000000AAAAAA"), StatusCode::UNAUTHORIZED, None),
            (Some(t.secret.expose()), StatusCode::FORBIDDEN, None),
            (Some(no_verify.secret.expose()), StatusCode::FORBIDDEN, None),
        ] {
            let mut sub = Sub::new(&app, "GET", "/invoices/1", Some(t.secret.expose()));
            sub.key = key;
            let (got, h, body) = sub.send(&app).await;
            assert_eq!(got, status, "{key:?}: {body}");
            assert_eq!(header(&h, "x-tooken-error"), Some("invalid_gateway_key"), "{key:?}");
            if status == StatusCode::UNAUTHORIZED {
                assert_eq!(body.to_string(), UNAUTHORIZED_BODY);
            } else {
                assert_eq!(body["required_scope"], "tokens:verify");
            }
            if let Some(www) = www {
                assert_eq!(header(&h, "www-authenticate"), Some(www));
            }
            assert!(no_upstream_headers(&h));
        }
        // Sent twice: refused, not one picked.
        let mut sub = Sub::new(&app, "GET", "/invoices/1", Some(t.secret.expose()));
        sub.extra.push(("tooken-gateway-key", &app.api_key));
        assert_eq!(sub.send(&app).await.0, StatusCode::UNAUTHORIZED);
        // A token with tokens:verify is a gateway key.
        let mut sub = Sub::new(&app, "GET", "/invoices/1", Some(t.secret.expose()));
        sub.key = Some(verifier.secret.expose());
        let (status, h, _) = sub.send(&app).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&h, "x-tooken-token-id"), Some(t.token.id.as_str()));
        // The refusals are in the audit log as authentication failures:
        // unknown keys on the server's chain, known ones on their workspace's.
        app.flush().await;
        for chain in [tooken_store::SERVER_CHAIN, app.workspace_id.as_str()] {
            let events = app.events(chain).await;
            assert!(events.iter().any(|e| e.action == "auth.failed"), "{chain}: {events:?}");
        }
    }
}

store_test! {
    async fn dangerous_paths_are_refused_and_queries_ignored(app) {
        put_rules(&app, &json!({"rules": [
            {"methods": ["GET"], "path": "/public/**", "anonymous": true},
            {"methods": ["GET"], "path": "/invoices/*", "scopes": ["invoices:read"]},
        ]})).await;
        let t = app.token("t", &["invoices:read"]).await;
        let token = Some(t.secret.expose());
        for uri in [
            "/public/../admin",
            "/public/%2e%2e/admin",
            "/public/a%2Fb",
            "/public/a%2fb",
            "/public/a%5Cb",
            "/public//admin",
            "//public/x",
            "/public/a\\b",
            "/public/%00",
            "/public/%zz",
            "public/x",
        ] {
            let (status, h, body) = Sub::new(&app, "GET", uri, token).send(&app).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {body}");
            assert_eq!(header(&h, "x-tooken-code"), Some("PATH_REFUSED"), "{uri}");
        }
        // The query string is not matched: neither lets a path in nor keeps it out.
        for (uri, status) in [
            ("/invoices/42?x=1", StatusCode::OK),
            ("/invoices/42?/../admin", StatusCode::OK),
            ("/admin?/public/x", StatusCode::FORBIDDEN),
            ("/invoices/42/?a=b#frag", StatusCode::OK),
            ("/public/%41?x", StatusCode::OK),
        ] {
            let (got, _, body) = Sub::new(&app, "GET", uri, token).send(&app).await;
            assert_eq!(got, status, "{uri}: {body}");
        }
    }
}

store_test! {
    async fn methods_match_in_any_case_and_unknown_ones_only_star(app) {
        put_rules(&app, &json!({"rules": [
            {"methods": ["get"], "path": "/a"},
            {"methods": "*", "path": "/b"},
        ]})).await;
        let t = app.token("t", &[]).await;
        let token = Some(t.secret.expose());
        for (method, uri, status) in [
            ("GET", "/a", StatusCode::OK),
            ("get", "/a", StatusCode::OK),
            ("gEt", "/a", StatusCode::OK),
            ("HEAD", "/a", StatusCode::FORBIDDEN),
            ("PURGE", "/a", StatusCode::FORBIDDEN),
            ("PURGE", "/b", StatusCode::OK),
            ("post", "/b", StatusCode::OK),
        ] {
            let (got, _, body) = Sub::new(&app, method, uri, token).send(&app).await;
            assert_eq!(got, status, "{method} {uri}: {body}");
        }
        // The path is case-sensitive.
        let (got, _, _) = Sub::new(&app, "GET", "/A", token).send(&app).await;
        assert_eq!(got, StatusCode::FORBIDDEN);
    }
}

store_test! {
    async fn the_original_request_comes_from_each_gateways_headers(app) {
        put_rules(&app, &rules()).await;
        let t = app.token("t", &["invoices:read"]).await;
        let secret = t.secret.expose();
        let bearer = format!("Bearer {secret}");
        let send = |path: String, method: Method, headers: Vec<(&'static str, String)>| {
            let mut req = app.http.request(method, format!("{}{path}", app.url));
            for (k, v) in headers {
                req = req.header(k, v);
            }
            async move {
                let res = req.send().await.unwrap();
                (res.status(), res.headers().clone(), res.text().await.unwrap())
            }
        };
        let key = ("tooken-gateway-key", app.api_key.clone());
        let auth = ("authorization", bearer.clone());
        // nginx: X-Original-*; the subrequest's own method when none is sent.
        for (method, headers, status) in [
            (Method::GET, vec![("x-original-uri", "/invoices/1".to_owned())], StatusCode::OK),
            (Method::DELETE, vec![("x-original-uri", "/invoices/1".to_owned())], StatusCode::FORBIDDEN),
            (Method::GET, vec![("x-original-method", "DELETE".to_owned()), ("x-original-uri", "/invoices/1".to_owned())], StatusCode::FORBIDDEN),
            // Both names sent and agreeing: fine; disagreeing: refused.
            (Method::GET, vec![("x-original-uri", "/invoices/1".to_owned()), ("x-forwarded-uri", "/invoices/1".to_owned())], StatusCode::OK),
            (Method::GET, vec![("x-original-uri", "/invoices/1".to_owned()), ("x-forwarded-uri", "/admin".to_owned())], StatusCode::BAD_REQUEST),
            (Method::GET, vec![("x-forwarded-method", "GET".to_owned()), ("x-original-method", "DELETE".to_owned()), ("x-forwarded-uri", "/invoices/1".to_owned())], StatusCode::BAD_REQUEST),
            // No original URI at all.
            (Method::GET, vec![], StatusCode::BAD_REQUEST),
        ] {
            let mut all = vec![key.clone(), auth.clone()];
            all.extend(headers.clone());
            let (got, _, body) = send("/v1/authz/forward".into(), method.clone(), all).await;
            assert_eq!(got, status, "{method} {headers:?}: {body}");
        }
        // Envoy's HTTP ext_authz: the original path appended, its own method;
        // forwarded headers are the client's there, and not read.
        for (method, path, status, code) in [
            (Method::GET, "/v1/authz/forward/invoices/42?x=1", StatusCode::OK, None),
            (Method::HEAD, "/v1/authz/forward/invoices/42", StatusCode::FORBIDDEN, Some("NO_MATCHING_RULE")),
            (Method::GET, "/v1/authz/forward/health", StatusCode::OK, None),
            (Method::GET, "/v1/authz/forward/", StatusCode::FORBIDDEN, Some("NO_MATCHING_RULE")),
            (Method::GET, "/v1/authz/forward/invoices/%2e%2e/admin", StatusCode::FORBIDDEN, Some("PATH_REFUSED")),
            (Method::GET, "/v1/authz/forward/invoices/a%2Fb", StatusCode::FORBIDDEN, Some("PATH_REFUSED")),
            (Method::GET, "/v1/authz/forward//invoices/1", StatusCode::FORBIDDEN, Some("PATH_REFUSED")),
        ] {
            // Sent as written: an HTTP client library would normalize the path.
            let mut all = vec![key.clone(), auth.clone(), ("x-forwarded-uri", "/admin".to_owned()), ("x-forwarded-method", "DELETE".to_owned())];
            all.push(("host", "tooken".to_owned()));
            let (got, h, body) = raw_request(app.addr, method.as_str(), path, &all).await;
            assert_eq!(got, status, "{method} {path}: {body}");
            assert_eq!(h.get("x-tooken-code").map(String::as_str), code, "{method} {path}");
            if status == StatusCode::OK && path.contains("invoices") {
                assert_eq!(h["x-tooken-token-id"], t.token.id);
            }
        }
        // Traefik: the key in the path; the original request in X-Forwarded-*.
        let path = format!("/v1/authz/traefik/{}", app.api_key);
        let (got, h, body) = send(
            path.clone(),
            Method::GET,
            vec![auth.clone(), ("x-forwarded-method", "GET".into()), ("x-forwarded-uri", "/invoices/7".into())],
        )
        .await;
        assert_eq!(got, StatusCode::OK, "{body}");
        assert_eq!(h["x-tooken-token-id"], t.token.id.as_str());
        let (got, h, _) = send(
            "/v1/authz/traefik/tok_live_000000000000000000000000000000AAAAAA".into(),
            Method::GET,
            vec![auth.clone(), ("x-forwarded-uri", "/invoices/7".into())],
        )
        .await;
        assert_eq!(got, StatusCode::UNAUTHORIZED);
        assert_eq!(h["x-tooken-error"], "invalid_gateway_key");
        // deny_status: only 403, only where the query is the gateway's.
        for (query, status) in [("?deny_status=403", StatusCode::OK), ("?deny_status=500", StatusCode::BAD_REQUEST), ("?deny=403", StatusCode::BAD_REQUEST)] {
            let (got, _, body) = send(
                format!("/v1/authz/forward{query}"),
                Method::GET,
                vec![key.clone(), auth.clone(), ("x-forwarded-uri", "/invoices/1".into())],
            )
            .await;
            assert_eq!(got, status, "{query}: {body}");
        }
    }
}

store_test! {
    async fn forwarded_addresses_from_an_untrusted_peer_are_ignored(app) {
        put_rules(&app, &rules()).await;
        // A refused gateway key is recorded with the client's address: the
        // connection's, since nothing is trusted to say otherwise.
        let mut sub = Sub::new(&app, "GET", "/invoices/1", None);
        sub.key = Some("tok_live_000000000000000000000000000000AAAAAA");
        sub.extra = vec![("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=203.0.113.9")];
        assert_eq!(sub.send(&app).await.0, StatusCode::UNAUTHORIZED);
        app.flush().await;
        let events = app.events(tooken_store::SERVER_CHAIN).await;
        let failed = events.iter().rfind(|e| e.action == "auth.failed").unwrap();
        assert_eq!(failed.client_addr.as_deref(), Some("127.0.0.1"), "{failed:?}");
    }
}

/// One HTTP/1.1 request written by hand (the path exactly as given), and
/// its status, headers (lowercase names) and body.
async fn raw_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
) -> (
    StatusCode,
    std::collections::HashMap<String, String>,
    String,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    (
        StatusCode::from_u16(status).unwrap(),
        headers,
        body.to_owned(),
    )
}
