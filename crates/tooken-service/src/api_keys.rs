//! Workspace API keys: created, regenerated and deleted in the dashboard
//! or by the admin CLI (and the first key at first start). A new value is
//! minted in one place ([`mint`]) and shown once.

use tooken_core::credential::API_KEY_PREFIX;
use tooken_core::id::ApiKeyId;
use tooken_core::text::Name;
use tooken_core::{Credential, Mode, Secret};
use tooken_store::{ApiKey, NewApiKey};

use crate::caller::{Caller, Need};
use crate::error::{NotFound, Thing};
use crate::{Service, ServiceError, ServiceResult};

/// An API key with its new value: the only time the value is shown.
#[derive(Debug, Clone)]
pub struct ApiKeyWithSecret {
    pub key: ApiKey,
    pub secret: Secret,
}

/// A key to create, as asked for (the name unparsed).
#[derive(Debug, Clone)]
pub struct NewApiKeyRequest<'a> {
    pub workspace_id: &'a str,
    pub mode: Mode,
    pub name: &'a str,
}

/// A fresh API key value of `mode`.
fn mint(mode: Mode) -> Credential {
    Credential::generate(API_KEY_PREFIX, mode)
}

impl Service {
    /// Checks that `caller` may manage `workspace_id`'s keys (a member
    /// only those of the workspace shown).
    fn authorize_keys(
        &self,
        caller: &Caller,
        workspace_id: &str,
        change: bool,
    ) -> ServiceResult<()> {
        self.authorize(caller, Need::Console { change })?;
        match caller.principal.place() {
            Some((mine, _)) if mine != workspace_id => Err(ServiceError::forbidden(
                "you are not a member of that workspace",
            )),
            _ => Ok(()),
        }
    }

    /// Creates a key; its value is in the answer, once.
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        req: NewApiKeyRequest<'_>,
    ) -> ServiceResult<ApiKeyWithSecret> {
        self.authorize_keys(caller, req.workspace_id, true)?;
        let name = Name::parse(req.name)?;
        let secret = mint(req.mode);
        let key = self
            .store()
            .create_api_key(
                NewApiKey {
                    workspace_id: req.workspace_id,
                    mode: req.mode,
                    name: &name,
                    secret_hash: secret.hash(),
                    hint: secret.hint(),
                },
                &caller.audit,
                self.now(),
            )
            .await?;
        Ok(ApiKeyWithSecret {
            key,
            secret: (&secret).into(),
        })
    }

    /// The keys of `workspace_id`, newest first.
    pub async fn api_keys(
        &self,
        caller: &Caller,
        workspace_id: &str,
    ) -> ServiceResult<Vec<ApiKey>> {
        self.authorize_keys(caller, workspace_id, false)?;
        Ok(self.store().list_api_keys(workspace_id).await?)
    }

    /// One key the caller may see (a member: of the workspace shown).
    pub async fn api_key(&self, caller: &Caller, id: &str) -> ServiceResult<ApiKey> {
        self.authorize(caller, Need::Console { change: false })?;
        self.find_api_key(caller, id).await
    }

    async fn find_api_key(&self, caller: &Caller, raw: &str) -> ServiceResult<ApiKey> {
        let Ok(id) = ApiKeyId::parse(raw) else {
            return Err(ServiceError::NotFound(NotFound::id(
                Thing::ApiKey,
                raw,
                false,
            )));
        };
        let workspace = caller.principal.place().map(|(w, _)| w);
        self.store()
            .api_key(&id)
            .await?
            .filter(|k| workspace.is_none_or(|w| k.workspace_id == w))
            .ok_or_else(|| ServiceError::NotFound(NotFound::id(Thing::ApiKey, raw, true)))
    }

    /// Replaces a key's value; the old one stops working with the commit,
    /// on every node. The new value is in the answer, once.
    pub async fn regenerate_api_key(
        &self,
        caller: &Caller,
        id: &str,
    ) -> ServiceResult<ApiKeyWithSecret> {
        self.authorize(caller, Need::Console { change: true })?;
        let key = self.find_api_key(caller, id).await?;
        let secret = mint(key.mode);
        let key = self
            .store()
            .regenerate_api_key(
                &key.id,
                secret.hash(),
                secret.hint(),
                &caller.audit,
                self.now(),
            )
            .await?
            .ok_or_else(|| ServiceError::NotFound(NotFound::id(Thing::ApiKey, id, true)))?;
        Ok(ApiKeyWithSecret {
            key,
            secret: (&secret).into(),
        })
    }

    /// Deletes a key; it stops working with the commit, on every node.
    pub async fn delete_api_key(&self, caller: &Caller, id: &str) -> ServiceResult<ApiKey> {
        self.authorize(caller, Need::Console { change: true })?;
        let key = self.find_api_key(caller, id).await?;
        self.store()
            .delete_api_key(&key.id, &caller.audit, self.now())
            .await?
            .ok_or_else(|| ServiceError::NotFound(NotFound::id(Thing::ApiKey, id, true)))
    }
}
