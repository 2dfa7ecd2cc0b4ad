//! Sigstore bundle verification through `sigstore-verify`, for both shapes cosign writes:
//! bundles (v0.1–v0.3) attached as OCI referrers, and legacy `.sig` layers, which are rewritten
//! here into the v0.1 bundle they are equivalent to (signing certificate and chain, the
//! message signature over the payload, the Rekor entry and its signed entry timestamp), so one
//! well-tested implementation checks the Fulcio chain at the proven time, the SCT, the SET,
//! inclusion proofs and checkpoints, and the log entry's consistency with the signature.
//!
//! The rewriting is hand-written: it is a few lines of JSON, and the crate that knows the
//! legacy layout (`sigstore`) fetches from registries itself.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use sigstore_verify::bundle::Error as BundleError;
use sigstore_verify::types::{
    ArtifactDigest, Bundle, DerPublicKey, HashAlgorithm, SignatureContent,
};
use sigstore_verify::{
    CertificateError, Error as SigstoreError, PublicKeyVerificationPolicy, TimestampError,
    TransparencyLogError, VerificationPolicy, VerificationResult, Verifier,
};

use crate::notation::level::Check;
use crate::notation::verifier::LogEntry;

/// Annotation: base64 signature over the payload.
pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// Annotation: PEM signing certificate.
pub const ANNOTATION_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// Annotation: PEM intermediates, then the root.
pub const ANNOTATION_CHAIN: &str = "dev.sigstore.cosign/chain";
/// Annotation: the Rekor entry with its signed entry timestamp, as JSON text.
pub const ANNOTATION_BUNDLE: &str = "dev.sigstore.cosign/bundle";
/// Annotation: an RFC 3161 timestamp over the signature, as JSON text.
pub const ANNOTATION_TIMESTAMP: &str = "dev.sigstore.cosign/rfc3161timestamp";

/// A named check that failed, with its Notation category.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The check's name (`signature`, `certificateChain`, `transparencyLog`, …).
    pub name: &'static str,
    /// Its category in the level matrix.
    pub category: Check,
    /// What went wrong.
    pub detail: String,
}

impl Failure {
    /// A failure of check `name`.
    pub fn new(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            category: category_of(name),
            detail: detail.into(),
        }
    }
}

/// The category of a cosign check in the Notation level matrix.
pub fn category_of(name: &str) -> Check {
    match name {
        "payload" | "signature" | "payloadDigest" | "bundle" => Check::Integrity,
        "transparencyLog" | "timestamp" | "certificateValidity" => Check::AuthenticTimestamp,
        _ => Check::Authenticity,
    }
}

/// Which named checks a successful verification through `sigstore-verify` covered.
pub fn passed_checks(result: &VerificationResult, keyless: bool) -> Vec<&'static str> {
    let mut names = vec!["signature"];
    if keyless && result.certificate_verified() {
        names.push("certificateChain");
        names.push("certificateValidity");
    }
    if keyless && result.sct_verified() {
        names.push("sct");
    }
    if result.tlog_verified() {
        names.push("transparencyLog");
    }
    names
}

