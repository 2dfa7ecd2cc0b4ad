//! `vouch serve` end to end over real TLS: AdmissionReviews shaped as kube-apiserver sends them,
//! against a real docker-registry holding the notation e2e vectors.

mod common;

use std::io::Write;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::webhook::{
    client_for, debug_review, first_warning, message, pod_review, pod_spec, review, start,
    write_tls, Webhook, WORKLOAD_KINDS,
};
use common::Registry;

const DIGEST: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        Registry::with_e2e_layouts(&[
            ("e2e-valid-signature", "signed"),
            ("e2e", "unsigned"),
            ("e2e", "sandbox/unsigned"),
        ])
    })
}

const POLICY: &str = r#"{"version":"1.0","trustPolicies":[
 {"name":"sandbox","registryScopes":["REG/sandbox/unsigned"],"signatureVerification":{"level":"audit"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]},
 {"name":"prod","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#;

fn signed() -> String {
    format!("{}/signed@{DIGEST}", registry().host)
}
fn signed_tag() -> String {
    format!("{}/signed:v1", registry().host)
}
fn unsigned() -> String {
    format!("{}/unsigned:v1", registry().host)
}

async fn webhook() -> Webhook {
    start(&[], &registry().host, POLICY).await
}

#[tokio::test]
async fn signed_pod_is_allowed_and_uid_echoed() {
    let w = webhook().await;
    let r = w
        .review(&pod_review("u-1", &[&signed(), &signed_tag()]))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(
        r["auditAnnotations"]["verdicts"]
            .as_str()
            .unwrap()
            .contains("verified"),
        "{r}"
    );
}

#[tokio::test]
async fn unsigned_pod_is_denied_with_an_actionable_message() {
    let w = webhook().await;
    let r = w
        .review(&pod_review("u-2", &[&signed(), &unsigned()]))
        .await;
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 403);
    let msg = message(&r);
    assert!(
        msg.contains(&unsigned()) && msg.contains("no Notation signature found for"),
        "{msg}"
    );
    assert!(msg.starts_with("vouch denied 1 image:"), "{msg}");
    assert!(
        !msg.contains("/signed@"),
        "the signed image is not named: {msg}"
    );
}

#[tokio::test]
async fn every_workload_kind_that_makes_pods_is_judged() {
    let w = webhook().await;
    for kind in WORKLOAD_KINDS {
        let r = w
            .review(&review(
                &format!("k-{kind}"),
                kind,
                "CREATE",
                pod_spec(&[&unsigned()]),
                None,
                None,
                false,
            ))
            .await;
        assert_eq!(r["allowed"], false, "{kind}: {r}");
        let r = w
            .review(&review(
                &format!("k-ok-{kind}"),
                kind,
                "CREATE",
                pod_spec(&[&signed()]),
                None,
                None,
                false,
            ))
            .await;
        assert_eq!(r["allowed"], true, "{kind}: {r}");
    }
}

#[tokio::test]
async fn init_and_ephemeral_containers_are_judged() {
    let w = webhook().await;
    let spec = json!({"initContainers": [{"name": "i", "image": unsigned()}], "containers": [{"name": "c", "image": signed()}]});
    let r = w
        .review(&review("init", "Pod", "CREATE", spec, None, None, false))
        .await;
    assert_eq!(r["allowed"], false);
    // kubectl debug: UPDATE of pods/ephemeralcontainers adding an unsigned debug image.
    let old = pod_spec(&[&signed()]);
    let new = json!({"containers": [{"name": "c0", "image": signed()}], "ephemeralContainers": [{"name": "debugger", "image": unsigned()}]});
    let r = w.review(&debug_review("eph", old, new)).await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(message(&r).contains(&unsigned()));
}

#[tokio::test]
async fn update_judges_new_images_only_and_dry_run_is_judged_too() {
    let w = webhook().await;
    // Scaling a workload that already runs an image is not blocked by it.
    let same = pod_spec(&[&unsigned()]);
    let r = w
        .review(&review(
            "up-1",
            "Deployment",
            "UPDATE",
            same.clone(),
            Some(same),
            None,
            false,
        ))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    // Changing the image is.
    let r = w
        .review(&review(
            "up-2",
            "Deployment",
            "UPDATE",
            pod_spec(&[&unsigned()]),
            Some(pod_spec(&[&signed()])),
            None,
            false,
        ))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    let r = w
        .review(&review(
            "dry",
            "Pod",
            "CREATE",
            pod_spec(&[&unsigned()]),
            None,
            None,
            true,
        ))
        .await;
    assert_eq!(
        r["allowed"], false,
        "dryRun requests are judged like any other: {r}"
    );
}

