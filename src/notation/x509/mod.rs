//! Certificates and the Notation certificate rules.
//!
//! Parsing is x509-parser's; signatures are checked with aws-lc-rs. The rules are Notation's
//! code-signing chain rules (`notation-core-go/x509/codesigning_cert_validations.go`, the
//! specification's "Certificate Requirements"), written out here plainly. x509-parser's own
//! `verify-aws` helper is not used: it accepts SHA-1 and lacks P-521 and ECDSA-SHA-512, which
//! Notation rejects and allows respectively.

use std::fmt;

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::signature_algorithm::SignatureAlgorithm as X509SigAlg;

use der::Decode as _;

use super::dn::{go_style, DistinguishedName, DnError};

pub mod path;

/// The signature algorithms Notation allows, named as JWS names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum SignatureAlgorithm {
    /// RSASSA-PSS with SHA-256 (RSA 2048).
    PS256,
    /// RSASSA-PSS with SHA-384 (RSA 3072).
    PS384,
    /// RSASSA-PSS with SHA-512 (RSA 4096).
    PS512,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// ECDSA P-521 with SHA-512.
    ES512,
}

impl SignatureAlgorithm {
    /// The JWS `alg` name.
    pub fn jws_name(self) -> &'static str {
        match self {
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
        }
    }

    /// Parse a JWS `alg` name.
    pub fn from_jws_name(name: &str) -> Option<Self> {
        [
            Self::PS256,
            Self::PS384,
            Self::PS512,
            Self::ES256,
            Self::ES384,
            Self::ES512,
        ]
        .into_iter()
        .find(|a| a.jws_name() == name)
    }

    /// Parse a COSE `alg` value (RFC 9053 / RFC 8230 numbers).
    pub fn from_cose(value: i64) -> Option<Self> {
        match value {
            -37 => Some(Self::PS256),
            -38 => Some(Self::PS384),
            -39 => Some(Self::PS512),
            -7 => Some(Self::ES256),
            -35 => Some(Self::ES384),
            -36 => Some(Self::ES512),
            _ => None,
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jws_name())
    }
}

/// How a PSS salt length is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PssSalt {
    /// Salt length equal to the hash length only (COSE, RFC 8230).
    HashLength,
    /// Hash length or the maximum (JWS: golang-jwt verifies with "auto"; the two lengths real
    /// signers use are accepted, any other is refused).
    HashOrMax,
}

/// A parsed certificate with the facts the Notation rules need.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    subject: String,
    issuer: String,
    subject_dn: Result<DistinguishedName, DnError>,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    basic_constraints: Option<(bool, Option<u32>)>,
    key_usage: Option<(bool, u16)>,
    eku: Option<Eku>,
    key: PublicKeyInfo,
    tbs: Vec<u8>,
    signature_oid: String,
    pss_hash_oid: Option<String>,
    signature: Vec<u8>,
    serial: Vec<u8>,
    ocsp_urls: Vec<String>,
    crl_urls: Vec<String>,
    freshest_crl: Option<Vec<u8>>,
    /// A critical extension Go's parser does not handle (its `UnhandledCriticalExtensions`).
    unhandled_critical: Option<String>,
}

#[derive(Clone, Default)]
struct Eku {
    critical: bool,
    any: bool,
    server_auth: bool,
    client_auth: bool,
    email_protection: bool,
    time_stamping: bool,
    ocsp_signing: bool,
    /// How many purposes the extension lists (known or not).
    count: usize,
}

