//! The webhook's connections: accept, TLS, then HTTP/1.1 or HTTP/2 as ALPN chose, under limits
//! that keep clients who open connections and send nothing useful from holding the port.
//!
//! - A new connection must finish its TLS handshake and deliver its first request's headers
//!   within `read_timeout` of being accepted. On HTTP/1.1 every later request's headers must
//!   arrive within `read_timeout` of the connection being ready for them (hyper's header-read
//!   timeout): that closes slowloris senders and is HTTP/1.1's keep-alive idle time too.
//! - An HTTP/2 connection with no stream open for `idle_timeout` is closed with GOAWAY (the API
//!   server keeps one open between reviews and reconnects when it needs one); keep-alive pings
//!   close connections whose peer stopped answering. Streams per connection and header sizes
//!   are capped, and flow-control windows are small, so one connection cannot buffer much.
//!   An HTTP/2 connection has at most [`H2_MAX_STREAMS`] (32) streams open: the API server
//!   sends one review per stream and opens another connection when it needs more.
//! - One connection reads at most `reading_per_connection` request bodies at once (a
//!   connection-scoped semaphore handed to the handler as [`ReadingSlots`]; the server sets it
//!   to a small share of its reading slots). A stream waiting for it holds none of the
//!   server's reading slots, so one client sending many bodies a byte at a time on a few
//!   connections cannot queue the API server's reviews behind its own.
//! - At most `max_connections` connections are open, handshakes included. When a new one
//!   arrives at the cap, one is closed to make room, in this order: the oldest that has never
//!   completed a request and has none in flight (silent or stalled), the oldest idle one, the
//!   oldest that has never completed a request but has requests in flight (bodies sent a byte
//!   at a time, say). A connection that has completed a request (2xx) and has one in flight
//!   is never closed for room; only when every open connection is such is the new one closed
//!   at once. Refusing new connections at the cap would let anyone who holds the cap lock the
//!   API server out until those time out; dropping an idle one costs its owner a reconnect at
//!   most, and the API server's connections complete reviews.
//!
//! Every closure is counted in `vouch_connections_closed_total` by reason.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::metrics::Metrics;

/// Streams one HTTP/2 connection may have open at once: the API server sends one review per
/// stream and opens more connections as it needs them.
pub const H2_MAX_STREAMS: u32 = 32;
/// Largest request header block (HTTP/2 header list; HTTP/1.1 read buffer).
const MAX_HEADER_BYTES: u32 = 16 * 1024;
/// HTTP/1.1 read buffer: headers must fit in it.
const H1_MAX_BUF: usize = 64 * 1024;
/// Headers per HTTP/1.1 request.
const H1_MAX_HEADERS: usize = 64;
/// HTTP/2 flow-control windows: what a peer may send before vouch reads it.
const H2_STREAM_WINDOW: u32 = 256 * 1024;
const H2_CONN_WINDOW: u32 = 512 * 1024;
/// HTTP/2 keep-alive pings, and how long an answer may take.
const H2_PING_INTERVAL: Duration = Duration::from_secs(20);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle or evicted connection may take to close gracefully before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Pause after a failed accept (out of file descriptors): the loop must not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Connection limits (see the module documentation).
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// TLS handshake plus first request headers; each later HTTP/1.1 request's headers.
    pub read_timeout: Duration,
    /// HTTP/2 connection without a stream open.
    pub idle_timeout: Duration,
    /// Request bodies one connection reads at once ([`ReadingSlots`]).
    pub reading_per_connection: usize,
}

/// The reading slots of the connection a request came on (a request extension): a handler
/// takes one before reading the body, so that one connection reads at most
/// `reading_per_connection` bodies at once.
#[derive(Debug, Clone)]
pub struct ReadingSlots(pub Arc<tokio::sync::Semaphore>);

/// One open connection, as the cap and the idle watchdog see it.
struct Tracked {
    /// Requests being answered on it.
    in_flight: AtomicUsize,
    /// Whether it has had a request yet.
    served: AtomicBool,
    /// Whether a request on it was answered with a 2xx status.
    completed: AtomicBool,
    /// When it last had no request in flight (milliseconds since the table's epoch).
    idle_since_ms: AtomicU64,
    /// Asks the connection to close (evicted to make room).
    evict: Notify,
}

