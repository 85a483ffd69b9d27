//! Several `tooken serve` nodes on one PostgreSQL database: what one node
//! writes is in force on the others at the very next request, a node whose
//! change listener is cut bypasses its cache, concurrent writers keep the
//! audit chains whole. Each check is repeated so that a race would show.

use std::time::Duration;

use tooken_client::{Client, VerifyCode, VerifyRequest};

use crate::helpers::{first_key, status_with, Server};
use crate::nodes::{
    admin_ok, database, eventually, metric, named, query, sessions_named, start_node, TestDatabase,
};

const ROUNDS: usize = 20;

/// Nodes A and B on one fresh database; A bootstrapped it.
struct Pair {
    a: Server,
    b: Server,
    key: String,
    db: TestDatabase,
    dir: tempfile::TempDir,
}

async fn two_nodes() -> Pair {
    let db = database().await;
    let dir = tempfile::tempdir().unwrap();
    let a = start_node(dir.path(), &named(&db.url, "tooken-a"), &[]);
    let key = first_key(&a.wait_for_stdout("shown only this once"));
    let b = start_node(dir.path(), &named(&db.url, "tooken-b"), &[]);
    Pair { a, b, key, db, dir }
}

impl Pair {
    fn client(&self, node: &Server) -> Client {
        Client::new(&node.url, &self.key).unwrap()
    }

    async fn create(&self, node: &Server, name: &str) -> (String, String) {
        let t = self
            .client(node)
            .create_token(&tooken_testkit::named(name))
            .await
            .unwrap();
        (t.token.id, t.secret.expose().to_owned())
    }

    async fn code(&self, node: &Server, secret: &str) -> VerifyCode {
        self.client(node)
            .verify(&VerifyRequest {
                token: secret.into(),
                scopes: vec![],
            })
            .await
            .unwrap()
            .code
    }

    /// Verifies on `node` until the answer came from its cache at least
    /// once, so that a later rejection proves the cache was invalidated.
    async fn warm(&self, node: &Server, secret: &str) {
        let hits = cache_hits(node).await;
        assert_eq!(self.code(node, secret).await, VerifyCode::Valid);
        assert_eq!(self.code(node, secret).await, VerifyCode::Valid);
        assert!(
            cache_hits(node).await > hits,
            "the second verification on {} was answered from the cache",
            node.url
        );
    }

