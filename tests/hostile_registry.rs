//! Issue 11, hostile registries: credentials stay on the registry they were issued for, every
//! spelling of a host selects the same trust-policy statement, per-host state is bounded, and a
//! digest from the network is parsed before use. Each test runs the attack against the built
//! binary (or the library) with the hostile registry of `tests/common/hostile_registry.rs`.

mod common;

use common::fake_registry::{FakeRegistry, State};
use common::hostile_registry::{self as hostile, any_credentials, Auth, Knobs, TestTls};
use common::{outcome, vectors, vouch_env};

const STRICT_ALL: &str = r#"{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],
 "signatureVerification":{"level":"strict"},"trustStores":["ca:test"],"trustedIdentities":["*"]}]}"#;

struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.json"), STRICT_ALL).unwrap();
        let ca = dir.path().join("store/x509/ca/test");
        std::fs::create_dir_all(&ca).unwrap();
        std::fs::copy(
            vectors().join("notation-go-cose/alpine.crt"),
            ca.join("alpine.crt"),
        )
        .unwrap();
        Run { dir }
    }

    /// `vouch verify IMAGE` with alice's credentials for `registry_host`, trusting `tls`'s CA.
    fn verify(&self, image: &str, registry_host: &str, tls: &TestTls) -> (i32, String, String) {
        let d = self.dir.path();
        let config = hostile::docker_config(d, registry_host, "alice", "s3cret");
        let (policy, store) = (d.join("policy.json"), d.join("store"));
        outcome(&vouch_env(
            &[
                "verify",
                image,
                "--trust-policy",
                &policy.display().to_string(),
                "--trust-store",
                &store.display().to_string(),
                "--docker-config",
                &config.display().to_string(),
                "--timeout",
                "20",
            ],
            &[("SSL_CERT_FILE", &tls.ca.display().to_string())],
        ))
    }
}

/// The attack: a hostile HTTPS registry made with `knobs` (which may point at `other`, a
/// collector on another origin — HTTPS when `other_tls`, else plain HTTP) is verified with
/// alice's credentials. Returns the registry, the other host, the exit status and all output.
fn attack(
    other_tls: bool,
    knobs: impl FnOnce(&hostile::Server) -> Knobs,
) -> (hostile::Server, hostile::Server, i32, String) {
    let tls = TestTls::new();
    let other = hostile::collector(other_tls.then_some(&tls));
    let reg = hostile::registry(knobs(&other), Some(&tls));
    let (code, out, err) = Run::new().verify(&format!("{}/app:v1", reg.host), &reg.host, &tls);
    (reg, other, code, format!("{out}{err}"))
}

#[test]
fn basic_credentials_never_follow_a_referrers_link_to_another_host() {
    let (reg, elsewhere, code, err) = attack(true, |other| Knobs {
        referrers_link: Some(format!("{}/v2/app/referrers/x?page=2", other.base)),
        ..Knobs::basic()
    });
    // The registry itself was asked with credentials (the test's premise) …
    assert!(any_credentials(&reg.requests()), "{:?}", reg.requests());
    // … the other host got nothing at all, and the run says why it stopped.
    assert!(
        elsewhere.requests().is_empty(),
        "another host was contacted: {:?}",
        elsewhere.requests()
    );
    assert_eq!(code, 3, "could not finish: {err}");
    assert!(
        err.contains("another host") && err.contains("refused"),
        "{err}"
    );
}

#[test]
fn credentials_never_go_in_clear_text_to_an_http_link() {
    let (_, plain, code, err) = attack(false, |other| Knobs {
        referrers_link: Some(format!("{}/v2/app/referrers/x?page=2", other.base)),
        ..Knobs::basic()
    });
    assert!(plain.requests().is_empty(), "{:?}", plain.requests());
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("plain HTTP"), "{err}");
}

#[test]
fn a_plain_http_token_realm_for_an_https_registry_is_refused() {
    let (_, plain, code, err) = attack(false, |other| Knobs {
        auth: Auth::Bearer {
            realm: format!("{}/token", other.base),
            user: ("alice".into(), "s3cret".into()),
        },
        ..Knobs::basic()
    });
    assert!(
        plain.requests().is_empty(),
        "credentials went to a plain-HTTP realm: {:?}",
        plain.requests()
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("token realm") && err.contains("plain HTTP"),
        "{err}"
    );
}

