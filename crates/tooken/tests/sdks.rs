//! The SDKs beyond Rust, tested against this build of `tooken serve`.
//!
//! Each test runs one SDK's own test suite (which starts the server from
//! `TOOKEN_BIN` on a fresh store), through tooken-testkit's harness: a
//! suite whose toolchain or packages are missing is reported as *ignored*
//! with a one-line notice saying how to install them; with
//! `TOOKEN_TEST_REQUIRE_ALL=1` (as in CI) it fails instead.
//!
//! - `python_sdk`: `pytest` over `clients/python/tests`, in the virtualenv
//!   `scripts/python-sdk-env.sh` makes (`<target>/python-sdk`), or the
//!   Python named by `TOOKEN_PYTHON`.
//! - `typescript_sdk`: `npm test` in `clients/typescript` (builds the
//!   package and its tests with `tsc`, then `node --test`), once `npm ci`
//!   has installed its dev dependencies; Node ≥ 18.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tooken_testkit::harness::{run, Test};
use tooken_testkit::Service;

const TOOKEN_BIN: &str = env!("CARGO_BIN_EXE_tooken");

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/tooken is two levels below the workspace root")
        .to_path_buf()
}

/// `<target>`, from where cargo put the binary (`<target>/<profile>/tooken`).
fn target_dir() -> PathBuf {
    Path::new(TOOKEN_BIN)
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The test for one SDK's suite: run when `readiness` is a command; when
/// it says what is missing, ignored with a notice (or failed under
/// `TOOKEN_TEST_REQUIRE_ALL=1`).
fn suite(name: &'static str, service: Service, readiness: Result<Command, String>) -> Test {
    match readiness {
        Ok(command) => Test::sync(name, move || run_suite(name, command)).needs(service),
        Err(why) => Test::sync(name, || {}).needs(service).unless(Some(why)),
    }
}

fn run_suite(name: &str, mut command: Command) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{name}: cannot start {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // The runner's count of passed tests ("120 passed in 20s", "# pass 75"),
    // for the log.
    if let Some(last) = stdout.lines().rev().find(|l| l.contains("pass")) {
        println!("{name}: {}", last.trim().trim_matches('='));
    }
}

fn python_sdk() -> Result<Command, String> {
    let root = workspace_root();
    let python = match std::env::var_os("TOOKEN_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => target_dir().join("python-sdk/bin/python"),
    };
    let hint = "run scripts/python-sdk-env.sh (or set TOOKEN_PYTHON to a Python with \
                clients/python/requirements-test.txt installed)";
    if !python.exists() {
        return Err(format!("no Python at {}: {hint}", python.display()));
    }
    let probe = Command::new(&python)
        .args([
            "-c",
            "import sys; assert sys.version_info >= (3, 10), sys.version; \
             import pytest, httpx, fastapi, django, rest_framework",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            let why = String::from_utf8_lossy(&out.stderr);
            let why = why.lines().last().unwrap_or("import failed");
            return Err(format!(
                "{} cannot run the suite ({why}): {hint}",
                python.display()
            ));
        }
        Err(e) => return Err(format!("{}: {e}: {hint}", python.display())),
    }
    let sdk = root.join("clients/python");
    let mut command = Command::new(python);
    command
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .current_dir(&sdk)
        .env("TOOKEN_BIN", TOOKEN_BIN)
        // The sources of this checkout, whatever the virtualenv holds.
        .env("PYTHONPATH", sdk.join("src"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("TOOKEN_URL")
        .env_remove("TOOKEN_API_KEY")
        .env_remove("TOOKEN_VERIFY_KEY");
    Ok(command)
}

fn typescript_sdk() -> Result<Command, String> {
    let sdk = workspace_root().join("clients/typescript");
    let hint = "install Node.js ≥ 18 with npm, then run `npm ci --prefix clients/typescript`";
    let version = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => return Err(format!("no `node` on PATH: {hint}")),
    };
    let major = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if major.is_none_or(|m| m < 18) {
        return Err(format!("node {version} is older than 18: {hint}"));
    }
    if !sdk.join("node_modules/typescript/package.json").exists() {
        return Err(format!("no clients/typescript/node_modules: {hint}"));
    }
    let mut command = Command::new("npm");
    command
        .args(["test", "--silent"])
        .current_dir(&sdk)
        .env("TOOKEN_BIN", TOOKEN_BIN)
        .env_remove("TOOKEN_URL")
        .env_remove("TOOKEN_API_KEY")
        .env_remove("TOOKEN_VERIFY_KEY");
    Ok(command)
}

fn main() {
    run(vec![
        suite("python_sdk", Service::Python, python_sdk()),
        suite("typescript_sdk", Service::Node, typescript_sdk()),
    ]);
}
