//! PostgreSQL change notifications between nodes, and the wait for every
//! node's acknowledgement (see the module above).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::AnyPool;
use tokio::sync::{oneshot, Notify};

/// The `application_name` of the pool's PostgreSQL sessions, unless the
/// URL sets one (`?application_name=tooken-a` names a node).
pub const APPLICATION_NAME: &str = "tooken";

/// Appended to the pool's `application_name` to name the session that
/// listens for changes (`tooken-listener` by default).
pub const LISTENER_SUFFIX: &str = "-listener";

/// The notification channel every PostgreSQL change is signalled on.
pub(crate) const CHANNEL: &str = "tooken_changes";

/// How long a change-committing write waits, after COMMIT, for the other
/// nodes to acknowledge it.
pub(crate) const ECHO_WAIT: Duration = Duration::from_millis(250);

/// How often each node tells the others it is there.
pub(crate) const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// A node not heard from for this long is no longer waited for; a node
/// that has not heard its own heartbeat back for this long drops its
/// listener and subscribes again.
pub(crate) const PEER_TTL: Duration = Duration::from_millis(3500);

/// Pause between attempts to re-establish a lost listener.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// What this node knows about the PostgreSQL change notifications.
#[derive(Debug)]
pub(crate) struct PgWatch {
    generation: AtomicU64,
    healthy: AtomicBool,
    /// Woken each time the listener (re)subscribes.
    subscribed: Notify,
    /// Woken each time another node is heard from for the first time.
    peer_joined: Notify,
    /// Tells the listener to drop its connection (stale, or store closed).
    interrupt: Notify,
    closed: AtomicBool,
    /// Std locks: held for a map operation only, never across an await.
    state: Mutex<PgState>,
    /// This node's id in payloads: unique across nodes and restarts.
    node: String,
    sequence: AtomicU64,
}

#[derive(Debug, Default)]
struct PgState {
    /// Changes of this node whose writers wait, by sequence number.
    pending: HashMap<u64, Pending>,
    /// Other nodes, and when they were last heard from.
    peers: HashMap<String, Instant>,
    /// Since when a heartbeat this node sent has not come back.
    heartbeat_unanswered_since: Option<Instant>,
}

#[derive(Debug)]
struct Pending {
    own_copy_seen: bool,
    awaiting: HashSet<String>,
    done: Option<oneshot::Sender<()>>,
}

impl Pending {
    fn complete_if_done(&mut self) -> bool {
        if self.own_copy_seen && self.awaiting.is_empty() {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
            true
        } else {
            false
        }
    }
}

/// A notification's payload, parsed.
#[derive(Debug, PartialEq, Eq)]
enum Payload<'a> {
    Change {
        node: &'a str,
        n: u64,
    },
    Ack {
        node: &'a str,
        origin: &'a str,
        n: u64,
    },
    Heartbeat {
        node: &'a str,
    },
    Join {
        node: &'a str,
    },
    Closing {
        node: &'a str,
    },
    /// Anything else (e.g. from another version): treated as a change.
    Other,
}

impl Payload<'_> {
    fn parse(payload: &str) -> Payload<'_> {
        let parts: Vec<&str> = payload.split(':').collect();
        match parts.as_slice() {
            ["c", node, n] => n
                .parse()
                .map_or(Payload::Other, |n| Payload::Change { node, n }),
            ["a", node, origin, n] => {
                n.parse()
                    .map_or(Payload::Other, |n| Payload::Ack { node, origin, n })
            }
            ["h", node] => Payload::Heartbeat { node },
            ["j", node] => Payload::Join { node },
            ["x", node] => Payload::Closing { node },
            _ => Payload::Other,
        }
    }
}

