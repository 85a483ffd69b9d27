//! Crash consistency: `tooken serve` is killed with SIGKILL at a random
//! moment of a write load (token creates, rotations and revocations over
//! HTTP, API key regenerations by `tooken admin`, itself killed at the same
//! moment), then started again on the same store, round after round.
//!
//! After each restart: every change that was acknowledged (a 2xx, or the
//! admin command's exit 0) holds, and every change that was in flight
//! happened completely, with its audit event, or not at all; the audit hash
//! chain verifies. At the end, everything acknowledged in any round is
//! checked once more.
//!
//! Whether the random moment catches a change committed but not yet
//! acknowledged is chance; so in every round one create goes through a
//! proxy that keeps the server's answer from the client, and the kill waits
//! until that answer has been sent: each round has a change that happened
//! without the client ever learning it, and the test asserts it was found.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::sync::{watch, Notify};
use tooken_client::{AuditQuery, Client, CreateToken, ListTokens, VerifyCode, VerifyRequest};
use tooken_core::Credential;

use crate::helpers::{admin, first_key, start_server, Server, BIN};

async fn acknowledged_changes_survive_sigkill_and_nothing_is_half_applied_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tooken.db").display());
    run_rounds(dir.path(), &url, 20).await;
}

async fn acknowledged_changes_survive_sigkill_and_nothing_is_half_applied_postgres() {
    let db = tooken_testkit::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    run_rounds(dir.path(), &db.url, 10).await;
}

/// What the test knows of a token: everything acknowledged, and what was
/// learned by looking after a crash.
#[derive(Debug, Clone)]
struct TokenState {
    /// The current secret, unless a rotation in flight at a crash replaced
    /// it without the new one ever reaching us.
    secret: Option<String>,
    /// Secrets replaced by a rotation (grace period 0): they must not work.
    old_secrets: Vec<String>,
    rotations: usize,
    revoked: bool,
}

#[derive(Debug, Clone)]
struct KeyState {
    id: String,
    secret: Option<String>,
    old_secrets: Vec<String>,
    regenerations: usize,
}

/// A change attempted during a round, and whether it was acknowledged.
#[derive(Debug)]
enum Op {
    Create {
        name: String,
        acked: Option<(String, String)>,
    },
    Rotate {
        id: String,
        acked: Option<String>,
    },
    Revoke {
        id: String,
        acked: bool,
    },
    Regenerate {
        key: usize,
        acked: Option<String>,
        /// What the killed admin command printed before it died, if anything.
        printed: Option<String>,
    },
}

#[derive(Debug, Default)]
struct Tally {
    acked: BTreeMap<&'static str, usize>,
    in_flight: BTreeMap<&'static str, usize>,
    in_flight_applied: BTreeMap<&'static str, usize>,
}

impl Tally {
    fn count(&mut self, what: &'static str, acked: bool) {
        let map = if acked {
            &mut self.acked
        } else {
            &mut self.in_flight
        };
        *map.entry(what).or_default() += 1;
    }
}

