//! A Sigstore trusted root (`trusted_root.json`, `application/vnd.dev.sigstore.trustedroot+json`):
//! the Fulcio CAs, Rekor logs, CT logs and timestamp authorities a keyless signature is judged
//! against, each with its validity period. Read from a local file only — never fetched through
//! TUF at admission time — and parsed and checked by `sigstore-trust-root` and
//! `sigstore-verify` (which honour each key's `validFor` at the signing time).

use std::path::{Path, PathBuf};

use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::Verifier;

/// Largest trusted root read (the public-good one is under 8 KiB).
const MAX_TRUSTED_ROOT_BYTES: u64 = 1024 * 1024;

/// A loaded trusted root, ready to verify with.
pub struct TrustRoot {
    /// Where it was read from.
    pub path: PathBuf,
    /// SHA-256 of the file, for verdict-cache fingerprints.
    pub sha256: String,
    /// The verifier built over it (keys and anchors prepared once).
    pub verifier: Verifier,
}

impl std::fmt::Debug for TrustRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustRoot")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl TrustRoot {
    /// Read and check a trusted root file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = crate::files::read_to_string(path, MAX_TRUSTED_ROOT_BYTES)
            .map_err(|e| format!("{}: {}", e.path, e.problem))?;
        Self::from_json(path, &text)
    }

    /// Check a trusted root document.
    pub fn from_json(path: &Path, text: &str) -> Result<Self, String> {
        let shown = path.display();
        let root = TrustedRoot::from_json(text)
            .map_err(|e| format!("{shown} is not a Sigstore trusted root: {e}"))?;
        let verifier =
            Verifier::new(&root).map_err(|e| format!("{shown} cannot be used to verify: {e}"))?;
        Ok(Self {
            path: path.to_path_buf(),
            sha256: crate::registry::sha256_hex(text.as_bytes()),
            verifier,
        })
    }
}