impl PgWatch {
    pub(crate) fn new() -> PgWatch {
        PgWatch {
            generation: AtomicU64::new(0),
            healthy: AtomicBool::new(false),
            subscribed: Notify::new(),
            peer_joined: Notify::new(),
            interrupt: Notify::new(),
            closed: AtomicBool::new(false),
            state: Mutex::default(),
            node: tooken_core::audit::hex(&tooken_core::credential::random_bytes::<8>()),
            sequence: AtomicU64::new(0),
        }
    }

    pub(crate) fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// A value that differs whenever any node may have changed the
    /// store; `None` while the listener is down.
    pub(crate) fn marker(&self) -> Option<u64> {
        self.is_healthy()
            .then(|| self.generation.load(Ordering::SeqCst))
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    fn state(&self) -> MutexGuard<'_, PgState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh payload for one change, registered (while the listener is
    /// up) so that [`Echo::wait`] can learn when every known node has it.
    /// Call before COMMIT: the notification may arrive right after it.
    pub(crate) fn expect_echo(self: &Arc<Self>) -> Echo {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let payload = format!("c:{}:{n}", self.node);
        let receiver = self.is_healthy().then(|| {
            let (tx, rx) = oneshot::channel();
            let mut state = self.state();
            let now = Instant::now();
            let awaiting = state
                .peers
                .iter()
                .filter(|(_, seen)| now.duration_since(**seen) < PEER_TTL)
                .map(|(node, _)| node.clone())
                .collect();
            state.pending.insert(
                n,
                Pending {
                    own_copy_seen: false,
                    awaiting,
                    done: Some(tx),
                },
            );
            rx
        });
        Echo {
            watch: self.clone(),
            n,
            payload,
            receiver,
        }
    }

    /// Notes that `node` (another node) is alive.
    fn heard_from(&self, state: &mut PgState, node: &str, now: Instant) {
        if state.peers.insert(node.to_owned(), now).is_none() {
            self.peer_joined.notify_waiters();
        }
    }

    /// Other nodes heard from within [`PEER_TTL`].
    fn live_peers(&self) -> usize {
        let now = Instant::now();
        self.state()
            .peers
            .values()
            .filter(|seen| now.duration_since(**seen) < PEER_TTL)
            .count()
    }

    /// Waits (at most `limit`) until at least `expected` other nodes have
    /// been heard from: they answer a node's join at once.
    pub(crate) async fn wait_for_peers(&self, expected: usize, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let joined = self.peer_joined.notified();
            if self.live_peers() >= expected {
                return true;
            }
            if tokio::time::timeout_at(deadline, joined).await.is_err() {
                return self.live_peers() >= expected;
            }
        }
    }

    /// A notification arrived. Returns what to send back on the listening
    /// connection: an acknowledgement of another node's change, or a
    /// heartbeat answering another node's join.
    fn received(&self, payload: &str) -> Option<String> {
        let parsed = Payload::parse(payload);
        if matches!(parsed, Payload::Change { .. } | Payload::Other) {
            // First of all: this node's cache is stale from now on.
            self.bump();
        }
        let mut state = self.state();
        let now = Instant::now();
        match parsed {
            Payload::Change { node, n } if node == self.node => {
                if let Some(p) = state.pending.get_mut(&n) {
                    p.own_copy_seen = true;
                    if p.complete_if_done() {
                        state.pending.remove(&n);
                    }
                }
                None
            }
            Payload::Change { node, n } => {
                self.heard_from(&mut state, node, now);
                Some(format!("a:{}:{node}:{n}", self.node))
            }
            Payload::Ack { node, origin, n } => {
                if node != self.node {
                    self.heard_from(&mut state, node, now);
                }
                if origin == self.node {
                    if let Some(p) = state.pending.get_mut(&n) {
                        p.awaiting.remove(node);
                        if p.complete_if_done() {
                            state.pending.remove(&n);
                        }
                    }
                }
                None
            }
            Payload::Heartbeat { node } if node == self.node => {
                state.heartbeat_unanswered_since = None;
                None
            }
            Payload::Heartbeat { node } => {
                self.heard_from(&mut state, node, now);
                None
            }
            Payload::Join { node } if node == self.node => None,
            Payload::Join { node } => {
                self.heard_from(&mut state, node, now);
                Some(format!("h:{}", self.node))
            }
            Payload::Closing { node } => {
                state.peers.remove(node);
                // Nobody waits for a node that has gone.
                let done: Vec<u64> = state
                    .pending
                    .iter_mut()
                    .filter_map(|(n, p)| {
                        p.awaiting.remove(node);
                        p.complete_if_done().then_some(*n)
                    })
                    .collect();
                for n in done {
                    state.pending.remove(&n);
                }
                None
            }
            Payload::Other => None,
        }
    }

