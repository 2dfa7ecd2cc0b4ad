//! Envelope reading against notation-made COSE and JWS bytes, our own signatures for the
//! algorithms the vectors lack, and hostile input: every malformed envelope is a clear integrity
//! failure, never a panic.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use coset::cbor::value::Value;
use coset::{iana, CborSerializable, Label, RegisteredLabelWithPrivate, TaggedCborSerializable};
use time::OffsetDateTime;
use vouch::notation::envelope::{self, TargetArtifact, MEDIA_TYPE_COSE, MEDIA_TYPE_JWS};
use vouch::notation::signer::SigningKey;

use common::{pki, vectors};

fn read(path: &str) -> Vec<u8> {
    std::fs::read(vectors().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn target(digest: &str, size: u64, media_type: &str) -> TargetArtifact {
    TargetArtifact {
        media_type: media_type.into(),
        digest: digest.into(),
        size,
        annotations: None,
    }
}

#[test]
fn notation_go_cose_signature_verifies() {
    let env = envelope::parse(
        MEDIA_TYPE_COSE,
        &read("notation-go-cose/cose_signature.sig"),
    )
    .unwrap();
    assert_eq!(
        env.leaf().unwrap().subject(),
        "CN=alpine,O=Notary,L=Seattle,ST=WA,C=US"
    );
    assert_eq!(env.signing_time.unix_timestamp(), 1678769122);
    assert_eq!(env.signing_agent.as_deref(), Some("Notation/1.0.0"));
    let t = env.verify_integrity().expect("integrity");
    assert_eq!(
        t,
        target(
            "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0",
            481,
            "application/vnd.oci.image.manifest.v1+json"
        )
    );
}

#[test]
fn notation_go_timestamped_cose_signatures_verify_and_carry_tokens() {
    for f in [
        "coseWithTimestamp.sig",
        "coseExpiredWithTimestamp.sig",
        "timestampAfterNotAfter.sig",
    ] {
        let env = envelope::parse(MEDIA_TYPE_COSE, &read(&format!("notation-cose/{f}"))).unwrap();
        assert!(
            env.timestamp_token.as_ref().is_some_and(|t| !t.is_empty()),
            "{f}"
        );
        let t = env
            .verify_integrity()
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(
            t.digest,
            "sha256:c0669ef34cdc14332c0f1ab0c2c01acb91d96014b172f1a76f3a39e63d1f0bda"
        );
        assert_eq!(
            t.media_type,
            "application/vnd.docker.distribution.manifest.v2+json"
        );
    }
}

#[test]
fn conformance_envelope_with_unknown_critical_attribute_is_refused() {
    let doc: serde_json::Value =
        serde_json::from_slice(&read("notation-cose/conformance.json")).unwrap();
    let bytes = hex::decode(doc["expectedOutput"]["cborHex"].as_str().unwrap()).unwrap();
    let err = envelope::parse(MEDIA_TYPE_COSE, &bytes).unwrap_err();
    assert!(
        err.contains("unsupported critical header \"signedCritKey1\""),
        "{err}"
    );
    let jws = read("notation-cose/jws-conformance.json");
    let err = envelope::parse(MEDIA_TYPE_JWS, &jws).unwrap_err();
    assert!(err.contains("signedCritKey1"), "{err}");
}

fn e2e_jws() -> Vec<u8> {
    // The envelope of e2e-valid-signature (layer of manifest 90ceaff2…).
    let layout = vectors().join("notation-e2e/layouts/e2e-valid-signature");
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::blob_path(
            &layout,
            "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f",
        ))
        .unwrap(),
    )
    .unwrap();
    std::fs::read(common::blob_path(
        &layout,
        m["layers"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap()
}

#[test]
fn notation_e2e_jws_signature_verifies_with_offset_times() {
    let env = envelope::parse(MEDIA_TYPE_JWS, &e2e_jws()).unwrap();
    assert_eq!(env.signing_time.offset().whole_hours(), 8);
    let t = env.verify_integrity().unwrap();
    assert_eq!(
        t.digest,
        "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
    );
    assert_eq!(t.size, 517);
}

/// Re-sign the e2e JWS with a modified protected header, using e2e.key.
fn resigned_jws(edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> Vec<u8> {
    let mut env: serde_json::Value = serde_json::from_slice(&e2e_jws()).unwrap();
    let protected = URL_SAFE_NO_PAD
        .decode(env["protected"].as_str().unwrap())
        .unwrap();
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&protected).unwrap();
    edit(&mut header);
    let protected = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
    let input = format!("{protected}.{}", env["payload"].as_str().unwrap());
    let key = SigningKey::from_pem(&read("notation-e2e/localkeys/e2e.key")).unwrap();
    let pem = read("notation-e2e/localkeys/e2e.key");
    let (_, p) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let rsa = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&p.contents).unwrap();
    let mut sig = vec![0; rsa.public_modulus_len()];
    rsa.sign(
        &aws_lc_rs::signature::RSA_PSS_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    assert_eq!(key.algorithm().jws_name(), "PS256");
    env["protected"] = protected.into();
    env["signature"] = URL_SAFE_NO_PAD.encode(sig).into();
    serde_json::to_vec(&env).unwrap()
}

#[test]
fn jws_resigned_unchanged_still_verifies() {
    let bytes = resigned_jws(|_| {});
    envelope::parse(MEDIA_TYPE_JWS, &bytes)
        .unwrap()
        .verify_integrity()
        .unwrap();
}

/// An edit of a JWS protected header.
type HeaderEdit = dyn FnOnce(&mut serde_json::Map<String, serde_json::Value>);

#[test]
fn jws_critical_header_rules() {
    let cases: Vec<(Box<HeaderEdit>, &str)> = vec![
        (
            Box::new(|h| {
                h.insert(
                    "crit".into(),
                    serde_json::json!([
                        "io.cncf.notary.signingScheme",
                        "io.cncf.notary.signingTime"
                    ]),
                );
            }),
            "marked critical but not present",
        ),
        (
            Box::new(|h| {
                h.insert("crit".into(), serde_json::json!([]));
            }),
            "missing or empty critical headers",
        ),
        (
            Box::new(|h| {
                h.insert(
                    "crit".into(),
                    serde_json::json!(["io.cncf.notary.signingScheme", "x"]),
                );
                h.insert("x".into(), "y".into());
            }),
            "unsupported critical header \"x\"",
        ),
        (
            Box::new(|h| {
                h.insert(
                    "io.cncf.notary.expiry".into(),
                    "2099-01-01T00:00:00Z".into(),
                );
            }),
            "not marked as critical",
        ),
        (
            Box::new(|h| {
                h.insert(
                    "io.cncf.notary.signingScheme".into(),
                    "notary.x509.fancy".into(),
                );
            }),
            "unsupported signingScheme",
        ),
        (
            Box::new(|h| {
                h.insert("cty".into(), "application/json".into());
            }),
            "payload content type",
        ),
        (
            Box::new(|h| {
                h.insert("alg".into(), "none".into());
            }),
            "\"none\" is not supported",
        ),
        (
            Box::new(|h| {
                h.insert("alg".into(), "ES256".into());
            }),
            "mismatch between signature algorithm",
        ),
        (
            Box::new(|h| {
                h.insert("io.cncf.notary.signingTime".into(), "yesterday".into());
            }),
            "not an RFC 3339 time",
        ),
        (
            Box::new(|h| {
                h.insert("io.cncf.notary.verificationPlugin".into(), "x".into());
            }),
            "verification plugin",
        ),
        (
            Box::new(|h| {
                h.insert(
                    "io.cncf.notary.authenticSigningTime".into(),
                    "2023-01-01T00:00:00Z".into(),
                );
            }),
            "must not be present",
        ),
    ];
    for (edit, want) in cases {
        let bytes = resigned_jws(edit);
        let err = envelope::parse(MEDIA_TYPE_JWS, &bytes)
            .and_then(|e| e.verify_integrity().map(|_| ()))
            .unwrap_err();
        assert!(err.contains(want), "want {want:?}, got {err}");
    }
}

#[test]
fn jws_with_a_tampered_payload_fails_integrity() {
    let mut env: serde_json::Value = serde_json::from_slice(&e2e_jws()).unwrap();
    let other = URL_SAFE_NO_PAD.encode(br#"{"targetArtifact":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","mediaType":"application/vnd.oci.image.manifest.v1+json","size":517}}"#);
    env["payload"] = other.into();
    let err = envelope::parse(MEDIA_TYPE_JWS, &serde_json::to_vec(&env).unwrap())
        .unwrap()
        .verify_integrity()
        .unwrap_err();
    assert!(err.contains("signature is invalid"), "{err}");
    // Padding in base64url is refused, as golang-jwt refuses it.
    let mut env: serde_json::Value = serde_json::from_slice(&e2e_jws()).unwrap();
    env["signature"] = format!("{}==", env["signature"].as_str().unwrap()).into();
    assert!(envelope::parse(MEDIA_TYPE_JWS, &serde_json::to_vec(&env).unwrap()).is_err());
}

#[test]
fn our_cose_signatures_verify_for_every_algorithm() {
    let t = target(
        "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
        517,
        "application/vnd.oci.image.manifest.v1+json",
    );
    let algs = [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_ECDSA_P521_SHA512,
        &rcgen::PKCS_RSA_SHA256,
    ];
    for alg in algs {
        for id in [pki::self_signed("leaf", alg), pki::ca_issued("leaf", alg)] {
            let bytes = id
                .signer()
                .sign_cose(&t, OffsetDateTime::now_utc(), None)
                .unwrap();
            let env = envelope::parse(MEDIA_TYPE_COSE, &bytes).unwrap();
            assert_eq!(env.verify_integrity().unwrap(), t, "{alg:?}");
            assert_eq!(env.chain.len(), id.chain.len());
        }
    }
    // The e2e RSA key, too.
    let key = SigningKey::from_pem(&read("notation-e2e/localkeys/e2e.key")).unwrap();
    let cert_pem = read("notation-e2e/localkeys/e2e.crt");
    let (_, p) = x509_parser::pem::parse_x509_pem(&cert_pem).unwrap();
    let signer = vouch::notation::signer::Signer::new(key, vec![p.contents.clone()]).unwrap();
    let bytes = signer
        .sign_cose(&t, OffsetDateTime::now_utc(), None)
        .unwrap();
    envelope::parse(MEDIA_TYPE_COSE, &bytes)
        .unwrap()
        .verify_integrity()
        .unwrap();
}

fn sample_cose() -> Vec<u8> {
    let t = target(
        "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
        517,
        "application/vnd.oci.image.manifest.v1+json",
    );
    pki::self_signed("leaf", &rcgen::PKCS_ECDSA_P256_SHA256)
        .signer()
        .sign_cose(
            &t,
            OffsetDateTime::now_utc(),
            Some(OffsetDateTime::now_utc() + time::Duration::days(1)),
        )
        .unwrap()
}

#[test]
fn truncated_and_bit_flipped_cose_never_panics_and_never_passes() {
    let good = sample_cose();
    for len in 0..good.len() {
        let r = envelope::parse(MEDIA_TYPE_COSE, &good[..len]).and_then(|e| e.verify_integrity());
        assert!(r.is_err(), "truncated to {len} bytes must fail");
    }
    for i in 0..good.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[i] ^= bit;
            // Must not panic; a flip inside the unsigned parts (signing agent) may still verify.
            let r = envelope::parse(MEDIA_TYPE_COSE, &bad).and_then(|e| e.verify_integrity());
            if let Ok(t) = r {
                assert_eq!(
                    t.digest,
                    "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
                );
            }
        }
    }
}

/// Rebuild the sample envelope with edited headers (signature left as is: these must fail
/// before or at the signature check).
fn edited_cose(edit: impl FnOnce(&mut coset::CoseSign1)) -> Vec<u8> {
    let mut s = coset::CoseSign1::from_tagged_slice(&sample_cose()).unwrap();
    s.protected.original_data = None;
    edit(&mut s);
    s.to_tagged_vec().unwrap()
}

#[test]
fn cose_header_rules() {
    let text = |s: &str| Label::Text(s.into());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            coset::CoseSign1::from_tagged_slice(&sample_cose())
                .unwrap()
                .to_vec()
                .unwrap(),
            "not a tagged COSE_Sign1",
        ),
        (
            edited_cose(|s| {
                s.protected.header.crit.retain(|c| {
                    *c != RegisteredLabelWithPrivate::Text("io.cncf.notary.signingScheme".into())
                })
            }),
            "not marked as critical",
        ),
        (
            edited_cose(|s| {
                s.protected
                    .header
                    .crit
                    .push(RegisteredLabelWithPrivate::Text(
                        "io.example.unknown".into(),
                    ))
            }),
            "missing critical header \"io.example.unknown\"",
        ),
        (
            edited_cose(|s| {
                s.protected
                    .header
                    .crit
                    .push(RegisteredLabelWithPrivate::Text(
                        "io.example.unknown".into(),
                    ));
                s.protected
                    .header
                    .rest
                    .push((text("io.example.unknown"), Value::Bool(true)));
            }),
            "unsupported critical header \"io.example.unknown\"",
        ),
        (
            edited_cose(|s| {
                for (l, v) in s.protected.header.rest.iter_mut() {
                    if *l == text("io.cncf.notary.signingTime") {
                        *v = Value::Tag(0, Box::new(Value::Text("2024-01-01T00:00:00Z".into())));
                    }
                }
            }),
            "only Tag `1`",
        ),
        (
            edited_cose(|s| {
                for (l, v) in s.protected.header.rest.iter_mut() {
                    if *l == text("io.cncf.notary.signingTime") {
                        *v = Value::Integer(5.into());
                    }
                }
            }),
            "only Tag `1`",
        ),
        (
            edited_cose(|s| {
                s.protected.header.content_type =
                    Some(coset::ContentType::Assigned(iana::CoapContentFormat::Json))
            }),
            "content type must be a text string",
        ),
        (
            edited_cose(|s| {
                s.protected.header.alg =
                    Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::EdDSA))
            }),
            "not supported",
        ),
        (
            edited_cose(|s| {
                s.protected.header.alg =
                    Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::PS256))
            }),
            "mismatch between signature algorithm",
        ),
        (
            edited_cose(|s| s.unprotected.rest.retain(|(l, _)| *l != Label::Int(33))),
            "certificate chain is not present",
        ),
        (
            edited_cose(|s| {
                for (l, v) in s.unprotected.rest.iter_mut() {
                    if *l == Label::Int(33) {
                        if let Value::Array(a) = v {
                            *v = a[0].clone();
                        }
                    }
                }
            }),
            "certificate chain is not present",
        ),
        (edited_cose(|s| s.payload = None), "payload is missing"),
        (
            edited_cose(|s| {
                s.protected.header.rest.push((
                    text("io.cncf.notary.verificationPlugin"),
                    Value::Text("p".into()),
                ))
            }),
            "verification plugin",
        ),
        (
            edited_cose(|s| {
                for (l, v) in s.protected.header.rest.iter_mut() {
                    if *l == text("io.cncf.notary.expiry") {
                        *v = Value::Tag(1, Box::new(Value::Integer(0.into())));
                    }
                }
            }),
            "expiry cannot be equal or before the signing time",
        ),
        (edited_cose(|s| s.signature[0] ^= 1), "signature is invalid"),
    ];
    for (bytes, want) in cases {
        let err = envelope::parse(MEDIA_TYPE_COSE, &bytes)
            .and_then(|e| e.verify_integrity().map(|_| ()))
            .unwrap_err();
        assert!(err.contains(want), "want {want:?}, got {err}");
    }
}

