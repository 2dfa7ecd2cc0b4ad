//! OCSP against a responder that is not ours: `openssl ocsp` on loopback, serving the notation
//! e2e OCSP material (`../shared/vectors/revocation/notation-e2e/ocsp`: a root, a leaf naming
//! `http://localhost:10087`, a delegated responder certificate) from an index file. Each test
//! copies the material into a temporary directory (openssl wants a writable index), writes the
//! index, starts its own responder on a free port and asks it with the request
//! `vouch::notation::revocation::ocsp::request` builds, by GET and by POST, over a few lines of
//! blocking HTTP/1.0 (test scaffolding, not the product's fetcher). Every wait is bounded and
//! every responder is killed when its guard drops.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use vouch::notation::revocation::ocsp::{self, REVOKED, UNKNOWN_STATUS};
use vouch::notation::revocation::{Decision, Status};
use vouch::notation::x509::Certificate;

const LEAF_INDEX: &str = "\t21250121012109Z\t{rev}\t520D9B1364D98367711DA2B6A0A0F34B23E3D02A\tunknown\t/C=US/ST=State/L=City/O=Organization/OU=OrgUnit/CN=LeafCert\n";
const WAIT: Duration = Duration::from_secs(15);

fn material() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/vectors/revocation/notation-e2e/ocsp");
    assert!(p.is_dir(), "OCSP vectors not found at {}", p.display());
    p
}

