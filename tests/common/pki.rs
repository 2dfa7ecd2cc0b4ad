//! Test certificates and signers made with rcgen, for the cases the Notation vectors lack.
#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SignatureAlgorithm,
};
use vouch::notation::signer::{Signer, SigningKey};

/// A leaf certificate (DER), its PKCS#8 key, and the chain to put in an envelope.
pub struct Identity {
    pub leaf_der: Vec<u8>,
    pub key_der: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
    /// The certificate to put in a `ca` store.
    pub anchor_der: Vec<u8>,
}

impl Identity {
    pub fn signer(&self) -> Signer {
        Signer::new(
            SigningKey::from_pkcs8(&self.key_der).expect("key"),
            self.chain.clone(),
        )
        .expect("signer")
    }

    /// The leaf's subject as vouch (and Go's `pkix.Name`) prints it.
    pub fn subject(&self) -> String {
        vouch::notation::x509::Certificate::from_der(&self.leaf_der)
            .expect("leaf")
            .subject()
            .to_string()
    }

    /// Write the anchor as a PEM file into `<root>/x509/ca/<name>/`.
    pub fn write_store(&self, root: &std::path::Path, name: &str) {
        let d = root.join("x509/ca").join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64_lines(&self.anchor_der)
        );
        std::fs::write(d.join("anchor.pem"), pem).expect("write");
    }
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine;
    let s = base64::engine::general_purpose::STANDARD.encode(der);
    s.as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::StateOrProvinceName, "WA");
    dn.push(DnType::OrganizationName, "vouch-test");
    dn.push(DnType::CommonName, cn);
    dn
}

fn leaf_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name = name(cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    p.is_ca = IsCa::ExplicitNoCa;
    p
}

/// A self-signed signing certificate (the notation test-key shape).
pub fn self_signed(cn: &str, alg: &'static SignatureAlgorithm) -> Identity {
    let key = KeyPair::generate_for(alg).expect("key");
    let cert = leaf_params(cn).self_signed(&key).expect("cert");
    Identity {
        leaf_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
        chain: vec![cert.der().to_vec()],
        anchor_der: cert.der().to_vec(),
    }
}

/// A leaf issued by a root CA; the root is the anchor.
pub fn ca_issued(cn: &str, alg: &'static SignatureAlgorithm) -> Identity {
    issued(cn, alg, None)
}

/// A leaf issued by a root CA, valid from `not_before` to `not_after` (the root keeps rcgen's
/// default span, 1975–4096, so only the leaf's dates matter); the root is the anchor.
pub fn ca_issued_valid(
    cn: &str,
    alg: &'static SignatureAlgorithm,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> Identity {
    issued(cn, alg, Some((not_before, not_after)))
}

fn issued(
    cn: &str,
    alg: &'static SignatureAlgorithm,
    validity: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
) -> Identity {
    let ca_key = KeyPair::generate_for(alg).expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.distinguished_name = name(&format!("{cn} root"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = CertifiedIssuer::self_signed(ca, ca_key).expect("ca");
    let key = KeyPair::generate_for(alg).expect("key");
    let mut params = leaf_params(cn);
    if let Some((not_before, not_after)) = validity {
        params.not_before = not_before;
        params.not_after = not_after;
    }
    let leaf = params.signed_by(&key, &issuer).expect("leaf");
    Identity {
        leaf_der: leaf.der().to_vec(),
        key_der: key.serialize_der(),
        chain: vec![leaf.der().to_vec(), issuer.der().to_vec()],
        anchor_der: issuer.der().to_vec(),
    }
}
