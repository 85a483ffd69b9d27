//! Users, memberships and one-time links (setup and invitations).

use chrono::{DateTime, Utc};
use tooken_core::audit::Actor;
use tooken_core::SecretHash;
use tooken_store::{LinkPurpose, MemberChange, NewLink, NewUser, Role, StoreError};

use crate::fixture::{admin_cli, system};

store_test! {
    async fn a_user_is_created_a_member_of_one_workspace_and_recorded(s) {
        assert_eq!(s.store.count_users().await.unwrap(), 0);
        let user = s.user("ada@example.com", Role::Owner).await;
        assert!(user.id.starts_with("usr_"), "{}", user.id);
        assert_eq!((user.email.as_str(), user.name.as_str()), ("ada@example.com", "Some One"));
        assert_eq!(s.store.count_users().await.unwrap(), 1);
        assert_eq!(s.store.user_by_email("ada@example.com").await.unwrap(), Some(user.clone()));
        assert_eq!(s.store.user_by_email("bob@example.com").await.unwrap(), None);
        let (found, hash) = s.store.user_with_password("ada@example.com").await.unwrap().unwrap();
        assert_eq!((found, hash.as_str()), (user.clone(), "hash-1"));

        let memberships = s.store.memberships(&user.id).await.unwrap();
        assert_eq!(memberships.len(), 1);
        assert_eq!(memberships[0].workspace_id, s.ws.id);
        assert_eq!(memberships[0].workspace_name, "default");
        assert_eq!(memberships[0].role, Role::Owner);

        let e = s.last_event().await;
        assert_eq!(e.action, "member.added");
        assert_eq!(e.actor.kind, Actor::admin_cli().kind);
        assert_eq!(e.target.as_ref().map(|t| (t.kind.as_str(), t.id.as_str())), Some(("user", user.id.as_str())));
        assert_eq!(e.details["email"], "ada@example.com");
        assert_eq!(e.details["role"], "owner");
        assert!(!serde_json::to_string(&e).unwrap().contains("hash-1"), "no password hash in the log");
    }
}

store_test! {
    async fn an_email_belongs_to_one_user_and_a_refused_user_leaves_nothing(s) {
        s.user("ada@example.com", Role::Owner).await;
        let events = s.event_count().await;
        let err = s
            .store
            .create_user(NewUser { email: "ada@example.com", name: "Again", password_hash: "hash-2" }, &s.ws.id, Role::Viewer, &admin_cli(), s.t0)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert_eq!(s.store.count_users().await.unwrap(), 1);
        assert_eq!(s.event_count().await, events, "no event for what did not happen");
        let (_, hash) = s.store.user_with_password("ada@example.com").await.unwrap().unwrap();
        assert_eq!(hash, "hash-1");
    }
}

store_test! {
    async fn members_are_listed_owners_first_then_by_email(s) {
        s.user("zed@example.com", Role::Viewer).await;
        s.user("yan@example.com", Role::Owner).await;
        s.user("abe@example.com", Role::Viewer).await;
        s.user("xia@example.com", Role::Owner).await;
        let listed: Vec<(String, Role)> = s
            .store
            .members(&s.ws.id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.user.email, m.role))
            .collect();
        let expected = [
            ("xia@example.com", Role::Owner),
            ("yan@example.com", Role::Owner),
            ("abe@example.com", Role::Viewer),
            ("zed@example.com", Role::Viewer),
        ];
        assert_eq!(listed, expected.map(|(e, r)| (e.to_owned(), r)));
        let other = s.workspace("other").await;
        assert!(s.store.members(&other.id).await.unwrap().is_empty());
    }
}

store_test! {
    async fn a_user_joins_other_workspaces_once_each(s) {
        let ada = s.user("ada@example.com", Role::Owner).await;
        let other = s.workspace("acme").await;
        s.store.add_member(&other.id, &ada, Role::Viewer, &system(), s.t0).await.unwrap();
        let err = s.store.add_member(&other.id, &ada, Role::Owner, &system(), s.t0).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        let memberships: Vec<(String, Role)> = s
            .store
            .memberships(&ada.id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.workspace_name, m.role))
            .collect();
        assert_eq!(memberships, [("acme".to_owned(), Role::Viewer), ("default".to_owned(), Role::Owner)]);
        let member = s.store.member(&other.id, &ada.id).await.unwrap().unwrap();
        assert_eq!((member.role, member.added_at), (Role::Viewer, s.t0));
        let joined: Vec<_> = s.store.chain(&other.id).await.unwrap().into_iter().map(|e| e.action).collect();
        assert_eq!(joined, ["workspace.created", "member.added"], "recorded once, in that workspace");
    }
}