async fn run_rounds(dir: &Path, database: &str, rounds: usize) {
    let started = Instant::now();
    // Checking that replaced keys fail is a stream of 401s from one
    // address: lift the brute-force throttle, it is not under test here.
    let args = [
        "--database",
        database,
        "--auth-slow-after",
        "1000000",
        "--auth-block-after",
        "1000000",
    ];
    let server = start_server(dir, &args, &[]);
    let root = first_key(&server.wait_for_stdout("shown only this once"));
    let mut keys = Vec::new();
    for i in 0..3 {
        let (ok, secret, err) = admin(
            dir,
            &[
                "--database",
                database,
                "api-keys",
                "create",
                "--name",
                &format!("crash-{i}"),
            ],
        );
        assert!(ok, "{err}");
        keys.push(KeyState {
            id: String::new(),
            secret: Some(secret.trim().to_owned()),
            old_secrets: Vec::new(),
            regenerations: 0,
        });
    }
    let (ok, list, err) = admin(dir, &["--database", database, "api-keys", "list", "--json"]);
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
    for (i, key) in keys.iter_mut().enumerate() {
        key.id = rows
            .iter()
            .find(|r| r["name"] == format!("crash-{i}"))
            .and_then(|r| r["id"].as_str())
            .unwrap()
            .to_owned();
    }

    let mut tokens: BTreeMap<String, TokenState> = BTreeMap::new();
    let mut tally = Tally::default();
    let mut server = server;
    for round in 0..rounds {
        let ops = load_then_kill(server, &root, dir, database, round, &tokens, &keys).await;
        server = start_server(dir, &args, &[]);
        let client = Client::new(&server.url, &root).unwrap();
        let mut touched = BTreeSet::new();
        for op in ops {
            touched.extend(apply_op(&client, op, &mut tokens, &mut keys, &mut tally).await);
        }
        let checks = touched
            .iter()
            .map(|id| check_token_state(&client, id, &tokens[id]));
        stream::iter(checks)
            .buffer_unordered(8)
            .collect::<Vec<()>>()
            .await;
        for key in &keys {
            check_key_state(&client, key).await;
        }
        let (ok, out, err) = admin(dir, &["--database", database, "audit", "verify"]);
        assert!(
            ok && out.contains("default: intact"),
            "round {round}: {out} {err}"
        );
    }

    // Everything acknowledged in any round, after all the crashes since.
    let client = Client::new(&server.url, &root).unwrap();
    let checks = tokens
        .iter()
        .map(|(id, t)| check_token_state(&client, id, t));
    stream::iter(checks)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    for key in &keys {
        check_key_state(&client, key).await;
    }
    server.kill();
    assert!(
        tally.acked.get("create").copied().unwrap_or(0) > rounds,
        "the load did too little: {tally:?}"
    );
    assert!(
        tally.in_flight_applied.get("create").copied().unwrap_or(0) >= rounds,
        "each round's withheld create was found applied: {tally:?}"
    );
    assert!(
        tally.in_flight.values().sum::<usize>() > 0,
        "no change was ever in flight at a crash: {tally:?}"
    );
    eprintln!(
        "{rounds} crashes in {:.1}s; {} tokens; acknowledged {:?}; in flight {:?}, of which applied {:?}",
        started.elapsed().as_secs_f64(),
        tokens.len(),
        tally.acked,
        tally.in_flight,
        tally.in_flight_applied
    );
}