#[derive(Clone)]
enum KeyKind {
    Rsa(usize),
    Ec(Curve),
    Other(String),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Curve {
    P256,
    P384,
    P521,
    Unsupported,
}

#[derive(Clone)]
struct PublicKeyInfo {
    kind: KeyKind,
    bytes: Vec<u8>,
}

/// Why bytes are not a certificate.
#[derive(Debug, thiserror::Error)]
#[error("not a valid X.509 certificate: {0}")]
pub struct CertificateParseError(pub String);

const OID_KU_CRITICAL_EXT: &str = "2.5.29.15";
const OID_BC_EXT: &str = "2.5.29.19";
const OID_EKU_EXT: &str = "2.5.29.37";
const OID_FRESHEST_CRL_EXT: &str = "2.5.29.46";

/// The extensions Go's `x509.ParseCertificate` handles when critical (others end up in
/// `UnhandledCriticalExtensions`, which its chain verification refuses for the leaf).
const GO_HANDLED_EXTENSIONS: &[&str] = &[
    "2.5.29.14",         // subjectKeyIdentifier
    "2.5.29.15",         // keyUsage
    "2.5.29.17",         // subjectAltName
    "2.5.29.19",         // basicConstraints
    "2.5.29.30",         // nameConstraints
    "2.5.29.31",         // cRLDistributionPoints
    "2.5.29.32",         // certificatePolicies
    "2.5.29.33",         // policyMappings
    "2.5.29.35",         // authorityKeyIdentifier
    "2.5.29.36",         // policyConstraints
    "2.5.29.37",         // extKeyUsage
    "2.5.29.54",         // inhibitAnyPolicy
    "1.3.6.1.5.5.7.1.1", // authorityInfoAccess
];

impl Certificate {
    /// Parse one DER certificate (no trailing bytes allowed).
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateParseError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| CertificateParseError(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertificateParseError(
                "trailing bytes after certificate".into(),
            ));
        }
        Self::from_parsed(&cert, &der[..der.len() - rest.len()])
    }

    /// Parse a sequence of concatenated DER certificates.
    pub fn from_der_sequence(mut der: &[u8]) -> Result<Vec<Self>, CertificateParseError> {
        let mut out = Vec::new();
        while !der.is_empty() {
            let (rest, cert) =
                X509Certificate::from_der(der).map_err(|e| CertificateParseError(e.to_string()))?;
            out.push(Self::from_parsed(&cert, &der[..der.len() - rest.len()])?);
            der = rest;
        }
        Ok(out)
    }

    fn from_parsed(cert: &X509Certificate<'_>, der: &[u8]) -> Result<Self, CertificateParseError> {
        let bad = |what: &str, e: &dyn fmt::Display| CertificateParseError(format!("{what}: {e}"));
        let mut basic_constraints = None;
        let mut key_usage = None;
        let mut eku = None;
        let mut ocsp_urls = Vec::new();
        let mut crl_urls = Vec::new();
        let mut freshest_crl = None;
        let mut unhandled_critical = None;
        for ext in cert.extensions() {
            let oid = ext.oid.to_id_string();
            if ext.critical && !GO_HANDLED_EXTENSIONS.contains(&oid.as_str()) {
                unhandled_critical.get_or_insert_with(|| oid.clone());
            }
            match ext.parsed_extension() {
                ParsedExtension::BasicConstraints(bc) if oid == OID_BC_EXT => {
                    basic_constraints = Some((bc.ca, bc.path_len_constraint));
                }
                ParsedExtension::KeyUsage(ku) if oid == OID_KU_CRITICAL_EXT => {
                    key_usage = Some((ext.critical, ku.flags));
                }
                ParsedExtension::ExtendedKeyUsage(e) if oid == OID_EKU_EXT => {
                    let known = [
                        e.any,
                        e.server_auth,
                        e.client_auth,
                        e.code_signing,
                        e.email_protection,
                        e.time_stamping,
                        e.ocsp_signing,
                    ];
                    // Counted from the extension itself: a purpose listed twice is two, as Go
                    // counts it (x509-parser keeps one flag per purpose).
                    let listed = Vec::<der::asn1::ObjectIdentifier>::from_der(ext.value)
                        .map_or(known.iter().filter(|k| **k).count() + e.other.len(), |v| {
                            v.len()
                        });
                    eku = Some(Eku {
                        critical: ext.critical,
                        any: e.any,
                        count: listed,
                        server_auth: e.server_auth,
                        client_auth: e.client_auth,
                        email_protection: e.email_protection,
                        time_stamping: e.time_stamping,
                        ocsp_signing: e.ocsp_signing,
                    });
                }
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    ocsp_urls.extend(aia.accessdescs.iter().filter_map(|d| {
                        match (&d.access_location, d.access_method.to_id_string().as_str()) {
                            (GeneralName::URI(u), "1.3.6.1.5.5.7.48.1") => Some(u.to_string()),
                            _ => None,
                        }
                    }));
                }
                // Only URI full names count, as in Go's `Certificate.CRLDistributionPoints`: a
                // point with only a directory name is no CRL endpoint.
                ParsedExtension::CRLDistributionPoints(dps) => {
                    for point in &dps.points {
                        if let Some(DistributionPointName::FullName(names)) =
                            &point.distribution_point
                        {
                            crl_urls.extend(names.iter().filter_map(|n| match n {
                                GeneralName::URI(u) => Some(u.to_string()),
                                _ => None,
                            }));
                        }
                    }
                }
                _ if oid == OID_FRESHEST_CRL_EXT => {
                    freshest_crl = Some(ext.value.to_vec());
                }
                ParsedExtension::ParseError { error } => {
                    return Err(bad(&format!("extension {oid}"), error));
                }
                _ => {}
            }
        }
        let spki = cert.public_key();
        let kind = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => KeyKind::Rsa(rsa.key_size()),
            Ok(PublicKey::EC(_)) => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string());
                KeyKind::Ec(match curve.as_deref() {
                    Some("1.2.840.10045.3.1.7") => Curve::P256,
                    Some("1.3.132.0.34") => Curve::P384,
                    Some("1.3.132.0.35") => Curve::P521,
                    _ => Curve::Unsupported,
                })
            }
            Ok(_) | Err(_) => KeyKind::Other(spki.algorithm.algorithm.to_id_string()),
        };
        let pss_hash_oid = match X509SigAlg::try_from(&cert.signature_algorithm) {
            Ok(X509SigAlg::RSASSA_PSS(params)) => Some(params.hash_algorithm_oid().to_id_string()),
            _ => None,
        };
        Ok(Self {
            der: der.to_vec(),
            subject: go_style(cert.subject()),
            issuer: go_style(cert.issuer()),
            subject_dn: DistinguishedName::from_x509(cert.subject()),
            subject_raw: cert.subject().as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            basic_constraints,
            key_usage,
            eku,
            key: PublicKeyInfo {
                kind,
                bytes: spki.subject_public_key.data.to_vec(),
            },
            tbs: cert.tbs_certificate.as_ref().to_vec(),
            signature_oid: cert.signature_algorithm.algorithm.to_id_string(),
            pss_hash_oid,
            signature: cert.signature_value.data.to_vec(),
            serial: cert.raw_serial().to_vec(),
            ocsp_urls,
            crl_urls,
            freshest_crl,
            unhandled_critical,
        })
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject as notation prints it (`CN=e2e,O=Notary,L=Seattle,ST=WA,C=US`).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The issuer as notation prints it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Whether this is a root CA certificate as notation's `tsa` store requires (notation-go
    /// `truststore.go`): Go's `CheckSignatureFrom(itself)` (a CA, `keyCertSign` when it has a key
    /// usage, its own key verifying its signature) and the issuer the same as the subject.
    pub fn check_root_ca(&self) -> Result<(), String> {
        let not_root = |e: &dyn fmt::Display| {
            format!(
                "certificate with subject {:?} is not a root CA certificate: {e}",
                self.subject
            )
        };
        self.check_signature_from(self).map_err(|e| not_root(&e))?;
        if self.subject_raw != self.issuer_raw {
            return Err(not_root(&format_args!(
                "issuer ({}) and subject ({}) are not the same",
                self.issuer, self.subject
            )));
        }
        Ok(())
    }

    /// The subject as a DN for identity matching, or why it cannot match any identity.
    pub fn subject_dn(&self) -> Result<&DistinguishedName, &DnError> {
        self.subject_dn.as_ref()
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of the validity period.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// SHA-256 of the DER, lower-case hex (notation's thumbprint).
    pub fn sha256(&self) -> String {
        hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &self.der,
        ))
    }

    /// Whether basicConstraints says CA.
    pub fn is_ca(&self) -> bool {
        self.basic_constraints.is_some_and(|(ca, _)| ca)
    }

    /// The basic-constraints path length limit, when the certificate is a CA that sets one.
    pub fn path_len_constraint(&self) -> Option<u32> {
        self.basic_constraints
            .and_then(|(ca, len)| if ca { len } else { None })
    }

    /// Whether subject equals issuer and the certificate's own key verifies its signature.
    pub fn is_self_signed(&self) -> bool {
        self.subject_raw == self.issuer_raw && self.verify_signed_by(self).is_ok()
    }

    /// The serial number as its DER INTEGER content bytes.
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// The subject name as DER (what OCSP's `issuerNameHash` hashes).
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_raw
    }

    /// The issuer name as DER.
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer_raw
    }

    /// The subjectPublicKey BIT STRING contents (what OCSP's `issuerKeyHash` hashes).
    pub fn public_key_bits(&self) -> &[u8] {
        &self.key.bytes
    }

    /// OCSP responder URLs (authorityInfoAccess `id-ad-ocsp`, URI names), in order.
    pub fn ocsp_urls(&self) -> &[String] {
        &self.ocsp_urls
    }

    /// CRL distribution point URLs (URI full names), in order.
    pub fn crl_urls(&self) -> &[String] {
        &self.crl_urls
    }

    /// The raw value of the Freshest CRL extension (delta CRL locations), if present.
    pub fn freshest_crl_extension(&self) -> Option<&[u8]> {
        self.freshest_crl.as_deref()
    }

    /// The first critical extension Go would not handle, if any (its chain verification
    /// refuses such a leaf with `x509: unhandled critical extension`).
    pub fn unhandled_critical_extension(&self) -> Option<&str> {
        self.unhandled_critical.as_deref()
    }

    /// Whether two certificates have the same subject and key (Go's `alreadyInChain`: a path
    /// never holds two such, whatever their serials).
    pub fn same_subject_and_key(&self, other: &Certificate) -> bool {
        self.subject_raw == other.subject_raw && self.key.bytes == other.key.bytes
    }

    /// Whether `t` lies inside the validity period (both ends inclusive, as Go compares).
    pub fn is_valid_at(&self, t: OffsetDateTime) -> bool {
        self.not_before <= t && t <= self.not_after
    }

    /// Whether the extended key usage allows timestamping, as Go's chain verification asks it
    /// of every certificate of a TSA's chain: no extension (any purpose), `anyExtendedKeyUsage`,
    /// or `timeStamping` listed.
    pub fn permits_time_stamping(&self) -> bool {
        self.eku.as_ref().is_none_or(|e| e.any || e.time_stamping)
    }

    /// Whether the extended key usage is exactly `timeStamping`, and whether the extension is
    /// critical (RFC 3161 §2.3); `None` when it lists anything else or is absent.
    pub fn time_stamping_only(&self) -> Option<bool> {
        self.eku
            .as_ref()
            .filter(|e| e.count == 1 && e.time_stamping)
            .map(|e| e.critical)
    }

    /// Go's `CheckSignatureFrom`: `parent` must be allowed to sign certificates (a CA, with
    /// `keyCertSign` when it has a key usage) and its key must verify this certificate's
    /// signature (SHA-1 refused).
    pub fn check_signature_from(&self, parent: &Certificate) -> Result<(), String> {
        let may_sign = parent.is_ca()
            && parent
                .key_usage
                .is_none_or(|(_, flags)| flags & KU_KEY_CERT_SIGN != 0);
        if !may_sign {
            return Err(
                "x509: invalid signature: parent certificate cannot sign this kind of certificate"
                    .into(),
            );
        }
        self.verify_issued_by(parent, Sha1::Refused)
            .map_err(|e| format!("x509: {e}"))
    }

    /// Whether the key usage (if any) allows signing CRLs (`cRLSign`).
    pub fn may_sign_crls(&self) -> bool {
        self.key_usage
            .is_none_or(|(_, flags)| flags & (1 << 6) != 0)
    }

    /// Whether the certificate names OCSP responders or CRL distribution points.
    pub fn revocation_endpoints(&self) -> Option<&'static str> {
        match (!self.ocsp_urls.is_empty(), !self.crl_urls.is_empty()) {
            (true, true) => Some("OCSP and CRL"),
            (true, false) => Some("OCSP"),
            (false, true) => Some("CRL"),
            (false, false) => None,
        }
    }

    /// The signature algorithm this certificate's key must sign with, per Notation's key specs
    /// (RSA 2048/3072/4096, EC P-256/384/521).
    pub fn signing_algorithm(&self) -> Result<SignatureAlgorithm, String> {
        match &self.key.kind {
            KeyKind::Rsa(2048) => Ok(SignatureAlgorithm::PS256),
            KeyKind::Rsa(3072) => Ok(SignatureAlgorithm::PS384),
            KeyKind::Rsa(4096) => Ok(SignatureAlgorithm::PS512),
            KeyKind::Rsa(bits) => Err(format!("rsa key size {bits} bits is not supported")),
            KeyKind::Ec(Curve::P256) => Ok(SignatureAlgorithm::ES256),
            KeyKind::Ec(Curve::P384) => Ok(SignatureAlgorithm::ES384),
            KeyKind::Ec(Curve::P521) => Ok(SignatureAlgorithm::ES512),
            KeyKind::Ec(Curve::Unsupported) => Err("ecdsa curve is not supported".into()),
            KeyKind::Other(oid) => Err(format!("public key algorithm {oid} is not supported")),
        }
    }

    /// Verify a signature made by this certificate's key over `message`.
    pub fn verify_message(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        sig: &[u8],
        salt: PssSalt,
    ) -> Result<(), String> {
        use aws_lc_rs::signature::RsaPssSaltLength::Max;
        use SignatureAlgorithm::*;
        let ok = |a: &'static dyn VerificationAlgorithm| {
            UnparsedPublicKey::new(a, &self.key.bytes)
                .verify(message, sig)
                .is_ok()
        };
        let verified = match alg {
            PS256 => {
                ok(&signature::RSA_PSS_2048_8192_SHA256)
                    || (salt == PssSalt::HashOrMax
                        && ok(
                            &const { signature::RSA_PSS_2048_8192_SHA256.with_pss_salt_length(Max) },
                        ))
            }
            PS384 => {
                ok(&signature::RSA_PSS_2048_8192_SHA384)
                    || (salt == PssSalt::HashOrMax
                        && ok(
                            &const { signature::RSA_PSS_2048_8192_SHA384.with_pss_salt_length(Max) },
                        ))
            }
            PS512 => {
                ok(&signature::RSA_PSS_2048_8192_SHA512)
                    || (salt == PssSalt::HashOrMax
                        && ok(
                            &const { signature::RSA_PSS_2048_8192_SHA512.with_pss_salt_length(Max) },
                        ))
            }
            ES256 => ok(&signature::ECDSA_P256_SHA256_FIXED),
            ES384 => ok(&signature::ECDSA_P384_SHA384_FIXED),
            ES512 => ok(&signature::ECDSA_P521_SHA512_FIXED),
        };
        if verified {
            Ok(())
        } else {
            Err("signature is invalid".into())
        }
    }

    /// The OID of the algorithm this certificate is signed with.
    pub fn signature_algorithm_oid(&self) -> &str {
        &self.signature_oid
    }

    /// Verify that `issuer`'s key signed this certificate, with SHA-1 accepted or not (Go's
    /// `CheckSignature` accepts it for an OCSP responder's certificate).
    pub fn verify_issued_by(
        &self,
        issuer: &Certificate,
        sha1: Sha1,
    ) -> Result<(), X509SignatureError> {
        issuer.verify_x509_signature(
            &self.signature_oid,
            self.pss_hash_oid.as_deref(),
            &self.tbs,
            &self.signature,
            sha1,
        )
    }

    /// Verify that `issuer`'s key signed this certificate. SHA-1 is refused.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), String> {
        self.verify_issued_by(issuer, Sha1::Refused)
            .map_err(|e| match e {
                X509SignatureError::Invalid => {
                    format!("signature of certificate {:?} is invalid", self.subject)
                }
                X509SignatureError::Sha1Refused => {
                    "certificate is signed with SHA-1, which is not accepted".into()
                }
                X509SignatureError::UnsupportedPssHash => {
                    "RSASSA-PSS certificate signature uses an unsupported hash".into()
                }
                X509SignatureError::Unsupported(oid) => {
                    format!("certificate signature algorithm {oid} is not supported")
                }
                X509SignatureError::KeyMismatch(_) => format!(
                    "issuer key of {:?} does not fit the certificate's signature algorithm",
                    issuer.subject
                ),
            })
    }

    /// Verify that this certificate's key made `signature` over `signed` with the X.509
    /// signature algorithm `alg_oid` (and, for RSASSA-PSS, the hash `pss_hash_oid`): the one
    /// algorithm table for certificates, CRLs, OCSP responses and CMS signer infos.
    pub fn verify_x509_signature(
        &self,
        alg_oid: &str,
        pss_hash_oid: Option<&str>,
        signed: &[u8],
        signature: &[u8],
        sha1: Sha1,
    ) -> Result<(), X509SignatureError> {
        let hash = match alg_oid {
            "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" | "1.2.840.10045.4.1" => {
                if sha1 == Sha1::Refused {
                    return Err(X509SignatureError::Sha1Refused);
                }
                1
            }
            "1.2.840.113549.1.1.11" | "1.2.840.10045.4.3.2" => 256,
            "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => 384,
            "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => 512,
            "1.2.840.113549.1.1.10" => match pss_hash_oid {
                Some("2.16.840.1.101.3.4.2.1") => 256,
                Some("2.16.840.1.101.3.4.2.2") => 384,
                Some("2.16.840.1.101.3.4.2.3") => 512,
                _ => return Err(X509SignatureError::UnsupportedPssHash),
            },
            other => return Err(X509SignatureError::Unsupported(other.to_string())),
        };
        let pss = alg_oid == "1.2.840.113549.1.1.10";
        let ecdsa = alg_oid.starts_with("1.2.840.10045.4");
        let alg: &'static dyn VerificationAlgorithm = match (&self.key.kind, ecdsa, pss, hash) {
            (KeyKind::Rsa(_), false, false, 1) => {
                &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
            (KeyKind::Rsa(_), false, false, 256) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (KeyKind::Rsa(_), false, false, 384) => &signature::RSA_PKCS1_2048_8192_SHA384,
            (KeyKind::Rsa(_), false, false, 512) => &signature::RSA_PKCS1_2048_8192_SHA512,
            (KeyKind::Rsa(_), false, true, 256) => &signature::RSA_PSS_2048_8192_SHA256,
            (KeyKind::Rsa(_), false, true, 384) => &signature::RSA_PSS_2048_8192_SHA384,
            (KeyKind::Rsa(_), false, true, 512) => &signature::RSA_PSS_2048_8192_SHA512,
            (KeyKind::Ec(Curve::P256), true, _, 1) => &signature::ECDSA_P256_SHA1_ASN1,
            (KeyKind::Ec(Curve::P256), true, _, 256) => &signature::ECDSA_P256_SHA256_ASN1,
            (KeyKind::Ec(Curve::P256), true, _, 384) => &signature::ECDSA_P256_SHA384_ASN1,
            (KeyKind::Ec(Curve::P256), true, _, 512) => &signature::ECDSA_P256_SHA512_ASN1,
            (KeyKind::Ec(Curve::P384), true, _, 256) => &signature::ECDSA_P384_SHA256_ASN1,
            (KeyKind::Ec(Curve::P384), true, _, 384) => &signature::ECDSA_P384_SHA384_ASN1,
            (KeyKind::Ec(Curve::P384), true, _, 512) => &signature::ECDSA_P384_SHA512_ASN1,
            (KeyKind::Ec(Curve::P521), true, _, 1) => &signature::ECDSA_P521_SHA1_ASN1,
            (KeyKind::Ec(Curve::P521), true, _, 256) => &signature::ECDSA_P521_SHA256_ASN1,
            (KeyKind::Ec(Curve::P521), true, _, 384) => &signature::ECDSA_P521_SHA384_ASN1,
            (KeyKind::Ec(Curve::P521), true, _, 512) => &signature::ECDSA_P521_SHA512_ASN1,
            _ => return Err(X509SignatureError::KeyMismatch(self.subject.clone())),
        };
        UnparsedPublicKey::new(alg, &self.key.bytes)
            .verify(signed, signature)
            .map_err(|_| X509SignatureError::Invalid)
    }
}

