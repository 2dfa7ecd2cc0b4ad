//! Hostile clients of the webhook port, on loopback: connections that finish TLS and then send
//! nothing, send request headers a byte at a time, go idle on HTTP/2 after one request, or open
//! many HTTP/2 streams that each send a review body a byte at a time. Each
//! is held until the server closes it and reports how long that took, giving up after a limit
//! of its own, so a test holds exactly the connections it asked for and never hangs. Also a
//! listener that accepts and never answers: a stalled registry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// What a hostile connection does once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// TCP only: the TLS handshake never starts.
    StalledHandshake,
    /// TLS (ALPN `http/1.1`), then nothing.
    SilentH1,
    /// TLS (ALPN `h2`), then nothing: not even the HTTP/2 preface.
    SilentH2,
    /// TLS, then a request's headers one byte every 100 ms, never finished.
    SlowHeaders,
    /// HTTP/2: one `GET /healthz`, then an open connection with no stream (pings answered).
    IdleH2,
    /// HTTP/2: [`SLOW_BODY_STREAMS`] `POST /validate` streams at once, each sending its headers
    /// and then a body of [`SLOW_BODY_CHUNK`] bytes every [`SLOW_BODY_EVERY`], never finished;
    /// an answered stream is replaced.
    SlowBodyH2,
}

/// What a [`Hostile::SlowBodyH2`] stream sends at a time: DATA frames this small or larger are
/// not counted by h2's flood budget (smaller ones buffered unread get the connection closed
/// with `ENHANCE_YOUR_CALM`, which would end the attack rather than test the limits).
pub const SLOW_BODY_CHUNK: usize = 256;
/// Between the starts of one connection's [`Hostile::SlowBodyH2`] streams.
pub const SLOW_BODY_STAGGER: Duration = Duration::from_millis(50);
/// How often a [`Hostile::SlowBodyH2`] stream sends a chunk.
pub const SLOW_BODY_EVERY: Duration = Duration::from_millis(250);

/// Streams a [`Hostile::SlowBodyH2`] connection keeps asking for (the server's stream limit
/// decides how many are open; the rest wait in the client).
pub const SLOW_BODY_STREAMS: usize = 100;

/// How a hostile connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The server closed it this long after the TCP connection was made.
    Closed(Duration),
    /// Refused before TLS finished (closed at once, or a failed handshake).
    Refused,
    /// Still open when the client gave up.
    Open,
}

/// The webhook to attack: loopback address and the CA that signed its certificate.
#[derive(Clone)]
pub struct Target {
    addr: SocketAddr,
    roots: Arc<rustls::RootCertStore>,
}

impl Target {
    /// `127.0.0.1:port`, trusting `ca_pem` for `localhost`.
    pub fn new(port: u16, ca_pem: &str) -> Self {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(c.expect("CA PEM")).expect("CA certificate");
        }
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            roots: Arc::new(roots),
        }
    }

    fn connector(&self, alpn: &[u8]) -> TlsConnector {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        TlsConnector::from(Arc::new(config))
    }

    async fn tls(&self, alpn: &[u8]) -> Option<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await.ok()?;
        let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
        let connect = self.connector(alpn).connect(name, tcp);
        tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .ok()?
            .ok()
    }

    /// Open one hostile connection and hold it until the server closes it or `give_up` passes.
    pub async fn hold(&self, kind: Hostile, give_up: Duration) -> Held {
        let started = Instant::now();
        let until = started + give_up;
        let closed = match kind {
            Hostile::StalledHandshake => match TcpStream::connect(self.addr).await {
                Ok(tcp) => silent(tcp, until).await,
                Err(_) => return Held::Refused,
            },
            Hostile::SilentH1
            | Hostile::SilentH2
            | Hostile::SlowHeaders
            | Hostile::IdleH2
            | Hostile::SlowBodyH2 => {
                let alpn: &[u8] = match kind {
                    Hostile::SilentH2 | Hostile::IdleH2 | Hostile::SlowBodyH2 => b"h2",
                    _ => b"http/1.1",
                };
                let Some(tls) = self.tls(alpn).await else {
                    return Held::Refused;
                };
                match kind {
                    Hostile::SlowHeaders => slow_headers(tls, until).await,
                    Hostile::IdleH2 => idle_h2(tls, until).await,
                    Hostile::SlowBodyH2 => slow_bodies_h2(tls, until).await,
                    _ => silent(tls, until).await,
                }
            }
        };
        if closed {
            Held::Closed(started.elapsed())
        } else {
            Held::Open
        }
    }

    /// Open `n` connections of `kind` at once; the handles report how each ended.
    pub fn hold_many(
        &self,
        kind: Hostile,
        n: usize,
        give_up: Duration,
    ) -> Vec<tokio::task::JoinHandle<Held>> {
        (0..n)
            .map(|_| {
                let t = self.clone();
                tokio::spawn(async move { t.hold(kind, give_up).await })
            })
            .collect()
    }
}

