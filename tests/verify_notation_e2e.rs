//! The notation e2e verification matrix (`test/e2e/suite/trustpolicy/*.go` in the notation
//! repository), replayed with `vouch verify` against a real docker-registry holding the
//! notation-made layouts of `../shared/vectors/notation-e2e`. docker-registry has no referrers
//! API, so every case here goes through the `sha256-<hex>` tag fallback.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::{outcome, vectors, vouch, Registry};

const LAYOUTS: [&str; 8] = [
    "e2e",
    "e2e-valid-signature",
    "e2e-valid-multiple-signatures",
    "e2e-invalid-signature",
    "e2e-expired-signature",
    "e2e-with-expired-cert",
    "e2e-with-timestamped-signature",
    "e2e-with-invalid-timestamped-signature",
];
const DIGEST: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let r = Registry::start();
        let layouts = vectors().join("notation-e2e/layouts");
        for l in LAYOUTS {
            r.push_layout(&layouts.join(l), l);
        }
        // The scoped-policy cases use these repository names.
        for repo in ["test-repo", "test-repo2", "test-repo3", "test-repo9"] {
            r.push_layout(&layouts.join("e2e-valid-signature"), repo);
        }
        r
    })
}

fn key(name: &str) -> PathBuf {
    vectors().join("notation-e2e/localkeys").join(name)
}

/// A notation e2e trust policy, with the suite's `localhost:5000` pointed at our registry.
fn policy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let text = std::fs::read_to_string(vectors().join("notation-e2e/trustpolicies").join(name))
        .expect("policy vector");
    let text = text.replace("localhost:5000", &registry().host);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write policy");
    (dir, path)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// `vouch verify` of `repo@digest` (or a given reference) with a policy vector and a `ca:e2e`
