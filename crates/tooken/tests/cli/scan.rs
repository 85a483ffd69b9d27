//! `tooken scan PATH…` on a real API key in a temporary tree.

use std::path::Path;

use crate::helpers::admin;
use crate::run::tooken;

/// A real API key, issued by `tooken admin` on a store in `dir`.
fn real_key(dir: &Path) -> String {
    let (ok, _, err) = admin(dir, &["workspaces", "create", "default"]);
    assert!(ok, "{err}");
    let (ok, out, err) = admin(dir, &["api-keys", "create", "--name", "leaky"]);
    assert!(ok, "{err}");
    out.trim().to_owned()
}

/// The same shape with a wrong checksum: what a random string looks like.
fn look_alike(key: &str) -> String {
    let mut s = key.to_owned();
    let last = s.pop().unwrap();
    s.push(if last == 'Z' { 'Y' } else { 'Z' });
    s
}

fn hint(key: &str) -> String {
    format!("tok_live_…{}", &key[key.len() - 4..])
}

fn finds_a_real_key_and_prints_only_its_hint() {
    let store = tempfile::tempdir().unwrap();
    let key = real_key(store.path());
    let tree = tempfile::tempdir().unwrap();
    let t = tree.path();
    std::fs::create_dir_all(t.join("src/deploy")).unwrap();
    std::fs::write(
        t.join("src/deploy/config.yaml"),
        format!("service: billing\napi:\n  key: \"{key}\"\n"),
    )
    .unwrap();
    std::fs::write(t.join(".env"), format!("TOOKEN_API_KEY={key}\n")).unwrap();
    std::fs::write(t.join("README.md"), "nothing to see\n").unwrap();

    let run = tooken(t, &[], &["scan", "."]);
    run.assert_code(1);
    assert_eq!(
        run.stdout,
        format!(
            "./.env:1: {h}\n./src/deploy/config.yaml:3: {h}\n",
            h = hint(&key)
        )
    );
    assert!(!run.stdout.contains(&key) && !run.stderr.contains(&key));
    assert!(run.stderr.contains("Found 2"), "{run:?}");
}

fn a_look_alike_with_a_wrong_checksum_is_not_reported() {
    let store = tempfile::tempdir().unwrap();
    let key = real_key(store.path());
    let tree = tempfile::tempdir().unwrap();
    let t = tree.path();
    std::fs::write(
        t.join("fixtures.txt"),
        format!(
            "{}\ntok_live_{}\nxtok_live_{}\n{}_suffix\n",
            look_alike(&key),
            "A".repeat(36),
            &key["tok_live_".len()..],
            key
        ),
    )
    .unwrap();
    let run = tooken(t, &[], &["scan", "fixtures.txt"]);
    run.assert_code(0);
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr.contains("No Tooken credentials found in 1 file"),
        "{run:?}"
    );

    // The same file with the real key on a line of its own is a finding.
    std::fs::write(t.join("fixtures.txt"), format!("ok\n({key})\n")).unwrap();
    let run = tooken(t, &[], &["scan", "fixtures.txt"]);
    run.assert_code(1);
    assert_eq!(run.stdout, format!("fixtures.txt:2: {}\n", hint(&key)));
}

fn gitignored_and_binary_files_are_skipped() {
    let store = tempfile::tempdir().unwrap();
    let key = real_key(store.path());
    let tree = tempfile::tempdir().unwrap();
    let t = tree.path();
    std::fs::create_dir_all(t.join("target")).unwrap();
    std::fs::create_dir_all(t.join(".git")).unwrap();
    std::fs::write(t.join(".gitignore"), "target/\n*.log\n").unwrap();
    std::fs::write(t.join("target/build.txt"), &key).unwrap();
    std::fs::write(t.join("debug.log"), &key).unwrap();
    std::fs::write(t.join(".git/config"), &key).unwrap();
    let mut binary = b"\x7fELF\x00\x00".to_vec();
    binary.extend_from_slice(format!(" {key} ").as_bytes());
    std::fs::write(t.join("app.bin"), binary).unwrap();
    std::fs::write(t.join("main.rs"), format!("const K: &str = \"{key}\";\n")).unwrap();

    let run = tooken(t, &[], &["scan", "."]);
    run.assert_code(1);
    assert_eq!(run.stdout, format!("./main.rs:1: {}\n", hint(&key)));

    let all = tooken(t, &[], &["scan", ".", "--no-ignore"]);
    all.assert_code(1);
    assert!(all.stdout.contains("./target/build.txt:1:"), "{all:?}");
    assert!(all.stdout.contains("./debug.log:1:"), "{all:?}");
    assert!(!all.stdout.contains("app.bin"), "binary files stay skipped");
    assert!(!all.stdout.contains(".git/"), ".git is never scanned");
}

fn json_lists_path_line_kind_and_hint() {
    let store = tempfile::tempdir().unwrap();
    let key = real_key(store.path());
    let token = tooken_core::Credential::generate("acme", tooken_core::Mode::Test);
    let tree = tempfile::tempdir().unwrap();
    let t = tree.path();
    std::fs::write(t.join("a.txt"), format!("\n\n{key}\n")).unwrap();
    std::fs::write(
        t.join("b.json"),
        format!("{{\"t\":\"{}\"}}", token.expose()),
    )
    .unwrap();

    let run = tooken(t, &[], &["scan", "a.txt", "b.json", "--json"]);
    run.assert_code(1);
    assert_eq!(
        run.json(),
        serde_json::json!([
            {"path": "a.txt", "line": 3, "kind": "api_key", "hint": hint(&key)},
            {"path": "b.json", "line": 1, "kind": "token", "hint": token.hint()},
        ])
    );

    std::fs::write(t.join("c.txt"), "clean\n").unwrap();
    let clean = tooken(t, &[], &["scan", "c.txt", "--json"]);
    clean.assert_code(0);
    assert_eq!(clean.json(), serde_json::json!([]));
}

fn a_path_that_does_not_exist_is_exit_2() {
    let tree = tempfile::tempdir().unwrap();
    let run = tooken(tree.path(), &[], &["scan", "no-such-dir"]);
    run.assert_code(2);
    assert!(run.error_line().contains("no-such-dir"), "{run:?}");
    tooken(tree.path(), &[], &["scan"]).assert_code(2);
}

tooken_testkit::tests! {
    fn finds_a_real_key_and_prints_only_its_hint,
    fn a_look_alike_with_a_wrong_checksum_is_not_reported,
    fn gitignored_and_binary_files_are_skipped,
    fn json_lists_path_line_kind_and_hint,
    fn a_path_that_does_not_exist_is_exit_2,
}
