//! Issue 12, RFC 3161 timestamps end to end: `vouch verify` of images whose COSE signatures are
//! countersigned by a timestamp authority that is not ours (`openssl ts -reply`, at pretended
//! times through `faketime`), under trust policies with `tsa:` stores and `verifyTimestamp`
//! `always` / `afterCertExpiry`; each outcome asserted with notation's message. The signing
//! identities are rcgen's, with the validity each case needs.

mod common;

use std::process::Command;

use common::crl_server::CrlServer;
use common::fake_registry::{push_image, verify_json, FakeRegistry, State};
use common::pki::{self, Identity};
use common::tsa::{EssCertId, Stamp, Tsa};
use serde_json::Value;
use time::macros::datetime;
use time::OffsetDateTime;
use vouch::notation::signer::{Countersigner, SignOptions};

/// A pretended time at which the TSAs of these tests stamp.
const STAMPED_AT: &str = "2025-03-01 12:00:00";

/// An image in a fake registry signed by an identity (its root in the `ca:signer` store), the
/// trust store beside it, and the temp dir the TSAs of the test live in.
struct Case {
    reg: FakeRegistry,
    dir: tempfile::TempDir,
    image: String,
}

impl Case {
    /// Sign one image by `id` as `options` say; `dir` (holding the test's TSAs) is kept.
    fn sign(dir: tempfile::TempDir, id: &Identity, options: &SignOptions<'_>) -> Case {
        let reg = FakeRegistry::start(State {
            referrers_api: true,
            ..Default::default()
        })
        .expect("fake registry");
        let subject = push_image(&reg, "v1", 1);
        let sig = id
            .signer()
            .sign_artifact_with(&subject, options)
            .expect("sign");
        reg.with(|s| s.put_signature(&sig));
        id.write_store(&dir.path().join("store"), "signer");
        let image = format!("{}/app:v1", reg.host);
        Case { reg, dir, image }
    }

    /// Sign now with a countersignature by `stamp`.
    fn stamped(dir: tempfile::TempDir, id: &Identity, stamp: &Countersigner<'_>) -> Case {
        Self::sign(
            dir,
            id,
            &SignOptions {
                timestamp: Some(stamp),
                ..Default::default()
            },
        )
    }

    /// The trust store root (`ca:signer`, and the `tsa:` stores a test writes).
    fn store(&self) -> std::path::PathBuf {
        self.dir.path().join("store")
    }

    /// Put `tsa`'s root in the store as `tsa:<name>`.
    fn trust_tsa(&self, tsa: &Tsa, name: &str) {
        tsa.write_store(&self.store(), name);
    }

    /// `vouch verify` of the image under `policy`: exit code, the image's result, stderr.
    fn verify(&self, policy: &str) -> (i32, Value, String) {
        let (code, v, err) = verify_json(
            &self.reg,
            self.dir.path(),
            std::slice::from_ref(&self.image),
            policy,
            &self.store(),
            &[],
        );
        (code, v["results"][0].clone(), err)
    }

    /// `vouch verify` of the image under `policy`, its text report.
    fn verify_text(&self, policy: &str) -> String {
        let p = common::policy_file(self.dir.path(), policy);
        let (_, out, err) = common::outcome(&common::vouch_env(
            &[
                "verify",
                &self.image,
                "--trust-policy",
                p.to_str().expect("path"),
                "--trust-store",
                self.store().to_str().expect("path"),
                "--insecure-registry",
                &self.reg.host,
            ],
            &[],
        ));
        format!("{out}{err}")
    }
}

/// A trust policy of one statement for every registry.
fn policy(level: &str, verify_timestamp: &str, stores: &[&str], overrides: &str) -> String {
    serde_json::json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "ts",
            "registryScopes": ["*"],
            "signatureVerification": {
                "level": level,
                "verifyTimestamp": verify_timestamp,
                "override": serde_json::from_str::<Value>(if overrides.is_empty() { "{}" } else { overrides }).expect("overrides"),
            },
            "trustStores": stores,
            "trustedIdentities": ["*"],
        }]
    })
    .to_string()
}

/// The one signature's outcome.
fn signature(result: &Value) -> &Value {
    &result["signatures"][0]
}

/// The signature's error, `""` when there is none.
fn error(result: &Value) -> &str {
    signature(result)["error"].as_str().unwrap_or("")
}

