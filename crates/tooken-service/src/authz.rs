//! Gateways (SPEC §12): the route rules of a workspace and mode, and the
//! decision on a request a gateway (nginx, Caddy, Traefik, Envoy) asks
//! about. The HTTP endpoint and the gRPC `Check` service are transports
//! over [`Service::forward`]; the token itself is judged by
//! [`Service::judge`], exactly as `POST /v1/tokens/verify` judges it.
//!
//! Rules are read on every decision from a small per-node cache that is
//! trusted only under the store's change marker the request read first (as
//! the credential cache is): setting rules bumps the marker on every node
//! before the write is answered, so the next decision anywhere uses them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tooken_core::authz::{Method, PathRefusal, RequestPath, Rule, RuleSet, RulesAnswer, RulesSpec};
use tooken_core::scope::{any_covers, TOKENS_VERIFY};
use tooken_core::token::VerifyCode;
use tooken_core::{Mode, Scope};

use crate::caller::{Caller, Need};
use crate::{Service, ServiceResult, Verdict};

/// Most (workspace, mode) rule lists a node keeps; past it, it starts over.
const RULE_CACHE_CAPACITY: usize = 10_000;

/// Rule lists by workspace and mode.
type RuleLists = HashMap<(String, Mode), Arc<RuleSet>>;

/// Each workspace's rules per mode, as last read under one change marker.
#[derive(Debug, Default)]
pub(crate) struct RuleCache {
    // A std lock, held for a map operation only, never across an await.
    inner: Mutex<(Option<u64>, RuleLists)>,
}

impl RuleCache {
    fn get(&self, marker: Option<u64>, workspace_id: &str, mode: Mode) -> Option<Arc<RuleSet>> {
        let marker = marker?;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.0 != Some(marker) {
            inner.1.clear();
            inner.0 = Some(marker);
            return None;
        }
        inner.1.get(&(workspace_id.to_owned(), mode)).cloned()
    }

    /// Keeps `rules`, read after `marker` was: dropped if the store has
    /// changed since (another request saw a newer marker).
    fn insert(&self, marker: Option<u64>, workspace_id: &str, mode: Mode, rules: Arc<RuleSet>) {
        let Some(marker) = marker else { return };
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.0 != Some(marker) {
            return;
        }
        if inner.1.len() >= RULE_CACHE_CAPACITY {
            inner.1.clear();
        }
        inner.1.insert((workspace_id.to_owned(), mode), rules);
    }
}

/// The client's credential, as the gateway forwarded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCredential<'a> {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header that is not one `Bearer <credential>`.
    Malformed,
    /// The credential of `Authorization: Bearer <credential>`, unparsed.
    Bearer(&'a str),
}

/// A request a gateway asks about.
#[derive(Debug, Clone)]
pub struct Forwarded<'a> {
    /// The original method, as the client sent it (any case).
    pub method: &'a str,
    /// The original URI: path, maybe a query string.
    pub uri: &'a str,
    pub credential: ClientCredential<'a>,
    /// The client's address (SPEC §10), for the token's `allowed_ips`.
    pub client_ip: Option<IpAddr>,
}

/// Which rule a request meets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleMatch {
    /// The path is one rules refuse to match (SPEC §12).
    PathRefused(PathRefusal),
    /// No rule matches: refused.
    NoRule,
    /// The first rule that matches, and its index.
    Matched { index: usize, rule: Rule },
}

/// The decision on a forwarded request.
#[derive(Debug, Clone)]
pub enum Decision {
    /// The path is one rules refuse to match.
    PathRefused(PathRefusal),
    /// No rule matches.
    NoRule,
    /// A public route: let through, with nothing about any token.
    Anonymous { rule: usize },
    /// The route needs a token and none was presented.
    NoCredential { rule: usize },
    /// The token was judged against the rule's scopes (and cost).
    Judged {
        rule: usize,
        /// The first of the rule's scopes the token lacks, when that is
        /// why it is refused.
        missing_scope: Option<Scope>,
        verdict: Verdict,
    },
}

impl Decision {
    /// Is the request let through?
    pub fn is_allowed(&self) -> bool {
        match self {
            Decision::Anonymous { .. } => true,
            Decision::Judged { verdict, .. } => verdict.is_valid(),
            _ => false,
        }
    }

    /// One word for metrics: `allowed`, `anonymous`, `unauthenticated`,
    /// `refused` (a token judged and refused), `no_rule`, `path_refused`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::PathRefused(_) => "path_refused",
            Decision::NoRule => "no_rule",
            Decision::Anonymous { .. } => "anonymous",
            Decision::NoCredential { .. } => "unauthenticated",
            Decision::Judged { verdict, .. } if verdict.is_valid() => "allowed",
            Decision::Judged { .. } => "refused",
        }
    }
}

impl Service {
    /// The caller's route rules (of its workspace and mode), with the
    /// warnings about rules that can never match. An API key of that mode,
    /// or a dashboard member; never a token.
    pub async fn authz_rules(&self, caller: &Caller) -> ServiceResult<RulesAnswer> {
        self.authorize(caller, Need::ModeSettings { change: false })?;
        let (workspace_id, mode) = caller.place()?;
        let stored = self.store().authz_rules(workspace_id, mode).await?;
        Ok(stored.rules.answer())
    }

