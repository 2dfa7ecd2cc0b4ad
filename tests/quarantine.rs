//! Quarantine status: ACR's quarantine-on-push through an ACR emulator fronting a real
//! docker-registry, and the registry-neutral status artifact on docker-registry (tag fallback)
//! and on the referrers-API registry; `verify`, the gate's cache, and `vouch quarantine`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::acr::Acr;
use common::fake_registry::{FakeRegistry, State};
use common::{outcome, vectors, vouch, Registry};
use vouch::cache::{CacheSettings, VerdictCache};
use vouch::gate::{Gate, GateOptions};
use vouch::notation::trust_policy::TrustPolicy;
use vouch::notation::trust_store::TrustStores;
use vouch::quarantine::{QuarantineConfig, QuarantineEnforcement, QuarantineRule, SourceKind};
use vouch::registry::auth::{Credential, CredentialSource};
use vouch::registry::{RegistryClient, RegistryOptions};
use vouch::verdict::{Admission, Outcome};

const DIGEST: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
const STRICT: &str = r#"{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],
 "signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#;

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(host: &str, source: &str, enforcement: &str, extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        common::e2e_trust_store(&dir.path().join("store"));
        std::fs::write(dir.path().join("policy.json"), STRICT).unwrap();
        std::fs::write(
            dir.path().join("config.yaml"),
            format!(
                "trustPolicy: {}\ntrustStore: {}\ninsecureRegistries: [\"{host}\"]\ndockerConfig: {}\nquarantine:\n  - registries: [\"{host}\"]\n    source: {source}\n    enforcement: {enforcement}\n{extra}",
                dir.path().join("policy.json").display(),
                dir.path().join("store").display(),
                dir.path().join("docker.json").display(),
            ),
        )
        .unwrap();
        use base64::Engine;
        std::fs::write(
            dir.path().join("docker.json"),
            format!(
                r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
                base64::engine::general_purpose::STANDARD.encode("ci:s3cret")
            ),
        )
        .unwrap();
        Setup { dir }
    }

    fn config(&self) -> String {
        self.dir.path().join("config.yaml").display().to_string()
    }

    fn verify(&self, image: &str) -> (i32, String, String) {
        outcome(&vouch(&["verify", image, "--config", &self.config()]))
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut all: Vec<&str> = args.to_vec();
        let c = self.config();
        all.extend(["--config", &c]);
        outcome(&vouch(&all))
    }
}

fn e2e_key() -> (String, String) {
    let k = vectors().join("notation-e2e/localkeys/e2e.key");
    let c = vectors().join("notation-e2e/localkeys/e2e.crt");
    (k.display().to_string(), c.display().to_string())
}

fn acr() -> (Registry, Acr) {
    let reg = Registry::start();
    reg.push_layout(
        &vectors().join("notation-e2e/layouts/e2e-valid-signature"),
        "team/app",
    );
    let acr = Acr::start(&reg.host, "ci", "s3cret");
    (reg, acr)
}

