//! The dashboard over HTTP: what a browser sends and gets, checked status by
//! status, plus what the store holds afterwards.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tooken_core::token::VerifyCode;
use tooken_core::{Clock, SecretHash};
use tooken_server::dashboard::CONTENT_SECURITY_POLICY_VALUE;
use tooken_store::Role;

use crate::helpers::{Browser, DashApp, Page, OWNER_EMAIL, OWNER_PASSWORD};

/// The token id a "created" redirect points at.
fn token_id_from(res: &Page) -> String {
    res.location()
        .strip_prefix("/dashboard/tokens/")
        .unwrap_or_else(|| panic!("not a token page: {}", res.location()))
        .to_owned()
}

/// Creates a token through the dashboard's form; returns its id and secret.
async fn create_token(b: &Browser, name: &str, scopes: &str) -> (String, String) {
    let res = b
        .submit(
            "/dashboard/tokens/new",
            "/dashboard/tokens",
            &[("name", name), ("scopes", scopes), ("expiry", "30")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let id = token_id_from(&res);
    let page = b.follow(&res).await;
    assert_eq!(page.status, StatusCode::OK);
    let secret = page
        .text_of("new-secret")
        .unwrap_or_else(|| panic!("no secret on {}", page.body));
    (id, secret)
}

store_test! {
    async fn the_setup_link_works_once(app) {
        let path = format!("/dashboard/setup/{}", app.setup_token);
        let b = app.owner().await;
        let tokens = b.get("/dashboard/tokens").await;
        assert_eq!(tokens.status, StatusCode::OK);
        assert!(tokens.body.contains(OWNER_EMAIL), "signed in as the new owner");
        let members = app.store.members(&app.workspace_id).await.unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].role, Role::Owner);
        assert_eq!(members[0].user.email, OWNER_EMAIL);

        // Used: neither showing nor submitting works again, for anyone.
        let other = app.browser();
        let again = other.get(&path).await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
        assert!(again.body.contains("not valid"), "{}", again.body);
        let csrf = other.get("/dashboard/login").await.csrf();
        let res = other
            .post(&path, &[("csrf", &csrf), ("email", "eve@example.com"), ("name", "Eve"),
                ("password", "eve's password!"), ("confirm", "eve's password!")])
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        assert_eq!(app.store.count_users().await.unwrap(), 1);
        let actions = app.actions().await;
        assert!(actions.contains(&"member.added".to_owned()), "{actions:?}");
        assert!(actions.contains(&"user.login".to_owned()), "{actions:?}");
    }
}

store_test! {
    async fn an_expired_setup_link_does_not_work(app) {
        app.clock.advance(chrono::Duration::hours(25));
        let page = app.browser().get(&format!("/dashboard/setup/{}", app.setup_token)).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
    }
}

store_test! {
    async fn setup_form_errors_are_shown_next_to_their_field(app) {
        let b = app.browser();
        let path = format!("/dashboard/setup/{}", app.setup_token);
        let csrf = b.get(&path).await.csrf();
        let res = b
            .post(&path, &[("csrf", &csrf), ("email", "not-an-email"), ("name", "A"),
                ("password", "short"), ("confirm", "short")])
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(res.body.contains("Enter an email address"), "{}", res.body);
        assert!(res.body.contains("at least 10 characters"), "{}", res.body);
        assert_eq!(app.store.count_users().await.unwrap(), 0, "nothing was created");
        // The link still works.
        assert_eq!(b.get(&path).await.status, StatusCode::OK);
    }
}

store_test! {
    async fn login_failures_look_the_same_whether_or_not_the_account_exists(app) {
        drop(app.owner().await);
        let b = app.browser();
        let wrong_password = b.login(OWNER_EMAIL, "not the password").await;
        let unknown_user = b.login("nobody@example.com", "not the password").await;
        assert_eq!(wrong_password.status, StatusCode::BAD_REQUEST);
        assert_eq!(wrong_password.status, unknown_user.status);
        assert!(wrong_password.body.contains("Incorrect email or password."));
        assert_eq!(
            wrong_password.body.replace(OWNER_EMAIL, "EMAIL"),
            unknown_user.body.replace("nobody@example.com", "EMAIL"),
            "the same page, but for the email typed"
        );
        assert!(b.cookie("tooken_session").is_none());

        let ok = b.login(OWNER_EMAIL, OWNER_PASSWORD).await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER);
        assert_eq!(ok.location(), "/dashboard/tokens");
        let set_cookie = ok.headers.get_all("set-cookie").iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("tooken_session="))
            .expect("a session cookie");
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
        assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
        // The store holds only the id's hash.
        let id = b.cookie("tooken_session").unwrap();
        assert!(app.store.session(&SecretHash::of(&id)).await.unwrap().is_some());
        assert_eq!(b.get("/dashboard/tokens").await.status, StatusCode::OK);
    }
}

