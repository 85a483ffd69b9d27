//! The deployment files, tried as far as this machine can:
//!
//! - `deploy/tooken.service`: its `ExecStart` command line, with its
//!   `Environment=` and `WorkingDirectory=`, run against a temporary
//!   directory in place of `/var/lib`, serves; `systemd-analyze verify`
//!   accepts the unit without a warning.
//! - `Dockerfile`: the runtime stage's `ENTRYPOINT`/`CMD` with its `ENV`
//!   and `WORKDIR` (a temporary directory in place of `/data`) serves, and
//!   its `HEALTHCHECK` command says healthy, then unhealthy once the
//!   server is gone. (Building the image needs a container builder: the
//!   CI workflow's image job does that.)
//! - `deploy/nginx.conf`, as `deploy/compose.yaml` mounts it, passes
//!   `nginx -t` (the upstream names resolving to loopback in a private
//!   mount namespace).
//! - The compose file and the GitHub workflows are valid YAML with the
//!   services and steps they are meant to have.
//!
//! A test whose tool (nginx, systemd-analyze, unshare, python3 with PyYAML)
//! is missing is reported as ignored with a notice, and fails under
//! `TOOKEN_TEST_REQUIRE_ALL=1` (tooken-testkit's harness).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tooken_testkit::harness::{run, Test};
use tooken_testkit::Service;

const BIN: &str = env!("CARGO_BIN_EXE_tooken");

/// Why a test failed.
type Failed = Box<dyn std::error::Error>;

fn main() {
    run(vec![
        trial(
            "systemd_unit_exec_start_serves_from_its_state_directory",
            systemd_unit_exec_start_serves,
        ),
        trial(
            "systemd_unit_passes_systemd_analyze_verify",
            systemd_unit_passes_verify,
        )
        .unless(missing_tool("systemd-analyze", "apt-get install systemd")),
        trial(
            "dockerfile_runtime_stage_serves_and_its_healthcheck_tells",
            dockerfile_runtime_stage_serves,
        ),
        trial(
            "compose_nginx_conf_passes_nginx_t",
            compose_nginx_conf_passes,
        )
        .needs(Service::Nginx)
        .unless(missing_tool("unshare", "apt-get install util-linux")),
        trial(
            "compose_and_workflows_are_valid_yaml_with_their_parts",
            compose_and_workflows_are_valid,
        )
        .needs(Service::Python)
        .unless(missing_pyyaml()),
    ]);
}

fn trial(name: &str, body: fn() -> Result<(), Failed>) -> Test {
    Test::sync(name, move || {
        if let Err(failed) = body() {
            panic!("{failed}");
        }
    })
}

/// `Some(why)` when `tool` is not on PATH.
fn missing_tool(tool: &str, hint: &str) -> Option<String> {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(dir.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    });
    (!found).then(|| format!("{tool} is missing ({hint})"))
}

fn missing_pyyaml() -> Option<String> {
    let found = Command::new("python3")
        .args(["-c", "import yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!found).then(|| "PyYAML is missing (apt-get install python3-yaml)".to_owned())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> Result<String, Failed> {
    std::fs::read_to_string(repo().join(relative)).map_err(|e| format!("{relative}: {e}").into())
}

fn check(ok: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if ok {
        Ok(())
    } else {
        Err(message().into())
    }
}

// ---------------------------------------------------------------- systemd

/// The `[Service]` section's settings, in order (a key may repeat).
fn service_settings(unit: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut settings = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        if section == "[Service]" {
            if let Some((k, v)) = line.split_once('=') {
                settings.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
    }
    settings
}

fn one<'a>(settings: &'a [(String, String)], key: &str) -> Result<&'a str, Failed> {
    let values: Vec<&str> = settings
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect();
    match values[..] {
        [v] => Ok(v),
        _ => Err(format!("the unit should set {key}= once, not {values:?}").into()),
    }
}

/// systemd's specifiers the unit uses; any other is a failure, so that a
/// new one gets a meaning here too.
fn expand(value: &str, state: &Path, credentials: &Path) -> Result<String, Failed> {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('S') => out.push_str(state.to_str().unwrap()),
            Some('d') => out.push_str(credentials.to_str().unwrap()),
            Some('%') => out.push('%'),
            other => return Err(format!("specifier %{other:?} in {value:?} is not handled").into()),
        }
    }
    Ok(out)
}

