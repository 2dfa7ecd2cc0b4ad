//! Issue 12, revocation: `vouch verify` of images signed by the notation e2e chains whose
//! certificates name an OCSP responder (`http://localhost:10087`) or CRL distribution points
//! (`http://localhost:10086/…`), against servers that are not ours where they can run here:
//! `openssl ocsp` as the responder, the notation-made CRLs served by a loopback HTTP server that
//! can also be silent. The URLs are baked into the certificates, so the servers listen on those
//! ports and the tests that use a port take turns.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::crl_server::{CrlServer, Silent};
use common::fake_registry::{push_image, verify_json, FakeRegistry, State};
use common::ocsp_responder::OcspResponder;
use common::vectors;
use vouch::notation::signer::{Signer, SigningKey};

/// The ports the e2e certificates name: one test at a time on each.
static OCSP_PORT: Mutex<()> = Mutex::new(());
static CRL_PORT: Mutex<()> = Mutex::new(());

fn turn(port: &'static Mutex<()>) -> MutexGuard<'static, ()> {
    port.lock().unwrap_or_else(|e| e.into_inner())
}

fn policy(level: &str, revocation_override: Option<&str>) -> String {
    let over = revocation_override
        .map(|a| format!(r#","override":{{"revocation":"{a}"}}"#))
        .unwrap_or_default();
    format!(
        r#"{{"version":"1.0","trustPolicies":[{{"name":"rev","registryScopes":["*"],
        "signatureVerification":{{"level":"{level}"{over}}},"trustStores":["ca:rev"],"trustedIdentities":["*"]}}]}}"#
    )
}

/// The certificates of a PEM file, in order (the trust store's reader).
fn pem_chain(path: &Path) -> Vec<vouch::notation::x509::Certificate> {
    vouch::notation::trust_store::parse_certificate_file(&std::fs::read(path).unwrap()).unwrap()
}

/// An image in a fake registry signed by `key` with `chain`, a trust store holding `root`, and
/// a policy file per call.
struct Signed {
    reg: FakeRegistry,
    dir: tempfile::TempDir,
    images: Vec<String>,
}

impl Signed {
    fn new(key: &Path, chain: &Path, root: &Path, count: usize) -> Self {
        let reg = FakeRegistry::start(State {
            referrers_api: true,
            ..Default::default()
        })
        .unwrap();
        let signer = Signer::new(
            SigningKey::from_pem(&std::fs::read(key).unwrap()).unwrap(),
            pem_chain(chain).iter().map(|c| c.der().to_vec()).collect(),
        )
        .unwrap();
        let mut images = Vec::new();
        for i in 0..count {
            let subject = push_image(&reg, &format!("v{i}"), i);
            let sig = signer.sign_artifact(&subject, None).unwrap();
            reg.with(|s| s.put_signature(&sig));
            images.push(format!("{}/app:v{i}", reg.host));
        }
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("store/x509/ca/rev");
        std::fs::create_dir_all(&ca).unwrap();
        std::fs::copy(root, ca.join("root.crt")).unwrap();
        Signed { reg, dir, images }
    }

    /// `vouch verify` of the first `n` images under `policy`, JSON output.
    fn verify(&self, policy: &str, n: usize, extra: &[&str]) -> (i32, serde_json::Value, String) {
        let store = self.dir.path().join("store");
        verify_json(
            &self.reg,
            self.dir.path(),
            &self.images[..n],
            policy,
            &store,
            extra,
        )
    }
}

/// All messages of a result (reasons, warnings, signature errors) as one text.
fn said(v: &serde_json::Value) -> String {
    v.to_string()
}

// ---------------------------------------------------------------------------------------------
// OCSP: `openssl ocsp` with the notation e2e responder material.

const LEAF_SERIAL: &str = "520D9B1364D98367711DA2B6A0A0F34B23E3D02A";
const LEAF_DN: &str = "/C=US/ST=State/L=City/O=Organization/OU=OrgUnit/CN=LeafCert";

fn ocsp_dir() -> PathBuf {
    vectors().join("revocation/notation-e2e/ocsp")
}

/// `openssl ocsp` on port 10087 serving `index` (openssl's CA database format), with the
/// notation e2e delegated responder certificate.
fn responder(index: &str) -> OcspResponder {
    let dir = tempfile::tempdir().unwrap();
    let index_path = dir.path().join("index.txt");
    std::fs::write(&index_path, index).unwrap();
    std::fs::write(dir.path().join("index.txt.attr"), "unique_subject = no\n").unwrap();
    let src = ocsp_dir();
    let args: Vec<std::ffi::OsString> = vec![
        "-index".into(),
        index_path.into(),
        "-CA".into(),
        src.join("root.crt").into(),
        "-rkey".into(),
        src.join("ocsp.key").into(),
        "-rsigner".into(),
        src.join("ocsp.crt").into(),
        "-nmin".into(),
        "5".into(),
    ];
    OcspResponder::spawn(dir, 10087, &args)
}

