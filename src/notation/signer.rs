//! Producing Notation COSE signatures: what `vouch demo` signs its sample images with, and what
//! a status artifact is signed with. Verification never depends on this module.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, RsaKeyPair};
use time::OffsetDateTime;

pub use super::envelope::cose::Countersigner;
use super::envelope::{cose, SigningScheme, TargetArtifact, MEDIA_TYPE_COSE};
use super::x509::{Certificate, SignatureAlgorithm};
use super::ARTIFACT_TYPE_SIGNATURE;
use crate::registry::{sha256_hex, Descriptor, OCI_MANIFEST};

/// A private key Notation can sign with.
pub enum SigningKey {
    /// ECDSA P-256/384/521.
    Ecdsa(EcdsaKeyPair, SignatureAlgorithm),
    /// RSA 2048/3072/4096 (RSASSA-PSS).
    Rsa(RsaKeyPair, SignatureAlgorithm),
}

impl SigningKey {
    /// Read a PKCS#8 DER private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        let ec = [
            (
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                SignatureAlgorithm::ES256,
            ),
            (
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                SignatureAlgorithm::ES384,
            ),
            (
                &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
                SignatureAlgorithm::ES512,
            ),
        ];
        for (alg, name) in ec {
            if let Ok(k) = EcdsaKeyPair::from_pkcs8(alg, der) {
                return Ok(SigningKey::Ecdsa(k, name));
            }
        }
        let rsa =
            RsaKeyPair::from_pkcs8(der).map_err(|e| format!("unsupported private key: {e}"))?;
        let alg = match rsa.public_modulus_len() * 8 {
            2048 => SignatureAlgorithm::PS256,
            3072 => SignatureAlgorithm::PS384,
            4096 => SignatureAlgorithm::PS512,
            bits => return Err(format!("rsa key size {bits} is not supported")),
        };
        Ok(SigningKey::Rsa(rsa, alg))
    }

    /// Read a PEM `PRIVATE KEY` (PKCS#8).
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let (_, p) =
            x509_parser::pem::parse_x509_pem(pem).map_err(|e| format!("invalid PEM: {e}"))?;
        if p.label != "PRIVATE KEY" {
            return Err(format!(
                "expected a PKCS#8 \"PRIVATE KEY\" PEM block, got {:?}",
                p.label
            ));
        }
        Self::from_pkcs8(&p.contents)
    }

    /// The Notation algorithm of this key.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            SigningKey::Ecdsa(_, a) | SigningKey::Rsa(_, a) => *a,
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let rng = SystemRandom::new();
        match self {
            SigningKey::Ecdsa(k, _) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|e| e.to_string()),
            SigningKey::Rsa(k, alg) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    SignatureAlgorithm::PS384 => &signature::RSA_PSS_SHA384,
                    SignatureAlgorithm::PS512 => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PSS_SHA256,
                };
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(padding, &rng, message, &mut sig)
                    .map_err(|e| e.to_string())?;
                Ok(sig)
            }
        }
    }
}

/// A key with its certificate chain (leaf first).
pub struct Signer {
    key: SigningKey,
    chain: Vec<Vec<u8>>,
    scheme: SigningScheme,
}

/// A signature ready to push: the envelope blob and the OCI 1.1 signature manifest.
pub struct SignatureArtifact {
    /// The COSE envelope.
    pub envelope: Vec<u8>,
    /// Descriptor of the envelope blob.
    pub envelope_descriptor: Descriptor,
    /// The signature manifest bytes.
    pub manifest: Vec<u8>,
    /// Descriptor of the signature manifest.
    pub manifest_descriptor: Descriptor,
}

/// How a signature is made, beyond the key and chain ([`Signer::sign_artifact_with`]).
#[derive(Clone, Copy, Default)]
pub struct SignOptions<'a> {
    /// The envelope's signing time; `None` is now. Under `notary.x509` it is the signer's own
    /// claim (a timestamp is what proves a time), so tests may backdate it freely.
    pub signing_time: Option<OffsetDateTime>,
    /// The signature's expiry (`io.cncf.notary.expiry`).
    pub expiry: Option<OffsetDateTime>,
    /// An RFC 3161 countersignature over the signature, put in the unprotected header.
    pub timestamp: Option<&'a Countersigner<'a>>,
}

