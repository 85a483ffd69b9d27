//! The `tooken` binary as a child process, run as a user would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a child process may take to start listening or to exit.
const PATIENCE: Duration = Duration::from_secs(30);

/// The `tooken` binary (in a test of the `tooken` crate,
/// `Tooken::at(env!("CARGO_BIN_EXE_tooken"))`).
#[derive(Debug, Clone, Copy)]
pub struct Tooken {
    pub bin: &'static str,
}

impl Tooken {
    pub const fn at(bin: &'static str) -> Tooken {
        Tooken { bin }
    }

    /// `tooken ARGS…` in `dir`, with nothing inherited that would point
    /// it elsewhere (`TOOKEN_DATABASE_URL`, `TOOKEN_LISTEN`,
    /// `TOOKEN_API_KEY`, `TOOKEN_URL`).
    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bin);
        cmd.args(args)
            .current_dir(dir)
            .env_remove("TOOKEN_DATABASE_URL")
            .env_remove("TOOKEN_LISTEN")
            .env_remove("TOOKEN_API_KEY")
            .env_remove("TOOKEN_URL");
        cmd
    }

    /// Starts `tooken serve` in `dir` with extra arguments and environment
    /// (on `127.0.0.1:0` unless they say where), and waits until it says
    /// where it listens.
    pub fn serve(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = self.command(dir, &["serve"]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
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
        let (tx, rx) = mpsc::channel();
        let logs = Arc::new(Mutex::new(String::new()));
        let log_reader = read_lines(child.stderr.take().unwrap(), logs.clone(), move |line| {
            // To see what a server under test logged.
            if std::env::var_os("TOOKEN_TEST_SHOW_LOGS").is_some() {
                eprintln!("[server] {line}");
            }
            if let Some(addr) = listening_address(line) {
                let tls = line.contains(" tls=true") || line.contains("\"tls\":true");
                let scheme = if tls { "https" } else { "http" };
                let _ = tx.send(format!("{scheme}://{addr}"));
            }
        });
        let url = match rx.recv_timeout(PATIENCE) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = log_reader.join();
                panic!(
                    "tooken serve did not start listening: {}",
                    logs.lock().unwrap()
                );
            }
        };
        let output = Arc::new(Mutex::new(String::new()));
        let reader = read_lines(child.stdout.take().unwrap(), output.clone(), |_| {});
        Server {
            child,
            url,
            output,
            reader: Some(reader),
            logs,
            log_reader: Some(log_reader),
        }
    }

    /// Runs `tooken admin ARGS…` on the store in `dir`; returns (success,
    /// stdout, stderr).
    pub fn admin(&self, dir: &Path, args: &[&str]) -> (bool, String, String) {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        let (status, out, err) = self.run_to_exit(dir, &all, PATIENCE * 2);
        (status.success(), out, err)
    }

    /// `tooken admin ARGS…` on the store in `dir`, which must succeed; its
    /// stdout.
    pub fn admin_ok(&self, dir: &Path, args: &[&str]) -> String {
        let (ok, out, err) = self.admin(dir, args);
        assert!(ok, "tooken admin {args:?} failed: {err}");
        out
    }

    /// Runs `tooken ARGS…` to its end (at most `limit`); returns its exit
    /// status, stdout and stderr.
    pub fn run_to_exit(
        &self,
        dir: &Path,
        args: &[&str],
        limit: Duration,
    ) -> (ExitStatus, String, String) {
        let mut child = self
            .command(dir, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tooken");
        let (out, err) = (Arc::default(), Arc::default());
        let readers = [
            read_lines(child.stdout.take().unwrap(), Arc::clone(&out), |_| {}),
            read_lines(child.stderr.take().unwrap(), Arc::clone(&err), |_| {}),
        ];
        let status = wait_timeout(&mut child, limit)
            .unwrap_or_else(|| panic!("tooken {args:?} did not exit within {limit:?}"));
        for r in readers {
            r.join().unwrap();
        }
        let text = |s: Arc<Mutex<String>>| s.lock().unwrap().clone();
        (status, text(out), text(err))
    }
}

/// Reads `from` line by line into `sink` (each line and a newline),
/// calling `each` on every line first.
fn read_lines(
    from: impl std::io::Read + Send + 'static,
    sink: Arc<Mutex<String>>,
    mut each: impl FnMut(&str) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            each(&line);
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    })
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

/// `tooken serve` running as a child process; killed when dropped.
pub struct Server {
    pub child: Child,
    /// `http://ADDRESS`, or `https://ADDRESS` when it serves TLS.
    pub url: String,
    output: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    logs: Arc<Mutex<String>>,
    log_reader: Option<std::thread::JoinHandle<()>>,
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

    /// SIGKILL: no chance to write anything out or clean up.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends `sig`, waits for the process to exit; returns its status and
    /// everything it printed on stdout.
    pub fn stop_with(self, sig: &str) -> (ExitStatus, String) {
        let (status, out, _) = self.stop_with_logs(sig);
        (status, out)
    }

    /// Sends `sig`, waits for the process to exit; returns its status and
    /// everything it printed on stdout and on stderr (its log).
    pub fn stop_with_logs(mut self, sig: &str) -> (ExitStatus, String, String) {
        self.signal(sig);
        let status = wait_timeout(&mut self.child, PATIENCE).expect("tooken serve exits");
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
        let start = Instant::now();
        loop {
            let out = self.output.lock().unwrap().clone();
            if out.contains(needle) {
                return out;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "stdout never showed {needle:?}: {out:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The process's exit status, or `None` (after killing it) if it has not
/// exited within `limit`.
fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The first live API key in a first start's banner.
pub fn first_key(banner: &str) -> String {
    banner
        .split_whitespace()
        .find(|w| w.starts_with("tok_live_"))
        .unwrap_or_else(|| panic!("no API key in {banner:?}"))
        .to_owned()
}
