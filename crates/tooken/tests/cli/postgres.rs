//! `tooken serve` on PostgreSQL: starting together, refusing a newer
//! schema or an unreachable database, TLS per `sslmode`, and riding out a
//! database outage.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use tooken_client::{Client, CreateToken, VerifyCode, VerifyRequest};

use crate::helpers::{first_key, status_with};
use crate::nodes::{
    admin_ok, database, eventually, metric, named, query, run_to_exit, start_node, through,
    upstream_of, Proxy,
};

async fn nodes_starting_together_on_an_empty_database_bootstrap_it_once() {
    for round in 0..3 {
        let db = database().await;
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| start_node(dir.path(), &db.url, &[]));
            let b = s.spawn(|| start_node(dir.path(), &db.url, &[]));
            (a.join().unwrap(), b.join().unwrap())
        });
        // Both are up and serving.
        for node in [&a, &b] {
            let health = reqwest::get(format!("{}/healthz", node.url)).await.unwrap();
            assert_eq!(health.status(), 200);
        }
        let outputs: Vec<String> = [a, b]
            .into_iter()
            .map(|node| {
                let (status, out) = node.stop_with("TERM");
                assert!(status.success(), "round {round}: {status:?}");
                out
            })
            .collect();
        let printed: Vec<&String> = outputs.iter().filter(|o| o.contains("tok_")).collect();
        assert_eq!(
            printed.len(),
            1,
            "round {round}: exactly one node prints the first key: {outputs:?}"
        );
        let key = first_key(printed[0]);
        let keys = admin_ok(dir.path(), &db.url, &["api-keys", "list", "--json"]);
        let keys: serde_json::Value = serde_json::from_str(&keys).unwrap();
        assert_eq!(keys.as_array().unwrap().len(), 1, "one first key: {keys}");
        let workspaces = admin_ok(dir.path(), &db.url, &["workspaces", "list", "--json"]);
        let workspaces: serde_json::Value = serde_json::from_str(&workspaces).unwrap();
        assert_eq!(workspaces.as_array().unwrap().len(), 1, "{workspaces}");
        // The key works on a node started afterwards.
        let node = start_node(dir.path(), &db.url, &[]);
        assert_eq!(status_with(&node.url, &key).await, 200);
    }
}

async fn a_node_refuses_a_database_whose_schema_is_newer() {
    let db = database().await;
    let dir = tempfile::tempdir().unwrap();
    admin_ok(dir.path(), &db.url, &["workspaces", "list"]);
    query(
        &db.url,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990001, 'from the future', true, '\\x00'::bytea, 0) RETURNING 'ok'",
    )
    .await;
    let (status, _, err) = run_to_exit(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0", "--database", &db.url],
        Duration::from_secs(30),
    );
    assert!(!status.success());
    assert!(
        err.contains("schema is at version 99990001, newer than this tooken understands"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "one error line: {err}"
    );
}

async fn a_node_pointed_at_a_closed_port_fails_at_start_with_a_clear_message() {
    let refusing = tooken_testkit::RefusingPort::new();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://tooken:s3cret@{}/tooken", refusing.addr);
    let (status, _, err) = run_to_exit(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0", "--database", &url],
        Duration::from_secs(30),
    );
    assert!(!status.success());
    assert!(err.contains("cannot open the store at"), "{err}");
    // At once, on the refusal: not after waiting out a timeout.
    assert!(err.contains("Connection refused"), "{err}");
    assert!(
        !err.contains("s3cret"),
        "the password is not printed: {err}"
    );
}

/// A server that answers PostgreSQL's TLS request with "no".
fn server_without_tls() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 8];
            if conn.read_exact(&mut request).is_ok() {
                let _ = conn.write_all(b"N");
                let _ = conn.read(&mut [0u8; 1024]);
            }
        }
    });
    port
}

async fn sslmode_require_against_a_server_without_tls_fails_at_start() {
    let port = server_without_tls();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://tooken@127.0.0.1:{port}/tooken?sslmode=require");
    let (status, _, err) = run_to_exit(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &url,
            "--database-acquire-timeout-ms",
            "3000",
        ],
        Duration::from_secs(30),
    );
    assert!(!status.success());
    assert!(err.contains("cannot open the store at"), "{err}");
    assert!(err.contains("server does not support TLS"), "{err}");
}

