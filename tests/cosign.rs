//! cosign (Sigstore) signatures, end to end: the cosign-made vectors of
//! `../shared/vectors/cosign` laid out in the fake registry as cosign lays them out (legacy
//! `sha256-<hex>.sig` manifests, bundle referrers), verified by `vouch verify` and the webhook,
//! each negative case refused with a message naming the check; and `signatures: any|all`.

mod common;

use std::path::Path;

use base64::Engine;
use common::cosign::{
    attach_bundle, public_good_root, push_empty_image, push_signed, vector, Layer,
};
use common::fake_registry::{put_image, put_signed_image, FakeRegistry, State};
use common::pki::{Ca, Endpoints, Identity};
use serde_json::Value;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

struct World {
    reg: FakeRegistry,
    dir: tempfile::TempDir,
    notation: Identity,
}

impl World {
    fn new() -> World {
        let reg = FakeRegistry::start(State {
            referrers_api: true,
            ..Default::default()
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let notation = Ca::root("cosign test notation root").signer(
            "notation signer",
            7,
            Endpoints {
                crl: None,
                ocsp: None,
            },
        );
        notation.write_store(&dir.path().join("store"), "test");
        World { reg, dir, notation }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// `vouch verify -o json` with the trust policy whose only statement has `notation_scope`
    /// and the config `config` (YAML; `VEC` is the vectors' cosign folder): code, results.
    fn verify(&self, images: &[&str], notation_scope: &str, config: &str) -> (i32, Vec<Value>) {
        self.verify_at("strict", images, notation_scope, config)
    }

    /// [`World::verify`] with the Notation statement at `level`.
    fn verify_at(
        &self,
        level: &str,
        images: &[&str],
        notation_scope: &str,
        config: &str,
    ) -> (i32, Vec<Value>) {
        let policy = format!(
            r#"{{"version":"1.0","trustPolicies":[{{"name":"notation","registryScopes":["{notation_scope}"],"signatureVerification":{{"level":"{level}"}},"trustStores":["ca:test"],"trustedIdentities":["*"]}}]}}"#
        );
        std::fs::write(self.path("policy.json"), policy).unwrap();
        let config = config.replace("VEC", &vector("").display().to_string());
        std::fs::write(self.path("config.yaml"), config).unwrap();
        let config = self.path("config.yaml");
        let (code, v, _) = common::verify_json(
            images,
            &self.dir.path().join("policy.json"),
            &self.dir.path().join("store"),
            &self.reg.host,
            &["--config", &config],
            &[],
        );
        (code, v["results"].as_array().unwrap().clone())
    }
}

fn result<'a>(results: &'a [Value], image: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["image"] == image)
        .unwrap_or_else(|| panic!("no result for {image}"))
}

#[track_caller]
fn assert_verified(results: &[Value], image: &str) -> Value {
    let r = result(results, image);
    assert_eq!(r["verified"], true, "{image}: {r:#}");
    assert_eq!(r["admission"], "allow", "{image}: {r:#}");
    r.clone()
}

/// The image failed with a reason naming the check `check` (`cosign <check>: …`).
#[track_caller]
fn assert_refused(results: &[Value], image: &str, check: &str, detail: &str) {
    let r = result(results, image);
    assert_eq!(r["verified"], false, "{image}: {r:#}");
    assert_eq!(r["admission"], "deny", "{image}: {r:#}");
    let reasons = r["reasons"].to_string();
    assert!(
        reasons.contains(&format!("cosign {check}: ")) && reasons.contains(detail),
        "{image}: expected check {check} ({detail}) in {reasons}"
    );
}

fn verified_signature(r: &Value) -> &Value {
    r["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["verified"] == true)
        .expect("a verified signature")
}

/// Flip one character of the simple-signing payload's docker-reference: the signature no
/// longer covers it.
fn tamper_payload(l: &mut Layer) {
    let text = String::from_utf8(l.payload.clone()).unwrap();
    l.payload = text
        .replacen("192.168.64.2", "192.168.64.3", 1)
        .into_bytes();
    assert_ne!(l.payload, text.as_bytes());
}

#[test]
fn keyed_legacy_signatures() {
    let w = World::new();
    let r = &w.reg;
    let valid = push_signed(r, "valid", "dir-img-cosign-valid", |_| {});
    let two = push_signed(r, "two", "dir-img-cosign-valid-2", |_| {});
    let mixed = push_signed(r, "mixed", "dir-img-cosign-mixed", |_| {});
    let skopeo = push_signed(r, "skopeo", "dir-img-cosign-valid-with-tag", |_| {});
    let other = push_signed(r, "other", "dir-img-cosign-other-attachment", |_| {});
    let modified = push_signed(r, "modified", "dir-img-cosign-modified-manifest", |_| {});
    let tampered = push_signed(r, "tampered", "dir-img-cosign-valid", tamper_payload);
    let wrong_key = push_signed(r, "wrongkey", "dir-img-cosign-key-rekor-valid", |_| {});
    let unsigned = format!("{}/unsigned:v1", r.host);
    put_image(r, "unsigned", "v1", b"no signature");
    let config =
        "cosign:\n  - registryScopes: [\"*\"]\n    keys: [\"VEC/containers-image/cosign.pub\"]\n";
    let images = [
        &valid, &two, &mixed, &skopeo, &other, &modified, &tampered, &wrong_key, &unsigned,
    ];
    let images: Vec<&str> = images.iter().map(|s| s.as_str()).collect();
    let (code, results) = w.verify(&images, "localhost:1/notation", config);
    assert_eq!(code, 1);
    for image in [&valid, &two, &mixed, &skopeo] {
        let v = assert_verified(&results, image);
        let s = verified_signature(&v);
        assert_eq!(s["kind"], "cosign");
        assert_eq!(
            s["envelope"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        assert!(s["signer"].as_str().unwrap().ends_with("cosign.pub"), "{s}");
        let names: Vec<&str> = s["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["signature", "payload", "payloadDigest"]);
        assert_eq!(v["policy"], "cosign[0]");
    }
    // One invalid, one valid: both tried, in order.
    let m = result(&results, &mixed);
    assert_eq!(m["signatures"].as_array().unwrap().len(), 2);
    assert_eq!(m["signatures"][0]["verified"], false);
    let o = result(&results, &other);
    assert!(
        o["reasons"]
            .to_string()
            .contains("no cosign signature found")
            && o["reasons"].to_string().contains("1 .sig attachments"),
        "{o}"
    );
    assert_refused(
        &results,
        &modified,
        "payloadDigest",
        "not the image's digest",
    );
    assert_refused(
        &results,
        &tampered,
        "signature",
        "no configured key verifies",
    );
    assert_refused(
        &results,
        &wrong_key,
        "signature",
        "no configured key verifies",
    );
    assert!(result(&results, &unsigned)["reasons"]
        .to_string()
        .contains("no cosign signature found"));
}

/// The Rekor entry of `dir`'s first signature.
fn rekor_bundle_of(dir: &str) -> String {
    common::cosign::signatures(&vector(&format!("containers-image/{dir}")))[0].annotations
        ["dev.sigstore.cosign/bundle"]
        .clone()
}

#[test]
fn keyed_with_rekor_and_keyless_legacy_signatures() {
    let w = World::new();
    let r = &w.reg;
    let key_rekor = push_signed(r, "key-rekor", "dir-img-cosign-key-rekor-valid", |_| {});
    let fulcio = push_signed(r, "fulcio", "dir-img-cosign-fulcio-rekor-valid", |_| {});
    let tampered = push_signed(
        r,
        "fulcio-tampered",
        "dir-img-cosign-fulcio-rekor-valid",
        tamper_payload,
    );
    // The certificate shown with a (genuine) log entry made after it expired.
    let later = rekor_bundle_of("dir-img-cosign-key-rekor-valid");
    let expired = push_signed(
        r,
        "fulcio-expired",
        "dir-img-cosign-fulcio-rekor-valid",
        |l| {
            l.annotations
                .insert("dev.sigstore.cosign/bundle".into(), later.clone());
        },
    );
    let no_set = push_signed(r, "key-no-set", "dir-img-cosign-key-rekor-valid", |l| {
        l.annotations.remove("dev.sigstore.cosign/bundle");
    });
    let bad_set = push_signed(r, "bad-set", "dir-img-cosign-fulcio-rekor-valid", |l| {
        let mut b: Value =
            serde_json::from_str(&l.annotations["dev.sigstore.cosign/bundle"]).unwrap();
        b["SignedEntryTimestamp"] = Value::String(B64.encode(b"not the log's signature"));
        l.annotations
            .insert("dev.sigstore.cosign/bundle".into(), b.to_string());
    });
    // Rules per repository: the right identity, a wrong identity, a wrong issuer, regular
    // expressions, and a trusted root whose Rekor key (same log ID) is another key.
    let other_rekor = other_rekor_root(&w);
    let scope = |repo: &str| format!("{}/{repo}", r.host);
    let config = format!(
        r#"cosign:
  - registryScopes: ["{a}", "{b}", "{c}", "{d}", "{e}", "{f}"]
    keys: ["VEC/containers-image/cosign2.pub"]
    keyless:
      - subject: mitr@redhat.com
        issuer: https://github.com/login/oauth
    trustedRoot: VEC/sigstore-rs/sigstore_trusted_root.json
  - registryScopes: ["{wrong_id}"]
    keyless: [{{subject: this-does-not-match@example.com, issuer: "https://github.com/login/oauth"}}]
    trustedRoot: VEC/sigstore-rs/sigstore_trusted_root.json
  - registryScopes: ["{wrong_issuer}"]
    keyless: [{{subject: mitr@redhat.com, issuer: "https://accounts.google.com"}}]
    trustedRoot: VEC/sigstore-rs/sigstore_trusted_root.json
  - registryScopes: ["{regexp}"]
    keyless: [{{subjectRegExp: "@redhat\\.com$", issuerRegExp: "^https://github\\.com/"}}]
    trustedRoot: VEC/sigstore-rs/sigstore_trusted_root.json
  - registryScopes: ["{other}"]
    keyless: [{{subject: mitr@redhat.com, issuer: "https://github.com/login/oauth"}}]
    trustedRoot: {other_rekor}
"#,
        a = scope("key-rekor"),
        b = scope("fulcio"),
        c = scope("fulcio-tampered"),
        d = scope("fulcio-expired"),
        e = scope("key-no-set"),
        f = scope("bad-set"),
        wrong_id = scope("wrong-id"),
        wrong_issuer = scope("wrong-issuer"),
        regexp = scope("regexp"),
        other = scope("other-rekor"),
    );
    let wrong_id = push_signed(r, "wrong-id", "dir-img-cosign-fulcio-rekor-valid", |_| {});
    let wrong_issuer = push_signed(
        r,
        "wrong-issuer",
        "dir-img-cosign-fulcio-rekor-valid",
        |_| {},
    );
    let regexp = push_signed(r, "regexp", "dir-img-cosign-fulcio-rekor-valid", |_| {});
    let other = push_signed(
        r,
        "other-rekor",
        "dir-img-cosign-fulcio-rekor-valid",
        |_| {},
    );
    let images = [
        &key_rekor,
        &fulcio,
        &tampered,
        &expired,
        &no_set,
        &bad_set,
        &wrong_id,
        &wrong_issuer,
        &regexp,
        &other,
    ];
    let images: Vec<&str> = images.iter().map(|s| s.as_str()).collect();
    let (code, results) = w.verify(&images, "localhost:1/notation", &config);
    assert_eq!(code, 1);

    let k = assert_verified(&results, &key_rekor);
    let s = verified_signature(&k);
    assert_eq!(s["logEntry"]["logIndex"], 11608800);
    assert_eq!(s["logEntry"]["integratedTime"], 1674251859);
    assert_eq!(
        s["logEntry"]["logId"],
        "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
    );
    for image in [&fulcio, &regexp] {
        let f = assert_verified(&results, image);
        let s = verified_signature(&f);
        assert_eq!(s["signer"], "mitr@redhat.com");
        assert_eq!(s["issuer"], "https://github.com/login/oauth");
        assert_eq!(s["logEntry"]["logIndex"], 11605770);
        assert_eq!(s["signingTime"], "2023-01-20T20:51:33Z");
        let names = s["checks"].to_string();
        for check in [
            "certificateChain",
            "sct",
            "transparencyLog",
            "identity",
            "issuer",
            "payloadDigest",
        ] {
            assert!(names.contains(check), "{check} missing from {names}");
        }
    }
    // The keyless .sig path checks the payload against the certificate's key.
    assert_refused(&results, &tampered, "signature", "signature");
    assert_refused(&results, &expired, "certificateValidity", "CertExpired");
    assert_refused(&results, &no_set, "transparencyLog", "no Rekor entry");
    assert_refused(&results, &bad_set, "transparencyLog", "");
    assert_refused(
        &results,
        &wrong_id,
        "identity",
        "this-does-not-match@example.com",
    );
    assert_refused(
        &results,
        &wrong_issuer,
        "issuer",
        "https://github.com/login/oauth",
    );
    assert_refused(&results, &other, "transparencyLog", "");
}

/// The public-good trusted root with its Rekor key (log ID unchanged) replaced by
/// `cosign.pub`: a SET signed by the real Rekor is then signed by another key than the one
/// trusted.
fn other_rekor_root(w: &World) -> String {
    let text = std::fs::read_to_string(public_good_root()).unwrap();
    let mut root: Value = serde_json::from_str(&text).unwrap();
    let pem = std::fs::read_to_string(vector("containers-image/cosign.pub")).unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    for t in root["tlogs"].as_array_mut().unwrap() {
        t["publicKey"]["rawBytes"] = Value::String(der.clone());
    }
    let path = w.path("other-rekor-root.json");
    std::fs::write(&path, root.to_string()).unwrap();
    path
}

#[test]
fn bundle_referrers() {
    let w = World::new();
    let r = &w.reg;
    let bundle = std::fs::read(vector("cosign/oci-attestation.sigstore.json")).unwrap();
    let predicate = "https://cosign.sigstore.dev/attestation/v1";
    let attach = |repo: &str, bytes: &[u8]| {
        let subject = push_empty_image(r, repo);
        attach_bundle(r, subject, bytes, predicate);
        format!("{}/{repo}:latest", r.host)
    };
    let ok = attach("attested", &bundle);
    let not_signature = attach("not-a-signature", &bundle);
    let wrong_subject = attach("wrong-subject", &bundle);
    // The same bundle attached to another image.
    let other = format!("{}/other:v1", r.host);
    let other_desc = put_image(r, "other", "v1", b"another image");
    attach_bundle(
        r,
        serde_json::to_value(&other_desc).unwrap(),
        &bundle,
        predicate,
    );
    let scope = |repo: &str| format!("{}/{repo}", r.host);
    let config = format!(
        r#"cosign:
  - registryScopes: ["{ok}", "{other}"]
    keyless: [{{subjectRegExp: ".*", issuerRegExp: ".*"}}]
    trustedRoot: VEC/cosign/trusted_root_pgi.json
    predicateTypes: ["{predicate}"]
  - registryScopes: ["{not_signature}"]
    keyless: [{{subject: cody@soyland.com, issuer: "https://github.com/login/oauth"}}]
    trustedRoot: VEC/cosign/trusted_root_pgi.json
  - registryScopes: ["{wrong_subject}"]
    keyless: [{{subjectRegExp: "wrong", issuerRegExp: ".*"}}]
    trustedRoot: VEC/cosign/trusted_root_pgi.json
    predicateTypes: ["{predicate}"]
"#,
        ok = scope("attested"),
        other = scope("other"),
        not_signature = scope("not-a-signature"),
        wrong_subject = scope("wrong-subject"),
    );
    let images = [&ok, &not_signature, &wrong_subject, &other];
    let images: Vec<&str> = images.iter().map(|s| s.as_str()).collect();
    let (code, results) = w.verify(&images, "localhost:1/notation", &config);
    assert_eq!(code, 1);
    let v = assert_verified(&results, &ok);
    let s = verified_signature(&v);
    assert_eq!(
        s["envelope"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    assert_eq!(s["signer"], "cody@soyland.com");
    assert_eq!(s["issuer"], "https://github.com/login/oauth");
    assert_eq!(s["logEntry"]["logIndex"], 175508996);
    assert_eq!(s["logEntry"]["integratedTime"], 1740770291);
    assert_refused(&results, &not_signature, "payload", "predicateType");
    assert_refused(&results, &wrong_subject, "identity", "cody@soyland.com");
    assert_refused(&results, &other, "payloadDigest", "");

    // One bit of the inclusion proof flipped (a registry of its own: the fake one lists
    // referrers by subject digest across repositories, and the subject is the same image).
    let w = World::new();
    let mut corrupted: Value = serde_json::from_slice(&bundle).unwrap();
    let hash =
        &mut corrupted["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0];
    let mut bytes = B64.decode(hash.as_str().unwrap()).unwrap();
    bytes[0] ^= 1;
    *hash = Value::String(B64.encode(bytes));
    let subject = push_empty_image(&w.reg, "corrupted");
    attach_bundle(&w.reg, subject, corrupted.to_string().as_bytes(), predicate);
    let image = format!("{}/corrupted:latest", w.reg.host);
    let config = format!(
        "cosign:\n  - registryScopes: [\"*\"]\n    keyless: [{{subjectRegExp: \".*\", issuerRegExp: \".*\"}}]\n    trustedRoot: VEC/cosign/trusted_root_pgi.json\n    predicateTypes: [\"{predicate}\"]\n"
    );
    let (code, results) = w.verify(&[&image], "localhost:1/notation", &config);
    assert_eq!(code, 1);
    assert_refused(&results, &image, "transparencyLog", "inclusion proof");
}

#[test]
fn signatures_any_and_all() {
    let w = World::new();
    let r = &w.reg;
    let both = push_signed(r, "both", "dir-img-cosign-valid", |_| {});
    // Notation signs the same manifest.
    let manifest = std::fs::read(vector(
        "containers-image/dir-img-cosign-valid/manifest.json",
    ))
    .unwrap();
    let desc = vouch::registry::Descriptor {
        media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
        digest: format!("sha256:{}", vouch::registry::sha256_hex(&manifest)),
        size: manifest.len() as u64,
        artifact_type: None,
        annotations: None,
    };
    let sig = w.notation.signer().sign_artifact(&desc, None).unwrap();
    r.with(|s| s.put_signature(&sig));
    // (Another manifest: the fake registry lists referrers by digest across repositories.)
    let cosign_only = push_signed(r, "cosign-only", "dir-img-cosign-key-rekor-valid", |_| {});
    let notation_only = format!("{}/notation-only:v1", r.host);
    put_signed_image(
        r,
        "notation-only",
        "v1",
        b"notation only",
        &w.notation.signer(),
    );
    let neither = format!("{}/neither:v1", r.host);
    put_image(r, "neither", "v1", b"neither");
    let images = [&both, &cosign_only, &notation_only, &neither];
    let images: Vec<&str> = images.iter().map(|s| s.as_str()).collect();
    let rule = "cosign:\n  - registryScopes: [\"*\"]\n    keys: [\"VEC/containers-image/cosign.pub\", \"VEC/containers-image/cosign2.pub\"]\n";

    let (code, results) = w.verify(&images, "*", &format!("{rule}signatures: any\n"));
    assert_eq!(code, 1);
    let b = assert_verified(&results, &both);
    // Judged once: both kinds' outcomes in one verdict.
    let kinds: Vec<&str> = b["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap_or("notation"))
        .collect();
    assert_eq!(kinds, ["notation", "cosign"]);
    assert_eq!(b["policy"], "notation");
    assert_verified(&results, &cosign_only);
    assert_verified(&results, &notation_only);
    let n = result(&results, &neither);
    assert_eq!(n["verified"], false);
    let reasons = n["reasons"].to_string();
    assert!(
        reasons.contains("no Notation signature") && reasons.contains("no cosign signature"),
        "{reasons}"
    );

    let (code, results) = w.verify(&images, "*", &format!("{rule}signatures: all\n"));
    assert_eq!(code, 1);
    assert_verified(&results, &both);
    for image in [&cosign_only, &notation_only, &neither] {
        let v = result(&results, image);
        assert_eq!(v["verified"], false, "{v:#}");
        assert!(v["reasons"].to_string().contains("signatures: all"), "{v}");
    }
    assert!(result(&results, &cosign_only)["reasons"]
        .to_string()
        .contains("no Notation signature"));
    assert!(result(&results, &notation_only)["reasons"]
        .to_string()
        .contains("no cosign signature"));
}

/// With both kinds on a scope, a failure is refused when either level refuses it: a cluster-wide
/// `audit` Notation statement (a rollout) does not relax a team's `strict` cosign rule.
#[test]
fn the_stricter_level_of_the_two_kinds_decides_the_admission() {
    let w = World::new();
    let neither = format!("{}/neither:v1", w.reg.host);
    put_image(&w.reg, "neither", "v1", b"neither");
    let rule = |level: &str| {
        format!("cosign:\n  - registryScopes: [\"*\"]\n    level: {level}\n    keys: [\"VEC/containers-image/cosign.pub\"]\n")
    };
    let (_, results) = w.verify_at("audit", &[&neither], "*", &rule("strict"));
    let v = result(&results, &neither);
    assert_eq!(v["admission"], "deny", "{v:#}");
    assert_eq!(v["policy"], "notation");
    assert!(
        v["level"]
            .as_str()
            .unwrap_or_default()
            .contains("strict (cosign rule"),
        "{v:#}"
    );
    let (_, results) = w.verify_at("audit", &[&neither], "*", &rule("audit"));
    let v = result(&results, &neither);
    assert_eq!(
        v["admission"], "allow",
        "both audit: logged, admitted: {v:#}"
    );
    assert_eq!(v["level"], "audit");
}

#[test]
fn config_errors_are_named() {
    let w = World::new();
    let image = format!("{}/x:v1", w.reg.host);
    let cases = [
        ("cosign:\n  - registryScopes: [\"*\"]\n", "cosign[0]: a rule needs keys"),
        (
            "cosign:\n  - registryScopes: [\"*\"]\n    keyless: [{subject: a, issuer: b}]\n",
            "keyless identities need a trustedRoot",
        ),
        (
            "cosign:\n  - registryScopes: [\"*\"]\n    level: skip\n    keys: [\"VEC/containers-image/cosign.pub\"]\n",
            "level \"skip\"",
        ),
        (
            "cosign:\n  - registryScopes: [\"*\"]\n    keys: [\"VEC/containers-image/fulcio-cert\"]\n",
            "fulcio-cert",
        ),
        (
            "cosign:\n  - registryScopes: [\"*\"]\n    keys: [\"VEC/containers-image/cosign.pub\"]\n    keyless: [{subjectRegExp: \"(\", issuer: b}]\n    trustedRoot: VEC/cosign/trusted_root_pgi.json\n",
            "subjectRegExp",
        ),
        ("signatures: some\n", "signatures"),
    ];
    // A Notation statement may not take the name of the stand-in statement of a cosign rule
    // (`cosign[N]`, which verdicts name): refused at load, whatever the config.
    let reserved = (
        "cosign[0]",
        "cosign:\n  - registryScopes: [\"*\"]\n    keys: [\"VEC/containers-image/cosign.pub\"]\n",
        "trust policy statement name \"cosign[0]\" is reserved",
    );
    let cases = cases.map(|(config, wanted)| ("n", config, wanted));
    for (name, config, wanted) in cases.into_iter().chain([reserved]) {
        std::fs::write(w.path("policy.json"), format!(r#"{{"version":"1.0","trustPolicies":[{{"name":"{name}","registryScopes":["*"],"signatureVerification":{{"level":"strict"}},"trustStores":["ca:test"],"trustedIdentities":["*"]}}]}}"#)).unwrap();
        std::fs::write(
            w.path("config.yaml"),
            config.replace("VEC", &vector("").display().to_string()),
        )
        .unwrap();
        let (p, s, c) = (
            w.path("policy.json"),
            w.path("store"),
            w.path("config.yaml"),
        );
        let (code, _, err) = common::outcome(&common::vouch(&[
            "verify",
            &image,
            "--trust-policy",
            &p,
            "--trust-store",
            &s,
            "--config",
            &c,
        ]));
        assert_eq!(code, 2, "{config}: {err}");
        assert!(
            err.contains(wanted),
            "{config}: expected {wanted:?} in {err}"
        );
    }
}

#[tokio::test]
async fn webhook_admits_cosign_signed_and_names_the_failed_check() {
    let w = World::new();
    let r = &w.reg;
    let valid = push_signed(r, "valid", "dir-img-cosign-valid", |_| {});
    let tampered = push_signed(r, "tampered", "dir-img-cosign-valid", tamper_payload);
    let config = format!(
        "cosign:\n  - registryScopes: [\"*\"]\n    keys: [\"{}\"]\n",
        vector("containers-image/cosign.pub").display()
    );
    let policy = r#"{"version":"1.0","trustPolicies":[{"name":"notation","registryScopes":["localhost:1/notation"],"signatureVerification":{"level":"strict"},"trustStores":["ca:test"],"trustedIdentities":["*"]}]}"#;
    let store = w.dir.path().join("store");
    let hook =
        common::webhook::start_with_store(&[], &r.host, policy, &config, Some(Path::new(&store)))
            .await;
    let allowed = hook
        .review(&common::webhook::pod_review("u1", &[&valid]))
        .await;
    assert_eq!(allowed["allowed"], true, "{allowed:#}");
    let denied = hook
        .review(&common::webhook::pod_review("u2", &[&tampered]))
        .await;
    assert_eq!(denied["allowed"], false, "{denied:#}");
    let message = common::webhook::message(&denied);
    assert!(
        message.contains("cosign signature: no configured key verifies"),
        "{message}"
    );
}

/// cosign layouts the test makes on images pushed into a real docker-registry: a keyed
/// `.sig` manifest signed by a P-256 key the test generates (verified; refused under another
/// key, and when its payload names another digest), and a keyed v0.3 bundle attached as a
/// referrer through the referrers tag (docker-registry has no referrers API): found, and
/// refused because it carries no transparency-log entry — vouch verifies a bundle only
/// against a trustedRoot, and then requires a verified log entry, as cosign does by default.
#[test]
fn keyed_signatures_on_a_real_registry() {
    use common::cosign::{attach_bundle_to, push_sig_to, simple_signing_payload, TestKey};
    const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
    let reg = common::Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::generate(&dir.path().join("release.pub"));
    let other_key = TestKey::generate(&dir.path().join("other.pub"));
    let host = &reg.host;
    let image = |repo: &str, n: usize| {
        let d = reg.push_image_as(repo, n, OCI);
        (format!("{host}/{repo}@{}", d.digest), d)
    };
    // Signed by the key, over its own digest.
    let (signed, signed_desc) = image("signed", 1);
    let layer = key.signed_layer(simple_signing_payload(
        &format!("{host}/signed"),
        &signed_desc.digest,
    ));
    push_sig_to(&reg, "signed", &signed_desc.digest, &[layer]);
    // The same, judged by a rule trusting another key.
    let (wrong_key, wrong_key_desc) = image("wrong-key", 2);
    let layer = key.signed_layer(simple_signing_payload(
        &format!("{host}/wrong-key"),
        &wrong_key_desc.digest,
    ));
    push_sig_to(&reg, "wrong-key", &wrong_key_desc.digest, &[layer]);
    // Signed by the key, but the payload names the first image.
    let (other_digest, other_digest_desc) = image("other-digest", 3);
    let layer = key.signed_layer(simple_signing_payload(
        &format!("{host}/other-digest"),
        &signed_desc.digest,
    ));
    push_sig_to(&reg, "other-digest", &other_digest_desc.digest, &[layer]);
    // Keyed bundles, judged without and with a trusted root.
    let (bundled, bundled_desc) = image("bundled", 4);
    attach_bundle_to(
        &reg,
        "bundled",
        &bundled_desc,
        &key.keyed_bundle(&bundled_desc.digest),
        vouch::cosign::COSIGN_SIGN_PREDICATE,
    );
    let (bundled_root, bundled_root_desc) = image("bundled-root", 5);
    attach_bundle_to(
        &reg,
        "bundled-root",
        &bundled_root_desc,
        &key.keyed_bundle(&bundled_root_desc.digest),
        vouch::cosign::COSIGN_SIGN_PREDICATE,
    );

    let (release, other) = (key.public.display(), other_key.public.display());
    let config = format!(
        r#"cosign:
  - registryScopes: ["{host}/signed", "{host}/other-digest", "{host}/bundled"]
    keys: ["{release}"]
  - registryScopes: ["{host}/wrong-key"]
    keys: ["{other}"]
  - registryScopes: ["{host}/bundled-root"]
    keys: ["{release}"]
    trustedRoot: VEC/sigstore-rs/sigstore_trusted_root.json
"#
    );
    let store = dir.path().join("store");
    common::e2e_trust_store(&store);
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, r#"{"version":"1.0","trustPolicies":[{"name":"notation","registryScopes":["localhost:1/notation"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#).unwrap();
    let config_path = dir.path().join("config.yaml");
    std::fs::write(
        &config_path,
        config.replace("VEC", &vector("").display().to_string()),
    )
    .unwrap();
    let images = [&signed, &wrong_key, &other_digest, &bundled, &bundled_root];
    let images: Vec<&str> = images.iter().map(|s| s.as_str()).collect();
    let config_arg = config_path.display().to_string();
    let (code, v, err) = common::verify_json(
        &images,
        &policy,
        &store,
        host,
        &["--config", &config_arg],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    let results = v["results"].as_array().unwrap();

    let ok = assert_verified(results, &signed);
    let s = verified_signature(&ok);
    assert_eq!(s["kind"], "cosign");
    assert_eq!(s["signer"], format!("key {release}"));
    assert_eq!(ok["policy"], "cosign[0]");
    assert_refused(
        results,
        &wrong_key,
        "signature",
        "no configured key verifies the signature over the payload (1 tried)",
    );
    assert_refused(
        results,
        &other_digest,
        "payloadDigest",
        &format!("not the image's digest {}", other_digest_desc.digest),
    );
    // Found through the referrers tag (not "no cosign signature found"), refused for what it lacks.
    assert_refused(
        results,
        &bundled,
        "trustedRoot",
        "a Sigstore bundle is verified against a trustedRoot",
    );
    assert_refused(
        results,
        &bundled_root,
        "transparencyLog",
        "must have an inclusion proof",
    );
}

/// Key rotation while serving: the key file of a cosign rule replaced, the webhook reloads it
/// (reloadInterval 200ms) and then admits an image signed by the new key and refuses one
/// signed only by the old key (the verdict cache keys carry the key bytes).
#[tokio::test]
async fn webhook_reloads_a_rotated_cosign_key() {
    use common::cosign::{push_sig_to, simple_signing_payload, TestKey};
    const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
    let reg = common::Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("release.pub");
    let old_key = TestKey::generate(&key_file);
    let new_key = TestKey::generate(&dir.path().join("next.pub"));
    let host = reg.host.clone();
    let signed_by = |repo: &str, n: usize, key: &TestKey| {
        let d = reg.push_image_as(repo, n, OCI);
        let payload = simple_signing_payload(&format!("{host}/{repo}"), &d.digest);
        push_sig_to(&reg, repo, &d.digest, &[key.signed_layer(payload)]);
        format!("{host}/{repo}@{}", d.digest)
    };
    let old_signed = signed_by("old", 1, &old_key);
    let new_signed = signed_by("new", 2, &new_key);
    let config = format!(
        "{}cosign:\n  - registryScopes: [\"*\"]\n    keys: [\"{}\"]\n",
        common::webhook::DEFAULT_CONFIG,
        key_file.display()
    );
    let policy = r#"{"version":"1.0","trustPolicies":[{"name":"notation","registryScopes":["localhost:1/notation"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#;
    let hook = common::webhook::start_with_config(&[], &host, policy, &config).await;
    let review = |uid: &str, image: &str| common::webhook::pod_review(uid, &[image]);
    assert_eq!(
        hook.review(&review("a1", &old_signed)).await["allowed"],
        true
    );
    let denied = hook.review(&review("a2", &new_signed)).await;
    assert_eq!(denied["allowed"], false, "{denied:#}");
    assert!(common::webhook::message(&denied).contains("no configured key verifies"));

    // Rotation: the key file now holds the new key.
    std::fs::copy(&new_key.public, &key_file).unwrap();
    let started = std::time::Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let r = hook.review(&review(&format!("b{n}"), &new_signed)).await;
        if r["allowed"] == true {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "the rotated key was never applied: {r:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let refused = hook.review(&review("c1", &old_signed)).await;
    assert_eq!(refused["allowed"], false, "{refused:#}");
    let message = common::webhook::message(&refused);
    assert!(
        message.contains("cosign signature: no configured key verifies"),
        "{message}"
    );
}