/// store holding `cert`.
fn verify_with(
    policy_name: &str,
    stores: &[(&str, &str, &[PathBuf])],
    image: &str,
    json: bool,
) -> Run {
    let reg = registry();
    let (_pdir, policy_path) = policy(policy_name);
    let ts = common::trust_store(stores);
    let image = if image.contains('/') {
        image.to_string()
    } else {
        format!("{}/{image}", reg.host)
    };
    let mut args = vec![
        "verify".to_string(),
        image,
        "--trust-policy".into(),
        policy_path.display().to_string(),
        "--trust-store".into(),
        ts.path().display().to_string(),
        "--insecure-registry".into(),
        reg.host.clone(),
    ];
    if json {
        args.extend(["--output".into(), "json".into()]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = outcome(&vouch(&argv));
    Run {
        code,
        stdout,
        stderr,
    }
}

fn verify(policy_name: &str, cert: &str, repo: &str) -> Run {
    verify_with(
        policy_name,
        &[("ca", "e2e", &[key(cert)])],
        &format!("{repo}@{DIGEST}"),
        false,
    )
}

fn assert_run(run: &Run, code: i32, contains: &[&str]) {
    let all = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, code, "exit status; output:\n{all}");
    for c in contains {
        assert!(all.contains(c), "expected {c:?} in:\n{all}");
    }
}

// --- strict, the base setup -------------------------------------------------------------

#[test]
fn strict_level_with_valid_signature_by_digest() {
    let run = verify("trustpolicy.json", "e2e.crt", "e2e-valid-signature");
    assert_run(
        &run,
        0,
        &["VERIFIED", "signed by CN=e2e,O=Notary,L=Seattle,ST=WA,C=US"],
    );
}

#[test]
fn strict_level_with_valid_signature_by_tag() {
    let run = verify_with(
        "trustpolicy.json",
        &[("ca", "e2e", &[key("e2e.crt")])],
        "e2e-valid-signature:v1",
        true,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let r = &run.json()["results"][0];
    assert_eq!(r["digest"], DIGEST);
    assert_eq!(r["verified"], true);
    assert_eq!(r["admission"], "allow");
}

#[test]
fn a_verified_image_is_pinned_to_the_digest_that_verified() {
    let trust = [("ca", "e2e", &[key("e2e.crt")][..])];
    let by_tag = format!("{}/e2e-valid-signature:v1", registry().host);
    let run = verify_with("trustpolicy.json", &trust, &by_tag, true);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.json()["results"][0]["pinned"],
        format!("{by_tag}@{DIGEST}"),
        "the name and tag as written, the verified digest appended"
    );
    let text = verify_with("trustpolicy.json", &trust, &by_tag, false);
    assert_run(&text, 0, &[&format!("\n  → pinned: {by_tag}@{DIGEST}\n")]);

    let by_digest = format!("{}/e2e-valid-signature@{DIGEST}", registry().host);
    let run = verify_with("trustpolicy.json", &trust, &by_digest, true);
    assert_eq!(
        run.json()["results"][0]["pinned"],
        by_digest.as_str(),
        "already pinned"
    );
    let text = verify_with("trustpolicy.json", &trust, &by_digest, false);
    assert!(!text.stdout.contains("pinned"), "{}", text.stdout);

    let unsigned = format!("{}/e2e:v1", registry().host);
    let run = verify_with("trustpolicy.json", &trust, &unsigned, true);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let r = &run.json()["results"][0];
    assert!(
        r.get("pinned").is_none(),
        "nothing verified, nothing pinned: {r}"
    );
}

#[test]
fn unsigned_image_fails_at_strict_permissive_and_audit() {
    for p in ["trustpolicy.json", "permissive_trustpolicy.json"] {
        let run = verify(p, "e2e.crt", "e2e");
        assert_run(&run, 1, &["no Notation signature found", "admission: deny"]);
    }
    let run = verify("audit_trustpolicy.json", "e2e.crt", "e2e");
    assert_run(
        &run,
        1,
        &["no Notation signature found", "admission: allow"],
    );
}

#[test]
fn skip_level_passes_without_looking_for_signatures() {
    for repo in ["e2e", "e2e-invalid-signature"] {
        let run = verify_with(
            "skip_trustpolicy.json",
            &[],
            &format!("{repo}@{DIGEST}"),
            false,
        );
        assert_run(
            &run,
            0,
            &["SKIPPED", "configured to skip signature verification"],
        );
    }
}

// --- untrusted signer ---------------------------------------------------------------------

#[test]
fn untrusted_signer_fails_strict_and_permissive() {
    for p in ["trustpolicy.json", "permissive_trustpolicy.json"] {
        let run = verify(p, "new_e2e.crt", "e2e-valid-signature");
        assert_run(
            &run,
            1,
            &[
                "authenticity validation failed",
                "does not contain any trusted certificate",
            ],
        );
    }
}

#[test]
fn untrusted_signer_is_logged_at_audit() {
    let run = verify(
        "audit_trustpolicy.json",
        "new_e2e.crt",
        "e2e-valid-signature",
    );
    assert_run(
        &run,
        0,
        &[
            "authenticity was set to \"log\" and failed with error: the signature's certificate chain does not contain any trusted certificate",
        ],
    );
}

#[test]
fn trusted_identity_matches_and_mismatches() {
    let ok = verify(
        "valid_trusted_identity_trustpolicy.json",
        "e2e.crt",
        "e2e-valid-signature",
    );
    assert_run(&ok, 0, &["VERIFIED"]);
    let bad = verify(
        "invalid_trusted_identity_trustpolicy.json",
        "e2e.crt",
        "e2e-valid-signature",
    );
    assert_run(
        &bad,
        1,
        &["signing certificate from the digital signature does not match the X.509 trusted identities"],
    );
    let multi = verify(
        "multiple_trusted_identity_trustpolicy.json",
        "e2e.crt",
        "e2e-valid-signature",
    );
    assert_run(&multi, 0, &["VERIFIED"]);
}

#[test]
fn multiple_trust_stores_any_one_trusts() {
    let run = verify_with(
        "multiple_trust_store_trustpolicy.json",
        &[
            ("ca", "e2e", &[key("new_e2e.crt")]),
            ("ca", "e2e-new", &[key("e2e.crt")]),
        ],
        &format!("e2e-valid-signature@{DIGEST}"),
        false,
    );
    assert_run(&run, 0, &["VERIFIED"]);
}

// --- expired signature ----------------------------------------------------------------------

#[test]
fn expired_signature_fails_strict() {
    let run = verify("trustpolicy.json", "e2e.crt", "e2e-expired-signature");
    assert_run(
        &run,
        1,
        &[
            "expiry validation failed",
            "digital signature has expired on",
        ],
    );
}

#[test]
fn expired_signature_is_logged_at_permissive_and_audit() {
    for p in ["permissive_trustpolicy.json", "audit_trustpolicy.json"] {
        let run = verify(p, "e2e.crt", "e2e-expired-signature");
        assert_run(
            &run,
            0,
            &["expiry was set to \"log\" and failed with error: digital signature has expired"],
        );
    }
}

#[test]
fn expired_signature_with_overrides() {
    assert_run(
        &verify(
            "override_strict_trustpolicy.json",
            "e2e.crt",
            "e2e-expired-signature",
        ),
        0,
        &["VERIFIED"],
    );
    for p in [
        "override_permissive_trustpolicy.json",
        "override_audit_trustpolicy.json",
    ] {
        assert_run(
            &verify(p, "e2e.crt", "e2e-expired-signature"),
            1,
            &["expiry validation failed"],
        );
    }
}

// --- invalid envelope -----------------------------------------------------------------------

#[test]
fn invalid_signature_fails_integrity_at_every_verifying_level() {
    for p in [
        "trustpolicy.json",
        "permissive_trustpolicy.json",
        "audit_trustpolicy.json",
    ] {
        let run = verify(p, "e2e.crt", "e2e-invalid-signature");
        assert_run(
            &run,
            1,
            &[
                "integrity validation failed",
                "unable to parse the digital signature",
            ],
        );
    }
}

// --- expired certificate --------------------------------------------------------------------

const EXPIRED_CERT_MESSAGE: &str = "after certificate \"O=Internet Widgits Pty Ltd,ST=Some-State,C=AU\" validity period, it was expired at \"Tue, 27 Jun 2023 06:10:00 +0000\"";

#[test]
fn expired_certificate_fails_strict() {
    let run = verify(
        "trustpolicy.json",
        "expired_e2e.crt",
        "e2e-with-expired-cert",
    );
    assert_run(
        &run,
        1,
        &["authenticTimestamp validation failed", EXPIRED_CERT_MESSAGE],
    );
}

#[test]
fn expired_certificate_is_logged_at_permissive_and_audit() {
    for p in ["permissive_trustpolicy.json", "audit_trustpolicy.json"] {
        let run = verify(p, "expired_e2e.crt", "e2e-with-expired-cert");
        assert_run(
            &run,
            0,
            &[
                "authenticTimestamp was set to \"log\"",
                EXPIRED_CERT_MESSAGE,
            ],
        );
    }
}

#[test]
fn expired_certificate_with_overrides() {
    assert_run(
        &verify(
            "override_strict_trustpolicy.json",
            "expired_e2e.crt",
            "e2e-with-expired-cert",
        ),
        0,
        &["VERIFIED"],
    );
    for p in [
        "override_permissive_trustpolicy.json",
        "override_audit_trustpolicy.json",
    ] {
        assert_run(
            &verify(p, "expired_e2e.crt", "e2e-with-expired-cert"),
            1,
            &["authenticTimestamp validation failed"],
        );
    }
}

// --- multiple signatures --------------------------------------------------------------------

#[test]
fn one_valid_signature_among_several_is_enough() {
    let run = verify_with(
        "trustpolicy.json",
        &[("ca", "e2e", &[key("e2e.crt")])],
        &format!("e2e-valid-multiple-signatures@{DIGEST}"),
        true,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["results"][0]["outcome"], "verified");
}

#[test]
fn signature_limit_stops_evaluation() {
    let reg = registry();
    let (_d, p) = policy("trustpolicy.json");
    let ts = common::trust_store(&[("ca", "e2e", &[key("new_e2e.crt")])]);
    let image = format!("{}/e2e-valid-signature@{DIGEST}", reg.host);
    let o = vouch(&[
        "verify",
        &image,
        "--trust-policy",
        p.to_str().unwrap(),
        "--trust-store",
        ts.path().to_str().unwrap(),
        "--insecure-registry",
        &reg.host,
        "--max-signatures",
        "1",
    ]);
    let run = Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    };
    assert_run(&run, 1, &["signature evaluation stopped. The configured limit of 1 signatures to verify per artifact exceeded"]);
}