#[test]
fn indefinite_length_cose_is_refused() {
    let good = sample_cose();
    // d2 84 -> d2 9f ... ff: same items, indefinite-length array.
    let mut bad = vec![0xd2, 0x9f];
    bad.extend_from_slice(&good[2..]);
    bad.push(0xff);
    let err = envelope::parse(MEDIA_TYPE_COSE, &bad).unwrap_err();
    assert!(
        err.contains("not a tagged COSE_Sign1") || err.contains("indefinite"),
        "{err}"
    );
    let mut bad = good.clone();
    bad[1] = 0x9f;
    bad.push(0xff);
    assert!(envelope::parse(MEDIA_TYPE_COSE, &bad).is_err());
}

#[test]
fn garbage_in_either_format_is_an_integrity_error() {
    for bytes in [
        &b""[..],
        b"{}",
        b"[]",
        b"null",
        b"\xd2\x84",
        b"invalid signature\n",
        &[0xff; 64],
    ] {
        assert!(envelope::parse(MEDIA_TYPE_COSE, bytes).is_err());
        assert!(envelope::parse(MEDIA_TYPE_JWS, bytes).is_err());
    }
    let err = envelope::parse("application/vnd.oci.image.layer.v1.tar", b"x").unwrap_err();
    assert!(
        err.contains("unable to parse the digital signature"),
        "{err}"
    );
}