store_test! {
    async fn a_workspace_always_keeps_an_owner(s) {
        let ada = s.user("ada@example.com", Role::Owner).await;
        let bob = s.user("bob@example.com", Role::Viewer).await;
        let events = s.event_count().await;
        let ctx = system();
        let change = |user: &str, role| {
            let user = user.to_owned();
            let (s, ctx) = (&s, &ctx);
            async move { s.store.set_member_role(&s.ws.id, &user, role, ctx, s.t0).await }
        };
        assert_eq!(change(&ada.id, Role::Viewer).await.unwrap(), MemberChange::LastOwner);
        assert_eq!(s.store.remove_member(&s.ws.id, &ada.id, &system(), s.t0).await.unwrap(), MemberChange::LastOwner);
        assert_eq!(s.event_count().await, events, "refusals change nothing");
        // The same role again: done, nothing to record.
        assert!(matches!(change(&bob.id, Role::Viewer).await.unwrap(), MemberChange::Done(m) if m.role == Role::Viewer));
        assert_eq!(s.event_count().await, events);
        assert_eq!(change("usr_nobody", Role::Owner).await.unwrap(), MemberChange::NotFound);

        // With a second owner, the first may step down.
        assert!(matches!(change(&bob.id, Role::Owner).await.unwrap(), MemberChange::Done(m) if m.role == Role::Owner));
        let e = s.last_event().await;
        assert_eq!(e.action, "member.role_changed");
        assert_eq!((e.details["old"].as_str(), e.details["new"].as_str()), (Some("viewer"), Some("owner")));
        assert!(matches!(change(&ada.id, Role::Viewer).await.unwrap(), MemberChange::Done(_)));
        assert_eq!(change(&bob.id, Role::Viewer).await.unwrap(), MemberChange::LastOwner);
        assert_eq!(s.store.member(&s.ws.id, &bob.id).await.unwrap().unwrap().role, Role::Owner);
    }
}

store_test! {
    async fn a_removed_member_is_gone_from_that_workspace_only(s) {
        let ada = s.user("ada@example.com", Role::Owner).await;
        let bob = s.user("bob@example.com", Role::Owner).await;
        let other = s.workspace("acme").await;
        s.store.add_member(&other.id, &bob, Role::Owner, &system(), s.t0).await.unwrap();
        let removed = s.store.remove_member(&s.ws.id, &bob.id, &system(), s.t0).await.unwrap();
        assert!(matches!(removed, MemberChange::Done(m) if m.user == bob && m.role == Role::Owner));
        assert_eq!(s.store.member(&s.ws.id, &bob.id).await.unwrap(), None);
        assert!(s.store.member(&other.id, &bob.id).await.unwrap().is_some());
        assert!(s.store.member(&s.ws.id, &ada.id).await.unwrap().is_some());
        let e = s.last_event().await;
        assert_eq!((e.action.as_str(), e.details["email"].as_str()), ("member.removed", Some("bob@example.com")));
        assert_eq!(s.store.remove_member(&s.ws.id, &bob.id, &system(), s.t0).await.unwrap(), MemberChange::NotFound);
    }
}

/// A one-time link whose secret is `token`.
fn link<'a>(
    token: &str,
    purpose: LinkPurpose,
    workspace_id: &'a str,
    email: Option<&'a str>,
    role: Role,
    expires_at: DateTime<Utc>,
) -> NewLink<'a> {
    NewLink {
        token_hash: SecretHash::of(token),
        purpose,
        workspace_id,
        email,
        role,
        expires_at,
    }
}

store_test! {
    async fn a_setup_link_makes_its_first_owner_once(s) {
        let expires = s.at(3600);
        s.store.create_link(link("setup-secret", LinkPurpose::Setup, &s.ws.id, None, Role::Owner, expires), &system(), s.t0).await.unwrap();
        let e = s.last_event().await;
        assert_eq!(e.action, "setup_link.created");
        assert_eq!(e.details["role"], "owner");
        assert!(!serde_json::to_string(&e).unwrap().contains("setup-secret"));

        let hash = SecretHash::of("setup-secret");
        let usable = s.store.usable_link(&hash, s.at(10)).await.unwrap().unwrap();
        assert_eq!((usable.purpose, usable.role, usable.email.as_deref(), usable.expires_at), (LinkPurpose::Setup, Role::Owner, None, expires));
        assert_eq!(s.store.usable_link(&SecretHash::of("setup-secreT"), s.at(10)).await.unwrap(), None);

        let (user, used) = s.store.redeem_link(&hash, NewUser { email: "olivia@example.com", name: "Olivia", password_hash: "hash-o" }, &system(), s.at(10)).await.unwrap().unwrap();
        assert_eq!(used, usable);
        assert_eq!(user.email, "olivia@example.com");
        assert_eq!(s.store.member(&s.ws.id, &user.id).await.unwrap().unwrap().role, Role::Owner);
        let e = s.last_event().await;
        assert_eq!(e.action, "member.added");
        assert_eq!(e.actor.id.as_deref(), Some(user.id.as_str()), "the new user acts on their own behalf");
        assert_eq!(e.details["via"], "setup");
        // Once only.
        assert_eq!(s.store.usable_link(&hash, s.at(11)).await.unwrap(), None);
        assert_eq!(s.store.redeem_link(&hash, NewUser { email: "eve@example.com", name: "Eve", password_hash: "h" }, &system(), s.at(11)).await.unwrap(), None);
        assert_eq!(s.store.count_users().await.unwrap(), 1);
    }
}

