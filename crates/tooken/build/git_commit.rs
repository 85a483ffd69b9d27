//! Which commit a build of `tooken` comes from, for `tooken --version`.
//!
//! Shared by the build script and its tests: the override
//! (`TOOKEN_GIT_COMMIT`, for builds without `.git`, such as a container
//! build), else `git rev-parse HEAD` in the source tree, else "unknown".

use std::path::{Path, PathBuf};
use std::process::Command;

/// Hexadecimal commit names are cut to this many digits.
pub const SHORT: usize = 12;

/// What the build records, and the files whose change means HEAD moved.
#[derive(Debug, PartialEq, Eq)]
pub struct GitCommit {
    pub commit: String,
    /// Where it came from: "override", "git" or "unknown".
    pub source: &'static str,
    /// `HEAD`, the branch it names and `packed-refs`: a rebuild is due
    /// when one of them changes, and only then.
    pub watch: Vec<PathBuf>,
}

/// Resolves the commit of the source tree at `dir`, preferring `overridden`
/// (the value of `TOOKEN_GIT_COMMIT`) when it holds anything printable.
pub fn resolve(overridden: Option<&str>, dir: &Path) -> GitCommit {
    if let Some(value) = overridden.and_then(clean) {
        return GitCommit {
            commit: value,
            source: "override",
            watch: Vec::new(),
        };
    }
    match from_git(dir) {
        Some(found) => found,
        None => GitCommit {
            commit: "unknown".to_owned(),
            source: "unknown",
            watch: Vec::new(),
        },
    }
}

/// An override as it will be printed: trimmed, a hexadecimal commit name
/// shortened as git's would be, anything else kept if it is one short word.
fn clean(raw: &str) -> Option<String> {
    let value = raw.trim();
    if value.is_empty() || value.len() > 64 || !value.chars().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    if value.len() > SHORT && value.chars().all(|c| c.is_ascii_hexdigit()) {
        return Some(value[..SHORT].to_ascii_lowercase());
    }
    Some(value.to_owned())
}

fn from_git(dir: &Path) -> Option<GitCommit> {
    let commit = git(dir, &["rev-parse", &format!("--short={SHORT}"), "HEAD"])?;
    let git_dir = PathBuf::from(git(dir, &["rev-parse", "--absolute-git-dir"])?);
    let common_dir = absolute(
        dir,
        &git(dir, &["rev-parse", "--git-common-dir"]).unwrap_or_default(),
    )
    .unwrap_or_else(|| git_dir.clone());
    let mut watch = vec![git_dir.join("HEAD")];
    // On a branch, a commit moves the branch's ref, not HEAD itself.
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(common_dir.join(branch));
    }
    watch.push(common_dir.join("packed-refs"));
    // A path that does not exist would make cargo rerun the script on
    // every build.
    watch.retain(|p| p.exists());
    Some(GitCommit {
        commit,
        source: "git",
        watch,
    })
}

fn absolute(dir: &Path, path: &str) -> Option<PathBuf> {
    if path.is_empty() {
        return None;
    }
    let path = Path::new(path);
    Some(if path.is_absolute() {
        path.to_owned()
    } else {
        dir.join(path)
    })
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
