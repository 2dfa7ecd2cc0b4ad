//! The webhook's serving certificate, reloaded without a restart when its files change (as
//! cert-manager rotates them). Every TLS handshake asks the resolver for the current key, so the
//! next handshake after a reload presents the new certificate; an invalid new pair is refused and
//! the old one kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Largest certificate chain or key file read.
const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

/// A TLS certificate problem.
#[derive(Debug, thiserror::Error)]
#[error("TLS {what} {path}: {reason}")]
pub struct TlsError {
    /// `certificate` or `key`.
    pub what: &'static str,
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// Load a PEM certificate chain and private key, and check that they belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_err = |reason: String| TlsError {
        what: "certificate",
        path: cert.display().to_string(),
        reason,
    };
    let key_err = |reason: String| TlsError {
        what: "key",
        path: key.display().to_string(),
        reason,
    };
    let read = |path: &Path| {
        crate::files::read(path, MAX_PEM_FILE_BYTES).map_err(|e| e.problem.to_string())
    };
    let cert_pem = read(cert).map_err(cert_err)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no CERTIFICATE block found".into()));
    }
    let key_pem = read(key).map_err(key_err)?;
    let der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| key_err(e.to_string()))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let ck = CertifiedKey::from_der(chain, der, &provider).map_err(|e| {
        key_err(format!(
            "does not match the certificate or is not supported: {e}"
        ))
    })?;
    Ok(ck)
}

/// A certificate resolver whose key can be swapped while serving.
#[derive(Debug)]
pub struct ReloadingCert {
    current: ArcSwap<CertifiedKey>,
    cert: PathBuf,
    key: PathBuf,
}

impl ReloadingCert {
    /// Load the pair once; errors here stop the server from starting.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let ck = load_certified_key(cert, key)?;
        Ok(Arc::new(Self {
            current: ArcSwap::from_pointee(ck),
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }))
    }

    /// The files this resolver serves.
    pub fn paths(&self) -> [&Path; 2] {
        [&self.cert, &self.key]
    }

    /// Re-read the files; on success the next handshake uses them.
    pub fn reload(&self) -> Result<(), TlsError> {
        let ck = load_certified_key(&self.cert, &self.key)?;
        self.current.store(Arc::new(ck));
        Ok(())
    }

    /// A rustls server configuration (TLS 1.2 and 1.3, aws-lc-rs, h2 and http/1.1).
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, rustls::Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}