/// The open connections, oldest first.
struct Table {
    epoch: Instant,
    open: Mutex<BTreeMap<u64, Arc<Tracked>>>,
    next_id: AtomicU64,
    max: usize,
    metrics: Arc<Metrics>,
}

impl Table {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn closed(&self, reason: &'static str) {
        Metrics::inc(&self.metrics.connections_closed, reason);
    }

    /// A place for a new connection, closing one at the cap in the order the module
    /// documentation gives; `None` when every open connection has completed a request and has
    /// one in flight.
    fn admit(&self) -> Option<(u64, Arc<Tracked>)> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= self.max {
            let rank = |c: &Tracked| {
                let idle = c.in_flight.load(Ordering::SeqCst) == 0;
                match (c.completed.load(Ordering::SeqCst), idle) {
                    (false, true) => Some(0),
                    (true, true) => Some(1),
                    (false, false) => Some(2),
                    (true, false) => None,
                }
            };
            // Oldest first within a rank: the map is ordered by id.
            let victim = open
                .iter()
                .filter_map(|(id, c)| rank(c).map(|r| (r, *id)))
                .min()
                .map(|(_, id)| id)?;
            if let Some(c) = open.remove(&victim) {
                c.evict.notify_one();
                self.closed("evicted");
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked {
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            completed: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            evict: Notify::new(),
        });
        open.insert(id, tracked.clone());
        self.metrics.connections_open.set(open.len() as i64);
        Some((id, tracked))
    }

    fn remove(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&id);
        self.metrics.connections_open.set(open.len() as i64);
    }
}

/// Removes a connection from the table however its task ends.
struct Registered {
    table: Arc<Table>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.table.remove(self.id);
    }
}

/// A request in flight on a connection.
struct Busy {
    tracked: Arc<Tracked>,
    table: Arc<Table>,
}

impl Busy {
    fn begin(tracked: &Arc<Tracked>, table: &Arc<Table>) -> Self {
        tracked.in_flight.fetch_add(1, Ordering::SeqCst);
        tracked.served.store(true, Ordering::SeqCst);
        Self {
            tracked: tracked.clone(),
            table: table.clone(),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.tracked.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.tracked
                .idle_since_ms
                .store(self.table.now_ms(), Ordering::SeqCst);
        }
    }
}

/// The HTTP connection builders, one per protocol so that nothing is sniffed: ALPN decided.
struct Builders {
    h1: auto::Builder<TokioExecutor>,
    h2: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(limits: &ConnLimits) -> Self {
        let mut h1 = auto::Builder::new(TokioExecutor::new());
        h1.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.read_timeout)
            .max_buf_size(H1_MAX_BUF)
            .max_headers(H1_MAX_HEADERS);
        let mut h2 = auto::Builder::new(TokioExecutor::new());
        h2.http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(H2_PING_INTERVAL))
            .keep_alive_timeout(H2_PING_TIMEOUT)
            .max_concurrent_streams(H2_MAX_STREAMS)
            .max_header_list_size(MAX_HEADER_BYTES)
            .initial_stream_window_size(H2_STREAM_WINDOW)
            .initial_connection_window_size(H2_CONN_WINDOW);
        Self {
            h1: h1.http1_only(),
            h2: h2.http2_only(),
        }
    }
}

/// A running accept loop.
pub struct Listener {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Serve `router` on `listener` over TLS.
    pub fn spawn(
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        router: Router,
        limits: ConnLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let table = Arc::new(Table {
            epoch: Instant::now(),
            open: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            max: limits.max_connections.max(1),
            metrics,
        });
        let shared = Arc::new(Shared {
            acceptor: tokio_rustls::TlsAcceptor::from(tls),
            builders: Builders::new(&limits),
            router,
            limits,
            table,
        });
        let task = tokio::spawn(accept_loop(listener, shared, stopped));
        Self { stop, task }
    }

