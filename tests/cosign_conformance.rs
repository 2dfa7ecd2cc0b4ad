//! Sigstore bundles that sign blobs, not images we could push, verified at the layer they
//! exercise: [`vouch::cosign::verify_found`] on a [`Found::Bundle`] against the artifact's
//! digest, under a `cosign:` rule with the trusted root and identity the case states
//! (`../shared/vectors/cosign/README.md`, sections 2 and 4). Every case has the outcome its
//! source asserts; a negative case must fail at the check it is negative for.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine;
use common::cosign::vector;
use serde_json::Value;
use vouch::cosign::discovery::Found;
use vouch::cosign::{verify_found, CosignPolicy, CosignRuleConfig, KeylessConfig};
use vouch::notation::verifier::SignatureOutcome;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// SHA-256 of `bundle-verify/a.txt`, the artifact every conformance case signs.
const A_TXT: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
/// The conformance suite's default identity and issuer.
const BEACON: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const GITHUB_ACTIONS: &str = "https://token.actions.githubusercontent.com";
const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
/// Every check a keyless bundle passes.
const KEYLESS_CHECKS: &[&str] = &[
    "signature",
    "certificateChain",
    "certificateValidity",
    "sct",
    "transparencyLog",
    "identity",
    "issuer",
    "payloadDigest",
];

fn case(name: &str) -> PathBuf {
    vector("sigstore-conformance/bundle-verify").join(name)
}

fn production_root() -> PathBuf {
    vector("sigstore-conformance/default-trusted-root/production/trusted_root.json")
}

/// A one-rule policy: keyless `identity` (exact subject and issuer) or `key`, with `root`.
fn policy(
    keyless: Option<(&str, &str)>,
    key: Option<&Path>,
    root: &Path,
    predicate_types: &[&str],
) -> CosignPolicy {
    let rule = CosignRuleConfig {
        registry_scopes: vec!["*".into()],
        level: None,
        keys: key.into_iter().map(Path::to_path_buf).collect(),
        keyless: keyless
            .into_iter()
            .map(|(subject, issuer)| KeylessConfig {
                subject: Some(subject.into()),
                subject_reg_exp: None,
                issuer: Some(issuer.into()),
                issuer_reg_exp: None,
            })
            .collect(),
        trusted_root: Some(root.to_path_buf()),
        predicate_types: predicate_types.iter().map(|p| p.to_string()).collect(),
    };
    CosignPolicy::load(&[rule]).expect("the rule loads")
}