fn ocsp_image() -> Signed {
    let d = ocsp_dir();
    Signed::new(
        &d.join("leaf.key"),
        &d.join("certchain_with_ocsp.pem"),
        &d.join("root.crt"),
        1,
    )
}

fn good() -> String {
    format!("V\t21250121012109Z\t\t{LEAF_SERIAL}\tunknown\t{LEAF_DN}\n")
}

fn revoked() -> String {
    format!("R\t21250121012109Z\t250214013720Z\t{LEAF_SERIAL}\tunknown\t{LEAF_DN}\n")
}

#[test]
fn a_good_ocsp_answer_verifies_under_strict() {
    let _port = turn(&OCSP_PORT);
    let _ocsp = responder(&good());
    let img = ocsp_image();
    let (code, v, err) = img.verify(&policy("strict", None), 1, &[]);
    assert_eq!(code, 0, "{v:#}{err}");
    let chain = &v["results"][0]["signatures"][0]["revocation"]["certificates"];
    assert_eq!(chain[0]["status"], "ok", "{v:#}");
    assert_eq!(chain[0]["method"], "OCSP", "{v:#}");
    assert_eq!(chain[0]["servers"][0]["url"], "http://localhost:10087");
    assert_eq!(
        chain[1]["status"], "nonRevokable",
        "the root is never checked"
    );
    assert!(
        v["results"][0]["signatures"][0]["revocation"]["validUntil"].is_string(),
        "{v:#}"
    );
}

