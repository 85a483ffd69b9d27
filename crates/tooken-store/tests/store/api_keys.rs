//! API keys: stored as a hash with a hint, found by their secret, replaced
//! and deleted with an event each, every change telling the caches.

use std::time::Duration;

use tooken_core::credential::API_KEY_PREFIX;
use tooken_core::{Credential, Mode};

use crate::fixture::{admin_cli, Fresh};

store_test! {
    async fn a_key_is_stored_as_its_hash_and_found_by_its_secret(s) {
        let (secret, key) = s.api_key("ci", Mode::Test).await;
        assert!(key.id.starts_with("key_"), "{}", key.id);
        assert_eq!((key.workspace_id.as_str(), key.mode, key.name.as_str()), (s.ws.id.as_str(), Mode::Test, "ci"));
        assert_eq!(key.hint, secret.hint());
        assert_eq!((key.created_at, key.regenerated_at, key.last_used_at), (s.t0, None, None));
        assert_eq!(s.store.api_key(&key.id).await.unwrap(), Some(key.clone()));
        assert_eq!(s.store.api_key_by_secret(&secret.hash()).await.unwrap(), Some(key.clone()));
        let stranger = Credential::generate(API_KEY_PREFIX, Mode::Test);
        assert_eq!(s.store.api_key_by_secret(&stranger.hash()).await.unwrap(), None);
        assert_eq!(s.store.api_key("key_nope").await.unwrap(), None);

        let e = s.last_event().await;
        assert_eq!(e.action, "api_key.created");
        assert_eq!(e.mode.as_deref(), Some("test"));
        assert_eq!(e.target.as_ref().map(|t| (t.kind.as_str(), t.id.as_str())), Some(("api_key", key.id.as_str())));
        assert!(!serde_json::to_string(&e).unwrap().contains(secret.expose()));
    }
}

store_test! {
    async fn keys_are_listed_per_workspace(s) {
        let (_, a) = s.api_key("a", Mode::Live).await;
        let (_, b) = s.api_key("b", Mode::Test).await;
        let other = s.workspace("acme").await;
        let listed: Vec<String> = s.store.list_api_keys(&s.ws.id).await.unwrap().into_iter().map(|k| k.id).collect();
        let mut expected = vec![a.id, b.id];
        expected.sort();
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(sorted, expected);
        assert!(s.store.list_api_keys(&other.id).await.unwrap().is_empty());
    }
}

store_test! {
    async fn regenerating_replaces_the_secret_and_tells_every_cache(s) {
        let (old, key) = s.api_key("ci", Mode::Live).await;
        let marker = change_marker(&s).await;
        let new = Credential::generate(API_KEY_PREFIX, Mode::Live);
        let regenerated = s.store.regenerate_api_key(&key.id, new.hash(), new.hint(), &admin_cli(), s.at(5)).await.unwrap().unwrap();
        assert_eq!(regenerated.id, key.id);
        assert_eq!((regenerated.hint.clone(), regenerated.regenerated_at), (new.hint(), Some(s.at(5))));
        assert_eq!(s.store.api_key_by_secret(&old.hash()).await.unwrap(), None, "the old secret is gone");
        assert_eq!(s.store.api_key_by_secret(&new.hash()).await.unwrap(), Some(regenerated));
        assert_ne!(change_marker(&s).await, marker, "caches are told");
        let e = s.last_event().await;
        assert_eq!((e.action.as_str(), e.details["hint"].as_str()), ("api_key.regenerated", Some(new.hint().as_str())));

        let events = s.event_count().await;
        let none = s.store.regenerate_api_key("key_nope", old.hash(), old.hint(), &admin_cli(), s.at(6)).await.unwrap();
        assert_eq!(none, None);
        assert_eq!(s.event_count().await, events);
    }
}

store_test! {
    async fn deleting_removes_the_key_and_tells_every_cache(s) {
        let (secret, key) = s.api_key("ci", Mode::Live).await;
        let (kept, _) = s.api_key("kept", Mode::Live).await;
        let marker = change_marker(&s).await;
        let deleted = s.store.delete_api_key(&key.id, &admin_cli(), s.at(5)).await.unwrap();
        assert_eq!(deleted, Some(key.clone()));
        assert_eq!(s.store.api_key(&key.id).await.unwrap(), None);
        assert_eq!(s.store.api_key_by_secret(&secret.hash()).await.unwrap(), None);
        assert!(s.store.api_key_by_secret(&kept.hash()).await.unwrap().is_some());
        assert_ne!(change_marker(&s).await, marker, "caches are told");
        let e = s.last_event().await;
        assert_eq!((e.action.as_str(), e.details["name"].as_str()), ("api_key.deleted", Some("ci")));
        assert_eq!(s.store.delete_api_key(&key.id, &admin_cli(), s.at(6)).await.unwrap(), None);
        assert_eq!(s.last_event().await.seq, e.seq, "nothing recorded for nothing done");
    }
}

/// The store's change marker, once it can tell (on PostgreSQL, once its
/// change listener is up: caches are bypassed until then).
async fn change_marker(s: &Fresh) -> u64 {
    let mut marker = None;
    tooken_testkit::eventually(
        "the store follows its changes",
        Duration::from_secs(10),
        || {
            marker = s.store.change_marker();
            std::future::ready(marker.is_some())
        },
    )
    .await;
    marker.unwrap()
}
