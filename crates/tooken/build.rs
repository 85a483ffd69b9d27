//! Records the commit `tooken --version` prints (see `build/git_commit.rs`).

#[path = "build/git_commit.rs"]
mod git_commit;

fn main() {
    println!("cargo:rerun-if-env-changed=TOOKEN_GIT_COMMIT");
    let dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let overridden = std::env::var("TOOKEN_GIT_COMMIT").ok();
    let found = git_commit::resolve(overridden.as_deref(), &dir);
    for path in &found.watch {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rustc-env=TOOKEN_GIT_COMMIT={}", found.commit);
    println!("cargo:rustc-env=TOOKEN_GIT_COMMIT_SOURCE={}", found.source);
}