/// Runs the load on `server`, kills it (and any admin command running) at a
/// random moment 50–400 ms in, and returns every change attempted. Each
/// task records a change before it lets another task touch the same token,
/// so the changes to one token are recorded in the order they happened, and
/// one left without an answer is the last.
async fn load_then_kill(
    server: Server,
    root: &str,
    dir: &Path,
    database: &str,
    round: usize,
    tokens: &BTreeMap<String, TokenState>,
    keys: &[KeyState],
) -> Vec<Op> {
    let client = &Client::new(&server.url, root).unwrap();
    let ops = Arc::new(Mutex::new(Vec::new()));
    // Tokens free to rotate or revoke: each is taken by one task at a time.
    let pool: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(
        tokens
            .iter()
            .filter(|(_, t)| !t.revoked)
            .map(|(id, _)| id.clone())
            .collect(),
    ));
    let filled = Arc::new(Notify::new());
    let (crash, crashed) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();

    for worker in 0..2 {
        let (client, ops, pool, filled, crashed) = (
            client.clone(),
            ops.clone(),
            pool.clone(),
            filled.clone(),
            crashed.clone(),
        );
        tasks.spawn(async move {
            for n in 0.. {
                if *crashed.borrow() {
                    break;
                }
                // The dot ends the name: no other name starts with it.
                let name = format!("r{round}-w{worker}-{n}.");
                let res = client
                    .create_token(&CreateToken {
                        name: name.clone(),
                        scopes: vec!["crash:test".into()],
                        ..Default::default()
                    })
                    .await;
                let acked = acknowledged(res).map(|t| (t.token.id, t.secret.expose().to_owned()));
                let id = acked.as_ref().map(|(id, _)| id.clone());
                ops.lock().unwrap().push(Op::Create { name, acked });
                let Some(id) = id else { break };
                pool.lock().unwrap().push(id);
                filled.notify_one();
            }
        });
    }
    for revoker in [false, true] {
        let (client, ops, pool, filled, mut crashed) = (
            client.clone(),
            ops.clone(),
            pool.clone(),
            filled.clone(),
            crashed.clone(),
        );
        tasks.spawn(async move {
            while !*crashed.borrow() {
                let Some(id) = take_random(&pool) else {
                    tokio::select! {
                        _ = filled.notified() => {}
                        _ = until_crash(&mut crashed) => {}
                    }
                    continue;
                };
                let answered = if revoker {
                    let res = client.revoke_token(&id, Some("crash test")).await;
                    let acked = acknowledged(res).is_some();
                    ops.lock().unwrap().push(Op::Revoke { id, acked });
                    acked
                } else {
                    let res = client.rotate_token(&id, 0).await;
                    let acked = acknowledged(res).map(|t| t.secret.expose().to_owned());
                    let answered = acked.is_some();
                    ops.lock().unwrap().push(Op::Rotate {
                        id: id.clone(),
                        acked,
                    });
                    if answered {
                        pool.lock().unwrap().push(id);
                    }
                    answered
                };
                if !answered {
                    break;
                }
            }
        });
    }
    {
        let (ops, mut crashed) = (ops.clone(), crashed.clone());
        let ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
        let (dir, database) = (dir.to_owned(), database.to_owned());
        tasks.spawn(async move {
            for n in 0.. {
                if *crashed.borrow() {
                    break;
                }
                let key = (round + n) % ids.len();
                let mut child = tokio::process::Command::new(BIN)
                    .args(["admin", "--database", &database, "api-keys", "regenerate"])
                    .arg(&ids[key])
                    .current_dir(&dir)
                    .env_remove("TOOKEN_DATABASE_URL")
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .unwrap();
                let mut stdout = child.stdout.take().unwrap();
                let reader = tokio::spawn(async move {
                    let mut out = String::new();
                    let _ = stdout.read_to_string(&mut out).await;
                    out
                });
                let finished = tokio::select! {
                    status = child.wait() => Some(status.unwrap()),
                    _ = until_crash(&mut crashed) => None,
                };
                // The admin command dies with the server: SIGKILL too,
                // unless it has just finished on its own.
                let status = match finished {
                    Some(status) => Some(status),
                    None => {
                        let _ = child.start_kill();
                        Some(child.wait().await.unwrap()).filter(|s| s.success())
                    }
                };
                let out = reader.await.unwrap().trim().to_owned();
                let printed = (!out.is_empty()).then_some(out);
                match status {
                    Some(s) if s.success() => {
                        let new = printed.expect("regenerate printed the new secret");
                        ops.lock().unwrap().push(Op::Regenerate {
                            key,
                            acked: Some(new),
                            printed: None,
                        });
                    }
                    Some(s) => panic!("tooken admin api-keys regenerate failed: {s}"),
                    None => {
                        ops.lock().unwrap().push(Op::Regenerate {
                            key,
                            acked: None,
                            printed,
                        });
                        break;
                    }
                }
            }
        });
    }

    // One create whose answer the client never gets.
    let withheld = Withheld::start(server.addr()).await;
    {
        let ops = ops.clone();
        let client = Client::new(&withheld.url, root).unwrap();
        tasks.spawn(async move {
            let name = format!("r{round}-withheld.");
            let res = client
                .create_token(&CreateToken {
                    name: name.clone(),
                    scopes: vec!["crash:test".into()],
                    ..Default::default()
                })
                .await;
            assert!(acknowledged(res).is_none(), "the answer was withheld");
            ops.lock().unwrap().push(Op::Create { name, acked: None });
        });
    }

    // The moment of the crash is random (not a synchronization), but after
    // the server has answered the withheld create.
    let delay = 50 + random_below(351);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    tokio::time::timeout(Duration::from_secs(30), withheld.answered.notified())
        .await
        .expect("the server answers the withheld create");
    crash.send_replace(true);
    tokio::task::spawn_blocking(move || server.kill())
        .await
        .unwrap();
    while let Some(res) = tasks.join_next().await {
        res.unwrap();
    }
    let ops = std::mem::take(&mut *ops.lock().unwrap());
    ops
}

/// A proxy in front of the server that passes requests on but keeps every
/// answer from the client, noting when one has been sent.
struct Withheld {
    url: String,
    answered: Arc<Notify>,
}

