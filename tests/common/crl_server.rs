//! Loopback HTTP servers for revocation data (the tests' and benchmarks' CRL distribution
//! points): [`CrlServer`] serves CRLs by name, records the paths asked for and can go silent; [`Silent`] accepts connections and never answers. Both
//! close their listener on drop, so a fixed port is free again for the next test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The files a [`CrlServer`] serves, by name.
type Served = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A loopback HTTP/1.1 server answering `GET /<name>` with the bytes served as `name`
/// (`application/pkix-crl`), 404 for anything else.
pub struct CrlServer {
    served: Served,
    requests: Arc<Mutex<Vec<String>>>,
    silent: Arc<AtomicBool>,
    port: u16,
    _stop: Stop,
}

impl CrlServer {
    /// Listen on `127.0.0.1:port`; port 0 picks a free one ([`CrlServer::port`]).
    pub fn start(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port}: {e}"));
        let port = listener.local_addr().expect("local address").port();
        let served: Served = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let silent = Arc::new(AtomicBool::new(false));
        let stop = Stop::new(port);
        let (s, r, q, done) = (
            served.clone(),
            requests.clone(),
            silent.clone(),
            stop.flag.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { break };
                let (s, r, q) = (s.clone(), r.clone(), q.clone());
                std::thread::spawn(move || answer(stream, &s, &r, &q));
            }
        });
        CrlServer {
            served,
            requests,
            silent,
            port,
            _stop: stop,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    /// Serve `bytes` as `/<name>` from now on (replacing what was served under that name).
    pub fn serve(&self, name: &str, bytes: Vec<u8>) {
        let mut s = self.served.lock().unwrap_or_else(|e| e.into_inner());
        s.retain(|(n, _)| n != name);
        s.push((name.to_string(), bytes));
    }

    /// Accept requests and never answer them (`true`), or answer again (`false`).
    pub fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::SeqCst);
    }

    /// The paths asked for so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn answer(
    mut stream: TcpStream,
    served: &Served,
    requests: &Mutex<Vec<String>>,
    silent: &AtomicBool,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    let Ok(read) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read);
    if reader.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).map_or(true, |n| n == 0) || h.trim().is_empty() {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path.clone());
    if silent.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_secs(30));
        return;
    }
    let body = served
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(name, _)| path == format!("/{name}"))
        .map(|(_, b)| b.clone());
    let head = match &body {
        Some(b) => format!("HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len()),
        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
    };
    let _ = stream.write_all(head.as_bytes());
    if let Some(b) = body {
        let _ = stream.write_all(&b);
    }
}

/// Closes a test server's listener when dropped: sets the flag its accept loop checks and
/// wakes the loop with one connection, so the port is free for the next test.
pub struct Stop {
    port: u16,
    flag: Arc<AtomicBool>,
}

impl Stop {
    fn new(port: u16) -> Self {
        Stop {
            port,
            flag: Arc::default(),
        }
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        // The loop exits and drops the listener; give it a moment before the port is reused.
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && started.elapsed() < Duration::from_secs(2)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A listener that accepts and never answers (the connections it holds close with it).
pub struct Silent {
    held: Arc<Mutex<Vec<TcpStream>>>,
    _stop: Stop,
}

impl Silent {
    /// Listen on `127.0.0.1:port`.
    pub fn on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("port");
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let stop = Stop::new(port);
        let (h, done) = (held.clone(), stop.flag.clone());
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                h.lock().unwrap_or_else(|e| e.into_inner()).push(s);
            }
        });
        Silent { held, _stop: stop }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