/// Whether SHA-1 signatures are accepted: never for certificates, but for CRLs and OCSP
/// responses, as notation (Go's `CheckSignature`) accepts them there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sha1 {
    /// SHA-1 signatures fail.
    Refused,
    /// SHA-1 signatures are verified like any other.
    Accepted,
}

/// Why an X.509-style signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X509SignatureError {
    /// SHA-1 where it is refused.
    #[error("the signature uses SHA-1, which is not accepted")]
    Sha1Refused,
    /// RSASSA-PSS with a hash other than SHA-256/384/512.
    #[error("the RSASSA-PSS signature uses an unsupported hash")]
    UnsupportedPssHash,
    /// An algorithm OID vouch does not know.
    #[error("the signature algorithm {0} is not supported")]
    Unsupported(String),
    /// The signer's key does not fit the algorithm (an RSA algorithm with an EC key, a curve
    /// with a hash aws-lc-rs has no verifier for).
    #[error("the key of {0:?} does not fit the signature algorithm")]
    KeyMismatch(String),
    /// The signature does not verify.
    #[error("crypto verification error: the signature is invalid")]
    Invalid,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .finish()
    }
}

// Key usage bits as x509-parser numbers them (bit 0 = digitalSignature).
const KU_DIGITAL_SIGNATURE: u16 = 1 << 0;
const KU_KEY_ENCIPHERMENT: u16 = 1 << 2;
const KU_DATA_ENCIPHERMENT: u16 = 1 << 3;
const KU_KEY_AGREEMENT: u16 = 1 << 4;
const KU_KEY_CERT_SIGN: u16 = 1 << 5;
const KU_CRL_SIGN: u16 = 1 << 6;
const KU_ENCIPHER_ONLY: u16 = 1 << 7;
const KU_DECIPHER_ONLY: u16 = 1 << 8;