impl Withheld {
    async fn start(server: std::net::SocketAddr) -> Withheld {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let answered = Arc::new(Notify::new());
        let signal = answered.clone();
        tokio::spawn(async move {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(upstream) = tokio::net::TcpStream::connect(server).await else {
                return;
            };
            let (mut from_client, _to_client) = client.into_split();
            let (mut from_server, mut to_server) = upstream.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
            });
            let mut first = [0u8; 1];
            if matches!(from_server.read(&mut first).await, Ok(1)) {
                signal.notify_one();
            }
            // Hold the client's connection until the server's side ends.
            let _ = tokio::io::copy(&mut from_server, &mut tokio::io::sink()).await;
        });
        Withheld { url, answered }
    }
}

async fn until_crash(crashed: &mut watch::Receiver<bool>) {
    let _ = crashed.wait_for(|c| *c).await;
}

/// The value of a successful call; `None` when no answer came (the server
/// died first). Any error answer fails the test: the load is valid.
fn acknowledged<T>(res: tooken_client::Result<T>) -> Option<T> {
    match res {
        Ok(v) => Some(v),
        Err(tooken_client::Error::Transport(_)) => None,
        Err(e) => panic!("the server refused a valid request under load: {e}"),
    }
}

fn take_random(pool: &Mutex<Vec<String>>) -> Option<String> {
    let mut pool = pool.lock().unwrap();
    if pool.is_empty() {
        return None;
    }
    let i = random_below(pool.len() as u64) as usize;
    Some(pool.swap_remove(i))
}

fn random_below(n: u64) -> u64 {
    u64::from_le_bytes(tooken_core::credential::random_bytes::<8>()) % n
}

/// Takes one change of the last round into the model, looking on the
/// restarted server at what became of an unacknowledged one: it must have
/// happened completely (with its audit event) or not at all. Returns the
/// token it touched.
async fn apply_op(
    client: &Client,
    op: Op,
    tokens: &mut BTreeMap<String, TokenState>,
    keys: &mut [KeyState],
    tally: &mut Tally,
) -> Option<String> {
    match op {
        Op::Create {
            acked: Some((id, secret)),
            ..
        } => {
            tally.count("create", true);
            let state = TokenState {
                secret: Some(secret),
                old_secrets: Vec::new(),
                rotations: 0,
                revoked: false,
            };
            tokens.insert(id.clone(), state);
            Some(id)
        }
        Op::Create { name, acked: None } => {
            tally.count("create", false);
            let q = ListTokens {
                name: Some(name.clone()),
                ..Default::default()
            };
            let found = client.list_tokens(&q).await.unwrap().data;
            assert!(found.len() <= 1, "{name} created twice");
            let t = found.into_iter().next()?;
            *tally.in_flight_applied.entry("create").or_default() += 1;
            let state = TokenState {
                secret: None,
                old_secrets: Vec::new(),
                rotations: 0,
                revoked: false,
            };
            tokens.insert(t.id.clone(), state);
            Some(t.id)
        }
        Op::Rotate { id, acked } => {
            tally.count("rotate", acked.is_some());
            let state = tokens.get_mut(&id).unwrap();
            let applied = match &acked {
                Some(_) => true,
                None => {
                    let rotations = events(client, &id, "token.rotated").await;
                    assert!(
                        rotations == state.rotations || rotations == state.rotations + 1,
                        "{id}: {rotations} rotation events, {} expected",
                        state.rotations
                    );
                    let applied = rotations == state.rotations + 1;
                    if let Some(old) = &state.secret {
                        let code = verify(client, old).await;
                        assert_eq!(
                            code == VerifyCode::Valid,
                            !applied,
                            "{id}: the old secret is {code:?}, yet the audit log holds \
                             {rotations} rotations where {} were acknowledged",
                            state.rotations
                        );
                    }
                    if applied {
                        *tally.in_flight_applied.entry("rotate").or_default() += 1;
                    }
                    applied
                }
            };
            if applied {
                state.rotations += 1;
                state.old_secrets.extend(state.secret.take());
                state.secret = acked;
            }
            Some(id)
        }
        Op::Revoke { id, acked } => {
            tally.count("revoke", acked);
            let state = tokens.get_mut(&id).unwrap();
            state.revoked = if acked {
                true
            } else {
                let t = client.get_token(&id).await.unwrap();
                if t.revoked_at.is_some() {
                    *tally.in_flight_applied.entry("revoke").or_default() += 1;
                }
                t.revoked_at.is_some()
            };
            Some(id)
        }
        Op::Regenerate {
            key,
            acked,
            printed,
        } => {
            tally.count("regenerate", acked.is_some());
            let state = &mut keys[key];
            let applied = match &acked {
                Some(_) => true,
                None => {
                    let id = &state.id;
                    let count = events(client, id, "api_key.regenerated").await;
                    assert!(
                        count == state.regenerations || count == state.regenerations + 1,
                        "{id}: {count} regeneration events, {} expected",
                        state.regenerations
                    );
                    let applied = count == state.regenerations + 1;
                    if let Some(old) = &state.secret {
                        let status = whoami(client, old).await;
                        assert_eq!(
                            status == 200,
                            !applied,
                            "{id}: the old key answers {status}, yet the audit log holds \
                             {count} regenerations where {} were acknowledged",
                            state.regenerations
                        );
                    }
                    if printed.is_some() {
                        assert!(applied, "{id}: a new secret was printed but not stored");
                    }
                    if applied {
                        *tally.in_flight_applied.entry("regenerate").or_default() += 1;
                    }
                    applied
                }
            };
            if applied {
                state.regenerations += 1;
                state.old_secrets.extend(state.secret.take());
                state.secret = acked.or(printed);
            }
            None
        }
    }
}

