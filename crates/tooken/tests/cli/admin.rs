//! `tooken admin api-keys …` on the store a running server uses.

use crate::helpers::{admin, first_key, start_server, status_with};

async fn create_prints_only_the_secret_and_it_works_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), &[], &[]);
    server.wait_for_stdout("shown only this once");
    let (ok, out, _) = admin(
        dir.path(),
        &[
            "api-keys",
            "create",
            "--workspace",
            "default",
            "--mode",
            "test",
            "--name",
            "ci",
        ],
    );
    assert!(ok);
    let secret = out.trim();
    assert_eq!(
        out.lines().count(),
        1,
        "stdout is the secret alone: {out:?}"
    );
    assert!(secret.starts_with("tok_test_"));
    assert_eq!(status_with(&server.url, secret).await, 200);
}

async fn list_shows_keys_as_a_table_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, _) = admin(dir.path(), &["workspaces", "create", "default"]);
    assert!(ok);
    let (_, secret, _) = admin(dir.path(), &["api-keys", "create", "--name", "deploy"]);
    let (ok, table, _) = admin(dir.path(), &["api-keys", "list"]);
    assert!(ok);
    assert!(
        table.contains("deploy") && table.contains("live") && table.contains("never"),
        "{table}"
    );
    let hint = format!("tok_live_…{}", &secret.trim()[secret.trim().len() - 4..]);
    assert!(table.contains(&hint), "{table}");
    assert!(!table.contains(secret.trim()));

    let (ok, json, _) = admin(dir.path(), &["api-keys", "list", "--json"]);
    assert!(ok);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let row = &rows[0];
    for field in ["id", "name", "mode", "hint", "created_at", "last_used_at"] {
        assert!(row.get(field).is_some(), "{field} missing in {row}");
    }
    assert_eq!(row["name"], "deploy");
    assert_eq!(row["hint"], hint);
}

async fn regenerate_and_delete_take_effect_on_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), &[], &[]);
    let first = first_key(&server.wait_for_stdout("shown only this once"));
    let (_, old, _) = admin(dir.path(), &["api-keys", "create", "--name", "rotating"]);
    let old = old.trim().to_owned();
    assert_eq!(status_with(&server.url, &old).await, 200);

    let (_, json, _) = admin(dir.path(), &["api-keys", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let id = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "rotating")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (ok, new, _) = admin(dir.path(), &["api-keys", "regenerate", &id]);
    assert!(ok);
    let new = new.trim().to_owned();
    assert_ne!(new, old);
    assert_eq!(
        status_with(&server.url, &old).await,
        401,
        "the old value is rejected at once"
    );
    assert_eq!(status_with(&server.url, &new).await, 200);

    let (ok, out, _) = admin(dir.path(), &["api-keys", "delete", &id]);
    assert!(ok);
    assert!(out.is_empty(), "delete prints no secret");
    assert_eq!(status_with(&server.url, &new).await, 401);
    assert_eq!(
        status_with(&server.url, &first).await,
        200,
        "other keys are untouched"
    );

    let (ok, _, err) = admin(dir.path(), &["api-keys", "delete", &id]);
    assert!(!ok);
    assert!(err.contains("no API key"), "{err}");
}

async fn bad_admin_input_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = admin(
        dir.path(),
        &["api-keys", "create", "--workspace", "nope", "--name", "x"],
    );
    assert!(!ok);
    assert!(err.contains("no workspace named \"nope\""), "{err}");
    let (ok, _, err) = admin(
        dir.path(),
        &["api-keys", "create", "--mode", "prod", "--name", "x"],
    );
    assert!(!ok);
    assert!(err.contains("live") && err.contains("test"), "{err}");
    let (ok, _, err) = admin(dir.path(), &["api-keys", "regenerate", "key_doesnotexist"]);
    assert!(!ok);
    assert!(err.contains("no API key"), "{err}");
}

async fn audit_verify_reports_intact_and_tampering() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["workspaces", "create", "default"]);
    for name in ["a", "b", "c"] {
        admin(dir.path(), &["api-keys", "create", "--name", name]);
    }
    let (ok, out, _) = admin(dir.path(), &["audit", "verify"]);
    assert!(ok);
    assert!(out.contains("default: intact (4 events)"), "{out}");

    let store = tooken_store::Store::open(&format!(
        "sqlite://{}",
        dir.path().join("tooken.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE audit_events SET details = '{\"name\":\"evil\"}' WHERE seq = 3")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let (ok, out, err) = admin(dir.path(), &["audit", "verify"]);
    assert!(!ok);
    assert!(out.contains("BROKEN at event #3"), "{out}");
    assert!(err.contains("tampered"), "{err}");
}

tooken_testkit::tests! {
    async create_prints_only_the_secret_and_it_works_at_once,
    async list_shows_keys_as_a_table_and_as_json,
    async regenerate_and_delete_take_effect_on_the_next_request,
    async bad_admin_input_is_a_one_line_error,
    async audit_verify_reports_intact_and_tampering,
}
