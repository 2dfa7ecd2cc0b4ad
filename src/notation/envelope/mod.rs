//! Notation signature envelopes: COSE_Sign1 (`application/cose`) and JWS
//! (`application/jose+json`), read into one [`Envelope`] and checked for integrity.
//!
//! Each format's parser applies its own wire rules (critical headers, time encodings, where the
//! certificate chain lives); [`Envelope::verify_integrity`] then applies the rules both share
//! (notation-core-go `signature/internal/base/envelope.go`): content type, signing scheme, signing
//! time before expiry, the code-signing chain rules, the algorithm derived from the leaf key, and
//! the signature over the exact signed bytes.

mod cbor;
pub mod cose;
pub mod jws;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::x509::{validate_code_signing_chain, Certificate, PssSalt, SignatureAlgorithm};

/// Media type of COSE envelopes.
pub const MEDIA_TYPE_COSE: &str = "application/cose";
/// Media type of JWS envelopes.
pub const MEDIA_TYPE_JWS: &str = "application/jose+json";
/// The only payload content type Notation signs.
pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";

/// The signing scheme of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SigningScheme {
    /// `notary.x509`: trusted through `ca` stores; time from a timestamp or now.
    #[serde(rename = "notary.x509")]
    X509,
    /// `notary.x509.signingAuthority`: trusted through `signingAuthority` stores; the signed
    /// authentic signing time is the time of validity.
    #[serde(rename = "notary.x509.signingAuthority")]
    X509SigningAuthority,
}

impl SigningScheme {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "notary.x509" => Ok(Self::X509),
            "notary.x509.signingAuthority" => Ok(Self::X509SigningAuthority),
            other => Err(format!("unsupported signingScheme {other:?}")),
        }
    }
}

/// An envelope's contents, whatever its format.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `application/cose` or `application/jose+json`.
    pub media_type: &'static str,
    /// The payload bytes as signed.
    pub payload: Vec<u8>,
    /// The signed content type.
    pub content_type: String,
    /// The algorithm named in the signed header.
    pub algorithm: SignatureAlgorithm,
    /// Signing scheme.
    pub signing_scheme: SigningScheme,
    /// `signingTime` (x509) or `authenticSigningTime` (signingAuthority).
    pub signing_time: OffsetDateTime,
    /// Signed expiry, if any.
    pub expiry: Option<OffsetDateTime>,
    /// Certificate chain, leaf first.
    pub chain: Vec<Certificate>,
    /// RFC 3161 timestamp token, if any (unprotected).
    pub timestamp_token: Option<Vec<u8>>,
    /// Informational signing agent.
    pub signing_agent: Option<String>,
    /// The primitive signature.
    pub signature: Vec<u8>,
    /// The exact bytes the signature covers.
    pub signed_bytes: Vec<u8>,
    pss_salt: PssSalt,
}

/// The OCI descriptor a signature names (`targetArtifact`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetArtifact {
    /// Manifest media type.
    pub media_type: String,
    /// Manifest digest.
    pub digest: String,
    /// Manifest size in bytes.
    pub size: u64,
    /// Signed user metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    target_artifact: TargetArtifact,
}

/// Read an envelope of the given media type. Errors are integrity failures.
pub fn parse(media_type: &str, bytes: &[u8]) -> Result<Envelope, String> {
    match media_type {
        MEDIA_TYPE_COSE => cose::parse(bytes),
        MEDIA_TYPE_JWS => jws::parse(bytes),
        other => Err(format!(
            "unable to parse the digital signature, error: signature envelope format with media type {other:?} is not supported"
        )),
    }
}

impl Envelope {
    /// The leaf (signing) certificate.
    pub fn leaf(&self) -> Option<&Certificate> {
        self.chain.first()
    }

    /// Every integrity rule both formats share; returns the signed target on success.
    pub fn verify_integrity(&self) -> Result<TargetArtifact, String> {
        if self.payload.is_empty() {
            return Err("signature envelope has an empty payload".into());
        }
        if self.signature.is_empty() {
            return Err("signature envelope has an empty signature".into());
        }
        if self.content_type != PAYLOAD_CONTENT_TYPE {
            return Err(format!(
                "payload content type {:?} is not supported, expected {PAYLOAD_CONTENT_TYPE:?}",
                self.content_type
            ));
        }
        if let Some(expiry) = self.expiry {
            if expiry <= self.signing_time {
                return Err("expiry cannot be equal or before the signing time".into());
            }
        }
        validate_code_signing_chain(&self.chain)?;
        let leaf = self.leaf().ok_or("certificate chain is not present")?;
        let derived = leaf.signing_algorithm()?;
        if derived != self.algorithm {
            return Err(format!(
                "mismatch between signature algorithm derived from signing certificate ({derived}) and signing algorithm specified ({})",
                self.algorithm
            ));
        }
        leaf.verify_message(
            self.algorithm,
            &self.signed_bytes,
            &self.signature,
            self.pss_salt,
        )
        .map_err(|_| {
            "signature is invalid: the signature does not verify with the signing certificate's key"
                .to_string()
        })?;
        let payload: Payload = serde_json::from_slice(&self.payload)
            .map_err(|e| format!("signature payload is not a Notation payload: {e}"))?;
        Ok(payload.target_artifact)
    }
}
