//! Workspaces: created by the admin CLI, and the first one at first start
//! (with its first API key and the dashboard's setup link).

use tooken_core::{Mode, WorkspaceName};
use tooken_store::{StoreError, Workspace, DEFAULT_WORKSPACE};

use crate::api_keys::{ApiKeyWithSecret, NewApiKeyRequest};
use crate::caller::{Caller, Need};
use crate::error::{NotFound, Thing};
use crate::{Service, ServiceError, ServiceResult};

/// What the first start of an empty store made: shown once.
#[derive(Debug)]
pub struct Bootstrapped {
    pub workspace: Workspace,
    /// The first live API key.
    pub api_key: ApiKeyWithSecret,
    /// The dashboard's one-time setup link's token.
    pub setup_token: String,
}

impl Service {
    /// A workspace every credential belongs to; its absence is a broken
    /// store, not the caller's doing.
    pub(crate) async fn workspace_by_id(&self, id: &str) -> ServiceResult<Workspace> {
        self.store()
            .workspace(id)
            .await?
            .ok_or_else(|| ServiceError::broken(format!("workspace {id} is missing")))
    }

    /// The caller's workspace (where its credential or session is).
    pub async fn own_workspace(&self, caller: &Caller) -> ServiceResult<Workspace> {
        let (id, _) = caller.place()?;
        self.workspace_by_id(id).await
    }

    /// The workspace named `name` (the admin CLI names workspaces).
    pub async fn workspace_named(&self, caller: &Caller, name: &str) -> ServiceResult<Workspace> {
        self.authorize(caller, Need::Console { change: false })?;
        self.store()
            .workspace_by_name(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(NotFound::by(Thing::Workspace, name)))
    }

    /// Every workspace, by name.
    pub async fn workspaces(&self, caller: &Caller) -> ServiceResult<Vec<Workspace>> {
        self.authorize(caller, Need::Console { change: false })?;
        Ok(self.store().list_workspaces().await?)
    }

    /// Creates a workspace with the default policy.
    pub async fn create_workspace(&self, caller: &Caller, name: &str) -> ServiceResult<Workspace> {
        self.authorize(caller, Need::Console { change: true })?;
        let name = WorkspaceName::parse(name)?;
        if self
            .store()
            .workspace_by_name(name.as_str())
            .await?
            .is_some()
        {
            return Err(ServiceError::Conflict {
                message: format!("a workspace named {:?} already exists", name.as_str()),
                field: Some("name".into()),
            });
        }
        Ok(self
            .store()
            .create_workspace(&name, &caller.audit, self.now())
            .await?)
    }

    /// On an empty store: creates workspace `default`, its first live API
    /// key and the dashboard's setup link (whoever opens it becomes the
    /// first owner). `None` when the store has a workspace already.
    ///
    /// Several nodes starting together on one empty PostgreSQL database
    /// may all find it empty; the workspace name is unique, so exactly one
    /// creates it (and the key), and the others get `None`.
    pub async fn bootstrap(&self) -> ServiceResult<Option<Bootstrapped>> {
        let caller = Caller::system();
        if !self.store().list_workspaces().await?.is_empty() {
            return Ok(None);
        }
        let name = WorkspaceName::parse(DEFAULT_WORKSPACE)?;
        let workspace = match self
            .store()
            .create_workspace(&name, &caller.audit, self.now())
            .await
        {
            Ok(w) => w,
            Err(StoreError::Conflict(_)) => {
                tracing::info!("another node created the `{DEFAULT_WORKSPACE}` workspace first");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let api_key = self
            .create_api_key(
                &caller,
                NewApiKeyRequest {
                    workspace_id: &workspace.id,
                    mode: Mode::Live,
                    name: "first key",
                },
            )
            .await?;
        let setup_token = self.create_setup_link(&caller, &workspace.id).await?;
        Ok(Some(Bootstrapped {
            workspace,
            api_key,
            setup_token,
        }))
    }
}