/// Check a signing chain (leaf first) against Notation's code-signing rules. Validity periods are
/// not checked here: that is the authentic-timestamp check.
pub fn validate_code_signing_chain(chain: &[Certificate]) -> Result<(), String> {
    let Some(leaf) = chain.first() else {
        return Err("certificate chain is not present".into());
    };
    if chain.len() == 1 {
        if !leaf.is_self_signed() {
            return Err(format!(
                "invalid self-signed certificate. subject: {:?}. Error: a chain of one certificate must be self-signed",
                leaf.subject
            ));
        }
    } else {
        for (i, pair) in chain.windows(2).enumerate() {
            let (child, parent) = (&pair[0], &pair[1]);
            if child.issuer_raw != parent.subject_raw {
                return Err(format!(
                    "invalid certificates or certificate with subject {:?} is not issued by {:?}. Error: issuer does not match subject",
                    child.subject, parent.subject
                ));
            }
            child.verify_signed_by(parent).map_err(|e| {
                format!(
                    "invalid certificates or certificate with subject {:?} is not issued by {:?}. Error: {e}",
                    child.subject, parent.subject
                )
            })?;
            if i < chain.len() - 2 && parent.is_self_signed() {
                return Err(
                    "certificate chain must not contain self-signed intermediate certificate"
                        .into(),
                );
            }
        }
        if leaf.is_self_signed() {
            return Err("certificate chain must not contain self-signed leaf certificate".into());
        }
        let root = &chain[chain.len() - 1];
        if !root.is_self_signed() {
            return Err(format!(
                "root certificate with subject {:?} is not self-signed. Certificate chain must end with a valid self-signed root certificate",
                root.subject
            ));
        }
    }
    validate_leaf(leaf)?;
    for (i, ca) in chain.iter().enumerate().skip(1) {
        validate_ca(ca, i - 1)?;
    }
    Ok(())
}

