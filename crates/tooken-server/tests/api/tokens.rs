//! The token resource: create, list, get, update, revoke.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tooken_client::{CreateToken, ListTokens, TokenStatus, UpdateToken};
use tooken_core::Mode;

store_test! {
    async fn create_returns_the_token_object_and_its_secret_once(app) {
        let (status, body) = app
            .call(
                Method::POST,
                "/v1/tokens",
                Some(r#"{"name":"billing","description":"sync job","scopes":["invoices:read","invoices:write"],
                         "metadata":{"team":"billing"},"expires_in":3600}"#),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        for field in [
            "id",
            "name",
            "description",
            "mode",
            "scopes",
            "metadata",
            "hint",
            "status",
            "created_at",
            "created_by",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "parent_id",
            "secret",
        ] {
            assert!(body.get(field).is_some(), "missing {field} in {body}");
        }
        let secret = body["secret"].as_str().unwrap();
        assert!(secret.starts_with("tkn_live_"));
        assert_eq!(body["status"], "active");
        assert_eq!(body["mode"], "live");
        assert_eq!(body["created_by"], app.api_key_id);
        assert_eq!(
            body["hint"],
            format!("tkn_live_…{}", &secret[secret.len() - 4..])
        );
        assert_eq!(body["metadata"], json!({"team": "billing"}));
        let expires: chrono::DateTime<chrono::Utc> =
            body["expires_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(expires, app.clock_now() + chrono::Duration::seconds(3600));

        // Never again: not on get, not on list, not in the store.
        let id = body["id"].as_str().unwrap();
        let (_, got) = app
            .call(Method::GET, &format!("/v1/tokens/{id}"), None)
            .await;
        assert!(got.get("secret").is_none());
        assert!(!got.to_string().contains(secret));
        let (_, list) = app.call(Method::GET, "/v1/tokens", None).await;
        assert!(!list.to_string().contains(secret));
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT secret_hash FROM tokens")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].0,
            tooken_core::SecretHash::of(secret).as_bytes().to_vec()
        );
        let dump: Vec<(String,)> = sqlx::query_as("SELECT details FROM audit_events")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
        assert!(dump.iter().all(|(d,)| !d.contains(secret)));
    }
}

store_test! {
    async fn get_returns_what_create_made(app) {
        let issued = app.token("one", &["a:b"]).await;
        let got = app.client.get_token(&issued.token.id).await.unwrap();
        assert_eq!(got, issued.token);
    }
}

