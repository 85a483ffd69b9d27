//! Token semantics: built-in scopes on every endpoint, attenuation, cascade
//! revocation, modes, rotation, workspace policy, introspection, whoami and
//! brute-force protection. Each test is a table of cases and one loop.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tooken_client::{
    Client, CreateToken, ListTokens, TokenStatus, TokenWithSecret, UpdateSettings, UpdateToken,
    VerifyCode,
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
    let json = |method, path, body, needs| Endpoint {
        method,
        path,
        body,
        form: false,
        needs,
    };
    let read = Needs::Scope("tokens:read");
    let write = Needs::Scope("tokens:write");
    let audit = Needs::Scope("audit:read");
    vec![
        json(Method::GET, "/v1/tokens", None, read),
        json(Method::GET, "/v1/tokens/{id}", None, read),
        json(
            Method::POST,
            "/v1/tokens",
            Some(r#"{"name":"child"}"#),
            write,
        ),
        json(
            Method::PATCH,
            "/v1/tokens/{id}",
            Some(r#"{"name":"renamed"}"#),
            write,
        ),
        json(Method::POST, "/v1/tokens/{id}/rotate", Some("{}"), write),
        json(
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
        json(Method::GET, "/v1/audit-log", None, audit),
        json(Method::GET, "/v1/audit-log/export", None, audit),
        json(Method::GET, "/v1/settings", None, Needs::ApiKey),
        json(Method::PATCH, "/v1/settings", Some("{}"), Needs::ApiKey),
        json(Method::GET, "/v1/authz/rules", None, Needs::ApiKey),
        json(
            Method::PUT,
            "/v1/authz/rules",
            Some(r#"{"rules":[]}"#),
            Needs::ApiKey,
        ),
        json(Method::GET, "/v1/whoami", None, Needs::Nothing),
        json(Method::GET, "/v1/openapi.json", None, Needs::Nothing),
        // Last: it revokes the target.
        json(Method::POST, "/v1/tokens/{id}/revoke", Some("{}"), write),
    ]
}

/// Calls `ep` on `target` with `credential`: status, `WWW-Authenticate`
/// and body.
async fn call(
    app: &TestApp,
    ep: &Endpoint,
    target: &str,
    credential: &str,
) -> (StatusCode, Option<String>, Value) {
    let path = ep.path.replace("{id}", target);
    let mut req = app
        .http
        .request(ep.method.clone(), format!("{}{path}", app.url))
        .bearer_auth(credential);
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
    (status, www, res.json().await.unwrap_or(Value::Null))
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
                name: "child".parse().unwrap(),
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

/// A token request with a name and, optionally, scopes and a lifetime.
fn request(scopes: &[&str], expires_in: Option<i64>) -> CreateToken {
    CreateToken {
        name: "t".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        expires_in,
        ..Default::default()
    }
}

/// Issues through `as_client`, which must succeed.
async fn issue(as_client: &Client, scopes: &[&str], expires_in: Option<i64>) -> TokenWithSecret {
    as_client
        .create_token(&request(scopes, expires_in))
        .await
        .unwrap()
}

store_test! {
    async fn every_endpoint_checks_built_in_scopes(app) {
        let mut checked = 0;
        for scopes in scope_sets() {
            let caller = app.token("caller", &scopes).await;
            let held: Vec<Scope> = scopes.iter().map(|s| Scope::parse(s).unwrap()).collect();
            let target = child_of(&app, &caller.token.id).await;
            for ep in endpoints() {
                let (status, www, body) = call(&app, &ep, &target, &caller.secret).await;
                let allowed = match ep.needs {
                    Needs::Nothing => true,
                    Needs::ApiKey => false,
                    Needs::Scope(s) => tooken_core::scope::any_covers(&held, &Scope::parse(s).unwrap()),
                };
                let what = format!("{scopes:?} {} {} → {status} {body}", ep.method, ep.path);
                if allowed {
                    assert!(status.is_success(), "{what}");
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                    assert_eq!(body["error"], "forbidden", "{what}");
                    if let Needs::Scope(s) = ep.needs {
                        assert_eq!(body["required_scope"], s, "{what}");
                        assert!(body["message"].as_str().unwrap().contains(s), "{what}");
                        let expected = format!(r#"Bearer error="insufficient_scope", scope="{s}""#);
                        assert_eq!(www.as_deref(), Some(expected.as_str()), "{what}");
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 18 * 16);
    }
}

store_test! {
    async fn api_keys_may_do_everything(app) {
        let target = app.token("t", &[]).await.token.id;
        for ep in endpoints() {
            let (status, _, body) = call(&app, &ep, &target, &app.api_key).await;
            assert!(status.is_success(), "{} {} → {status} {body}", ep.method, ep.path);
        }
    }
}

store_test! {
    async fn a_child_gets_at_most_its_parents_scopes(app) {
        let parent = app.token("parent", &["tokens:write", "invoices:*", "logs:read"]).await;
        let as_parent = app.client.with_credential(&parent.secret);
        let child = issue(&as_parent, &["invoices:read", "logs:read"], None).await;
        assert_eq!(child.token.parent_id.as_deref(), Some(parent.token.id.as_str()));
        assert_eq!(child.token.created_by, parent.token.id);
        assert_eq!(child.token.mode, Mode::Live);

        // Asking for more, at creation or later, is refused naming the scope.
        let widen = |scope: &'static str| UpdateToken { scopes: Some(vec![scope.into()]), ..Default::default() };
        for (what, scope, create) in [
            ("create", "payments:read", true),
            ("create", "audit:read", true),
            ("update", "admin:all", false),
        ] {
            let err = match create {
                true => as_parent.create_token(&request(&[scope], None)).await.unwrap_err(),
                false => as_parent.update_token(&child.token.id, &widen(scope)).await.unwrap_err(),
            };
            assert_eq!(err.status(), Some(403), "{what} {scope}");
            assert!(err.to_string().contains(scope), "{what} {scope}: {err}");
        }
    }
}

store_test! {
    async fn a_child_expires_no_later_than_its_parent(app) {
        let parent = issue(&app.client, &["tokens:write"], Some(3600)).await;
        let forever = app.token("forever", &["tokens:write"]).await;
        let (as_parent, as_forever) = (
            app.client.with_credential(&parent.secret),
            app.client.with_credential(&forever.secret),
        );
        let parent_expiry = parent.token.expires_at.unwrap();
        let in_60s = app.clock_now() + chrono::Duration::seconds(60);
        // (through, asked lifetime, the child's expiry, or None for a 403 naming expires_at)
        for (what, through, asked, expected) in [
            ("longer than the parent", &as_parent, Some(7200), None),
            ("shorter", &as_parent, Some(60), Some(Some(in_60s))),
            ("none asked: the parent's", &as_parent, None, Some(Some(parent_expiry))),
            ("a never-expiring parent may still set one", &as_forever, Some(60), Some(Some(in_60s))),
        ] {
            let res = through.create_token(&request(&[], asked)).await;
            match expected {
                None => {
                    let err = res.unwrap_err();
                    assert_eq!(err.status(), Some(403), "{what}");
                    assert!(err.to_string().contains("expires_at"), "{what}: {err}");
                }
                Some(expiry) => assert_eq!(res.unwrap().token.expires_at, expiry, "{what}"),
            }
        }
    }
}

store_test! {
    async fn a_token_manages_only_what_was_created_through_it(app) {
        let a = app.token("a", &["tokens:write", "tokens:read"]).await;
        let b = app.token("b", &["tokens:write"]).await;
        let (as_a, as_b) = (app.client.with_credential(&a.secret), app.client.with_credential(&b.secret));
        let child = issue(&as_a, &["tokens:write"], None).await;
        let grandchild = issue(&app.client.with_credential(&child.secret), &[], None).await;
        assert_eq!(grandchild.token.parent_id.as_deref(), Some(child.token.id.as_str()));

        // a reaches its grandchild; b reaches none of them; nobody manages itself.
        let rename = UpdateToken { name: Some("renamed".into()), ..Default::default() };
        as_a.update_token(&grandchild.token.id, &rename).await.unwrap();
        let refused = [
            (&as_b, &child.token.id),
            (&as_b, &grandchild.token.id),
            (&as_b, &a.token.id),
            (&as_a, &a.token.id),
        ];
        for (who, id) in refused {
            assert_eq!(who.revoke_token(id, None).await.unwrap_err().status(), Some(403), "revoke {id}");
            assert_eq!(who.rotate_token(id, 0).await.unwrap_err().status(), Some(403), "rotate {id}");
        }
        assert_eq!(app.client.get_token(&a.token.id).await.unwrap().status, TokenStatus::Active);
    }
}

store_test! {
    async fn revoking_revokes_a_chain_of_depth_ten(app) {
        let mut chain = vec![app.token("root", &["tokens:write"]).await];
        for _ in 1..=10 {
            let parent = app.client.with_credential(&chain.last().unwrap().secret);
            chain.push(issue(&parent, &["tokens:write"], None).await);
        }
        // Revoking in the middle takes everything below, nothing above.
        app.client.revoke_token(&chain[4].token.id, Some("compromised")).await.unwrap();
        for (depth, t) in chain.iter().enumerate() {
            let (status, code) = match depth >= 4 {
                true => (TokenStatus::Revoked, VerifyCode::Revoked),
                false => (TokenStatus::Active, VerifyCode::Valid),
            };
            assert_eq!(app.client.get_token(&t.token.id).await.unwrap().status, status, "depth {depth}");
            assert_eq!(app.verify_code(&t.secret).await, code, "depth {depth}");
        }
        let revoked = app.events(&app.workspace_id).await.into_iter().find(|e| e.action == "token.revoked").unwrap();
        assert_eq!(revoked.details["descendants_revoked"].as_array().unwrap().len(), 6);
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
            .revoke_token(&app.workspace_id, Mode::Live, &root.token.id, None, &AuditContext::new(Actor::system()), app.clock_now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(revoked.len(), 1001);
        for (status, count) in [("active", 0), ("revoked", 1001)] {
            let q = ListTokens { status: Some(status.into()), limit: Some(100), ..Default::default() };
            assert_eq!(app.client.list_all_tokens(&q).await.unwrap().len(), count, "{status}");
        }
    }
}

store_test! {
    async fn modes_do_not_see_each_other(app) {
        let (test_key, _) = app.new_api_key(Mode::Test).await;
        let test = app.client.with_credential(&test_key);
        let t = issue(&test, &["tokens:write"], None).await;
        let l = app.token("prod", &[]).await;
        // Children inherit their creator's mode.
        let child = issue(&test.with_credential(&t.secret), &[], None).await;
        for (token, mode, prefix) in [(&t, Mode::Test, "tkn_test_"), (&child, Mode::Test, "tkn_test_"), (&l, Mode::Live, "tkn_live_")] {
            assert_eq!(token.token.mode, mode);
            assert!(token.secret.starts_with(prefix), "{}", token.token.hint);
        }
        let ids = |c: &Client| {
            let c = c.clone();
            async move {
                c.list_all_tokens(&ListTokens::default()).await.unwrap().into_iter().map(|t| t.id).collect::<Vec<_>>()
            }
        };
        let mut test_ids = ids(&test).await;
        test_ids.sort();
        let mut expected = vec![t.token.id.clone(), child.token.id.clone()];
        expected.sort();
        assert_eq!(test_ids, expected);
        assert_eq!(ids(&app.client).await, vec![l.token.id.clone()]);

        // Across modes, a token does not exist: (asking client, the other mode's token).
        for (client, other) in [(&test, &l), (&app.client, &t)] {
            assert_eq!(client.get_token(&other.token.id).await.unwrap_err().status(), Some(404));
            assert_eq!(client.revoke_token(&other.token.id, None).await.unwrap_err().status(), Some(404));
            let v = client.verify(&tooken_client::VerifyRequest { token: other.secret.clone(), scopes: vec![] }).await.unwrap();
            assert_eq!((v.valid, v.code, v.token.is_none()), (false, VerifyCode::NotFound, true));
            assert!(!client.introspect(&other.secret).await.unwrap().active);
        }
        assert_eq!(app.client.get_token(&l.token.id).await.unwrap().status, TokenStatus::Active);
    }
}

/// A step of a token's rotation history, then which of its secrets so far
/// verify (the original is 0, each rotation adds the next).
enum Step {
    Rotate { grace_seconds: i64 },
    Advance { seconds: i64 },
}

store_test! {
    async fn rotation_keeps_the_old_secret_for_the_grace_period_only(app) {
        let original = app.token("svc", &["x:read"]).await;
        let mut secrets = vec![original.secret.clone()];
        let steps = [
            (Step::Rotate { grace_seconds: 300 }, &[0, 1][..], "the old secret works during grace"),
            (Step::Advance { seconds: 299 }, &[0, 1], "until the deadline"),
            (Step::Advance { seconds: 1 }, &[1], "never after it"),
            (Step::Rotate { grace_seconds: 600 }, &[1, 2], "the secret just replaced is in its grace"),
            (Step::Rotate { grace_seconds: 600 }, &[2, 3], "rotating again ends the older grace at once"),
            (Step::Rotate { grace_seconds: 0 }, &[4], "without a grace the old secret stops at once"),
        ];
        for (step, valid, what) in steps {
            match step {
                Step::Rotate { grace_seconds } => {
                    let rotated = app.client.rotate_token(&original.token.id, grace_seconds).await.unwrap();
                    assert_eq!(rotated.token.id, original.token.id);
                    assert!(!secrets.contains(&rotated.secret));
                    assert_ne!(rotated.token.hint, original.token.hint);
                    secrets.push(rotated.secret);
                }
                Step::Advance { seconds } => app.clock.advance(chrono::Duration::seconds(seconds)),
            }
            for (i, secret) in secrets.iter().enumerate() {
                assert_eq!(app.verify(secret).await.valid, valid.contains(&i), "secret {i}: {what}");
            }
        }
    }
}

store_test! {
    async fn rotation_rejects_bad_grace_periods_and_dead_tokens(app) {
        let t = app.token("svc", &[]).await;
        let path = format!("/v1/tokens/{}/rotate", t.token.id);
        for (grace, expected) in [("-1", None), ("604801", None), ("604800", Some(StatusCode::OK))] {
            let (s, b) = app.call(Method::POST, &path, Some(&format!(r#"{{"grace_period_seconds":{grace}}}"#))).await;
            match expected {
                None => assert_invalid(s, &b, "grace_period_seconds"),
                Some(status) => assert_eq!(s, status, "{grace}: {b}"),
            }
        }
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
        assert_eq!(old.list_tokens(&ListTokens::default()).await.unwrap_err().status(), Some(401));
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
            (json!({"default_token_ttl_seconds": -1}), "default_token_ttl_seconds"),
            (json!({"max_token_ttl_seconds": 60, "default_token_ttl_seconds": 120}), "default_token_ttl_seconds"),
            (json!({"audit_retention_days": 0}), "audit_retention_days"),
            (json!({"require_expiration": "yes"}), "require_expiration"),
            (json!({"colour": "red"}), "colour"),
        ] {
            let (status, b) = app.call(Method::PATCH, "/v1/settings", Some(&body.to_string())).await;
            assert_invalid(status, &b, field);
        }
        assert_eq!(app.client.settings().await.unwrap(), s, "nothing changed");
        let t = app.token("t", &BUILT_IN).await;
        let err = app.client.with_credential(&t.secret).settings().await.unwrap_err();
        assert_eq!(err.status(), Some(403));
    }
}

store_test! {
    async fn policy_is_enforced_on_create_and_update(app) {
        let existing = app.token("old", &[]).await;
        let existing = format!("/v1/tokens/{}", existing.token.id);
        let strict = UpdateSettings {
            require_expiration: Some(true),
            max_token_ttl_seconds: Some(Some(3600)),
            ..Default::default()
        };
        app.client.update_settings(&strict).await.unwrap();
        // (method, path, body, refused naming this setting, or accepted)
        for (method, path, body, setting) in [
            (Method::POST, "/v1/tokens", r#"{"name":"x"}"#, Some("require_expiration")),
            (Method::POST, "/v1/tokens", r#"{"name":"x","expires_in":7200}"#, Some("max_token_ttl_seconds")),
            (Method::POST, "/v1/tokens", r#"{"name":"x","expires_in":3600}"#, None),
            (Method::PATCH, existing.as_str(), r#"{"expires_at":null}"#, Some("require_expiration")),
        ] {
            let (s, b) = app.call(method.clone(), path, Some(body)).await;
            match setting {
                Some(setting) => {
                    assert_invalid(s, &b, "expires_at");
                    if method == Method::POST {
                        assert!(b["message"].as_str().unwrap().contains(setting), "{body}: {b}");
                    }
                }
                None => assert_eq!(s, StatusCode::CREATED, "{body}: {b}"),
            }
        }
        // A default TTL fills in for tokens that ask for none.
        let default = UpdateSettings { default_token_ttl_seconds: Some(Some(600)), ..Default::default() };
        app.client.update_settings(&default).await.unwrap();
        let t = issue(&app.client, &[], None).await;
        assert_eq!(t.token.expires_at, Some(app.clock_now() + chrono::Duration::seconds(600)));
    }
}

store_test! {
    async fn a_new_token_prefix_applies_to_new_tokens_only(app) {
        let old = app.token("old", &[]).await;
        let prefix = UpdateSettings { token_prefix: Some("acme".into()), ..Default::default() };
        assert_eq!(app.client.update_settings(&prefix).await.unwrap().token_prefix, "acme");
        let new = app.token("new", &[]).await;
        assert_eq!(app.verify_code(&old.secret).await, VerifyCode::Valid, "old tokens keep working");
        // Rotating an old token keeps its own prefix.
        let rotated = app.client.rotate_token(&old.token.id, 0).await.unwrap();
        for (what, secret, hint, prefix) in [
            ("new", &new.secret, &new.token.hint, "acme_live_"),
            ("rotated", &rotated.secret, &rotated.token.hint, "tkn_live_"),
        ] {
            assert!(secret.starts_with(prefix), "{what}");
            assert!(hint.starts_with(&format!("{prefix}…")), "{what}: {hint}");
            assert_eq!(app.verify_code(secret).await, VerifyCode::Valid, "{what}");
        }
        let changes = app.events(&app.workspace_id).await.into_iter().filter(|e| e.action == "settings.updated").count();
        assert_eq!(changes, 1);
    }
}

store_test! {
    async fn introspection_follows_rfc_7662(app) {
        let t = issue(&app.client, &["a:read", "b:write"], Some(100)).await;
        let introspect = |form: Vec<(&'static str, String)>| {
            let (http, url, key) = (app.http.clone(), app.url.clone(), app.api_key.clone());
            async move {
                let res = http.post(format!("{url}/v1/oauth/introspect")).bearer_auth(key).form(&form).send().await.unwrap();
                let status = res.status();
                (status, res.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let (status, body) = introspect(vec![("token", t.secret.expose().to_owned()), ("token_type_hint", "access_token".into())]).await;
        assert_eq!(status, StatusCode::OK);
        let expected = json!({
            "active": true,
            "scope": "a:read b:write",
            "sub": t.token.id,
            "token_type": "bearer",
            "exp": t.token.expires_at.unwrap().timestamp(),
            "iat": t.token.created_at.timestamp(),
            "client_id": app.api_key_id,
        });
        for (field, value) in expected.as_object().unwrap() {
            assert_eq!(&body[field], value, "{field}: {body}");
        }

        let revoked = app.token("r", &[]).await;
        app.client.revoke_token(&revoked.token.id, None).await.unwrap();
        let (test_key, _) = app.new_api_key(Mode::Test).await;
        let test_token = issue(&app.client.with_credential(&test_key), &[], None).await;
        // Inactive, each for its own reason: {"active": false} and nothing else.
        for (what, token, advance) in [
            ("garbage", "garbage".to_owned(), 0),
            ("unknown", Credential::generate("tkn", Mode::Live).expose().to_owned(), 0),
            ("revoked", revoked.secret.expose().to_owned(), 0),
            ("expired", t.secret.expose().to_owned(), 100),
            ("another mode's", test_token.secret.expose().to_owned(), 0),
        ] {
            app.clock.advance(chrono::Duration::seconds(advance));
            assert_eq!(introspect(vec![("token", token)]).await, (StatusCode::OK, json!({"active": false})), "{what}");
        }
        // A missing token field is a 400, not a crash.
        assert_eq!(introspect(vec![("nope", "1".into())]).await.0, StatusCode::BAD_REQUEST);
    }
}

store_test! {
    async fn whoami_describes_the_caller(app) {
        let t = app.token("svc", &["invoices:read"]).await;
        for (kind, client, id, scopes) in [
            ("api_key", app.client.clone(), app.api_key_id.clone(), 4),
            ("token", app.client.with_credential(&t.secret), t.token.id.clone(), 1),
        ] {
            let me = client.whoami().await.unwrap();
            assert_eq!((me.kind.as_str(), me.id, me.mode, me.scopes.len()), (kind, id, Mode::Live, scopes));
            assert_eq!(me.workspace.name, "default");
        }
        let me = app.client.with_credential(&t.secret).whoami().await.unwrap();
        assert_eq!((me.scopes, me.hint), (vec!["invoices:read".to_string()], t.token.hint));
    }
}

const SLOW_AFTER: u32 = 3;
const DELAY_STEP: Duration = Duration::from_millis(50);

fn strict_limits(state: tooken_server::AppState) -> tooken_server::AppState {
    state.with_auth_limits(AuthLimits {
        window: Duration::from_secs(60),
        slow_after: SLOW_AFTER,
        block_after: 6,
        delay_step: DELAY_STEP,
        max_delay: Duration::from_millis(200),
    })
}

/// The failures the brute-force throttle has answered late so far.
async fn slowed(app: &TestApp) -> u64 {
    let (_, _, body) = app.raw(Method::GET, "/metrics", None, None).await;
    body.lines()
        .find_map(|l| l.strip_prefix("tooken_auth_failures_slowed_total "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

store_test! {
    async fn repeated_failures_from_one_address_are_slowed_then_refused(app with strict_limits) {
        let from = |ip: &str| {
            reqwest::Client::builder().local_address(ip.parse::<std::net::IpAddr>().unwrap()).build().unwrap()
        };
        let (attacker, neighbour) = (from("127.0.0.1"), from("127.0.0.2"));
        let bad = Credential::generate("tok", Mode::Live);
        let url = format!("{}/v1/tokens", app.url);
        let send = |client: &reqwest::Client, key: &str| client.get(&url).bearer_auth(key).send();

        // The first failures are answered at once; past SLOW_AFTER each is
        // answered late, by at least one more step each time (counted by
        // the server; the lower bound on how long it took holds on any
        // machine, however loaded).
        for i in 1..=6u32 {
            let started = std::time::Instant::now();
            let res = send(&attacker, bad.expose()).await.unwrap();
            let took = started.elapsed();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(res.text().await.unwrap(), UNAUTHORIZED_BODY);
            let late = i.saturating_sub(SLOW_AFTER);
            assert_eq!(slowed(&app).await, u64::from(late), "failure {i}");
            assert!(took >= DELAY_STEP * late, "failure {i} took {took:?}");
        }
        let res = send(&attacker, bad.expose()).await.unwrap();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()["retry-after"], "60");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "rate_limited");

        // (client, credential, status): blocked means blocked, even with a
        // good key; another address is untouched; the window's end frees it.
        let cases = [
            ("blocked, with a good key", &attacker, app.api_key.as_str(), 0, StatusCode::TOO_MANY_REQUESTS),
            ("a neighbour's good key", &neighbour, app.api_key.as_str(), 0, StatusCode::OK),
            ("a neighbour's bad key", &neighbour, bad.expose(), 0, StatusCode::UNAUTHORIZED),
            ("after the window", &attacker, app.api_key.as_str(), 60, StatusCode::OK),
        ];
        for (what, client, key, advance, status) in cases {
            app.clock.advance(chrono::Duration::seconds(advance));
            assert_eq!(send(client, key).await.unwrap().status(), status, "{what}");
        }
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