/// The key usages a signing or timestamping leaf must not have (all but digitalSignature and
/// nonRepudiation), named as notation names them, in its order.
fn forbidden_leaf_key_usages(flags: u16) -> impl Iterator<Item = &'static str> {
    [
        (KU_KEY_ENCIPHERMENT, "KeyEncipherment"),
        (KU_DATA_ENCIPHERMENT, "DataEncipherment"),
        (KU_KEY_AGREEMENT, "KeyAgreement"),
        (KU_KEY_CERT_SIGN, "CertSign"),
        (KU_CRL_SIGN, "CRLSign"),
        (KU_ENCIPHER_ONLY, "EncipherOnly"),
        (KU_DECIPHER_ONLY, "DecipherOnly"),
    ]
    .into_iter()
    .filter(move |(bit, _)| flags & bit != 0)
    .map(|(_, name)| name)
}

fn validate_leaf(leaf: &Certificate) -> Result<(), String> {
    let s = &leaf.subject;
    if leaf.is_ca() {
        return Err(format!(
            "the signing certificate with subject {s:?} is invalid. The basic constraints CA field must not be true"
        ));
    }
    match leaf.key_usage {
        None => {
            return Err(format!(
                "the signing certificate with subject {s:?} is invalid. The key usage extension must be present"
            ))
        }
        Some((false, _)) => {
            return Err(format!(
                "the signing certificate with subject {s:?} is invalid. The key usage extension must be marked critical"
            ))
        }
        Some((true, flags)) => {
            if flags & KU_DIGITAL_SIGNATURE == 0 {
                return Err(format!(
                    "the signing certificate with subject {s:?} is invalid. The key usage must have the bit positions for \"Digital Signature\" set"
                ));
            }
            if let Some(name) = forbidden_leaf_key_usages(flags).next() {
                return Err(format!(
                    "the signing certificate with subject {s:?} is invalid. The key usage must be \"Digital Signature\" only, but found {name:?}"
                ));
            }
        }
    }
    if let Some(eku) = &leaf.eku {
        let forbidden = [
            (eku.server_auth, "ServerAuth"),
            (eku.client_auth, "ClientAuth"),
            (eku.email_protection, "EmailProtection"),
            (eku.time_stamping, "TimeStamping"),
            (eku.ocsp_signing, "OCSPSigning"),
        ];
        if let Some((_, name)) = forbidden.iter().find(|(set, _)| *set) {
            return Err(format!(
                "the signing certificate with subject {s:?} is invalid. The extended key usage must not contain {name} eku"
            ));
        }
    }
    leaf.signing_algorithm()
        .map(|_| ())
        .map_err(|e| format!("the signing certificate with subject {s:?} is invalid. {e}"))
}

