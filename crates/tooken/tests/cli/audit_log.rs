//! `tooken audit list|export` against a real server, and `tooken audit
//! verify FILE` on a real export: intact, then edited, cut and reordered.

use serde_json::Value;

use crate::run::{tooken, Api, Run};

/// A server with a little history: three tokens, one rotated, one revoked.
fn api_with_history() -> (Api, String) {
    let api = Api::start();
    let (a, _) = api.create_token(&["--name", "a"]);
    let (b, _) = api.create_token(&["--name", "b"]);
    api.create_token(&["--name", "c"]);
    api.run(&["tokens", "rotate", &a]).assert_code(0);
    api.run(&["tokens", "revoke", &b, "--reason", "test"])
        .assert_code(0);
    (api, b)
}

fn export(api: &Api) -> String {
    let run = api.run(&["audit", "export"]);
    run.assert_code(0);
    run.stdout
}

fn verify_text(api: &Api, text: &str) -> Run {
    let path = api.dir.path().join("audit.ndjson");
    std::fs::write(&path, text).unwrap();
    tooken(api.dir.path(), &[], &["audit", "verify", "audit.ndjson"])
}

fn events(ndjson: &str) -> Vec<Value> {
    ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn list_shows_events_newest_first_as_a_table_and_as_json() {
    let (api, revoked) = api_with_history();
    let table = api.run(&["audit", "list"]);
    table.assert_code(0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("TIME") && lines[0].contains("ACTION"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("token.revoked") && lines[1].contains(&revoked),
        "{lines:?}"
    );
    assert!(table.stdout.contains("token.rotated") && table.stdout.contains("token.created"));
    let hint = format!("tok_live_…{}", &api.key[api.key.len() - 4..]);
    assert!(
        table.stdout.contains(&hint),
        "the actor, by hint: {}",
        table.stdout
    );

    let only = api
        .run(&["audit", "list", "--action", "token.revoked", "--json"])
        .json();
    let data = only["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["target"]["id"], revoked.as_str());
    assert_eq!(data[0]["details"]["reason"], "test");

    let targeted = api
        .run(&["audit", "list", "--target", &revoked, "--json"])
        .json();
    let actions: Vec<&str> = targeted["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["token.revoked", "token.created"]);

    let page = api.run(&["audit", "list", "--limit", "2", "--json"]).json();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["has_more"], true);

    let all = api
        .run(&["audit", "list", "--limit", "1", "--all", "--json"])
        .json();
    let all = all["data"].as_array().unwrap();
    let exported = events(&export(&api));
    assert_eq!(
        all.len(),
        exported.len(),
        "--all follows the cursor to the end"
    );
    let mut ids: Vec<&Value> = all.iter().map(|e| &e["id"]).collect();
    ids.reverse();
    let exported_ids: Vec<&Value> = exported.iter().map(|e| &e["id"]).collect();
    assert_eq!(ids, exported_ids, "the export is oldest first");

    let future = api.run(&["audit", "list", "--since", "2999-01-01T00:00:00Z"]);
    future.assert_code(0);
    assert_eq!(future.stdout, "No events.\n");
    api.run(&["audit", "list", "--since", "yesterday"])
        .assert_code(2);
}

fn export_writes_ndjson_to_stdout_or_a_file() {
    let (api, _) = api_with_history();
    let text = export(&api);
    let list = events(&text);
    // The bootstrap's events, then 3 × token.created, rotated, revoked.
    let actions: Vec<&str> = list.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions[0], "workspace.created");
    assert_eq!(
        actions[actions.len() - 5..],
        [
            "token.created",
            "token.created",
            "token.created",
            "token.rotated",
            "token.revoked"
        ]
    );
    let seqs: Vec<i64> = list.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=list.len() as i64).collect::<Vec<_>>(),
        "chain order"
    );
    assert!(text.ends_with('\n'));

    let run = api.run(&["audit", "export", "--output", "out.ndjson"]);
    run.assert_code(0);
    assert!(run.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(api.dir.path().join("out.ndjson")).unwrap(),
        text
    );
    assert!(!api.dir.path().join("out.ndjson.partial").exists());

    let filtered = api.run(&["audit", "export", "--action", "token.created"]);
    assert_eq!(events(&filtered.stdout).len(), 3);
}

fn a_real_export_verifies_offline() {
    let (api, _) = api_with_history();
    let text = export(&api);
    let list = events(&text);
    let (ws, n) = (list[0]["workspace_id"].as_str().unwrap(), list.len());
    // Offline: no server address, no key.
    let run = verify_text(&api, &text);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{ws}: intact ({n} events)\n"));

    // A pruned (or --since) export starts after an anchor, and says so.
    let tail: String = text.lines().skip(3).map(|l| format!("{l}\n")).collect();
    let run = verify_text(&api, &tail);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains(&format!("intact ({} events, from #4", n - 3)),
        "{run:?}"
    );
}

