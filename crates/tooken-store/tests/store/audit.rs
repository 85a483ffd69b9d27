//! The audit log: one hash chain per workspace (and one for the server),
//! listed newest first with filters, exported oldest first in batches,
//! pruned with an anchor so that what remains still verifies.

use serde_json::json;
use tooken_core::audit::{Actor, ChainVerifier, Event, GENESIS};
use tooken_core::Mode;
use tooken_store::{AuditContext, AuthFailureEvent, EventFilter, SERVER_CHAIN};

use crate::fixture::{admin_cli, Fresh};

/// `count` events in `default` after `workspace.created` (seq 1, at t0):
/// API key `i` made at t0 + i + 1 seconds (seq i + 2), live for even i,
/// test for odd; key 3 by an actor with an id, the others by the admin CLI.
async fn keys(s: &Fresh, count: i64) -> Vec<Event> {
    for i in 0..count {
        let mode = if i % 2 == 0 { Mode::Live } else { Mode::Test };
        let ctx = match i {
            3 => AuditContext::new(Actor {
                kind: "api_key".into(),
                id: Some("key_boss".into()),
                hint: None,
            }),
            _ => admin_cli(),
        };
        let secret = tooken_core::Credential::generate("tok", mode);
        s.store
            .create_api_key(
                tooken_store::NewApiKey {
                    workspace_id: &s.ws.id,
                    mode,
                    name: &format!("k{i}").parse().unwrap(),
                    secret_hash: secret.hash(),
                    hint: secret.hint(),
                },
                &ctx,
                s.at(i + 1),
            )
            .await
            .unwrap();
    }
    s.events().await
}

fn actions(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.action.as_str()).collect()
}

store_test! {
    async fn each_workspace_has_its_own_chain_linked_from_genesis(s) {
        let events = keys(&s, 4).await;
        let other = s.workspace("acme").await;
        assert_eq!(actions(&events), ["workspace.created", "api_key.created", "api_key.created", "api_key.created", "api_key.created"]);
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert_eq!(events[0].prev_hash, GENESIS);
        for pair in events.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash, "seq {}", pair[1].seq);
        }
        let mut v = ChainVerifier::new((GENESIS, 0));
        for e in &events {
            v.push(e).unwrap();
        }
        assert_eq!(s.store.verify_audit_chain(&s.ws.id).await.unwrap(), Ok(5));
        // Another workspace starts its own chain, from genesis.
        let theirs = s.store.chain(&other.id).await.unwrap();
        assert_eq!((theirs.len(), theirs[0].seq, theirs[0].prev_hash.as_str()), (1, 1, GENESIS));
        assert_eq!(s.store.verify_audit_chain(&other.id).await.unwrap(), Ok(1));
        let mut chains = s.store.audit_chains().await.unwrap();
        chains.sort();
        let mut expected = vec![s.ws.id.clone(), other.id.clone()];
        expected.sort();
        assert_eq!(chains, expected);
        // A chain with no events verifies, empty.
        assert_eq!(s.store.verify_audit_chain("ws_none").await.unwrap(), Ok(0));
    }
}

store_test! {
    async fn events_are_listed_newest_first_by_page(s) {
        let all = keys(&s, 6).await;
        let page = |starting_after: Option<String>| {
            let f = EventFilter { limit: 3, starting_after, ..Default::default() };
            let store = s.store.clone();
            let ws = s.ws.id.clone();
            async move { store.list_events(&ws, &f).await.unwrap() }
        };
        let (first, more) = page(None).await;
        assert!(more);
        assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [7, 6, 5]);
        let (second, more) = page(Some(first[2].id.clone())).await;
        assert!(more);
        assert_eq!(second.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 3, 2]);
        let (last, more) = page(Some(second[2].id.clone())).await;
        assert!(!more);
        assert_eq!(last, all[..1]);
    }
}