fn validate_ca(ca: &Certificate, cas_below: usize) -> Result<(), String> {
    let s = &ca.subject;
    match ca.basic_constraints {
        Some((true, path_len)) => {
            if let Some(max) = path_len {
                if (max as usize) < cas_below {
                    return Err(format!(
                        "certificate with subject {s:?} is invalid. The path length constraint {max} is smaller than the number of CA certificates below it"
                    ));
                }
            }
        }
        _ => {
            return Err(format!(
                "certificate with subject {s:?} is invalid. The basic constraints CA field must be true for a CA certificate"
            ))
        }
    }
    match ca.key_usage {
        Some((true, flags)) if flags & KU_KEY_CERT_SIGN != 0 => Ok(()),
        Some((true, _)) => Err(format!(
            "certificate with subject {s:?} is invalid. The key usage must have the bit positions for \"Certificate Sign\" set"
        )),
        Some((false, _)) => Err(format!(
            "certificate with subject {s:?} is invalid. The key usage extension must be marked critical"
        )),
        None => Err(format!(
            "certificate with subject {s:?} is invalid. The key usage extension must be present"
        )),
    }
}

/// Check a TSA's chain (signer first, ending with its trusted root) against Notation's
/// timestamping rules (notation-core-go `x509/timestamp_cert_validations.go`
/// `ValidateTimestampingCertChain`), with its messages. Validity periods are not checked here:
/// the chain was built at the timestamp's time.
pub fn validate_timestamping_chain(chain: &[Certificate]) -> Result<(), String> {
    let Some(leaf) = chain.first() else {
        return Err("certificate chain must contain at least one certificate".into());
    };
    if chain.len() == 1 {
        leaf.verify_issued_by(leaf, Sha1::Refused).map_err(|e| {
            format!(
                "invalid self-signed certificate. subject: {:?}. Error: x509: {e}",
                leaf.subject
            )
        })?;
        if leaf.subject_raw != leaf.issuer_raw {
            return Err(format!(
                "invalid self-signed certificate. subject: {:?}. Error: issuer ({}) and subject ({}) are not the same",
                leaf.subject, leaf.issuer, leaf.subject
            ));
        }
        return validate_timestamping_leaf(leaf)
            .map_err(|e| format!("invalid self-signed certificate. Error: {e}"));
    }
    // Go's `isIssuedBy`: the signature first, then the names.
    let issued_by = |child: &Certificate, parent: &Certificate| {
        child
            .check_signature_from(parent)
            .map(|()| parent.subject_raw == child.issuer_raw)
    };
    let last = chain.len() - 1;
    for (i, cert) in chain.iter().enumerate() {
        let s = &cert.subject;
        if i == last {
            match issued_by(cert, cert) {
                Err(e) => return Err(format!(
                    "root certificate with subject {s:?} is invalid or not self-signed. Certificate chain must end with a valid self-signed root certificate. Error: {e}"
                )),
                Ok(false) => return Err(format!(
                    "root certificate with subject {s:?} is not self-signed. Certificate chain must end with a valid self-signed root certificate"
                )),
                Ok(true) => {}
            }
        } else {
            if let Ok(true) = issued_by(cert, cert) {
                return Err(if i == 0 {
                    format!("leaf certificate with subject {s:?} is self-signed. Certificate chain must not contain self-signed leaf certificate")
                } else {
                    format!("intermediate certificate with subject {s:?} is self-signed. Certificate chain must not contain self-signed intermediate certificate")
                });
            }
            let parent = &chain[i + 1];
            match issued_by(cert, parent) {
                Err(e) => return Err(format!(
                    "invalid certificates or certificate with subject {s:?} is not issued by {:?}. Error: {e}",
                    parent.subject
                )),
                Ok(false) => return Err(format!(
                    "certificate with subject {s:?} is not issued by {:?}",
                    parent.subject
                )),
                Ok(true) => {}
            }
        }
        if i == 0 {
            validate_timestamping_leaf(cert)?;
        } else {
            validate_timestamping_ca(cert, i - 1)?;
        }
    }
    Ok(())
}

