//! `vouch certs generate`: its output verifies with openssl and serves `vouch serve`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn generated_certificates_verify_with_openssl_and_serve_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args([
            "certs",
            "generate",
            "--dns",
            "localhost",
            "--dns",
            "127.0.0.1",
            "--dns",
            "vouch.vouch.svc",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verify = Command::new("openssl")
        .args(["verify", "-purpose", "sslserver", "-CAfile"])
        .arg(dir.path().join("ca.crt"))
        .arg(dir.path().join("tls.crt"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(dir.path().join("tls.crt"))
        .output()
        .unwrap();
    let sans = String::from_utf8_lossy(&text.stdout);
    assert!(
        sans.contains("DNS:vouch.vouch.svc") && sans.contains("IP Address:127.0.0.1"),
        "{sans}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("tls.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "private keys are not world-readable");

    // vouch serve accepts them, and a client trusting ca.crt completes the handshake.
    let policy = dir.path().join("p.json");
    std::fs::write(&policy, r#"{"version":"1.0","trustPolicies":[{"name":"s","registryScopes":["*"],"signatureVerification":{"level":"skip"}}]}"#).unwrap();
    let port = common::free_port();
    // Killed on drop, so a failing assertion cannot leave a server holding the test's output.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Killed(
        Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--trust-store",
                dir.path().to_str().unwrap(),
            ])
            .arg("--trust-policy")
            .arg(&policy)
            .arg("--tls-cert")
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key")
            .arg(dir.path().join("tls.key"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let ok = loop {
        let r = Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(dir.path().join("ca.crt"))
            .arg(format!("https://localhost:{port}/healthz"))
            .output()
            .unwrap();
        if r.status.success() {
            break String::from_utf8_lossy(&r.stdout).to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no TLS handshake with the generated certificate"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(child);
    assert_eq!(ok, "ok");
    // No name at all is a usage error.
    let none = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["certs", "generate"])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2));
}
