//! Notation trust stores: `x509/{ca|signingAuthority|tsa}/<name>/<certificate files>`.
//!
//! Loader rules follow notation-go (`verifier/truststore/truststore.go`): every file in a named
//! store must parse as PEM or DER certificates, each a CA or self-signed, and a store with no
//! certificate is an error. One deliberate relaxation, for Kubernetes: ConfigMap and Secret
//! volumes present files as symlinks into a hidden `..data` directory. We skip entries whose name
//! starts with `..` and follow a symlink only when its target stays inside the store directory.
//! notation refuses both; a store that works with notation still works here unchanged.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::x509::Certificate;
use crate::files::{Kind, Problem};

/// Largest certificate file read.
const MAX_CERT_FILE_BYTES: u64 = 1024 * 1024;
/// Most files read from one store.
const MAX_FILES_PER_STORE: usize = 256;

/// The three store types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreType {
    /// Certificate authorities for the `notary.x509` scheme.
    Ca,
    /// Signing authorities for the `notary.x509.signingAuthority` scheme.
    SigningAuthority,
    /// Timestamping authorities.
    Tsa,
}

impl StoreType {
    /// The name used in trust policies and directories.
    pub fn name(self) -> &'static str {
        match self {
            StoreType::Ca => "ca",
            StoreType::SigningAuthority => "signingAuthority",
            StoreType::Tsa => "tsa",
        }
    }

    /// Parse a store type name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "ca" => Some(StoreType::Ca),
            "signingAuthority" => Some(StoreType::SigningAuthority),
            "tsa" => Some(StoreType::Tsa),
            _ => None,
        }
    }
}

/// A named trust store as a statement names it (`ca:acme`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustStoreRef {
    /// Store type.
    pub store_type: StoreType,
    /// Store name.
    pub name: String,
}

impl fmt::Display for TrustStoreRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.store_type.name(), self.name)
    }
}

/// A trust store that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustStoreError {
    /// The store directory is absent.
    #[error("the trust store {name:?} of type {store_type:?} does not exist (looked in {path})")]
    Missing {
        /// Store name.
        name: String,
        /// Store type name.
        store_type: &'static str,
        /// Directory looked for.
        path: String,
    },
    /// A file or directory in the store is not acceptable.
    #[error("trust store {store}: {path}: {reason}")]
    BadEntry {
        /// The store.
        store: String,
        /// The entry.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The store holds no certificate.
    #[error("trust store {store} ({path}) has no x509 certificates")]
    Empty {
        /// The store.
        store: String,
        /// Its directory.
        path: String,
    },
}

/// The certificates of every store a trust policy names, loaded once.
#[derive(Debug, Clone, Default)]
pub struct TrustStores {
    stores: HashMap<TrustStoreRef, Arc<Vec<Certificate>>>,
    fingerprint: String,
}

impl TrustStores {
    /// Load the named stores from `root` (the directory holding `x509/`).
    pub fn load<'a>(
        root: &Path,
        refs: impl IntoIterator<Item = &'a TrustStoreRef>,
    ) -> Result<Self, TrustStoreError> {
        let mut stores = HashMap::new();
        let mut sorted: Vec<&TrustStoreRef> = refs.into_iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut fp = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for r in sorted {
            let certs = load_store(root, r)?;
            fp.update(r.to_string().as_bytes());
            for c in &certs {
                fp.update(c.der());
            }
            stores.insert(r.clone(), Arc::new(certs));
        }
        Ok(Self {
            stores,
            fingerprint: hex::encode(fp.finish()),
        })
    }

    /// The certificates of one store, if it was loaded.
    pub fn certificates(&self, r: &TrustStoreRef) -> Option<&[Certificate]> {
        self.stores.get(r).map(|v| v.as_slice())
    }

    /// SHA-256 over every store's name and certificates: changes whenever the contents do.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// Directory of a named store below the trust-store root.
pub fn store_dir(root: &Path, r: &TrustStoreRef) -> PathBuf {
    root.join("x509").join(r.store_type.name()).join(&r.name)
}

fn load_store(root: &Path, r: &TrustStoreRef) -> Result<Vec<Certificate>, TrustStoreError> {
    let dir = store_dir(root, r);
    let shown = dir.display().to_string();
    let bad = |path: &Path, reason: String| TrustStoreError::BadEntry {
        store: r.to_string(),
        path: path.display().to_string(),
        reason,
    };
    if !dir.is_dir() {
        return Err(TrustStoreError::Missing {
            name: r.name.clone(),
            store_type: r.store_type.name(),
            path: shown,
        });
    }
    let canonical_dir = dir.canonicalize().map_err(|e| bad(&dir, e.to_string()))?;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| bad(&dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".."))
        })
        // One past the limit is enough to refuse a store; more is not worth reading.
        .take(MAX_FILES_PER_STORE + 1)
        .collect();
    entries.sort();
    if entries.len() > MAX_FILES_PER_STORE {
        return Err(bad(&dir, format!("more than {MAX_FILES_PER_STORE} files")));
    }
    let mut certs = Vec::new();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path).map_err(|e| bad(&path, e.to_string()))?;
        let target = if meta.file_type().is_symlink() {
            let target = path
                .canonicalize()
                .map_err(|e| bad(&path, format!("broken symlink: {e}")))?;
            if !target.starts_with(&canonical_dir) {
                return Err(bad(
                    &path,
                    "symlink points outside the trust store directory".into(),
                ));
            }
            target
        } else {
            path.clone()
        };
        // The reader refuses FIFOs, devices and sockets without blocking, and reads at most
        // the limit: a store is watched while serving.
        let bytes =
            crate::files::read(&target, MAX_CERT_FILE_BYTES).map_err(|e| match e.problem {
                Problem::NotRegular(Kind::Directory) => bad(
                    &path,
                    "sub-directories are not allowed in a trust store".into(),
                ),
                problem => bad(&path, problem.to_string()),
            })?;
        let file_certs = parse_certificate_file(&bytes).map_err(|e| bad(&path, e))?;
        for c in &file_certs {
            match r.store_type {
                _ if !(c.is_ca() || c.is_self_signed()) => {
                    return Err(bad(
                        &path,
                        format!("certificate with subject {:?} is not a CA certificate or self-signed signing certificate", c.subject()),
                    ))
                }
                _ => {}
            }
        }
        // notation's order: every store's rule first, then the root-CA rule of `tsa` stores.
        if r.store_type == StoreType::Tsa {
            for c in &file_certs {
                c.check_root_ca().map_err(|e| bad(&path, e))?;
            }
        }
        certs.extend(file_certs);
    }
    if certs.is_empty() {
        return Err(TrustStoreError::Empty {
            store: r.to_string(),
            path: shown,
        });
    }
    Ok(certs)
}

