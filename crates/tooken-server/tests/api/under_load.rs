//! Revocation and regeneration under concurrent load: whatever the caches
//! do, no request sent after the change's response is answered as if the
//! change had not happened.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tooken_client::{Client, VerifyCode, VerifyRequest};
use tooken_core::audit::Actor;
use tooken_core::credential::API_KEY_PREFIX;
use tooken_core::{Clock, Credential, Mode};
use tooken_store::AuditContext;

const CLIENTS: usize = 32;

/// What one request saw: when it was sent, and whether it was let through.
struct Seen {
    sent: Instant,
    accepted: bool,
}

/// Runs `CLIENTS` loops of `attempt` until `stop`; returns what each saw.
/// Each loop waits for its previous answer before sending again.
async fn hammer<F, Fut>(attempt: F, stop: Arc<AtomicBool>, done: Arc<AtomicUsize>) -> Vec<Seen>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (attempt, stop, done) = (attempt.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let sent = Instant::now();
                    let accepted = attempt().await;
                    seen.push(Seen { sent, accepted });
                    done.fetch_add(1, Ordering::SeqCst);
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

async fn wait_for(done: &AtomicUsize, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while done.load(Ordering::SeqCst) < at_least {
        assert!(
            Instant::now() < deadline,
            "load never reached {at_least} requests"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Checks the verdicts around the change acknowledged at `acked`.
fn check(seen: &[Seen], acked: Instant) {
    let before = seen.iter().filter(|s| s.accepted).count();
    assert!(before > 0, "nothing was accepted before the change");
    let after: Vec<_> = seen.iter().filter(|s| s.sent > acked).collect();
    assert!(
        after.len() >= CLIENTS,
        "too few requests after the change: {}",
        after.len()
    );
    let wrong = after.iter().filter(|s| s.accepted).count();
    assert_eq!(
        wrong,
        0,
        "{wrong} of {} requests sent after the change were still accepted",
        after.len()
    );
}

store_test! {
    async fn no_verification_succeeds_after_the_revoke_response(app) {
        for round in 0..3 {
            let issued = app.token(&format!("hot-{round}"), &["invoices:read"]).await;
            let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
            let client = app.client.clone();
            let secret = issued.secret.clone();
            let load = tokio::spawn(hammer(
                move || {
                    let (client, secret) = (client.clone(), secret.clone());
                    async move {
                        let r = client
                            .verify(&VerifyRequest { token: secret, scopes: vec![] })
                            .await
                            .unwrap();
                        assert!(matches!(r.code, VerifyCode::Valid | VerifyCode::Revoked), "{:?}", r.code);
                        r.valid
                    }
                },
                stop.clone(),
                done.clone(),
            ));
            wait_for(&done, 200).await;
            app.client.revoke_token(&issued.token.id, None).await.unwrap();
            let acked = Instant::now();
            let at = done.load(Ordering::SeqCst);
            wait_for(&done, at + 300).await;
            stop.store(true, Ordering::SeqCst);
            check(&load.await.unwrap(), acked);
        }
    }
}

store_test! {
    // Hundreds of refused calls from one address: no brute-force slowdown here.
    async fn no_call_succeeds_with_a_regenerated_key_after_the_change(app with |s: tooken_server::AppState| {
        s.with_auth_limits(tooken_server::throttle::AuthLimits {
            slow_after: u32::MAX,
            block_after: u32::MAX,
            ..Default::default()
        })
    }) {
        let (secret, key) = app.new_api_key(Mode::Live).await;
        let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let client = Client::new(&app.url, &secret).unwrap();
        let load = tokio::spawn(hammer(
            move || {
                let client = client.clone();
                async move {
                    // Accepted, or refused as section 3 says: anything else
                    // (a 429, a 503, a broken connection) fails the test.
                    match client.whoami().await {
                        Ok(_) => true,
                        Err(e) if e.status() == Some(401) => false,
                        Err(e) => panic!("neither accepted nor a 401: {e}"),
                    }
                }
            },
            stop.clone(),
            done.clone(),
        ));
        wait_for(&done, 200).await;
        let fresh = Credential::generate(API_KEY_PREFIX, Mode::Live);
        app.store
            .regenerate_api_key(
                &key.id,
                fresh.hash(),
                fresh.hint(),
                &AuditContext::new(Actor::admin_cli()),
                app.clock.now(),
            )
            .await
            .unwrap()
            .unwrap();
        let acked = Instant::now();
        let at = done.load(Ordering::SeqCst);
        wait_for(&done, at + 300).await;
        stop.store(true, Ordering::SeqCst);
        check(&load.await.unwrap(), acked);
        // The new secret works.
        assert!(Client::new(&app.url, fresh.expose()).unwrap().whoami().await.is_ok());
    }
}