/// Dashboard password checks run so far, from `/metrics`.
async fn password_checks(app: &DashApp) -> u64 {
    let body = reqwest::get(format!("{}/metrics", app.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix("tooken_dashboard_password_checks_total "))
        .unwrap_or_else(|| panic!("no password check count in {body}"))
        .trim()
        .parse()
        .unwrap()
}

store_test! {
    async fn every_login_runs_argon2_whether_or_not_the_account_exists(app) {
        drop(app.owner().await);
        let b = app.browser();
        let before = password_checks(&app).await;
        // Counted only once argon2id has actually run on a readable hash:
        // the dummy hash for an unknown account is one.
        assert_eq!(b.login("nobody@example.com", "not the password").await.status, StatusCode::BAD_REQUEST);
        assert_eq!(password_checks(&app).await, before + 1, "unknown account");
        assert_eq!(b.login(OWNER_EMAIL, "not the password").await.status, StatusCode::BAD_REQUEST);
        assert_eq!(password_checks(&app).await, before + 2, "wrong password");
        // Too long to be anyone's password: still checked, against the dummy.
        let long = "x".repeat(2000);
        assert_eq!(b.login(OWNER_EMAIL, &long).await.status, StatusCode::BAD_REQUEST);
        assert_eq!(password_checks(&app).await, before + 3, "overlong password");
        assert_eq!(b.login(OWNER_EMAIL, OWNER_PASSWORD).await.status, StatusCode::SEE_OTHER);
        assert_eq!(password_checks(&app).await, before + 4, "right password");

        // And at the same cost: the dummy is hashed with the parameters
        // real passwords are.
        let (_, stored) = app.store.user_with_password(OWNER_EMAIL).await.unwrap().unwrap();
        let dummy = app.state.service.dummy_password_hash().await.unwrap();
        let dummy = dummy.as_str();
        use tooken_service::password::hash_params;
        assert!(hash_params(&stored).is_some());
        assert_eq!(hash_params(dummy), hash_params(&stored));
        assert!(dummy.starts_with("$argon2id$") && stored.starts_with("$argon2id$"));
    }
}

store_test! {
    async fn a_secret_pasted_into_an_address_is_not_shown_back(app) {
        let b = app.owner().await;
        let secret = tooken_core::Credential::generate("tok", tooken_core::Mode::Live);
        let s = secret.expose();
        for path in [
            format!("/dashboard/tokens/{s}"),
            format!("/dashboard/tokens/{s}/rotate"),
            format!("/dashboard/settings/api-keys/{s}/regenerate"),
            format!("/dashboard/members/{s}/remove"),
            format!("/dashboard/setup/{s}"),
        ] {
            let page = b.get(&path).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}: {}", page.body);
            assert!(!page.body.contains(&s[9..25]), "{path}: {}", page.body);
        }
        let page = b.get("/dashboard/tokens/tk_01m8ftre7e5bnqsqwq49bq8t70").await;
        assert!(page.body.contains("There is no token tk_01m8ftre7e5bnqsqwq49bq8t70"), "{}", page.body);
        // A form field of the wrong type: named, its value not repeated.
        let (id, _) = create_token(&b, "t", "a:read").await;
        let res = b
            .submit(&format!("/dashboard/tokens/{id}/rotate"), &format!("/dashboard/tokens/{id}/rotate"),
                &[("grace_period_seconds", s)])
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
        assert!(!res.body.contains(&s[9..25]), "{}", res.body);
        // A key pasted as a scope: refused, not repeated in the message (the
        // form keeps what was typed, for the person to correct).
        let res = b
            .submit("/dashboard/tokens/new", "/dashboard/tokens", &[("name", "t"), ("scopes", s), ("expiry", "30")])
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
        assert_eq!(res.body.matches(&s[9..25]).count(), 1, "{}", res.body);
        assert!(res.body.contains(&format!("value=\"{s}\"")), "{}", res.body);
    }
}

