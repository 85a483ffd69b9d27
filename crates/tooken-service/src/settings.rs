//! The workspace's policy: read by any API key or member, changed by an
//! API key or an owner; never by a token.

use tooken_core::api::UpdateSettings;
use tooken_core::Settings;

use crate::caller::{Caller, Need};
use crate::{Service, ServiceResult};

/// Changes to the policy: `None` leaves a setting alone; for the optional
/// settings `Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub struct SettingsChanges {
    pub require_expiration: Option<bool>,
    pub max_token_ttl_seconds: Option<Option<i64>>,
    pub default_token_ttl_seconds: Option<Option<i64>>,
    pub token_prefix: Option<String>,
    pub audit_retention_days: Option<Option<i64>>,
}

impl From<UpdateSettings> for SettingsChanges {
    fn from(r: UpdateSettings) -> SettingsChanges {
        SettingsChanges {
            require_expiration: r.require_expiration,
            max_token_ttl_seconds: r.max_token_ttl_seconds,
            default_token_ttl_seconds: r.default_token_ttl_seconds,
            token_prefix: r.token_prefix,
            audit_retention_days: r.audit_retention_days,
        }
    }
}

impl Service {
    /// The caller's workspace policy.
    pub async fn settings(&self, caller: &Caller) -> ServiceResult<Settings> {
        self.authorize(caller, Need::Settings { change: false })?;
        Ok(self.own_workspace(caller).await?.settings)
    }

    /// Changes the caller's workspace policy; the result is checked as a
    /// whole (a default longer than the maximum is refused).
    pub async fn update_settings(
        &self,
        caller: &Caller,
        changes: SettingsChanges,
    ) -> ServiceResult<Settings> {
        self.authorize(caller, Need::Settings { change: true })?;
        let workspace = self.own_workspace(caller).await?;
        let mut s = workspace.settings;
        if let Some(v) = changes.require_expiration {
            s.require_expiration = v;
        }
        if let Some(v) = changes.max_token_ttl_seconds {
            s.max_token_ttl_seconds = v;
        }
        if let Some(v) = changes.default_token_ttl_seconds {
            s.default_token_ttl_seconds = v;
        }
        if let Some(v) = changes.token_prefix {
            s.token_prefix = v;
        }
        if let Some(v) = changes.audit_retention_days {
            s.audit_retention_days = v;
        }
        s.validate()?;
        Ok(self
            .store()
            .update_settings(&workspace.id, &s, &caller.audit, self.now())
            .await?)
    }
}