    fn set_subscribed(&self) {
        // Anything cached before may be stale: notifications may have been
        // missed while unsubscribed.
        self.bump();
        self.state().heartbeat_unanswered_since = None;
        self.healthy.store(true, Ordering::SeqCst);
        self.subscribed.notify_waiters();
    }

    fn set_lost(&self) {
        self.healthy.store(false, Ordering::SeqCst);
        self.bump();
        // Whoever waits for acknowledgements stops waiting: they would
        // come to a connection that is gone.
        self.state().pending.clear();
    }

    /// Waits (at most `limit`) until the listener is subscribed.
    pub(crate) async fn wait_subscribed(&self, limit: Duration) -> bool {
        let subscribed = self.subscribed.notified();
        if self.is_healthy() {
            return true;
        }
        tokio::time::timeout(limit, subscribed).await.is_ok()
    }

    /// The store is closing: tell the other nodes not to wait for this
    /// one, and stop listening.
    pub(crate) async fn close(&self, pool: &AnyPool) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            let _ = notify(pool, &format!("x:{}", self.node)).await;
            self.interrupt.notify_one();
        }
    }
}

async fn notify(pool: &AnyPool, payload: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(pool)
        .await
        .map(|_| ())
}

/// One change's notification payload, and the means to wait until every
/// known node has it.
#[derive(Debug)]
pub(crate) struct Echo {
    watch: Arc<PgWatch>,
    n: u64,
    payload: String,
    receiver: Option<oneshot::Receiver<()>>,
}

impl Echo {
    pub(crate) fn payload(&self) -> &str {
        &self.payload
    }

    /// After COMMIT: waits until this node's listener has the change back
    /// and every other live node has acknowledged it, the listener is lost,
    /// or [`ECHO_WAIT`] has passed. Returns whether all is acknowledged.
    pub(crate) async fn wait(mut self) -> bool {
        let Some(receiver) = self.receiver.take() else {
            return false;
        };
        if !self.watch.is_healthy() {
            return false;
        }
        match tokio::time::timeout(ECHO_WAIT, receiver).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                let missing = self
                    .watch
                    .state()
                    .pending
                    .get(&self.n)
                    .map_or(0, |p| p.awaiting.len());
                tracing::warn!(
                    wait_ms = ECHO_WAIT.as_millis() as u64,
                    nodes_missing = missing,
                    "a change was not acknowledged by every node in time; they may apply it late"
                );
                false
            }
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        // Not committed, timed out or cancelled: forget the registration.
        self.watch.state().pending.remove(&self.n);
    }
}

/// Starts following the other nodes' changes: the listener (on its own
/// connection, `options`) and the heartbeat. Waits, at most `wait`, until
/// subscribed, and then (at most [`ECHO_WAIT`]) until every other node
/// PostgreSQL shows listening has answered this node's join, so that even a
/// short-lived process (`tooken admin`) knows whom to wait for when it
/// writes.
pub(crate) async fn start(
    pool: &AnyPool,
    options: PgConnectOptions,
    wait: Duration,
) -> Arc<PgWatch> {
    let pg = Arc::new(PgWatch::new());
    tokio::spawn(listen(options, pg.clone()));
    tokio::spawn(heartbeat(pool.clone(), pg.clone()));
    if !pg.wait_subscribed(wait).await {
        tracing::warn!("not yet subscribed to store changes; caches are bypassed until then");
        return pg;
    }
    let listeners: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name LIKE $1",
    )
    .bind(format!("%{LISTENER_SUFFIX}"))
    .fetch_one(pool)
    .await
    .unwrap_or(0);
    let others = usize::try_from(listeners - 1).unwrap_or(0);
    if !pg.wait_for_peers(others, ECHO_WAIT).await {
        tracing::debug!(others, "not every other node answered at once");
    }
    pg
}