/// Needs a server that offers TLS (`ssl = on`): without one this is
/// reported ignored, or fails under `TOOKEN_TEST_REQUIRE_ALL=1`. Refusing a
/// server without TLS is `sslmode_require_against_a_server_without_tls…`.
async fn tls_to_postgresql_follows_the_urls_sslmode() {
    let db = database().await;
    let dir = tempfile::tempdir().unwrap();
    let with = |mode: &str| {
        let sep = if db.url.contains('?') { '&' } else { '?' };
        named(
            &format!("{}{sep}sslmode={mode}", db.url),
            &format!("tooken-{}", mode.split('&').next().unwrap()),
        )
    };
    // Whether the node's pool sessions are encrypted.
    let encrypted = |mode: &'static str| {
        let url = db.url.clone();
        async move {
            query(
                &url,
                &format!(
                    "SELECT s.ssl::text FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                     WHERE a.datname = current_database() AND a.application_name = 'tooken-{mode}'"
                ),
            )
            .await
        }
    };

    let node = start_node(dir.path(), &with("disable"), &[]);
    let key = first_key(&node.wait_for_stdout("shown only this once"));
    assert_eq!(status_with(&node.url, &key).await, 200);
    let sessions = encrypted("disable").await;
    assert!(!sessions.is_empty() && sessions.iter().all(|s| s == "false"));
    drop(node);

    let node = start_node(dir.path(), &with("prefer"), &[]);
    assert_eq!(status_with(&node.url, &key).await, 200);
    let sessions = encrypted("prefer").await;
    assert!(
        !sessions.is_empty() && sessions.iter().all(|s| s == "true"),
        "prefer uses TLS when the server offers it: {sessions:?}"
    );
    drop(node);

    let node = start_node(dir.path(), &with("require"), &[]);
    assert_eq!(status_with(&node.url, &key).await, 200);
    let sessions = encrypted("require").await;
    assert!(!sessions.is_empty() && sessions.iter().all(|s| s == "true"));
    drop(node);

    // Verifying the certificate: the public roots do not know this
    // server's certificate, so verify-full without sslrootcert fails, and
    // clearly.
    let (status, _, err) = run_to_exit(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &with("verify-full"),
        ],
        Duration::from_secs(30),
    );
    assert!(!status.success());
    assert!(
        err.contains("cannot open the store at") && err.contains("invalid peer certificate"),
        "{err}"
    );
}

async fn a_node_rides_out_a_database_outage_and_recovers_on_its_own() {
    let db = database().await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&upstream_of(&db.url));
    let acquire_timeout = Duration::from_millis(1000);
    let node = start_node(
        dir.path(),
        &through(&db.url, proxy.port),
        &["--database-acquire-timeout-ms", "1000"],
    );
    let key = first_key(&node.wait_for_stdout("shown only this once"));
    let client = Client::new(&node.url, &key).unwrap();
    let (id, secret) = {
        let t = client
            .create_token(&CreateToken {
                name: "before".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        (t.token.id, t.secret)
    };
    let verify = |secret: tooken_core::Secret| {
        let client = client.clone();
        async move {
            client
                .verify(&VerifyRequest {
                    token: secret,
                    scopes: vec![],
                })
                .await
        }
    };
    assert_eq!(
        verify(secret.clone()).await.unwrap().code,
        VerifyCode::Valid
    );
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let request = http.get(format!("{}{path}", node.url));
        async move { request.send().await.unwrap() }
    };
    assert_eq!(get("/readyz").await.status(), 200);

    proxy.stop();
    eventually("/readyz says 503", Duration::from_secs(10), || async {
        get("/readyz").await.status() == 503
    })
    .await;
    eventually(
        "the node stops trusting its cache",
        Duration::from_secs(10),
        || async { metric(&node.url, "tooken_store_change_feed_up ").await == 0.0 },
    )
    .await;
    assert_eq!(get("/healthz").await.status(), 200);
    for round in 0..3 {
        let started = Instant::now();
        let responses = [
            http.get(format!("{}/v1/tokens", node.url))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap(),
            http.post(format!("{}/v1/tokens", node.url))
                .bearer_auth(&key)
                .json(&serde_json::json!({"name": "during"}))
                .send()
                .await
                .unwrap(),
            http.post(format!("{}/v1/tokens/verify", node.url))
                .bearer_auth(&key)
                .json(&serde_json::json!({"token": secret}))
                .send()
                .await
                .unwrap(),
        ];
        for response in responses {
            assert_eq!(response.status(), 503, "round {round}");
            assert_eq!(
                response
                    .headers()
                    .get("retry-after")
                    .unwrap()
                    .to_str()
                    .unwrap(),
                "1"
            );
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"], "unavailable", "{body}");
            assert!(body["message"].is_string(), "{body}");
        }
        // Each waited for a connection at most the acquire timeout.
        assert!(
            started.elapsed() < 3 * acquire_timeout + Duration::from_secs(2),
            "round {round}: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(get("/healthz").await.status(), 200);

    proxy.restart();
    eventually(
        "/readyz says 200 again",
        Duration::from_secs(20),
        || async { get("/readyz").await.status() == 200 },
    )
    .await;
    eventually(
        "the node follows changes again",
        Duration::from_secs(20),
        || async { metric(&node.url, "tooken_store_change_feed_up ").await == 1.0 },
    )
    .await;
    assert_eq!(
        verify(secret.clone()).await.unwrap().code,
        VerifyCode::Valid
    );
    assert_eq!(
        verify(secret.clone()).await.unwrap().code,
        VerifyCode::Valid
    );
    client.revoke_token(&id, None).await.unwrap();
    assert_eq!(verify(secret).await.unwrap().code, VerifyCode::Revoked);
    let after = client
        .create_token(&CreateToken {
            name: "after".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(verify(after.secret).await.unwrap().code, VerifyCode::Valid);
}

tooken_testkit::tests! {
    #[needs(Postgres)] async nodes_starting_together_on_an_empty_database_bootstrap_it_once,
    #[needs(Postgres)] async a_node_refuses_a_database_whose_schema_is_newer,
    async a_node_pointed_at_a_closed_port_fails_at_start_with_a_clear_message,
    async sslmode_require_against_a_server_without_tls_fails_at_start,
    #[needs(PostgresTls)] async tls_to_postgresql_follows_the_urls_sslmode,
    #[needs(Postgres)] async a_node_rides_out_a_database_outage_and_recovers_on_its_own,
}
