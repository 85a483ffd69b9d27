//! Accepting and serving connections, with the limits that keep a hostile
//! or broken client from tying the server up: the size and number of
//! request headers, how long a client may take to send a request head (or
//! sit idle between requests), how long a whole request may take, how long
//! a TLS handshake may take, and how many connections are open at once.
//!
//! HTTP/1.1 only (over TLS, ALPN offers `http/1.1`). Request bodies are
//! bounded separately, by the extractors ([`crate::extract::MAX_BODY_BYTES`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::error::ApiError;
use crate::tls::TlsConfig;

/// The limits every connection is served under. The defaults suit a server
/// facing the internet; tests shorten the timeouts.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request head (request line and headers), in bytes. A larger
    /// one is answered `431 Request Header Fields Too Large` (empty body)
    /// and the connection closed. Default 16 KiB.
    pub max_head_bytes: usize,
    /// Most header fields in one request. More are answered `431` (empty
    /// body) and the connection closed. Default 100.
    pub max_headers: usize,
    /// How long a client has to send a whole request head, counted from
    /// the connection's start or, on a kept-alive connection, from the end
    /// of the previous response: a client that sends its head slowly, or
    /// sits idle between requests, is disconnected without an answer.
    /// Default 10 s.
    pub header_read_timeout: Duration,
    /// How long a request may take from its head being read to its
    /// response head being ready, reading the body included. Beyond it the
    /// client gets `408` (`request_timeout`, in the API's error shape) and
    /// the connection is closed. A streamed response body (the audit log
    /// export) is not bounded by it. Default 30 s.
    pub request_timeout: Duration,
    /// How long a TLS handshake may take before the connection is dropped.
    /// Default 10 s.
    pub tls_handshake_timeout: Duration,
    /// Most connections open at once. Beyond it the server stops accepting
    /// (new connections wait in the listen backlog) until one closes.
    /// Default 10,000.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
        }
    }
}

/// After a connection's last answer: how long, and how many bytes, the
/// server goes on reading (and discarding) what the client still sends
/// before closing the socket. See [`Lingering`].
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

/// How long to wait before accepting again after an error that is not
/// about one connection (e.g. out of file descriptors), so the loop does
/// not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Middleware: a request not answered within `limit` (reading its body
/// included) gets `408` and its connection is closed.
pub(crate) async fn time_limit(
    State(limit): State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::info!(limit_ms = limit.as_millis() as u64, "request timed out");
            let mut res = ApiError::RequestTimeout.into_response();
            // The body may be half read: the connection cannot be reused.
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
    }
}

/// Accepts connections on `listener` and serves `app` on each until
/// `shutdown` completes; then stops accepting, lets in-flight requests
/// finish, closes idle connections and returns when all are closed.
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<TlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_head_bytes);
    let http = Arc::new(http);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Every connection holds a receiver; `closed()` on the sender waits
    // until all are dropped, i.e. all connections have ended.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        // Beyond the cap, wait for a connection to close before accepting:
        // new clients queue in the backlog instead of being refused.
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // closed: never happens, the semaphore is ours
            },
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            // The client gave up before we got to it: nothing to wait for.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept connections; retrying shortly");
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            http: http.clone(),
            app: app.clone(),
            remote,
            stop: stop_rx.clone(),
            _permit: permit,
        };
        let tls = tls.clone();
        let handshake_timeout = limits.tls_handshake_timeout;
        tokio::spawn(async move {
            match tls {
                None => connection.serve(stream).await,
                Some(tls) => {
                    let mut stop = connection.stop.clone();
                    let handshake = tokio::time::timeout(handshake_timeout, tls.accept(stream));
                    let stream = tokio::select! {
                        handshake = handshake => match handshake {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%remote, "TLS handshake timed out");
                                return;
                            }
                        },
                        () = stopped(&mut stop) => return,
                    };
                    connection.serve(stream).await
                }
            }
        });
    }
    // Stop accepting: from here new connections are refused.
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    stop_tx.closed().await;
    Ok(())
}

/// One accepted connection and what serving it needs.
struct Connection {
    http: Arc<http1::Builder>,
    app: Router,
    remote: SocketAddr,
    stop: watch::Receiver<bool>,
    /// Given back when the connection ends.
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve<S>(mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (app, remote) = (self.app.clone(), self.remote);
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            // Handlers see the client's address (brute-force throttling).
            req.extensions_mut().insert(ConnectInfo(remote));
            app.clone().oneshot(req.map(Body::new))
        });
        let io = TokioIo::new(Lingering::new(stream));
        let mut conn = pin!(self.http.serve_connection(io, service));
        let result = tokio::select! {
            result = conn.as_mut() => result,
            () = stopped(&mut self.stop) => {
                // Finish the request in flight, if any, then close.
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            // Timeouts, malformed requests and clients going away: the
            // client's doing, already answered where HTTP allows.
            tracing::debug!(%remote, error = %e, "connection ended with an error");
        }
    }
}

/// A connection's stream that closes gently.
///
/// When the server closes a connection while the client is still sending
/// (a request head over the limit, a body cut short by a `408`), the
/// unread input makes the kernel answer with a reset, which can destroy
/// the answer (`431`, `400`, `408`) before the client has read it. So on
/// shutdown this first ends the sending side (the client sees the end of
/// the answer), then reads and discards input until the client closes its
/// side, for at most [`LINGER_TIME`] and [`LINGER_BYTES`].
struct Lingering<S> {
    inner: S,
    closing: Closing,
}

enum Closing {
    Open,
    Draining {
        deadline: Pin<Box<tokio::time::Sleep>>,
        budget: usize,
    },
    Done,
}

impl<S> Lingering<S> {
    fn new(inner: S) -> Lingering<S> {
        Lingering {
            inner,
            closing: Closing::Open,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.closing {
                Closing::Open => {
                    ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
                    this.closing = Closing::Draining {
                        deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                        budget: LINGER_BYTES,
                    };
                }
                Closing::Draining { deadline, budget } => {
                    if deadline.as_mut().poll(cx).is_ready() {
                        this.closing = Closing::Done;
                        continue;
                    }
                    let mut scratch = [0u8; 4096];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf)) {
                        Ok(()) if !buf.filled().is_empty() && buf.filled().len() < *budget => {
                            *budget -= buf.filled().len();
                        }
                        // The client closed its side, went away, or sent
                        // too much: done either way.
                        _ => this.closing = Closing::Done,
                    }
                }
                Closing::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

/// Completes once the server is stopping.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stopping.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Errors about one connection that was already gone when accepted.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
