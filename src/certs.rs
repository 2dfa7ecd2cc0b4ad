//! `vouch certs generate`: a CA and a serving certificate for the webhook, for development and
//! for installing with a user-provided TLS secret (see `certs/README.md` for cert-manager and the
//! chart-generated alternatives).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// What was written.
#[derive(Debug)]
pub struct Generated {
    /// CA certificate (PEM): the webhook configuration's `caBundle`.
    pub ca_cert: PathBuf,
    /// CA private key (PEM): keep it to issue the next serving certificate.
    pub ca_key: PathBuf,
    /// Serving certificate (PEM).
    pub tls_cert: PathBuf,
    /// Serving private key (PEM).
    pub tls_key: PathBuf,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CertsError(String);

fn err(e: impl std::fmt::Display) -> CertsError {
    CertsError(e.to_string())
}

/// Generate a CA (10 years) and a serving certificate (`days`) for `names` (DNS names or IP
/// addresses) into `out`. Private keys are written with mode 0600.
pub fn generate(names: &[String], days: u32, out: &Path) -> Result<Generated, CertsError> {
    if names.is_empty() {
        return Err(CertsError(
            "at least one --dns name is required (e.g. vouch.vouch.svc)".into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| err(format!("{}: {e}", out.display())))?;
    let now = OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "vouch webhook CA");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - Duration::minutes(5);
    ca.not_after = now + Duration::days(3650);
    let issuer = CertifiedIssuer::self_signed(ca, ca_key).map_err(err)?;

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names[0].as_str());
    leaf.distinguished_name = dn;
    for n in names {
        let san = match n.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                n.clone()
                    .try_into()
                    .map_err(|e| err(format!("{n:?}: {e}")))?,
            ),
        };
        leaf.subject_alt_names.push(san);
    }
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = now - Duration::minutes(5);
    leaf.not_after = now + Duration::days(i64::from(days.max(1)));
    let cert = leaf.signed_by(&key, &issuer).map_err(err)?;

    let g = Generated {
        ca_cert: out.join("ca.crt"),
        ca_key: out.join("ca.key"),
        tls_cert: out.join("tls.crt"),
        tls_key: out.join("tls.key"),
    };
    write(&g.ca_cert, &issuer.pem(), false)?;
    write(&g.ca_key, &issuer.key().serialize_pem(), true)?;
    write(&g.tls_cert, &cert.pem(), false)?;
    write(&g.tls_key, &key.serialize_pem(), true)?;
    Ok(g)
}

fn write(path: &Path, text: &str, private: bool) -> Result<(), CertsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if private {
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| err(format!("{}: {e}", path.display())))
}
