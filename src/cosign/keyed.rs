//! Public keys of keyed cosign signing (`cosign generate-key-pair`, KMS keys exported as PEM):
//! ECDSA P-256 and P-384, Ed25519 and RSA, as PEM `PUBLIC KEY` (SPKI). Parsing and signature
//! checks are `sigstore-crypto`'s (on aws-lc-rs, which vouch already uses).

use std::path::{Path, PathBuf};

use sigstore_verify::crypto::{verify_signature, KeyAlgorithm};
use sigstore_verify::types::{DerPublicKey, SignatureBytes};

/// Largest key file read.
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// A configured cosign public key.
#[derive(Debug, Clone)]
pub struct PublicKey {
    /// Where it was read from (shown as the signer).
    pub path: PathBuf,
    /// The SPKI.
    pub der: DerPublicKey,
    algorithm: KeyAlgorithm,
}

impl PublicKey {
    /// Read a PEM public key file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = crate::files::read_to_string(path, MAX_KEY_BYTES)
            .map_err(|e| format!("{}: {}", e.path, e.problem))?;
        Self::from_pem(path, &text)
    }

    /// Parse a PEM public key.
    pub fn from_pem(path: &Path, text: &str) -> Result<Self, String> {
        let shown = path.display();
        let der = DerPublicKey::from_pem(text)
            .map_err(|e| format!("{shown} is not a PEM public key: {e}"))?;
        let algorithm = KeyAlgorithm::from_spki(&der)
            .map_err(|e| format!("{shown}: unsupported public key: {e}"))?;
        if !matches!(
            algorithm,
            KeyAlgorithm::EcdsaP256
                | KeyAlgorithm::EcdsaP384
                | KeyAlgorithm::Ed25519
                | KeyAlgorithm::Rsa
        ) {
            return Err(format!(
                "{shown}: {algorithm:?} keys are not cosign signing keys (ECDSA P-256/P-384, Ed25519, RSA)"
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            der,
            algorithm,
        })
    }

    /// Whether `signature` over `payload` verifies with this key (cosign signs the payload
    /// bytes with the key's default scheme: ECDSA with SHA-256/384, Ed25519, RSA PKCS#1 v1.5
    /// SHA-256).
    pub fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        verify_signature(
            &self.der,
            payload,
            &SignatureBytes::from_bytes(signature),
            self.algorithm.default_signing_scheme(),
        )
        .is_ok()
    }

    /// The key as the signer is shown: `key <path>`.
    pub fn label(&self) -> String {
        format!("key {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p256_ed25519_and_rsa_keys_verify_what_they_signed() {
        use aws_lc_rs::signature as sig;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let payload = b"payload";
        let p256 = sig::EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let spki = rcgen::KeyPair::try_from(p256.to_pkcs8v1().unwrap().as_ref()).unwrap();
        let key = PublicKey::from_pem(Path::new("p256.pub"), &spki.public_key_pem()).unwrap();
        let s = p256.sign(&rng, payload).unwrap();
        assert!(key.verifies(payload, s.as_ref()));
        assert!(!key.verifies(b"other", s.as_ref()));
        let ed = sig::Ed25519KeyPair::generate().unwrap();
        let spki = rcgen::KeyPair::try_from(ed.to_pkcs8().unwrap().as_ref()).unwrap();
        let key = PublicKey::from_pem(Path::new("ed.pub"), &spki.public_key_pem()).unwrap();
        assert!(key.verifies(payload, ed.sign(payload).as_ref()));
        assert!(PublicKey::from_pem(Path::new("x"), "not a key").is_err());
    }
}