// --- registry scopes ------------------------------------------------------------------------

#[test]
fn scoped_statement_applies_to_its_repository() {
    assert_run(
        &verify("registry_scope_trustpolicy.json", "e2e.crt", "test-repo"),
        0,
        &["VERIFIED"],
    );
    for repo in ["test-repo2", "test-repo3"] {
        assert_run(
            &verify("multiple_registry_scope_trustpolicy.json", "e2e.crt", repo),
            0,
            &["VERIFIED"],
        );
    }
}

#[test]
fn repository_outside_every_scope_has_no_policy() {
    let run = verify(
        "invalid_registry_scope_trustpolicy.json",
        "e2e.crt",
        "test-repo",
    );
    assert_run(&run, 1, &["no trust policy applies to", "admission: deny"]);
}

#[test]
fn exact_scope_beats_the_wildcard_statement() {
    let run = verify_with(
        "multi_statements_with_wildcard_registry_scope_trustpolicy.json",
        &[("ca", "e2e", &[key("e2e.crt")])],
        &format!("test-repo9@{DIGEST}"),
        true,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["results"][0]["policy"], "e2e");
    let other = verify_with(
        "multi_statements_with_wildcard_registry_scope_trustpolicy.json",
        &[("ca", "e2e", &[key("e2e.crt")])],
        &format!("test-repo@{DIGEST}"),
        true,
    );
    assert_eq!(other.json()["results"][0]["policy"], "e2e2");
}

