//! Signature discovery through the OCI referrers API (which docker-registry lacks) and registry
//! faults, against the fake registry in `tests/common/fake_registry.rs`.

mod common;

use std::path::Path;

use common::fake_registry::{FakeRegistry, State};
use common::{outcome, pki, vectors, vouch};
use vouch::registry::Descriptor;

const STRICT: &str = r#"{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],
 "signatureVerification":{"level":"strict"},"trustStores":["ca:test"],"trustedIdentities":["*"]}]}"#;
const AUDIT: &str = r#"{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],
 "signatureVerification":{"level":"audit"},"trustStores":["ca:test"],"trustedIdentities":["*"]}]}"#;

struct Setup {
    _dir: tempfile::TempDir,
    policy: String,
    store: String,
}

fn setup(policy: &str, anchors: &[&Path]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policy.json");
    std::fs::write(&p, policy).unwrap();
    let store = dir.path().join("store");
    let ca = store.join("x509/ca/test");
    std::fs::create_dir_all(&ca).unwrap();
    for (i, a) in anchors.iter().enumerate() {
        std::fs::copy(a, ca.join(format!("{i}.crt"))).unwrap();
    }
    Setup {
        policy: p.display().to_string(),
        store: store.display().to_string(),
        _dir: dir,
    }
}

fn run(s: &Setup, reg: &FakeRegistry, image: &str, extra: &[&str]) -> (i32, String, String) {
    let full = format!("{}/{image}", reg.host);
    let mut args = vec![
        "verify",
        &full,
        "--trust-policy",
        &s.policy,
        "--trust-store",
        &s.store,
        "--insecure-registry",
        &reg.host,
    ];
    args.extend_from_slice(extra);
    outcome(&vouch(&args))
}

fn cose_registry() -> FakeRegistry {
    let mut st = State {
        referrers_api: true,
        ..Default::default()
    };
    st.load_layout(&vectors().join("notation-go-cose/layout"))
        .expect("layout");
    // Only the referrers API may find the signature here.
    st.tags.retain(|t, _| !t.starts_with("sha256-"));
    FakeRegistry::start(st).expect("fake registry")
}