fn systemd_unit_exec_start_serves() -> Result<(), Failed> {
    let unit = read("deploy/tooken.service")?;
    let settings = service_settings(&unit);
    for (key, want) in [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("StateDirectory", "tooken"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("CapabilityBoundingSet", ""),
    ] {
        let got = one(&settings, key)?;
        check(got == want, || {
            format!("{key}={got}, expected {key}={want}")
        })?;
    }

    let root = tempfile::tempdir()?;
    let state = root.path().join("var-lib");
    let credentials = root.path().join("credentials");
    // What systemd does before ExecStart: the state directory, with its mode.
    let state_dir = state.join(one(&settings, "StateDirectory")?);
    std::fs::create_dir_all(&state_dir)?;
    let mode = u32::from_str_radix(one(&settings, "StateDirectoryMode")?, 8)?;
    std::fs::set_permissions(
        &state_dir,
        std::os::unix::fs::PermissionsExt::from_mode(mode),
    )?;

    let mut env = BTreeMap::new();
    for (key, value) in &settings {
        match key.as_str() {
            "Environment" => {
                for assignment in value.split_whitespace() {
                    let (k, v) = assignment
                        .split_once('=')
                        .ok_or_else(|| format!("Environment={value}: no `=`"))?;
                    env.insert(k.to_owned(), expand(v, &state, &credentials)?);
                }
            }
            "EnvironmentFile" => {
                check(value.starts_with('-'), || {
                    format!("EnvironmentFile={value} must be optional (`-`): the unit starts without it")
                })?
            }
            _ => {}
        }
    }
    let working_dir = PathBuf::from(expand(
        one(&settings, "WorkingDirectory")?,
        &state,
        &credentials,
    )?);
    check(working_dir == state_dir, || {
        format!("WorkingDirectory is {working_dir:?}, not the state directory")
    })?;
    let exec_start = one(&settings, "ExecStart")?;
    let words: Vec<String> = exec_start
        .split_whitespace()
        .map(|w| expand(w, &state, &credentials))
        .collect::<Result<_, _>>()?;
    check(
        words.first().map(String::as_str) == Some("/usr/local/bin/tooken"),
        || format!("ExecStart={exec_start}: the binary is installed as /usr/local/bin/tooken"),
    )?;
    check(!exec_start.contains(['"', '\'', '\\', '$']), || {
        format!("ExecStart={exec_start}: quoting and variables are not handled here")
    })?;
    check(
        env.get("TOOKEN_LISTEN").map(String::as_str) == Some("127.0.0.1:7878"),
        || format!("the unit listens on loopback by default: {env:?}"),
    )?;
    // The one departure from the unit: tests bind port 0.
    env.insert("TOOKEN_LISTEN".into(), "127.0.0.1:0".into());

    let mut command = Command::new(BIN);
    command
        .args(&words[1..])
        .env_clear()
        .envs(&env)
        .current_dir(&working_dir);
    let server = Started::spawn(command)?;
    check(http_status(server.addr, "/healthz")? == 200, || {
        "/healthz".into()
    })?;
    check(state_dir.join("tooken.db").is_file(), || {
        format!("the store is created in the state directory {state_dir:?}")
    })?;
    let stdout = server.stdout_when_it_shows("shown only this once")?;
    check(stdout.contains("tok_live_"), || stdout.clone())?;
    // KillSignal=SIGTERM: a clean stop (Restart=on-failure must not fire).
    check(one(&settings, "KillSignal")? == "SIGTERM", || {
        "KillSignal".into()
    })?;
    let status = server.stop("TERM")?;
    check(status.success(), || format!("stopped with {status:?}"))
}

fn systemd_unit_passes_verify() -> Result<(), Failed> {
    let unit = read("deploy/tooken.service")?;
    check(unit.contains("ExecStart=/usr/local/bin/tooken "), || {
        "ExecStart names /usr/local/bin/tooken".into()
    })?;
    // verify checks that the binary exists: point it at this build.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("tooken.service");
    std::fs::write(
        &path,
        unit.replace(
            "ExecStart=/usr/local/bin/tooken ",
            &format!("ExecStart={BIN} "),
        ),
    )?;
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Unknown keys and bad values are warnings, not failures: none allowed.
    check(out.status.success() && said.trim().is_empty(), || {
        format!("systemd-analyze verify: {:?}\n{said}", out.status)
    })
}

// ------------------------------------------------------------- Dockerfile

/// The instructions of the Dockerfile's last stage, continuation lines
/// joined: (INSTRUCTION, arguments).
fn runtime_stage(dockerfile: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(rest) = trimmed.strip_suffix('\\') {
            current.push_str(rest);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        joined.push(std::mem::take(&mut current));
    }
    let instructions: Vec<(String, String)> = joined
        .iter()
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((i, rest)) => (i.to_ascii_uppercase(), rest.trim().to_owned()),
            None => (l.to_ascii_uppercase(), String::new()),
        })
        .collect();
    let last_from = instructions
        .iter()
        .rposition(|(i, _)| i == "FROM")
        .unwrap_or(0);
    instructions[last_from..].to_vec()
}