/// A writable copy of the material with `index` as the CA database.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new(index: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(&material(), dir.path());
        let pki = Self { dir };
        std::fs::write(pki.path("demoCA/index.txt"), index).expect("index");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cert(&self, name: &str) -> Certificate {
        let pem = std::fs::read_to_string(self.path(name)).expect("read certificate");
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        Certificate::from_der(&der).expect("certificate")
    }

    fn leaf(&self) -> Certificate {
        self.cert("leaf.crt")
    }

    fn root(&self) -> Certificate {
        self.cert("root.crt")
    }

    /// An unrelated self-signed RSA responder certificate and key, named as the real one.
    fn stranger(&self) {
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=OCSPResponder", "-keyout", "stranger.key"])
            .args(["-out", "stranger.crt"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("openssl req");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read vectors") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
    }
}

/// `openssl ocsp` as a responder; killed on drop.
struct Responder {
    child: Child,
    port: u16,
}

impl Responder {
    /// Start a responder for the root's certificates signed by `signer` (`-rsigner`/`-rkey`
    /// file stems), with `extra` arguments. It binds all interfaces; only 127.0.0.1 is asked.
    fn start(pki: &Pki, signer: (&str, &str), extra: &[&str]) -> Self {
        for _ in 0..5 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let log_path = pki.path(&format!("responder-{port}.log"));
            let log = std::fs::File::create(&log_path).expect("responder log");
            let child = Command::new("openssl")
                .args(["ocsp", "-port", &port.to_string(), "-ignore_err"])
                .args(["-index", "demoCA/index.txt", "-CA", "root.crt"])
                .args(["-rsigner", signer.0, "-rkey", signer.1])
                .args(extra)
                .current_dir(pki.dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("openssl ocsp (OpenSSL must be installed)");
            let mut responder = Self { child, port };
            if responder.ready(&log_path) {
                return responder;
            }
            // Port taken meanwhile, or openssl failed: the guard kills it; try another port.
        }
        panic!("openssl ocsp did not start listening");
    }

    // Ready once openssl says it waits for connections (after binding). A connection probe
    // would not do: openssl 3.0 then waits forever on the probe's closed connection.
    fn ready(&mut self, log: &Path) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("waiting for OCSP client connections") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn server(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Ask for `cert`'s status by GET (the form notation uses for short requests).
    fn get(&self, cert: &Certificate, issuer: &Certificate) -> Vec<u8> {
        let request = ocsp::request(cert, issuer).expect("request");
        let url = ocsp::request_url(&self.server(), &request).expect("short request: GET");
        let url = url::Url::parse(&url).expect("url");
        let (status, body) = http(
            self.port,
            &format!("GET {} HTTP/1.0\r\n\r\n", url.path()),
            b"",
        );
        assert_eq!(status, 200);
        body
    }

    /// Ask by POST (the form for long requests).
    fn post(&self, cert: &Certificate, issuer: &Certificate) -> Vec<u8> {
        let request = ocsp::request(cert, issuer).expect("request");
        let head = format!(
            "POST / HTTP/1.0\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
            ocsp::CONTENT_TYPE_REQUEST,
            request.len()
        );
        let (status, body) = http(self.port, &head, &request);
        assert_eq!(status, 200);
        body
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 exchange on 127.0.0.1 with bounded waits: (status code, body).
fn http(port: u16, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.set_write_timeout(Some(WAIT)).expect("timeout");
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut answer = Vec::new();
    // HTTP/1.0: the responder closes after the answer; a hung one fails by the read timeout.
    s.take(ocsp::MAX_RESPONSE_SIZE as u64 + 4096)
        .read_to_end(&mut answer)
        .expect("read the responder's answer");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP header end");
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/ocsp-response"),
        "{head}"
    );
    (status, answer[split + 4..].to_vec())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn check(pki: &Pki, der: &[u8]) -> Decision {
    ocsp::check_response(der, &pki.leaf(), &pki.root(), now(), None)
}

/// The delegated responder of the notation e2e setup, answering for 5 minutes.
fn delegated(pki: &Pki) -> Responder {
    Responder::start(pki, ("ocsp.crt", "ocsp.key"), &["-nmin", "5"])
}

fn valid_line() -> String {
    format!("V{}", LEAF_INDEX.replace("{rev}", ""))
}

fn revoked_line(rev: &str) -> String {
    format!("R{}", LEAF_INDEX.replace("{rev}", rev))
}

#[test]
fn the_request_is_byte_for_byte_the_one_openssl_makes() {
    let pki = Pki::new("");
    let out = Command::new("openssl")
        .args([
            "ocsp",
            "-issuer",
            "root.crt",
            "-cert",
            "leaf.crt",
            "-no_nonce",
        ])
        .args(["-reqout", "req.der"])
        .current_dir(pki.dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("openssl ocsp -reqout");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = std::fs::read(pki.path("req.der")).expect("req.der");
    let ours = ocsp::request(&pki.leaf(), &pki.root()).expect("request");
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 87);
    // The leaf's own responder URL, as notation would GET it.
    let url = ocsp::request_url(&pki.leaf().ocsp_urls()[0], &ours).expect("GET");
    assert!(url.starts_with("http://localhost:10087/MFUw"), "{url}");
    assert!(ocsp::check_server(&pki.leaf().ocsp_urls()[0]).is_ok());
}

#[test]
fn a_valid_index_line_is_good_until_next_update_by_get_and_by_post() {
    let pki = Pki::new(&valid_line());
    let responder = delegated(&pki);
    for der in [
        responder.get(&pki.leaf(), &pki.root()),
        responder.post(&pki.leaf(), &pki.root()),
    ] {
        let before = now();
        let d = check(&pki, &der);
        assert_eq!((d.status, d.error.as_deref()), (Status::Ok, None), "{d:?}");
        assert!(ocsp::decides(&d));
        // -nmin 5: nextUpdate is about five minutes after thisUpdate (generous bounds).
        let next = d.next_update.expect("nextUpdate");
        assert!(
            next > before && next < before + Duration::from_secs(600),
            "{next}"
        );
    }
}

#[test]
fn a_revoked_index_line_is_revoked_unless_invalid_only_after_the_signing_time() {
    let pki = Pki::new(&revoked_line("250214013720Z"));
    let responder = delegated(&pki);
    let der = responder.get(&pki.leaf(), &pki.root());
    let d = check(&pki, &der);
    assert_eq!(
        (d.status, d.error.as_deref()),
        (Status::Revoked, Some(REVOKED))
    );
    assert!(d.next_update.is_some());
    // No invalidityDate: a signing time changes nothing.
    let signed = time::macros::datetime!(2025-01-01 00:00 UTC);
    let d = ocsp::check_response(&der, &pki.leaf(), &pki.root(), now(), Some(signed));
    assert_eq!(d.status, Status::Revoked);
    drop(responder);

    // keyCompromise with a compromise time: openssl adds invalidityDate 2025-02-01.
    let pki = Pki::new(&revoked_line("250214013720Z,keyTime,20250201000000Z"));
    let responder = delegated(&pki);
    let der = responder.get(&pki.leaf(), &pki.root());
    let at = |signed| ocsp::check_response(&der, &pki.leaf(), &pki.root(), now(), signed);
    assert_eq!(at(None).status, Status::Revoked);
    let d = at(Some(time::macros::datetime!(2025-01-31 12:00 UTC)));
    assert_eq!((d.status, d.error.as_deref()), (Status::Ok, None));
    let d = at(Some(time::macros::datetime!(2025-02-01 00:00:01 UTC)));
    assert_eq!(
        (d.status, d.error.as_deref()),
        (Status::Revoked, Some(REVOKED))
    );
}

#[test]
fn an_empty_index_is_unknown_and_that_answer_is_final() {
    let pki = Pki::new("");
    let responder = delegated(&pki);
    let d = check(&pki, &responder.get(&pki.leaf(), &pki.root()));
    assert_eq!(
        (d.status, d.error.as_deref()),
        (Status::Unknown, Some(UNKNOWN_STATUS))
    );
    assert!(
        ocsp::decides(&d),
        "a valid 'unknown' ends the loop over responders"
    );
}

#[test]
fn a_response_signed_by_an_unrelated_key_is_unknown() {
    let pki = Pki::new(&valid_line());
    pki.stranger();
    let responder = Responder::start(&pki, ("stranger.crt", "stranger.key"), &["-nmin", "5"]);
    let d = check(&pki, &responder.get(&pki.leaf(), &pki.root()));
    assert_eq!(
        (d.status, d.error.as_deref()),
        (
            Status::Unknown,
            Some("bad OCSP signature: crypto/rsa: verification error")
        )
    );
    assert!(
        !ocsp::decides(&d),
        "an invalid response lets the next responder answer"
    );
}

#[test]
fn without_embedded_certificate_only_the_issuer_may_sign() {
    let pki = Pki::new(&valid_line());
    let by_root = Responder::start(
        &pki,
        ("root.crt", "root.key"),
        &["-nmin", "5", "-resp_no_certs"],
    );
    let d = check(&pki, &by_root.get(&pki.leaf(), &pki.root()));
    assert_eq!(d.status, Status::Ok, "{d:?}");
    let by_delegate = Responder::start(
        &pki,
        ("ocsp.crt", "ocsp.key"),
        &["-nmin", "5", "-resp_no_certs"],
    );
    let d = check(&pki, &by_delegate.get(&pki.leaf(), &pki.root()));
    assert_eq!(
        d.error.as_deref(),
        Some("bad OCSP signature: crypto/rsa: verification error")
    );
}

#[test]
fn an_expired_response_or_one_without_next_update_is_unknown() {
    let expired = Some("error checking revocation status via OCSP: expired OCSP response");
    let pki = Pki::new(&valid_line());
    let responder = delegated(&pki);
    let der = responder.get(&pki.leaf(), &pki.root());
    let next = check(&pki, &der).next_update.expect("nextUpdate");
    let at = |now| ocsp::check_response(&der, &pki.leaf(), &pki.root(), now, None);
    assert_eq!(at(next).status, Status::Ok);
    let d = at(next + Duration::from_secs(1));
    assert_eq!((d.status, d.error.as_deref()), (Status::Unknown, expired));
    assert!(!ocsp::decides(&d));

    // Without -nmin/-ndays openssl sends no nextUpdate: expired for notation.
    let no_next = Responder::start(&pki, ("ocsp.crt", "ocsp.key"), &[]);
    let d = check(&pki, &no_next.get(&pki.leaf(), &pki.root()));
    assert_eq!((d.status, d.error.as_deref()), (Status::Unknown, expired));
}

#[test]
fn a_response_about_another_serial_is_unknown() {
    let pki = Pki::new(&valid_line());
    let responder = delegated(&pki);
    // Ask about the responder's own certificate (also issued by the root), check it as the leaf's.
    let der = responder.get(&pki.cert("ocsp.crt"), &pki.root());
    let d = check(&pki, &der);
    assert_eq!(
        (d.status, d.error.as_deref()),
        (
            Status::Unknown,
            Some("no response matching the supplied certificate")
        )
    );
    // And a real response cut short, as the 20 KiB read limit would cut a long one.
    let good = responder.get(&pki.leaf(), &pki.root());
    let d = check(&pki, &good[..good.len() - 1]);
    assert_eq!(d.status, Status::Unknown);
    assert!(
        d.error
            .as_deref()
            .unwrap_or("")
            .starts_with("malformed OCSP response: "),
        "{d:?}"
    );
}
