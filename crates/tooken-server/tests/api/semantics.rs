//! Token semantics: built-in scopes on every endpoint, attenuation, cascade
//! revocation, modes, rotation, workspace policy, introspection, whoami and
//! brute-force protection.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tooken_client::{
    CreateToken, ListTokens, TokenStatus, UpdateSettings, UpdateToken, VerifyCode, VerifyRequest,
};
use tooken_core::audit::Actor;
use tooken_core::{Credential, Mode, Scope};
use tooken_server::throttle::AuthLimits;
use tooken_store::{AuditContext, NewToken};

use crate::helpers::{assert_invalid, TestApp, UNAUTHORIZED_BODY};

const BUILT_IN: [&str; 4] = ["tokens:read", "tokens:write", "tokens:verify", "audit:read"];

/// What an endpoint demands of a token.
#[derive(Debug, Clone, Copy)]
enum Needs {
    Scope(&'static str),
    ApiKey,
    Nothing,
}

struct Endpoint {
    method: Method,
    /// `{id}` is replaced with a token created through the caller.
    path: &'static str,
    body: Option<&'static str>,
    form: bool,
    needs: Needs,
}

fn endpoints() -> Vec<Endpoint> {
    let e = |method, path, body, needs| Endpoint {
        method,
        path,
        body,
        form: false,
        needs,
    };
    vec![
        e(Method::GET, "/v1/tokens", None, Needs::Scope("tokens:read")),
        e(
            Method::GET,
            "/v1/tokens/{id}",
            None,
            Needs::Scope("tokens:read"),
        ),
        e(
            Method::POST,
            "/v1/tokens",
            Some(r#"{"name":"child"}"#),
            Needs::Scope("tokens:write"),
        ),
        e(
            Method::PATCH,
            "/v1/tokens/{id}",
            Some(r#"{"name":"renamed"}"#),
            Needs::Scope("tokens:write"),
        ),
        e(
            Method::POST,
            "/v1/tokens/{id}/rotate",
            Some("{}"),
            Needs::Scope("tokens:write"),
        ),
        e(
            Method::POST,
            "/v1/tokens/verify",
            Some(r#"{"token":"x"}"#),
            Needs::Scope("tokens:verify"),
        ),
        Endpoint {
            method: Method::POST,
            path: "/v1/oauth/introspect",
            body: Some("token=x"),
            form: true,
            needs: Needs::Scope("tokens:verify"),
        },
        e(
            Method::GET,
            "/v1/audit-log",
            None,
            Needs::Scope("audit:read"),
        ),
        e(
            Method::GET,
            "/v1/audit-log/export",
            None,
            Needs::Scope("audit:read"),
        ),
        e(Method::GET, "/v1/settings", None, Needs::ApiKey),
        e(Method::PATCH, "/v1/settings", Some("{}"), Needs::ApiKey),
        e(Method::GET, "/v1/whoami", None, Needs::Nothing),
        e(Method::GET, "/v1/openapi.json", None, Needs::Nothing),
        // Last: it revokes the target.
        e(
            Method::POST,
            "/v1/tokens/{id}/revoke",
            Some("{}"),
            Needs::Scope("tokens:write"),
        ),
    ]
}

/// Every subset of the built-in scopes, plus a wildcard and a custom scope.
fn scope_sets() -> Vec<Vec<&'static str>> {
    let mut sets: Vec<Vec<&str>> = (0u32..16)
        .map(|mask| {
            BUILT_IN
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, s)| *s)
                .collect()
        })
        .collect();
    sets.push(vec!["tokens:*"]);
    sets.push(vec!["invoices:read"]);
    sets
}

/// A token created "through" `parent`, straight in the store.
async fn child_of(app: &TestApp, parent_id: &str) -> String {
    let secret = Credential::generate("tkn", Mode::Live);
    app.store
        .insert_token(
            NewToken {
                workspace_id: app.workspace_id.clone(),
                mode: Mode::Live,
                name: "child".into(),
                description: None,
                scopes: vec![],
                metadata: None,
                secret_hash: secret.hash(),
                hint: secret.hint(),
                created_by: parent_id.into(),
                parent_id: Some(parent_id.into()),
                expires_at: None,
            },
            &AuditContext::new(Actor::system()),
            app.clock_now(),
        )
        .await
        .unwrap()
        .id
}

store_test! {
    async fn every_endpoint_checks_built_in_scopes(app) {
        let mut checked = 0;
        for scopes in scope_sets() {
            let caller = app.token("caller", &scopes).await;
            let held: Vec<Scope> = scopes.iter().map(|s| Scope::parse(s).unwrap()).collect();
            let target = child_of(&app, &caller.token.id).await;
            for ep in endpoints() {
                let path = ep.path.replace("{id}", &target);
                let mut req = app
                    .http
                    .request(ep.method.clone(), format!("{}{path}", app.url))
                    .bearer_auth(&caller.secret);
                if let Some(body) = ep.body {
                    let ct = if ep.form {
                        "application/x-www-form-urlencoded"
                    } else {
                        "application/json"
                    };
                    req = req.header("content-type", ct).body(body);
                }
                let res = req.send().await.unwrap();
                let status = res.status();
                let www = res
                    .headers()
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body: Value = res.json().await.unwrap_or(Value::Null);
                let allowed = match ep.needs {
                    Needs::Nothing => true,
                    Needs::ApiKey => false,
                    Needs::Scope(s) => tooken_core::scope::any_covers(&held, &Scope::parse(s).unwrap()),
                };
                let what = format!("{scopes:?} {} {path} → {status} {body}", ep.method);
                if allowed {
                    assert!(status.is_success(), "{what}");
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                    assert_eq!(body["error"], "forbidden", "{what}");
                    if let Needs::Scope(s) = ep.needs {
                        assert_eq!(body["required_scope"], s, "{what}");
                        assert!(body["message"].as_str().unwrap().contains(s), "{what}");
                        assert_eq!(
                            www.as_deref(),
                            Some(format!(r#"Bearer error="insufficient_scope", scope="{s}""#).as_str())
                        );
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 18 * 14);
    }
}

store_test! {
    async fn api_keys_may_do_everything(app) {
        let target = app.token("t", &[]).await.token.id;
        for ep in endpoints() {
            let path = ep.path.replace("{id}", &target);
            let mut req = app
                .http
                .request(ep.method.clone(), format!("{}{path}", app.url))
                .bearer_auth(&app.api_key);
            if let Some(body) = ep.body {
                let ct = if ep.form {
                    "application/x-www-form-urlencoded"
                } else {
                    "application/json"
                };
                req = req.header("content-type", ct).body(body);
            }
            let status = req.send().await.unwrap().status();
            assert!(status.is_success(), "{} {path} → {status}", ep.method);
        }
    }
}

store_test! {
    async fn a_child_gets_at_most_its_parents_scopes(app) {
        let parent = app
            .token("parent", &["tokens:write", "invoices:*", "logs:read"])
            .await;
        let as_parent = app.client.with_credential(&parent.secret);
        let child = as_parent
            .create_token(&CreateToken {
                name: "c".into(),
                scopes: vec!["invoices:read".into(), "logs:read".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            child.token.parent_id.as_deref(),
            Some(parent.token.id.as_str())
        );
        assert_eq!(child.token.created_by, parent.token.id);
        assert_eq!(child.token.mode, Mode::Live);

        let err = as_parent
            .create_token(&CreateToken {
                name: "c".into(),
                scopes: vec!["payments:read".into()],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(403));
        assert!(err.to_string().contains("payments:read"), "{err}");
        let err = as_parent
            .create_token(&CreateToken {
                name: "c".into(),
                scopes: vec!["audit:read".into()],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(403));
        // Widening a child later is refused the same way.
        let err = as_parent
            .update_token(
                &child.token.id,
                &UpdateToken {
                    scopes: Some(vec!["admin:all".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(403));
        assert!(err.to_string().contains("admin:all"));
    }
}

store_test! {
    async fn a_child_expires_no_later_than_its_parent(app) {
        let parent = app
            .client
            .create_token(&CreateToken {
                name: "p".into(),
                scopes: vec!["tokens:write".into()],
                expires_in: Some(3600),
                ..Default::default()
            })
            .await
            .unwrap();
        let as_parent = app.client.with_credential(&parent.secret);
        let err = as_parent
            .create_token(&CreateToken {
                name: "c".into(),
                expires_in: Some(7200),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(403));
        assert!(err.to_string().contains("expires_at"), "{err}");
        let shorter = as_parent
            .create_token(&CreateToken {
                name: "c".into(),
                expires_in: Some(60),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(shorter.token.expires_at < parent.token.expires_at);
        let inherited = as_parent
            .create_token(&CreateToken {
                name: "c".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(inherited.token.expires_at, parent.token.expires_at);

        // A never-expiring parent may still give its child an expiry.
        let forever = app.token("forever", &["tokens:write"]).await;
        let child = app
            .client
            .with_credential(&forever.secret)
            .create_token(&CreateToken {
                name: "c".into(),
                expires_in: Some(60),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(child.token.expires_at.is_some());
    }
}

store_test! {
    async fn a_token_manages_only_what_was_created_through_it(app) {
        let a = app.token("a", &["tokens:write", "tokens:read"]).await;
        let b = app.token("b", &["tokens:write"]).await;
        let as_a = app.client.with_credential(&a.secret);
        let child = as_a
            .create_token(&CreateToken {
                name: "a1".into(),
                scopes: vec!["tokens:write".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        let grandchild = app
            .client
            .with_credential(&child.secret)
            .create_token(&CreateToken {
                name: "a11".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            grandchild.token.parent_id.as_deref(),
            Some(child.token.id.as_str())
        );

        // a reaches its grandchild; b reaches none of them; nobody manages itself or a sibling.
        as_a.update_token(
            &grandchild.token.id,
            &UpdateToken {
                name: Some("renamed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let as_b = app.client.with_credential(&b.secret);
        for id in [&child.token.id, &grandchild.token.id, &a.token.id] {
            let err = as_b.revoke_token(id, None).await.unwrap_err();
            assert_eq!(err.status(), Some(403), "{id}");
            let err = as_b.rotate_token(id, 0).await.unwrap_err();
            assert_eq!(err.status(), Some(403), "{id}");
        }
        assert_eq!(
            as_a.revoke_token(&a.token.id, None)
                .await
                .unwrap_err()
                .status(),
            Some(403)
        );
        assert_eq!(
            app.client.get_token(&a.token.id).await.unwrap().status,
            TokenStatus::Active
        );
    }
}

store_test! {
    async fn revoking_revokes_a_chain_of_depth_ten(app) {
        let root = app.token("root", &["tokens:write"]).await;
        let mut chain = vec![root.clone()];
        for depth in 1..=10 {
            let parent = chain.last().unwrap();
            let next = app
                .client
                .with_credential(&parent.secret)
                .create_token(&CreateToken {
                    name: format!("d{depth}"),
                    scopes: vec!["tokens:write".into()],
                    ..Default::default()
                })
                .await
                .unwrap();
            chain.push(next);
        }
        // Revoking in the middle takes everything below, nothing above.
        app.client
            .revoke_token(&chain[4].token.id, Some("compromised"))
            .await
            .unwrap();
        for (depth, t) in chain.iter().enumerate() {
            let status = app.client.get_token(&t.token.id).await.unwrap().status;
            let expected = if depth >= 4 {
                TokenStatus::Revoked
            } else {
                TokenStatus::Active
            };
            assert_eq!(status, expected, "depth {depth}");
            let verdict = app
                .client
                .verify(&VerifyRequest {
                    token: t.secret.clone(),
                    scopes: vec![],
                })
                .await
                .unwrap();
            assert_eq!(verdict.valid, depth < 4);
        }
        let details: String =
            sqlx::query_scalar("SELECT details FROM audit_events WHERE action = 'token.revoked'")
                .fetch_one(app.store.pool())
                .await
                .unwrap();
        let details: Value = serde_json::from_str(&details).unwrap();
        assert_eq!(details["descendants_revoked"].as_array().unwrap().len(), 6);
    }
}

store_test! {
    async fn revoking_revokes_a_wide_tree_of_a_thousand(app) {
        let root = app.token("root", &["tokens:write"]).await;
        for _ in 0..1000 {
            child_of(&app, &root.token.id).await;
        }
        let (_, revoked) = app
            .store
            .revoke_token(
                &app.workspace_id,
                Mode::Live,
                &root.token.id,
                None,
                &AuditContext::new(Actor::system()),
                app.clock_now(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(revoked.len(), 1001);
        let active = app
            .client
            .list_all_tokens(&ListTokens {
                status: Some("active".into()),
                limit: Some(100),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(active.is_empty());
        let revoked = app
            .client
            .list_all_tokens(&ListTokens {
                status: Some("revoked".into()),
                limit: Some(100),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(revoked.len(), 1001);
    }
}

store_test! {
    async fn modes_do_not_see_each_other(app) {
        let (test_key, _) = app.new_api_key(Mode::Test).await;
        let test = app.client.with_credential(&test_key);
        let t = test
            .create_token(&CreateToken {
                name: "sandbox".into(),
                scopes: vec!["tokens:write".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(t.secret.starts_with("tkn_test_"));
        assert_eq!(t.token.mode, Mode::Test);
        let l = app.token("prod", &[]).await;
        assert!(l.secret.starts_with("tkn_live_"));

        // Children inherit their creator's mode.
        let child = test
            .with_credential(&t.secret)
            .create_token(&CreateToken {
                name: "c".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(child.token.mode, Mode::Test);
        assert!(child.secret.starts_with("tkn_test_"));

        let test_ids: Vec<_> = test
            .list_all_tokens(&ListTokens::default())
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(test_ids.len(), 2);
        assert!(!test_ids.contains(&l.token.id));
        let live_ids: Vec<_> = app
            .client
            .list_all_tokens(&ListTokens::default())
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(live_ids, vec![l.token.id.clone()]);

        // Across modes, a token does not exist.
        assert_eq!(
            test.get_token(&l.token.id).await.unwrap_err().status(),
            Some(404)
        );
        assert_eq!(
            test.revoke_token(&l.token.id, None)
                .await
                .unwrap_err()
                .status(),
            Some(404)
        );
        assert_eq!(
            app.client
                .get_token(&t.token.id)
                .await
                .unwrap_err()
                .status(),
            Some(404)
        );
        let v = test
            .verify(&VerifyRequest {
                token: l.secret.clone(),
                scopes: vec![],
            })
            .await
            .unwrap();
        assert_eq!(
            (v.valid, v.code, v.token.is_none()),
            (false, VerifyCode::NotFound, true)
        );
        let v = app
            .client
            .verify(&VerifyRequest {
                token: t.secret.clone(),
                scopes: vec![],
            })
            .await
            .unwrap();
        assert_eq!(v.code, VerifyCode::NotFound);
        assert!(!app.client.introspect(&t.secret).await.unwrap().active);
        assert_eq!(
            app.client.get_token(&l.token.id).await.unwrap().status,
            TokenStatus::Active
        );
    }
}

store_test! {
    async fn rotation_keeps_the_old_secret_for_the_grace_period_only(app) {
        let original = app.token("svc", &["x:read"]).await;
        let valid = |secret: String| {
            let client = app.client.clone();
            async move {
                client
                    .verify(&VerifyRequest {
                        token: secret,
                        scopes: vec![],
                    })
                    .await
                    .unwrap()
                    .valid
            }
        };
        let rotated = app
            .client
            .rotate_token(&original.token.id, 300)
            .await
            .unwrap();
        assert_eq!(rotated.token.id, original.token.id);
        assert_ne!(rotated.secret, original.secret);
        assert_ne!(rotated.token.hint, original.token.hint);
        assert!(valid(rotated.secret.clone()).await);
        assert!(
            valid(original.secret.clone()).await,
            "old secret works during grace"
        );
        app.clock.advance(chrono::Duration::seconds(299));
        assert!(valid(original.secret.clone()).await);
        app.clock.advance(chrono::Duration::seconds(1));
        assert!(
            !valid(original.secret.clone()).await,
            "never after the deadline"
        );
        assert!(valid(rotated.secret.clone()).await);

        // Rotating again during a grace period ends the older grace at once.
        let second = app
            .client
            .rotate_token(&original.token.id, 600)
            .await
            .unwrap();
        let third = app
            .client
            .rotate_token(&original.token.id, 600)
            .await
            .unwrap();
        assert!(!valid(rotated.secret.clone()).await);
        assert!(
            valid(second.secret.clone()).await,
            "the secret just replaced is in its grace"
        );
        assert!(valid(third.secret.clone()).await);

        // Without a grace period the old secret stops at once, also as a credential.
        let fourth = app
            .client
            .rotate_token(&original.token.id, 0)
            .await
            .unwrap();
        assert!(!valid(third.secret.clone()).await);
        assert!(!valid(second.secret.clone()).await);
        assert!(valid(fourth.secret.clone()).await);
    }
}

store_test! {
    async fn rotation_rejects_bad_grace_periods_and_dead_tokens(app) {
        let t = app.token("svc", &[]).await;
        let path = format!("/v1/tokens/{}/rotate", t.token.id);
        for bad in ["-1", "604801"] {
            let (s, b) = app
                .call(
                    Method::POST,
                    &path,
                    Some(&format!(r#"{{"grace_period_seconds":{bad}}}"#)),
                )
                .await;
            assert_invalid(s, &b, "grace_period_seconds");
        }
        let (s, _) = app
            .call(
                Method::POST,
                &path,
                Some(r#"{"grace_period_seconds":604800}"#),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        app.client.revoke_token(&t.token.id, None).await.unwrap();
        let (s, b) = app.call(Method::POST, &path, None).await;
        assert_eq!(s, StatusCode::CONFLICT, "{b}");
    }
}

store_test! {
    async fn a_rotated_token_keeps_working_as_a_credential_during_grace(app) {
        let t = app.token("svc", &["tokens:read"]).await;
        app.client.rotate_token(&t.token.id, 60).await.unwrap();
        let old = app.client.with_credential(&t.secret);
        old.list_tokens(&ListTokens::default()).await.unwrap();
        app.clock.advance(chrono::Duration::seconds(60));
        assert_eq!(
            old.list_tokens(&ListTokens::default())
                .await
                .unwrap_err()
                .status(),
            Some(401)
        );
    }
}

store_test! {
    async fn settings_are_validated_and_api_key_only(app) {
        let s = app.client.settings().await.unwrap();
        assert_eq!(s, tooken_client::Settings::default());
        for (body, field) in [
            (json!({"token_prefix": "Bad"}), "token_prefix"),
            (json!({"token_prefix": "tok"}), "token_prefix"),
            (json!({"token_prefix": "x"}), "token_prefix"),
            (json!({"max_token_ttl_seconds": 0}), "max_token_ttl_seconds"),
            (
                json!({"default_token_ttl_seconds": -1}),
                "default_token_ttl_seconds",
            ),
            (
                json!({"max_token_ttl_seconds": 60, "default_token_ttl_seconds": 120}),
                "default_token_ttl_seconds",
            ),
            (json!({"audit_retention_days": 0}), "audit_retention_days"),
            (json!({"require_expiration": "yes"}), "require_expiration"),
            (json!({"colour": "red"}), "colour"),
        ] {
            let (status, b) = app
                .call(Method::PATCH, "/v1/settings", Some(&body.to_string()))
                .await;
            assert_invalid(status, &b, field);
        }
        assert_eq!(app.client.settings().await.unwrap(), s, "nothing changed");

        let t = app
            .token(
                "t",
                &["tokens:read", "tokens:write", "tokens:verify", "audit:read"],
            )
            .await;
        let err = app
            .client
            .with_credential(&t.secret)
            .settings()
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(403));
    }
}

store_test! {
    async fn policy_is_enforced_on_create_and_update(app) {
        let existing = app.token("old", &[]).await;
        app.client
            .update_settings(&UpdateSettings {
                require_expiration: Some(true),
                max_token_ttl_seconds: Some(Some(3600)),
                ..Default::default()
            })
            .await
            .unwrap();
        let (s, b) = app
            .call(Method::POST, "/v1/tokens", Some(r#"{"name":"x"}"#))
            .await;
        assert_invalid(s, &b, "expires_at");
        assert!(
            b["message"]
                .as_str()
                .unwrap()
                .contains("require_expiration"),
            "{b}"
        );
        let (s, b) = app
            .call(
                Method::POST,
                "/v1/tokens",
                Some(r#"{"name":"x","expires_in":7200}"#),
            )
            .await;
        assert_invalid(s, &b, "expires_at");
        assert!(
            b["message"]
                .as_str()
                .unwrap()
                .contains("max_token_ttl_seconds"),
            "{b}"
        );
        let (s, _) = app
            .call(
                Method::POST,
                "/v1/tokens",
                Some(r#"{"name":"x","expires_in":3600}"#),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let path = format!("/v1/tokens/{}", existing.token.id);
        let (s, b) = app
            .call(Method::PATCH, &path, Some(r#"{"expires_at":null}"#))
            .await;
        assert_invalid(s, &b, "expires_at");

        // A default TTL fills in for tokens that ask for none.
        app.client
            .update_settings(&UpdateSettings {
                default_token_ttl_seconds: Some(Some(600)),
                ..Default::default()
            })
            .await
            .unwrap();
        let t = app
            .client
            .create_token(&CreateToken {
                name: "d".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            t.token.expires_at,
            Some(app.clock_now() + chrono::Duration::seconds(600))
        );
    }
}

store_test! {
    async fn a_new_token_prefix_applies_to_new_tokens_only(app) {
        let old = app.token("old", &[]).await;
        let s = app
            .client
            .update_settings(&UpdateSettings {
                token_prefix: Some("acme".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(s.token_prefix, "acme");
        let new = app.token("new", &[]).await;
        assert!(new.secret.starts_with("acme_live_"));
        assert!(new.token.hint.starts_with("acme_live_…"));
        for secret in [&old.secret, &new.secret] {
            assert!(
                app.client
                    .verify(&VerifyRequest {
                        token: secret.clone(),
                        scopes: vec![]
                    })
                    .await
                    .unwrap()
                    .valid
            );
        }
        // Rotating an old token keeps its own prefix.
        let rotated = app.client.rotate_token(&old.token.id, 0).await.unwrap();
        assert!(rotated.secret.starts_with("tkn_live_"));
        let events: i64 =
            sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'settings.updated'")
                .fetch_one(app.store.pool())
                .await
                .unwrap();
        assert_eq!(events, 1);
    }
}

store_test! {
    async fn introspection_follows_rfc_7662(app) {
        let t = app
            .client
            .create_token(&CreateToken {
                name: "gw".into(),
                scopes: vec!["a:read".into(), "b:write".into()],
                expires_in: Some(100),
                ..Default::default()
            })
            .await
            .unwrap();
        let res = app
            .http
            .post(format!("{}/v1/oauth/introspect", app.url))
            .bearer_auth(&app.api_key)
            .form(&[
                ("token", t.secret.as_str()),
                ("token_type_hint", "access_token"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["active"], true);
        assert_eq!(body["scope"], "a:read b:write");
        assert_eq!(body["sub"], t.token.id);
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["exp"], t.token.expires_at.unwrap().timestamp());
        assert_eq!(body["iat"], t.token.created_at.timestamp());
        assert_eq!(body["client_id"], app.api_key_id);

        let inactive = json!({"active": false});
        let check = |token: String| {
            let (http, url, key) = (app.http.clone(), app.url.clone(), app.api_key.clone());
            async move {
                let res = http
                    .post(format!("{url}/v1/oauth/introspect"))
                    .bearer_auth(key)
                    .form(&[("token", token)])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK);
                res.json::<Value>().await.unwrap()
            }
        };
        assert_eq!(check("garbage".into()).await, inactive);
        assert_eq!(
            check(Credential::generate("tkn", Mode::Live).expose().into()).await,
            inactive
        );
        let revoked = app.token("r", &[]).await;
        app.client
            .revoke_token(&revoked.token.id, None)
            .await
            .unwrap();
        assert_eq!(check(revoked.secret).await, inactive);
        app.clock.advance(chrono::Duration::seconds(100));
        assert_eq!(check(t.secret).await, inactive);
        let (test_key, _) = app.new_api_key(Mode::Test).await;
        let test_token = app
            .client
            .with_credential(&test_key)
            .create_token(&CreateToken {
                name: "x".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(check(test_token.secret).await, inactive);
        // A missing token field is a 400, not a crash.
        let res = app
            .http
            .post(format!("{}/v1/oauth/introspect", app.url))
            .bearer_auth(&app.api_key)
            .form(&[("nope", "1")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
}

store_test! {
    async fn whoami_describes_the_caller(app) {
        let me = app.client.whoami().await.unwrap();
        assert_eq!(me.kind, "api_key");
        assert_eq!(me.id, app.api_key_id);
        assert_eq!(me.workspace.name, "default");
        assert_eq!(me.mode, Mode::Live);
        assert_eq!(me.scopes.len(), 4);
        let t = app.token("svc", &["invoices:read"]).await;
        let me = app
            .client
            .with_credential(&t.secret)
            .whoami()
            .await
            .unwrap();
        assert_eq!(me.kind, "token");
        assert_eq!(me.id, t.token.id);
        assert_eq!(me.scopes, vec!["invoices:read".to_string()]);
        assert_eq!(me.hint, t.token.hint);
    }
}

fn strict_limits(state: tooken_server::AppState) -> tooken_server::AppState {
    state.with_auth_limits(AuthLimits {
        window: Duration::from_secs(60),
        slow_after: 3,
        block_after: 6,
        delay_step: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
    })
}

store_test! {
async fn repeated_failures_from_one_address_are_slowed_then_refused(app with strict_limits) {
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let attacker = from("127.0.0.1");
    let neighbour = from("127.0.0.2");
    let bad = Credential::generate("tok", Mode::Live);
    let url = format!("{}/v1/tokens", app.url);

    let mut slowest_early = Duration::ZERO;
    let mut slowest_late = Duration::ZERO;
    for i in 0..6 {
        let start = std::time::Instant::now();
        let res = attacker
            .get(&url)
            .bearer_auth(bad.expose())
            .send()
            .await
            .unwrap();
        let took = start.elapsed();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.text().await.unwrap(), UNAUTHORIZED_BODY);
        if i < 3 {
            slowest_early = slowest_early.max(took)
        } else {
            slowest_late = slowest_late.max(took)
        }
    }
    assert!(
        slowest_late >= Duration::from_millis(50),
        "failures past the limit are slowed: {slowest_late:?}"
    );
    assert!(slowest_early < slowest_late);

    let res = attacker
        .get(&url)
        .bearer_auth(bad.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "60");
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "rate_limited");
    // Blocked means blocked: the address cannot test credentials at all.
    let res = attacker
        .get(&url)
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);

    // Another address is untouched, with a good key or a bad one.
    assert_eq!(
        neighbour
            .get(&url)
            .bearer_auth(&app.api_key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        neighbour
            .get(&url)
            .bearer_auth(bad.expose())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // The window ends; the address may try again.
    app.clock.advance(chrono::Duration::seconds(60));
    assert_eq!(
        attacker
            .get(&url)
            .bearer_auth(&app.api_key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}
}

/// Another connection (say `tooken admin`, or a backup) holding SQLite's
/// write lock past the busy timeout makes a write wait, then answer 503
/// with Retry-After, not 500; once the lock is gone the same write works.
async fn a_write_lock_held_elsewhere_past_the_busy_timeout_is_503() {
    let app = TestApp::on(crate::helpers::Backend::Sqlite).start().await;
    let mut holder = app.store.pool().acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let create = || {
        app.http
            .post(format!("{}/v1/tokens", app.url))
            .bearer_auth(&app.api_key)
            .json(&json!({"name": "while locked"}))
            .send()
    };
    let res = create().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unavailable", "{body}");

    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
    drop(holder);
    assert_eq!(create().await.unwrap().status(), StatusCode::CREATED);
}

tooken_testkit::tests! {
    async a_write_lock_held_elsewhere_past_the_busy_timeout_is_503,
}