/// The bundle `bytes` verified under the policy's rule against `digest`.
fn verify(policy: &CosignPolicy, bytes: &[u8], digest: &str) -> SignatureOutcome {
    let doc: Value = serde_json::from_slice(bytes).expect("bundle JSON");
    let found = Found::Bundle {
        manifest: format!("sha256:{}", "0".repeat(64)),
        media_type: doc["mediaType"].as_str().unwrap_or_default().to_string(),
        bytes: bytes.to_vec(),
    };
    verify_found(&policy.rules()[0], &found, digest)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check_names(o: &SignatureOutcome) -> Vec<String> {
    o.checks
        .iter()
        .filter(|c| c.error.is_none())
        .filter_map(|c| c.name.as_deref().map(str::to_string))
        .collect()
}

#[track_caller]
fn assert_passed(o: &SignatureOutcome, checks: &[&str]) {
    assert!(o.verified, "expected a pass: {:?} {:?}", o.error, o.checks);
    assert!(o.error.is_none());
    let names = check_names(o);
    for c in checks {
        assert!(
            names.iter().any(|n| n == c),
            "check {c} not passed: {names:?}"
        );
    }
}

/// Failed at check `check` (the outcome's failing check and its `cosign <check>: …` error),
/// the error containing `detail`.
#[track_caller]
fn assert_failed(o: &SignatureOutcome, check: &str, detail: &str) {
    assert!(!o.verified, "expected a failure at {check}: {:?}", o.checks);
    let error = o.error.as_deref().unwrap_or_default();
    let failed: Vec<&str> = o
        .checks
        .iter()
        .filter(|c| c.error.is_some())
        .filter_map(|c| c.name.as_deref())
        .collect();
    assert_eq!(failed, [check], "{error}");
    assert!(
        error.starts_with(&format!("cosign {check}: ")) && error.contains(detail),
        "expected cosign {check}: …{detail}… in {error:?}"
    );
}

/// Every conformance case in the vectors is judged here, with the outcome its name states
/// (`_fail` must fail, any other must pass), and each negative one fails at the check its
/// README says it is negative for.
#[test]
fn sigstore_conformance_bundle_verify_cases() {
    // (case, expected: None = pass, Some((check, detail)) = the failing check)
    let cases: [(&str, Option<(&str, &str)>); 9] = [
        ("happy-path-v0.1", None),
        ("happy-path-v0.3", None),
        ("happy-path-intoto-in-dsse-v3", None),
        ("managed-key-happy-path", None),
        (
            "set-invalid-signature_fail",
            Some(("transparencyLog", "SET verification failed")),
        ),
        (
            "checkpoint-wrong-roothash_fail",
            Some(("transparencyLog", "does not match checkpoint root hash")),
        ),
        (
            "inclusion-proof-corrupted-hash_fail",
            Some(("transparencyLog", "inclusion proof verification failed")),
        ),
        (
            "dsse-mismatch-sig_fail",
            Some((
                "transparencyLog",
                "does not match any signature in Rekor entry",
            )),
        ),
        (
            "invalid-ct-key_fail",
            Some(("sct", "SCT signature verification failed")),
        ),
    ];
    let mut on_disk: Vec<String> = std::fs::read_dir(vector("sigstore-conformance/bundle-verify"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = cases.iter().map(|(c, _)| c.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every case in the vectors is judged here");

    for (name, expected) in cases {
        assert_eq!(name.ends_with("_fail"), expected.is_some(), "{name}");
        let dir = case(name);
        let root = Some(dir.join("trusted_root.json"))
            .filter(|p| p.exists())
            .unwrap_or_else(production_root);
        let key = Some(dir.join("key.pub")).filter(|p| p.exists());
        // The suite passes the key instead of the identity when the case has one.
        let identity = key.is_none().then_some((BEACON, GITHUB_ACTIONS));
        let p = policy(identity, key.as_deref(), &root, &[SLSA_V1]);
        let o = verify(&p, &read(&dir.join("bundle.sigstore.json")), A_TXT);
        match expected {
            None if key.is_some() => {
                assert_passed(&o, &["signature", "transparencyLog", "payloadDigest"]);
                assert!(o.signer.as_deref().unwrap().ends_with("key.pub"), "{name}");
            }
            None => {
                assert_passed(&o, KEYLESS_CHECKS);
                assert_eq!(o.signer.as_deref(), Some(BEACON), "{name}");
                assert_eq!(o.issuer.as_deref(), Some(GITHUB_ACTIONS), "{name}");
                assert!(o.log_entry.is_some(), "{name}");
            }
            Some((check, detail)) => assert_failed(&o, check, detail),
        }
        // Another artifact: no case verifies it.
        let other = format!("sha256:{}", "1".repeat(64));
        let o = verify(&p, &read(&dir.join("bundle.sigstore.json")), &other);
        assert!(!o.verified, "{name} verified for another artifact");
    }
}

/// The happy path's integrated time proves when its (long expired) certificate was used, and
/// the log entry recorded is the one verified.
#[test]
fn conformance_log_entries_and_times() {
    let p = policy(
        Some((BEACON, GITHUB_ACTIONS)),
        None,
        &production_root(),
        &[],
    );
    let o = verify(
        &p,
        &read(&case("happy-path-v0.1").join("bundle.sigstore.json")),
        A_TXT,
    );
    assert_passed(&o, &["certificateValidity"]);
    assert_eq!(o.log_entry.as_ref().unwrap().integrated_time, 1689177396);
    assert_eq!(o.signing_time.unwrap().unix_timestamp(), 1689177396);
    let key = case("managed-key-happy-path").join("key.pub");
    let p = policy(None, Some(&key), &production_root(), &[]);
    let o = verify(
        &p,
        &read(&case("managed-key-happy-path").join("bundle.sigstore.json")),
        A_TXT,
    );
    assert_passed(&o, &["transparencyLog"]);
    assert_eq!(o.log_entry.as_ref().unwrap().integrated_time, 1766077479);
}

/// The signing time shown is one the verifier authenticated: without its SET, the managed-key
/// bundle's `integratedTime` (rewritten to 1970) is covered by nothing — the inclusion proof
/// authenticates the entry's body only — so the verified RFC 3161 time is shown instead.
#[test]
fn an_unauthenticated_integrated_time_is_not_the_signing_time() {
    let dir = case("managed-key-happy-path");
    let mut doc: Value = serde_json::from_slice(&read(&dir.join("bundle.sigstore.json"))).unwrap();
    let entry = &mut doc["verificationMaterial"]["tlogEntries"][0];
    entry.as_object_mut().unwrap().remove("inclusionPromise");
    entry["integratedTime"] = Value::String("1".into());
    let p = policy(None, Some(&dir.join("key.pub")), &production_root(), &[]);
    let o = verify(&p, doc.to_string().as_bytes(), A_TXT);
    assert_passed(&o, &["transparencyLog"]);
    let shown = o.signing_time.expect("the RFC 3161 time").unix_timestamp();
    assert!((shown - 1766077479).abs() < 3600, "signing time {shown}");
}

/// The conformance cases under the wrong identity, issuer or key: refused at that check.
#[test]
fn conformance_cases_under_another_identity_or_key() {
    let bundle = read(&case("happy-path-v0.3").join("bundle.sigstore.json"));
    let p = policy(
        Some(("https://github.com/example/example", GITHUB_ACTIONS)),
        None,
        &production_root(),
        &[],
    );
    assert_failed(&verify(&p, &bundle, A_TXT), "identity", BEACON);
    let p = policy(
        Some((BEACON, "https://accounts.google.com")),
        None,
        &production_root(),
        &[],
    );
    assert_failed(&verify(&p, &bundle, A_TXT), "issuer", GITHUB_ACTIONS);
    // The DSSE happy path's SLSA provenance is not a cosign signature unless the rule says so.
    let dsse = read(&case("happy-path-intoto-in-dsse-v3").join("bundle.sigstore.json"));
    let p = policy(
        Some((BEACON, GITHUB_ACTIONS)),
        None,
        &production_root(),
        &[],
    );
    assert_failed(&verify(&p, &dsse, A_TXT), "payload", SLSA_V1);
    // The managed-key bundle with another key.
    let managed = read(&case("managed-key-happy-path").join("bundle.sigstore.json"));
    let other = vector("containers-image/cosign.pub");
    let p = policy(None, Some(&other), &production_root(), &[]);
    assert_failed(&verify(&p, &managed, A_TXT), "signature", "");
    // A keyless rule is not satisfied by a keyed bundle, nor a keyed rule by a keyless one.
    let p = policy(
        Some((BEACON, GITHUB_ACTIONS)),
        None,
        &production_root(),
        &[],
    );
    assert_failed(
        &verify(&p, &managed, A_TXT),
        "signature",
        "the rule has no keys",
    );
    let p = policy(None, Some(&other), &production_root(), &[]);
    assert_failed(
        &verify(&p, &bundle, A_TXT),
        "signature",
        "no keyless identities",
    );
}

/// `sigstore-rs/bundle_v03.json`: how `cosign sign` (v3) signs an image, judged against the
/// digest its statement names (the image's manifest is not in the vectors).
#[test]
fn cosign_v3_image_signature_bundle() {
    const SUBJECT: &str = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
    const SAN: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
    let bundle = read(&vector("sigstore-rs/bundle_v03.json"));
    let root = vector("sigstore-rs/sigstore_trusted_root.json");
    let p = policy(Some((SAN, GITHUB_ACTIONS)), None, &root, &[]);
    let o = verify(&p, &bundle, SUBJECT);
    assert_passed(&o, KEYLESS_CHECKS);
    let entry = o.log_entry.as_ref().unwrap();
    assert_eq!(entry.log_index, 1261105807);
    assert_eq!(entry.integrated_time, 1775719409);
    assert_eq!(
        entry.log_id,
        "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
    );
    assert_eq!(o.signer.as_deref(), Some(SAN));

    // `correct_digest` / `wrong_digest`.
    let zero = format!("sha256:{}", "0".repeat(64));
    assert_failed(
        &verify(&p, &bundle, &zero),
        "payloadDigest",
        "does not match",
    );

    // `from_sigstore_bundle_rekor_verification_cases`: another key under the Rekor log ID.
    let dir = tempfile::tempdir().unwrap();
    let mut doc: Value = serde_json::from_slice(&read(&root)).unwrap();
    let pem = std::fs::read_to_string(vector("containers-image/cosign.pub")).unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    for t in doc["tlogs"].as_array_mut().unwrap() {
        t["publicKey"]["rawBytes"] = Value::String(der.clone());
    }
    let other_rekor = dir.path().join("other-rekor.json");
    std::fs::write(&other_rekor, doc.to_string()).unwrap();
    let p2 = policy(Some((SAN, GITHUB_ACTIONS)), None, &other_rekor, &[]);
    assert!(!verify(&p2, &bundle, SUBJECT).verified);
    // No Rekor log at all: fail closed.
    doc["tlogs"] = Value::Array(vec![]);
    let no_rekor = dir.path().join("no-rekor.json");
    std::fs::write(&no_rekor, doc.to_string()).unwrap();
    let p3 = policy(Some((SAN, GITHUB_ACTIONS)), None, &no_rekor, &[]);
    assert!(!verify(&p3, &bundle, SUBJECT).verified);

    // `from_sigstore_bundle_rejects_unexpected_types` and the DSSE signature count.
    let mut doc: Value = serde_json::from_slice(&bundle).unwrap();
    let statement = |doc: &Value| -> Value {
        serde_json::from_slice(
            &B64.decode(doc["dsseEnvelope"]["payload"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let mut other_predicate = doc.clone();
    let mut s = statement(&doc);
    s["predicateType"] = Value::String("https://example.com/other".into());
    other_predicate["dsseEnvelope"]["payload"] = Value::String(B64.encode(s.to_string()));
    assert_failed(
        &verify(&p, other_predicate.to_string().as_bytes(), SUBJECT),
        "payload",
        "https://example.com/other",
    );
    let mut json_payload = doc.clone();
    json_payload["dsseEnvelope"]["payloadType"] = Value::String("application/json".into());
    assert!(!verify(&p, json_payload.to_string().as_bytes(), SUBJECT).verified);
    let sig = doc["dsseEnvelope"]["signatures"][0].clone();
    doc["dsseEnvelope"]["signatures"] = Value::Array(vec![sig.clone(), sig]);
    assert!(!verify(&p, doc.to_string().as_bytes(), SUBJECT).verified);
    doc["dsseEnvelope"]["signatures"] = Value::Array(vec![]);
    assert!(!verify(&p, doc.to_string().as_bytes(), SUBJECT).verified);
}

/// `sigstore-rs/npm_slsa_bundle_v03.json`: an npm provenance bundle whose only subject digest
/// is SHA-512 (`mod npm_provenance` of the sigstore crate).
#[test]
fn npm_provenance_bundle_with_a_sha512_subject() {
    const SHA512: &str = "849a897e81bf7b8a8541a6ae40bd3473a27a16b1cb0462ad905bd6dc96d34881053a12eb4a375233f81677fc9439f628fe0b0445e8535c60b5559597fbd5f80e";
    const SAN: &str =
        "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main";
    let bundle = read(&vector("sigstore-rs/npm_slsa_bundle_v03.json"));
    let root = vector("sigstore-rs/sigstore_trusted_root.json");
    let p = policy(Some((SAN, GITHUB_ACTIONS)), None, &root, &[SLSA_V1]);
    // `verifies_sha512_only_subject` (the certificate expired long ago; judged at the entry).
    let o = verify(&p, &bundle, &format!("sha512:{SHA512}"));
    assert_passed(
        &o,
        &[
            "certificateChain",
            "certificateValidity",
            "sct",
            "transparencyLog",
            "identity",
            "payloadDigest",
        ],
    );
    assert_eq!(o.log_entry.as_ref().unwrap().integrated_time, 1780347770);
    // `rejects_wrong_sha512_digest`, `sha256_digest_does_not_match_sha512_subject`.
    let zero = format!("sha512:{}", "0".repeat(128));
    assert_failed(&verify(&p, &bundle, &zero), "payloadDigest", "");
    let sha256 = format!("sha256:{}", &SHA512[..64]);
    assert_failed(&verify(&p, &bundle, &sha256), "payloadDigest", "");
    // `rejects_mismatched_identity`.
    let p = policy(
        Some(("https://github.com/example/example", GITHUB_ACTIONS)),
        None,
        &root,
        &[SLSA_V1],
    );
    assert_failed(
        &verify(&p, &bundle, &format!("sha512:{SHA512}")),
        "identity",
        SAN,
    );
}
