//! The audit log: what is recorded, fail-closed writes, aggregated
//! authentication failures, tamper evidence, queries, export, retention and
//! usage.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tooken_client::{CreateToken, ListTokens, UpdateSettings, UpdateToken, VerifyRequest};
use tooken_core::audit::{ChainBreak, ChainVerifier, Event, GENESIS};
use tooken_core::{Credential, Mode};
use tooken_server::throttle::AuthLimits;
use tooken_store::{Backend, SERVER_CHAIN};

use crate::helpers::TestApp;

fn actions(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.action.as_str()).collect()
}

store_test! {
    async fn every_management_action_is_recorded_with_who_what_and_where(app) {
        let t = app.token("svc", &["a:read"]).await;
        app.client.update_token(&t.token.id, &UpdateToken { name: Some("svc2".into()), ..Default::default() }).await.unwrap();
        let rotated = app.client.rotate_token(&t.token.id, 60).await.unwrap();
        app.client.revoke_token(&t.token.id, Some("done")).await.unwrap();
        app.client.update_settings(&UpdateSettings { require_expiration: Some(true), ..Default::default() }).await.unwrap();

        let events = app.events(&app.workspace_id).await;
        assert_eq!(
            actions(&events),
            ["workspace.created", "api_key.created", "token.created", "token.updated", "token.rotated", "token.revoked", "settings.updated"]
        );
        let created = &events[2];
        assert_eq!(created.actor.kind, "api_key");
        assert_eq!(created.actor.id.as_deref(), Some(app.api_key_id.as_str()));
        assert!(created.actor.hint.as_deref().unwrap().starts_with("tok_live_…"));
        assert_eq!(created.target.as_ref().unwrap().id, t.token.id);
        assert_eq!(created.mode.as_deref(), Some("live"));
        assert_eq!(created.client_addr.as_deref(), Some("127.0.0.1"));
        assert!(created.user_agent.as_deref().unwrap().starts_with("tooken-client/"));
        assert!(created.request_id.as_deref().unwrap().starts_with("req_"));
        assert_eq!(events[3].details["name"]["old"], "svc");
        assert_eq!(events[3].details["name"]["new"], "svc2");
        assert_eq!(events[5].details["reason"], "done");
        assert_eq!(events[6].details["old"]["require_expiration"], false);
        assert_eq!(events[6].details["new"]["require_expiration"], true);
        for e in &events {
            let text = serde_json::to_string(e).unwrap();
            for secret in [t.secret.expose(), rotated.secret.expose(), app.api_key.as_str()] {
                assert!(!text.contains(secret), "a secret leaked into {}", e.action);
            }
        }
        assert_eq!(app.store.verify_audit_chain(&app.workspace_id).await.unwrap(), Ok(7));

        // Nor does any secret reach the export.
        let export = app
            .http
            .get(format!("{}/v1/audit-log/export", app.url))
            .bearer_auth(&app.api_key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(export.lines().count(), 7);
        for secret in [t.secret.expose(), rotated.secret.expose(), app.api_key.as_str()] {
            assert!(!export.contains(secret));
        }
    }
}

/// Makes every audit write fail, as a full disk or a broken table would.
async fn break_audit_writes(app: &TestApp) {
    let statements: &[&str] = match app.store.backend() {
        Backend::Sqlite => &["CREATE TRIGGER audit_down BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit unavailable'); END"],
        Backend::Postgres => &[
            "CREATE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit unavailable'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_down()",
        ],
    };
    for s in statements {
        sqlx::query(s).execute(app.store.pool()).await.unwrap();
    }
}

store_test! {
    async fn a_change_whose_event_cannot_be_written_does_not_happen(app) {
        let t = app.token("svc", &[]).await;
        break_audit_writes(&app).await;

        let (status, body) = app.call(Method::POST, "/v1/tokens", Some(r#"{"name":"x"}"#)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, serde_json::json!({"error": "internal", "message": "internal error"}), "no internals leak");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tokens").fetch_one(app.store.pool()).await.unwrap();
        assert_eq!(n, 1, "the token was not created");

        let (status, _) = app.call(Method::POST, &format!("/v1/tokens/{}/revoke", t.token.id), None).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let after = app.client.get_token(&t.token.id).await.unwrap();
        assert_eq!(after, t.token, "the token was not revoked");
        let v = app.client.verify(&VerifyRequest { token: t.secret.clone(), scopes: vec![] }).await.unwrap();
        assert!(v.valid);

        let (status, _) = app.call(Method::POST, &format!("/v1/tokens/{}/rotate", t.token.id), None).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(app.client.verify(&VerifyRequest { token: t.secret.clone(), scopes: vec![] }).await.unwrap().valid);

        let (status, _) = app.call(Method::PATCH, "/v1/settings", Some(r#"{"token_prefix":"acme"}"#)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(app.client.settings().await.unwrap().token_prefix, "tkn");
    }
}

store_test! {
    async fn authentication_failures_are_recorded_with_address_reason_and_hint(app) {
        let unknown = Credential::generate("tok", Mode::Live);
        let res = app.http.get(format!("{}/v1/tokens", app.url)).bearer_auth(unknown.expose()).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        app.http.get(format!("{}/v1/tokens", app.url)).send().await.unwrap();

        let revoked = app.token("old", &["tokens:read"]).await;
        app.client.revoke_token(&revoked.token.id, None).await.unwrap();
        app.client.with_credential(&revoked.secret).list_tokens(&ListTokens::default()).await.unwrap_err();
        let narrow = app.token("narrow", &["tokens:read"]).await;
        let err = app.client.with_credential(&narrow.secret).create_token(&CreateToken { name: "x".into(), ..Default::default() }).await.unwrap_err();
        assert_eq!(err.status(), Some(403));
        app.flush().await;

        let server = app.events(SERVER_CHAIN).await;
        let by_reason = |events: &[Event], reason: &str| {
            events.iter().find(|e| e.action == "auth.failed" && e.details["reason"] == reason).cloned()
                .unwrap_or_else(|| panic!("no auth.failed with reason {reason}"))
        };
        let e = by_reason(&server, "unknown");
        assert_eq!(e.client_addr.as_deref(), Some("127.0.0.1"));
        assert_eq!(e.details["count"], 1);
        assert_eq!(e.details["hints"][0], unknown.hint());
        assert_eq!(by_reason(&server, "missing").details["hints"], Value::Array(vec![]));

        let ws = app.events(&app.workspace_id).await;
        let e = by_reason(&ws, "revoked");
        assert_eq!(e.details["hints"][0], revoked.token.hint);
        assert_eq!(e.mode.as_deref(), Some("live"));
        let e = by_reason(&ws, "insufficient_scope");
        assert_eq!(e.details["hints"][0], narrow.token.hint);
        for events in [&server, &ws] {
            let text = serde_json::to_string(events).unwrap();
            assert!(!text.contains(unknown.expose()) && !text.contains(revoked.secret.expose()) && !text.contains(narrow.secret.expose()));
        }
        assert!(app.store.verify_audit_chain(SERVER_CHAIN).await.unwrap().is_ok());
    }
}

fn lenient(state: tooken_server::AppState) -> tooken_server::AppState {
    state.with_auth_limits(AuthLimits {
        window: Duration::from_secs(60),
        slow_after: u32::MAX,
        block_after: 1000,
        delay_step: Duration::ZERO,
        max_delay: Duration::ZERO,
    })
}

store_test! {
    async fn a_flood_of_failures_adds_a_handful_of_rows(app with lenient) {
        let bad = Credential::generate("tok", Mode::Live);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (http, url, key) = (app.http.clone(), app.url.clone(), bad.expose().to_owned());
            tasks.push(tokio::spawn(async move {
                for _ in 0..250 {
                    let status = http.get(format!("{url}/v1/whoami")).bearer_auth(&key).send().await.unwrap().status();
                    assert!(status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        app.flush().await;
        let failures: Vec<Event> = app.events(SERVER_CHAIN).await.into_iter().filter(|e| e.action == "auth.failed").collect();
        assert!(failures.len() <= 2, "2000 failures became {} rows", failures.len());
        let total: i64 = failures.iter().map(|e| e.details["count"].as_i64().unwrap()).sum();
        assert_eq!(total, 2000, "every failure is counted");
        // Past the limit the address is refused; requests already in flight
        // when it was reached (at most one per client) still got their 401.
        let limited = failures.iter().find(|e| e.details["reason"] == "rate_limited").map(|e| e.details["count"].as_i64().unwrap());
        assert!(limited.is_some_and(|n| (1000 - 8..=1000).contains(&n)), "{limited:?}");
    }
}

store_test! {
    async fn tampering_is_found_and_located(app) {
        for i in 0..5 {
            app.token(&format!("t{i}"), &[]).await;
        }
        let ws = app.workspace_id.clone();
        assert_eq!(app.store.verify_audit_chain(&ws).await.unwrap(), Ok(7));
        let pool = app.store.pool();

        // Edited: its hash no longer matches.
        let original: String = sqlx::query_scalar("SELECT details FROM audit_events WHERE workspace_id = $1 AND seq = 4")
            .bind(&ws).fetch_one(pool).await.unwrap();
        sqlx::query("UPDATE audit_events SET details = '{\"name\":\"innocent\"}' WHERE workspace_id = $1 AND seq = 4")
            .bind(&ws).execute(pool).await.unwrap();
        assert!(matches!(app.store.verify_audit_chain(&ws).await.unwrap(), Err(ChainBreak::Altered { seq: 4, .. })));
        sqlx::query("UPDATE audit_events SET details = $1 WHERE workspace_id = $2 AND seq = 4")
            .bind(&original).bind(&ws).execute(pool).await.unwrap();
        assert!(app.store.verify_audit_chain(&ws).await.unwrap().is_ok());

        // Swapped: two events trade places in the chain.
        sqlx::query("UPDATE audit_events SET seq = -1 WHERE workspace_id = $1 AND seq = 5").bind(&ws).execute(pool).await.unwrap();
        sqlx::query("UPDATE audit_events SET seq = 5 WHERE workspace_id = $1 AND seq = 6").bind(&ws).execute(pool).await.unwrap();
        sqlx::query("UPDATE audit_events SET seq = 6 WHERE workspace_id = $1 AND seq = -1").bind(&ws).execute(pool).await.unwrap();
        let found = app.store.verify_audit_chain(&ws).await.unwrap();
        assert!(matches!(found, Err(ChainBreak::Altered { seq: 5, .. })), "{found:?}");

        // Removed: the next event no longer follows.
        let (app2, ws2) = (&app, ws.clone());
        sqlx::query("DELETE FROM audit_events WHERE workspace_id = $1 AND seq IN (5, 6)").bind(&ws2).execute(pool).await.unwrap();
        let found = app2.store.verify_audit_chain(&ws2).await.unwrap();
        assert!(matches!(found, Err(ChainBreak::Broken { seq: 7, .. })), "{found:?}");
    }
}

store_test! {
    async fn the_log_is_queryable_newest_first_with_filters(app) {
        let a = app.token("a", &[]).await;
        app.clock.advance(chrono::Duration::seconds(10));
        let mid = app.clock_now();
        let b = app.token("b", &["tokens:read", "audit:read"]).await;
        app.client.revoke_token(&a.token.id, None).await.unwrap();

        let (status, page) = app.call(Method::GET, "/v1/audit-log?limit=2", None).await;
        assert_eq!(status, StatusCode::OK);
        let data = page["data"].as_array().unwrap();
        assert_eq!(data[0]["action"], "token.revoked");
        assert_eq!(data[1]["action"], "token.created");
        assert_eq!(page["has_more"], true);
        let cursor = page["next_cursor"].as_str().unwrap();
        let (_, rest) = app.call(Method::GET, &format!("/v1/audit-log?limit=100&starting_after={cursor}"), None).await;
        assert_eq!(rest["data"].as_array().unwrap().len(), 3);

        let get = |q: String| {
            let app = &app;
            async move {
                let (s, body) = app.call(Method::GET, &format!("/v1/audit-log?{q}"), None).await;
                assert_eq!(s, StatusCode::OK, "{body}");
                body["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
            }
        };
        assert_eq!(get("action=token.created".into()).await, ["token.created", "token.created"]);
        assert_eq!(get(format!("target={}", a.token.id)).await, ["token.revoked", "token.created"]);
        assert_eq!(get(format!("actor={}", app.api_key_id)).await.len(), 3);
        let since = urlencode(&mid.to_rfc3339());
        assert_eq!(get(format!("since={since}")).await, ["token.revoked", "token.created"]);
        assert_eq!(get(format!("until={since}")).await.len(), 3);

        // audit:read tokens may read; bad filters are 400s.
        let reader = app.client.with_credential(&b.secret);
        reader.list_tokens(&ListTokens::default()).await.unwrap();
        let res = app.http.get(format!("{}/v1/audit-log", app.url)).bearer_auth(b.secret.expose()).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        for (q, field) in [("since=yesterday", "since"), ("until=2030", "until"), ("limit=0", "limit"), ("starting_after=x", "starting_after"), ("who=me", "who")] {
            let (s, body) = app.call(Method::GET, &format!("/v1/audit-log?{q}"), None).await;
            crate::helpers::assert_invalid(s, &body, field);
        }
    }
}

store_test! {
    async fn modes_see_only_their_own_events(app) {
        let (test_key, _) = app.new_api_key(Mode::Test).await;
        let test = app.client.with_credential(&test_key);
        test.create_token(&CreateToken { name: "sandbox".into(), ..Default::default() }).await.unwrap();
        app.token("prod", &[]).await;
        let res = app.http.get(format!("{}/v1/audit-log?limit=100", app.url)).bearer_auth(&test_key).send().await.unwrap();
        let body: Value = res.json().await.unwrap();
        let modes: Vec<&Value> = body["data"].as_array().unwrap().iter().map(|e| &e["mode"]).collect();
        assert!(modes.iter().all(|m| **m == "test" || m.is_null()), "{modes:?}");
        assert!(body.to_string().contains("sandbox") && !body.to_string().contains("\"prod\""));
    }
}

store_test! {
    async fn the_export_streams_every_event_in_chain_order(app) {
        // Over two export batches (500 each) of events, with secrets issued
        // among them: the whole chain comes out, in order, and no secret.
        let mut secrets = vec![app.api_key.clone()];
        for i in 0..30 {
            secrets.push(app.token(&format!("t{i}"), &[]).await.secret.expose().to_owned());
        }
        let ctx = tooken_store::AuditContext::new(tooken_core::audit::Actor::system());
        for _ in 0..1200 {
            app.store.update_settings(&app.workspace_id, &Default::default(), &ctx, app.clock_now()).await.unwrap();
        }
        let res = app.http.get(format!("{}/v1/audit-log/export", app.url)).bearer_auth(&app.api_key).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "application/x-ndjson");
        let body = res.text().await.unwrap();
        let events: Vec<Event> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        // workspace.created, api_key.created, the tokens, the settings.
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=1232).collect::<Vec<_>>());
        let mut v = ChainVerifier::new((GENESIS, 0));
        for e in &events {
            v.push(e).unwrap();
        }
        assert_eq!(events.iter().filter(|e| e.action == "token.created").count(), 30);
        for secret in &secrets {
            assert!(!body.contains(secret.as_str()), "a secret in the export");
        }
        let (s, body) = app.call(Method::GET, "/v1/audit-log/export?limit=5", None).await;
        crate::helpers::assert_invalid(s, &body, "limit");
    }
}

store_test! {
    async fn retention_prunes_old_events_and_the_chain_still_verifies(app) {
        app.token("old", &[]).await;
        app.clock.advance(chrono::Duration::days(10));
        app.token("new", &[]).await;
        app.client.update_settings(&UpdateSettings { audit_retention_days: Some(Some(5)), ..Default::default() }).await.unwrap();
        let removed = app.state.service.apply_retention().await.unwrap();
        assert_eq!(removed, 3, "workspace.created, api_key.created and the old token.created");
        let events = app.events(&app.workspace_id).await;
        assert_eq!(actions(&events), ["token.created", "settings.updated", "audit.pruned"]);
        assert_eq!(events.last().unwrap().details["deleted"], 3);
        assert_eq!(app.store.audit_anchor(&app.workspace_id).await.unwrap().1, 3);
        assert_ne!(app.store.audit_anchor(&app.workspace_id).await.unwrap().0, GENESIS);
        assert_eq!(app.store.verify_audit_chain(&app.workspace_id).await.unwrap(), Ok(3));
        // Nothing more to prune: nothing happens.
        assert_eq!(app.state.service.apply_retention().await.unwrap(), 0);
        // Tampering after the cut is still found.
        sqlx::query("UPDATE audit_events SET action = 'x' WHERE workspace_id = $1 AND seq = 4")
            .bind(&app.workspace_id).execute(app.store.pool()).await.unwrap();
        assert!(app.store.verify_audit_chain(&app.workspace_id).await.unwrap().is_err());
    }
}

store_test! {
    async fn usage_is_counted_per_day(app) {
        let t = app.token("svc", &["tokens:read"]).await;
        for _ in 0..5 {
            assert!(app.client.verify(&VerifyRequest { token: t.secret.clone(), scopes: vec![] }).await.unwrap().valid);
        }
        app.client.verify(&VerifyRequest { token: t.secret.clone(), scopes: vec!["nope:x".into()] }).await.unwrap();
        app.client.with_credential(&t.secret).list_tokens(&ListTokens::default()).await.unwrap();
        // Use is gathered in memory and written by the once-a-second flush
        // (forced here), so its timing cannot be asserted; the counts can.
        app.flush().await;
        let usage = app.client.token_usage(&t.token.id, None).await.unwrap();
        assert_eq!(usage.data.len(), 1);
        assert_eq!(usage.data[0].date, app.clock_now().date_naive());
        assert_eq!(usage.data[0].verifications, 5, "only successful verifications count");
        assert_eq!(usage.data[0].api_calls, 1);
        assert_eq!(usage.last_used_at, Some(app.clock_now()));
        // More use adds up.
        app.client.verify(&VerifyRequest { token: t.secret.clone(), scopes: vec![] }).await.unwrap();
        app.flush().await;
        assert_eq!(app.client.token_usage(&t.token.id, None).await.unwrap().data[0].verifications, 6);
        let (s, body) = app.call(Method::GET, &format!("/v1/tokens/{}/usage?days=91", t.token.id), None).await;
        crate::helpers::assert_invalid(s, &body, "days");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