/// The named check a `sigstore-verify` error is a failure of.
pub fn failure_of(e: &SigstoreError) -> Failure {
    let name = match e {
        SigstoreError::IdentityMismatch { .. } => "identity",
        SigstoreError::IssuerMismatch { .. } => "issuer",
        SigstoreError::SignatureInvalid(_) => "signature",
        SigstoreError::ArtifactMismatch(_) => "payloadDigest",
        SigstoreError::Certificate(c) => match c {
            CertificateError::Sct(_) => "sct",
            CertificateError::NotYetValid { .. } | CertificateError::Expired { .. } => {
                "certificateValidity"
            }
            // webpki reports a leaf outside its validity at the proven time as a chain error.
            CertificateError::ChainInvalid(d)
                if d.contains("CertExpired") || d.contains("CertNotValidYet") =>
            {
                "certificateValidity"
            }
            _ => "certificateChain",
        },
        SigstoreError::TransparencyLog(t) => match t {
            TransparencyLogError::IntegratedTime(_) => "certificateValidity",
            _ => "transparencyLog",
        },
        SigstoreError::Timestamp(TimestampError::NoVerifiedTimestamp(_)) => "transparencyLog",
        SigstoreError::Timestamp(_) => "timestamp",
        SigstoreError::InvalidTrustRoot(_) | SigstoreError::TrustRoot(_) => "trustedRoot",
        // Structural checks of the log evidence (a checkpoint of another tree, a missing
        // proof or promise) are failures of the transparency-log check, not of the format.
        SigstoreError::Bundle(b) => match b {
            BundleError::MissingInclusionPromise(_)
            | BundleError::MissingInclusionProof(_)
            | BundleError::MissingSigningTimeEvidence
            | BundleError::MissingCheckpoint
            | BundleError::LogIndexOutOfRange { .. }
            | BundleError::CheckpointRootMismatch => "transparencyLog",
            BundleError::MissingTimestamp => "timestamp",
            _ => "bundle",
        },
        _ => "bundle",
    };
    Failure::new(name, e.to_string())
}

/// The Rekor entry of a legacy signature (`dev.sigstore.cosign/bundle`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RekorBundle {
    signed_entry_timestamp: String,
    payload: RekorPayload,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorPayload {
    body: String,
    integrated_time: i64,
    log_index: u64,
    #[serde(rename = "logID")]
    log_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorBody {
    kind: String,
    api_version: String,
}

/// The RFC 3161 annotation (`{"SignedRFC3161TimestampBytes": base64}`).
#[derive(Debug, Deserialize)]
struct TimestampAnnotation {
    #[serde(rename = "SignedRFC3161TimestampBytes")]
    bytes: String,
}

/// The signing material of a legacy layer: the key or the certificate chain.
pub enum Material<'a> {
    /// A keyed signature.
    Key,
    /// A certificate (PEM) and chain (PEM).
    Certificate {
        /// The leaf.
        leaf: &'a str,
        /// Intermediates and root.
        chain: Option<&'a str>,
    },
}

fn pem_ders(text: &str, what: &str) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()) {
        let block = block.map_err(|e| {
            Failure::new(
                "certificateChain",
                format!("the {what} annotation is not PEM: {e}"),
            )
        })?;
        if block.label == "CERTIFICATE" {
            out.push(B64.encode(&block.contents));
        }
    }
    if out.is_empty() {
        return Err(Failure::new(
            "certificateChain",
            format!("the {what} annotation holds no PEM certificate"),
        ));
    }
    Ok(out)
}