#[test]
fn a_redirect_to_another_host_that_asks_for_credentials_gets_none() {
    let (_, elsewhere, code, err) = attack(true, |other| Knobs {
        redirect_manifests: Some(format!("{}/v2/app/manifests/v1", other.base)),
        ..Knobs::basic()
    });
    // The redirect is followed (registries send blobs to CDNs) but carries no credentials, and
    // the other host's challenge (a token realm of its own) is not answered.
    let seen = elsewhere.requests();
    assert!(!seen.is_empty(), "the redirect was followed");
    assert!(
        !any_credentials(&seen),
        "credentials reached another host: {seen:?}"
    );
    assert!(
        !seen.iter().any(|s| s.request.contains("/token")),
        "a token was asked of another host: {seen:?}"
    );
    assert_eq!(code, 3, "{err}");
}

#[test]
fn an_https_registry_cannot_redirect_to_plain_http() {
    let (_, plain, code, err) = attack(false, |other| Knobs {
        redirect_manifests: Some(format!("{}/v2/app/manifests/v1", other.base)),
        ..Knobs::basic()
    });
    assert!(plain.requests().is_empty(), "{:?}", plain.requests());
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("HTTPS to plain HTTP"), "{err}");
}

#[test]
fn a_docker_content_digest_that_is_not_a_digest_is_refused() {
    let (reg, _, code, err) = attack(false, |_| Knobs {
        digest_header: Some("sha256:../../../../evil?x=#".into()),
        ..Knobs::basic()
    });
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("is not a valid digest"), "{err}");
    assert!(
        !err.contains("app@sha256:.."),
        "reported as the digest: {err}"
    );
    let asked: Vec<_> = reg.requests().into_iter().map(|s| s.request).collect();
    assert!(
        asked
            .iter()
            .all(|r| !r.contains("evil") && !r.contains("referrers")),
        "the header was used in a request: {asked:?}"
    );
}

/// The Azure workload identity's Entra ID token is good for every registry of the tenant: it
/// is exchanged only with Azure Container Registry, never with any registry that asks for a
/// token.
#[test]
fn the_azure_workload_identity_goes_only_to_azure_container_registry() {
    let tls = TestTls::new();
    let entra = hostile::collector(None);
    let tokens = hostile::collector(Some(&tls));
    let reg = hostile::registry(
        Knobs {
            auth: Auth::Bearer {
                realm: format!("{}/token", tokens.base),
                user: ("alice".into(), "s3cret".into()),
            },
            ..Knobs::basic()
        },
        Some(&tls),
    );
    let run = Run::new();
    let d = run.dir.path();
    let token = d.join("federated-token");
    std::fs::write(&token, "federated").unwrap();
    let no_credentials = d.join("empty-docker-config.json");
    std::fs::write(&no_credentials, "{}").unwrap();
    let (code, out, err) = outcome(&vouch_env(
        &[
            "verify",
            &format!("{}/app:v1", reg.host),
            "--trust-policy",
            &d.join("policy.json").display().to_string(),
            "--trust-store",
            &d.join("store").display().to_string(),
            "--docker-config",
            &no_credentials.display().to_string(),
        ],
        &[
            ("SSL_CERT_FILE", &tls.ca.display().to_string()),
            ("AZURE_FEDERATED_TOKEN_FILE", &token.display().to_string()),
            ("AZURE_CLIENT_ID", "client-1"),
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_AUTHORITY_HOST", &format!("{}/", entra.base)),
        ],
    ));
    let asked: Vec<_> = reg
        .requests()
        .into_iter()
        .chain(tokens.requests())
        .map(|s| s.request)
        .collect();
    assert!(
        !asked.iter().any(|r| r.contains("/oauth2/exchange")),
        "an Entra ID token was offered to a registry that is not ACR: {asked:?}"
    );
    assert!(
        entra.requests().is_empty(),
        "Entra ID was asked for a token for a registry that is not ACR: {:?}",
        entra.requests()
    );
    // Anonymous, the registry refuses: the run could not finish, and says so.
    assert_eq!(code, 3, "{out}{err}");
}

