//! What the load harness (`src/main.rs`) and the micro-benchmarks
//! (`benches/core.rs`) share: seeding a fresh store.

use tooken_core::audit::Actor;
use tooken_core::{Clock, Credential, Mode, SystemClock};
use tooken_store::{AuditContext, NewApiKey, Store};

/// Creates a workspace, an API key and `n` tokens (scope `bench:read`),
/// straight in the store and in large transactions; returns the key and
/// the tokens' ids and secrets.
pub async fn seed(url: &str, n: usize) -> anyhow::Result<(String, Vec<(String, String)>)> {
    let store = Store::open(url).await?;
    let now = SystemClock.now();
    let ctx = AuditContext::new(Actor::system());
    let ws = store.create_workspace("default", &ctx, now).await?;
    let key = Credential::generate("tok", Mode::Live);
    store
        .create_api_key(
            NewApiKey {
                workspace_id: &ws.id,
                mode: Mode::Live,
                name: "bench",
                secret_hash: key.hash(),
                hint: key.hint(),
            },
            &ctx,
            now,
        )
        .await?;
    let mut tokens = Vec::with_capacity(n);
    let ms = now.timestamp_millis();
    for chunk_start in (0..n).step_by(50_000) {
        let mut tx = store.pool().begin().await?;
        // 100 rows (400 binds) per statement: binding costs grow with the
        // number of placeholders in a statement.
        for batch_start in (chunk_start..(chunk_start + 50_000).min(n)).step_by(100) {
            let count = 100.min(n - batch_start);
            let mut sql = String::from(
                "INSERT INTO tokens (id, workspace_id, mode, name, scopes, secret_hash, hint, created_at, created_by) VALUES ",
            );
            let mut rows = Vec::with_capacity(count);
            for i in 0..count {
                let c = Credential::generate("tkn", Mode::Live);
                let id = tooken_core::id::new_id(tooken_core::id::IdKind::Token, now);
                let p = i * 4;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${}, '{}', 'live', 'bench', '[\"bench:read\"]', ${}, ${}, {ms}, ${})",
                    p + 1,
                    ws.id,
                    p + 2,
                    p + 3,
                    p + 4
                ));
                rows.push((id.clone(), c.hash().as_bytes().to_vec(), c.hint()));
                tokens.push((id, c.expose().to_owned()));
            }
            let mut q = sqlx::query(&sql);
            for (id, hash, hint) in &rows {
                q = q
                    .bind(id.as_str())
                    .bind(hash.as_slice())
                    .bind(hint.as_str())
                    .bind("bench");
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    store.close().await;
    Ok((key.expose().to_owned(), tokens))
}
