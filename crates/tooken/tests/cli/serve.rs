//! `tooken serve`: first start, configuration, shutdown, durability.

use sqlx::Connection;
use tooken_client::Client;
use tooken_testkit::named;

use crate::helpers::{db_path, first_key, start_server, status_with};

async fn first_start_creates_the_store_and_prints_a_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), &[], &[]);
    let out = server.wait_for_stdout("shown only this once");
    assert!(
        db_path(dir.path()).exists(),
        "tooken.db is created in the current directory"
    );
    let key = first_key(&out);
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    assert!(
        out.contains(&format!("http://127.0.0.1:{port}/dashboard/setup/")),
        "the setup link names the address tooken listens on: {out}"
    );
    assert!(tooken_core::credential::is_well_formed(&key));
    assert_eq!(status_with(&server.url, &key).await, 200);
    let (status, _) = server.stop_with("INT");
    assert!(status.success(), "Ctrl-C is a clean exit: {status:?}");

    let again = start_server(dir.path(), &[], &[]);
    assert_eq!(
        status_with(&again.url, &key).await,
        200,
        "the key survives restarts"
    );
    let (_, out) = again.stop_with("TERM");
    assert!(!out.contains("tok_"), "later starts print no key: {out:?}");
}

async fn database_and_listen_come_from_flags_or_environment() {
    let dir = tempfile::tempdir().unwrap();
    let flag_db = dir.path().join("flag.db");
    let server = start_server(
        dir.path(),
        &["--database", &format!("sqlite://{}", flag_db.display())],
        &[],
    );
    server.wait_for_stdout("shown only this once");
    assert!(flag_db.exists());
    server.stop_with("TERM");

    let env_db = dir.path().join("env.db");
    let env_url = format!("sqlite://{}", env_db.display());
    let server = start_server(
        dir.path(),
        &[],
        &[
            ("TOOKEN_DATABASE_URL", env_url.as_str()),
            ("TOOKEN_LISTEN", "127.0.0.1:0"),
        ],
    );
    server.wait_for_stdout("shown only this once");
    assert!(env_db.exists());
    assert!(
        !db_path(dir.path()).exists(),
        "the default file is not touched"
    );
    server.stop_with("TERM");
}

async fn a_bad_database_url_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::helpers::BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            "mysql://nowhere/x",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unsupported database URL"), "{err}");
}

async fn an_acknowledged_create_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), &[], &[]);
    let key = first_key(&server.wait_for_stdout("shown only this once"));
    let client = Client::new(&server.url, &key).unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        let t = client.create_token(&named(format!("t{i}"))).await.unwrap();
        ids.push(t.token.id);
    }
    // Killed right after the last 201: no shutdown, no flush.
    server.kill();
    let server = start_server(dir.path(), &[], &[]);
    let client = Client::new(&server.url, &key).unwrap();
    for id in &ids {
        client.get_token(id).await.unwrap();
    }
}

/// A stop on SIGINT writes out what is gathered in memory. The failure
/// proves it was the stop that wrote: while serving, a window of failures
/// is written only once a minute has passed since its first one.
async fn graceful_shutdown_writes_out_usage() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), &[], &[]);
    let key = first_key(&server.wait_for_stdout("shown only this once"));
    assert_eq!(status_with(&server.url, &key).await, 200);
    let stranger = tooken_core::Credential::generate("tok", tooken_core::Mode::Live);
    assert_eq!(status_with(&server.url, stranger.expose()).await, 401);
    let (status, _) = server.stop_with("INT");
    assert!(status.success());
    let (ok, out, _) = crate::helpers::admin(dir.path(), &["api-keys", "list", "--json"]);
    assert!(ok);
    let keys: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(keys[0]["last_used_at"].is_string(), "{keys}");
    let url = format!("sqlite://{}?mode=ro", db_path(dir.path()).display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let failures: Vec<String> =
        sqlx::query_scalar("SELECT details FROM audit_events WHERE action = 'auth.failed'")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains(&stranger.hint()), "{failures:?}");
}

tooken_testkit::tests! {
    async first_start_creates_the_store_and_prints_a_key_once,
    async database_and_listen_come_from_flags_or_environment,
    async a_bad_database_url_is_a_clear_error,
    async an_acknowledged_create_survives_sigkill,
    async graceful_shutdown_writes_out_usage,
}
