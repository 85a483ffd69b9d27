use chrono::{DateTime, Duration, DurationRound, Utc};
use tooken_core::audit::{Actor, Event};
use tooken_core::{Credential, Mode};
use tooken_server::AppState;
use tooken_store::{ApiKey, AuditContext, NewUser, Role, Store, User, Workspace};
use tooken_testkit::{Backend, Fixture, TestStore};

/// A fresh store with workspace `default`, created at `t0`.
pub struct Fresh {
    pub store: Store,
    pub ws: Workspace,
    /// When the workspace was created; tests say when things happen after it.
    pub t0: DateTime<Utc>,
    _place: TestStore,
}

impl Fixture for Fresh {
    async fn start(backend: Backend, _: impl FnOnce(AppState) -> AppState) -> Self {
        let place = TestStore::create(backend).await;
        let store = place.open().await;
        let t0 = Utc::now()
            .duration_trunc(Duration::milliseconds(1))
            .unwrap();
        let ws = store
            .create_workspace(&"default".parse().unwrap(), &system(), t0)
            .await
            .unwrap();
        Fresh {
            store,
            ws,
            t0,
            _place: place,
        }
    }
}

pub fn system() -> AuditContext {
    AuditContext::new(Actor::system())
}

pub fn admin_cli() -> AuditContext {
    AuditContext::new(Actor::admin_cli())
}

impl Fresh {
    /// `t0` plus `seconds`.
    pub fn at(&self, seconds: i64) -> DateTime<Utc> {
        self.t0 + Duration::seconds(seconds)
    }

    /// Another workspace.
    pub async fn workspace(&self, name: &str) -> Workspace {
        self.store
            .create_workspace(&name.parse().unwrap(), &system(), self.t0)
            .await
            .unwrap()
    }

    /// A user of `default` with `role`, made at `t0`.
    pub async fn user(&self, email: &str, role: Role) -> User {
        self.store
            .create_user(
                NewUser {
                    email,
                    name: "Some One",
                    password_hash: "hash-1",
                },
                &self.ws.id,
                role,
                &admin_cli(),
                self.t0,
            )
            .await
            .unwrap()
    }

    /// A new API key of `default` and its secret.
    pub async fn api_key(&self, name: &str, mode: Mode) -> (Credential, ApiKey) {
        let (secret, key) =
            tooken_testkit::create_api_key(&self.store, &self.ws.id, mode, name, self.t0).await;
        (Credential::parse(&secret).unwrap(), key)
    }

    /// Every event of `default`, oldest first.
    pub async fn events(&self) -> Vec<Event> {
        self.store.chain(&self.ws.id).await.unwrap()
    }

    /// The last event of `default`.
    pub async fn last_event(&self) -> Event {
        self.events().await.pop().expect("an event")
    }

    /// How many events `default` holds.
    pub async fn event_count(&self) -> usize {
        self.events().await.len()
    }
}