fn validate_timestamping_leaf(leaf: &Certificate) -> Result<(), String> {
    let s = &leaf.subject;
    if leaf.is_ca() {
        return Err(format!(
            "certificate with subject {s:?}: if the basic constraints extension is present, the ca field must be set to false"
        ));
    }
    let Some((_, flags)) = leaf.key_usage else {
        return Err(format!(
            "certificate with subject {s:?}: key usage extension must be present"
        ));
    };
    if flags & KU_DIGITAL_SIGNATURE == 0 {
        return Err(format!(
            "the certificate with subject {s:?} is invalid. The key usage must have the bit positions for \"Digital Signature\" set"
        ));
    }
    let found: Vec<String> = forbidden_leaf_key_usages(flags)
        .map(|name| format!("{name:?}"))
        .collect();
    if !found.is_empty() {
        return Err(format!(
            "the certificate with subject {s:?} is invalid. The key usage must be \"Digital Signature\" only, but found {}",
            found.join(", ")
        ));
    }
    match leaf.time_stamping_only() {
        None => return Err(format!(
            "timestamp signing certificate with subject {s:?} must have and only have Timestamping as extended key usage"
        )),
        Some(false) => return Err(format!(
            "timestamp signing certificate with subject {s:?} must have extended key usage extension marked as critical"
        )),
        Some(true) => {}
    }
    leaf.signing_algorithm()
        .map(|_| ())
        .map_err(|e| format!("certificate with subject {s:?}: {e}"))
}

fn validate_timestamping_ca(ca: &Certificate, cas_below: usize) -> Result<(), String> {
    let s = &ca.subject;
    match ca.basic_constraints {
        Some((true, Some(max))) if (max as usize) < cas_below => {
            return Err(format!(
                "certificate with subject {s:?}: expected path length of {cas_below} but certificate has path length {max} instead"
            ))
        }
        Some((true, _)) => {}
        _ => {
            return Err(format!(
                "certificate with subject {s:?}: ca field in basic constraints must be present, critical, and set to true"
            ))
        }
    }
    match ca.key_usage {
        None => Err(format!(
            "certificate with subject {s:?}: key usage extension must be present"
        )),
        Some((_, flags)) if flags & KU_KEY_CERT_SIGN == 0 => Err(format!(
            "certificate with subject {s:?}: key usage must have the bit positions for key cert sign set"
        )),
        Some(_) => Ok(()),
    }
}

/// Notation's time format in messages (Go's `time.RFC1123Z`): `Tue, 27 Jun 2023 06:10:00 +0000`.
pub fn rfc1123z(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    t.format(&fmt).unwrap_or_else(|_| t.to_string())
}
