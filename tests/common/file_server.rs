//! A loopback plain-HTTP server answering each GET with the file named by its path and closing
//! the connection, as a CRL distribution point does; it counts the requests it gets and stops
//! (its port then refuses connections) when dropped.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The running server.
pub struct FileServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    requests: Arc<Mutex<Vec<String>>>,
    stopped: Arc<AtomicBool>,
}

impl FileServer {
    /// A server on a free port.
    pub fn start() -> FileServer {
        FileServer::on(0)
    }

    /// A server on `port` (the one certificates name).
    pub fn on(port: u16) -> FileServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("file server port");
        let port = listener.local_addr().expect("local address").port();
        let server = FileServer {
            port,
            files: Arc::default(),
            requests: Arc::default(),
            stopped: Arc::default(),
        };
        let (files, requests, stopped) = (
            server.files.clone(),
            server.requests.clone(),
            server.stopped.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (files, requests) = (files.clone(), requests.clone());
                std::thread::spawn(move || answer(stream, &files, &requests));
            }
        });
        server
    }

    /// `http://127.0.0.1:PORT/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    /// Serve `bytes` at `/<name>` (replacing what was there).
    pub fn serve(&self, name: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(format!("/{name}"), bytes);
    }

    /// The paths asked for so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn answer(
    mut stream: TcpStream,
    files: &Mutex<HashMap<String, Vec<u8>>>,
    requests: &Mutex<Vec<String>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut line = String::new();
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
    requests.lock().unwrap().push(path.clone());
    let body = files.lock().unwrap().get(&path).cloned();
    let head = match &body {
        Some(b) => format!("HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len()),
        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
    };
    let _ = stream.write_all(head.as_bytes());
    if let Some(b) = body {
        let _ = stream.write_all(&b);
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so it drops the listener, then wait until the port refuses.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && started.elapsed() < Duration::from_secs(2)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