/// Listens for change notifications until the store is closed,
/// reconnecting when the connection drops.
pub(crate) async fn listen(options: PgConnectOptions, watch: Arc<PgWatch>) {
    // A pool of one, only to (re)connect; its connection is the listener.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options);
    while !watch.closed.load(Ordering::SeqCst) {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                listener.eager_reconnect(false);
                if let Err(e) = subscribe(&mut listener, &watch).await {
                    tracing::warn!(error = %e, "cannot subscribe to store changes");
                } else {
                    watch.set_subscribed();
                    tracing::debug!("subscribed to store changes");
                    follow(&mut listener, &watch).await;
                }
                watch.set_lost();
                if watch.closed.load(Ordering::SeqCst) {
                    break;
                }
                tracing::warn!(
                    "lost the store change subscription; caches are bypassed until it is back"
                );
            }
            Err(e) => {
                watch.set_lost();
                tracing::warn!(error = %e, "cannot connect to listen for store changes");
            }
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
    pool.close().await;
}

/// LISTENs, and announces this node at once (a join, which every other
/// node answers with a heartbeat) so that the others wait for its
/// acknowledgements from now on and it learns who they are.
async fn subscribe(listener: &mut PgListener, watch: &PgWatch) -> sqlx::Result<()> {
    listener.listen(CHANNEL).await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!("j:{}", watch.node))
        .execute(&mut *listener)
        .await?;
    Ok(())
}

/// Handles notifications until the connection fails or is interrupted.
async fn follow(listener: &mut PgListener, watch: &PgWatch) {
    loop {
        // Interrupted only to drop the connection: losing a partly read
        // message with it does not matter.
        let next = tokio::select! {
            next = listener.try_recv() => next,
            () = watch.interrupt.notified() => return,
        };
        let notification = match next {
            Ok(Some(n)) => n,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "store change subscription failed");
                return;
            }
        };
        if let Some(ack) = watch.received(notification.payload()) {
            // On the listening connection itself: no pool to wait for.
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&ack)
                .execute(&mut *listener)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "cannot acknowledge a store change");
                return;
            }
        }
    }
}