// --- invalid policies are refused before anything is verified (exit 2) -----------------------

#[test]
fn invalid_trust_policies_are_configuration_errors() {
    let cases = [
        ("override_integrity_for_permissive_trustpolicy.json", "\"integrity\" verification can not be overridden in custom signature verification"),
        ("empty_registry_scope_trustpolicy.json", "trust policy statement \"e2e\" has zero registry scopes"),
        ("malformed_registry_scope_trustpolicy.json", "is not valid, make sure it is a fully qualified repository without the scheme, protocol or tag"),
        ("overlapped_registry_scope_trustpolicy.json", "is present in multiple oci trust policy statements"),
        ("multi_statements_with_the_same_registry_scope_trustpolicy.json", "is present in multiple oci trust policy statements"),
        ("wildcard_plus_other_registry_scope_trustpolicy.json", "uses wildcard registry scope '*', a wildcard scope cannot be used in conjunction with other scope values"),
        ("multi_statements_with_multi_wildcard_registry_scope_trustpolicy.json", "registry scope \"*\" is present in multiple oci trust policy statements"),
        ("multi_statements_with_the_same_name_trustpolicy.json", "multiple oci trust policy statements use the same name \"e2e\", statement names must be unique"),
        ("unset_trust_store_trustpolicy.json", "is either missing trust stores or trusted identities, both must be specified"),
        ("unset_trusted_identity_trustpolicy.json", "is either missing trust stores or trusted identities, both must be specified"),
        ("invalid_trust_store_trustpolicy.json", "the trust store \"invalid_store\" of type \"ca\" does not exist"),
        ("malformed_trust_store_trustpolicy.json", "uses an unsupported trust store name \"\" in trust store value \"ca:\". Named store name needs to follow [a-zA-Z0-9_.-]+ format"),
        ("wildcard_trust_store_trustpolicy.json", "has malformed trust store value \"*\". The required format is <TrustStoreType>:<TrustStoreName>"),
        ("malformed_trusted_identity_trustpolicy.json", "has trusted identity \"x509.subject CN=e2e,O=Notary,L=Seattle,ST=WA,C=US\" missing separator"),
        ("empty_trusted_identity_trustpolicy.json", "has an empty trusted identity"),
        ("overlapped_trusted_identity_trustpolicy.json", "has overlapping x509 trustedIdentities"),
        ("wildcard_plus_other_trusted_identity_trustpolicy.json", "uses a wildcard trusted identity '*', a wildcard identity cannot be used in conjunction with other values"),
        ("missing_organization_trusted_identity_trustpolicy.json", "has no mandatory RDN attribute for \"O\", it must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum"),
        ("missing_state_trusted_identity_trustpolicy.json", "has no mandatory RDN attribute for \"ST\""),
        ("missing_country_trusted_identity_trustpolicy.json", "has no mandatory RDN attribute for \"C\""),
        ("invalid_format_trustpolicy.json", "malformed trust policy"),
    ];
    for (file, message) in cases {
        let run = verify(file, "e2e.crt", "e2e-valid-signature");
        assert_eq!(run.code, 2, "{file}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(message),
            "{file}: expected {message:?} in {}",
            run.stderr
        );
        assert!(
            run.stdout.is_empty(),
            "{file}: nothing is verified: {}",
            run.stdout
        );
    }
}

