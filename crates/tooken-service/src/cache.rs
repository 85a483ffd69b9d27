//! Credentials looked up by secret hash, kept in memory so that
//! authenticating and verifying cost no database round trip.
//!
//! The cache is trusted only while the store's change marker (see
//! `Store::change_marker`) is the one it was filled under: every request
//! reads the marker once, before its first lookup, and a different one
//! empties the cache. Writes that
//! can make an entry wrong (revoke, rotate, update, regenerate, delete)
//! change the marker in the same transaction, so the very next request
//! after such a write, on this node, misses. When the store cannot give a
//! marker (PostgreSQL's notification connection is down) the cache is
//! bypassed. Entries are whole records: expiry and grace periods are judged
//! at use time, so they need no invalidation. Only positive lookups are
//! cached, so a newly created credential is never hidden by an old miss.
//!
//! Entries are keyed by [`SecretHash`], whose equality is constant-time.
//! Callers answer from the cache only for a credential they will accept
//! (see `Credentials::token_by_secret`): one that will be refused (revoked,
//! expired, rotated away) is looked up in the store, exactly as an unknown
//! one is, so the time of a refusal does not tell them apart.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, RwLock};

use tooken_core::SecretHash;
use tooken_store::{ApiKey, TokenMatch};

/// Most entries kept; past it, the cache starts over.
pub const DEFAULT_CAPACITY: usize = 200_000;

#[derive(Debug, Clone)]
pub enum Cached {
    ApiKey(Arc<ApiKey>),
    Token(Arc<TokenMatch>),
}

/// Keys are SHA-256 digests, already uniform: their first eight bytes
/// are hash enough, and SipHash over all 32 was a visible share of a
/// cached verification. Only stored credentials are cached, so nobody
/// chooses the keys.
#[derive(Debug, Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        // The array's length prefix comes through `write_usize`, ignored.
        let mut first = [0u8; 8];
        let n = bytes.len().min(8);
        first[..n].copy_from_slice(&bytes[..n]);
        self.0 = u64::from_le_bytes(first);
    }

    fn write_usize(&mut self, _: usize) {}

    fn finish(&self) -> u64 {
        self.0
    }
}

type DigestMap<V> = HashMap<SecretHash, V, BuildHasherDefault<DigestHasher>>;

#[derive(Debug)]
pub struct CredentialCache {
    // std locks: held for a map operation only, never across an await.
    entries: RwLock<DigestMap<Cached>>,
    marker: Mutex<Option<u64>>,
    capacity: usize,
}

impl Default for CredentialCache {
    fn default() -> Self {
        CredentialCache::with_capacity(DEFAULT_CAPACITY)
    }
}

impl CredentialCache {
    pub fn with_capacity(capacity: usize) -> Self {
        CredentialCache {
            entries: RwLock::default(),
            marker: Mutex::new(None),
            capacity,
        }
    }

    /// Empties the cache if `marker` is not the one it was filled under.
    fn sync(&self, marker: u64) {
        let mut current = self.marker.lock().unwrap_or_else(|e| e.into_inner());
        if *current != Some(marker) {
            self.entries
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            *current = Some(marker);
        }
    }

    /// The entry for `hash`, if the cache may be trusted under `marker`.
    pub fn get(&self, marker: Option<u64>, hash: &SecretHash) -> Option<Cached> {
        let marker = marker?;
        self.sync(marker);
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .cloned()
    }

    /// Keeps `value`, loaded after `marker` was read. If the store changed
    /// meanwhile (another request already saw a newer marker) it is dropped.
    pub fn insert(&self, marker: Option<u64>, hash: &SecretHash, value: Cached) {
        let Some(marker) = marker else { return };
        let current = self.marker.lock().unwrap_or_else(|e| e.into_inner());
        if *current != Some(marker) {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(*hash, value);
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::*;

    #[test]
    fn digests_hash_by_their_first_eight_bytes() {
        let build = BuildHasherDefault::<DigestHasher>::default();
        let mut a = [7u8; 32];
        let b = a;
        assert_eq!(build.hash_one(a), build.hash_one(b));
        a[0] = 8;
        assert_ne!(build.hash_one(a), build.hash_one(b));
        assert_eq!(
            build.hash_one(a),
            u64::from_le_bytes([8, 7, 7, 7, 7, 7, 7, 7])
        );
    }

    #[test]
    fn many_credentials_are_kept_and_found() {
        let cache = CredentialCache::with_capacity(10_000);
        let hashes: Vec<SecretHash> = (0..5_000)
            .map(|i| SecretHash::of(&format!("secret-{i}")))
            .collect();
        let key = |i: usize| {
            Cached::ApiKey(Arc::new(ApiKey {
                id: format!("key_{i}"),
                workspace_id: "ws".into(),
                mode: tooken_core::Mode::Test,
                name: "k".into(),
                hint: "h".into(),
                created_at: chrono::DateTime::UNIX_EPOCH,
                regenerated_at: None,
                last_used_at: None,
            }))
        };
        cache.get(Some(1), &hashes[0]);
        for (i, h) in hashes.iter().enumerate() {
            cache.insert(Some(1), h, key(i));
        }
        assert_eq!(cache.len(), hashes.len());
        for (i, h) in hashes.iter().enumerate() {
            match cache.get(Some(1), h) {
                Some(Cached::ApiKey(k)) => assert_eq!(k.id, format!("key_{i}")),
                other => panic!("entry {i}: {other:?}"),
            }
        }
        assert!(
            cache.get(Some(2), &hashes[0]).is_none(),
            "a new marker empties it"
        );
    }
}
