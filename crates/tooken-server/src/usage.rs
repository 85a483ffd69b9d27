//! Last-use times of API keys and tokens, gathered in memory and written to
//! the store in batches, so that verifying or calling the API never costs a
//! database write.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tooken_store::Store;

/// How often gathered use is written to the store.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct Usage {
    // std Mutex: held for a map insert only, never across an await.
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    api_keys: HashMap<String, DateTime<Utc>>,
    tokens: HashMap<String, DateTime<Utc>>,
}

impl Usage {
    pub fn record_api_key(&self, id: &str, at: DateTime<Utc>) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        record(&mut p.api_keys, id, at);
    }

    pub fn record_token(&self, id: &str, at: DateTime<Utc>) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        record(&mut p.tokens, id, at);
    }

    /// Writes everything gathered so far. On failure the batch is put back,
    /// to be tried again with the next flush.
    pub async fn flush(&self, store: &Store) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let keys: Vec<_> = batch
            .api_keys
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let tokens: Vec<_> = batch.tokens.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let result = async {
            store.record_api_key_use(&keys).await?;
            store.record_token_use(&tokens).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record usage; will retry");
            for (id, at) in keys {
                self.record_api_key(&id, at);
            }
            for (id, at) in tokens {
                self.record_token(&id, at);
            }
        }
    }
}

fn record(map: &mut HashMap<String, DateTime<Utc>>, id: &str, at: DateTime<Utc>) {
    match map.get_mut(id) {
        Some(t) if *t >= at => {}
        Some(t) => *t = at,
        None => {
            map.insert(id.to_owned(), at);
        }
    }
}