/// The empty config blob `{}` of OCI 1.1 artifacts.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// Its media type.
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

impl Signer {
    /// Pair a key with its chain; the leaf must hold the key.
    pub fn new(key: SigningKey, chain: Vec<Vec<u8>>) -> Result<Self, String> {
        let leaf_der = chain.first().ok_or("empty certificate chain")?;
        let leaf = Certificate::from_der(leaf_der).map_err(|e| e.to_string())?;
        if leaf.signing_algorithm()? != key.algorithm() {
            return Err("the key does not match the leaf certificate's key type".into());
        }
        // Sign and verify a probe, so a mismatched key is caught here and not by verifiers.
        let probe = key.sign(b"probe")?;
        leaf.verify_message(
            key.algorithm(),
            b"probe",
            &probe,
            super::x509::PssSalt::HashLength,
        )
        .map_err(|_| "the key does not belong to the leaf certificate".to_string())?;
        Ok(Self {
            key,
            chain,
            scheme: SigningScheme::X509,
        })
    }

    /// Sign with the `notary.x509.signingAuthority` scheme (the signing time becomes the signed
    /// authentic signing time; verifiers trust it through `signingAuthority` stores).
    pub fn signing_authority(mut self) -> Self {
        self.scheme = SigningScheme::X509SigningAuthority;
        self
    }

    /// A COSE envelope over `target`.
    pub fn sign_cose(
        &self,
        target: &TargetArtifact,
        signing_time: OffsetDateTime,
        expiry: Option<OffsetDateTime>,
    ) -> Result<Vec<u8>, String> {
        self.sign_cose_with(
            target,
            &SignOptions {
                signing_time: Some(signing_time),
                expiry,
                timestamp: None,
            },
        )
    }

    /// A COSE envelope over `target`, made as `options` say.
    pub fn sign_cose_with(
        &self,
        target: &TargetArtifact,
        options: &SignOptions<'_>,
    ) -> Result<Vec<u8>, String> {
        let payload = payload_json(target);
        let signing_time = options
            .signing_time
            .unwrap_or_else(OffsetDateTime::now_utc)
            .replace_nanosecond(0)
            .map_err(|e| e.to_string())?;
        cose::build(
            self.key.algorithm(),
            self.scheme,
            &payload,
            &self.chain,
            signing_time,
            options.expiry,
            |tbs| self.key.sign(tbs),
            options.timestamp,
        )
    }

    /// Sign `subject` and wrap the envelope in an OCI 1.1 signature manifest.
    pub fn sign_artifact(
        &self,
        subject: &Descriptor,
        expiry: Option<OffsetDateTime>,
    ) -> Result<SignatureArtifact, String> {
        self.sign_artifact_with(
            subject,
            &SignOptions {
                expiry,
                ..Default::default()
            },
        )
    }

    /// Sign `subject` now with an RFC 3161 countersignature from `stamp` (which receives the
    /// raw signature bytes and returns the TimeStampToken DER).
    pub fn sign_artifact_timestamped(
        &self,
        subject: &Descriptor,
        stamp: &Countersigner<'_>,
    ) -> Result<SignatureArtifact, String> {
        self.sign_artifact_with(
            subject,
            &SignOptions {
                timestamp: Some(stamp),
                ..Default::default()
            },
        )
    }

    /// Sign `subject` as `options` say and wrap the envelope in an OCI 1.1 signature manifest
    /// (created at the signing time).
    pub fn sign_artifact_with(
        &self,
        subject: &Descriptor,
        options: &SignOptions<'_>,
    ) -> Result<SignatureArtifact, String> {
        let target = TargetArtifact {
            media_type: subject.media_type.clone(),
            digest: subject.digest.clone(),
            size: subject.size,
            annotations: None,
        };
        let at = options.signing_time.unwrap_or_else(OffsetDateTime::now_utc);
        let options = SignOptions {
            signing_time: Some(at),
            ..*options
        };
        let envelope = self.sign_cose_with(&target, &options)?;
        Ok(signature_manifest(subject, envelope, MEDIA_TYPE_COSE, at))
    }
}

/// The Notation payload for a target, fields in COSE struct order.
pub fn payload_json(target: &TargetArtifact) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "targetArtifact": {
            "mediaType": target.media_type,
            "digest": target.digest,
            "size": target.size,
        }
    }))
    .unwrap_or_default()
}