#[test]
fn acr_quarantined_then_passed_then_failed() {
    let (_reg, acr) = acr();
    let s = Setup::new(&acr.host, "acr", "enforce", "");
    let image = format!("{}/team/app@{DIGEST}", acr.host);
    acr.set(
        DIGEST,
        "Quarantined",
        r#"{"scanner":"trivy","status":"pending"}"#,
    );
    let (code, out, err) = s.verify(&image);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("is quarantined"), "{out}");
    assert!(
        !out.contains("answered 403"),
        "the refusal is recognised, not a generic registry error: {out}"
    );
    // The tag is hidden while quarantined.
    let (code, out, _) = s.verify(&format!("{}/team/app:v1", acr.host));
    assert_eq!(code, 3, "{out}");
    // Promote with vouch (ACR PATCH through the metadata API, metadata_write scope).
    let (code, out, err) = s.run(&["quarantine", "set", "Passed", &image, "--details", "clean"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ACR quarantine state"), "{out}");
    assert_eq!(acr.with(|a| a.quarantine[DIGEST].0.clone()), "Passed");
    let (code, out, err) = s.verify(&image);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = s.run(&["quarantine", "get", &image, "-o", "json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["quarantine"]["source"], "acr");
    assert_eq!(v["quarantine"]["state"], "Passed");
    // A scanner fails it: served again (ACR serves Failed images by digest only if not
    // quarantined; the emulator refuses any non-Passed state, like ACR).
    acr.set(DIGEST, "Failed", "CVE-2024-0001 critical");
    let (code, out, _) = s.verify(&image);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("quarantined"), "{out}");
}

/// A `skip` statement skips signatures, not the quarantine rule: a quarantined image is refused
/// by digest and by tag, though ACR hides the tag while quarantined (the state could then not
/// be read: unknown, never passed).
#[test]
fn skipped_signatures_still_leave_quarantine_in_force() {
    let (_reg, acr) = acr();
    let s = Setup::new(&acr.host, "acr", "enforce", "");
    std::fs::write(
        s.dir.path().join("policy.json"),
        r#"{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"skip"}}]}"#,
    )
    .unwrap();
    acr.set(DIGEST, "Quarantined", "scan pending");
    for image in [
        format!("{}/team/app@{DIGEST}", acr.host),
        format!("{}/team/app:v1", acr.host),
    ] {
        let (code, out, err) = s.run(&["verify", &image, "-o", "json"]);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        let r = &v["results"][0];
        assert_eq!(r["admission"], "deny", "{image}: {r}");
        assert_ne!(code, 0, "{image}: {r}");
        assert!(r["quarantine"]["reason"].is_string(), "{image}: {r}");
    }
    acr.set(DIGEST, "Passed", "clean");
    let (code, out, err) = s.verify(&format!("{}/team/app:v1", acr.host));
    assert_eq!(
        code, 0,
        "once passed, the skipped image is admitted: {out}{err}"
    );
}

#[test]
fn acr_states_from_the_metadata_api() {
    let (_reg, acr) = acr();
    let image = format!("{}/team/app@{DIGEST}", acr.host);
    let s = Setup::new(&acr.host, "acr", "enforce", "");
    // Passed with details: admitted, state shown.
    acr.set(DIGEST, "Passed", "{\"scanner\":\"trivy\"}");
    let (code, out, _) = s.run(&["verify", &image, "-o", "json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["results"][0]["quarantine"]["state"], "Passed");
    assert_eq!(v["results"][0]["quarantine"]["source"], "acr");
    // Locked image: denied early with the reason.
    acr.with(|a| a.locked.push(DIGEST.into()));
    let (code, out, _) = s.verify(&image);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("readEnabled is false"), "{out}");
    acr.with(|a| a.locked.clear());
    // Metadata unreachable: unknown, denied under enforce ...
    acr.with(|a| a.metadata_status = Some(500));
    let (code, out, _) = s.verify(&image);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("quarantine status of") && out.contains("unknown"),
        "{out}"
    );
    // ... and allowed with a warning under audit.
    let audit = Setup::new(&acr.host, "acr", "audit", "");
    let (code, out, _) = audit.verify(&image);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("quarantine (audit)"), "{out}");
}

fn acr_gate(acr: &Acr, pending: Duration) -> Gate {
    let dir = tempfile::tempdir().unwrap();
    common::e2e_trust_store(dir.path());
    let policy = Arc::new(TrustPolicy::from_json(STRICT.as_bytes()).unwrap());
    let stores = Arc::new(TrustStores::load(dir.path(), policy.trust_store_refs()).unwrap());
    let registry = RegistryClient::new(RegistryOptions {
        insecure_registries: vec![acr.host.clone()],
        credentials: CredentialSource {
            explicit: [(
                acr.host.clone(),
                Credential::Basic {
                    username: "ci".into(),
                    password: "s3cret".into(),
                },
            )]
            .into(),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let options = GateOptions {
        quarantine: QuarantineConfig::new(vec![QuarantineRule {
            registries: vec![acr.host.clone()],
            source: SourceKind::Acr,
            enforcement: QuarantineEnforcement::Enforce,
            require_signature: true,
        }]),
        ..Default::default()
    };
    let cache = Arc::new(VerdictCache::new(
        CacheSettings {
            pending_ttl: pending,
            ..Default::default()
        },
        None,
    ));
    Gate::with_cache(registry, policy, stores, options, cache)
}

#[tokio::test]
async fn a_cached_quarantine_does_not_outlive_the_promotion_by_more_than_its_ttl() {
    let (_reg, acr) = acr();
    let gate = acr_gate(&acr, Duration::from_millis(700));
    let image = format!("{}/team/app@{DIGEST}", acr.host);
    acr.set(DIGEST, "Quarantined", "");
    let v = gate.judge(&image).await;
    assert_eq!(v.admission, Admission::Deny, "{v:?}");
    assert_eq!(v.quarantine.state, "Quarantined");
    acr.set(DIGEST, "Passed", "");
    let v = gate.judge(&image).await;
    assert_eq!(
        v.admission,
        Admission::Deny,
        "still cached within pendingTtl"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    let v = gate.judge(&image).await;
    assert_eq!(v.outcome, Outcome::Verified, "{v:?}");
    assert_eq!(v.admission, Admission::Allow);
    assert_eq!(v.quarantine.state, "Passed");
}

#[test]
fn status_artifacts_on_docker_registry_must_be_signed_and_the_newest_wins() {
    let reg = Registry::start();
    reg.push_layout(
        &vectors().join("notation-e2e/layouts/e2e-valid-signature"),
        "app",
    );
    let s = Setup::new(&reg.host, "referrer", "enforce", "");
    let image = format!("{}/app@{DIGEST}", reg.host);
    // No status at all: unknown, denied.
    let (code, out, _) = s.verify(&image);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("no signed quarantine status artifact"),
        "{out}"
    );
    // An unsigned Passed is worth nothing.
    let (code, out, err) = s.run(&["quarantine", "set", "Passed", &image]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = s.verify(&image);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("1 unsigned or untrusted ignored"), "{out}");
    // A Passed signed by a trusted identity admits.
    let (key, cert) = e2e_key();
    let (code, out, err) = s.run(&[
        "quarantine",
        "set",
        "Passed",
        &image,
        "--sign-key",
        &key,
        "--sign-cert",
        &cert,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("signed"), "{out}");
    let (code, out, err) = s.verify(&image);
    assert_eq!(code, 0, "{out}{err}");
    // A newer signed Quarantined wins.
    std::thread::sleep(Duration::from_millis(1100));
    let (code, _, err) = s.run(&[
        "quarantine",
        "set",
        "Quarantined",
        &image,
        "--details",
        r#"{"reason":"rescan"}"#,
        "--sign-key",
        &key,
        "--sign-cert",
        &cert,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = s.verify(&image);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("state Quarantined") && out.contains("rescan"),
        "{out}"
    );
    let (code, out, _) = s.run(&["quarantine", "get", &image]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("state: Quarantined"), "{out}");
}

#[test]
fn unsigned_status_artifacts_count_only_when_the_rule_says_so() {
    let mut st = State {
        referrers_api: true,
        ..Default::default()
    };
    st.load_layout(&vectors().join("notation-e2e/layouts/e2e-valid-signature"))
        .unwrap();
    let reg = FakeRegistry::start(st).unwrap();
    // The fake registry has no upload API: attach statuses directly, as a scanner would.
    let attach = |state: &str, updated: &str| {
        reg.with(|s| {
            let body = format!(r#"{{"state":"{state}","updated":"{updated}"}}"#);
            let layer = s.put_blob(body.as_bytes());
            s.put_blob(b"{}");
            let m = serde_json::json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "artifactType":"application/vnd.vouch.quarantine.v1+json",
                "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":format!("sha256:{}", vouch::registry::sha256_hex(b"{}")),"size":2},
                "layers":[{"mediaType":"application/vnd.vouch.quarantine.v1+json","digest":layer,"size":body.len()}],
                "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":DIGEST,"size":517},
                "annotations":{"org.opencontainers.image.created":updated}});
            s.put_manifest("application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&m).unwrap(), None);
        })
    };
    attach("Passed", "2024-01-01T00:00:00Z");
    attach("Failed", "2024-02-01T00:00:00Z");
    attach("Passed", "2023-12-01T00:00:00Z");
    let image = format!("{}/app@{DIGEST}", reg.host);
    let s = Setup::new(
        &reg.host,
        "referrer",
        "enforce",
        "    requireSignature: false\n",
    );
    let (code, out, _) = s.verify(&image);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("state Failed"), "newest wins: {out}");
    attach("Passed", "2024-03-01T00:00:00Z");
    let (code, out, _) = s.verify(&image);
    assert_eq!(code, 0, "{out}");
    let signed_only = Setup::new(&reg.host, "referrer", "enforce", "");
    let (code, out, _) = signed_only.verify(&image);
    assert_eq!(code, 3, "{out}");
}

#[test]
fn acr_with_azure_workload_identity_and_no_docker_credentials() {
    let (_reg, acr) = acr();
    acr.set(DIGEST, "Passed", "");
    let s = Setup::new(&acr.host, "acr", "enforce", "");
    // No docker config: only the workload identity can authenticate.
    std::fs::write(s.dir.path().join("docker.json"), "{}").unwrap();
    let token = s.dir.path().join("azure-identity-token");
    std::fs::write(&token, common::acr::FEDERATED_TOKEN).unwrap();
    let image = format!("{}/team/app@{DIGEST}", acr.host);
    let c = s.config();
    let (code, out, err) = outcome(&common::vouch_env(
        &["verify", &image, "--config", &c],
        &[
            ("AZURE_FEDERATED_TOKEN_FILE", token.to_str().unwrap()),
            ("AZURE_CLIENT_ID", "client-1"),
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_AUTHORITY_HOST", &format!("http://{}/", acr.host)),
        ],
    ));
    assert_eq!(code, 0, "{out}{err}");
    // A wrong federated token is refused by Entra ID and reported as an authentication failure.
    std::fs::write(&token, "forged").unwrap();
    let (code, out, _) = outcome(&common::vouch_env(
        &["verify", &image, "--config", &c],
        &[
            ("AZURE_FEDERATED_TOKEN_FILE", token.to_str().unwrap()),
            ("AZURE_CLIENT_ID", "client-1"),
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_AUTHORITY_HOST", &format!("http://{}/", acr.host)),
        ],
    ));
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("Azure workload identity") && out.contains("Entra ID answered 401"),
        "{out}"
    );
}

#[tokio::test]
async fn the_webhook_denies_quarantined_images_and_admits_them_once_promoted() {
    let (_reg, acr) = acr();
    acr.set(DIGEST, "Quarantined", "scan pending");
    let s = Setup::new(&acr.host, "acr", "enforce", "cache:\n  pendingTtl: 500ms\n");
    let tls = vouch::certs::generate(&["localhost".into()], 1, &s.dir.path().join("tls")).unwrap();
    let port = common::free_port();
    let c = s.config();
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args([
                "serve",
                "--config",
                &c,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--tls-cert")
            .arg(&tls.tls_cert)
            .arg("--tls-key")
            .arg(&tls.tls_key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(&std::fs::read(&tls.ca_cert).unwrap()).unwrap(),
        ])
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/validate");
    let review = serde_json::json!({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
        "uid":"q-1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
        "name":"p","namespace":"default","operation":"CREATE","userInfo":{"username":"u"},
        "object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":format!("{}/team/app@{DIGEST}", acr.host)}]}},
        "oldObject":null,"dryRun":false}});
    let ask = || async {
        let r: serde_json::Value = client
            .post(&url)
            .json(&review)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        Some(r["response"].clone())
    };
    let started = std::time::Instant::now();
    let first = loop {
        if let Some(r) = ask().await {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "vouch serve did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(first["allowed"], false, "{first}");
    let msg = first["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("quarantined") && msg.contains("scan pending"),
        "{msg}"
    );
    acr.set(DIGEST, "Passed", "");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let after = ask().await.unwrap();
    assert_eq!(
        after["allowed"], true,
        "promotion takes effect within pendingTtl: {after}"
    );
}
