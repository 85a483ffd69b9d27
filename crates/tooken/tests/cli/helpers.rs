use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_tooken");

/// `tooken serve` running as a child process.
pub struct Server {
    pub child: Child,
    /// `http://ADDRESS`, or `https://ADDRESS` when it serves TLS.
    pub url: String,
    output: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    logs: Arc<Mutex<String>>,
    log_reader: Option<std::thread::JoinHandle<()>>,
}

/// Where the server says it listens, from its "listening" log line in the
/// text (`address=…`) or JSON (`"address":"…"`) format.
fn listening_address(line: &str) -> Option<String> {
    if !line.contains("tooken is listening") {
        return None;
    }
    let rest = line
        .split("address=")
        .nth(1)
        .or_else(|| line.split("\"address\":\"").nth(1))?;
    rest.split(|c: char| c.is_whitespace() || c == '"')
        .next()
        .map(str::to_owned)
}

/// Starts `tooken serve` in `dir` with extra arguments and environment, and
/// waits until it says where it listens.
pub fn start_server(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.env_remove("TOOKEN_DATABASE_URL")
        .env_remove("TOOKEN_LISTEN")
        .env_remove("TOOKEN_API_KEY");
    if !args.iter().any(|a| a.starts_with("--listen"))
        && !env.iter().any(|(k, _)| *k == "TOOKEN_LISTEN")
    {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start tooken serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let logs = Arc::new(Mutex::new(String::new()));
    let log_sink = logs.clone();
    let log_reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // To see what a server under test logged.
            if std::env::var_os("TOOKEN_TEST_SHOW_LOGS").is_some() {
                eprintln!("[server] {line}");
            }
            if let Some(addr) = listening_address(&line) {
                let tls = line.contains(" tls=true") || line.contains("\"tls\":true");
                let scheme = if tls { "https" } else { "http" };
                let _ = tx.send(format!("{scheme}://{addr}"));
            }
            let mut logs = log_sink.lock().unwrap();
            logs.push_str(&line);
            logs.push('\n');
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server did not start listening");
    let stdout = child.stdout.take().unwrap();
    let output = Arc::new(Mutex::new(String::new()));
    let sink = output.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut out = sink.lock().unwrap();
            out.push_str(&line);
            out.push('\n');
        }
    });
    Server {
        child,
        url,
        output,
        reader: Some(reader),
        logs,
        log_reader: Some(log_reader),
    }
}

impl Server {
    /// The address it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.url
            .rsplit("://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {}", self.url))
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends `sig`, waits for the process to exit; returns its status and
    /// everything it printed on stdout.
    pub fn stop_with(mut self, sig: &str) -> (std::process::ExitStatus, String) {
        self.signal(sig);
        let status = wait_timeout(&mut self.child, Duration::from_secs(20));
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        let out = self.output.lock().unwrap().clone();
        (status, out)
    }

    /// Sends `sig`, waits for the process to exit; returns its status and
    /// everything it printed on stdout and on stderr (its log).
    pub fn stop_with_logs(mut self, sig: &str) -> (std::process::ExitStatus, String, String) {
        self.signal(sig);
        let status = wait_timeout(&mut self.child, Duration::from_secs(20));
        for reader in [self.reader.take(), self.log_reader.take()]
            .into_iter()
            .flatten()
        {
            reader.join().unwrap();
        }
        let out = self.output.lock().unwrap().clone();
        let logs = self.logs.lock().unwrap().clone();
        (status, out, logs)
    }

    /// Waits until stdout contains `needle`; returns all of stdout so far.
    pub fn wait_for_stdout(&self, needle: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            let out = self.output.lock().unwrap().clone();
            if out.contains(needle) {
                return out;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "stdout never showed {needle:?}: {out:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `tooken admin …` on the store in `dir`; returns (success, stdout, stderr).
pub fn admin(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("admin")
        .args(args)
        .current_dir(dir)
        .env_remove("TOOKEN_DATABASE_URL")
        .output()
        .expect("run tooken admin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn first_key(banner: &str) -> String {
    banner
        .split_whitespace()
        .find(|w| w.starts_with("tok_live_"))
        .unwrap_or_else(|| panic!("no API key in {banner:?}"))
        .to_owned()
}

pub async fn status_with(url: &str, key: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{url}/v1/tokens"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("tooken.db")
}
