//! `tooken.toml`: `tooken config check`, and the layering of `tooken serve`
//! settings (flags > TOOKEN_* environment > tooken.toml > defaults).

use std::process::Command;

use crate::helpers::{db_path, start_server, BIN};
use crate::run::tooken;

fn check_accepts_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tooken.toml"),
        "listen = \"0.0.0.0:7878\"\ndatabase = \"sqlite://tooken.db\"\nlog_format = \"json\"\n\
         auth_slow_after = 5\nauth_block_after = 20\nauth_window_seconds = 120\n",
    )
    .unwrap();
    let run = tooken(dir.path(), &[], &["config", "check"]);
    run.assert_code(0);
    assert!(run.stdout.starts_with("tooken.toml: valid"), "{run:?}");
    assert!(run.stdout.contains("listen") && run.stdout.contains("auth_window_seconds"));

    std::fs::write(dir.path().join("other.toml"), "# nothing set\n").unwrap();
    let run = tooken(dir.path(), &[], &["config", "check", "other.toml"]);
    run.assert_code(0);
    assert_eq!(run.stdout, "other.toml: valid (sets nothing)\n");
}

fn check_names_unknown_keys_and_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tooken.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:7878\"\ndatabse = \"sqlite://x.db\"\n",
    )
    .unwrap();
    let run = tooken(dir.path(), &[], &["config", "check"]);
    run.assert_code(1);
    assert_eq!(
        run.stdout,
        "tooken.toml: unknown key `databse` (did you mean `database`?)\n"
    );
    assert!(run.error_line().contains("1 unknown key"), "{run:?}");

    std::fs::write(&path, "listen = \"127.0.0.1:7878\"\nauth_slow_after = -3\n").unwrap();
    let run = tooken(dir.path(), &[], &["config", "check"]);
    run.assert_code(1);
    let line = run.error_line();
    assert!(
        line.contains("line 2") && line.contains("auth_slow_after"),
        "{line}"
    );

    std::fs::write(&path, "log_format = \"xml\"\n").unwrap();
    let run = tooken(dir.path(), &[], &["config", "check"]);
    run.assert_code(1);
    assert!(run.error_line().contains("xml"), "{run:?}");

    std::fs::write(&path, "listen = [\n").unwrap();
    tooken(dir.path(), &[], &["config", "check"]).assert_code(1);

    let missing = tooken(dir.path(), &[], &["config", "check", "nope.toml"]);
    missing.assert_code(2);
    assert!(missing.error_line().contains("nope.toml"));
}

fn serve_takes_the_database_from_tooken_toml_below_env_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("tooken.toml"),
        "database = \"sqlite://from-toml.db\"\n",
    )
    .unwrap();

    let server = start_server(d, &[], &[]);
    server.wait_for_stdout("shown only this once");
    assert!(d.join("from-toml.db").exists(), "tooken.toml is read");
    assert!(!db_path(d).exists(), "the default is not used");
    server.stop_with("TERM");

    let server = start_server(d, &[], &[("TOOKEN_DATABASE_URL", "sqlite://from-env.db")]);
    server.wait_for_stdout("shown only this once");
    assert!(
        d.join("from-env.db").exists(),
        "the environment beats the file"
    );
    server.stop_with("TERM");

    let server = start_server(
        d,
        &["--database", "sqlite://from-flag.db"],
        &[("TOOKEN_DATABASE_URL", "sqlite://from-env.db")],
    );
    server.wait_for_stdout("shown only this once");
    assert!(d.join("from-flag.db").exists(), "the flag beats both");
    server.stop_with("TERM");

    // --config names another file, wherever it is.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = elsewhere.path().join("prod.toml");
    std::fs::write(&other, "database = \"sqlite://from-config-flag.db\"\n").unwrap();
    let server = start_server(d, &["--config", other.to_str().unwrap()], &[]);
    server.wait_for_stdout("shown only this once");
    assert!(d.join("from-config-flag.db").exists());
}

fn serve_takes_listen_from_the_file_and_warns_about_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Hold a port so that a server told to listen there fails at once,
    // after it has read its configuration.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    std::fs::write(
        d.join("tooken.toml"),
        format!("listen = \"{addr}\"\nlissen = \"127.0.0.1:1\"\n"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .current_dir(d)
        .env_remove("TOOKEN_LISTEN")
        .env_remove("TOOKEN_DATABASE_URL")
        .env_remove("TOOKEN_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("warning: tooken.toml: unknown key `lissen` (did you mean `listen`?)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "listen came from the file: {stderr}"
    );

    // The flag beats the file: the same directory serves on a free port.
    let server = start_server(d, &["--listen", "127.0.0.1:0"], &[]);
    assert_ne!(server.url, format!("http://{addr}"));
    let listening = server.url.trim_start_matches("http://");
    assert!(std::net::TcpStream::connect(listening).is_ok());
    drop(taken);
}

fn serve_refuses_a_broken_file_and_a_missing_config_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("tooken.toml"), "listen = 7878\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(d)
        .env_remove("TOOKEN_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tooken.toml: line 1"), "{stderr}");
    assert!(!db_path(d).exists(), "nothing is started on a broken file");

    let out = Command::new(BIN)
        .args(["serve", "--config", "missing.toml"])
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

tooken_testkit::tests! {
    fn check_accepts_a_valid_file,
    fn check_names_unknown_keys_and_bad_values,
    fn serve_takes_the_database_from_tooken_toml_below_env_and_flags,
    fn serve_takes_listen_from_the_file_and_warns_about_unknown_keys,
    fn serve_refuses_a_broken_file_and_a_missing_config_path,
}