#[test]
fn policy_check_reports_valid_and_invalid_policies() {
    let (_d, good) = policy("multi_statements_with_wildcard_registry_scope_trustpolicy.json");
    let ts = common::trust_store(&[("ca", "e2e", &[key("e2e.crt")])]);
    let (code, out, _) = outcome(&vouch(&[
        "policy",
        "check",
        "--trust-policy",
        good.to_str().unwrap(),
        "--trust-store",
        ts.path().to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 statement(s)"), "{out}");
    let (_d2, bad) = policy("overlapped_trusted_identity_trustpolicy.json");
    let (code, _, err) = outcome(&vouch(&[
        "policy",
        "check",
        "--trust-policy",
        bad.to_str().unwrap(),
        "--trust-store",
        ts.path().to_str().unwrap(),
    ]));
    assert_eq!(code, 2);
    assert!(
        err.contains("has overlapping x509 trustedIdentities"),
        "{err}"
    );
}

// --- notation's timestamped e2e signatures -------------------------------------------------

/// The signer of the timestamp layouts exists only in the envelope; put it in a store.
fn timestamp_signer(layout: &str) -> tempfile::TempDir {
    let dir = vectors().join("notation-e2e/layouts").join(layout);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let out = tempfile::tempdir().unwrap();
    for m in index["manifests"].as_array().unwrap() {
        let bytes = std::fs::read(common::blob_path(&dir, m["digest"].as_str().unwrap())).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        if manifest["layers"][0]["mediaType"] == "application/jose+json" {
            let env = std::fs::read(common::blob_path(
                &dir,
                manifest["layers"][0]["digest"].as_str().unwrap(),
            ))
            .unwrap();
            let env: serde_json::Value = serde_json::from_slice(&env).unwrap();
            use base64::Engine;
            let der = base64::engine::general_purpose::STANDARD
                .decode(env["header"]["x5c"][0].as_str().unwrap())
                .unwrap();
            std::fs::write(out.path().join("signer.der"), der).unwrap();
        }
    }
    out
}

fn subject_of(layout: &str) -> String {
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            vectors()
                .join("notation-e2e/layouts")
                .join(layout)
                .join("index.json"),
        )
        .unwrap(),
    )
    .unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .is_some_and(|t| !t.starts_with("sha256-"))
        })
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn timestamped_signature_without_tsa_store_checks_the_chain_now() {
    let layout = "e2e-with-timestamped-signature";
    let signer = timestamp_signer(layout);
    let image = format!("{layout}@{}", subject_of(layout));
    let stores: &[(&str, &str, &[PathBuf])] = &[("ca", "e2e", &[signer.path().join("signer.der")])];
    // The signature expired 2025-01-21 and its certificate 2025-01-22: strict fails on expiry first.
    let strict = verify_with("trustpolicy.json", stores, &image, false);
    assert_run(&strict, 1, &["expiry validation failed"]);
    let permissive = verify_with("permissive_trustpolicy.json", stores, &image, false);
    assert_run(
        &permissive,
        0,
        &[
            "expiry was set to \"log\"",
            "authenticTimestamp was set to \"log\"",
            "CN=testcert7",
        ],
    );
}

