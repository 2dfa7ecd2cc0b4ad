//! Producing Notation COSE signatures: what `vouch demo` signs its sample images with, and what
//! a status artifact is signed with. Verification never depends on this module.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, RsaKeyPair};
use time::OffsetDateTime;

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
        let payload = payload_json(target);
        let signing_time = signing_time
            .replace_nanosecond(0)
            .map_err(|e| e.to_string())?;
        cose::build(
            self.key.algorithm(),
            self.scheme,
            &payload,
            &self.chain,
            signing_time,
            expiry,
            |tbs| self.key.sign(tbs),
        )
    }

    /// Sign `subject` and wrap the envelope in an OCI 1.1 signature manifest.
    pub fn sign_artifact(
        &self,
        subject: &Descriptor,
        expiry: Option<OffsetDateTime>,
    ) -> Result<SignatureArtifact, String> {
        let target = TargetArtifact {
            media_type: subject.media_type.clone(),
            digest: subject.digest.clone(),
            size: subject.size,
            annotations: None,
        };
        let now = OffsetDateTime::now_utc();
        let envelope = self.sign_cose(&target, now, expiry)?;
        Ok(signature_manifest(subject, envelope, MEDIA_TYPE_COSE, now))
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
