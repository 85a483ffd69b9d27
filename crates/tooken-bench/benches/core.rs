//! Micro-benchmarks of the verification core, without HTTP: parsing a
//! presented credential, hashing it, and judging it (parse + hash + lookup +
//! checks, as `POST /v1/tokens/verify` does) against a SQLite store holding
//! 1,000,000 tokens (`TOOKEN_BENCH_TOKENS` to change).
//!
//! ```sh
//! cargo bench -p tooken-bench --bench core
//! ```

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tooken_core::audit::Actor;
use tooken_core::{Clock, Credential, SecretHash, SystemClock};
use tooken_service::{Caller, CredentialCache, Principal, Service};
use tooken_store::{AuditContext, Store};

struct Setup {
    service: Service,
    uncached: Service,
    caller: Caller,
    secrets: Vec<String>,
    _dir: tempfile::TempDir,
}

async fn setup(n: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let started = std::time::Instant::now();
    let (key, tokens) = tooken_bench::seed(&url, n).await.unwrap();
    eprintln!(
        "seeded {n} tokens in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let store = Store::open(&url).await.unwrap();
    let api_key = store
        .api_key_by_secret(&SecretHash::of(&key))
        .await
        .unwrap()
        .expect("the seeded API key");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let service = Service::new(store.clone(), clock.clone());
    // Room for one entry: every lookup of a different token goes to SQLite.
    let uncached = Service::new(store, clock).with_cache(CredentialCache::with_capacity(1));
    Setup {
        service,
        uncached,
        caller: Caller::new(
            Principal::ApiKey(Arc::new(api_key)),
            AuditContext::new(Actor::system()),
        ),
        secrets: tokens.into_iter().map(|(_, secret)| secret).collect(),
        _dir: dir,
    }
}

fn benches(c: &mut Criterion) {
    let n = std::env::var("TOOKEN_BENCH_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(setup(n));
    let hot = s.secrets[n / 2].clone();

    c.bench_function("credential/parse", |b| {
        b.iter(|| Credential::parse(black_box(&hot)).unwrap())
    });
    let parsed = Credential::parse(&hot).unwrap();
    c.bench_function("credential/hash", |b| b.iter(|| black_box(&parsed).hash()));

    c.bench_function("store/change_marker", |b| {
        b.iter(|| black_box(s.service.credentials().change_marker()))
    });

    let now = SystemClock.now();
    let (service, hot) = (&s.service, &hot);
    c.bench_function("verify_core/same_token_cached", |b| {
        b.to_async(&rt).iter(|| async {
            // The marker is read once per request, as the server does.
            let mut caller = s.caller.clone();
            caller.marker = service.credentials().change_marker();
            let v = service
                .judge(&caller, black_box(hot), &[], now)
                .await
                .unwrap();
            assert!(v.token.is_some());
        })
    });
    let mut i = 0u64;
    let (uncached, secrets) = (&s.uncached, &s.secrets);
    c.bench_function("verify_core/random_token_from_store", |b| {
        b.to_async(&rt).iter(|| {
            // A different token each time, spread over all n.
            i = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let secret = &secrets[(i % n as u64) as usize];
            let mut caller = s.caller.clone();
            async move {
                caller.marker = uncached.credentials().change_marker();
                let v = uncached
                    .judge(&caller, black_box(secret), &[], now)
                    .await
                    .unwrap();
                assert!(v.token.is_some());
            }
        })
    });
}

criterion_group!(core, benches);
criterion_main!(core);
