//! `tooken tokens|verify|whoami|completions`: the client commands against a
//! real server, their tables, their JSON and their exit codes.

use crate::run::{tooken, Api};

/// An RFC 3339 time `days` from now, whole seconds, as the API prints it.
fn in_days(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn create_shows_the_secret_once_and_it_verifies() {
    let api = Api::start();
    let run = api.run(&[
        "tokens",
        "create",
        "--name",
        "billing-sync",
        "--description",
        "nightly invoice sync",
        "--scope",
        "invoices:read",
        "--scope",
        "invoices:write",
        "--metadata",
        r#"{"team":"billing"}"#,
        "--expires-in",
        "3600",
    ]);
    run.assert_code(0);
    let out = &run.stdout;
    assert!(out.contains("shown only this once"), "{out}");
    let secret = out
        .split_whitespace()
        .find(|w| w.starts_with("tkn_live_"))
        .expect("the secret is printed");
    assert!(tooken_core::credential::is_well_formed(secret));
    assert!(
        out.contains("billing-sync") && out.contains("invoices:read invoices:write"),
        "{out}"
    );
    assert!(out.contains(r#"{"team":"billing"}"#), "{out}");
    assert!(out.contains("nightly invoice sync"), "{out}");

    let verified = api.run(&["verify", secret, "--scope", "invoices:write"]);
    verified.assert_code(0);
    assert!(verified.stdout.starts_with("VALID"), "{verified:?}");
}

fn create_with_json_prints_the_whole_answer() {
    let api = Api::start();
    let expires = in_days(30);
    let run = api.run(&[
        "tokens",
        "create",
        "--json",
        "--name",
        "partner",
        "--scope",
        "orders:read",
        "--expires-at",
        &expires,
    ]);
    run.assert_code(0);
    let v = run.json();
    assert_eq!(v["name"], "partner");
    assert_eq!(v["scopes"], serde_json::json!(["orders:read"]));
    assert_eq!(v["expires_at"], expires.as_str());
    assert_eq!(v["status"], "active");
    assert_eq!(v["mode"], "live");
    assert!(v["id"].as_str().unwrap().starts_with("tk_"));
    let secret = v["secret"].as_str().unwrap();
    assert!(tooken_core::credential::is_well_formed(secret));
    assert_eq!(
        v["hint"].as_str().unwrap(),
        format!("tkn_live_…{}", &secret[secret.len() - 4..])
    );
}

fn bad_arguments_are_usage_errors_before_any_request() {
    let api = Api::start();
    // No --name.
    api.run(&["tokens", "create"]).assert_code(2);
    let run = api.run(&["tokens", "create", "--name", "x", "--metadata", "[1]"]);
    run.assert_code(2);
    assert!(run.stderr.contains("JSON object"), "{run:?}");
    let run = api.run(&[
        "tokens",
        "create",
        "--name",
        "x",
        "--expires-in",
        "60",
        "--expires-at",
        "2099-01-01T00:00:00Z",
    ]);
    run.assert_code(2);
    let run = api.run(&["tokens", "update", "tk_whatever"]);
    run.assert_code(2);
    assert!(run.error_line().contains("nothing to update"), "{run:?}");
    // Nothing was created by any of them.
    let list = api.run(&["tokens", "list", "--json"]);
    assert_eq!(list.json()["data"], serde_json::json!([]));
}

fn the_api_refusing_is_exit_1_with_its_message() {
    let api = Api::start();
    let run = api.run(&["tokens", "create", "--name", "x", "--scope", "Not A Scope"]);
    run.assert_code(1);
    let line = run.error_line();
    assert!(
        line.contains("invalid_request") && line.contains("scopes"),
        "{line}"
    );

    let run = api.run(&["tokens", "get", "tk_01aaaaaaaaaaaaaaaaaaaaaaaa"]);
    run.assert_code(1);
    assert!(run.error_line().contains("not_found"), "{run:?}");

    // Well-formed, but no such key: the API says 401.
    let unknown = tooken_core::Credential::generate("tok", tooken_core::Mode::Live);
    let run = api.run_as(unknown.expose(), &["whoami"]);
    run.assert_code(1);
    assert!(run.error_line().contains("unauthorized"), "{run:?}");
}

fn list_shows_a_table_json_filters_and_follows_the_cursor() {
    let api = Api::start();
    let (a1, a1_secret) = api.create_token(&["--name", "alpha-1", "--scope", "x:read"]);
    let (_a2, _) = api.create_token(&["--name", "alpha-2", "--scope", "y:read"]);
    let (b1, _) = api.create_token(&["--name", "beta-1", "--scope", "x:read"]);
    api.run(&["tokens", "revoke", &b1]).assert_code(0);

    let table = api.run(&["tokens", "list"]);
    table.assert_code(0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATUS"),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 4, "a header and three tokens: {lines:?}");
    assert!(
        lines[1].contains("beta-1") && lines[1].contains("revoked"),
        "newest first"
    );
    let hint = format!("tkn_live_…{}", &a1_secret[a1_secret.len() - 4..]);
    assert!(table.stdout.contains(&hint), "{}", table.stdout);
    assert!(!table.stdout.contains(&a1_secret), "never the secret");

    let page = api
        .run(&["tokens", "list", "--limit", "2", "--json"])
        .json();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = api
        .run(&[
            "tokens",
            "list",
            "--limit",
            "2",
            "--starting-after",
            &cursor,
            "--json",
        ])
        .json();
    assert_eq!(rest["data"][0]["id"], a1.as_str());
    assert_eq!(rest["has_more"], false);

    let all = api
        .run(&["tokens", "list", "--limit", "1", "--all", "--json"])
        .json();
    let names: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["beta-1", "alpha-2", "alpha-1"]);
    assert_eq!(all["has_more"], false);

    let revoked = api
        .run(&["tokens", "list", "--status", "revoked", "--json"])
        .json();
    assert_eq!(revoked["data"].as_array().unwrap().len(), 1);
    assert_eq!(revoked["data"][0]["id"], b1.as_str());

    let named = api
        .run(&["tokens", "list", "--name", "alpha", "--json"])
        .json();
    assert_eq!(named["data"].as_array().unwrap().len(), 2);

    let scoped = api
        .run(&["tokens", "list", "--scope", "x:read", "--status", "active"])
        .stdout;
    assert!(
        scoped.contains("alpha-1") && !scoped.contains("alpha-2"),
        "{scoped}"
    );

    let none = api.run(&["tokens", "list", "--name", "zzz"]);
    none.assert_code(0);
    assert_eq!(none.stdout, "No tokens.\n");
}

fn get_and_update_show_the_token() {
    let api = Api::start();
    let expires = in_days(60);
    let (id, _) = api.create_token(&[
        "--name",
        "old-name",
        "--description",
        "to be cleared",
        "--expires-in",
        "1h",
    ]);

    let got = api.run(&["tokens", "get", &id]);
    got.assert_code(0);
    assert!(got.stdout.contains("id:") && got.stdout.contains(&id));
    assert!(got.stdout.contains("old-name") && got.stdout.contains("active"));
    assert_eq!(
        api.run(&["tokens", "get", &id, "--json"]).json()["id"],
        id.as_str()
    );

    let updated = api
        .run(&[
            "tokens",
            "update",
            &id,
            "--json",
            "--name",
            "new-name",
            "--clear-description",
            "--scope",
            "reports:read",
            "--metadata",
            r#"{"tier":2}"#,
            "--expires-at",
            &expires,
        ])
        .json();
    assert_eq!(updated["name"], "new-name");
    assert_eq!(updated["description"], serde_json::Value::Null);
    assert_eq!(updated["scopes"], serde_json::json!(["reports:read"]));
    assert_eq!(updated["metadata"], serde_json::json!({"tier": 2}));
    assert_eq!(updated["expires_at"], expires.as_str());

    // What the server holds afterwards, not just what it answered.
    let table = api.run(&["tokens", "update", &id, "--no-expiry"]);
    table.assert_code(0);
    assert!(table.stdout.contains("new-name"), "{table:?}");
    let stored = api.run(&["tokens", "get", &id, "--json"]).json();
    assert_eq!(stored["expires_at"], serde_json::Value::Null);
    assert_eq!(stored["scopes"], serde_json::json!(["reports:read"]));
}

fn rotate_replaces_the_secret_with_an_optional_grace_period() {
    let api = Api::start();
    let (id, first) = api.create_token(&["--name", "rotating"]);

    let run = api.run(&["tokens", "rotate", &id, "--grace-period", "1h"]);
    run.assert_code(0);
    assert!(run.stdout.contains("shown only this once"), "{run:?}");
    let second = run
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("tkn_live_"))
        .unwrap()
        .to_owned();
    assert_ne!(second, first);
    api.run(&["verify", &second]).assert_code(0);
    let during_grace = api.run(&["verify", &first]);
    during_grace.assert_code(0);
    assert!(during_grace.stdout.starts_with("VALID"), "{during_grace:?}");

    let third = api.run(&["tokens", "rotate", &id, "--json"]).json();
    assert_eq!(third["id"], id.as_str());
    let third = third["secret"].as_str().unwrap();
    api.run(&["verify", third]).assert_code(0);
    let old = api.run(&["verify", &second]);
    old.assert_code(1);
    assert!(!old.stdout.starts_with("VALID"), "{old:?}");
}

fn revoke_stops_the_token_and_verify_says_so_with_exit_1() {
    let api = Api::start();
    let (id, secret) = api.create_token(&["--name", "doomed", "--scope", "invoices:read"]);

    let ok = api.run(&["verify", &secret, "--scope", "invoices:read"]);
    ok.assert_code(0);
    assert!(
        ok.stdout.starts_with("VALID") && ok.stdout.contains("doomed"),
        "{ok:?}"
    );

    let short = api.run(&["verify", &secret, "--scope", "invoices:write", "--json"]);
    short.assert_code(1);
    assert_eq!(short.json()["code"], "INSUFFICIENT_SCOPE");

    let revoked = api.run(&["tokens", "revoke", &id, "--reason", "leaked in a log"]);
    revoked.assert_code(0);
    assert!(revoked.stdout.contains("Revoked") && revoked.stdout.contains(&id));
    let again = api.run(&["tokens", "revoke", &id, "--json"]).json();
    assert_eq!(again["status"], "revoked", "revoking is idempotent");

    let after = api.run(&["verify", &secret]);
    after.assert_code(1);
    assert!(after.stdout.starts_with("REVOKED"), "{after:?}");
    assert!(
        after.stderr.is_empty(),
        "a verdict, not an error: {after:?}"
    );
    let json = api.run(&["verify", &secret, "--json"]);
    json.assert_code(1);
    assert_eq!(json.json()["valid"], false);
    assert_eq!(json.json()["code"], "REVOKED");

    let garbage = api.run(&["verify", "tkn_live_not-a-token"]);
    garbage.assert_code(1);
    assert!(garbage.stdout.starts_with("MALFORMED"), "{garbage:?}");
}

fn verify_reads_the_token_from_stdin_to_keep_it_out_of_history() {
    let api = Api::start();
    let (_, secret) = api.create_token(&["--name", "piped"]);
    let run = api.run_with_stdin(&["verify"], &format!("{secret}\n"));
    run.assert_code(0);
    assert!(run.stdout.starts_with("VALID"), "{run:?}");
    let run = api.run_with_stdin(&["verify", "-"], &format!("{secret}\n"));
    run.assert_code(0);
    let run = api.run_with_stdin(&["verify"], "");
    run.assert_code(2);
}

fn whoami_describes_the_credential() {
    let api = Api::start();
    let run = api.run(&["whoami"]);
    run.assert_code(0);
    let hint = format!("tok_live_…{}", &api.key[api.key.len() - 4..]);
    assert!(
        run.stdout.contains("API key") && run.stdout.contains(&hint),
        "{run:?}"
    );
    assert!(run.stdout.contains("default"), "{run:?}");
    assert!(!run.stdout.contains(&api.key), "never the secret");
    let v = api.run(&["whoami", "--json"]).json();
    assert_eq!(v["kind"], "api_key");
    assert_eq!(v["hint"], hint.as_str());
    assert_eq!(v["workspace"]["name"], "default");
    assert_eq!(v["mode"], "live");

    let (_, token) = api.create_token(&["--name", "reader", "--scope", "tokens:read"]);
    let v = api.run_as(&token, &["whoami", "--json"]).json();
    assert_eq!(v["kind"], "token");
    assert_eq!(v["scopes"], serde_json::json!(["tokens:read"]));
    // A token without tokens:write cannot create tokens: the API says 403.
    let denied = api.run_as(&token, &["tokens", "create", "--name", "nope"]);
    denied.assert_code(1);
    assert!(denied.error_line().contains("tokens:write"), "{denied:?}");
}

fn a_missing_api_key_is_a_clear_usage_error_not_a_401() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["tokens", "list"][..],
        &["whoami"],
        &["verify", "tkn_live_x"],
        &["audit", "list"],
    ] {
        let run = tooken(dir.path(), &[("TOOKEN_URL", "http://127.0.0.1:9")], args);
        run.assert_code(2);
        let line = run.error_line();
        assert!(line.contains("TOOKEN_API_KEY is not set"), "{line}");
        assert!(
            !line.contains("401") && !line.contains("unauthorized"),
            "{line}"
        );
    }
    let empty = tooken(dir.path(), &[("TOOKEN_API_KEY", "")], &["whoami"]);
    empty.assert_code(2);
    assert!(empty.error_line().contains("TOOKEN_API_KEY"));
}

