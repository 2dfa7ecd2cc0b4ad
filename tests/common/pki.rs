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

/// Where a certificate says its revocation status is kept.
#[derive(Clone, Copy, Default)]
pub struct Endpoints<'a> {
    /// A CRL distribution point URL.
    pub crl: Option<&'a str>,
    /// An OCSP responder URL (Authority Information Access).
    pub ocsp: Option<&'a str>,
}

impl Endpoints<'_> {
    fn apply(&self, p: &mut CertificateParams) {
        if let Some(url) = self.crl {
            p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![url.to_string()],
            }];
        }
        if let Some(url) = self.ocsp {
            // AuthorityInfoAccess ::= SEQUENCE OF AccessDescription { id-ad-ocsp, [6] URI }
            // (rcgen has no builder for it; URLs here are short, so lengths are one byte).
            let oid = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
            let mut desc = oid.to_vec();
            desc.push(0x86);
            desc.push(url.len() as u8);
            desc.extend_from_slice(url.as_bytes());
            let mut access = vec![0x30, desc.len() as u8];
            access.extend(desc);
            let mut aia = vec![0x30, access.len() as u8];
            aia.extend(access);
            p.custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                    aia,
                ));
        }
    }
}

/// A CA (a root, or an intermediate under one) that issues certificates naming revocation
/// endpoints and signs CRLs about them.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// Its certificate, then its issuers' up to the root (DER).
    pub chain: Vec<Vec<u8>>,
}

impl Ca {
    fn params(cn: &str, serial: u64) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name = name(cn);
        p.serial_number = Some(serial.into());
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p
    }

    /// A self-signed root CA (ECDSA P-256).
    pub fn root(cn: &str) -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let issuer = CertifiedIssuer::self_signed(Ca::params(cn, 1), key).expect("root");
        let chain = vec![issuer.der().to_vec()];
        Ca { issuer, chain }
    }

    /// An intermediate CA issued by this one, naming `endpoints`.
    pub fn intermediate(&self, cn: &str, serial: u64, endpoints: Endpoints<'_>) -> Ca {
        let mut p = Ca::params(cn, serial);
        endpoints.apply(&mut p);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let issuer = CertifiedIssuer::signed_by(p, key, &self.issuer).expect("intermediate");
        let mut chain = vec![issuer.der().to_vec()];
        chain.extend(self.chain.iter().cloned());
        Ca { issuer, chain }
    }

    /// A code-signing leaf issued by this CA, naming `endpoints`, with the chain up to the root
    /// (the root is the anchor).
    pub fn signer(&self, cn: &str, serial: u64, endpoints: Endpoints<'_>) -> Identity {
        let mut p = leaf_params(cn);
        p.serial_number = Some(serial.into());
        endpoints.apply(&mut p);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let leaf = p.signed_by(&key, &self.issuer).expect("leaf");
        let mut chain = vec![leaf.der().to_vec()];
        chain.extend(self.chain.iter().cloned());
        Identity {
            leaf_der: leaf.der().to_vec(),
            key_der: key.serialize_der(),
            anchor_der: chain.last().cloned().expect("root"),
            chain,
        }
    }

    /// A DER CRL signed by this CA revoking `revoked` (serials), current for a week.
    pub fn crl(&self, number: u64, revoked: &[u64]) -> Vec<u8> {
        let now = time::OffsetDateTime::now_utc();
        rcgen::CertificateRevocationListParams {
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::days(7),
            crl_number: number.into(),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: (*s).into(),
                    revocation_time: now - time::Duration::minutes(30),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .expect("CRL")
        .der()
        .to_vec()
    }

    /// Its certificate as PEM (for `openssl ocsp -CA`/`-rsigner`).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Its private key as PKCS#8 PEM (for `openssl ocsp -rkey`).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }
}