    /// Replaces the caller's route rules (of its workspace and mode) after
    /// validating every rule; recorded as `authz_rules.updated` with the
    /// old and new lists. Every node decides by the new rules from the
    /// moment this returns.
    pub async fn set_authz_rules(
        &self,
        caller: &Caller,
        spec: &RulesSpec,
    ) -> ServiceResult<RulesAnswer> {
        self.authorize(caller, Need::ModeSettings { change: true })?;
        let (workspace_id, mode) = caller.place()?;
        let rules = RuleSet::parse(&spec.rules)?;
        self.store()
            .set_authz_rules(workspace_id, mode, &rules, &caller.audit, self.now())
            .await?;
        Ok(rules.answer())
    }

    /// Which of the caller's rules a request with `method` and `uri` meets
    /// (the dashboard's "test a request").
    pub async fn match_request(
        &self,
        caller: &Caller,
        method: &str,
        uri: &str,
    ) -> ServiceResult<RuleMatch> {
        self.authorize(caller, Need::ModeSettings { change: false })?;
        let rules = self.rules_for(caller).await?;
        Ok(match find(&rules, method, uri) {
            Ok(Some((index, rule))) => RuleMatch::Matched {
                index,
                rule: rule.clone(),
            },
            Ok(None) => RuleMatch::NoRule,
            Err(refusal) => RuleMatch::PathRefused(refusal),
        })
    }

    /// The decision on a request `gateway` forwards: the first rule
    /// matching its method and path decides; a public route is let through
    /// whatever token came; otherwise the token is judged by the one
    /// verification ([`Service::judge`]) for the rule's scopes. Needs
    /// `tokens:verify`. A valid answer counts as a use of the token, as a
    /// verification does.
    pub async fn forward(
        &self,
        gateway: &Caller,
        request: &Forwarded<'_>,
    ) -> ServiceResult<Decision> {
        self.authorize(gateway, Need::Scope(TOKENS_VERIFY))?;
        let rules = self.rules_for(gateway).await?;
        let decision = match find(&rules, request.method, request.uri) {
            Err(refusal) => Decision::PathRefused(refusal),
            Ok(None) => Decision::NoRule,
            Ok(Some((rule, r))) if r.is_anonymous() => Decision::Anonymous { rule },
            Ok(Some((rule, r))) => match request.credential {
                ClientCredential::Missing => Decision::NoCredential { rule },
                ClientCredential::Malformed => Decision::Judged {
                    rule,
                    missing_scope: None,
                    verdict: Verdict::bare(VerifyCode::Malformed),
                },
                ClientCredential::Bearer(candidate) => {
                    let verdict = self
                        .judge(gateway, candidate, r.scopes(), self.now())
                        .await?;
                    let missing_scope = match (&verdict.code, &verdict.token) {
                        (VerifyCode::InsufficientScope, Some(found)) => r
                            .scopes()
                            .iter()
                            .find(|s| !any_covers(&found.token.scopes, s))
                            .cloned(),
                        _ => None,
                    };
                    Decision::Judged {
                        rule,
                        missing_scope,
                        verdict,
                    }
                }
            },
        };
        if let Decision::Judged { verdict, .. } = &decision {
            self.0.observer.verification(verdict.code);
        }
        self.0.observer.authz_decision(decision.outcome());
        Ok(decision)
    }

    /// The caller's rules, from this node's cache when it may be trusted
    /// under the caller's marker.
    async fn rules_for(&self, caller: &Caller) -> ServiceResult<Arc<RuleSet>> {
        let (workspace_id, mode) = caller.place()?;
        let cache = &self.0.rules;
        if let Some(rules) = cache.get(caller.marker, workspace_id, mode) {
            return Ok(rules);
        }
        let rules = Arc::new(self.store().authz_rules(workspace_id, mode).await?.rules);
        cache.insert(caller.marker, workspace_id, mode, rules.clone());
        Ok(rules)
    }
}

/// The first rule matching `method` and `uri`, or why the path cannot be
/// matched.
fn find<'r>(
    rules: &'r RuleSet,
    method: &str,
    uri: &str,
) -> Result<Option<(usize, &'r Rule)>, PathRefusal> {
    let path = RequestPath::parse(uri)?;
    Ok(rules.find(Method::parse(method), &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_cache_is_trusted_only_under_its_marker() {
        let cache = RuleCache::default();
        let rules = Arc::new(RuleSet::default());
        assert!(cache.get(Some(1), "ws", Mode::Live).is_none());
        cache.insert(Some(1), "ws", Mode::Live, rules.clone());
        assert!(cache.get(Some(1), "ws", Mode::Live).is_some());
        assert!(cache.get(Some(1), "ws", Mode::Test).is_none());
        // The store changed: everything read before is dropped.
        assert!(cache.get(Some(2), "ws", Mode::Live).is_none());
        // Read under the old marker, kept after the new one was seen: dropped.
        cache.insert(Some(1), "ws", Mode::Live, rules.clone());
        assert!(cache.get(Some(2), "ws", Mode::Live).is_none());
        // No marker (the store cannot tell): never trusted.
        cache.insert(None, "ws", Mode::Live, rules);
        assert!(cache.get(None, "ws", Mode::Live).is_none());
    }
}