fn an_unreachable_server_is_exit_2() {
    // A port held but never listening: connections are refused.
    let refusing = tooken_testkit::RefusingPort::new();
    let url = refusing.url();
    let dir = tempfile::tempdir().unwrap();
    let key = tooken_core::Credential::generate("tok", tooken_core::Mode::Live);
    for args in [&["tokens", "list"][..], &["whoami"], &["audit", "export"]] {
        let run = tooken(
            dir.path(),
            &[("TOOKEN_URL", &url), ("TOOKEN_API_KEY", key.expose())],
            args,
        );
        run.assert_code(2);
        let line = run.error_line();
        assert!(line.contains("cannot reach Tooken"), "{line}");
        assert!(line.contains(&url), "names where it tried: {line}");
        assert!(!line.contains(key.expose()), "{line}");
    }

    let bad = tooken(
        dir.path(),
        &[
            ("TOOKEN_URL", "not a url"),
            ("TOOKEN_API_KEY", key.expose()),
        ],
        &["whoami"],
    );
    bad.assert_code(2);
    assert!(bad.error_line().contains("TOOKEN_URL"), "{bad:?}");
}

fn there_is_no_api_key_flag() {
    let dir = tempfile::tempdir().unwrap();
    let run = tooken(dir.path(), &[], &["whoami", "--api-key", "tok_live_x"]);
    run.assert_code(2);
    assert!(run.stderr.contains("unexpected argument"), "{run:?}");
}