store_test! {
    async fn failed_logins_are_throttled_per_account_without_telling_accounts_apart(app) {
        drop(app.owner().await);
        let b = app.browser();
        for _ in 0..5 {
            assert_eq!(b.login(OWNER_EMAIL, "wrong password!").await.status, StatusCode::BAD_REQUEST);
            assert_eq!(b.login("ghost@example.com", "wrong password!").await.status, StatusCode::BAD_REQUEST);
        }
        // Now even the right password is refused, and so is the ghost.
        let owner = b.login(OWNER_EMAIL, OWNER_PASSWORD).await;
        let ghost = b.login("ghost@example.com", "wrong password!").await;
        assert_eq!(owner.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(ghost.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(owner.body.contains("Too many failed sign-ins"), "{}", owner.body);
        // The window ends.
        app.clock.advance(chrono::Duration::minutes(16));
        assert_eq!(b.login(OWNER_EMAIL, OWNER_PASSWORD).await.status, StatusCode::SEE_OTHER);
    }
}

store_test! {
    async fn logout_ends_the_session(app) {
        let b = app.owner().await;
        let id = b.cookie("tooken_session").unwrap();
        let stolen = Browser::new(&app.url);
        stolen.jar.add_cookie_str(
            &format!("tooken_session={id}; Path=/dashboard"),
            &format!("{}/dashboard/", app.url).parse().unwrap(),
        );
        assert_eq!(stolen.get("/dashboard/tokens").await.status, StatusCode::OK);

        let res = b.submit("/dashboard/tokens", "/dashboard/logout", &[]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        assert!(res.location().starts_with("/dashboard/login"));
        assert!(b.cookie("tooken_session").is_none(), "the cookie is cleared");
        // The same id, replayed, no longer signs anyone in.
        let after = stolen.get("/dashboard/tokens").await;
        assert_eq!(after.status, StatusCode::SEE_OTHER);
        assert!(after.location().starts_with("/dashboard/login"));
        assert!(app.store.session(&SecretHash::of(&id)).await.unwrap().is_none());
        assert_eq!(app.actions().await.last().map(String::as_str), Some("user.logout"));
    }
}

store_test! {
    async fn an_idle_session_expires(app) {
        let b = app.owner().await;
        app.clock.advance(chrono::Duration::hours(13));
        let res = b.get("/dashboard/tokens").await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        assert_eq!(res.location(), "/dashboard/login?next=%2Fdashboard%2Ftokens");
    }
}

/// What a POST to a dashboard route carries: a session (the signed-in
/// owner's, or a sign-in form's pre-session cookie) and a CSRF token.
#[derive(Debug, Clone, Copy)]
enum Csrf {
    Missing,
    Wrong,
    /// Another session's.
    Foreign,
    Right,
}

/// The answer is the CSRF refusal.
fn refused_as_forged(res: &Page) -> bool {
    res.status == StatusCode::FORBIDDEN && res.body.contains("was not sent from the dashboard")
}

store_test! {
    async fn every_dashboard_post_checks_its_csrf_token(app) {
        // What the routes' parameters name, made for real.
        let owner = app.owner().await;
        app.user("second@example.com", Role::Owner, "second password").await;
        app.user("viewer@example.com", Role::Viewer, "viewer password").await;
        let viewer = app.store.user_by_email("viewer@example.com").await.unwrap().unwrap();
        let (token_id, _) = create_token(&owner, "target", "").await;
        let (_, key) = app.new_api_key(tooken_core::Mode::Live).await;
        let value = |param: &str, path: &str| -> String {
            match param {
                "{id}" if path.contains("/tokens/") => token_id.clone(),
                "{id}" if path.contains("/api-keys/") => key.id.clone(),
                "{user_id}" => viewer.id.clone(),
                "{token}" => app.setup_token.clone(),
                "{file}" => "app.css".into(),
                other => panic!("no value for {other} in {path}: add one to this test"),
            }
        };
        let mut checked = Vec::new();
        for (pattern, _) in tooken_server::dashboard::routes() {
            let mut path = pattern.to_owned();
            while let Some(start) = path.find('{') {
                let end = path[start..].find('}').unwrap() + start + 1;
                let param = path[start..end].to_owned();
                path.replace_range(start..end, &value(&param, pattern));
            }
            let anonymous = pattern == "/dashboard/login" || pattern.starts_with("/dashboard/setup/");
            for csrf in [Csrf::Missing, Csrf::Wrong, Csrf::Foreign, Csrf::Right] {
                // A fresh session for each request: a right token may end it (sign out).
                let (b, form_page) = match anonymous {
                    true => (app.browser(), "/dashboard/login"),
                    false => (app.signed_in("second@example.com", "second password").await, "/dashboard/tokens"),
                };
                let token = b.get(form_page).await.field_value("csrf").unwrap();
                let fields: Vec<(&str, String)> = match csrf {
                    Csrf::Missing => vec![],
                    Csrf::Wrong => vec![("csrf", "0".repeat(64))],
                    Csrf::Foreign => vec![("csrf", owner.get("/dashboard/tokens").await.csrf())],
                    Csrf::Right => vec![("csrf", token)],
                };
                let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let res = b.post(&path, &fields).await;
                if res.status == StatusCode::METHOD_NOT_ALLOWED {
                    break; // no POST here
                }
                let what = format!("POST {pattern} with {csrf:?} CSRF token: {} {}", res.status, res.body);
                match csrf {
                    Csrf::Right => assert!(!refused_as_forged(&res), "{what}"),
                    _ => assert!(refused_as_forged(&res), "{what}"),
                }
                if let Csrf::Right = csrf {
                    checked.push(pattern);
                }
            }
        }
        // Every form of the dashboard was among them.
        for form in [
            "/dashboard/setup/{token}", "/dashboard/login", "/dashboard/logout", "/dashboard/switch",
            "/dashboard/tokens", "/dashboard/tokens/{id}/rotate", "/dashboard/tokens/{id}/revoke",
            "/dashboard/settings/api-keys", "/dashboard/settings/api-keys/{id}/regenerate",
            "/dashboard/settings/api-keys/{id}/delete", "/dashboard/settings/general",
            "/dashboard/members", "/dashboard/members/{user_id}/role", "/dashboard/members/{user_id}/remove",
        ] {
            assert!(checked.contains(&form), "{form} was not checked: {checked:?}");
        }
        // A stranger without any session is refused too, and nothing of the
        // above was done by a refused request.
        let stranger = app.browser();
        let csrf = owner.get("/dashboard/tokens/new").await.csrf();
        let res = stranger.post("/dashboard/tokens", &[("csrf", &csrf), ("name", "forged"), ("expiry", "never")]).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
        let all = tooken_store::TokenFilter { limit: 100, ..Default::default() };
        let names: Vec<String> = app
            .store
            .list_tokens(&app.workspace_id, tooken_core::Mode::Live, &all, app.clock.now())
            .await
            .unwrap()
            .0
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert!(!names.contains(&"forged".to_owned()), "{names:?}");
    }
}

store_test! {
    async fn viewers_see_everything_but_every_change_is_refused(app) {
        let owner = app.owner().await;
        let (token_id, _) = create_token(&owner, "service-a", "invoices:read").await;
        let keys = app.store.list_api_keys(&app.workspace_id).await.unwrap();
        let key_id = keys[0].id.clone();
        let owner_id = app.store.members(&app.workspace_id).await.unwrap()[0].user.id.clone();
        app.user("viewer@example.com", Role::Viewer, "viewer password").await;
        let viewer = app.signed_in("viewer@example.com", "viewer password").await;
        let events_before = app.actions().await.len();

        for page in [
            "/dashboard/tokens".to_owned(),
            format!("/dashboard/tokens/{token_id}"),
            "/dashboard/settings/api-keys".into(),
            "/dashboard/settings/audit-log".into(),
            "/dashboard/settings/general".into(),
            "/dashboard/members".into(),
        ] {
            let p = viewer.get(&page).await;
            assert_eq!(p.status, StatusCode::OK, "{page}");
            assert!(!p.body.contains("Revoke</a>") && !p.body.contains(">Regenerate<"), "{page} offers no changes");
        }
        let csrf = viewer.get("/dashboard/tokens").await.csrf();
        let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
            ("/dashboard/tokens".into(), vec![("name", "x"), ("expiry", "never")]),
            (format!("/dashboard/tokens/{token_id}/rotate"), vec![("grace_period_seconds", "0")]),
            (format!("/dashboard/tokens/{token_id}/revoke"), vec![]),
            ("/dashboard/settings/api-keys".into(), vec![("name", "x"), ("mode", "live")]),
            (format!("/dashboard/settings/api-keys/{key_id}/regenerate"), vec![]),
            (format!("/dashboard/settings/api-keys/{key_id}/delete"), vec![]),
            ("/dashboard/settings/general".into(), vec![("token_prefix", "evil")]),
            ("/dashboard/members".into(), vec![("email", "friend@example.com"), ("role", "owner")]),
            (format!("/dashboard/members/{owner_id}/role"), vec![("role", "viewer")]),
            (format!("/dashboard/members/{owner_id}/remove"), vec![]),
        ];
        for (path, fields) in posts {
            let mut all = vec![("csrf", csrf.as_str())];
            all.extend(fields);
            let res = viewer.post(&path, &all).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}: {}", res.body);
            assert!(res.body.contains("Only owners"), "{path}");
        }
        for page in [
            "/dashboard/tokens/new".to_owned(),
            format!("/dashboard/tokens/{token_id}/revoke"),
            format!("/dashboard/settings/api-keys/{key_id}/regenerate"),
        ] {
            assert_eq!(viewer.get(&page).await.status, StatusCode::FORBIDDEN, "{page}");
        }
        // Nothing changed: no new event but the viewer's login.
        assert_eq!(app.actions().await.len(), events_before);
        assert_eq!(app.whoami_status(&app.api_key).await, StatusCode::OK);
        let t = app.store.token(&app.workspace_id, tooken_core::Mode::Live, &token_id).await.unwrap().unwrap();
        assert!(t.revoked_at.is_none());
        // Switching the view is not a change: allowed.
        let res = viewer.post("/dashboard/switch", &[("csrf", &csrf), ("mode", "test")]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
    }
}

store_test! {
    async fn names_are_escaped(app) {
        let b = app.owner().await;
        let evil = "<script>alert(1)</script>";
        let (id, _) = create_token(&b, evil, "").await;
        for path in ["/dashboard/tokens".to_owned(), format!("/dashboard/tokens/{id}"),
                     "/dashboard/settings/audit-log".to_owned()] {
            let page = b.get(&path).await;
            assert!(!page.body.contains(evil), "{path} renders markup");
            assert!(page.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{path}: {}", page.body);
        }
        // Reflected input too.
        let page = b.get("/dashboard/tokens?q=%3Cb%3Ex%22%3E").await;
        assert!(!page.body.contains("<b>x"));
        assert!(page.body.contains("value=\"&#60;b&#62;x&#34;&#62;\""), "{}", page.body);
    }
}

store_test! {
    async fn every_dashboard_response_carries_the_security_headers(app) {
        let b = app.owner().await;
        for path in ["/", "/dashboard", "/dashboard/login", "/dashboard/tokens", "/dashboard/no-such-page",
                     "/dashboard/static/app.css", "/dashboard/static/app.js", "/dashboard/settings/api-keys"] {
            let page = b.get(path).await;
            assert_eq!(
                page.headers.get("content-security-policy").and_then(|v| v.to_str().ok()),
                Some(CONTENT_SECURITY_POLICY_VALUE),
                "{path}"
            );
            assert_eq!(page.headers["x-frame-options"], "DENY", "{path}");
            assert_eq!(page.headers["x-content-type-options"], "nosniff", "{path}");
            assert!(!page.body.contains("<script>") && !page.body.contains(" style="), "{path}: no inline script or style");
        }
        assert_eq!(b.get("/dashboard/tokens").await.headers["cache-control"], "no-store");
        let root = app.browser().get("/").await;
        assert_eq!(root.status, StatusCode::SEE_OTHER);
        assert_eq!(root.location(), "/dashboard");
    }
}

store_test! {
    async fn a_new_token_secret_is_shown_once(app) {
        let b = app.owner().await;
        let (id, secret) = create_token(&b, "billing-sync", "invoices:read, invoices:write").await;
        assert!(secret.starts_with("tkn_live_"), "{secret}");
        let v = app.verify(&secret).await;
        assert_eq!(v.code, VerifyCode::Valid, "{v:?}");
        let scopes: Vec<&str> = v.token.as_ref().unwrap().scopes.iter().map(|s| s.as_str()).collect();
        assert_eq!(scopes, ["invoices:read", "invoices:write"]);
        // A reload shows the token, never its secret again.
        let again = b.get(&format!("/dashboard/tokens/{id}")).await;
        assert_eq!(again.status, StatusCode::OK);
        assert!(again.body.contains("billing-sync"));
        assert!(!again.body.contains(&secret));
        assert!(again.text_of("new-secret").is_none());
        // The store never held it: only its hash, and the one-time pad's
        // other half is gone.
        let t = app.store.token(&app.workspace_id, tooken_core::Mode::Live, &id).await.unwrap().unwrap();
        assert!(t.expires_at.is_some(), "30 days");
        let audit = serde_json::to_string(&app.store.chain(&app.workspace_id).await.unwrap()).unwrap();
        assert!(!audit.contains(&secret));
    }
}

store_test! {
    async fn token_form_errors_are_shown_next_to_their_field(app) {
        let b = app.owner().await;
        let res = b
            .submit("/dashboard/tokens/new", "/dashboard/tokens",
                &[("name", "x"), ("scopes", "Invoices:READ"), ("expiry", "never")])
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(res.body.contains("Invoices:READ"), "the typed value is kept");
        assert!(res.body.contains("class=\"field invalid\""), "{}", res.body);
        // The policy is the API's: require an expiry.
        let mut s = app.store.workspace(&app.workspace_id).await.unwrap().unwrap().settings;
        s.require_expiration = true;
        s.max_token_ttl_seconds = Some(10 * 86_400);
        app.store.update_settings(&app.workspace_id, &s, &tooken_store::AuditContext::new(tooken_core::audit::Actor::system()), app.clock.now()).await.unwrap();
        let form = b.get("/dashboard/tokens/new").await;
        assert!(!form.body.contains("value=\"never\""), "no 'never' under require_expiration");
        assert!(form.body.contains("30 days (over the workspace limit)"));
        let res = b
            .submit("/dashboard/tokens/new", "/dashboard/tokens", &[("name", "x"), ("expiry", "never")])
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(res.body.contains("require_expiration"), "{}", res.body);
        let res = b
            .submit("/dashboard/tokens/new", "/dashboard/tokens", &[("name", "x"), ("expiry", "30")])
            .await;
        assert!(res.body.contains("max_token_ttl_seconds"), "{}", res.body);
        let res = b
            .submit("/dashboard/tokens/new", "/dashboard/tokens", &[("name", "x"), ("expiry", "7")])
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
    }
}

store_test! {
    async fn tokens_rotate_with_a_grace_period_and_revoke_with_their_descendants(app) {
        let b = app.owner().await;
        let (id, secret) = create_token(&b, "parent", "tokens:write invoices:read").await;
        // A child made through the parent, with the API.
        let child: Value = reqwest::Client::new()
            .post(format!("{}/v1/tokens", app.url))
            .bearer_auth(&secret)
            .json(&json!({ "name": "child", "scopes": ["invoices:read"] }))
            .send().await.unwrap().json().await.unwrap();
        let child_id = child["id"].as_str().unwrap().to_owned();

        let detail = b.get(&format!("/dashboard/tokens/{id}")).await;
        assert!(detail.body.contains(&format!("/dashboard/tokens/{child_id}")), "children are listed");
        let child_page = b.get(&format!("/dashboard/tokens/{child_id}")).await;
        assert!(child_page.body.contains(&format!("/dashboard/tokens/{id}")), "the parent is linked");

        let form = format!("/dashboard/tokens/{id}/rotate");
        let res = b.submit(&form, &form, &[("grace_period_seconds", "3600")]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        let new_secret = b.follow(&res).await.text_of("new-secret").expect("the new secret, once");
        assert_ne!(new_secret, secret);
        assert_eq!(app.verify_code(&secret).await, VerifyCode::Valid, "in its grace period");
        assert_eq!(app.verify_code(&new_secret).await, VerifyCode::Valid);
        app.clock.advance(chrono::Duration::seconds(3601));
        assert_ne!(app.verify_code(&secret).await, VerifyCode::Valid, "grace period over");

        let confirm = b.get(&format!("/dashboard/tokens/{id}/revoke")).await;
        assert!(confirm.body.contains("1 token created through it"), "{}", confirm.body);
        let res = b.post(&format!("/dashboard/tokens/{id}/revoke"),
            &[("csrf", &confirm.csrf()), ("reason", "rotated out")]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        let done = b.follow(&res).await;
        assert!(done.body.contains("together with 1 token"), "{}", done.body);
        assert_eq!(app.verify_code(&new_secret).await, VerifyCode::Revoked);
        let c = app.store.token(&app.workspace_id, tooken_core::Mode::Live, &child_id).await.unwrap().unwrap();
        assert!(c.revoked_at.is_some(), "the child went with it");
        let revoked = b.get("/dashboard/tokens?status=revoked").await;
        assert!(revoked.body.contains("parent") && revoked.body.contains("child"));
        let active = b.get("/dashboard/tokens?status=active").await;
        assert!(active.body.contains("No tokens match"), "{}", active.body);
    }
}

store_test! {
    async fn the_token_list_filters_searches_and_pages(app) {
        let b = app.owner().await;
        let client = tooken_client::Client::new(&app.url, &app.api_key).unwrap();
        for i in 0..30 {
            client.create_token(&tooken_client::CreateToken {
                name: format!("{}-{i:02}", if i % 2 == 0 { "alpha" } else { "beta" }),
                scopes: vec![if i % 3 == 0 { "x:read".into() } else { "y:read".into() }],
                ..Default::default()
            }).await.unwrap();
        }
        let first = b.get("/dashboard/tokens").await;
        assert!(first.body.contains("beta-29") && !first.body.contains("alpha-04"), "newest 25 first");
        let next = first.body.split("href=\"").find(|s| s.contains("after=")).unwrap();
        let next = next.split('"').next().unwrap().replace("&amp;", "&");
        let second = b.get(&next).await;
        assert!(second.body.contains("alpha-04") && second.body.contains("beta-01") && !second.body.contains("beta-29"));
        let alphas = b.get("/dashboard/tokens?q=alpha").await;
        assert!(alphas.body.contains("alpha-28") && !alphas.body.contains("beta-"));
        let scoped = b.get("/dashboard/tokens?scope=x:read").await;
        assert!(scoped.body.contains("alpha-00") && !scoped.body.contains("beta-01"));
        let bad = b.get("/dashboard/tokens?scope=NOT%20A%20SCOPE").await;
        assert_eq!(bad.status, StatusCode::OK);
        assert!(bad.body.contains("Scope filter:"));
    }
}

store_test! {
    async fn regenerating_an_api_key_in_the_dashboard_stops_the_old_value_at_once(app) {
        let b = app.owner().await;
        let res = b
            .submit("/dashboard/settings/api-keys", "/dashboard/settings/api-keys",
                &[("name", "ci"), ("mode", "test")])
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        let shown = b.follow(&res).await;
        let old = shown.text_of("new-secret").expect("the new key, once");
        assert!(old.starts_with("tok_test_"));
        assert!(shown.body.contains("displayed only once"));
        assert_eq!(app.whoami_status(&old).await, StatusCode::OK);
        assert!(b.get("/dashboard/settings/api-keys").await.text_of("new-secret").is_none(), "not on reload");

        let key = app.store.list_api_keys(&app.workspace_id).await.unwrap()
            .into_iter().find(|k| k.name == "ci").unwrap();
        let confirm_path = format!("/dashboard/settings/api-keys/{}/regenerate", key.id);
        let confirm = b.get(&confirm_path).await;
        assert!(confirm.body.contains("stops working immediately"), "{}", confirm.body);
        let res = b.post(&confirm_path, &[("csrf", &confirm.csrf())]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        let new = b.follow(&res).await.text_of("new-secret").expect("the regenerated value");
        assert_ne!(new, old);
        assert_eq!(app.whoami_status(&old).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.whoami_status(&new).await, StatusCode::OK);

        let delete_path = format!("/dashboard/settings/api-keys/{}/delete", key.id);
        let confirm = b.get(&delete_path).await;
        assert!(confirm.body.contains("stops working immediately"));
        let res = b.post(&delete_path, &[("csrf", &confirm.csrf())]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        assert!(b.follow(&res).await.body.contains("was deleted"));
        assert_eq!(app.whoami_status(&new).await, StatusCode::UNAUTHORIZED);
        let actions = app.actions().await;
        for a in ["api_key.created", "api_key.regenerated", "api_key.deleted"] {
            assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
        }
    }
}

store_test! {
    async fn the_audit_log_filters_exports_and_verifies_its_chain(app) {
        let b = app.owner().await;
        create_token(&b, "audited", "").await;
        let page = b.get("/dashboard/settings/audit-log").await;
        assert!(page.body.contains("token.created") && page.body.contains("user.login"));
        assert!(page.body.contains("Hash chain intact"), "{}", page.body);
        let only = b.get("/dashboard/settings/audit-log?action=token.created").await;
        assert!(only.body.contains("token.created") && !only.body.contains(">user.login<"));
        let today = app.clock.now().format("%Y-%m-%d").to_string();
        let dated = b.get(&format!("/dashboard/settings/audit-log?since={today}&until={today}")).await;
        assert!(dated.body.contains("token.created"));
        let past = b.get("/dashboard/settings/audit-log?until=2000-01-01").await;
        assert!(past.body.contains("No events match"));

        let export = b.get("/dashboard/settings/audit-log/export").await;
        assert_eq!(export.status, StatusCode::OK);
        assert_eq!(export.headers["content-type"], "application/x-ndjson");
        let api_export = reqwest::Client::new()
            .get(format!("{}/v1/audit-log/export", app.url))
            .bearer_auth(&app.api_key)
            .send().await.unwrap().text().await.unwrap();
        assert_eq!(export.body, api_export, "the same events as the API's export");
        assert!(export.body.lines().count() >= 4);

        // Tampering shows.
        sqlx::query("UPDATE audit_events SET action = 'token.revoked' WHERE action = 'token.created'")
            .execute(app.store.pool()).await.unwrap();
        let page = b.get("/dashboard/settings/audit-log").await;
        assert!(page.body.contains("Hash chain broken"), "{}", page.body);
    }
}

store_test! {
    async fn settings_are_validated_and_saved(app) {
        let b = app.owner().await;
        let res = b.submit("/dashboard/settings/general", "/dashboard/settings/general",
            &[("token_prefix", "tok"), ("max_ttl", "30"), ("max_ttl_unit", "days")]).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(res.body.contains("reserved for API keys"), "{}", res.body);
        let res = b.submit("/dashboard/settings/general", "/dashboard/settings/general",
            &[("require_expiration", "on"), ("token_prefix", "acme"), ("max_ttl", "30"),
              ("max_ttl_unit", "days"), ("default_ttl", "12"), ("default_ttl_unit", "hours"),
              ("audit_retention_days", "")]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        let s = app.store.workspace(&app.workspace_id).await.unwrap().unwrap().settings;
        assert!(s.require_expiration);
        assert_eq!(s.token_prefix, "acme");
        assert_eq!(s.max_token_ttl_seconds, Some(30 * 86_400));
        assert_eq!(s.default_token_ttl_seconds, Some(12 * 3_600));
        let page = b.follow(&res).await;
        assert!(page.body.contains("Settings saved"));
        assert!(page.body.contains("value=\"12\""));
        let (_, secret) = create_token(&b, "prefixed", "").await;
        assert!(secret.starts_with("acme_live_"), "{secret}");
    }
}

store_test! {
    async fn owners_manage_members_and_keep_an_owner(app) {
        let b = app.owner().await;
        app.user("vera@example.com", Role::Viewer, "vera's password").await;
        let res = b.submit("/dashboard/members", "/dashboard/members",
            &[("email", "new@example.com"), ("role", "viewer")]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        let page = b.follow(&res).await;
        let link = page.text_of("invite-link").expect("an invitation link, once");
        assert!(b.follow(&res).await.text_of("invite-link").is_none(), "once");
        let path = link.split_once("/dashboard/").map(|(_, p)| format!("/dashboard/{p}")).unwrap();
        let invited = app.browser();
        let form = invited.get(&path).await;
        assert!(form.body.contains("new@example.com") && form.body.contains("viewer"));
        let res = invited.post(&path, &[("csrf", &form.csrf()), ("name", "Newt"),
            ("password", "newt's password"), ("confirm", "newt's password")]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        assert!(invited.get("/dashboard/tokens").await.body.contains("new@example.com"));

        let members = app.store.members(&app.workspace_id).await.unwrap();
        assert_eq!(members.len(), 3);
        let owner_id = members.iter().find(|m| m.user.email == OWNER_EMAIL).unwrap().user.id.clone();
        let vera_id = members.iter().find(|m| m.user.email == "vera@example.com").unwrap().user.id.clone();
        // The last owner cannot step down or leave.
        let res = b.submit("/dashboard/members", &format!("/dashboard/members/{owner_id}/role"), &[("role", "viewer")]).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(res.body.contains("at least one owner"));
        // Promote Vera, who can then act.
        let res = b.submit("/dashboard/members", &format!("/dashboard/members/{vera_id}/role"), &[("role", "owner")]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        let vera = app.signed_in("vera@example.com", "vera's password").await;
        assert!(vera.get("/dashboard/members").await.body.contains("Add a member"));
        // Removing a member ends their sessions in the workspace at once.
        let confirm = format!("/dashboard/members/{vera_id}/remove");
        let res = b.submit(&confirm, &confirm, &[]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        assert_eq!(vera.get("/dashboard/members").await.status, StatusCode::SEE_OTHER);
        let actions = app.actions().await;
        for a in ["member.invited", "member.added", "member.role_changed", "member.removed"] {
            assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
        }
    }
}

store_test! {
    async fn members_of_several_workspaces_switch_between_them(app) {
        let b = app.owner().await;
        let ctx = tooken_store::AuditContext::new(tooken_core::audit::Actor::admin_cli());
        let other = app.store.create_workspace(&"acme".parse().unwrap(), &ctx, app.clock.now()).await.unwrap();
        let me = app.store.user_by_email(OWNER_EMAIL).await.unwrap().unwrap();
        app.store.add_member(&other.id, &me, Role::Viewer, &ctx, app.clock.now()).await.unwrap();
        let page = b.get("/dashboard/tokens").await;
        assert!(page.body.contains("name=\"workspace\""), "a switcher");
        let res = b.post("/dashboard/switch", &[("csrf", &page.csrf()), ("workspace", &other.id)]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        let page = b.get("/dashboard/settings/general").await;
        assert!(page.body.contains("<strong>acme</strong>"), "{}", page.body);
        assert!(page.body.contains("You are a viewer"));
        // A workspace one is not a member of cannot be switched to.
        let stranger = app.store.create_workspace(&"stranger".parse().unwrap(), &ctx, app.clock.now()).await.unwrap();
        let res = b.post("/dashboard/switch", &[("csrf", &page.csrf()), ("workspace", &stranger.id)]).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
    }
}

store_test! {
    async fn test_mode_shows_test_tokens_only(app) {
        let b = app.owner().await;
        create_token(&b, "live-one", "").await;
        let page = b.get("/dashboard/tokens").await;
        let res = b.post("/dashboard/switch", &[("csrf", &page.csrf()), ("mode", "test"), ("back", "tokens")]).await;
        assert_eq!(res.location(), "/dashboard/tokens");
        let test = b.get("/dashboard/tokens").await;
        assert!(test.body.contains("Viewing test data") && !test.body.contains("live-one"));
        let (_, secret) = create_token(&b, "test-one", "").await;
        assert!(secret.starts_with("tkn_test_"));
    }
}