/// A trust policy with a strict statement for the registry's canonical names and an audit `*`
/// statement: every spelling of the host must get the strict one.
#[test]
fn every_spelling_of_a_registry_host_selects_the_same_statement() {
    let mut st = State {
        referrers_api: true,
        ..Default::default()
    };
    st.load_layout(&vectors().join("notation-go-cose/layout"))
        .expect("layout");
    let reg = FakeRegistry::start(st).expect("registry");
    let port = reg.host.rsplit_once(':').unwrap().1.to_string();
    let dir = tempfile::tempdir().unwrap();
    // The strict statement trusts a CA that did not sign the image, so it fails; the audit
    // statement would let the image through with a warning.
    let policy = format!(
        r#"{{"version":"1.0","trustPolicies":[
        {{"name":"pinned","registryScopes":["127.0.0.1:{port}/alpine","localhost:{port}/alpine"],
          "signatureVerification":{{"level":"strict"}},"trustStores":["ca:other"],"trustedIdentities":["*"]}},
        {{"name":"everything-else","registryScopes":["*"],
          "signatureVerification":{{"level":"audit"}},"trustStores":["ca:other"],"trustedIdentities":["*"]}}]}}"#
    );
    std::fs::write(dir.path().join("policy.json"), policy).unwrap();
    common::pki::self_signed("unrelated", &rcgen::PKCS_ECDSA_P256_SHA256)
        .write_store(&dir.path().join("store"), "other");
    let policy = dir.path().join("policy.json").display().to_string();
    let store = dir.path().join("store").display().to_string();
    for spelling in [
        format!("127.0.0.1:{port}"),
        format!("127.1:{port}"),
        format!("2130706433:{port}"),
        format!("0x7f.0.0.1:{port}"),
        format!("127.0.0.1:0{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("localhost:0{port}"),
    ] {
        let image = format!("{spelling}/alpine:v2");
        let (code, out, err) = outcome(&vouch_env(
            &[
                "verify",
                &image,
                "--trust-policy",
                &policy,
                "--trust-store",
                &store,
                "--insecure-registry",
                &format!("127.0.0.1:{port}"),
                "--insecure-registry",
                &format!("localhost:{port}"),
                "-o",
                "json",
            ],
            &[],
        ));
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{image}: {e}: {out}{err}"));
        assert_eq!(v["results"][0]["policy"], "pinned", "{image}: {out}{err}");
        assert_eq!(code, 1, "{image}: strict fails: {out}{err}");
    }
}

/// Images naming ever new registry hosts (here 300 loopback addresses with nothing listening)
/// leave `/metrics` and the per-host tables bounded.
#[tokio::test]
async fn per_host_state_and_metrics_stay_bounded() {
    use std::sync::Arc;
    let metrics = Arc::new(vouch::metrics::Metrics::new());
    let client = vouch::registry::RegistryClient::new(vouch::registry::RegistryOptions {
        metrics: Some(metrics.clone()),
        insecure_registries: (0..300)
            .map(|i| format!("127.0.{}.{}:1", i / 250, 1 + i % 250))
            .collect(),
        ..Default::default()
    })
    .unwrap();
    let before = metrics.encode().len();
    for i in 0..300 {
        let image = vouch::reference::ImageReference::parse(&format!(
            "127.0.{}.{}:1/app:v1",
            i / 250,
            1 + i % 250
        ))
        .unwrap();
        assert!(client.resolve_digest(&image).await.is_err());
    }
    let text = metrics.encode();
    let labels: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.split("registry=\"").nth(1)?.split('"').next())
        .collect();
    assert!(
        labels.len() <= vouch::metrics::MAX_REGISTRY_LABELS + 1,
        "{} registry labels",
        labels.len()
    );
    assert!(labels.contains("other"), "{labels:?}");
    assert!(
        text.len() < before + 40 * 1024,
        "/metrics grew from {before} to {} bytes",
        text.len()
    );
}