fn signer() -> Identity {
    pki::ca_issued("timestamped signer", &rcgen::PKCS_ECDSA_P256_SHA256)
}

/// A signer whose leaf is valid only from `not_before` to `not_after`.
fn signer_valid(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Identity {
    pki::ca_issued_valid(
        "timestamped signer",
        &rcgen::PKCS_ECDSA_P256_SHA256,
        not_before,
        not_after,
    )
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Verified with exit 0 and no error.
#[track_caller]
fn assert_verified(code: i32, result: &Value, err: &str) {
    assert_eq!(code, 0, "{result:#}{err}");
    assert_eq!(result["verified"], true, "{result:#}");
    assert_eq!(signature(result)["verified"], true, "{result:#}");
}

/// Failed (exit 1) with exactly `message` as the signature's error.
#[track_caller]
fn assert_failed_with(code: i32, result: &Value, message: &str) {
    assert_eq!(code, 1, "{result:#}");
    assert_eq!(result["verified"], false, "{result:#}");
    assert_eq!(error(result), message, "{result:#}");
}

// ---------------------------------------------------------------------------------------------
// The harness itself: what openssl makes is what the cases below say it is.

fn openssl_text(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn the_tsa_makes_tokens_openssl_verifies_at_the_time_asked_for() {
    let dir = tempdir();
    let tsa = Tsa::new(dir.path(), "a");
    assert_eq!(tsa.subject(), "CN=vouch test TSA a,O=vouch-test,C=US");
    assert_eq!(
        tsa.root_subject(),
        "CN=vouch test TSA root a,O=vouch-test,C=US"
    );
    assert!(tsa.root_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let message = dir.path().join("message.bin");
    std::fs::write(&message, b"the signature").unwrap();
    let m = message.to_str().unwrap();
    let root = tsa.root_path();
    let root = root.to_str().unwrap();

    let token_file = |name: &str, token: Vec<u8>| {
        let p = dir.path().join(name);
        std::fs::write(&p, token).unwrap();
        p.to_str().unwrap().to_string()
    };
    let now = token_file("now.der", tsa.stamp(b"the signature").unwrap());
    #[rustfmt::skip]
    let ok = openssl_text(&["ts", "-verify", "-data", m, "-in", &now, "-token_in", "-CAfile", root]);
    assert!(ok.contains("Verification: OK"), "{ok}");
    let text = openssl_text(&["ts", "-reply", "-in", &now, "-token_in", "-text"]);
    assert!(text.contains("Accuracy: 0x01 seconds"), "{text}");
    assert!(text.contains("Hash Algorithm: sha256"), "{text}");

    let then = token_file(
        "then.der",
        tsa.stamp_at(b"the signature", STAMPED_AT).unwrap(),
    );
    let text = openssl_text(&["ts", "-reply", "-in", &then, "-token_in", "-text"]);
    assert!(
        text.contains("Time stamp: Mar  1 12:00:00 2025 GMT"),
        "{text}"
    );
    #[rustfmt::skip]
    let ok = openssl_text(&["ts", "-verify", "-data", m, "-in", &then, "-token_in", "-CAfile", root]);
    assert!(ok.contains("Verification: OK"), "{ok}");

    // The signed attributes: SigningCertificateV2 by default, v1 when asked; both embed the
    // leaf and the root.
    let attrs = |token: &str| {
        #[rustfmt::skip]
        let printed = openssl_text(&["cms", "-cmsout", "-inform", "DER", "-in", token, "-print"]);
        printed
    };
    let v2 = attrs(&now);
    assert!(v2.contains("1.2.840.113549.1.9.16.2.47"), "{v2}");
    assert!(!v2.contains("1.2.840.113549.1.9.16.2.12"), "{v2}");
    assert!(v2.contains("subject: C=US, O=vouch-test, CN=vouch test TSA a"));
    assert!(v2.contains("subject: C=US, O=vouch-test, CN=vouch test TSA root a"));
    let v1 = tsa
        .stamp_with(
            b"the signature",
            &Stamp {
                ess_cert_id: EssCertId::V1,
                ..Default::default()
            },
        )
        .unwrap();
    let v1 = attrs(&token_file("v1.der", v1));
    assert!(v1.contains("1.2.840.113549.1.9.16.2.12"), "{v1}");
    assert!(!v1.contains("1.2.840.113549.1.9.16.2.47"), "{v1}");
}

#[test]
fn the_tsa_crl_lists_the_leaf_once_revoked() {
    let dir = tempdir();
    let tsa = Tsa::with_crl(dir.path(), "c", "http://127.0.0.1:1/tsa.crl");
    let leaf = tsa.leaf_path();
    let text = openssl_text(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("URI:http://127.0.0.1:1/tsa.crl"), "{text}");
    assert!(text.contains("Time Stamping"), "{text}");
    let crl_text = |der: Vec<u8>| {
        let p = dir.path().join("crl.der");
        std::fs::write(&p, der).unwrap();
        openssl_text(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            p.to_str().unwrap(),
            "-noout",
            "-text",
        ])
    };
    let good = crl_text(tsa.crl());
    assert!(good.contains("No Revoked Certificates"), "{good}");
    tsa.revoke_leaf();
    let revoked = crl_text(tsa.crl());
    assert!(revoked.contains("Serial Number: 1001"), "{revoked}");
    assert!(revoked.contains("Key Compromise"), "{revoked}");
}

#[test]
fn a_failing_tsa_says_why() {
    let dir = tempdir();
    let tsa = Tsa::new(dir.path(), "bad");
    let e = tsa.stamp_at(b"x", "not a time").unwrap_err();
    assert!(e.contains("faketime"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Verification.

/// An image signed now by `id` and countersigned by `stamp(tsa, signature)`, where `tsa` is the
/// test's TSA "good", whose root is the `tsa:good` store.
fn by_good_tsa(
    id: &Identity,
    stamp: impl Fn(&Tsa, &[u8]) -> Result<Vec<u8>, String>,
) -> (Case, Tsa) {
    let dir = tempdir();
    let tsa = Tsa::new(dir.path(), "good");
    let case = Case::stamped(dir, id, &|sig| stamp(&tsa, sig));
    case.trust_tsa(&tsa, "good");
    (case, tsa)
}

/// `strict`, `verifyTimestamp` `when`, stores `ca:signer` and `tsa:good`.
fn strict_with_good_tsa(when: &str) -> String {
    strict_with_tsa(when, "tsa:good", "")
}

/// `strict`, `verifyTimestamp` `when`, stores `ca:signer` and `tsa_store`, with `overrides`.
fn strict_with_tsa(when: &str, tsa_store: &str, overrides: &str) -> String {
    policy("strict", when, &["ca:signer", tsa_store], overrides)
}

/// Failed under strict with `authenticTimestamp validation failed: <message>`.
#[track_caller]
fn assert_timestamp_failure(code: i32, result: &Value, message: &str) {
    assert_failed_with(
        code,
        result,
        &format!("authenticTimestamp validation failed: {message}"),
    );
}

#[test]
fn a_token_over_the_signature_verifies_under_strict() {
    let (case, tsa) = by_good_tsa(&signer(), |tsa, sig| tsa.stamp(sig));
    let (code, result, err) = case.verify(&strict_with_good_tsa("always"));
    assert_verified(code, &result, &err);
    let checks = signature(&result)["checks"].as_array().expect("checks");
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "authenticTimestamp" && c["error"].is_null()),
        "{result:#}"
    );
    // What the timestamp said is shown with the signature: when, within what bounds, by whom.
    let shown = &signature(&result)["timestamp"];
    assert_eq!(shown["tsa"], tsa.subject(), "{result:#}");
    let time = |k: &str| {
        time::OffsetDateTime::parse(
            shown[k].as_str().unwrap_or_default(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap_or_else(|e| panic!("{k}: {e}: {result:#}"))
    };
    // The TSA's accuracy is 1 s.
    assert_eq!(time("latest") - time("time"), time::Duration::SECOND);
    assert_eq!(time("time") - time("earliest"), time::Duration::SECOND);
    let age = time::OffsetDateTime::now_utc() - time("time");
    assert!(
        age < time::Duration::minutes(10),
        "token made just now: {result:#}"
    );
    // The text report says it too.
    let text = case.verify_text(&strict_with_good_tsa("always"));
    assert!(
        text.starts_with("VERIFIED ")
            && text.contains(&format!(
                "timestamped {} by {}",
                shown["time"].as_str().unwrap_or_default(),
                tsa.subject()
            )),
        "{text}"
    );
}

#[test]
fn a_token_by_an_untrusted_tsa_fails() {
    let dir = tempdir();
    let tsa = Tsa::new(dir.path(), "signing");
    let other = Tsa::new(dir.path(), "trusted");
    let case = Case::stamped(dir, &signer(), &|sig| tsa.stamp(sig));
    case.trust_tsa(&other, "other");
    let (code, result, _) = case.verify(&strict_with_tsa("always", "tsa:other", ""));
    assert_eq!(code, 1, "{result:#}");
    assert_eq!(
        error(&result),
        "authenticTimestamp validation failed: failed to verify the timestamp countersignature with error: failed to verify signed token: cms verification failure: x509: certificate signed by unknown authority",
        "{result:#}"
    );
}

const MISMATCHED: &str = "failed to get timestamp from timestamp countersignature with error: invalid TSTInfo: mismatched message";

#[test]
fn a_token_over_other_bytes_fails_as_a_mismatched_message() {
    let (case, _) = by_good_tsa(&signer(), |tsa, _sig| tsa.stamp(b"not the signature"));
    let (code, result, _) = case.verify(&strict_with_good_tsa("always"));
    assert_timestamp_failure(code, &result, MISMATCHED);
}

#[test]
fn no_token_with_a_tsa_store_and_always_fails() {
    let dir = tempdir();
    let tsa = Tsa::new(dir.path(), "good");
    let case = Case::sign(dir, &signer(), &SignOptions::default());
    case.trust_tsa(&tsa, "good");
    let (code, result, _) = case.verify(&strict_with_good_tsa("always"));
    assert_timestamp_failure(
        code,
        &result,
        "no timestamp countersignature was found in the signature envelope",
    );
}

#[test]
fn a_token_before_the_signing_certificate_was_valid_fails() {
    let id = signer_valid(
        datetime!(2025-06-01 00:00:00 UTC),
        datetime!(2036-01-01 00:00:00 UTC),
    );
    let (case, _) = by_good_tsa(&id, |tsa, sig| tsa.stamp_at(sig, STAMPED_AT));
    let (code, result, _) = case.verify(&strict_with_good_tsa("always"));
    let subject = id.subject();
    assert_timestamp_failure(
        code,
        &result,
        &format!(
            r#"timestamp can be before certificate "{subject}" validity period, it will be valid from "Sun, 01 Jun 2025 00:00:00 +0000""#
        ),
    );
}

#[test]
fn a_token_after_the_signing_certificate_expired_fails() {
    let id = signer_valid(
        datetime!(2020-01-01 00:00:00 UTC),
        datetime!(2024-01-01 00:00:00 UTC),
    );
    let (case, _) = by_good_tsa(&id, |tsa, sig| tsa.stamp_at(sig, STAMPED_AT));
    let subject = id.subject();
    for when in ["always", "afterCertExpiry"] {
        let (code, result, _) = case.verify(&strict_with_good_tsa(when));
        assert_timestamp_failure(
            code,
            &result,
            &format!(
                r#"timestamp can be after certificate "{subject}" validity period, it was expired at "Mon, 01 Jan 2024 00:00:00 +0000""#
            ),
        );
    }
}

/// A certificate that has expired since, a signature made (and stamped) while it was valid.
fn expired_but_stamped_in_time(tsa: &Tsa, dir: tempfile::TempDir) -> (Case, Identity) {
    let id = signer_valid(
        datetime!(2024-01-01 00:00:00 UTC),
        datetime!(2025-06-01 00:00:00 UTC),
    );
    let stamp = |sig: &[u8]| tsa.stamp_at(sig, STAMPED_AT);
    let case = Case::sign(
        dir,
        &id,
        &SignOptions {
            signing_time: Some(datetime!(2025-03-01 12:00:00 UTC)),
            expiry: None,
            timestamp: Some(&stamp),
        },
    );
    (case, id)
}

#[test]
fn an_expired_certificate_verifies_by_a_token_made_while_it_was_valid() {
    let dir = tempdir();
    let tsa = Tsa::new(dir.path(), "good");
    let (case, _) = expired_but_stamped_in_time(&tsa, dir);
    case.trust_tsa(&tsa, "good");
    for when in ["afterCertExpiry", "always"] {
        let (code, result, err) = case.verify(&strict_with_good_tsa(when));
        assert_verified(code, &result, &err);
    }
}

#[test]
fn an_expired_certificate_without_a_tsa_store_fails_at_verification_time() {
    let dir = tempdir();
    let tsa = Tsa::new(dir.path(), "good");
    let (case, id) = expired_but_stamped_in_time(&tsa, dir);
    let (code, result, _) = case.verify(&policy("strict", "afterCertExpiry", &["ca:signer"], ""));
    let subject = id.subject();
    assert_timestamp_failure(
        code,
        &result,
        &format!(
            r#"verification time is after certificate "{subject}" validity period, it was expired at "Sun, 01 Jun 2025 00:00:00 +0000""#
        ),
    );
}

#[test]
fn after_cert_expiry_does_not_look_at_the_token_of_a_valid_certificate() {
    let dir = tempdir();
    let tsa = Tsa::new(dir.path(), "good");
    // A token no verifier could accept: over other bytes, by a TSA nobody trusts.
    let case = Case::stamped(dir, &signer(), &|_sig| tsa.stamp(b"not the signature"));
    let other = Tsa::new(case.dir.path(), "other");
    case.trust_tsa(&other, "other");
    let (code, result, err) = case.verify(&strict_with_tsa("afterCertExpiry", "tsa:other", ""));
    assert_verified(code, &result, &err);
}

#[test]
fn a_v1_signing_certificate_attribute_is_refused() {
    let v1 = Stamp {
        ess_cert_id: EssCertId::V1,
        ..Default::default()
    };
    let (case, _) = by_good_tsa(&signer(), |tsa, sig| tsa.stamp_with(sig, &v1));
    let (code, result, _) = case.verify(&strict_with_good_tsa("always"));
    assert_timestamp_failure(code, &result, "failed to verify the timestamp countersignature with error: failed to verify signed token: failed to get SigningCertificateV2 from signed attributes: attribute not found");
}

#[test]
fn a_bad_token_is_logged_under_permissive() {
    let (case, _) = by_good_tsa(&signer(), |tsa, _sig| tsa.stamp(b"not the signature"));
    let (code, result, err) = case.verify(&policy(
        "permissive",
        "always",
        &["ca:signer", "tsa:good"],
        "",
    ));
    assert_verified(code, &result, &err);
    let warning =
        format!(r#"authenticTimestamp was set to "log" and failed with error: {MISMATCHED}"#);
    let warnings = signature(&result)["warnings"].as_array().expect("warnings");
    assert!(warnings.iter().any(|w| *w == *warning), "{result:#}");
}

// ---------------------------------------------------------------------------------------------
// The TSA chain's revocation: its leaf names a CRL distribution point on a loopback port of
// this test's; `openssl ca -gencrl` makes the CRLs.

/// A TSA whose CRL the returned server serves, and an image stamped by it.
fn crl_case() -> (Case, Tsa, CrlServer) {
    let server = CrlServer::start(0);
    let dir = tempdir();
    let tsa = Tsa::with_crl(dir.path(), "crl", &server.url("tsa.crl"));
    server.serve("tsa.crl", tsa.crl());
    let case = Case::stamped(dir, &signer(), &|sig| tsa.stamp(sig));
    case.trust_tsa(&tsa, "crl");
    (case, tsa, server)
}

#[test]
fn a_tsa_leaf_listed_on_no_crl_verifies_and_its_crl_was_fetched() {
    let (case, _tsa, server) = crl_case();
    let (code, result, err) = case.verify(&strict_with_tsa("always", "tsa:crl", ""));
    assert_verified(code, &result, &err);
    assert!(
        server.requests().iter().any(|p| p == "/tsa.crl"),
        "{:?}",
        server.requests()
    );
}

#[test]
fn a_revoked_tsa_leaf_fails_the_timestamp_even_when_revocation_is_skipped() {
    let (case, tsa, server) = crl_case();
    tsa.revoke_leaf();
    server.serve("tsa.crl", tsa.crl());
    let subject = tsa.subject();
    for overrides in ["", r#"{"revocation":"skip"}"#] {
        let (code, result, _) = case.verify(&strict_with_tsa("always", "tsa:crl", overrides));
        assert_timestamp_failure(
            code,
            &result,
            &format!(r#"timestamping certificate with subject "{subject}" is revoked"#),
        );
    }
}

#[test]
fn an_unreachable_tsa_crl_leaves_the_timestamp_unknown() {
    let (case, tsa, server) = crl_case();
    drop(server);
    let (code, result, _) = case.verify(&strict_with_tsa("always", "tsa:crl", ""));
    let subject = tsa.subject();
    assert_timestamp_failure(
        code,
        &result,
        &format!(
            r#"timestamping certificate with subject "{subject}" revocation status is unknown"#
        ),
    );
}