/// Parse a certificate file: PEM with one or more `CERTIFICATE` blocks, or concatenated DER.
pub fn parse_certificate_file(bytes: &[u8]) -> Result<Vec<Certificate>, String> {
    let looks_pem = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|i| bytes[i..].starts_with(b"-----BEGIN"));
    let certs = if looks_pem {
        let mut out = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(bytes) {
            let pem = pem.map_err(|e| format!("invalid PEM: {e}"))?;
            if pem.label != "CERTIFICATE" {
                return Err(format!("unexpected PEM block {:?}", pem.label));
            }
            out.push(Certificate::from_der(&pem.contents).map_err(|e| e.to_string())?);
        }
        out
    } else {
        Certificate::from_der_sequence(bytes).map_err(|e| e.to_string())?
    };
    if certs.is_empty() {
        return Err("no certificate found".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn e2e_cert() -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/vectors/notation-e2e/localkeys/e2e.crt"),
        )
        .expect("vector")
    }

    fn store_ref() -> TrustStoreRef {
        TrustStoreRef {
            store_type: StoreType::Ca,
            name: "k8s".into(),
        }
    }

    #[test]
    fn kubernetes_volume_layout_with_data_symlinks_loads() {
        // What the kubelet makes of a Secret volume: files are symlinks into ..data, which is a
        // symlink to a hidden timestamped directory.
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("x509/ca/k8s");
        let stamped = dir.join("..2026_11_23_08_00_00.000000001");
        std::fs::create_dir_all(&stamped).unwrap();
        std::fs::write(stamped.join("ca.crt"), e2e_cert()).unwrap();
        symlink("..2026_11_23_08_00_00.000000001", dir.join("..data")).unwrap();
        symlink("..data/ca.crt", dir.join("ca.crt")).unwrap();
        let stores = TrustStores::load(root.path(), [&store_ref()]).unwrap();
        assert_eq!(stores.certificates(&store_ref()).unwrap().len(), 1);
    }

    #[test]
    fn symlinks_leaving_the_store_and_subdirectories_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("x509/ca/k8s");
        std::fs::create_dir_all(&dir).unwrap();
        let outside = root.path().join("outside.crt");
        std::fs::write(&outside, e2e_cert()).unwrap();
        symlink(&outside, dir.join("escape.crt")).unwrap();
        let err = TrustStores::load(root.path(), [&store_ref()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("points outside the trust store"), "{err}");
        std::fs::remove_file(dir.join("escape.crt")).unwrap();
        std::fs::create_dir(dir.join("nested")).unwrap();
        let err = TrustStores::load(root.path(), [&store_ref()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("sub-directories are not allowed"), "{err}");
        std::fs::remove_dir(dir.join("nested")).unwrap();
        std::fs::write(dir.join("README"), "not a certificate").unwrap();
        let err = TrustStores::load(root.path(), [&store_ref()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("README"), "{err}");
        std::fs::remove_file(dir.join("README")).unwrap();
        let err = TrustStores::load(root.path(), [&store_ref()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no x509 certificates"), "{err}");
    }

    #[test]
    fn a_tsa_store_holds_root_cas_only_with_notations_reasons() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/vectors/timestamp/notation-go/truststore");
        let tsa = |name: &str| TrustStoreRef {
            store_type: StoreType::Tsa,
            name: name.into(),
        };
        for ok in ["test-timestamp", "test-mismatch"] {
            TrustStores::load(&root, [&tsa(ok)]).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let err = TrustStores::load(&root, [&tsa("test-nonCA")])
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(r#"wabbit-networks.io.crt: certificate with subject "CN=wabbit-networks.io,O=Notary,L=Seattle,ST=WA,C=US" is not a root CA certificate: x509: invalid signature: parent certificate cannot sign this kind of certificate"#),
            "{err}"
        );
        let err = TrustStores::load(&root, [&tsa("test-nonSelfIssued")])
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(r#"nonSelfIssued.crt: certificate with subject "CN=Notation Test Revokable RSA Chain Cert 2,O=Notary,L=Seattle,ST=WA,C=US" is not a root CA certificate: issuer (CN=Notation Test Revokable RSA Chain Cert Root,O=Notary,L=Seattle,ST=WA,C=US) and subject (CN=Notation Test Revokable RSA Chain Cert 2,O=Notary,L=Seattle,ST=WA,C=US) are not the same"#),
            "{err}"
        );
    }

    #[test]
    fn a_fifo_in_the_store_is_refused_at_once() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("x509/ca/k8s");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.crt"), e2e_cert()).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(dir.join("dropped.crt"))
            .status()
            .unwrap();
        assert!(status.success());
        let err = TrustStores::load(root.path(), [&store_ref()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("dropped.crt: is a FIFO"), "{err}");
    }
}
