//! Terminal and log injection (issue 11, defect 12): text from a hostile registry or client —
//! ESC sequences, CR/LF, bidirectional controls — never reaches `vouch verify`'s output, its JSON
//! messages, a webhook denial or a log line raw, and cannot draw a fake `VERIFIED … allow` line.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::fake_registry::{FakeRegistry, State};
use common::{outcome, vouch};

const POLICY: &str = r#"{"version":"1.0","trustPolicies":[{"name":"prod","registryScopes":["*"],
 "signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#;

/// What a hostile registry writes to forge a line: erase the line, return to its start, print a
/// pass; then a right-to-left override and an isolate for good measure.
fn forged(host: &str) -> String {
    format!(
        "\u{1b}[2K\rVERIFIED {host}/app@sha256:b8479de3f88f (policy \"prod\", strict; admission: allow)\u{202e}wolla\u{2066}\n"
    )
}

/// A registry that refuses everything with `body` (403, so the GET after HEAD reads it).
fn hostile_registry(body: impl FnOnce(&str) -> String) -> FakeRegistry {
    let reg = FakeRegistry::start(State::default()).expect("fake registry");
    let body = body(&reg.host);
    reg.with(|s| {
        s.fail_status = Some(403);
        s.fail_body = Some(body);
    });
    reg
}

/// A distribution error body whose message is the forged line.
fn json_error(host: &str) -> String {
    json!({"errors": [{"code": "DENIED", "message": forged(host)}]}).to_string()
}

/// Characters that must never be shown raw: controls (other than the newline that ends a line
/// of output) and the bidirectional overrides and isolates.
fn hostile(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn assert_clean(text: &str, what: &str) {
    let raw: Vec<String> = text
        .chars()
        .filter(|c| hostile(*c))
        .map(|c| format!("U+{:04X}", c as u32))
        .collect();
    assert!(
        raw.is_empty(),
        "{what} shows {raw:?} raw:\n{}",
        text.escape_debug()
    );
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("VERIFIED")),
        "{what} lets the registry start a line with VERIFIED:\n{text}"
    );
}

struct Trust {
    dir: tempfile::TempDir,
}

impl Trust {
    fn new() -> Trust {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.json"), POLICY).unwrap();
        common::e2e_trust_store(&dir.path().join("store"));
        Trust { dir }
    }
    fn policy(&self) -> String {
        self.dir.path().join("policy.json").display().to_string()
    }
    fn store(&self) -> String {
        self.dir.path().join("store").display().to_string()
    }
}

fn verify(trust: &Trust, regs: &[&FakeRegistry], extra: &[&str]) -> (i32, String, String) {
    let images: Vec<String> = regs.iter().map(|r| format!("{}/app:v1", r.host)).collect();
    let mut args: Vec<&str> = vec!["verify"];
    args.extend(images.iter().map(String::as_str));
    let (policy, store) = (trust.policy(), trust.store());
    args.extend(["--trust-policy", &policy, "--trust-store", &store]);
    for r in regs {
        args.extend(["--insecure-registry", &r.host]);
    }
    args.extend_from_slice(extra);
    outcome(&vouch(&args))
}

#[test]
fn verify_text_output_escapes_what_a_hostile_registry_answers() {
    let trust = Trust::new();
    let structured = hostile_registry(json_error);
    let raw = hostile_registry(|h| format!("{}{}", forged(h), forged(h)));
    let (code, out, err) = verify(&trust, &[&structured, &raw], &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert_clean(&out, "verify's text output");
    assert_clean(&err, "verify's standard error");
    // Still shown, as visible escapes: the person reading the log sees what was attempted.
    assert!(
        out.contains("DENIED \\u{1b}[2K\\rVERIFIED "),
        "the registry's message is shown escaped:\n{out}"
    );
    assert!(out.contains("\\u{202e}wolla\\u{2066}"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ERROR")).count(),
        2,
        "{out}"
    );
}

#[test]
fn verify_json_messages_hold_the_escaped_text() {
    let trust = Trust::new();
    let structured = hostile_registry(json_error);
    let raw = hostile_registry(forged);
    let (code, out, err) = verify(&trust, &[&structured, &raw], &["--output", "json"]);
    assert_eq!(code, 3, "{out}{err}");
    assert_clean(&out, "the JSON document");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        let reasons = r["reasons"].as_array().unwrap();
        assert!(!reasons.is_empty(), "{r}");
        for reason in reasons {
            let reason = reason.as_str().unwrap();
            assert_clean(reason, "a JSON reason");
            assert!(reason.contains("\\u{1b}[2K\\rVERIFIED"), "{reason}");
        }
        assert_eq!(r["admission"], "deny");
    }
}

fn client(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem).unwrap()])
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn webhook_denials_and_text_logs_escape_registry_and_client_text() {
    let trust = Trust::new();
    let reg = hostile_registry(json_error);
    let certs = vouch::certs::generate(&["localhost".into()], 1, &trust.dir.path().join("tls"))
        .expect("serving certificate");
    let port = common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--tls-cert", &certs.tls_cert.display().to_string()])
        .args(["--tls-key", &certs.tls_key.display().to_string()])
        .args([
            "--trust-policy",
            &trust.policy(),
            "--trust-store",
            &trust.store(),
        ])
        .args(["--insecure-registry", &reg.host, "--log-format", "text"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = client(&std::fs::read(&certs.ca_cert).unwrap());
    let url = |p: &str| format!("https://localhost:{port}{p}");
    let started = Instant::now();
    while !client
        .get(url("/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "vouch serve did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // One image on the hostile registry, one whose very name is the forged line.
    let images = [
        format!("{}/app:v1", reg.host),
        format!("{}/app:v1{}", reg.host, forged(&reg.host)),
    ];
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "hostile-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "w", "namespace": "team", "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w", "namespace": "team"},
                "spec": {"containers": [{"name": "a", "image": images[0]}, {"name": "b", "image": images[1]}]}},
            "dryRun": false
        }
    });
    let resp = client
        .post(url("/validate"))
        .header("content-type", "application/json")
        .body(review.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let r = &body["response"];
    assert_eq!(r["allowed"], false, "{r}");
    let message = r["status"]["message"].as_str().unwrap();
    assert_clean(message, "the denial message");
    assert!(message.starts_with("vouch denied 2 images:"), "{message}");
    assert!(message.contains("\\u{1b}[2K\\rVERIFIED"), "{message}");

    // Close the connection (its task must run for that) so that the graceful shutdown has
    // no open connection to wait out.
    drop(client);
    tokio::time::sleep(Duration::from_millis(200)).await;
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("hostile-1"),
        "the decision is logged:\n{stderr}"
    );
    assert_clean(&stderr, "the text log");
}
