//! Per-signature verification cost: parse the envelope, check integrity (signature, chain
//! rules), authenticity, expiry, timestamp and revocation rules, and the payload match — the
//! work `verify_signature` does for one signature once it is fetched.

#[path = "../tests/common/pki.rs"]
mod pki;

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use futures::executor::block_on;
use time::OffsetDateTime;
use vouch::notation::envelope::{TargetArtifact, MEDIA_TYPE_COSE, MEDIA_TYPE_JWS};
use vouch::notation::revocation::{Checker, RevocationSettings};
use vouch::notation::trust_policy::TrustPolicy;
use vouch::notation::trust_store::TrustStores;
use vouch::notation::verifier::{verify_signature, VerificationContext};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors")
}

struct Case {
    name: &'static str,
    media_type: &'static str,
    envelope: Vec<u8>,
    target: TargetArtifact,
    store: tempfile::TempDir,
}

fn store_with(cert_der_or_pem: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("x509/ca/bench");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("anchor.crt"), cert_der_or_pem).unwrap();
    dir
}

fn cases() -> Vec<Case> {
    let v = vectors();
    let cose = std::fs::read(v.join("notation-go-cose/cose_signature.sig")).unwrap();
    let alpine = std::fs::read(v.join("notation-go-cose/alpine.crt")).unwrap();
    let e2e_layout = v.join("notation-e2e/layouts/e2e-valid-signature/blobs/sha256");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            e2e_layout.join("90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f"),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let jws = std::fs::read(e2e_layout.join(layer)).unwrap();
    let e2e = std::fs::read(v.join("notation-e2e/localkeys/e2e.crt")).unwrap();
    let es256_target = TargetArtifact {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9".into(),
        size: 517,
        annotations: None,
    };
    let id = pki::ca_issued("bench", &rcgen::PKCS_ECDSA_P256_SHA256);
    let es256 = id
        .signer()
        .sign_cose(&es256_target, OffsetDateTime::now_utc(), None)
        .unwrap();
    vec![
        Case {
            name: "COSE PS256 (notation-go vector)",
            media_type: MEDIA_TYPE_COSE,
            envelope: cose,
            target: TargetArtifact {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0"
                    .into(),
                size: 481,
                annotations: None,
            },
            store: store_with(&alpine),
        },
        Case {
            name: "COSE ES256 (leaf + root chain)",
            media_type: MEDIA_TYPE_COSE,
            envelope: es256,
            target: es256_target.clone(),
            store: store_with(&id.anchor_der),
        },
        Case {
            name: "JWS PS256 (notation e2e vector)",
            media_type: MEDIA_TYPE_JWS,
            envelope: jws,
            target: es256_target,
            store: store_with(&e2e),
        },
    ]
}

fn bench(c: &mut Criterion) {
    let policy = Arc::new(
        TrustPolicy::from_json(br#"{"version":"1.0","trustPolicies":[{"name":"b","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:bench"],"trustedIdentities":["*"]}]}"#)
            .unwrap(),
    );
    // The bench chains name no revocation endpoint: nothing is fetched, nothing awaited.
    let revocation = Checker::new(RevocationSettings::default(), None);
    let mut group = c.benchmark_group("verify_signature");
    group
        .sample_size(60)
        .measurement_time(std::time::Duration::from_secs(3))
        .warm_up_time(std::time::Duration::from_secs(1));
    for case in cases() {
        let stores = TrustStores::load(case.store.path(), policy.trust_store_refs()).unwrap();
        let ctx = VerificationContext {
            statement: &policy.statements()[0],
            stores: &stores,
            target: &case.target,
            now: OffsetDateTime::now_utc(),
            revocation: &revocation,
            deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(3600),
        };
        let check = block_on(verify_signature(
            &ctx,
            "sha256:00",
            case.media_type,
            &case.envelope,
        ));
        assert!(check.verified, "{}: {:?}", case.name, check.error);
        group.bench_function(case.name, |b| {
            b.iter(|| {
                block_on(verify_signature(
                    &ctx,
                    "sha256:00",
                    case.media_type,
                    std::hint::black_box(&case.envelope),
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