store_test! {
    async fn an_invitation_is_for_its_email_its_role_and_its_time(s) {
        let expires = s.at(600);
        s.store.create_link(link("invite-secret", LinkPurpose::Invite, &s.ws.id, Some("vic@example.com"), Role::Viewer, expires), &system(), s.t0).await.unwrap();
        let e = s.last_event().await;
        assert_eq!((e.action.as_str(), e.details["email"].as_str(), e.details["role"].as_str()), ("member.invited", Some("vic@example.com"), Some("viewer")));
        let hash = SecretHash::of("invite-secret");
        // Past its time it is not usable, nor redeemable.
        assert_eq!(s.store.usable_link(&hash, expires).await.unwrap(), None);
        assert_eq!(s.store.redeem_link(&hash, NewUser { email: "x@example.com", name: "X", password_hash: "h" }, &system(), expires).await.unwrap(), None);
        // In time, the link's email wins over the one typed.
        let (user, link) = s.store.redeem_link(&hash, NewUser { email: "typed@example.com", name: "Vic", password_hash: "h" }, &system(), s.at(599)).await.unwrap().unwrap();
        assert_eq!((user.email.as_str(), link.role), ("vic@example.com", Role::Viewer));
        assert_eq!(s.store.member(&s.ws.id, &user.id).await.unwrap().unwrap().role, Role::Viewer);
        assert_eq!(s.store.user_by_email("typed@example.com").await.unwrap(), None);
    }
}

store_test! {
    async fn a_link_for_an_existing_account_is_refused_and_stays_usable(s) {
        s.user("vic@example.com", Role::Viewer).await;
        s.store.create_link(link("invite-2", LinkPurpose::Invite, &s.ws.id, Some("vic@example.com"), Role::Owner, s.at(600)), &system(), s.t0).await.unwrap();
        let events = s.event_count().await;
        let hash = SecretHash::of("invite-2");
        let err = s.store.redeem_link(&hash, NewUser { email: "vic@example.com", name: "Vic", password_hash: "h" }, &system(), s.at(1)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert!(s.store.usable_link(&hash, s.at(2)).await.unwrap().is_some(), "all or nothing: the link is not used up");
        assert_eq!(s.event_count().await, events);
        assert_eq!(s.store.count_users().await.unwrap(), 1);
    }
}

store_test! {
    async fn a_new_password_ends_every_session_and_is_recorded_in_each_workspace(s) {
        let ada = s.user("ada@example.com", Role::Owner).await;
        let other = s.workspace("acme").await;
        s.store.add_member(&other.id, &ada, Role::Viewer, &system(), s.t0).await.unwrap();
        for id in ["session-1", "session-2"] {
            crate::sessions::sign_in(&s, &ada, id, &s.ws.id).await;
        }
        let bob = s.user("bob@example.com", Role::Viewer).await;
        crate::sessions::sign_in(&s, &bob, "session-bob", &s.ws.id).await;

        let changed = s.store.set_password("ada@example.com", "hash-new", &admin_cli(), s.at(5)).await.unwrap();
        assert_eq!(changed, Some(ada.clone()));
        assert_eq!(s.store.user_with_password("ada@example.com").await.unwrap().unwrap().1, "hash-new");
        for id in ["session-1", "session-2"] {
            assert_eq!(s.store.session(&SecretHash::of(id)).await.unwrap(), None, "{id} ended");
        }
        assert!(s.store.session(&SecretHash::of("session-bob")).await.unwrap().is_some(), "others stay");
        for ws in [&s.ws.id, &other.id] {
            let e = s.store.chain(ws).await.unwrap().pop().unwrap();
            assert_eq!(e.action, "user.password_reset", "{ws}");
            assert_eq!(e.details["sessions_ended"], 2);
            assert!(!serde_json::to_string(&e).unwrap().contains("hash-new"));
        }
        assert_eq!(s.store.set_password("nobody@example.com", "h", &admin_cli(), s.t0).await.unwrap(), None);
    }
}