/// Rewrite a legacy `.sig` layer as the v0.1 bundle it is equivalent to. `None` for the Rekor
/// entry when the layer carries none.
pub fn legacy_to_bundle(
    payload: &[u8],
    signature: &[u8],
    annotations: &BTreeMap<String, String>,
    material: Material<'_>,
) -> Result<Option<(Bundle, LogEntry)>, Failure> {
    let Some(rekor) = annotations.get(ANNOTATION_BUNDLE) else {
        return Ok(None);
    };
    let rekor: RekorBundle = serde_json::from_str(rekor).map_err(|e| {
        Failure::new(
            "transparencyLog",
            format!("the {ANNOTATION_BUNDLE} annotation is not a Rekor bundle: {e}"),
        )
    })?;
    let body = B64.decode(&rekor.payload.body).map_err(|e| {
        Failure::new(
            "transparencyLog",
            format!("the Rekor entry body is not base64: {e}"),
        )
    })?;
    let kind: RekorBody = serde_json::from_slice(&body).map_err(|e| {
        Failure::new(
            "transparencyLog",
            format!("the Rekor entry body is not an entry: {e}"),
        )
    })?;
    let log_id = hex::decode(&rekor.payload.log_id).map_err(|e| {
        Failure::new(
            "transparencyLog",
            format!("the Rekor logID is not hex: {e}"),
        )
    })?;
    let material = match material {
        Material::Key => serde_json::json!({"publicKey": {"hint": ""}}),
        Material::Certificate { leaf, chain } => {
            let mut certs = pem_ders(leaf, ANNOTATION_CERTIFICATE)?;
            if let Some(chain) = chain {
                certs.extend(pem_ders(chain, ANNOTATION_CHAIN)?);
            }
            let certs: Vec<_> = certs
                .into_iter()
                .map(|c| serde_json::json!({"rawBytes": c}))
                .collect();
            serde_json::json!({"x509CertificateChain": {"certificates": certs}})
        }
    };
    let mut material = material;
    material["tlogEntries"] = serde_json::json!([{
        "logIndex": rekor.payload.log_index.to_string(),
        "logId": {"keyId": B64.encode(&log_id)},
        "kindVersion": {"kind": kind.kind, "version": kind.api_version},
        "integratedTime": rekor.payload.integrated_time.to_string(),
        "inclusionPromise": {"signedEntryTimestamp": rekor.signed_entry_timestamp},
        "canonicalizedBody": rekor.payload.body,
    }]);
    if let Some(ts) = annotations.get(ANNOTATION_TIMESTAMP) {
        let ts: TimestampAnnotation = serde_json::from_str(ts).map_err(|e| {
            Failure::new(
                "timestamp",
                format!("the {ANNOTATION_TIMESTAMP} annotation is not a timestamp: {e}"),
            )
        })?;
        material["timestampVerificationData"] =
            serde_json::json!({"rfc3161Timestamps": [{"signedTimestamp": ts.bytes}]});
    }
    let doc = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": material,
        "messageSignature": {
            "messageDigest": {
                "algorithm": "SHA2_256",
                "digest": B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, payload)),
            },
            "signature": B64.encode(signature),
        },
    });
    let bundle = Bundle::from_json(&doc.to_string()).map_err(|e| {
        Failure::new(
            "transparencyLog",
            format!("the signature's Rekor entry cannot be read: {e}"),
        )
    })?;
    let entry = LogEntry {
        log_index: rekor.payload.log_index,
        integrated_time: rekor.payload.integrated_time,
        log_id: rekor.payload.log_id.to_ascii_lowercase(),
    };
    Ok(Some((bundle, entry)))
}

/// The log entry a bundle names (its first, the one cosign writes).
pub fn log_entry_of(bundle: &Bundle) -> Option<LogEntry> {
    let e = bundle.verification_material.tlog_entries.first()?;
    Some(LogEntry {
        log_index: e.log_index.get(),
        integrated_time: e.integrated_time.map(|t| t.as_second()).unwrap_or(0),
        log_id: hex::encode(e.log_id.key_id.as_bytes()),
    })
}

/// What a bundle signs.
pub enum Artifact<'a> {
    /// The payload bytes (legacy `.sig`).
    Bytes(&'a [u8]),
    /// The image's manifest digest (bundles: the in-toto subject or message digest).
    Digest(ArtifactDigest),
}

/// The artifact for an image digest: `sha256:`, `sha384:` or `sha512:` (the OCI digests
/// vouch reads), bound by an in-toto subject of that algorithm. cosign binds SHA-256; a
/// message signature (hashedrekord) needs SHA-256 and fails closed on the others.
pub fn image_artifact(digest: &str) -> Result<Artifact<'static>, Failure> {
    let bad =
        |why: String| Failure::new("payloadDigest", format!("the image digest {digest}: {why}"));
    let (algorithm, hex) = match digest.split_once(':') {
        Some(("sha256", h)) => (HashAlgorithm::Sha2256, h),
        Some(("sha384", h)) => (HashAlgorithm::Sha2384, h),
        Some(("sha512", h)) => (HashAlgorithm::Sha2512, h),
        _ => return Err(bad("not a SHA-2 digest, which Sigstore bundles bind".into())),
    };
    let bytes = hex::decode(hex).map_err(|e| bad(e.to_string()))?;
    ArtifactDigest::new(algorithm, bytes)
        .map(Artifact::Digest)
        .map_err(|e| bad(e.to_string()))
}

