//! Two nodes of one service, in-process on one PostgreSQL database and on
//! one clock: what depends on time is moved, not waited for. (The nodes as
//! separate processes are in `crates/tooken/tests/cli/multinode.rs`.)

use reqwest::Method;
use tooken_client::VerifyCode;
use tooken_testkit::{Backend, TestApp};

/// Cache hits on `node` so far.
async fn cache_hits(node: &TestApp) -> u64 {
    let (_, _, body) = node.raw(Method::GET, "/metrics", None, None).await;
    body.lines()
        .find_map(|l| l.strip_prefix("tooken_credential_cache_lookups_total{outcome=\"hit\"} "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// A rotated-out secret cached by another node is judged at use time: its
/// grace period ends there too, with no notification to say so.
async fn a_rotation_grace_period_ends_on_the_other_node_too() {
    let a = TestApp::on(Backend::Postgres).start().await;
    let b = a.another_node().await;
    b.wait_for_change_feed().await;
    let t = a.token("graceful", &[]).await;
    let rotated = a.client.rotate_token(&t.token.id, 300).await.unwrap();
    assert_eq!(b.verify_code(&rotated.secret).await, VerifyCode::Valid);
    assert_eq!(
        b.verify_code(&t.secret).await,
        VerifyCode::Valid,
        "in its grace period"
    );
    // Asked again, B answers from its cache (the API key's lookup and the
    // old secret's both hit).
    let hits = cache_hits(&b).await;
    assert_eq!(b.verify_code(&t.secret).await, VerifyCode::Valid);
    assert_eq!(
        cache_hits(&b).await,
        hits + 2,
        "both lookups came from B's cache"
    );

    for (advance, expected) in [(299, VerifyCode::Valid), (1, VerifyCode::NotFound)] {
        a.clock.advance(chrono::Duration::seconds(advance));
        assert_eq!(
            b.verify_code(&t.secret).await,
            expected,
            "{advance} s later"
        );
    }
    assert_eq!(b.verify_code(&rotated.secret).await, VerifyCode::Valid);
}

tooken_testkit::tests! {
    #[needs(Postgres)] async a_rotation_grace_period_ends_on_the_other_node_too,
}