#[test]
fn a_revoked_certificate_fails_strict_and_is_logged_under_permissive_and_audit() {
    let _port = turn(&OCSP_PORT);
    let _ocsp = responder(&revoked());
    let img = ocsp_image();
    let message = r#"signing certificate with subject \"CN=LeafCert,OU=OrgUnit,O=Organization,L=City,ST=State,C=US\" is revoked"#;
    let (code, v, err) = img.verify(&policy("strict", None), 1, &[]);
    assert_eq!(code, 1, "{v:#}{err}");
    assert!(
        said(&v).contains(&format!("revocation validation failed: {message}")),
        "{v:#}"
    );
    assert!(
        said(&v).contains("certificate is revoked via OCSP"),
        "{v:#}"
    );
    for level in ["permissive", "audit"] {
        let (code, v, err) = img.verify(&policy(level, None), 1, &[]);
        assert_eq!(code, 0, "{level}: {v:#}{err}");
        assert!(
            said(&v).contains(&format!(
                r#"revocation was set to \"log\" and failed with error: {message}"#
            )),
            "{level}: {v:#}"
        );
    }
    // override: enforce under permissive fails; skip under strict passes without asking.
    let (code, v, _) = img.verify(&policy("permissive", Some("enforce")), 1, &[]);
    assert_eq!(code, 1, "{v:#}");
    let (code, v, _) = img.verify(&policy("strict", Some("skip")), 1, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert!(
        v["results"][0]["signatures"][0]["revocation"].is_null(),
        "{v:#}"
    );
}

#[test]
fn an_unknown_or_absent_ocsp_answer_is_never_ok() {
    let _port = turn(&OCSP_PORT);
    let img = ocsp_image();
    let unknown = r#"signing certificate with subject \"CN=LeafCert,OU=OrgUnit,O=Organization,L=City,ST=State,C=US\" revocation status is unknown"#;
    {
        let _ocsp = responder("");
        let (code, v, _) = img.verify(&policy("strict", None), 1, &[]);
        assert_eq!(code, 1, "{v:#}");
        assert!(said(&v).contains(unknown), "{v:#}");
        assert!(
            said(&v).contains("certificate has unknown status via OCSP"),
            "{v:#}"
        );
    }
    // No responder at all: connection refused is "unknown" too.
    let (code, v, _) = img.verify(&policy("strict", None), 1, &[]);
    assert_eq!(code, 1, "{v:#}");
    assert!(said(&v).contains(unknown), "{v:#}");
    assert!(
        said(&v).contains("error checking revocation status via OCSP"),
        "{v:#}"
    );
}

#[test]
fn a_silent_ocsp_responder_times_out_as_unknown_within_the_deadline() {
    let _port = turn(&OCSP_PORT);
    let silent = Silent::on(10087);
    let img = ocsp_image();
    let started = Instant::now();
    let (code, v, _) = img.verify(&policy("strict", None), 1, &["--timeout", "20"]);
    assert_eq!(code, 1, "{v:#}");
    assert!(
        said(&v).contains("exceeded timeout threshold of 2.00 seconds for OCSP check"),
        "{v:#}"
    );
    // notation's 2 s, not the image's 20 s timeout.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

// ---------------------------------------------------------------------------------------------
// CRL: the notation e2e CRLs on port 10086.

/// The e2e CRL server: on the port the certificates name, serving the fixtures by name.
fn crl_server() -> CrlServer {
    CrlServer::start(10086)
}

/// Serve the e2e CRL fixture `file` as `name`.
fn serve(server: &CrlServer, name: &str, file: &str) {
    server.serve(name, std::fs::read(crl_dir().join(file)).unwrap());
}

fn crl_dir() -> PathBuf {
    vectors().join("revocation/notation-e2e/crl")
}

/// An offline CRL directory in `img`'s temp dir holding `files` (fixture → name), and a config
/// file that uses only it: the directory and the config path.
fn offline_config(img: &Signed, files: &[(&str, &str)]) -> (PathBuf, String) {
    let offline = img.dir.path().join("crls");
    std::fs::create_dir_all(&offline).unwrap();
    for (fixture, name) in files {
        std::fs::copy(crl_dir().join(fixture), offline.join(name)).unwrap();
    }
    let config = img.dir.path().join("vouch.yaml");
    std::fs::write(
        &config,
        format!(
            "revocation:\n  offlineCrls: {}\n  fetch: false\n",
            offline.display()
        ),
    )
    .unwrap();
    (offline, config.display().to_string())
}

fn crl_images(n: usize) -> Signed {
    let d = crl_dir();
    Signed::new(
        &d.join("leaf.key"),
        &d.join("certchain_with_crl.pem"),
        &d.join("root.crt"),
        n,
    )
}

#[test]
fn crls_decide_revocation_and_are_fetched_once_for_many_images() {
    let _port = turn(&CRL_PORT);
    let server = crl_server();
    serve(&server, "leaf.crl", "leaf.crl");
    serve(&server, "intermediate.crl", "intermediate.crl");
    let img = crl_images(3);
    let (code, v, err) = img.verify(&policy("strict", None), 3, &[]);
    assert_eq!(code, 0, "{v:#}{err}");
    let chain = &v["results"][0]["signatures"][0]["revocation"]["certificates"];
    assert_eq!(chain[0]["method"], "CRL", "{v:#}");
    assert_eq!(chain[0]["status"], "ok", "{v:#}");
    // The intermediate names an OCSP responder that cannot be reached: the CRL decides.
    assert_eq!(chain[1]["method"], "OCSPFallbackCRL", "{v:#}");
    assert_eq!(chain[1]["status"], "ok", "{v:#}");
    // Three images, one chain: each CRL fetched once (cached until its nextUpdate).
    let asked = server.requests();
    assert_eq!(
        asked.iter().filter(|p| *p == "/leaf.crl").count(),
        1,
        "{asked:?}"
    );
    assert_eq!(
        asked.iter().filter(|p| *p == "/intermediate.crl").count(),
        1,
        "{asked:?}"
    );

    serve(&server, "leaf.crl", "leaf_revoked.crl");
    let (code, v, _) = img.verify(&policy("strict", None), 1, &[]);
    assert_eq!(code, 1, "{v:#}");
    assert!(
        said(&v).contains(r#"signing certificate with subject \"CN=LeafCert,OU=OrgUnit,O=Organization,L=City,ST=State,C=US\" is revoked"#),
        "{v:#}"
    );
    serve(&server, "leaf.crl", "leaf.crl");
    serve(&server, "intermediate.crl", "intermediate_revoked.crl");
    let (code, v, _) = img.verify(&policy("strict", None), 1, &[]);
    assert_eq!(code, 1, "{v:#}");
    assert!(
        said(&v).contains(r#"signing certificate with subject \"CN=IntermediateCA,OU=OrgUnit,O=Organization,L=City,ST=State,C=US\" is revoked"#),
        "{v:#}"
    );
    // A CRL that is not signed by the issuer (this one's signature does not verify) is unknown.
    serve(&server, "intermediate.crl", "intermediate.crl");
    serve(&server, "leaf.crl", "leaf_expired.crl");
    let (code, v, _) = img.verify(&policy("strict", None), 1, &[]);
    assert_eq!(code, 1, "{v:#}");
    assert!(
        said(&v).contains("failed to validate CRL from http://localhost:10086/leaf.crl"),
        "{v:#}"
    );
    assert!(said(&v).contains("revocation status is unknown"), "{v:#}");
}

#[test]
fn a_silent_crl_server_is_cut_off_by_the_deadline_and_is_unknown() {
    let _port = turn(&CRL_PORT);
    let server = crl_server();
    server.set_silent(true);
    let img = crl_images(1);
    let started = Instant::now();
    // 3 s for the image: the CRL's own 5 s timeout is longer, the deadline ends the fetch.
    let (code, v, _) = img.verify(&policy("strict", None), 1, &["--timeout", "3"]);
    let took = started.elapsed();
    assert_eq!(
        code, 1,
        "an unknown status, not a timeout of the whole image: {v:#}"
    );
    assert!(said(&v).contains("revocation status is unknown"), "{v:#}");
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn an_offline_crl_directory_stands_in_for_unreachable_distribution_points() {
    let _port = turn(&CRL_PORT);
    // Nothing listens on 10086: every fetch fails, and the directory decides.
    let img = crl_images(1);
    let (offline, c) = offline_config(
        &img,
        &[
            ("leaf.crl", "leaf.crl"),
            ("intermediate.crl", "intermediate.crl"),
        ],
    );
    let (code, v, err) = img.verify(&policy("strict", None), 1, &["--config", &c]);
    assert_eq!(code, 0, "{v:#}{err}");
    // A revoked one there is revoked.
    std::fs::copy(crl_dir().join("leaf_revoked.crl"), offline.join("leaf.crl")).unwrap();
    let (code, v, _) = img.verify(&policy("strict", None), 1, &["--config", &c]);
    assert_eq!(code, 1, "{v:#}");
    assert!(said(&v).contains("is revoked"), "{v:#}");
}

#[test]
fn offline_crls_are_chosen_by_distribution_point_or_validity_not_by_file_order() {
    let _port = turn(&CRL_PORT);
    let img = crl_images(1);
    // The leaf's issuer has two CRLs here: one whose signature does not verify, sorting first,
    // and one that revokes the leaf. Neither is named for the distribution point.
    let (offline, c) = offline_config(
        &img,
        &[
            ("leaf_expired.crl", "a-first.crl"),
            ("leaf_revoked.crl", "b-second.crl"),
            ("intermediate.crl", "intermediate.crl"),
        ],
    );
    let (code, v, _) = img.verify(&policy("strict", None), 1, &["--config", &c]);
    assert_eq!(code, 1, "{v:#}");
    assert!(
        said(&v).contains("is revoked"),
        "the valid CRL decides: {v:#}"
    );
    // A file named for the point wins over any other CRL of the issuer.
    std::fs::copy(crl_dir().join("leaf.crl"), offline.join("leaf.crl")).unwrap();
    let (code, v, _) = img.verify(&policy("strict", None), 1, &["--config", &c]);
    assert_eq!(code, 0, "{v:#}");
}

/// An admission waiting for a CRL another admission is fetching does not wait past its own
/// deadline, however long the other one may wait.
#[test]
fn a_waiter_for_another_admissions_fetch_keeps_its_own_deadline() {
    // The port is held by a plain lock for the whole test, so the runtime is the test's own.
    let _port = turn(&CRL_PORT);
    let _silent = Silent::on(10086);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(waiter_keeps_its_deadline());
}

async fn waiter_keeps_its_deadline() {
    use vouch::notation::revocation::{Checker, RevocationSettings, Status};
    let chain = pem_chain(&crl_dir().join("certchain_with_crl.pem"));
    let checker = Checker::new(
        RevocationSettings {
            crl_timeout: Duration::from_secs(10),
            ..Default::default()
        },
        None,
    );
    let now = time::OffsetDateTime::now_utc();
    let t0 = tokio::time::Instant::now();
    let leader = checker.check_chain(&chain, None, now, t0 + Duration::from_secs(6));
    let waiter = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = checker
            .check_chain(&chain, None, now, t0 + Duration::from_millis(1500))
            .await;
        (r, t0.elapsed())
    };
    let (led, (waited, took)) = tokio::join!(leader, waiter);
    assert!(took < Duration::from_secs(4), "the waiter took {took:?}");
    assert_eq!(waited[0].status, Status::Unknown, "{waited:?}");
    assert_eq!(led[0].status, Status::Unknown, "{led:?}");
}