fn completions_are_printed_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let run = tooken(dir.path(), &[], &["completions", shell]);
        run.assert_code(0);
        assert!(run.stdout.len() > 1000, "{shell}: {}", run.stdout.len());
        for word in ["tokens", "verify", "scan", "rotate", "grace-period"] {
            assert!(run.stdout.contains(word), "{shell} completes {word}");
        }
    }
    tooken(dir.path(), &[], &["completions", "tcsh"]).assert_code(2);
}

tooken_testkit::tests! {
    fn create_shows_the_secret_once_and_it_verifies,
    fn create_with_json_prints_the_whole_answer,
    fn bad_arguments_are_usage_errors_before_any_request,
    fn the_api_refusing_is_exit_1_with_its_message,
    fn list_shows_a_table_json_filters_and_follows_the_cursor,
    fn get_and_update_show_the_token,
    fn rotate_replaces_the_secret_with_an_optional_grace_period,
    fn revoke_stops_the_token_and_verify_says_so_with_exit_1,
    fn verify_reads_the_token_from_stdin_to_keep_it_out_of_history,
    fn whoami_describes_the_credential,
    fn a_missing_api_key_is_a_clear_usage_error_not_a_401,
    fn an_unreachable_server_is_exit_2,
    fn there_is_no_api_key_flag,
    fn completions_are_printed_for_bash_zsh_and_fish,
}