store_test! {
    async fn unknown_and_foreign_ids_are_404(app) {
        let (status, body) = app
            .call(
                Method::GET,
                "/v1/tokens/tk_01aaaaaaaaaaaaaaaaaaaaaaaa",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "not_found");
        let (status, _) = app.call(Method::GET, "/v1/tokens/not-an-id", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // A token of another workspace looks exactly like one that does not exist.
        let ctx = tooken_store::AuditContext::new(tooken_core::audit::Actor::admin_cli());
        let other = app
            .store
            .create_workspace(&"other".parse().unwrap(), &ctx, app.clock_now())
            .await
            .unwrap();
        let (other_key, _) = app.new_api_key_in(&other.id, Mode::Live).await;
        let theirs = app
            .client
            .with_credential(&other_key)
            .create_token(&CreateToken {
                name: "theirs".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let (status, body) = app
            .call(
                Method::GET,
                &format!("/v1/tokens/{}", theirs.token.id),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body["message"],
            format!("no token with id {}", theirs.token.id)
        );
        for path in ["revoke", "rotate"] {
            let (status, _) = app
                .call(
                    Method::POST,
                    &format!("/v1/tokens/{}/{path}", theirs.token.id),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
        let (status, _) = app
            .call(
                Method::PATCH,
                &format!("/v1/tokens/{}", theirs.token.id),
                Some(r#"{"name":"x"}"#),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let list = app
            .client
            .list_all_tokens(&ListTokens::default())
            .await
            .unwrap();
        assert!(list.is_empty());
    }
}

store_test! {
    async fn list_is_newest_first_and_paginates_with_a_cursor(app) {
        let mut ids = Vec::new();
        for i in 0..7 {
            ids.push(app.token(&format!("t{i}"), &[]).await.token.id);
        }
        ids.reverse();
        // Pages of three: (ids on the page, has_more); each cursor is the
        // last id of its page.
        let mut cursor = None;
        for (page_ids, more) in [(&ids[..3], true), (&ids[3..6], true), (&ids[6..], false)] {
            let q = ListTokens { limit: Some(3), starting_after: cursor.clone(), ..Default::default() };
            let page = app.client.list_tokens(&q).await.unwrap();
            assert_eq!(page.data.iter().map(|t| &t.id).collect::<Vec<_>>(), page_ids.iter().collect::<Vec<_>>());
            assert_eq!(page.has_more, more);
            let expected_cursor = more.then(|| page_ids.last().unwrap().clone());
            assert_eq!(page.next_cursor, expected_cursor);
            cursor = page.next_cursor;
        }
        let (_, default_page) = app.call(Method::GET, "/v1/tokens", None).await;
        assert_eq!(default_page["data"].as_array().unwrap().len(), 7);
    }
}

store_test! {
    async fn list_filters_by_status_scope_and_name(app) {
        let active = app.token("deploy-a", &["deploy:run"]).await;
        let revoked = app.token("deploy-b", &["deploy:run", "logs:read"]).await;
        app.client
            .revoke_token(&revoked.token.id, Some("test"))
            .await
            .unwrap();
        let expiring = app
            .client
            .create_token(&CreateToken {
                name: "ci".into(),
                expires_in: Some(10),
                ..Default::default()
            })
            .await
            .unwrap();
        app.clock.advance(chrono::Duration::seconds(11));

        let filter = |status: Option<&str>, scope: Option<&str>, name: Option<&str>| ListTokens {
            status: status.map(str::to_owned),
            scope: scope.map(str::to_owned),
            name: name.map(str::to_owned),
            ..Default::default()
        };
        let (active, revoked, expiring) = (&active.token.id, &revoked.token.id, &expiring.token.id);
        let mut deploys = vec![active, revoked];
        deploys.sort();
        for (what, q, expected) in [
            ("active", filter(Some("active"), None, None), vec![active]),
            ("revoked", filter(Some("revoked"), None, None), vec![revoked]),
            ("expired", filter(Some("expired"), None, None), vec![expiring]),
            ("by scope", filter(None, Some("logs:read"), None), vec![revoked]),
            ("by name prefix", filter(None, None, Some("deploy-")), deploys),
            ("a literal prefix, not a pattern", filter(None, None, Some("%")), vec![]),
        ] {
            let mut ids: Vec<String> = app.client.list_all_tokens(&q).await.unwrap().into_iter().map(|t| t.id).collect();
            ids.sort();
            assert_eq!(ids.iter().collect::<Vec<_>>(), expected, "{what}");
        }
    }
}

store_test! {
    async fn update_changes_only_what_is_given(app) {
        let issued = app
            .client
            .create_token(&CreateToken {
                name: "before".into(),
                description: Some("d".into()),
                scopes: vec!["a:read".into()],
                metadata: Some(json!({"k": 1})),
                expires_in: Some(100),
                ..Default::default()
            })
            .await
            .unwrap();
        let id = &issued.token.id;
        let updated = app
            .client
            .update_token(
                id,
                &UpdateToken {
                    name: Some("after".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(updated.name, "after");
        assert_eq!(updated.description.as_deref(), Some("d"));
        assert_eq!(updated.scopes, issued.token.scopes);
        assert_eq!(updated.expires_at, issued.token.expires_at);

        let new_expiry = app.clock_now() + chrono::Duration::days(1);
        let updated = app
            .client
            .update_token(
                id,
                &UpdateToken {
                    description: Some(None),
                    metadata: Some(Some(json!({"k": 2}))),
                    scopes: Some(vec!["b:write".into()]),
                    expires_at: Some(Some(new_expiry)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(updated.description, None);
        assert_eq!(updated.metadata.unwrap()["k"], 2);
        assert_eq!(updated.scopes[0].as_str(), "b:write");
        assert_eq!(updated.expires_at, Some(new_expiry));
        // What the API said is what the store holds.
        assert_eq!(app.client.get_token(id).await.unwrap().name, "after");

        let cleared = app
            .client
            .update_token(
                id,
                &UpdateToken {
                    expires_at: Some(None),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(cleared.expires_at, None);
    }
}

store_test! {
    async fn a_revoked_token_cannot_be_updated(app) {
        let issued = app.token("t", &[]).await;
        app.client
            .revoke_token(&issued.token.id, None)
            .await
            .unwrap();
        let (status, body) = app
            .call(
                Method::PATCH,
                &format!("/v1/tokens/{}", issued.token.id),
                Some(r#"{"name":"x"}"#),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"], "conflict");
    }
}

store_test! {
    async fn revoke_is_idempotent(app) {
        let issued = app.token("t", &[]).await;
        let first = app
            .client
            .revoke_token(&issued.token.id, Some("leaked"))
            .await
            .unwrap();
        assert_eq!(first.status, TokenStatus::Revoked);
        let revoked_at = first.revoked_at.unwrap();
        app.clock.advance(chrono::Duration::seconds(5));
        let second = app
            .client
            .revoke_token(&issued.token.id, None)
            .await
            .unwrap();
        assert_eq!(second.status, TokenStatus::Revoked);
        assert_eq!(second.revoked_at, Some(revoked_at));
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/v1/tokens/{}/revoke", issued.token.id),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let events: i64 =
            sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'token.revoked'")
                .fetch_one(app.store.pool())
                .await
                .unwrap();
        assert_eq!(events, 1, "revoking again records nothing new");
    }
}

store_test! {
    async fn concurrent_creators_and_listers_see_every_token_exactly_once(app) {
        let mut tasks = Vec::new();
        for c in 0..8 {
            let client = app.client.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..15 {
                    let t = client
                        .create_token(&CreateToken {
                            name: format!("c{c}-{i}"),
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                    mine.push(t.token.id);
                    // Listing while others write must never fail.
                    client
                        .list_tokens(&ListTokens {
                            limit: Some(5),
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                }
                mine
            }));
        }
        let mut created = HashSet::new();
        for t in tasks {
            created.extend(t.await.unwrap());
        }
        assert_eq!(created.len(), 120);
        let mut seen = Vec::new();
        let mut q = ListTokens {
            limit: Some(7),
            ..Default::default()
        };
        loop {
            let page = app.client.list_tokens(&q).await.unwrap();
            seen.extend(page.data.into_iter().map(|t| t.id));
            if !page.has_more {
                break;
            }
            q.starting_after = page.next_cursor;
        }
        assert_eq!(seen.len(), 120);
        assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), created);
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted, "newest first");
    }
}

store_test! {
    // Use is written only when the server stops: a write by a request
    // itself cannot hide behind a periodic flush.
    async fn last_used_at_is_recorded_without_a_write_per_request(mut app with |s: tooken_server::AppState| {
        s.with_usage(tooken_service::Usage::held_until_stop())
    }) {
        let issued = app.token("t", &["tokens:read"]).await;
        let as_token = app.client.with_credential(&issued.secret);
        for _ in 0..5 {
            as_token.list_tokens(&ListTokens::default()).await.unwrap();
        }
        let today = app.clock_now().date_naive();
        let store = app.store.clone();
        let usage = |id: String| {
            let store = store.clone();
            async move { store.daily_usage(&id, today).await.unwrap() }
        };
        for id in [&issued.token.id, &app.api_key_id] {
            assert!(usage(id.clone()).await.is_empty(), "{id}: nothing written by the requests themselves");
        }
        // Gathered in memory; written when the server stops, all at once.
        app.stop().await;
        for (id, calls) in [(&issued.token.id, 5), (&app.api_key_id, 1)] {
            let days = usage(id.clone()).await;
            assert_eq!(days.len(), 1, "{id}");
            assert_eq!((days[0].api_calls, days[0].verifications), (calls, 0), "{id}");
        }
        let token = app.store.token(&app.workspace_id, tooken_core::Mode::Live, &issued.token.id).await.unwrap().unwrap();
        assert_eq!(token.last_used_at, Some(app.clock_now()));
    }
}

store_test! {
    async fn openapi_document_covers_every_route_and_the_error_shape(app) {
        let doc = app.client.openapi().await.unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        for (path, method) in [
            ("/v1/tokens", "post"),
            ("/v1/tokens", "get"),
            ("/v1/tokens/{id}", "get"),
            ("/v1/tokens/{id}", "patch"),
            ("/v1/tokens/{id}/rotate", "post"),
            ("/v1/tokens/{id}/revoke", "post"),
            ("/v1/tokens/verify", "post"),
            ("/v1/oauth/introspect", "post"),
            ("/v1/settings", "get"),
            ("/v1/settings", "patch"),
            ("/v1/whoami", "get"),
            ("/v1/authz/rules", "get"),
            ("/v1/authz/rules", "put"),
            ("/v1/authz/forward", "get"),
            ("/v1/authz/forward", "post"),
            ("/v1/openapi.json", "get"),
            ("/healthz", "get"),
            ("/readyz", "get"),
        ("/metrics", "get"),
        ] {
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_some(),
                "{method} {path} missing"
            );
        }
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for s in [
            "ErrorBody",
            "TokenObject",
            "TokenWithSecret",
            "CreateToken",
            "VerifyResponse",
            "RulesSpec",
            "RulesAnswer",
        ] {
            assert!(schemas.contains_key(s), "schema {s} missing");
        }
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}

// Regression: the document left out statuses every `/v1` operation can
// answer (429 from the brute-force throttle, 503 while the store is down,
// 413 for any body), said the health checks need a credential, and gave
// the error headers nowhere.
store_test! {
    async fn openapi_document_names_every_status_the_server_sends(app) {
        let doc = app.client.openapi().await.unwrap();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                let what = format!("{method} {path}");
                if !path.starts_with("/v1/") {
                    assert_eq!(op["security"], serde_json::json!([]), "{what} needs no credential");
                    continue;
                }
                operations += 1;
                assert_eq!(
                    responses["401"]["headers"]["WWW-Authenticate"]["schema"]["type"], "string",
                    "{what}"
                );
                for status in ["429", "503"] {
                    assert_eq!(
                        responses[status]["headers"]["Retry-After"]["schema"]["type"], "integer",
                        "{what} {status}"
                    );
                }
                assert!(responses.contains_key("408"), "{what} lacks 408");
                if op.get("requestBody").is_some() {
                    for status in ["400", "413"] {
                        assert!(responses.contains_key(status), "{what} lacks {status}");
                    }
                }
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{what} {status}"
                        );
                    }
                }
            }
        }
        assert!(operations >= 14, "{operations}");
        let scope = &doc["components"]["schemas"]["Scope"];
        assert_eq!(scope["pattern"], tooken_core::scope::SCOPE_PATTERN);
        assert_eq!(scope["maxLength"], 64);
        let limit = doc["paths"]["/v1/tokens"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap();
        assert_eq!(limit["schema"]["minimum"], 1);
        assert_eq!(limit["schema"]["maximum"], 100);
    }
}

store_test! {
    async fn unknown_routes_and_methods_answer_in_the_error_shape(app) {
        let (status, body) = app.call(Method::GET, "/v1/nope", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "not_found");
        let (status, body) = app.call(Method::DELETE, "/v1/tokens", None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"], "invalid_request");
    }
}

store_test! {
    async fn every_response_carries_a_request_id(app) {
        let (_, headers, _) = app.raw(Method::GET, "/healthz", None, None).await;
        assert!(headers["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_"));
        let res = app
            .http
            .get(format!("{}/healthz", app.url))
            .header("x-request-id", "mine-123")
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-request-id"], "mine-123");
    }
}

store_test! {
    async fn metrics_count_requests_verifications_and_pool_use_without_secrets(app) {
        let t = app.token("svc", &["a:read"]).await;
        app.client.get_token(&t.token.id).await.unwrap();
        app.client.verify(&tooken_client::VerifyRequest { token: t.secret.clone(), scopes: vec![] }).await.unwrap();
        app.client.verify(&tooken_client::VerifyRequest { token: "nope".into(), scopes: vec![] }).await.unwrap();
        let (status, headers, body) = app.raw(Method::GET, "/metrics", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers["content-type"].to_str().unwrap().contains("openmetrics"));
        for line in [
            r#"tooken_http_requests_total{method="POST",route="/v1/tokens",status="201"} 1"#,
            r#"tooken_http_requests_total{method="GET",route="/v1/tokens/{id}",status="200"} 1"#,
            r#"tooken_verifications_total{code="VALID"} 1"#,
            r#"tooken_verifications_total{code="MALFORMED"} 1"#,
        ] {
            assert!(body.contains(line), "missing {line} in\n{body}");
        }
        assert!(body.contains("tooken_http_request_duration_seconds_bucket{le="));
        assert!(body.contains("tooken_store_pool_connections "));
        for secret in [t.secret.expose(), app.api_key.as_str()] {
            assert!(!body.contains(secret));
        }
        assert!(!body.contains(&t.token.id), "routes are templates, not paths");
    }
}
