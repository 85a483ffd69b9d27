//! What the load harness (`src/main.rs`) and the micro-benchmarks
//! (`benches/core.rs`) share: seeding a fresh store.

use tooken_core::audit::Actor;
use tooken_core::text::Name;
use tooken_core::{Clock, Credential, Mode, Scope, SystemClock};
use tooken_store::{AuditContext, NewApiKey, NewToken, Store};

/// Tokens per transaction while seeding.
const SEED_BATCH: usize = 10_000;

/// Creates a workspace, an API key and `n` tokens (scope `bench:read`)
/// through the store's bulk insert, many per transaction; returns the key
/// and the tokens' ids and secrets.
pub async fn seed(url: &str, n: usize) -> anyhow::Result<(String, Vec<(String, String)>)> {
    let store = Store::open(url).await?;
    let now = SystemClock.now();
    let ctx = AuditContext::new(Actor::system());
    let ws = store
        .create_workspace(&"default".parse()?, &ctx, now)
        .await?;
    let name = Name::parse("bench")?;
    let key = Credential::generate("tok", Mode::Live);
    store
        .create_api_key(
            NewApiKey {
                workspace_id: &ws.id,
                mode: Mode::Live,
                name: &name,
                secret_hash: key.hash(),
                hint: key.hint(),
            },
            &ctx,
            now,
        )
        .await?;
    let scope = Scope::parse("bench:read")?;
    let mut tokens = Vec::with_capacity(n);
    for start in (0..n).step_by(SEED_BATCH) {
        let count = SEED_BATCH.min(n - start);
        let secrets: Vec<Credential> = (0..count)
            .map(|_| Credential::generate("tkn", Mode::Live))
            .collect();
        let new = secrets
            .iter()
            .map(|c| NewToken {
                workspace_id: ws.id.clone(),
                mode: Mode::Live,
                name: name.clone(),
                description: None,
                scopes: vec![scope.clone()],
                metadata: None,
                secret_hash: c.hash(),
                hint: c.hint(),
                created_by: "bench".into(),
                parent_id: None,
                expires_at: None,
            })
            .collect();
        let made = store.insert_tokens(new, &ctx, now).await?;
        tokens.extend(
            made.into_iter()
                .zip(secrets)
                .map(|(t, c)| (t.id, c.expose().to_owned())),
        );
    }
    store.close().await;
    Ok((key.expose().to_owned(), tokens))
}
