//! `openssl ocsp` on a free loopback port, answering for the certificates a [`Ca`] issued from
//! an openssl CA database (index) written here, signed with the CA's own key (no embedded
//! certificate, so the issuer's key verifies the answer). Killed when dropped.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pki::Ca;

/// The running responder.
pub struct OcspResponder {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl OcspResponder {
    /// A responder for `ca` saying "good" for each serial in `good` (answers valid for an hour).
    pub fn start(ca: &Ca, good: &[u64]) -> OcspResponder {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |name: &str| dir.path().join(name);
        // openssl's CA database: status, expiry (YYMMDDHHMMSSZ), revocation, serial, file, DN.
        let index: String = good
            .iter()
            .map(|s| format!("V\t491231235959Z\t\t{s:04X}\tunknown\t/CN=serial {s}\n"))
            .collect();
        std::fs::write(p("index.txt"), index).expect("index");
        std::fs::write(p("index.txt.attr"), "unique_subject = no\n").expect("attr");
        std::fs::write(p("ca.pem"), ca.cert_pem()).expect("ca");
        std::fs::write(p("ca.key"), ca.key_pem()).expect("key");
        let port = super::free_port();
        let args: Vec<std::ffi::OsString> = vec![
            "-index".into(),
            p("index.txt").into(),
            "-CA".into(),
            p("ca.pem").into(),
            "-rsigner".into(),
            p("ca.pem").into(),
            "-rkey".into(),
            p("ca.key").into(),
            "-resp_no_certs".into(),
            "-nmin".into(),
            "60".into(),
        ];
        Self::spawn(dir, port, &args)
    }

    /// `openssl ocsp -port PORT <args> -ignore_err`, its log in `dir` (kept with the
    /// responder), returned once it says it is waiting for clients.
    pub fn spawn(dir: tempfile::TempDir, port: u16, args: &[std::ffi::OsString]) -> OcspResponder {
        let log = dir.path().join("ocsp.log");
        let child = Command::new("openssl")
            .args(["ocsp", "-port", &port.to_string()])
            .args(args)
            .arg("-ignore_err")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("openssl ocsp");
        // The guard first, so that a responder that fails to start is still killed.
        let responder = OcspResponder {
            child,
            port,
            _dir: dir,
        };
        // Ready once it says so (probing the port would hang OpenSSL 3.0's responder).
        let started = Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .to_ascii_lowercase()
            .contains("waiting for ocsp client connections")
        {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "openssl ocsp did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        responder
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