store_test! {
    async fn filters_narrow_the_list_and_the_export_alike(s) {
        let all = keys(&s, 6).await;
        let ids = |events: &[Event]| events.iter().map(|e| e.seq).collect::<Vec<_>>();
        let cases: Vec<(&str, EventFilter, Vec<i64>)> = vec![
            ("everything", EventFilter::default(), vec![7, 6, 5, 4, 3, 2, 1]),
            ("by action", EventFilter { action: Some("workspace.created".into()), ..Default::default() }, vec![1]),
            ("by actor", EventFilter { actor: Some("key_boss".into()), ..Default::default() }, vec![5]),
            ("by target", EventFilter { target: Some(all[3].target.as_ref().unwrap().id.clone()), ..Default::default() }, vec![4]),
            ("since (inclusive)", EventFilter { since: Some(s.at(5)), ..Default::default() }, vec![7, 6]),
            ("until (exclusive)", EventFilter { until: Some(s.at(2)), ..Default::default() }, vec![2, 1]),
            ("a window", EventFilter { since: Some(s.at(2)), until: Some(s.at(4)), ..Default::default() }, vec![4, 3]),
            // A mode sees its own events and the workspace-wide ones.
            ("live", EventFilter { mode: Some(Mode::Live), ..Default::default() }, vec![6, 4, 2, 1]),
            ("test", EventFilter { mode: Some(Mode::Test), ..Default::default() }, vec![7, 5, 3, 1]),
            ("nothing matches", EventFilter { action: Some("token.created".into()), ..Default::default() }, vec![]),
        ];
        for (what, filter, expected) in cases {
            let listed = EventFilter { limit: 100, ..filter.clone() };
            let (events, more) = s.store.list_events(&s.ws.id, &listed).await.unwrap();
            assert_eq!((ids(&events), more), (expected.clone(), false), "{what}");
            // The export: oldest first, in batches after a chain position.
            let mut exported = Vec::new();
            let mut after = 0;
            loop {
                let batch = s.store.events_after(&s.ws.id, &EventFilter { limit: 2, ..filter.clone() }, after).await.unwrap();
                let Some(last) = batch.last() else { break };
                after = last.seq;
                exported.extend(batch);
            }
            let mut oldest_first = expected;
            oldest_first.reverse();
            assert_eq!(ids(&exported), oldest_first, "{what}, exported");
        }
    }
}

store_test! {
    async fn authentication_failures_go_to_their_chain_anonymously(s) {
        let failures = [
            AuthFailureEvent { workspace_id: None, mode: None, client_addr: Some("203.0.113.9".into()), details: json!({"reason": "unknown", "count": 3}) },
            AuthFailureEvent { workspace_id: Some(s.ws.id.clone()), mode: Some(Mode::Live), client_addr: Some("203.0.113.10".into()), details: json!({"reason": "revoked", "count": 1}) },
        ];
        let before = s.event_count().await;
        s.store.record_auth_failures(&failures, s.at(1)).await.unwrap();
        let server = s.store.chain(SERVER_CHAIN).await.unwrap();
        assert_eq!(actions(&server), ["auth.failed"]);
        assert_eq!((server[0].actor.kind.as_str(), server[0].actor.id.as_deref()), ("anonymous", None));
        assert_eq!(server[0].client_addr.as_deref(), Some("203.0.113.9"));
        assert_eq!(server[0].details["count"], 3);
        assert_eq!(server[0].occurred_at, s.at(1));
        let mine = s.events().await;
        assert_eq!(mine.len(), before + 1);
        let e = mine.last().unwrap();
        assert_eq!((e.action.as_str(), e.mode.as_deref(), e.details["reason"].as_str()), ("auth.failed", Some("live"), Some("revoked")));
        assert_eq!(s.store.verify_audit_chain(SERVER_CHAIN).await.unwrap(), Ok(1));
        assert_eq!(s.store.verify_audit_chain(&s.ws.id).await.unwrap(), Ok(before + 1));
    }
}

store_test! {
    async fn pruning_keeps_an_anchor_so_the_rest_still_verifies(s) {
        let all = keys(&s, 6).await;
        let other = s.workspace("acme").await;
        assert_eq!(s.store.audit_anchor(&s.ws.id).await.unwrap(), (GENESIS.to_owned(), 0));
        // Everything before t0 + 4 s: the workspace and keys 0..=2.
        let pruned = s.store.prune_audit(&s.ws.id, s.at(4), s.at(100)).await.unwrap().unwrap();
        assert_eq!((pruned.deleted, pruned.anchor_seq), (4, 4));
        assert_eq!(s.store.audit_anchor(&s.ws.id).await.unwrap(), (all[3].hash.clone(), 4));
        let left = s.events().await;
        assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 6, 7, 8]);
        let e = left.last().unwrap();
        assert_eq!(e.action, "audit.pruned");
        assert_eq!((e.details["deleted"].as_i64(), e.details["anchor_seq"].as_i64()), (Some(4), Some(4)));
        assert_eq!(e.details["anchor_hash"], all[3].hash.as_str());
        assert_eq!(s.store.verify_audit_chain(&s.ws.id).await.unwrap(), Ok(4));
        // Nothing older left: nothing to do, nothing recorded.
        assert_eq!(s.store.prune_audit(&s.ws.id, s.at(4), s.at(101)).await.unwrap(), None);
        assert_eq!(s.event_count().await, 4);
        // Pruning again later moves the anchor on.
        let pruned = s.store.prune_audit(&s.ws.id, s.at(6), s.at(102)).await.unwrap().unwrap();
        assert_eq!((pruned.deleted, pruned.anchor_seq), (2, 6));
        assert_eq!(s.store.verify_audit_chain(&s.ws.id).await.unwrap(), Ok(3));
        // Other chains are untouched.
        assert_eq!(s.store.chain(&other.id).await.unwrap().len(), 1);
        assert_eq!(s.store.audit_anchor(&other.id).await.unwrap().1, 0);
    }
}