#[test]
fn notation_cose_signature_found_through_the_referrers_api() {
    let reg = cose_registry();
    let alpine = vectors().join("notation-go-cose/alpine.crt");
    let s = setup(STRICT, &[&alpine]);
    let (code, out, err) = run(&s, &reg, "alpine:v2", &["-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let r = &v["results"][0];
    assert_eq!(
        r["digest"],
        "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0"
    );
    assert_eq!(r["signatures"][0]["envelope"], "application/cose");
    assert_eq!(
        r["signatures"][0]["signer"],
        "CN=alpine,O=Notary,L=Seattle,ST=WA,C=US"
    );
    let log = reg.requests();
    assert!(
        log.iter().any(|l| l.contains("/referrers/sha256:19dbd2e4")),
        "{log:?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("manifests/sha256-")),
        "no tag fallback: {log:?}"
    );
}

#[test]
fn notation_cose_identity_matching_is_case_sensitive() {
    let reg = cose_registry();
    let alpine = vectors().join("notation-go-cose/alpine.crt");
    let with_identity = |id: &str| {
        STRICT.replace(
            r#""trustedIdentities":["*"]"#,
            &format!(r#""trustedIdentities":["x509.subject: {id}"]"#),
        )
    };
    let s = setup(&with_identity("C=US, ST=WA, O=Notary"), &[&alpine]);
    assert_eq!(run(&s, &reg, "alpine:v2", &[]).0, 0);
    let s = setup(&with_identity("C=US, ST=WA, O=notary"), &[&alpine]);
    let (code, out, _) = run(&s, &reg, "alpine:v2", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("does not match the X.509 trusted identities"),
        "{out}"
    );
}

#[test]
fn subject_scan_finds_both_signatures_of_the_multiple_signatures_layout() {
    let mut st = State {
        referrers_api: true,
        ..Default::default()
    };
    st.load_layout(&vectors().join("notation-e2e/layouts/e2e-valid-multiple-signatures"))
        .expect("layout");
    let reg = FakeRegistry::start(st).expect("fake registry");
    // Trusting only the e2e key: one of the two verifies, whichever comes first.
    let s = setup(STRICT, &[&vectors().join("notation-e2e/localkeys/e2e.crt")]);
    let (code, out, err) = run(&s, &reg, "e2e:v1", &["-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    // Trusting nobody: both are tried and both fail.
    let other = pki::self_signed("nobody", &rcgen::PKCS_ECDSA_P256_SHA256);
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("nobody.der");
    std::fs::write(&anchor, &other.anchor_der).unwrap();
    let s = setup(STRICT, &[&anchor]);
    let (code, out, _) = run(&s, &reg, "e2e:v1", &["-o", "json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["results"][0]["signatures"].as_array().unwrap().len(),
        2,
        "{out}"
    );
}

/// A registry holding one small image and `n_untrusted` signatures by an untrusted key plus one
/// by `trusted` (created last), and some non-signature referrers.
fn crowded_registry(
    trusted: &pki::Identity,
    n_untrusted: usize,
    st: State,
) -> (FakeRegistry, Descriptor) {
    let reg = FakeRegistry::start(st).expect("fake registry");
    let subject = reg.with(|s| {
        let config = s.put_blob(b"{\"architecture\":\"amd64\",\"os\":\"linux\"}");
        let layer = s.put_blob(b"layer");
        let m = serde_json::json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":config,"size":35},
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":layer,"size":5}]});
        let bytes = serde_json::to_vec(&m).unwrap();
        let digest = s.put_manifest("application/vnd.oci.image.manifest.v1+json", &bytes, Some("v1"));
        Descriptor { media_type: "application/vnd.oci.image.manifest.v1+json".into(), digest, size: bytes.len() as u64, artifact_type: None, annotations: None }
    });
    let untrusted = pki::self_signed("untrusted", &rcgen::PKCS_ECDSA_P256_SHA256).signer();
    for i in 0..n_untrusted {
        let mut sig = untrusted.sign_artifact(&subject, None).unwrap();
        // Distinct creation times keep the fake's order stable: untrusted first.
        relabel(&mut sig, &format!("2020-01-01T00:00:{i:02}Z"));
        reg.with(|s| s.put_signature(&sig));
        // An SBOM referrer between signatures, to be filtered out.
        reg.with(|s| {
            let body = serde_json::json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "artifactType":"application/spdx+json",
                "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":format!("sha256:{}", vouch::registry::sha256_hex(b"{}")),"size":2},
                "layers":[{"mediaType":"application/spdx+json","digest":format!("sha256:{}", vouch::registry::sha256_hex(b"{}")),"size":2}],
                "subject":{"mediaType":subject.media_type,"digest":subject.digest,"size":subject.size},
                "annotations":{"org.opencontainers.image.created":format!("2020-01-01T00:00:{i:02}Z-sbom")}});
            s.put_blob(b"{}");
            s.put_manifest("application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&body).unwrap(), None);
        });
    }
    let mut sig = trusted.signer().sign_artifact(&subject, None).unwrap();
    relabel(&mut sig, "2021-01-01T00:00:00Z");
    reg.with(|s| s.put_signature(&sig));
    (reg, subject)
}

fn relabel(sig: &mut vouch::notation::signer::SignatureArtifact, created: &str) {
    let mut m: serde_json::Value = serde_json::from_slice(&sig.manifest).unwrap();
    m["annotations"]["org.opencontainers.image.created"] = created.into();
    sig.manifest = serde_json::to_vec(&m).unwrap();
    sig.manifest_descriptor.digest =
        format!("sha256:{}", vouch::registry::sha256_hex(&sig.manifest));
    sig.manifest_descriptor.size = sig.manifest.len() as u64;
}

fn anchor_file(id: &pki::Identity) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("anchor.der");
    std::fs::write(&p, &id.anchor_der).unwrap();
    (dir, p)
}

#[test]
fn link_pagination_is_followed_and_other_artifact_types_ignored() {
    let trusted = pki::ca_issued("trusted", &rcgen::PKCS_ECDSA_P384_SHA384);
    let (reg, subject) = crowded_registry(
        &trusted,
        7,
        State {
            referrers_api: true,
            page_size: 3,
            ..Default::default()
        },
    );
    let (_d, anchor) = anchor_file(&trusted);
    let s = setup(STRICT, &[&anchor]);
    let (code, out, err) = run(
        &s,
        &reg,
        &format!("app@{}", subject.digest),
        &["-o", "json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sigs = v["results"][0]["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 8, "7 untrusted then the trusted one: {out}");
    assert!(
        sigs.iter().all(|s| s["envelope"] == "application/cose"),
        "SBOMs are not signatures"
    );
    let pages = reg
        .requests()
        .iter()
        .filter(|l| l.contains("/referrers/"))
        .count();
    assert!(pages >= 5, "15 referrers at 3 per page: {pages} pages");
}

#[test]
fn server_side_filtering_is_trusted_when_announced() {
    let trusted = pki::self_signed("trusted", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (reg, subject) = crowded_registry(
        &trusted,
        2,
        State {
            referrers_api: true,
            filters_applied: true,
            ..Default::default()
        },
    );
    let (_d, anchor) = anchor_file(&trusted);
    let s = setup(STRICT, &[&anchor]);
    let (code, out, err) = run(&s, &reg, &format!("app@{}", subject.digest), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        reg.requests()
            .iter()
            .any(|l| l.contains("artifactType=application%2Fvnd.cncf.notary.signature")),
        "artifactType is sent, URL-encoded: {:?}",
        reg.requests()
    );
}

#[test]
fn signature_limit_counts_every_signature_tried() {
    let trusted = pki::self_signed("trusted", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (reg, subject) = crowded_registry(
        &trusted,
        4,
        State {
            referrers_api: true,
            page_size: 2,
            ..Default::default()
        },
    );
    let (_d, anchor) = anchor_file(&trusted);
    let s = setup(STRICT, &[&anchor]);
    let (code, out, _) = run(
        &s,
        &reg,
        &format!("app@{}", subject.digest),
        &["--max-signatures", "3"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("The configured limit of 3 signatures to verify per artifact exceeded"),
        "{out}"
    );
    let (code, _, _) = run(
        &s,
        &reg,
        &format!("app@{}", subject.digest),
        &["--max-signatures", "5"],
    );
    assert_eq!(code, 0);
}

#[test]
fn tag_fallback_when_the_registry_has_no_referrers_api() {
    let mut st = State::default();
    st.load_layout(&vectors().join("notation-go-cose/layout"))
        .expect("layout");
    let reg = FakeRegistry::start(st).expect("fake registry");
    let s = setup(STRICT, &[&vectors().join("notation-go-cose/alpine.crt")]);
    let (code, out, err) = run(&s, &reg, "alpine:v2", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let log = reg.requests();
    assert!(log.iter().any(|l| l.contains("/referrers/")), "{log:?}");
    assert!(
        log.iter().any(|l| l.contains("/manifests/sha256-19dbd2e4")),
        "{log:?}"
    );
}

#[test]
fn forbidden_referrers_is_an_error_not_an_unsigned_image() {
    let mut st = State {
        referrers_api: true,
        referrers_status: Some(403),
        ..Default::default()
    };
    st.load_layout(&vectors().join("notation-go-cose/layout"))
        .expect("layout");
    let reg = FakeRegistry::start(st).expect("fake registry");
    let s = setup(STRICT, &[&vectors().join("notation-go-cose/alpine.crt")]);
    let (code, out, _) = run(&s, &reg, "alpine:v2", &[]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("ERROR") && out.contains("denied access") && out.contains("403"),
        "{out}"
    );
    // Audit still lets it through, with the reason.
    let s = setup(AUDIT, &[&vectors().join("notation-go-cose/alpine.crt")]);
    let (code, out, _) = run(&s, &reg, "alpine:v2", &[]);
    assert_eq!(code, 3);
    assert!(out.contains("admission: allow"), "{out}");
}

#[test]
fn unknown_repository_and_missing_image_cannot_finish() {
    let mut st = State {
        referrers_api: true,
        ..Default::default()
    };
    st.missing_repos.insert("ghost".into());
    let reg = FakeRegistry::start(st).expect("fake registry");
    let s = setup(STRICT, &[&vectors().join("notation-go-cose/alpine.crt")]);
    let (code, out, _) = run(&s, &reg, "ghost:v1", &[]);
    assert_eq!(code, 3, "{out}");
    let (code, out, _) = run(&s, &reg, "present-repo:nope", &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("not found"), "{out}");
}

#[test]
fn bytes_that_do_not_match_their_digest_are_refused() {
    let reg = cose_registry();
    let envelope = reg.with(|s| {
        let m: serde_json::Value = serde_json::from_slice(
            &s.manifests["sha256:6372ed19fed564c238b68a33c0ea9fb71751fdd40da3fcc0d90bb2dfe24c816c"]
                .1,
        )
        .unwrap();
        m["layers"][0]["digest"].as_str().unwrap().to_string()
    });
    reg.with(|s| s.corrupt.insert(envelope));
    let s = setup(STRICT, &[&vectors().join("notation-go-cose/alpine.crt")]);
    let (code, out, _) = run(&s, &reg, "alpine:v2", &[]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("unable to retrieve digital signature") && out.contains("does not match"),
        "{out}"
    );
    // A corrupted image manifest read by GET (HEAD refused) is refused too.
    let reg = cose_registry();
    reg.with(|s| {
        s.head_not_allowed = true;
        s.corrupt.insert(
            "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0".into(),
        );
    });
    let (code, out, _) = run(&s, &reg, "alpine:v2", &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("does not match"), "{out}");
}

#[test]
fn get_is_used_when_head_is_not_allowed() {
    let reg = cose_registry();
    reg.with(|s| s.head_not_allowed = true);
    let s = setup(STRICT, &[&vectors().join("notation-go-cose/alpine.crt")]);
    let (code, out, err) = run(&s, &reg, "alpine:v2", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(reg
        .requests()
        .iter()
        .any(|l| l.starts_with("GET /v2/alpine/manifests/v2")));
}

#[test]
fn oversized_envelopes_are_refused_before_download() {
    let trusted = pki::self_signed("trusted", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (reg, subject) = crowded_registry(
        &trusted,
        0,
        State {
            referrers_api: true,
            ..Default::default()
        },
    );
    // Attach a signature manifest whose layer claims 2 MiB.
    reg.with(|s| {
        let big = vec![b'x'; 2 * 1024 * 1024];
        let d = s.put_blob(&big);
        let m = serde_json::json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "artifactType":"application/vnd.cncf.notary.signature",
            "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":format!("sha256:{}", vouch::registry::sha256_hex(b"{}")),"size":2},
            "layers":[{"mediaType":"application/cose","digest":d,"size":big.len()}],
            "subject":{"mediaType":subject.media_type,"digest":subject.digest,"size":subject.size},
            "annotations":{"org.opencontainers.image.created":"2000-01-01T00:00:00Z"}});
        s.put_manifest("application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&m).unwrap(), None);
    });
    let (_d, anchor) = anchor_file(&trusted);
    let s = setup(STRICT, &[&anchor]);
    let (code, out, _) = run(&s, &reg, &format!("app@{}", subject.digest), &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("larger than the 1048576-byte limit"), "{out}");
    assert!(
        !reg.requests().iter().any(|l| l.contains("/blobs/")),
        "nothing downloaded"
    );
}

#[test]
fn payload_for_another_digest_fails_even_at_audit() {
    let trusted = pki::self_signed("trusted", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (reg, subject) = crowded_registry(
        &trusted,
        0,
        State {
            referrers_api: true,
            ..Default::default()
        },
    );
    // A valid signature by the trusted key, for a different image, attached to this one.
    let other = Descriptor {
        digest: format!("sha256:{}", "ab".repeat(32)),
        ..subject.clone()
    };
    let mut sig = trusted.signer().sign_artifact(&other, None).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&sig.manifest).unwrap();
    m["subject"]["digest"] = subject.digest.clone().into();
    sig.manifest = serde_json::to_vec(&m).unwrap();
    reg.with(|s| {
        // Replace the good signature with the misdirected one.
        s.manifests
            .retain(|_, (_, b)| !String::from_utf8_lossy(b).contains("notary.signature"));
        s.put_signature(&sig);
    });
    let (_d, anchor) = anchor_file(&trusted);
    for policy in [STRICT, AUDIT] {
        let s = setup(policy, &[&anchor]);
        let (code, out, _) = run(&s, &reg, &format!("app@{}", subject.digest), &[]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("content descriptor mismatch"), "{out}");
    }
}

#[test]
fn bearer_token_flow_with_docker_config_credentials() {
    let trusted = pki::self_signed("trusted", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (reg, subject) = crowded_registry(
        &trusted,
        1,
        State {
            referrers_api: true,
            require_token: Some(("ci".into(), "s3cret".into())),
            ..Default::default()
        },
    );
    let (_d, anchor) = anchor_file(&trusted);
    let s = setup(STRICT, &[&anchor]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    use base64::Engine;
    let write = |user: &str, pass: &str| {
        std::fs::write(
            &cfg,
            format!(
                r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
                reg.host,
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
            ),
        )
        .unwrap();
    };
    write("ci", "s3cret");
    let image = format!("app@{}", subject.digest);
    let (code, out, err) = run(
        &s,
        &reg,
        &image,
        &["--docker-config", cfg.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}{err}");
    // One token for the repository scope, reused for every later request.
    let tokens = reg.requests().len();
    assert!(tokens > 3);
    write("ci", "wrong");
    let (code, out, _) = run(
        &s,
        &reg,
        &image,
        &["--docker-config", cfg.to_str().unwrap()],
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("authentication with registry") && out.contains("401"),
        "{out}"
    );
    // Anonymous: the registry's 401 is reported, never taken for "unsigned".
    let (code, out, _) = run(&s, &reg, &image, &[]);
    assert_eq!(code, 3, "{out}");
}

#[test]
fn unreachable_registry_cannot_finish() {
    let port = common::free_port();
    let s = setup(STRICT, &[&vectors().join("notation-go-cose/alpine.crt")]);
    let host = format!("127.0.0.1:{port}");
    let (code, out, _) = outcome(&vouch(&[
        "verify",
        &format!("{host}/app:v1"),
        "--trust-policy",
        &s.policy,
        "--trust-store",
        &s.store,
        "--insecure-registry",
        &host,
    ]));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("unreachable"), "{out}");
}

#[test]
fn bad_image_references_are_usage_errors() {
    let s = setup(STRICT, &[&vectors().join("notation-go-cose/alpine.crt")]);
    let (code, out, err) = outcome(&vouch(&[
        "verify",
        "Bad/Reference",
        "--trust-policy",
        &s.policy,
        "--trust-store",
        &s.store,
    ]));
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains("invalid image reference \"Bad/Reference\""),
        "{err}"
    );
}

#[test]
fn credential_helper_and_basic_challenge() {
    let trusted = pki::self_signed("trusted", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (reg, subject) = crowded_registry(
        &trusted,
        0,
        State {
            referrers_api: true,
            require_basic: Some(("helper-user".into(), "helper-secret".into())),
            ..Default::default()
        },
    );
    let (_d, anchor) = anchor_file(&trusted);
    let s = setup(STRICT, &[&anchor]);
    let dir = tempfile::tempdir().unwrap();
    // A docker-credential-* helper speaking the helper protocol: server URL on stdin, JSON out.
    let helper = dir.path().join("docker-credential-vouchtest");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"helper-user\",\"Secret\":\"helper-secret\"}' \"$server\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(
        &cfg,
        format!(r#"{{"credHelpers":{{"{}":"vouchtest"}}}}"#, reg.host),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let full = format!("{}/app@{}", reg.host, subject.digest);
    let (code, out, err) = outcome(&common::vouch_env(
        &[
            "verify",
            &full,
            "--trust-policy",
            &s.policy,
            "--trust-store",
            &s.store,
            "--insecure-registry",
            &reg.host,
            "--docker-config",
            cfg.to_str().unwrap(),
        ],
        &[("PATH", &path)],
    ));
    assert_eq!(code, 0, "{out}{err}");
    // Without the helper's credentials the Basic challenge cannot be answered.
    let (code, out, _) = run(&s, &reg, &format!("app@{}", subject.digest), &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("401"), "{out}");
}

#[test]
fn signing_authority_scheme_needs_a_signing_authority_store() {
    let sa = pki::ca_issued("authority", &rcgen::PKCS_ECDSA_P256_SHA256);
    let reg = FakeRegistry::start(State {
        referrers_api: true,
        ..Default::default()
    })
    .expect("fake registry");
    let subject = reg.with(|s| {
        let bytes = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        s.put_blob(b"{}");
        let digest = s.put_manifest("application/vnd.oci.image.manifest.v1+json", bytes, Some("v1"));
        Descriptor { media_type: "application/vnd.oci.image.manifest.v1+json".into(), digest, size: bytes.len() as u64, artifact_type: None, annotations: None }
    });
    let sig = sa
        .signer()
        .signing_authority()
        .sign_artifact(&subject, None)
        .unwrap();
    reg.with(|s| s.put_signature(&sig));
    let (_d, anchor) = anchor_file(&sa);
    // A ca store cannot trust a signing-authority signature.
    let s = setup(STRICT, &[&anchor]);
    let (code, out, _) = run(&s, &reg, "app:v1", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no trust store of type \"signingAuthority\""),
        "{out}"
    );
    // A signingAuthority store does.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store/x509/signingAuthority/test");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::copy(&anchor, store.join("root.der")).unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, STRICT.replace("ca:test", "signingAuthority:test")).unwrap();
    let full = format!("{}/app:v1", reg.host);
    let (code, out, err) = outcome(&vouch(&[
        "verify",
        &full,
        "--trust-policy",
        policy.to_str().unwrap(),
        "--trust-store",
        dir.path().join("store").to_str().unwrap(),
        "--insecure-registry",
        &reg.host,
    ]));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn several_images_are_judged_and_reported_in_order() {
    let reg = cose_registry();
    let s = setup(STRICT, &[&vectors().join("notation-go-cose/alpine.crt")]);
    reg.with(|st| {
        st.put_manifest("application/vnd.oci.image.manifest.v1+json", br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#, Some("unsigned"));
    });
    let a = format!("{}/alpine:v2", reg.host);
    let b = format!("{}/alpine:unsigned", reg.host);
    let (code, out, _) = outcome(&vouch(&[
        "verify",
        &a,
        &b,
        "--trust-policy",
        &s.policy,
        "--trust-store",
        &s.store,
        "--insecure-registry",
        &reg.host,
        "-o",
        "json",
    ]));
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["results"][0]["image"], a.as_str());
    assert_eq!(v["results"][0]["verified"], true);
    assert_eq!(v["results"][1]["image"], b.as_str());
    assert_eq!(v["results"][1]["verified"], false);
    assert_eq!(v["results"][1]["admission"], "deny");
}