/// The final check of one token against everything learned about it.
async fn check_token_state(client: &Client, id: &str, t: &TokenState) {
    let token = client
        .get_token(id)
        .await
        .unwrap_or_else(|e| panic!("{id} is gone: {e}"));
    assert_eq!(token.revoked_at.is_some(), t.revoked, "{id}");
    assert_eq!(events(client, id, "token.created").await, 1, "{id}");
    assert_eq!(
        events(client, id, "token.rotated").await,
        t.rotations,
        "{id}"
    );
    assert_eq!(
        events(client, id, "token.revoked").await,
        usize::from(t.revoked),
        "{id}"
    );
    if let Some(secret) = &t.secret {
        assert_eq!(token.hint, hint(secret), "{id}");
        let expected = if t.revoked {
            VerifyCode::Revoked
        } else {
            VerifyCode::Valid
        };
        assert_eq!(verify(client, secret).await, expected, "{id}");
    }
    for old in &t.old_secrets {
        assert_ne!(
            verify(client, old).await,
            VerifyCode::Valid,
            "{id}: a replaced secret works"
        );
    }
}

async fn check_key_state(client: &Client, key: &KeyState) {
    assert_eq!(
        events(client, &key.id, "api_key.regenerated").await,
        key.regenerations,
        "{}",
        key.id
    );
    if let Some(secret) = &key.secret {
        assert_eq!(whoami(client, secret).await, 200, "{}", key.id);
    }
    for old in &key.old_secrets {
        assert_eq!(
            whoami(client, old).await,
            401,
            "{}: a replaced key works",
            key.id
        );
    }
}

/// How many `action` events the audit log holds for `target`.
async fn events(client: &Client, target: &str, action: &str) -> usize {
    let q = AuditQuery {
        action: Some(action.into()),
        target: Some(target.into()),
        limit: Some(100),
        ..Default::default()
    };
    client.list_audit_events(&q).await.unwrap().data.len()
}

async fn verify(client: &Client, secret: &str) -> VerifyCode {
    let req = VerifyRequest {
        token: secret.into(),
        scopes: vec![],
    };
    client.verify(&req).await.unwrap().code
}

/// The status of `GET /v1/whoami` with `key`.
async fn whoami(client: &Client, key: &str) -> u16 {
    match client.with_credential(key).whoami().await {
        Ok(_) => 200,
        Err(e) => e.status().unwrap_or_else(|| panic!("no answer: {e}")),
    }
}

fn hint(secret: &str) -> String {
    Credential::parse(secret).unwrap().hint()
}

tooken_testkit::tests! {
    #[threads(4)] async acknowledged_changes_survive_sigkill_and_nothing_is_half_applied_sqlite,
    #[needs(Postgres)] #[threads(4)] async acknowledged_changes_survive_sigkill_and_nothing_is_half_applied_postgres,
}
