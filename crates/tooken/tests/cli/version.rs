//! `tooken --version`, and how the build finds the commit it prints.

use std::path::Path;
use std::process::Command;

use crate::git_commit::{resolve, SHORT};
use crate::run::tooken;

fn version_names_the_version_and_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let expected = format!(
        "tooken {} (commit {})\n",
        env!("CARGO_PKG_VERSION"),
        env!("TOOKEN_GIT_COMMIT")
    );
    for flag in ["--version", "-V"] {
        let run = tooken(dir.path(), &[], &[flag]);
        run.assert_code(0);
        assert_eq!(run.stdout, expected, "{flag}");
    }
}

/// What this build recorded is this checkout's HEAD, unless the build was
/// told otherwise.
fn the_commit_is_this_checkouts_head() {
    let recorded = env!("TOOKEN_GIT_COMMIT");
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    let head = git(source, &["rev-parse", &format!("--short={SHORT}"), "HEAD"]);
    match env!("TOOKEN_GIT_COMMIT_SOURCE") {
        "override" => assert_ne!(recorded, "unknown"),
        "git" => assert_eq!(Some(recorded.to_owned()), head),
        "unknown" => {
            assert_eq!(recorded, "unknown");
            assert_eq!(head, None, "git knows HEAD, the build did not");
        }
        other => panic!("unexpected source {other:?}"),
    }
}

fn an_override_wins_and_a_full_hash_is_shortened() {
    let dir = tempfile::tempdir().unwrap();
    let full = "0123456789ABCDEF0123456789abcdef01234567";
    let found = resolve(Some(&format!(" {full}\n")), dir.path());
    assert_eq!(found.commit, "0123456789ab");
    assert_eq!(found.source, "override");
    assert!(found.watch.is_empty(), "nothing on disk to watch");
    assert_eq!(
        resolve(Some("v1.2.0-rc.1"), dir.path()).commit,
        "v1.2.0-rc.1",
        "a name that is not a hash is kept as given"
    );
    assert_eq!(resolve(Some("abc1234"), dir.path()).commit, "abc1234");
}

fn an_unusable_override_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(65);
    for bad in [
        "",
        "  \n",
        "two words",
        "tab\there",
        "é-accent",
        long.as_str(),
    ] {
        assert_eq!(
            resolve(Some(bad), dir.path()).commit,
            "unknown",
            "{bad:?} is not printed"
        );
    }
}

fn outside_a_checkout_the_commit_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let found = resolve(None, dir.path());
    assert_eq!(found.commit, "unknown");
    assert_eq!(found.source, "unknown");
    assert!(found.watch.is_empty());
}

/// The build script reruns only when a watched file changes: HEAD and the
/// branch it names, which a commit moves.
fn in_a_checkout_the_commit_is_head_and_a_commit_moves_a_watched_file() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git_ok(repo, &["init", "-q", "-b", "trunk"]);
    commit(repo, "one");
    let first = resolve(None, repo);
    let head = git(repo, &["rev-parse", "HEAD"]).unwrap();
    assert_eq!(first.commit, head[..SHORT]);
    assert_eq!(first.source, "git");
    let git_dir = repo.join(".git").canonicalize().unwrap();
    let branch = git_dir.join("refs/heads/trunk");
    let watched: Vec<_> = first
        .watch
        .iter()
        .map(|p| p.canonicalize().unwrap())
        .collect();
    assert!(watched.contains(&git_dir.join("HEAD")), "{watched:?}");
    assert!(watched.contains(&branch), "{watched:?}");
    assert!(first.watch.iter().all(|p| p.exists()), "{:?}", first.watch);

    let before = std::fs::read_to_string(&branch).unwrap();
    commit(repo, "two");
    let second = resolve(None, repo);
    assert_ne!(second.commit, first.commit);
    assert_ne!(std::fs::read_to_string(&branch).unwrap(), before);

    // Detached: HEAD itself holds the commit.
    git_ok(repo, &["checkout", "-q", "--detach", "HEAD~1"]);
    let detached = resolve(None, repo);
    assert_eq!(detached.commit, first.commit);
    let watched: Vec<_> = detached
        .watch
        .iter()
        .map(|p| p.canonicalize().unwrap())
        .collect();
    assert!(watched.contains(&git_dir.join("HEAD")), "{watched:?}");
    assert!(!watched.contains(&branch), "{watched:?}");
}

fn commit(repo: &Path, message: &str) {
    std::fs::write(repo.join("file"), message).unwrap();
    git_ok(repo, &["add", "file"]);
    git_ok(
        repo,
        &[
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "-m",
            message,
        ],
    );
}

fn git_ok(dir: &Path, args: &[&str]) {
    assert!(git(dir, args).is_some(), "git {args:?} failed");
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git is installed");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

tooken_testkit::tests! {
    fn version_names_the_version_and_the_commit,
    fn the_commit_is_this_checkouts_head,
    fn an_override_wins_and_a_full_hash_is_shortened,
    fn an_unusable_override_is_ignored,
    fn outside_a_checkout_the_commit_is_unknown,
    fn in_a_checkout_the_commit_is_head_and_a_commit_moves_a_watched_file,
}
