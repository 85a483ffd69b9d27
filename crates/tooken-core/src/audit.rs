//! The audit log's tamper evidence: each event's hash covers the hash of the
//! event before it in the same workspace, so editing, removing or reordering
//! an event breaks every hash after it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// `api_key`, `token`, `admin` (the local admin CLI), `user` or `system`.
    pub kind: String,
    pub id: Option<String>,
    /// The credential's display hint; never the secret.
    pub hint: Option<String>,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            kind: "system".into(),
            id: None,
            hint: None,
        }
    }

    pub fn admin_cli() -> Actor {
        Actor {
            kind: "admin".into(),
            id: None,
            hint: None,
        }
    }
}

/// What an action was done to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Target {
    pub kind: String,
    pub id: String,
}

/// One audit event, as stored, exported and hashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub id: String,
    pub workspace_id: String,
    /// Position in the workspace's chain, from 1.
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub mode: Option<String>,
    pub actor: Actor,
    pub action: String,
    pub target: Option<Target>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
    /// Hex SHA-256 of the previous event in this workspace (zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 over `prev_hash` and this event's other fields.
    pub hash: String,
}

/// The hash of the chain before its first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Event {
    /// The hash this event must carry, given its fields and `prev_hash`.
    pub fn compute_hash(&self) -> String {
        #[derive(Serialize)]
        struct Hashed<'a> {
            id: &'a str,
            workspace_id: &'a str,
            seq: i64,
            occurred_at: i64,
            mode: &'a Option<String>,
            actor: &'a Actor,
            action: &'a str,
            target: &'a Option<Target>,
            client_addr: &'a Option<String>,
            user_agent: &'a Option<String>,
            request_id: &'a Option<String>,
            details: &'a Value,
            prev_hash: &'a str,
        }
        let body = Hashed {
            id: &self.id,
            workspace_id: &self.workspace_id,
            seq: self.seq,
            occurred_at: self.occurred_at.timestamp_millis(),
            mode: &self.mode,
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            client_addr: &self.client_addr,
            user_agent: &self.user_agent,
            request_id: &self.request_id,
            details: &self.details,
            prev_hash: &self.prev_hash,
        };
        // serde_json writes struct fields in order and maps with sorted keys,
        // so the encoding is canonical.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        hex(&Sha256::digest(&bytes))
    }
}

/// Where a chain stops being intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The event's own fields no longer match its hash.
    Altered { seq: i64, id: String },
    /// The event does not follow the one before it (removed or reordered).
    Broken { seq: i64, id: String },
}

/// Checks a chain one event at a time, so a log of any size can be
/// verified without holding it in memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    prev: String,
    seq: i64,
    checked: usize,
}

impl ChainVerifier {
    /// A verifier whose first event must follow `anchor`: the genesis
    /// `(GENESIS, 0)`, or the hash and seq of the last pruned event.
    pub fn new(anchor: (&str, i64)) -> ChainVerifier {
        ChainVerifier {
            prev: anchor.0.to_owned(),
            seq: anchor.1,
            checked: 0,
        }
    }

    pub fn push(&mut self, e: &Event) -> Result<(), ChainBreak> {
        if e.compute_hash() != e.hash {
            return Err(ChainBreak::Altered {
                seq: e.seq,
                id: e.id.clone(),
            });
        }
        if e.prev_hash != self.prev || e.seq != self.seq + 1 {
            return Err(ChainBreak::Broken {
                seq: e.seq,
                id: e.id.clone(),
            });
        }
        self.prev.clone_from(&e.hash);
        self.seq = e.seq;
        self.checked += 1;
        Ok(())
    }

    /// Events checked so far.
    pub fn checked(&self) -> usize {
        self.checked
    }
}

/// Checks events of one workspace, in chain order. `anchor` is the hash and
/// seq the first event must follow (the genesis, or the last pruned event).
pub fn verify_chain<'a>(
    anchor: (&str, i64),
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<usize, ChainBreak> {
    let mut v = ChainVerifier::new(anchor);
    for e in events {
        v.push(e)?;
    }
    Ok(v.checked())
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainBreak::Altered { seq, id } => write!(f, "event #{seq} ({id}) was altered"),
            ChainBreak::Broken { seq, id } => {
                write!(f, "event #{seq} ({id}) does not follow the event before it: one was removed, reordered or altered")
            }
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: i64) -> Vec<Event> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let mut e = Event {
                    id: format!("evt_{seq}"),
                    workspace_id: "ws_1".into(),
                    seq,
                    occurred_at: Utc::now(),
                    mode: Some("live".into()),
                    actor: Actor::system(),
                    action: "token.created".into(),
                    target: None,
                    client_addr: None,
                    user_agent: None,
                    request_id: None,
                    details: json!({"n": seq}),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = e.compute_hash();
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify_chain((GENESIS, 0), &chain(5)), Ok(5));
    }

    #[test]
    fn edits_removals_and_swaps_are_found() {
        let mut edited = chain(5);
        edited[2].action = "token.revoked".into();
        assert!(matches!(
            verify_chain((GENESIS, 0), &edited),
            Err(ChainBreak::Altered { seq: 3, .. })
        ));

        let mut removed = chain(5);
        removed.remove(1);
        assert!(matches!(
            verify_chain((GENESIS, 0), &removed),
            Err(ChainBreak::Broken { seq: 3, .. })
        ));

        let mut swapped = chain(5);
        swapped.swap(1, 2);
        assert!(matches!(
            verify_chain((GENESIS, 0), &swapped),
            Err(ChainBreak::Broken { seq: 3, .. })
        ));
    }

    #[test]
    fn a_pruned_chain_verifies_from_its_anchor() {
        let events = chain(5);
        let anchor = (events[1].hash.as_str(), events[1].seq);
        assert_eq!(verify_chain(anchor, &events[2..]), Ok(3));
    }
}