fn an_edited_event_is_named() {
    let (api, _) = api_with_history();
    let text = export(&api);
    let mut list = events(&text);
    let last = list.len() - 1;
    assert_eq!(list[last]["action"], "token.revoked");
    // Hide the revocation reason, as someone covering tracks might.
    list[last]["details"]["reason"] = Value::from("routine");
    let tampered: String = list.iter().map(|e| format!("{e}\n")).collect();
    let run = verify_text(&api, &tampered);
    run.assert_code(1);
    let id = list[last]["id"].as_str().unwrap();
    let n = list.len();
    assert!(
        run.stdout.contains(&format!(
            "BROKEN at event #{n} ({id}, line {n}): its contents were altered"
        )),
        "{run:?}"
    );
    assert!(run.error_line().contains("does not verify"));

    // Editing the raw text, not the parsed JSON, is caught the same way.
    let rotated = list
        .iter()
        .find(|e| e["action"] == "token.rotated")
        .unwrap();
    let raw = text.replacen("token.rotated", "token.created", 1);
    let run = verify_text(&api, &raw);
    run.assert_code(1);
    assert!(
        run.stdout.contains(&format!(
            "BROKEN at event #{} ({}, line",
            rotated["seq"],
            rotated["id"].as_str().unwrap()
        )),
        "{run:?}"
    );
}

fn a_deleted_event_is_named() {
    let (api, _) = api_with_history();
    let text = export(&api);
    let list = events(&text);
    let without: String = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let run = verify_text(&api, &without);
    run.assert_code(1);
    let next = list[4]["id"].as_str().unwrap();
    assert!(
        run.stdout.contains(&format!(
            "BROKEN at event #5 ({next}, line 4): event #4 is missing"
        )),
        "{run:?}"
    );
}

fn swapped_events_are_named() {
    let (api, _) = api_with_history();
    let text = export(&api);
    let list = events(&text);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(4, 5);
    let swapped: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let run = verify_text(&api, &swapped);
    run.assert_code(1);
    let moved = list[5]["id"].as_str().unwrap();
    assert!(
        run.stdout.contains(&format!(
            "BROKEN at event #6 ({moved}, line 5): it is out of order"
        )),
        "{run:?}"
    );
}

fn a_line_that_is_not_an_event_is_named_by_number() {
    let (api, _) = api_with_history();
    let mut text = export(&api);
    let forged = text.lines().count() + 1;
    text.push_str("{\"id\": \"evt_forged\"}\n");
    let run = verify_text(&api, &text);
    run.assert_code(1);
    assert!(
        run.error_line()
            .starts_with(&format!("error: line {forged} is not an audit event")),
        "{run:?}"
    );

    let missing = tooken(api.dir.path(), &[], &["audit", "verify", "nope.ndjson"]);
    missing.assert_code(2);
    assert!(missing.error_line().contains("nope.ndjson"));
}

fn interleaved_workspaces_are_verified_each_on_its_own() {
    // Two servers, two stores, two workspaces: their exports merged line by
    // line still verify, each chain in its own file order.
    let (one, _) = api_with_history();
    let two = Api::start();
    two.create_token(&["--name", "other"]);
    let (a, b) = (export(&one), export(&two));
    let mut merged = String::new();
    let (mut la, mut lb) = (a.lines(), b.lines());
    loop {
        match (la.next(), lb.next()) {
            (None, None) => break,
            (x, y) => {
                for l in [x, y].into_iter().flatten() {
                    merged.push_str(l);
                    merged.push('\n');
                }
            }
        }
    }
    let run = verify_text(&one, &merged);
    run.assert_code(0);
    let expect = |text: &str| {
        let list = events(text);
        format!(
            "{}: intact ({} events)\n",
            list[0]["workspace_id"].as_str().unwrap(),
            list.len()
        )
    };
    assert_eq!(run.stdout, expect(&a) + &expect(&b));
}

tooken_testkit::tests! {
    fn list_shows_events_newest_first_as_a_table_and_as_json,
    fn export_writes_ndjson_to_stdout_or_a_file,
    fn a_real_export_verifies_offline,
    fn an_edited_event_is_named,
    fn a_deleted_event_is_named,
    fn swapped_events_are_named,
    fn a_line_that_is_not_an_event_is_named_by_number,
    fn interleaved_workspaces_are_verified_each_on_its_own,
}