/// notation's e2e timestamped image: its token is Microsoft's public TSA's (a fractional-second
/// genTime, read to the millisecond), whose root is in neither of notation's e2e `tsa` roots
/// (GlobalSign R6, DigiCert G4): notation refuses it at the token's signature, and so does vouch.
/// Revocation fetching is off all the same: tests never leave loopback.
#[test]
fn e2e_timestamped_signature_from_an_untrusted_tsa_is_refused_at_the_token() {
    let sig = timestamped_signature_result("e2e-with-timestamped-signature");
    assert_eq!(
        sig["error"],
        "authenticTimestamp validation failed: failed to verify the timestamp countersignature with error: failed to verify signed token: cms verification failure: x509: certificate signed by unknown authority",
        "{sig}"
    );
    assert!(sig.get("timestamp").is_none(), "{sig}");
    // notation's e2e image whose token is 8 bytes of garbage: refused at parsing.
    let sig = timestamped_signature_result("e2e-with-invalid-timestamped-signature");
    let error = sig["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("authenticTimestamp validation failed: failed to parse timestamp countersignature with error: "),
        "{sig}"
    );
}

/// `vouch verify --output json` of a notation e2e layout under a strict statement with the e2e
/// `tsa` roots and expiry logged (so the timestamp check decides): the first signature's result.
fn timestamped_signature_result(layout: &str) -> serde_json::Value {
    let signer = timestamp_signer(layout);
    let image = format!("{layout}@{}", subject_of(layout));
    let roots = [
        vectors().join("notation-e2e/timestamp/globalsignTSARoot.cer"),
        vectors().join("notation-e2e/timestamp/DigiCertTSARootSHA384.cer"),
    ];
    let stores: &[(&str, &str, &[PathBuf])] = &[
        ("ca", "e2e", &[signer.path().join("signer.der")]),
        ("tsa", "e2e", &roots),
    ];
    // Strict with expiry logged, so the timestamp check is what decides.
    let dir = tempfile::tempdir().unwrap();
    let p = common::policy_file(
        dir.path(),
        r#"{"version":"1.0","trustPolicies":[{"name":"ts","registryScopes":["*"],
        "signatureVerification":{"level":"strict","override":{"expiry":"log"}},
        "trustStores":["ca:e2e","tsa:e2e"],"trustedIdentities":["*"]}]}"#,
    );
    let config = dir.path().join("vouch.yaml");
    std::fs::write(&config, "revocation:\n  fetch: false\n").unwrap();
    let ts = common::trust_store(stores);
    let reg = registry();
    let full = format!("{}/{image}", reg.host);
    let (code, out, err) = outcome(&vouch(&[
        "verify",
        &full,
        "--config",
        config.to_str().unwrap(),
        "--trust-policy",
        p.to_str().unwrap(),
        "--trust-store",
        ts.path().to_str().unwrap(),
        "--insecure-registry",
        &reg.host,
        "--output",
        "json",
    ]));
    assert_eq!(code, 1, "{out}{err}");
    let mut report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    report["results"][0]["signatures"][0].take()
}
