//! `tooken audit verify FILE`: proves an NDJSON export of the audit log
//! intact, offline, or names the first event that is not.
//!
//! An export may interleave several workspaces' chains; each is checked on
//! its own, in file order. A chain whose first event is #1 starts at the
//! genesis. One that starts later (retention pruned the events before it, or
//! the export began at `--since`) is checked from its first event's
//! `prev_hash`: what came before it is not in the file and cannot be proven.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use tooken_core::audit::{verify_chain, ChainBreak, Event, GENESIS};

use crate::outcome::{emit, Failure, Outcome};

/// One workspace's events, in file order, with their line numbers.
struct Chain {
    workspace_id: String,
    events: Vec<(usize, Event)>,
}

pub fn verify_file(path: &Path) -> Result<Outcome, Failure> {
    let input: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(path)
                .map_err(|e| Failure::usage(format!("cannot open {}: {e}", path.display())))?,
        )
    };
    let chains = read_chains(BufReader::new(input))?;
    let (report, intact) = verify_chains(&chains);
    emit(&report)?;
    if intact {
        Ok(Outcome::Success)
    } else {
        Err(Failure::refused(
            "the export does not verify: an event was altered, removed or reordered",
        ))
    }
}

/// Parses every line; groups events by workspace, keeping file order.
fn read_chains(input: impl BufRead) -> Result<Vec<Chain>, Failure> {
    let mut chains: Vec<Chain> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, line) in input.lines().enumerate() {
        let number = i + 1;
        let line = line.map_err(|e| Failure::refused(format!("line {number}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(&line)
            .map_err(|e| Failure::refused(format!("line {number} is not an audit event: {e}")))?;
        let slot = *index.entry(event.workspace_id.clone()).or_insert_with(|| {
            chains.push(Chain {
                workspace_id: event.workspace_id.clone(),
                events: Vec::new(),
            });
            chains.len() - 1
        });
        chains[slot].events.push((number, event));
    }
    Ok(chains)
}

/// One line per workspace; `true` when every chain is intact.
fn verify_chains(chains: &[Chain]) -> (String, bool) {
    if chains.is_empty() {
        return ("No events in the file.\n".into(), true);
    }
    let mut out = String::new();
    let mut intact = true;
    for chain in chains {
        let Some((_, first)) = chain.events.first() else {
            continue;
        };
        let pruned = first.seq != 1;
        let anchor = if pruned {
            (first.prev_hash.as_str(), first.seq - 1)
        } else {
            (GENESIS, 0)
        };
        let mut consumed = 0usize;
        let verdict = verify_chain(
            anchor,
            chain
                .events
                .iter()
                .map(|(_, e)| e)
                .inspect(|_| consumed += 1),
        );
        let ws = &chain.workspace_id;
        match verdict {
            Ok(n) if pruned => out.push_str(&format!(
                "{ws}: intact ({n} events, from #{}; the events before it are not in \
                 the file, so the chain is checked from the hash that event #{} links to)\n",
                first.seq, first.seq
            )),
            Ok(n) => out.push_str(&format!("{ws}: intact ({n} events)\n")),
            Err(b) => {
                intact = false;
                // `verify_chain` stops at the first bad event: the last consumed.
                let at = consumed.saturating_sub(1);
                out.push_str(&format!(
                    "{ws}: {}\n",
                    describe_break(&b, &chain.events, at, anchor.1)
                ));
            }
        }
    }
    (out, intact)
}

fn describe_break(b: &ChainBreak, events: &[(usize, Event)], at: usize, anchor_seq: i64) -> String {
    let (line, event) = &events[at];
    let (seq, id) = match b {
        ChainBreak::Altered { seq, id } | ChainBreak::Broken { seq, id } => (seq, id),
    };
    let head = format!("BROKEN at event #{seq} ({id}, line {line})");
    if let ChainBreak::Altered { .. } = b {
        return format!("{head}: its contents were altered (they no longer match its hash)");
    }
    let before = at.checked_sub(1).map(|i| &events[i]);
    let expected = before.map_or(anchor_seq, |(_, e)| e.seq) + 1;
    let later = events[at + 1..]
        .iter()
        .find(|(_, e)| e.seq >= expected && e.seq < event.seq);
    let why = if let (true, Some((l, e))) = (event.seq > expected, later) {
        format!(
            "it is out of order: event #{} comes after it (line {l})",
            e.seq
        )
    } else if event.seq > expected {
        let missing = if event.seq - 1 == expected {
            format!("event #{expected} is missing")
        } else {
            format!("events #{expected}–#{} are missing", event.seq - 1)
        };
        format!(
            "{missing} (removed, or left out of the export: by a filter, or because \
             they are of the other mode, live or test)"
        )
    } else if event.seq < expected {
        match before {
            Some((l, e)) => format!(
                "it is out of order: it comes after event #{} (line {l})",
                e.seq
            ),
            None => "it is out of order".into(),
        }
    } else {
        match before {
            Some((l, e)) => format!(
                "it does not link to event #{} before it (line {l}): \
                 an event was removed, reordered or altered",
                e.seq
            ),
            None => "it does not link to the chain's start".into(),
        }
    };
    format!("{head}: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;
    use tooken_core::audit::Actor;

    fn chain(workspace: &str, n: i64) -> Vec<Event> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let mut e = Event {
                    id: format!("evt_{workspace}_{seq}"),
                    workspace_id: workspace.into(),
                    seq,
                    occurred_at: Utc::now(),
                    mode: Some("live".into()),
                    actor: Actor::system(),
                    action: "token.created".into(),
                    target: None,
                    client_addr: None,
                    user_agent: None,
                    request_id: None,
                    details: json!({ "n": seq }),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = e.compute_hash();
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn ndjson(events: &[Event]) -> String {
        events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect()
    }

    fn check(text: &str) -> (String, bool) {
        let chains = read_chains(text.as_bytes()).map_err(|f| f.message).unwrap();
        verify_chains(&chains)
    }

    #[test]
    fn interleaved_workspaces_verify_separately() {
        let (a, b) = (chain("ws_a", 3), chain("ws_b", 2));
        let mixed = [&a[0], &b[0], &a[1], &b[1], &a[2]].map(Clone::clone);
        let (report, ok) = check(&ndjson(&mixed));
        assert!(ok, "{report}");
        assert_eq!(report, "ws_a: intact (3 events)\nws_b: intact (2 events)\n");
    }

    #[test]
    fn a_pruned_chain_verifies_from_its_first_event_and_says_so() {
        let events = chain("ws_a", 5);
        let (report, ok) = check(&ndjson(&events[2..]));
        assert!(ok, "{report}");
        assert!(report.contains("intact (3 events, from #3"), "{report}");
    }

    #[test]
    fn the_first_bad_event_is_named_with_its_line() {
        let mut edited = chain("ws_a", 4);
        edited[2].action = "token.revoked".into();
        let (report, ok) = check(&ndjson(&edited));
        assert!(!ok);
        assert!(
            report.contains("BROKEN at event #3 (evt_ws_a_3, line 3): its contents were altered"),
            "{report}"
        );

        let mut removed = chain("ws_a", 4);
        removed.remove(1);
        let (report, ok) = check(&ndjson(&removed));
        assert!(!ok);
        assert!(
            report.contains("#3 (evt_ws_a_3, line 2): event #2 is missing"),
            "{report}"
        );

        let mut swapped = chain("ws_a", 4);
        swapped.swap(1, 2);
        let (report, ok) = check(&ndjson(&swapped));
        assert!(!ok);
        assert!(
            report.contains(
                "BROKEN at event #3 (evt_ws_a_3, line 2): it is out of order: \
                 event #2 comes after it (line 3)"
            ),
            "{report}"
        );

        let mut duplicated = chain("ws_a", 3);
        duplicated.insert(2, duplicated[1].clone());
        let (report, ok) = check(&ndjson(&duplicated));
        assert!(!ok);
        assert!(
            report.contains("#2 (evt_ws_a_2, line 3): it is out of order"),
            "{report}"
        );
    }

    #[test]
    fn a_line_that_is_not_an_event_is_named() {
        let mut text = ndjson(&chain("ws_a", 2));
        text.push_str("{\"not\": \"an event\"}\n");
        let err = read_chains(text.as_bytes()).err().unwrap();
        assert!(
            err.message.starts_with("line 3 is not an audit event"),
            "{}",
            err.message
        );
    }

    #[test]
    fn blank_lines_are_ignored() {
        let text = ndjson(&chain("ws_a", 2)).replace('\n', "\n\n");
        assert!(check(&text).1);
    }
}