    /// Stop accepting, ask every connection to finish what is in flight and close, and wait up
    /// to `grace` for them; whatever is left then is dropped.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            self.task.abort();
            let _ = self.task.await;
        }
    }
}

/// What every connection task needs.
struct Shared {
    acceptor: tokio_rustls::TlsAcceptor,
    builders: Builders,
    router: Router,
    limits: ConnLimits,
    table: Arc<Table>,
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let for_connections = stopped.clone();
    loop {
        tokio::select! {
            () = stopping(&mut stopped) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => {
                    let Some((id, tracked)) = shared.table.admit() else {
                        shared.table.closed("over_capacity");
                        drop(tcp);
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let registered = Registered { table: shared.table.clone(), id };
                    connections.spawn(serve(tcp, shared.clone(), tracked, registered, for_connections.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One connection, from TLS handshake to close.
async fn serve(
    tcp: tokio::net::TcpStream,
    shared: Arc<Shared>,
    tracked: Arc<Tracked>,
    registered: Registered,
    mut stopped: watch::Receiver<bool>,
) {
    let _registered = registered;
    let table = &shared.table;
    let opened = Instant::now();
    let read_timeout = shared.limits.read_timeout;
    let tls = tokio::select! {
        r = tokio::time::timeout(read_timeout, shared.acceptor.accept(tcp)) => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                table.closed("handshake_failed");
                return;
            }
            Err(_) => {
                table.closed("handshake_timeout");
                return;
            }
        },
        () = tracked.evict.notified() => return,
        () = stopping(&mut stopped) => return,
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let router = shared.router.clone();
    let (t, tb) = (tracked.clone(), table.clone());
    let reading = ReadingSlots(Arc::new(tokio::sync::Semaphore::new(
        shared.limits.reading_per_connection.max(1),
    )));
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let busy = Busy::begin(&t, &tb);
        let router = router.clone();
        req.extensions_mut().insert(reading.clone());
        async move {
            let response = router.oneshot(req).await;
            if response.as_ref().is_ok_and(|r| r.status().is_success()) {
                busy.tracked.completed.store(true, Ordering::SeqCst);
            }
            drop(busy);
            response
        }
    });
    let builder = if h2 {
        &shared.builders.h2
    } else {
        &shared.builders.h1
    };
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    let mut conn = std::pin::pin!(conn);
    // When a graceful close was asked for because the connection is idle or evicted: it gets
    // CLOSE_GRACE, then is dropped. A server shutdown waits for in-flight requests instead.
    let mut drop_at: Option<Instant> = None;
    let mut closing = false;
    loop {
        let served = tracked.served.load(Ordering::SeqCst);
        // Before its first request a connection has `read_timeout` from being accepted; after
        // it, an idle one has `idle_timeout` from its last answer.
        let (limit, since) = if served {
            let ms = tracked.idle_since_ms.load(Ordering::SeqCst);
            (
                shared.limits.idle_timeout,
                table.epoch + Duration::from_millis(ms),
            )
        } else {
            (read_timeout, opened)
        };
        let busy = tracked.in_flight.load(Ordering::SeqCst) > 0;
        if !closing && !busy && Instant::now() >= since + limit {
            table.closed(if served { "idle" } else { "read_timeout" });
            conn.as_mut().graceful_shutdown();
            closing = true;
            drop_at = Some(Instant::now() + CLOSE_GRACE);
        }
        let wake = if busy {
            Instant::now() + limit
        } else {
            since + limit
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    let timeout = e
                        .downcast_ref::<hyper::Error>()
                        .is_some_and(hyper::Error::is_timeout);
                    if timeout {
                        table.closed("read_timeout");
                    } else {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                return;
            }
            // Look again: a request may have come and gone meanwhile.
            () = tokio::time::sleep_until(wake.into()), if !closing => {}
            () = tracked.evict.notified(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
                drop_at = Some(Instant::now() + CLOSE_GRACE);
            }
            () = stopping(&mut stopped), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = sleep_until_opt(drop_at) => return,
        }
    }
}

/// Resolves once shutdown is asked for (or the server is gone).
async fn stopping(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
