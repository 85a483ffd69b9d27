//! Dashboard sessions and the secrets they are shown once (reveals).

use tooken_core::{Mode, SecretHash};
use tooken_store::{NewReveal, NewSession, Role, User};

use crate::fixture::{system, Fresh};

/// Stores a session with id `id` for `user` in `workspace_id`, at `t0`.
pub async fn sign_in(s: &Fresh, user: &User, id: &str, workspace_id: &str) {
    s.store
        .create_session(
            NewSession {
                id_hash: SecretHash::of(id),
                user,
                workspace_id,
                mode: Mode::Live,
                client_addr: Some("192.0.2.7"),
                user_agent: Some("test-browser/1"),
            },
            &system(),
            s.t0,
        )
        .await
        .unwrap();
}

store_test! {
    async fn a_session_is_found_by_its_hash_used_switched_and_ended(s) {
        let ada = s.user("ada@example.com", Role::Owner).await;
        sign_in(&s, &ada, "session-1", &s.ws.id).await;
        let e = s.last_event().await;
        assert_eq!((e.action.as_str(), e.target.as_ref().unwrap().id.as_str()), ("user.login", ada.id.as_str()));
        assert!(!serde_json::to_string(&e).unwrap().contains("session-1"));

        let id = SecretHash::of("session-1");
        let found = s.store.session(&id).await.unwrap().unwrap();
        assert_eq!((found.user, found.workspace_id.as_str(), found.mode), (ada.clone(), s.ws.id.as_str(), Mode::Live));
        assert_eq!((found.created_at, found.last_seen_at), (s.t0, s.t0));
        assert_eq!(s.store.session(&SecretHash::of("session-2")).await.unwrap(), None);

        s.store.touch_session(&id, s.at(30)).await.unwrap();
        let other = s.workspace("acme").await;
        s.store.switch_session(&id, &other.id, Mode::Test).await.unwrap();
        let found = s.store.session(&id).await.unwrap().unwrap();
        assert_eq!((found.last_seen_at, found.workspace_id, found.mode), (s.at(30), other.id.clone(), Mode::Test));
        assert_eq!(found.created_at, s.t0);

        // Logging out ends it, recorded in the workspace it was showing.
        assert!(s.store.end_session(&id, &system(), s.at(40)).await.unwrap());
        assert_eq!(s.store.session(&id).await.unwrap(), None);
        let e = s.store.chain(&other.id).await.unwrap().pop().unwrap();
        assert_eq!(e.action, "user.logout");
        assert!(!s.store.end_session(&id, &system(), s.at(41)).await.unwrap(), "once");
        assert_eq!(s.store.chain(&other.id).await.unwrap().last().unwrap().seq, e.seq);
    }
}

store_test! {
    async fn stale_sessions_go_by_idle_time_or_age_and_quietly(s) {
        let ada = s.user("ada@example.com", Role::Owner).await;
        for id in ["old", "idle", "fresh"] {
            sign_in(&s, &ada, id, &s.ws.id).await;
        }
        // "old" started at t0 but is in use; "idle" has not been seen since t0.
        s.store.touch_session(&SecretHash::of("old"), s.at(100)).await.unwrap();
        s.store.touch_session(&SecretHash::of("fresh"), s.at(100)).await.unwrap();
        let events = s.event_count().await;
        let n = s.store.delete_stale_sessions(s.at(50), s.t0, s.at(100)).await.unwrap();
        assert_eq!(n, 1, "idle before t0+50");
        assert_eq!(s.store.session(&SecretHash::of("idle")).await.unwrap(), None);
        let n = s.store.delete_stale_sessions(s.at(50), s.at(1), s.at(100)).await.unwrap();
        assert_eq!(n, 2, "started before t0+1");
        assert_eq!(s.store.delete_stale_sessions(s.at(50), s.at(1), s.at(100)).await.unwrap(), 0);
        sign_in(&s, &ada, "expired", &s.ws.id).await;
        let events = events + 1;
        s.store.forget_session(&SecretHash::of("expired")).await.unwrap();
        assert_eq!(s.store.session(&SecretHash::of("expired")).await.unwrap(), None);
        assert_eq!(s.event_count().await, events, "expiry is not an event");
    }
}

fn reveal<'a>(
    id: &str,
    session: &str,
    target_id: &'a str,
    sealed: &'a [u8],
    expires_at: chrono::DateTime<chrono::Utc>,
) -> NewReveal<'a> {
    NewReveal {
        id_hash: SecretHash::of(id),
        session_hash: SecretHash::of(session),
        target_kind: "token",
        target_id,
        sealed,
        expires_at,
    }
}

store_test! {
    async fn a_reveal_is_taken_once_by_its_own_session_in_time(s) {
        let ada = s.user("ada@example.com", Role::Owner).await;
        sign_in(&s, &ada, "session-1", &s.ws.id).await;
        s.store.put_reveal(reveal("r1", "session-1", "tk_1", b"sealed secret", s.at(60))).await.unwrap();
        let take = |id: &str, session: &str, target: &str, now| {
            let (id, session, target) = (SecretHash::of(id), SecretHash::of(session), target.to_owned());
            let store = s.store.clone();
            async move { store.take_reveal(&id, &session, "token", &target, now).await.unwrap() }
        };
        assert_eq!(take("r1", "session-2", "tk_1", s.at(1)).await, None, "another session's");
        assert_eq!(take("r1", "session-1", "tk_2", s.at(1)).await, None, "another target's");
        assert_eq!(take("r1", "session-1", "tk_1", s.at(1)).await.as_deref(), Some(&b"sealed secret"[..]));
        assert_eq!(take("r1", "session-1", "tk_1", s.at(2)).await, None, "once");

        s.store.put_reveal(reveal("r2", "session-1", "tk_1", b"late", s.at(60))).await.unwrap();
        assert_eq!(take("r2", "session-1", "tk_1", s.at(60)).await, None, "not at or past its time");

        // Ending the session, or its expiry, takes its reveals with it.
        s.store.put_reveal(reveal("r3", "session-1", "tk_1", b"x", s.at(60))).await.unwrap();
        s.store.end_session(&SecretHash::of("session-1"), &system(), s.at(3)).await.unwrap();
        assert_eq!(take("r3", "session-1", "tk_1", s.at(4)).await, None);
        s.store.put_reveal(reveal("r4", "session-9", "tk_1", b"x", s.at(5))).await.unwrap();
        s.store.delete_stale_sessions(s.t0, s.t0, s.at(5)).await.unwrap();
        s.store.put_reveal(reveal("r4", "session-9", "tk_1", b"y", s.at(60))).await.expect("the expired one is gone");
        assert_eq!(take("r4", "session-9", "tk_1", s.at(6)).await.as_deref(), Some(&b"y"[..]));
    }
}