/// Wrap envelope bytes in an OCI 1.1 signature manifest pointing at `subject`.
pub fn signature_manifest(
    subject: &Descriptor,
    envelope: Vec<u8>,
    envelope_media_type: &str,
    created: OffsetDateTime,
) -> SignatureArtifact {
    let envelope_descriptor = Descriptor {
        media_type: envelope_media_type.to_string(),
        digest: format!("sha256:{}", sha256_hex(&envelope)),
        size: envelope.len() as u64,
        artifact_type: None,
        annotations: None,
    };
    let created = created
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE_SIGNATURE,
        "config": {"mediaType": EMPTY_CONFIG_MEDIA_TYPE, "digest": format!("sha256:{}", sha256_hex(EMPTY_CONFIG)), "size": 2},
        "layers": [envelope_descriptor],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": {"org.opencontainers.image.created": created},
    }))
    .unwrap_or_default();
    let manifest_descriptor = Descriptor {
        media_type: OCI_MANIFEST.to_string(),
        digest: format!("sha256:{}", sha256_hex(&manifest)),
        size: manifest.len() as u64,
        artifact_type: Some(ARTIFACT_TYPE_SIGNATURE.to_string()),
        annotations: None,
    };
    SignatureArtifact {
        envelope,
        envelope_descriptor,
        manifest,
        manifest_descriptor,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};

    use super::*;
    use crate::notation::envelope;

    fn signer() -> Signer {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        let cert = p.self_signed(&key).expect("cert");
        Signer::new(
            SigningKey::from_pkcs8(&key.serialize_der()).expect("signing key"),
            vec![cert.der().to_vec()],
        )
        .expect("signer")
    }

    fn subject() -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: format!("sha256:{}", sha256_hex(b"image")),
            size: 5,
            artifact_type: None,
            annotations: None,
        }
    }

    #[test]
    fn the_countersignature_covers_the_signature_and_lands_in_the_unprotected_header() {
        let seen = RefCell::new(Vec::new());
        let stamp = |sig: &[u8]| {
            *seen.borrow_mut() = sig.to_vec();
            Ok(b"token over the signature".to_vec())
        };
        let sig = signer()
            .sign_artifact_timestamped(&subject(), &stamp)
            .expect("sign");
        let env = envelope::parse(MEDIA_TYPE_COSE, &sig.envelope).expect("parse");
        assert_eq!(
            env.timestamp_token.as_deref(),
            Some(&b"token over the signature"[..])
        );
        assert!(!seen.borrow().is_empty());
        assert_eq!(env.signature, *seen.borrow());
        // The unprotected header is outside what the signature covers.
        let target = env.verify_integrity().expect("integrity");
        assert_eq!(target.digest, subject().digest);
    }

    #[test]
    fn without_a_countersigner_there_is_no_token() {
        let sig = signer().sign_artifact(&subject(), None).expect("sign");
        let env = envelope::parse(MEDIA_TYPE_COSE, &sig.envelope).expect("parse");
        assert_eq!(env.timestamp_token, None);
    }

    #[test]
    fn a_failing_countersigner_fails_the_signature() {
        let stamp = |_: &[u8]| Err("the TSA said no".to_string());
        let err = signer()
            .sign_artifact_timestamped(&subject(), &stamp)
            .err()
            .expect("an error");
        assert_eq!(err, "timestamping the signature failed: the TSA said no");
    }

    #[test]
    fn the_signing_time_can_be_chosen() {
        let at = time::macros::datetime!(2025-03-01 12:00:00.5 UTC);
        let expiry = time::macros::datetime!(2025-04-01 00:00:00 UTC);
        let sig = signer()
            .sign_artifact_with(
                &subject(),
                &SignOptions {
                    signing_time: Some(at),
                    expiry: Some(expiry),
                    timestamp: None,
                },
            )
            .expect("sign");
        let env = envelope::parse(MEDIA_TYPE_COSE, &sig.envelope).expect("parse");
        assert_eq!(
            env.signing_time,
            time::macros::datetime!(2025-03-01 12:00:00 UTC)
        );
        assert_eq!(env.expiry, Some(expiry));
        let manifest: serde_json::Value = serde_json::from_slice(&sig.manifest).expect("json");
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.created"],
            "2025-03-01T12:00:00.5Z"
        );
    }
}