fn json_words(value: &str) -> Result<Vec<String>, Failed> {
    serde_json::from_str(value).map_err(|e| format!("not a JSON list ({e}): {value}").into())
}

fn dockerfile_runtime_stage_serves() -> Result<(), Failed> {
    let dockerfile = read("Dockerfile")?;
    let froms = dockerfile
        .lines()
        .filter(|l| l.trim_start().to_ascii_uppercase().starts_with("FROM "))
        .count();
    check(froms >= 2, || "a multi-stage build".into())?;
    check(
        dockerfile.contains("cargo build --locked --profile dist -p tooken"),
        || "the build stage builds the dist profile from Cargo.lock".into(),
    )?;
    let stage = runtime_stage(&dockerfile);
    let get = |name: &str| -> Vec<&str> {
        stage
            .iter()
            .filter(|(i, _)| i == name)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    let user = get("USER");
    check(
        user.len() == 1 && !["root", "0", "0:0"].contains(&user[0]),
        || format!("USER {user:?}: not root"),
    )?;
    check(get("VOLUME") == ["[\"/data\"]"], || {
        format!("VOLUME {:?}", get("VOLUME"))
    })?;
    check(get("WORKDIR") == ["/data"], || {
        format!("WORKDIR {:?}", get("WORKDIR"))
    })?;
    check(get("EXPOSE") == ["7878"], || {
        format!("EXPOSE {:?}", get("EXPOSE"))
    })?;

    let data = tempfile::tempdir()?;
    let data_path = data.path().to_str().unwrap().to_owned();
    let mut env = BTreeMap::new();
    for args in get("ENV") {
        for assignment in args.split_whitespace() {
            let (k, v) = assignment
                .split_once('=')
                .ok_or_else(|| format!("ENV {args}: only KEY=value forms are handled"))?;
            env.insert(k.to_owned(), v.replace("/data", &data_path));
        }
    }
    check(
        env.get("TOOKEN_LISTEN").map(String::as_str) == Some("0.0.0.0:7878"),
        || format!("the image listens on every address, port 7878: {env:?}"),
    )?;
    let entrypoint = json_words(get("ENTRYPOINT").first().ok_or("no ENTRYPOINT")?)?;
    let cmd = json_words(get("CMD").first().ok_or("no CMD")?)?;
    check(entrypoint == ["/usr/local/bin/tooken"], || {
        format!("ENTRYPOINT {entrypoint:?}")
    })?;
    check(
        dockerfile.contains("COPY --from=build /out/usr/local/bin/tooken /usr/local/bin/tooken"),
        || "the runtime stage copies the binary to /usr/local/bin/tooken".into(),
    )?;
    let healthcheck = get("HEALTHCHECK");
    let healthcheck = healthcheck.first().ok_or("no HEALTHCHECK")?;
    let probe = json_words(
        healthcheck
            .split_once("CMD ")
            .ok_or_else(|| format!("HEALTHCHECK {healthcheck}: no CMD"))?
            .1,
    )?;
    check(probe.first() == entrypoint.first(), || {
        format!("HEALTHCHECK {probe:?} runs tooken itself (the image has no curl)")
    })?;

    // The departure from the image: tests bind port 0.
    let mut run_env = env.clone();
    run_env.insert("TOOKEN_LISTEN".into(), "127.0.0.1:0".into());
    let mut command = Command::new(BIN);
    command
        .args(&cmd)
        .env_clear()
        .envs(&run_env)
        .current_dir(data.path());
    let server = Started::spawn(command)?;
    check(data.path().join("tooken.db").is_file(), || {
        "the store is in the /data volume".into()
    })?;
    server.stdout_when_it_shows("shown only this once")?;

    // The health check as the engine runs it: the image's environment, the
    // wildcard listen address (port as bound here).
    let mut probe_env = env.clone();
    probe_env.insert(
        "TOOKEN_LISTEN".into(),
        format!("0.0.0.0:{}", server.addr.port()),
    );
    let healthy = run_probe(&probe, &probe_env, data.path())?;
    check(healthy.status.code() == Some(0), || {
        format!("healthy server: {healthy:?}")
    })?;
    let status = server.stop("TERM")?;
    check(status.success(), || format!("stopped with {status:?}"))?;
    let unhealthy = run_probe(&probe, &probe_env, data.path())?;
    check(unhealthy.status.code() == Some(1), || {
        format!("no server: {unhealthy:?}")
    })
}

fn run_probe(
    probe: &[String],
    env: &BTreeMap<String, String>,
    dir: &Path,
) -> Result<std::process::Output, Failed> {
    Ok(Command::new(BIN)
        .args(&probe[1..])
        .env_clear()
        .envs(env)
        .current_dir(dir)
        .output()?)
}

// ------------------------------------------------------------------ nginx

fn compose_nginx_conf_passes() -> Result<(), Failed> {
    let compose = read("deploy/compose.yaml")?;
    // The file the compose file mounts as nginx's configuration.
    let mount = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .find(|l| l.contains(":/etc/nginx/nginx.conf"))
        .ok_or("the compose file mounts no /etc/nginx/nginx.conf")?;
    let source = mount.split(':').next().unwrap();
    let conf_path = repo().join("deploy").join(source);
    let conf =
        std::fs::read_to_string(&conf_path).map_err(|e| format!("{}: {e}", conf_path.display()))?;

    // Upstream names are the compose services; nginx resolves them when
    // it loads the file.
    let mut hosts: Vec<&str> = Vec::new();
    let mut in_upstream = false;
    for line in conf.lines().map(str::trim) {
        if line.starts_with("upstream ") {
            in_upstream = true;
        } else if line == "}" {
            in_upstream = false;
        } else if let Some(rest) = line.strip_prefix("server ").filter(|_| in_upstream) {
            hosts.extend(rest.split([':', ' ', ';']).next());
        }
    }
    check(hosts == ["tooken-a", "tooken-b"], || {
        format!("upstream servers {hosts:?}")
    })?;
    for host in &hosts {
        check(compose.contains(&format!("\n  {host}:\n")), || {
            format!("{host} is not a service of the compose file")
        })?;
    }

    let dir = tempfile::tempdir()?;
    let conf_copy = dir.path().join("nginx.conf");
    std::fs::write(&conf_copy, &conf)?;
    let hosts_file = dir.path().join("hosts");
    std::fs::write(
        &hosts_file,
        format!("127.0.0.1 localhost {}\n::1 localhost\n", hosts.join(" ")),
    )?;
    let script = format!(
        "mount --bind '{}' /etc/hosts && exec nginx -t -c '{}' -p '{}/' -e stderr",
        hosts_file.display(),
        conf_copy.display(),
        dir.path().display()
    );
    let mut unshare = Command::new("unshare");
    // Root may make a mount namespace; anyone else needs a user namespace.
    if !is_root() {
        unshare.arg("--map-root-user");
    }
    let out = unshare.args(["--mount", "sh", "-c", &script]).output()?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    check(
        out.status.success() && said.contains("test is successful"),
        || format!("nginx -t: {:?}\n{said}", out.status),
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

// ------------------------------------------------------------------- YAML

fn load_yaml(files: &[&str]) -> Result<serde_json::Value, Failed> {
    let script = "import json, sys, yaml\n\
                  json.dump({p: yaml.safe_load(open(p)) for p in sys.argv[1:]}, sys.stdout)";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(files)
        .current_dir(repo())
        .output()?;
    check(out.status.success(), || {
        format!("YAML: {}", String::from_utf8_lossy(&out.stderr))
    })?;
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn compose_and_workflows_are_valid() -> Result<(), Failed> {
    let files = [
        "deploy/compose.yaml",
        ".github/workflows/ci.yml",
        ".github/workflows/release.yml",
    ];
    let all = load_yaml(&files)?;

    let compose = &all["deploy/compose.yaml"];
    let services = compose["services"]
        .as_object()
        .ok_or("compose: no services")?;
    let nginx_ip = compose["services"]["nginx"]["networks"]["tooken"]["ipv4_address"]
        .as_str()
        .ok_or("compose: nginx has no fixed address")?;
    let nodes: Vec<&String> = services
        .keys()
        .filter(|k| k.starts_with("tooken-"))
        .collect();
    check(nodes.len() == 2, || format!("two Tooken nodes: {nodes:?}"))?;
    for node in nodes {
        let env = &services[node]["environment"];
        let url = env["TOOKEN_DATABASE_URL"].as_str().unwrap_or_default();
        check(
            url.starts_with("postgres://") && url.contains("@postgres:5432/"),
            || format!("{node} runs on the compose PostgreSQL: {url}"),
        )?;
        let trusted = env["TOOKEN_TRUSTED_PROXIES"].as_str().unwrap_or_default();
        check(trusted == format!("{nginx_ip}/32"), || {
            format!("{node} trusts exactly nginx ({nginx_ip}): {trusted:?}")
        })?;
        check(
            services[node]["depends_on"]["postgres"]["condition"] == "service_healthy",
            || format!("{node} waits for PostgreSQL"),
        )?;
    }
    check(
        compose["services"]["nginx"]["depends_on"]["tooken-a"]["condition"] == "service_healthy",
        || "nginx waits for the nodes' health checks".into(),
    )?;

    // PyYAML reads YAML 1.1, where a bare `on` key is `true`.
    let triggers = |w: &serde_json::Value| -> serde_json::Value {
        w.get("on")
            .or_else(|| w.get("true"))
            .cloned()
            .unwrap_or_default()
    };
    let ci = &all[".github/workflows/ci.yml"];
    let on = triggers(ci);
    check(
        on.get("push").is_some() && on.get("pull_request").is_some(),
        || format!("ci.yml runs on every push and pull request: {on}"),
    )?;
    let ci_text = ci.to_string();
    check(ci_text.contains("bash .ci/run"), || {
        "ci.yml runs .ci/run".into()
    })?;
    check(
        ci["jobs"]["ci"]["services"]["postgres"]["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("postgres:")),
        || "ci.yml has a PostgreSQL service".into(),
    )?;

    let release = &all[".github/workflows/release.yml"];
    let on = triggers(release);
    check(on["push"]["tags"].is_array(), || {
        format!("release.yml runs on tags: {on}")
    })?;
    let release_text = release.to_string();
    for needle in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "scripts/dist.sh",
        "linux/amd64,linux/arm64",
    ] {
        check(release_text.contains(needle), || {
            format!("release.yml: {needle}")
        })?;
    }
    Ok(())
}

// --------------------------------------------------------------- process

/// A `tooken serve` started from a parsed command line.
struct Started {
    child: Child,
    addr: SocketAddr,
    stdout: Arc<Mutex<String>>,
}

impl Started {
    fn spawn(mut command: Command) -> Result<Started, Failed> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut said = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("tooken is listening") {
                    if let Some(addr) = line
                        .split("address=")
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                    {
                        let _ = tx.send(Ok(addr.to_owned()));
                    }
                }
                said.push_str(&line);
                said.push('\n');
            }
            let _ = tx.send(Err(said));
        });
        let stdout = Arc::new(Mutex::new(String::new()));
        let sink = stdout.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(addr)) => addr.parse()?,
            Ok(Err(said)) => {
                let _ = child.kill();
                return Err(format!("tooken serve exited before listening:\n{said}").into());
            }
            Err(_) => {
                let _ = child.kill();
                return Err("tooken serve did not listen within 30 s".into());
            }
        };
        Ok(Started {
            child,
            addr,
            stdout,
        })
    }

    fn stdout_when_it_shows(&self, needle: &str) -> Result<String, Failed> {
        let start = std::time::Instant::now();
        loop {
            let out = self.stdout.lock().unwrap().clone();
            if out.contains(needle) {
                return Ok(out);
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!("stdout never showed {needle:?}: {out:?}").into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(mut self, signal: &str) -> Result<std::process::ExitStatus, Failed> {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()?;
        check(sent.success(), || "kill".into())?;
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err("the server did not stop within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status line's code of a plain `GET path`.
fn http_status(addr: SocketAddr, path: &str) -> Result<u16, Failed> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {answer:?}").into())
}
