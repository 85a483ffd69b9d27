//! Knowing when the store changed, so that caches in front of it can be
//! trusted only while nothing has.
//!
//! Writes that can make a cached credential wrong (revoking, rotating,
//! changing, regenerating or deleting) bump the `store_changes` counter in
//! their own transaction. Creating things, recording usage and appending
//! audit events do not: nothing cached can be wrong because of them.
//!
//! * SQLite: a synchronous connection of our own reads `PRAGMA
//!   data_version`, which changes whenever any other connection (the
//!   server's pool, or `tooken admin` in another process) commits; only then
//!   is the counter read again. A cache checked against it is never stale by
//!   even one request. To make the common case cheaper still, the first 48
//!   bytes of the `-shm` file (the WAL index header, which every commit
//!   rewrites: its frame count, or its salt when the log restarts) are read
//!   first; while they are byte for byte what they were at the last full
//!   check, nothing has committed and the pragma is skipped. A torn or
//!   failed read only sends the check down the full path.
//! * PostgreSQL: those writes also send a notification on the
//!   `tooken_changes` channel in their transaction. Each node (each open
//!   [`Store`](crate::Store)) keeps one connection listening on the channel
//!   (`application_name` `tooken-listener`, or the URL's `application_name`
//!   followed by `-listener`); every change notification bumps a
//!   generation, and so empties that node's cache before its next lookup.
//!   While the listener is disconnected the store reports no marker at all,
//!   so caches are bypassed (fail safe) until it has reconnected and
//!   resubscribed; resubscribing bumps the generation too, as notifications
//!   may have been missed.
//!
//! # Cross-node guarantee on PostgreSQL
//!
//! NOTIFY is asynchronous: PostgreSQL queues a notification at COMMIT and
//! each listening session forwards it to its node when it gets to it. On a
//! busy machine one node's copy can land a fraction of a millisecond after
//! another's — long enough for a client that got the writer's answer to
//! ask another node and be answered from a stale cache. So a
//! change-committing write waits, after COMMIT, until every node it knows
//! has *acknowledged* the change, at most [`ECHO_WAIT`](postgres::ECHO_WAIT):
//!
//! * Payloads say what they are: `c:NODE:N` a change (N unique per node),
//!   `a:NODE:ORIGIN:N` an acknowledgement, `h:NODE` a heartbeat (every
//!   [`HEARTBEAT_INTERVAL`](postgres::HEARTBEAT_INTERVAL)), `j:NODE` a node that has just subscribed
//!   (every other node answers with a heartbeat at once), `x:NODE` a node
//!   closing. Only changes (and payloads this version does not know) bump
//!   the generation.
//! * A node that receives another node's change bumps its generation first
//!   and then acknowledges on its listening connection. The writer returns
//!   once its own listener has the change back and every node it has heard
//!   from within [`PEER_TTL`](postgres::PEER_TTL) has acknowledged it.
//!
//! So when a write returns, every live node has already emptied its cache:
//! its very next lookup goes to the database. Limits, stated plainly:
//!
//! * A request a node is already answering when the change lands may still
//!   finish with what it looked up before.
//! * The wait gives up after [`ECHO_WAIT`](postgres::ECHO_WAIT) (logging a warning): a node that
//!   is overloaded or has just died (until [`PEER_TTL`](postgres::PEER_TTL) passes without its
//!   heartbeat) is not waited for longer, and may apply the change late.
//! * A node that has just subscribed is waited for once the others have
//!   heard its join (sent at once); its cache starts empty. Opening the
//!   store waits (at most [`ECHO_WAIT`](postgres::ECHO_WAIT)) until as many nodes have answered
//!   the join as PostgreSQL shows other sessions named `…-listener` on the
//!   database, so that even a short-lived writer (`tooken admin`) knows
//!   whom to wait for.
//! * The wait is skipped while the writer's own listener is down (its cache
//!   is bypassed then; the other nodes are still notified).
//! * A listener whose connection dies silently (no reset reaches the node)
//!   is noticed when its own heartbeat has not come back for [`PEER_TTL`](postgres::PEER_TTL):
//!   it is then dropped and re-established, and the cache bypassed
//!   meanwhile.

//!
//! One module per backend: [`sqlite`] and [`postgres`].

pub(crate) mod postgres;
pub(crate) mod sqlite;