/// Read until the server closes (true) or `until` (false).
async fn silent(mut tls: impl tokio::io::AsyncRead + Unpin, until: Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(until.into(), tls.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

async fn slow_headers(tls: TlsStream<TcpStream>, until: Instant) -> bool {
    let (mut rd, mut wr) = tokio::io::split(tls);
    let head = b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n";
    let filler = b"X-Slow: aaaaaaaaaaaaaaaa\r\n";
    let mut bytes = head.iter().chain(filler.iter().cycle());
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(until.into()) => return false,
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => return true,
                // An error answer (408) is fine; the close is what counts.
                Ok(_) => {}
            },
            _ = tick.tick() => {
                let b = *bytes.next().unwrap_or(&b'a');
                if wr.write_all(&[b]).await.is_err() || wr.flush().await.is_err() {
                    return true;
                }
            }
        }
    }
}

async fn idle_h2(tls: TlsStream<TcpStream>, until: Instant) -> bool {
    let io = hyper_util::rt::TokioIo::new(tls);
    let Ok((mut sender, conn)) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .handshake::<_, axum::body::Body>(io)
            .await
    else {
        return true;
    };
    let mut conn = tokio::spawn(conn);
    let req = hyper::Request::get("https://localhost/healthz")
        .body(axum::body::Body::empty())
        .expect("request");
    match tokio::time::timeout_at(until.into(), sender.send_request(req)).await {
        Ok(Ok(r)) => assert_eq!(r.status(), 200, "GET /healthz over HTTP/2"),
        Ok(Err(_)) => return true,
        Err(_) => return false,
    }
    // The connection task ends when the server sends GOAWAY and closes.
    let closed = tokio::time::timeout_at(until.into(), &mut conn)
        .await
        .is_ok();
    conn.abort();
    closed
}

async fn slow_bodies_h2(tls: TlsStream<TcpStream>, until: Instant) -> bool {
    let io = hyper_util::rt::TokioIo::new(tls);
    let Ok((sender, conn)) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .handshake::<_, axum::body::Body>(io)
            .await
    else {
        return true;
    };
    let mut conn = tokio::spawn(conn);
    let mut streams = tokio::task::JoinSet::new();
    for i in 0..SLOW_BODY_STREAMS {
        let mut sender = sender.clone();
        streams.spawn(async move {
            // Staggered, so that requests keep arriving (as a flood does) rather than in one
            // batch that times out at once.
            tokio::time::sleep(SLOW_BODY_STAGGER * i as u32).await;
            // Until the connection fails: each answer (408 when readTimeout passes) is followed
            // by a new slow stream.
            loop {
                let body = futures::stream::unfold(true, |first| async move {
                    if !first {
                        tokio::time::sleep(SLOW_BODY_EVERY).await;
                    }
                    let mut chunk = vec![b' '; SLOW_BODY_CHUNK];
                    if first {
                        chunk[0] = b'{';
                    }
                    Some((Ok::<_, std::convert::Infallible>(chunk), false))
                });
                let req = hyper::Request::post("https://localhost/validate")
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from_stream(body))
                    .expect("request");
                if sender.ready().await.is_err() {
                    return;
                }
                match sender.send_request(req).await {
                    Ok(r) => drop(r),
                    Err(_) => return,
                }
                // Never a busy loop, whatever the server answers.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    drop(sender);
    let closed = tokio::time::timeout_at(until.into(), &mut conn)
        .await
        .is_ok();
    conn.abort();
    streams.abort_all();
    closed
}

/// A TCP listener on loopback that accepts connections and never answers (a stalled
/// registry): it holds at most `max` of them, and stops when dropped.
pub struct Stalled {
    /// `127.0.0.1:PORT`.
    pub host: String,
    task: tokio::task::JoinHandle<()>,
}

impl Stalled {
    /// Start on a free port.
    pub async fn start(max: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let host = format!("127.0.0.1:{}", listener.local_addr().expect("addr").port());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                if held.len() < max {
                    held.push(s);
                }
            }
        });
        Self { host, task }
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        self.task.abort();
    }
}