#[tokio::test]
async fn delete_is_allowed_without_work() {
    let w = webhook().await;
    let r = w
        .review(&review(
            "del",
            "Pod",
            "DELETE",
            pod_spec(&["not a reference!"]),
            None,
            None,
            false,
        ))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
}

#[tokio::test]
async fn audit_statements_allow_with_warnings() {
    let w = webhook().await;
    let image = format!("{}/sandbox/unsigned:v1", registry().host);
    let r = w.review(&pod_review("aud", &[&image])).await;
    assert_eq!(r["allowed"], true, "{r}");
    let warnings = r["warnings"].as_array().unwrap();
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("would not pass verification (audit)"),
        "{r}"
    );
    assert!(warnings.iter().all(|w| w.as_str().unwrap().len() <= 240));
    assert!(
        r["auditAnnotations"]["warnings"]
            .as_str()
            .unwrap()
            .contains("no Notation signature"),
        "{r}"
    );
}

#[tokio::test]
async fn dryrun_enforcement_records_instead_of_refusing() {
    let w = start(&["--enforcement", "dryrun"], &registry().host, POLICY).await;
    let r = w
        .review(&review(
            "would",
            "Deployment",
            "CREATE",
            pod_spec(&[&unsigned()]),
            None,
            None,
            false,
        ))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(
        first_warning(&r).starts_with("vouch (dry run) would deny"),
        "{r}"
    );
    assert!(
        r["auditAnnotations"]["would-deny"]
            .as_str()
            .unwrap()
            .contains(&unsigned()),
        "{r}"
    );
    let report: Value = w
        .client
        .get(w.url("/report"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["wouldDeny"][0]["uid"], "would", "{report}");
    assert_eq!(report["wouldDeny"][0]["workload"], "Deployment/w");
    let metrics = w.metrics().await;
    assert!(
        metrics.contains("vouch_admission_would_deny_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_input_gets_clear_answers_and_the_server_keeps_serving() {
    let w = webhook().await;
    let (s, body) = w.post(b"{not json".to_vec()).await;
    assert_eq!(s, 400);
    assert!(body.contains("malformed AdmissionReview"), "{body}");
    let (s, body) = w
        .post(
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":null}"#
                .to_vec(),
        )
        .await;
    assert_eq!(s, 400);
    assert!(body.contains("admission.k8s.io/v1"), "{body}");
    let (s, body) = w
        .post(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec())
        .await;
    assert_eq!(s, 400);
    assert!(body.contains("no request"), "{body}");
    let huge = vec![b' '; 4 * 1024 * 1024];
    let (s, _) = w.post(huge).await;
    assert_eq!(s, 413);
    // 300 containers: answered, each distinct image judged once.
    let mut images: Vec<String> = (0..299).map(|_| signed()).collect();
    images.push(unsigned());
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    let r = w
        .review(&review(
            "many",
            "Pod",
            "CREATE",
            pod_spec(&refs),
            None,
            None,
            false,
        ))
        .await;
    assert_eq!(r["allowed"], false);
    // Not a reference.
    let r = w
        .review(&pod_review("bad-ref", &["Registry.Example/APP:1"]))
        .await;
    assert_eq!(r["allowed"], false);
    assert!(message(&r).contains("invalid image reference"), "{r}");
    // Wrong shape of containers.
    let r = w
        .review(&review(
            "shape",
            "Pod",
            "CREATE",
            json!({"containers": {"image": "x"}}),
            None,
            None,
            false,
        ))
        .await;
    assert_eq!(r["allowed"], false);
    assert!(
        message(&r).contains("spec.containers: invalid type: map, expected a sequence"),
        "{r}"
    );
    let ok = w.client.get(w.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let ready = w.client.get(w.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = w.metrics().await;
    for name in [
        "vouch_admission_requests_total{kind=\"invalid\"} 3",
        "vouch_admission_requests_total{kind=\"deny\"}",
        "vouch_verifications_total{kind=\"verified\"}",
        "vouch_admission_duration_seconds_bucket",
        "vouch_registry_requests_total{registry=",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
}

#[tokio::test]
async fn a_slow_registry_meets_the_deadline_with_a_denial() {
    // A registry that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let w = start(&["--deadline", "1500ms"], &host, POLICY).await;
    let started = Instant::now();
    let image = format!("{host}/app:v1");
    let r = w.review(&pod_review("slow", &[&image])).await;
    let took = started.elapsed();
    assert_eq!(r["allowed"], false, "{r}");
    assert!(message(&r).contains("did not finish within 1.5s"), "{r}");
    assert!(took < Duration::from_secs(5), "answered in {took:?}");
    let image = format!("{host}/sandbox/unsigned:v1");
    let r = w.review(&pod_review("slow-audit", &[&image])).await;
    assert_eq!(r["allowed"], true, "audit statements fail open: {r}");
}

#[tokio::test]
async fn serving_certificate_rotation_is_picked_up() {
    let w = webhook().await;
    let old_ca = w.tls.ca_pem.clone();
    let new = write_tls(w.dir.path(), "webhook CA 2");
    let new_client = client_for(&new.ca_pem);
    let started = Instant::now();
    loop {
        if new_client.get(w.url("/healthz")).send().await.is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "new certificate never presented"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // New connections no longer see the old certificate.
    assert!(client_for(&old_ca)
        .get(w.url("/healthz"))
        .send()
        .await
        .is_err());
    // A broken rotation is refused; the current certificate stays.
    std::fs::write(&w.tls.key, "not a key").unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(new_client.get(w.url("/healthz")).send().await.is_ok());
}

#[tokio::test]
async fn policy_changes_are_applied_and_invalid_ones_refused() {
    let w = webhook().await;
    let policy = w.dir.path().join("trustpolicy.json");
    let deny = pod_review("p-1", &[&unsigned()]);
    assert_eq!(w.review(&deny).await["allowed"], false);
    // An invalid policy is refused: still denying.
    std::fs::write(
        &policy,
        r#"{"version":"1.0","trustPolicies":[{"name":"x"}]}"#,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(w.review(&deny).await["allowed"], false);
    let metrics = w.metrics().await;
    assert!(
        metrics.contains("vouch_policy_reloads_total{kind=\"rejected\"}"),
        "{metrics}"
    );
    // A valid audit policy is applied.
    let audit = POLICY
        .replace("\"strict\"", "\"audit\"")
        .replace("REG", &registry().host);
    let mut f = std::fs::File::create(&policy).unwrap();
    f.write_all(audit.as_bytes()).unwrap();
    drop(f);
    let started = Instant::now();
    loop {
        if w.review(&deny).await["allowed"] == true {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "new policy never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn invalid_policy_or_certificate_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let tls = write_tls(dir.path(), "ca");
    let bad_policy = dir.path().join("p.json");
    std::fs::write(&bad_policy, "{}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            tls.cert.to_str().unwrap(),
            "--tls-key",
            tls.key.to_str().unwrap(),
            "--trust-policy",
            bad_policy.to_str().unwrap(),
            "--trust-store",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("trust policy document is missing or has empty version"));
    let good_policy = dir.path().join("good.json");
    std::fs::write(&good_policy, r#"{"version":"1.0","trustPolicies":[{"name":"s","registryScopes":["*"],"signatureVerification":{"level":"skip"}}]}"#).unwrap();
    std::fs::write(
        dir.path().join("bad.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            tls.cert.to_str().unwrap(),
            "--tls-key",
            dir.path().join("bad.key").to_str().unwrap(),
            "--trust-policy",
            good_policy.to_str().unwrap(),
            "--trust-store",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TLS key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let mut w = webhook().await;
    let pid = w.child.id() as i32;
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let started = Instant::now();
    loop {
        if let Some(status) = w.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut stderr = String::new();
    use std::io::Read;
    w.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("shutting down"), "{stderr}");
}

#[tokio::test]
async fn decisions_are_logged_as_json_lines() {
    let mut w = webhook().await;
    let _ = w.review(&pod_review("log-1", &[&unsigned()])).await;
    unsafe {
        libc::kill(w.child.id() as i32, libc::SIGTERM);
    }
    let _ = w.child.wait();
    let mut stderr = String::new();
    use std::io::Read;
    w.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let line = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["uid"] == "log-1")
        .unwrap_or_else(|| panic!("no decision line in {stderr}"));
    assert_eq!(line["decision"], "deny");
    assert_eq!(line["namespace"], "team");
    assert_eq!(line["workload"], "Pod/w");
    assert!(
        line["images"].as_str().unwrap().contains("unsigned"),
        "{line}"
    );
}
