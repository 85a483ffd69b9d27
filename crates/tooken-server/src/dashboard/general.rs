//! Settings → General: the workspace's token policy, changed through the
//! service as `PATCH /v1/settings` changes it.

use super::Routes;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use tooken_core::Settings;
use tooken_service::{ServiceError, SettingsChanges};

use super::error::DashResult;
use super::format::time;
use super::session::{OwnerForm, Session};
use super::view::{render, render_with, see_other, FieldErrors, Nav};
use crate::AppState;

pub fn routes() -> Routes {
    vec![("/dashboard/settings/general", get(show).post(save))]
}

/// A length of time as a number and a unit, for the form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Span {
    pub amount: String,
    pub unit: String,
}

const UNITS: [(&str, i64); 3] = [("days", 86_400), ("hours", 3_600), ("seconds", 1)];

impl Span {
    /// The largest unit that expresses `seconds` exactly.
    fn of(seconds: Option<i64>) -> Span {
        match seconds {
            None => Span {
                amount: String::new(),
                unit: "days".into(),
            },
            Some(s) => {
                let (unit, size) = UNITS
                    .iter()
                    .find(|(_, size)| s % size == 0)
                    .copied()
                    .unwrap_or(("seconds", 1));
                Span {
                    amount: (s / size).to_string(),
                    unit: unit.into(),
                }
            }
        }
    }

    /// Seconds, `None` when empty, `Err` when not a whole number.
    fn seconds(&self) -> Result<Option<i64>, String> {
        let amount = self.amount.trim();
        if amount.is_empty() {
            return Ok(None);
        }
        let n: i64 = amount
            .parse()
            .map_err(|_| "Enter a whole number, or leave it empty.".to_owned())?;
        let size = UNITS
            .iter()
            .find(|(u, _)| *u == self.unit)
            .map(|(_, s)| *s)
            .unwrap_or(86_400);
        n.checked_mul(size)
            .map(Some)
            .ok_or_else(|| "That is too long.".to_owned())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    require_expiration: Option<String>,
    #[serde(default)]
    max_ttl: String,
    #[serde(default)]
    max_ttl_unit: String,
    #[serde(default)]
    default_ttl: String,
    #[serde(default)]
    default_ttl_unit: String,
    #[serde(default)]
    token_prefix: String,
    #[serde(default)]
    audit_retention_days: String,
}

impl SettingsForm {
    fn of(s: &Settings) -> SettingsForm {
        let max = Span::of(s.max_token_ttl_seconds);
        let default = Span::of(s.default_token_ttl_seconds);
        SettingsForm {
            require_expiration: s.require_expiration.then(|| "on".to_owned()),
            max_ttl: max.amount,
            max_ttl_unit: max.unit,
            default_ttl: default.amount,
            default_ttl_unit: default.unit,
            token_prefix: s.token_prefix.clone(),
            audit_retention_days: s
                .audit_retention_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
        }
    }

    fn require_expiration(&self) -> bool {
        self.require_expiration.is_some()
    }
}

#[derive(Template)]
#[template(path = "dashboard/general.html")]
struct GeneralPage {
    nav: Nav,
    workspace_id: String,
    created: String,
    form: SettingsForm,
    errors: FieldErrors,
    saved: bool,
    units: [&'static str; 3],
}

fn page(session: &Session, form: SettingsForm, errors: FieldErrors, saved: bool) -> GeneralPage {
    GeneralPage {
        nav: session.nav("general"),
        workspace_id: session.workspace.id.clone(),
        created: time(session.workspace.created_at),
        form,
        errors,
        saved,
        units: ["days", "hours", "seconds"],
    }
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    saved: Option<String>,
}

/// `GET /dashboard/settings/general`.
pub async fn show(session: Session, Query(q): Query<ShowQuery>) -> DashResult<Response> {
    let form = SettingsForm::of(&session.workspace.settings);
    render(&page(
        &session,
        form,
        FieldErrors::default(),
        q.saved.is_some(),
    ))
}

/// `POST /dashboard/settings/general`.
pub async fn save(
    State(state): State<AppState>,
    OwnerForm { session, form }: OwnerForm<SettingsForm>,
) -> DashResult<Response> {
    let mut errors = FieldErrors::default();
    let mut settings = session.workspace.settings.clone();
    settings.require_expiration = form.require_expiration();
    settings.token_prefix = form.token_prefix.trim().to_owned();
    for (field, span, target) in [
        (
            "max_token_ttl_seconds",
            Span {
                amount: form.max_ttl.clone(),
                unit: form.max_ttl_unit.clone(),
            },
            &mut settings.max_token_ttl_seconds,
        ),
        (
            "default_token_ttl_seconds",
            Span {
                amount: form.default_ttl.clone(),
                unit: form.default_ttl_unit.clone(),
            },
            &mut settings.default_token_ttl_seconds,
        ),
    ] {
        match span.seconds() {
            Ok(v) => *target = v,
            Err(e) => errors.add(field, e),
        }
    }
    match form.audit_retention_days.trim() {
        "" => settings.audit_retention_days = None,
        raw => match raw.parse() {
            Ok(d) => settings.audit_retention_days = Some(d),
            Err(_) => errors.add(
                "audit_retention_days",
                "Enter a whole number of days, or leave it empty to keep events forever.",
            ),
        },
    }
    if errors.is_empty() {
        let changes = SettingsChanges {
            require_expiration: Some(settings.require_expiration),
            max_token_ttl_seconds: Some(settings.max_token_ttl_seconds),
            default_token_ttl_seconds: Some(settings.default_token_ttl_seconds),
            token_prefix: Some(settings.token_prefix),
            audit_retention_days: Some(settings.audit_retention_days),
        };
        match state
            .service
            .update_settings(&session.caller, changes)
            .await
        {
            Ok(_) => return Ok(see_other("/dashboard/settings/general?saved=1")),
            Err(e @ ServiceError::Invalid { .. }) => {
                errors.add(e.field().unwrap_or("form").to_owned(), e.reason())
            }
            Err(e) => return Err(e.into()),
        }
    }
    render_with(
        StatusCode::BAD_REQUEST,
        &page(&session, form, errors, false),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_use_the_largest_exact_unit() {
        let s = Span::of(Some(7 * 86_400));
        assert_eq!((s.amount.as_str(), s.unit.as_str()), ("7", "days"));
        let s = Span::of(Some(7_200));
        assert_eq!((s.amount.as_str(), s.unit.as_str()), ("2", "hours"));
        let s = Span::of(Some(90));
        assert_eq!((s.amount.as_str(), s.unit.as_str()), ("90", "seconds"));
        assert_eq!(Span::of(None).seconds(), Ok(None));
        let bad = Span {
            amount: "x".into(),
            unit: "days".into(),
        };
        assert!(bad.seconds().is_err());
    }
}