/// Every [`HEARTBEAT_INTERVAL`] while subscribed, tells the other nodes
/// this one is there; drops the listener when its own heartbeats stop
/// coming back. Ends when the store is closed.
pub(crate) async fn heartbeat(pool: AnyPool, watch: Arc<PgWatch>) {
    let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if watch.closed.load(Ordering::SeqCst) || pool.is_closed() {
            return;
        }
        if !watch.is_healthy() {
            continue;
        }
        let stale = watch
            .state()
            .heartbeat_unanswered_since
            .is_some_and(|since| since.elapsed() > PEER_TTL);
        if stale {
            tracing::warn!("own heartbeats do not come back: re-establishing the change listener");
            watch.state().heartbeat_unanswered_since = None;
            watch.interrupt.notify_one();
            continue;
        }
        let sent = tokio::time::timeout(
            HEARTBEAT_INTERVAL,
            notify(&pool, &format!("h:{}", watch.node)),
        )
        .await;
        if let Ok(Ok(())) = sent {
            watch
                .state()
                .heartbeat_unanswered_since
                .get_or_insert_with(Instant::now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert_eq!(
            Payload::parse("c:ab12:7"),
            Payload::Change { node: "ab12", n: 7 }
        );
        assert_eq!(
            Payload::parse("a:cd34:ab12:7"),
            Payload::Ack {
                node: "cd34",
                origin: "ab12",
                n: 7
            }
        );
        assert_eq!(
            Payload::parse("h:ab12"),
            Payload::Heartbeat { node: "ab12" }
        );
        assert_eq!(Payload::parse("x:ab12"), Payload::Closing { node: "ab12" });
        assert_eq!(Payload::parse("j:ab12"), Payload::Join { node: "ab12" });
        assert_eq!(Payload::parse(""), Payload::Other);
        assert_eq!(Payload::parse("c:ab12:seven"), Payload::Other);
    }

    #[tokio::test]
    async fn a_change_is_done_when_it_is_back_and_every_live_peer_acknowledged() {
        let watch = Arc::new(PgWatch::new());
        watch.set_subscribed();
        // Two peers announce themselves; a third was last heard long ago.
        assert_eq!(watch.received("h:p1"), None);
        assert_eq!(watch.received("h:p2"), None);
        watch
            .state()
            .peers
            .insert("gone".into(), Instant::now() - PEER_TTL * 2);
        let generation = watch.generation.load(Ordering::SeqCst);
        let echo = watch.expect_echo();
        let n: u64 = echo.payload().rsplit(':').next().unwrap().parse().unwrap();
        let own = &watch.node.clone();
        // Heartbeats and acknowledgements do not empty caches; changes do.
        assert_eq!(watch.generation.load(Ordering::SeqCst), generation);
        assert_eq!(watch.received(echo.payload()), None);
        assert_eq!(watch.generation.load(Ordering::SeqCst), generation + 1);
        assert_eq!(watch.received(&format!("a:p1:{own}:{n}")), None);
        assert!(!watch.state().pending[&n].awaiting.is_empty());
        assert_eq!(watch.received(&format!("a:p2:{own}:{n}")), None);
        assert!(echo.wait().await, "done without the stale peer");
        assert!(watch.state().pending.is_empty());

        // Another node's change is acknowledged, after emptying the cache.
        assert_eq!(
            watch.received("c:p1:9").as_deref(),
            Some(format!("a:{own}:p1:9").as_str())
        );
        assert_eq!(watch.generation.load(Ordering::SeqCst), generation + 2);
    }

    #[tokio::test]
    async fn a_closing_peer_is_not_waited_for() {
        let watch = Arc::new(PgWatch::new());
        watch.set_subscribed();
        watch.received("h:p1");
        let echo = watch.expect_echo();
        watch.received(echo.payload());
        watch.received("x:p1");
        let started = Instant::now();
        assert!(echo.wait().await);
        assert!(started.elapsed() < ECHO_WAIT);
    }

    #[tokio::test]
    async fn losing_the_listener_ends_every_wait() {
        let watch = Arc::new(PgWatch::new());
        watch.set_subscribed();
        watch.received("h:p1");
        let echo = watch.expect_echo();
        watch.set_lost();
        assert_eq!(watch.received("h:p1"), None);
        let started = Instant::now();
        assert!(!echo.wait().await);
        assert!(started.elapsed() < ECHO_WAIT);
        // And nothing is waited for while it is down.
        let echo = watch.expect_echo();
        assert!(!echo.wait().await);
    }

    #[tokio::test]
    async fn a_join_is_answered_and_counts_as_a_peer() {
        let watch = Arc::new(PgWatch::new());
        watch.set_subscribed();
        let own = watch.node.clone();
        assert_eq!(watch.received(&format!("j:{own}")), None);
        assert!(!watch.wait_for_peers(1, Duration::from_millis(10)).await);
        let waiter = {
            let watch = watch.clone();
            tokio::spawn(async move { watch.wait_for_peers(2, Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        assert_eq!(
            watch.received("j:p1").as_deref(),
            Some(format!("h:{own}").as_str())
        );
        assert_eq!(watch.received("h:p2"), None);
        assert!(waiter.await.unwrap());
    }
}