    /// The id of the workspace key named `name`.
    fn key_id(&self, name: &str) -> String {
        let out = admin_ok(
            self.dir.path(),
            &self.db.url,
            &["api-keys", "list", "--json"],
        );
        let keys: serde_json::Value = serde_json::from_str(&out).unwrap();
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap_or_else(|| panic!("no key {name} in {out}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

async fn cache_hits(node: &Server) -> f64 {
    metric(
        &node.url,
        "tooken_credential_cache_lookups_total{outcome=\"hit\"}",
    )
    .await
}

async fn whoami_status(node: &Server, credential: &str) -> u16 {
    tooken_testkit::get_status(&node.url, "/v1/whoami", credential)
        .await
        .as_u16()
}

async fn a_token_created_on_one_node_verifies_on_another_at_once() {
    let p = two_nodes().await;
    for i in 0..ROUNDS {
        let (writer, reader) = if i % 2 == 0 {
            (&p.a, &p.b)
        } else {
            (&p.b, &p.a)
        };
        let (_, secret) = p.create(writer, &format!("t{i}")).await;
        assert_eq!(
            p.code(reader, &secret).await,
            VerifyCode::Valid,
            "round {i}"
        );
        assert_eq!(whoami_status(reader, &secret).await, 200, "round {i}");
    }
}

async fn a_revocation_on_one_node_is_rejected_by_another_on_the_next_request() {
    let p = two_nodes().await;
    for i in 0..ROUNDS {
        let (id, secret) = p.create(&p.a, &format!("t{i}")).await;
        p.warm(&p.b, &secret).await;
        assert_eq!(whoami_status(&p.b, &secret).await, 200);
        p.client(&p.a).revoke_token(&id, None).await.unwrap();
        assert_eq!(
            p.code(&p.b, &secret).await,
            VerifyCode::Revoked,
            "round {i}: B answered from a stale cache"
        );
        assert_eq!(whoami_status(&p.b, &secret).await, 401, "round {i}");
    }
}

async fn a_rotation_on_one_node_retires_the_old_secret_on_another_at_once() {
    let p = two_nodes().await;
    for i in 0..ROUNDS {
        let (id, old) = p.create(&p.a, &format!("t{i}")).await;
        p.warm(&p.b, &old).await;
        let rotated = p.client(&p.a).rotate_token(&id, 0).await.unwrap();
        assert_ne!(
            p.code(&p.b, &old).await,
            VerifyCode::Valid,
            "round {i}: B still accepts the rotated-out secret"
        );
        assert_eq!(whoami_status(&p.b, &old).await, 401, "round {i}");
        assert_eq!(p.code(&p.b, &rotated.secret).await, VerifyCode::Valid);
    }
}

async fn regenerating_or_deleting_an_api_key_is_in_force_on_every_node_at_once() {
    let p = two_nodes().await;
    let (dir, url) = (p.dir.path(), p.db.url.as_str());
    let mut secret = admin_ok(dir, url, &["api-keys", "create", "--name", "rolling"])
        .trim()
        .to_owned();
    let id = p.key_id("rolling");
    for i in 0..ROUNDS {
        // Cached on both nodes.
        for node in [&p.a, &p.b] {
            assert_eq!(status_with(&node.url, &secret).await, 200);
            assert_eq!(status_with(&node.url, &secret).await, 200);
        }
        let fresh = admin_ok(dir, url, &["api-keys", "regenerate", &id])
            .trim()
            .to_owned();
        for node in [&p.b, &p.a] {
            assert_eq!(
                status_with(&node.url, &secret).await,
                401,
                "round {i}: {} still accepts the regenerated-away key",
                node.url
            );
            assert_eq!(status_with(&node.url, &fresh).await, 200);
        }
        secret = fresh;
    }
    for i in 0..ROUNDS / 2 {
        let name = format!("doomed-{i}");
        let doomed = admin_ok(dir, url, &["api-keys", "create", "--name", &name])
            .trim()
            .to_owned();
        let doomed_id = p.key_id(&name);
        for node in [&p.a, &p.b] {
            assert_eq!(status_with(&node.url, &doomed).await, 200);
            assert_eq!(status_with(&node.url, &doomed).await, 200);
        }
        admin_ok(dir, url, &["api-keys", "delete", &doomed_id]);
        for node in [&p.b, &p.a] {
            assert_eq!(
                status_with(&node.url, &doomed).await,
                401,
                "round {i}: {} still accepts the deleted key",
                node.url
            );
        }
    }
}

async fn a_node_whose_listener_is_cut_bypasses_its_cache_until_it_is_back() {
    let p = two_nodes().await;
    let admin_url = p.db.url.clone();
    let feed_up = "tooken_store_change_feed_up ";
    for round in 0..3 {
        let (id, secret) = p.create(&p.a, &format!("cut-{round}")).await;
        p.warm(&p.b, &secret).await;

        // Cut B's listener (and wait until its backend is gone).
        let killed = query(
            &admin_url,
            "SELECT pg_terminate_backend(pid, 5000)::text FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'tooken-b-listener'",
        )
        .await;
        assert_eq!(
            killed,
            ["true"],
            "round {round}: B's listener was found and cut"
        );
        p.client(&p.a).revoke_token(&id, None).await.unwrap();
        assert_eq!(
            p.code(&p.b, &secret).await,
            VerifyCode::Revoked,
            "round {round}: B served a revoked token from its cache while deaf"
        );

        // B resubscribes on its own.
        eventually("B's listener is back", Duration::from_secs(15), || async {
            sessions_named(&admin_url, "tooken-b-listener").await == 1
                && metric(&p.b.url, feed_up).await == 1.0
        })
        .await;

        // Caching works again, and is still correct.
        let (id, secret) = p.create(&p.a, &format!("after-{round}")).await;
        p.warm(&p.b, &secret).await;
        p.client(&p.a).revoke_token(&id, None).await.unwrap();
        assert_eq!(p.code(&p.b, &secret).await, VerifyCode::Revoked);
    }
}

async fn concurrent_writers_on_two_nodes_keep_every_audit_chain_whole() {
    let p = two_nodes().await;
    let (dir, url) = (p.dir.path(), p.db.url.as_str());
    admin_ok(dir, url, &["workspaces", "create", "other"]);
    let other_key = admin_ok(
        dir,
        url,
        &["api-keys", "create", "--workspace", "other", "--name", "k"],
    )
    .trim()
    .to_owned();
    let mut workers = Vec::new();
    for node in [&p.a, &p.b] {
        for key in [&p.key, &other_key] {
            for w in 0..4 {
                let client = Client::new(&node.url, key).unwrap();
                workers.push(tokio::spawn(async move {
                    for i in 0..8 {
                        let t = client
                            .create_token(&tooken_testkit::named(format!("w{w}-{i}")))
                            .await
                            .unwrap();
                        client
                            .revoke_token(&t.token.id, Some("churn"))
                            .await
                            .unwrap();
                    }
                }));
            }
        }
    }
    for w in workers {
        w.await.unwrap();
    }
    let out = admin_ok(dir, url, &["audit", "verify"]);
    for workspace in ["default", "other"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{workspace}: ")))
            .unwrap_or_else(|| panic!("no chain for {workspace} in {out}"));
        assert!(line.contains("intact"), "{out}");
        // 2 nodes × 4 workers × 8 × (create + revoke), plus its own setup.
        let events: usize = line
            .split('(')
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(events >= 2 * 4 * 8 * 2, "{line}");
    }
    assert!(!out.contains("BROKEN"), "{out}");
}

tooken_testkit::tests! {
    #[needs(Postgres)] async a_token_created_on_one_node_verifies_on_another_at_once,
    #[needs(Postgres)] async a_revocation_on_one_node_is_rejected_by_another_on_the_next_request,
    #[needs(Postgres)] async a_rotation_on_one_node_retires_the_old_secret_on_another_at_once,
    #[needs(Postgres)] async regenerating_or_deleting_an_api_key_is_in_force_on_every_node_at_once,
    #[needs(Postgres)] async a_node_whose_listener_is_cut_bypasses_its_cache_until_it_is_back,
    #[needs(Postgres)] #[threads(2)] async concurrent_writers_on_two_nodes_keep_every_audit_chain_whole,
}