/// Verify a keyless bundle: chain, validity at the proven time, SCT, log entry, signature and
/// binding. The identity is matched by the caller (exact or regular expression).
pub fn verify_keyless(
    verifier: &Verifier,
    bundle: &Bundle,
    artifact: &Artifact<'_>,
) -> Result<VerificationResult, Failure> {
    let policy = VerificationPolicy::any_identity();
    let result = match artifact {
        Artifact::Bytes(b) => verifier.verify(*b, bundle, &policy),
        Artifact::Digest(d) => verifier.verify(d.clone(), bundle, &policy),
    }
    .map_err(|e| failure_of(&e))?;
    if !(result.certificate_verified() && result.sct_verified() && result.tlog_verified()) {
        return Err(Failure::new(
            "certificateChain",
            "the certificate, its SCT or the log entry was not verified",
        ));
    }
    Ok(result)
}

/// Verify a keyed bundle with `key`: log entry, signature and binding.
pub fn verify_keyed(
    verifier: &Verifier,
    bundle: &Bundle,
    artifact: &Artifact<'_>,
    key: &DerPublicKey,
) -> Result<VerificationResult, Failure> {
    let policy = PublicKeyVerificationPolicy::new(key.clone());
    let result = match artifact {
        Artifact::Bytes(b) => verifier.verify(*b, bundle, &policy),
        Artifact::Digest(d) => verifier.verify(d.clone(), bundle, &policy),
    }
    .map_err(|e| failure_of(&e))?;
    if !result.tlog_verified() {
        return Err(Failure::new(
            "transparencyLog",
            "the log entry was not verified",
        ));
    }
    if bundle.verification_material.tlog_entries.is_empty() {
        return Err(Failure::new(
            "transparencyLog",
            "the signature carries no transparency-log entry",
        ));
    }
    Ok(result)
}

/// The in-toto predicate type of a DSSE bundle, if it is one.
pub fn predicate_type(bundle: &Bundle) -> Option<Result<String, Failure>> {
    let SignatureContent::DsseEnvelope(env) = &bundle.content else {
        return None;
    };
    Some(statement_predicate_type(env.payload.as_bytes()))
}

/// The predicate type of an in-toto statement, refused unless it is one of the statement
/// versions in-toto defines.
fn statement_predicate_type(payload: &[u8]) -> Result<String, Failure> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Statement {
        #[serde(rename = "_type")]
        statement_type: String,
        predicate_type: String,
    }
    // The statement versions in-toto defines (sigstore-rs refuses others, as here).
    const STATEMENT_TYPES: [&str; 2] = [
        "https://in-toto.io/Statement/v1",
        "https://in-toto.io/Statement/v0.1",
    ];
    serde_json::from_slice::<Statement>(payload)
            .map_err(|e| {
                Failure::new(
                    "payload",
                    format!("the DSSE payload is not an in-toto statement: {e}"),
                )
            })
            .and_then(|s| {
                if STATEMENT_TYPES.contains(&s.statement_type.as_str()) {
                    Ok(s.predicate_type)
                } else {
                    Err(Failure::new(
                        "payload",
                        format!(
                            "the DSSE payload is an in-toto statement of unknown _type {:?} (expected {})",
                            s.statement_type,
                            STATEMENT_TYPES.join(" or ")
                        ),
                    ))
                }
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_in_toto_statements_name_a_predicate() {
        let ok = br#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://sigstore.dev/cosign/sign/v1","subject":[]}"#;
        assert_eq!(
            statement_predicate_type(ok).expect("statement"),
            "https://sigstore.dev/cosign/sign/v1"
        );
        let other = br#"{"_type":"https://example.com/NotAStatement","predicateType":"https://sigstore.dev/cosign/sign/v1"}"#;
        let e = statement_predicate_type(other).expect_err("unknown _type");
        assert!(format!("{e:?}").contains("unknown _type"), "{e:?}");
        let untyped = br#"{"predicateType":"https://sigstore.dev/cosign/sign/v1"}"#;
        assert!(statement_predicate_type(untyped).is_err());
    }
}
