//! RFC 3161 timestamp countersignatures (`io.cncf.notary.timestampSignature`), verified as
//! notation does: notation-go `verifier.go` `verifyTimestamp` drives tspclient-go
//! (`token.go` `ParseSignedToken`, `Info`, `TSTInfo.Validate`, `SignedToken.Verify`, and its
//! internal `cms` package) and notation-core-go `ValidateTimestampingCertChain`
//! ([`crate::notation::x509::validate_timestamping_chain`]). The rules, with notation's messages,
//! are quoted in `../shared/vectors/timestamp-revocation.md` Part A.
//!
//! A token is read in three steps the verifier calls in notation's order, each failing with its
//! own [`TimestampError`]:
//! 1. [`TimestampToken::parse`]: CMS `ContentInfo` → `SignedData` v3 whose content is a
//!    `TSTInfo` (RustCrypto's `cms` crate decodes the CMS layer);
//! 2. [`TimestampToken::timestamp`]: the `TSTInfo` (version 1, SHA-2 imprint equal to the hash
//!    of the envelope's raw signature bytes), giving the time and its accuracy;
//! 3. [`TimestampToken::verify`]: a signer info whose `SigningCertificateV2` names a certificate
//!    of the token, that certificate's path to a root of the `tsa` trust store at the token's
//!    time (timestamping EKU along the path), the signature over the signed attributes, their
//!    content type and message digest, and the signer's critical, sole `timeStamping` EKU.
//!
//! Written here rather than taken from a crate: `TSTInfo` and `SigningCertificateV2` are
//! decoded with `der`'s derive because `x509-tsp` refuses a `TSTInfo` whose version is not 1 at
//! decode time (notation reports that one step later, with its own words) and cannot read the
//! fractional-second `genTime` that Microsoft's TSA issues; the X.509 path is built here (a few
//! certificates, Go's `Verify` rules that matter for a TSA chain) because the certificates
//! are already parsed into [`Certificate`] and no path-building crate verifies at a chosen time
//! with an EKU constraint over aws-lc-rs. Not done, as in notation: BER tokens (tspclient
//! converts BER to DER; TSAs send DER), the TSTInfo's policy, nonce, ordering and TSA name.

use aws_lc_rs::digest;
use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef, UtcTime};
use der::{Decode, Encode, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};
use spki::AlgorithmIdentifierRef;
use time::{Duration, OffsetDateTime};

use super::revocation::{go_generalized_time, minimal_integer};
use super::x509::path::{build_path, Purpose};
use super::x509::{rfc1123z, Certificate};

const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const OID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const OID_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
const OID_SIGNING_CERTIFICATE_V2: &str = "1.2.840.113549.1.9.16.2.47";
/// RFC 3628's baseline time-stamp policy: a token under it without an accuracy has 1 s.
const OID_BASELINE_POLICY: &str = "0.4.0.2023.1.1";
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
const OID_SHA384: &str = "2.16.840.1.101.3.4.2.2";
const OID_SHA512: &str = "2.16.840.1.101.3.4.2.3";

/// Most signer infos and certificates read from one token: real tokens carry one signer and
/// a handful of certificates; the bound keeps a hostile token's verification work small.
const MAX_SIGNER_INFOS: usize = 8;
const MAX_CERTIFICATES: usize = 32;

/// Why a timestamp countersignature does not count, in notation's words (each variant is one
/// step of notation-go's `verifyTimestamp`; the first failure wins).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// Timestamp verification is due but the envelope carries no token.
    #[error("no timestamp countersignature was found in the signature envelope")]
    Missing,
    /// The token is not a CMS SignedData holding a TSTInfo.
    #[error("failed to parse timestamp countersignature with error: {0}")]
    Parse(String),
    /// The TSTInfo does not decode.
    #[error("failed to get the timestamp TSTInfo with error: cannot unmarshal TSTInfo from timestamp token: {0}")]
    TstInfo(String),
    /// The TSTInfo is not valid for this signature (version, hash algorithm, imprint).
    #[error(
        "failed to get timestamp from timestamp countersignature with error: invalid TSTInfo: {0}"
    )]
    Invalid(String),
    /// A `tsa` store named by the statement is not loaded.
    #[error("failed to load tsa trust store with error: {0}")]
    TrustStore(String),
    /// The statement's `tsa` stores hold no certificate.
    #[error("no trusted TSA certificate found in trust store")]
    NoTrustedTsa,
    /// The token's signature or its signer's certificate path does not verify.
    #[error("failed to verify the timestamp countersignature with error: failed to verify signed token: {0}")]
    Verify(String),
    /// The TSA's chain breaks Notation's timestamping certificate rules.
    #[error("failed to validate the timestamping certificate chain with error: {0}")]
    Chain(String),
    /// The earliest time the token allows is before a signing certificate's validity.
    #[error("timestamp can be before certificate {subject:?} validity period, it will be valid from {from:?}")]
    BeforeValidity {
        /// The signing certificate.
        subject: String,
        /// Its `notBefore`, RFC 1123Z.
        from: String,
    },
    /// The latest time the token allows is after a signing certificate's validity.
    #[error("timestamp can be after certificate {subject:?} validity period, it was expired at {until:?}")]
    AfterValidity {
        /// The signing certificate.
        subject: String,
        /// Its `notAfter`, RFC 1123Z.
        until: String,
    },
    /// The TSA's chain is revoked or its status unknown (notation's chain-result message).
    #[error("{0}")]
    Revocation(String),
}

/// The time a token vouches for: `genTime` ± accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// `genTime`.
    pub time: OffsetDateTime,
    /// The TSA's accuracy (RFC 3628's baseline policy without one: 1 s).
    pub accuracy: Duration,
}

impl Timestamp {
    /// The earliest the signature may have been made (`None` past the calendar: an absurd
    /// accuracy, which then fails [`Self::within`]).
    pub fn earliest(&self) -> Option<OffsetDateTime> {
        self.time.checked_sub(self.accuracy)
    }

    /// The latest the signature may have been made (`None` past the calendar).
    pub fn latest(&self) -> Option<OffsetDateTime> {
        self.time.checked_add(self.accuracy)
    }

    /// Whether the whole interval lies inside `cert`'s validity (tspclient-go `BoundedAfter`
    /// and `BoundedBefore`, both ends inclusive), else notation's message for the side that
    /// does not.
    pub fn within(&self, cert: &Certificate) -> Result<(), TimestampError> {
        if self.earliest().is_none_or(|t| t < cert.not_before()) {
            return Err(TimestampError::BeforeValidity {
                subject: cert.subject().to_string(),
                from: rfc1123z(cert.not_before()),
            });
        }
        if self.latest().is_none_or(|t| t > cert.not_after()) {
            return Err(TimestampError::AfterValidity {
                subject: cert.subject().to_string(),
                until: rfc1123z(cert.not_after()),
            });
        }
        Ok(())
    }
}

/// A parsed RFC 3161 timestamp token (`TimeStampToken`, a CMS SignedData over a TSTInfo).
#[derive(Debug)]
pub struct TimestampToken {
    tst_info: Vec<u8>,
    certificates: Vec<Certificate>,
    signers: Vec<SignerParts>,
}

/// The parts of a CMS SignerInfo the verification reads.
#[derive(Debug)]
struct SignerParts {
    version: u8,
    /// `sid` as issuer name DER and serial INTEGER content.
    issuer: Vec<u8>,
    serial: Vec<u8>,
    digest_alg: String,
    signed_attrs: Option<SignedAttributes>,
    signature_alg: String,
    signature: Vec<u8>,
}

/// The signed attributes as `(type, first value DER)`, and their SET's DER (what the signature
/// covers).
type SignedAttributes = (Vec<(String, Vec<u8>)>, Vec<u8>);

impl SignerParts {
    /// The first value of the signed attribute `oid` (Go's `Attributes.Get`).
    fn attribute(&self, oid: &str) -> Option<&[u8]> {
        self.signed_attrs.as_ref().and_then(|(attrs, _)| {
            attrs
                .iter()
                .find(|(t, _)| t == oid)
                .map(|(_, v)| v.as_slice())
        })
    }
}

/// `TSTInfo` (RFC 3161 §2.4.2), decoded as Go's `encoding/asn1` reads tspclient-go's struct:
/// the version as any INTEGER (checked later, with its own message), `genTime` kept raw
/// because Go reads fractional seconds.
#[derive(Sequence)]
struct TstInfo<'a> {
    version: i64,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint<'a>,
    serial_number: der::asn1::IntRef<'a>,
    gen_time: AnyRef<'a>,
    #[asn1(optional = "true")]
    accuracy: Option<Accuracy>,
    #[asn1(optional = "true")]
    ordering: Option<bool>,
    #[asn1(optional = "true")]
    nonce: Option<der::asn1::IntRef<'a>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<AnyRef<'a>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<Vec<AnyRef<'a>>>,
}

#[derive(Sequence)]
struct MessageImprint<'a> {
    hash_algorithm: AlgorithmIdentifierRef<'a>,
    hashed_message: OctetStringRef<'a>,
}

#[derive(Sequence)]
struct Accuracy {
    #[asn1(optional = "true")]
    seconds: Option<i64>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    millis: Option<i64>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    micros: Option<i64>,
}

/// `SigningCertificateV2` (RFC 5035 §3).
#[derive(Sequence)]
struct SigningCertificateV2<'a> {
    certs: Vec<EssCertIdV2<'a>>,
    #[asn1(optional = "true")]
    policies: Option<AnyRef<'a>>,
}

/// `ESSCertIDv2` (RFC 5035 §4); the hash algorithm defaults to SHA-256.
#[derive(Sequence)]
struct EssCertIdV2<'a> {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierRef<'a>>,
    cert_hash: OctetStringRef<'a>,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial<'a>>,
}

/// `IssuerSerial`: `GeneralNames` (kept raw; tspclient reads a leading directoryName only)
/// and the serial.
#[derive(Sequence)]
struct IssuerSerial<'a> {
    issuer: AnyRef<'a>,
    serial: der::asn1::IntRef<'a>,
}

fn hash_of(alg_oid: &str, data: &[u8]) -> Option<Vec<u8>> {
    let alg = match alg_oid {
        OID_SHA256 => &digest::SHA256,
        OID_SHA384 => &digest::SHA384,
        OID_SHA512 => &digest::SHA512,
        _ => return None,
    };
    Some(digest::digest(alg, data).as_ref().to_vec())
}

impl TimestampToken {
    /// Read a token (tspclient-go `ParseSignedToken`): a DER ContentInfo of type signedData,
    /// SignedData version 3, X.509 certificates only, and content of type id-ct-TSTInfo.
    pub fn parse(token: &[u8]) -> Result<Self, TimestampError> {
        let syntax = |what: &str, e: &dyn std::fmt::Display| {
            TimestampError::Parse(format!("cms: syntax error: {what}: {e}"))
        };
        let info = ContentInfo::from_der(token).map_err(|e| {
            syntax(
                "invalid content info: failed to unmarshal DER to ContentInfo",
                &e,
            )
        })?;
        if info.content_type.to_string() != OID_SIGNED_DATA {
            return Err(TimestampError::Parse(
                "cms: content type is not signed-data".into(),
            ));
        }
        let signed: SignedData = info
            .content
            .decode_as()
            .map_err(|e| syntax("invalid signed data", &e))?;
        if signed.version != CmsVersion::V3 {
            return Err(TimestampError::Parse(format!(
                "cms: syntax error: unsupported signed data version: got {}, want 3",
                signed.version as u8
            )));
        }
        let x509_only = "failed to parse X.509 certificates from signed data. Only X.509 certificates are supported";
        let count = signed.certificates.as_ref().map_or(0, |set| set.0.len());
        if count > MAX_CERTIFICATES {
            return Err(TimestampError::Parse(format!(
                "the token carries {count} certificates; at most {MAX_CERTIFICATES} are read"
            )));
        }
        let mut certificates = Vec::new();
        for choice in signed.certificates.iter().flat_map(|set| set.0.iter()) {
            let CertificateChoices::Certificate(cert) = choice else {
                return Err(TimestampError::Parse(format!(
                    "cms: syntax error: {x509_only}"
                )));
            };
            let der = cert.to_der().map_err(|e| syntax(x509_only, &e))?;
            certificates.push(Certificate::from_der(&der).map_err(|e| syntax(x509_only, &e))?);
        }
        let content_type = signed.encap_content_info.econtent_type.to_string();
        if content_type != OID_TST_INFO {
            return Err(TimestampError::Parse(format!(
                "unexpected content type: {content_type}. Expected to be id-ct-TSTInfo ({OID_TST_INFO})"
            )));
        }
        // eContent is an OCTET STRING; Go reads its bytes (none when it is absent).
        let tst_info = match &signed.encap_content_info.econtent {
            Some(any) if any.tag() == Tag::OctetString => any.value().to_vec(),
            Some(any) => {
                return Err(TimestampError::Parse(format!(
                    "cms: syntax error: invalid signed data: eContent is {}, not an OCTET STRING",
                    any.tag()
                )))
            }
            None => Vec::new(),
        };
        // The signer infos are read from the token's own bytes: `der` sorts a SET OF when it
        // decodes one, so neither the order of the signer infos (the first that verifies wins)
        // nor the signed bytes of their attributes would survive a decode and re-encode.
        let raw_signers = raw_signer_infos(info.content.value())
            .map_err(|e| syntax("invalid signed data", &e))?;
        if raw_signers.len() > MAX_SIGNER_INFOS {
            return Err(TimestampError::Parse(format!(
                "the token carries {} signer infos; at most {MAX_SIGNER_INFOS} are read",
                raw_signers.len()
            )));
        }
        let mut signers = Vec::new();
        for raw in raw_signers {
            let si = cms::signed_data::SignerInfo::from_der(raw)
                .map_err(|e| syntax("invalid signed data", &e))?;
            // Go's SignerInfo holds an IssuerAndSerialNumber; a subject key identifier does
            // not parse there.
            let SignerIdentifier::IssuerAndSerialNumber(sid) = &si.sid else {
                return Err(TimestampError::Parse(
                    "cms: syntax error: invalid signed data: the signer identifier must be an IssuerAndSerialNumber".into(),
                ));
            };
            // An empty SET counts as none, as Go's `len(SignedAttributes) == 0`.
            let signed_attrs = match &si.signed_attrs {
                None => None,
                Some(set) if set.is_empty() => None,
                Some(set) => {
                    let der = raw_signed_attributes(raw)
                        .map_err(|e| syntax("invalid signed data", &e))?;
                    let mut attrs = Vec::new();
                    for a in set.iter() {
                        // An attribute with no value reads as absent data, as in Go.
                        let first = match a.values.iter().next() {
                            Some(v) => v.to_der().map_err(|e| syntax("invalid signed data", &e))?,
                            None => Vec::new(),
                        };
                        attrs.push((a.oid.to_string(), first));
                    }
                    Some((attrs, der))
                }
            };
            signers.push(SignerParts {
                version: si.version as u8,
                issuer: sid
                    .issuer
                    .to_der()
                    .map_err(|e| syntax("invalid signed data", &e))?,
                serial: sid.serial_number.as_bytes().to_vec(),
                digest_alg: si.digest_alg.oid.to_string(),
                signed_attrs,
                signature_alg: si.signature_algorithm.oid.to_string(),
                signature: si.signature.as_bytes().to_vec(),
            });
        }
        Ok(Self {
            tst_info,
            certificates,
            signers,
        })
    }

    /// The certificates the token carries.
    pub fn certificates(&self) -> &[Certificate] {
        &self.certificates
    }

    /// The time the token vouches for `message` (the envelope's raw signature bytes): the
    /// TSTInfo decoded (tspclient-go `Info`) and validated (`TSTInfo.Validate`).
    pub fn timestamp(&self, message: &[u8]) -> Result<Timestamp, TimestampError> {
        let mut reader =
            SliceReader::new(&self.tst_info).map_err(|e| TimestampError::TstInfo(e.to_string()))?;
        // Go's `asn1.Unmarshal` leaves trailing bytes to the caller, which ignores them.
        let info: TstInfo<'_> = reader
            .decode()
            .map_err(|e| TimestampError::TstInfo(e.to_string()))?;
        let gen_time = (info.gen_time.tag() == Tag::GeneralizedTime)
            .then(|| go_generalized_time(info.gen_time.value()))
            .flatten()
            .ok_or_else(|| {
                TimestampError::TstInfo(format!(
                    "genTime is not a valid GeneralizedTime ({})",
                    info.gen_time.tag()
                ))
            })?;
        if info.version != 1 {
            return Err(TimestampError::Invalid(format!(
                "timestamp token info version must be 1, but got {}",
                info.version
            )));
        }
        let hash_alg = info.message_imprint.hash_algorithm.oid.to_string();
        let expected = hash_of(&hash_alg, message).ok_or_else(|| {
            TimestampError::Invalid(format!("unrecognized hash algorithm: {hash_alg}"))
        })?;
        if info.message_imprint.hashed_message.as_bytes() != expected.as_slice() {
            return Err(TimestampError::Invalid("mismatched message".into()));
        }
        let (s, ms, us) = info.accuracy.as_ref().map_or((0, 0, 0), |a| {
            (
                a.seconds.unwrap_or(0),
                a.millis.unwrap_or(0),
                a.micros.unwrap_or(0),
            )
        });
        let accuracy = if s == 0 && ms == 0 && us == 0 {
            if info.policy.to_string() == OID_BASELINE_POLICY {
                Duration::SECOND
            } else {
                Duration::ZERO
            }
        } else {
            Duration::seconds(s)
                .saturating_add(Duration::milliseconds(ms))
                .saturating_add(Duration::microseconds(us))
        };
        Ok(Timestamp {
            time: gen_time,
            accuracy,
        })
    }

    /// Verify the token's signature and its signer's path to one of `roots` (the statement's
    /// `tsa` store certificates) at `at` (the token's `genTime`), as tspclient-go's
    /// `SignedToken.Verify`: the first signer info that passes wins; otherwise the last one's
    /// error. Returns the TSA's chain, signer first, ending with the trusted root.
    pub fn verify(
        &self,
        roots: &[Certificate],
        at: OffsetDateTime,
    ) -> Result<Vec<Certificate>, TimestampError> {
        let mut last = "signerInfo not found".to_string();
        for signer in &self.signers {
            match self.verify_signer(signer, roots, at) {
                Ok(chain) => return Ok(chain),
                Err(e) => last = e,
            }
        }
        Err(TimestampError::Verify(last))
    }

    fn verify_signer(
        &self,
        signer: &SignerParts,
        roots: &[Certificate],
        at: OffsetDateTime,
    ) -> Result<Vec<Certificate>, String> {
        let cert = self.signing_certificate(signer)?;
        let cms = |e: &dyn std::fmt::Display| format!("cms verification failure: {e}");
        if signer.version != 1 {
            return Err(cms(&format_args!(
                "invalid signer info version: only version 1 is supported; got {}",
                signer.version
            )));
        }
        let chain = build_path(cert, &self.certificates, roots, at, Purpose::TimeStamping)
            .map_err(|e| cms(&e))?;
        verify_signature(signer, cert, &self.tst_info).map_err(|e| cms(&e))?;
        self.verify_signed_attributes(signer, &chain)
            .map_err(|e| cms(&e))?;
        match cert.time_stamping_only() {
            Some(true) => Ok(chain),
            Some(false) => {
                Err("signing certificate extended key usage extension must be set as critical".into())
            }
            None => Err(
                "signing certificate must have and only have ExtKeyUsageTimeStamping as extended key usage"
                    .into(),
            ),
        }
    }

    /// The certificate `SigningCertificateV2` names (tspclient-go `SigningCertificate`): by
    /// its first ESSCertIDv2's issuerSerial, or else the signer info's `sid`; its hash must
    /// match.
    fn signing_certificate(&self, signer: &SignerParts) -> Result<&Certificate, String> {
        let attr = signer.attribute(OID_SIGNING_CERTIFICATE_V2).ok_or(
            "failed to get SigningCertificateV2 from signed attributes: attribute not found",
        )?;
        let v2 = SigningCertificateV2::from_der(attr).map_err(|e| {
            format!("failed to get SigningCertificateV2 from signed attributes: {e}")
        })?;
        let first = v2
            .certs
            .first()
            .ok_or("signingCertificateV2 does not contain any certificate")?;
        let candidate = match &first.issuer_serial {
            Some(is) => {
                let name =
                    directory_name(&is.issuer).ok_or("issuer name is missing in IssuerSerial")?;
                self.certificate_by(name, is.serial.as_bytes())
            }
            None => self.certificate_by(&signer.issuer, &signer.serial),
        }
        .ok_or("signing certificate not found in the timestamp token")?;
        let hash_alg = first
            .hash_algorithm
            .as_ref()
            .map_or(OID_SHA256.to_string(), |a| a.oid.to_string());
        let hash = hash_of(&hash_alg, candidate.der())
            .ok_or("unsupported certificate hash algorithm in SigningCertificateV2 attribute")?;
        if hash.as_slice() != first.cert_hash.as_bytes() {
            return Err(
                "signing certificate hash does not match CertHash in signed attribute".into(),
            );
        }
        Ok(candidate)
    }

    /// A token certificate by issuer name DER and serial (Go's `GetCertificate`).
    fn certificate_by(&self, issuer: &[u8], serial: &[u8]) -> Option<&Certificate> {
        self.certificates.iter().find(|c| {
            c.issuer_der() == issuer && minimal_integer(c.serial()) == minimal_integer(serial)
        })
    }

    /// tspclient-go `verifySignedAttributes`: present, content type id-ct-TSTInfo, message
    /// digest of the TSTInfo, and a signing time (if any) inside the chain's validity.
    fn verify_signed_attributes(
        &self,
        signer: &SignerParts,
        chain: &[Certificate],
    ) -> Result<(), String> {
        if signer.signed_attrs.is_none() {
            return Err("missing signed attributes".into());
        }
        let content_type = signer
            .attribute(OID_CONTENT_TYPE)
            .ok_or("invalid content type: attribute not found")?;
        let content_type = ObjectIdentifier::from_der(content_type)
            .map_err(|e| format!("invalid content type: {e}"))?;
        if content_type.to_string() != OID_TST_INFO {
            return Err(format!(
                "mismatch content type: found \"{content_type}\" in signer info, and \"{OID_TST_INFO}\" in signed data"
            ));
        }
        let digest = signer
            .attribute(OID_MESSAGE_DIGEST)
            .ok_or("invalid message digest: attribute not found")?;
        let digest =
            OctetStringRef::from_der(digest).map_err(|e| format!("invalid message digest: {e}"))?;
        let actual =
            hash_of(&signer.digest_alg, &self.tst_info).ok_or("unsupported digest algorithm")?;
        if digest.as_bytes() != actual.as_slice() {
            return Err("mismatch message digest".into());
        }
        let Some(time) = signer.attribute(OID_SIGNING_TIME) else {
            return Ok(());
        };
        let time = signing_time(time).map_err(|e| format!("invalid signing time: {e}"))?;
        if chain.iter().all(|c| c.is_valid_at(time)) {
            Ok(())
        } else {
            Err(format!(
                "signing time, {}, is outside certificate's validity period",
                go_time_string(time)
            ))
        }
    }
}

/// The elements of a DER value, each as its whole TLV.
fn tlvs(value: &[u8]) -> der::Result<Vec<&[u8]>> {
    let mut reader = SliceReader::new(value)?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        out.push(reader.tlv_bytes()?);
    }
    Ok(out)
}

/// The signer infos of a SignedData (its value: the fields of the SEQUENCE), in the token's
/// order, each as its TLV: the last field, a SET.
fn raw_signer_infos(signed_data: &[u8]) -> der::Result<Vec<&[u8]>> {
    let fields = tlvs(signed_data)?;
    let set = fields.last().ok_or_else(|| {
        der::Error::from(der::ErrorKind::Incomplete {
            expected_len: der::Length::ONE,
            actual_len: der::Length::ZERO,
        })
    })?;
    let set = AnyRef::from_der(set)?;
    if set.tag() != Tag::Set {
        return Err(set.tag().unexpected_error(Some(Tag::Set)));
    }
    tlvs(set.value())
}

/// What a signer info's signature covers when it has signed attributes (RFC 5652 §5.4): the
/// DER of the `[0] IMPLICIT` field re-tagged as a SET, from the token's own bytes.
fn raw_signed_attributes(signer_info: &[u8]) -> der::Result<Vec<u8>> {
    let fields = tlvs(AnyRef::from_der(signer_info)?.value())?;
    let implicit = fields
        .iter()
        .map(|f| AnyRef::from_der(f))
        .collect::<der::Result<Vec<_>>>()?
        .into_iter()
        .find(|f| {
            f.tag()
                == Tag::ContextSpecific {
                    constructed: true,
                    number: TagNumber::N0,
                }
        })
        .ok_or_else(|| Tag::Set.value_error())?;
    let value = implicit.value();
    let mut out = der::Header::new(Tag::Set, der::Length::try_from(value.len())?)?.to_der()?;
    out.extend_from_slice(value);
    Ok(out)
}

/// The Name inside `GeneralNames` when its first name is a directoryName (`[4]`), as
/// tspclient-go's `generalNames` struct reads it.
fn directory_name<'a>(names: &AnyRef<'a>) -> Option<&'a [u8]> {
    if names.tag() != Tag::Sequence {
        return None;
    }
    let mut reader = SliceReader::new(names.value()).ok()?;
    let first: AnyRef<'a> = reader.decode().ok()?;
    let directory = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N4,
    };
    (first.tag() == directory).then(|| first.value())
}

/// A signing-time attribute value: UTCTime or GeneralizedTime, as Go's `time.Time` reads it.
fn signing_time(der: &[u8]) -> Result<OffsetDateTime, String> {
    let any = AnyRef::from_der(der).map_err(|e| e.to_string())?;
    match any.tag() {
        Tag::UtcTime => UtcTime::from_der(der)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64)
                    .map_err(|e| e.to_string())
            }),
        Tag::GeneralizedTime => {
            go_generalized_time(any.value()).ok_or_else(|| "invalid GeneralizedTime".into())
        }
        other => Err(format!("expected a time, got {other}")),
    }
}

/// Go's `time.Time.String()` in UTC: `2021-09-17 14:09:09 +0000 UTC`.
fn go_time_string(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] +0000 UTC"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| t.to_string())
}

/// tspclient-go `verifySignature`: the algorithm from the signer info's digest and signature
/// algorithms (RSA PKCS#1 v1.5, RSASSA-PSS, ECDSA; SHA-256/384/512), over the DER of the
/// signed attributes (or the content when there are none).
fn verify_signature(
    signer: &SignerParts,
    cert: &Certificate,
    content: &[u8],
) -> Result<(), String> {
    const RSA: &str = "1.2.840.113549.1.1.1";
    const RSA_PSS: &str = "1.2.840.113549.1.1.10";
    let digest = signer.digest_alg.as_str();
    let (alg, pss_hash) = match (signer.signature_alg.as_str(), digest) {
        (RSA, OID_SHA256) => ("1.2.840.113549.1.1.11", None),
        (RSA, OID_SHA384) => ("1.2.840.113549.1.1.12", None),
        (RSA, OID_SHA512) => ("1.2.840.113549.1.1.13", None),
        (RSA_PSS, OID_SHA256 | OID_SHA384 | OID_SHA512) => (RSA_PSS, Some(digest)),
        (
            explicit @ ("1.2.840.113549.1.1.11"
            | "1.2.840.113549.1.1.12"
            | "1.2.840.113549.1.1.13"
            | "1.2.840.10045.4.3.2"
            | "1.2.840.10045.4.3.3"
            | "1.2.840.10045.4.3.4"),
            _,
        ) => (explicit, None),
        _ => return Err("unknown signature algorithm".into()),
    };
    let signed = match &signer.signed_attrs {
        Some((_, der)) => der.as_slice(),
        None => content,
    };
    cert.verify_x509_signature(
        alg,
        pss_hash,
        signed,
        &signer.signature,
        super::x509::Sha1::Refused,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    //! The token layer against the tspclient-go and notation-go vectors, with the outcome their
    //! own tests expect (`../shared/vectors/timestamp-revocation.md` A.1, A.2). Times are the
    //! tokens' own: nothing here depends on the clock.
    use super::*;
    use crate::notation::trust_store::parse_certificate_file;
    use std::path::PathBuf;

    fn vectors(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/vectors/timestamp")
            .join(rel)
    }

    fn read(rel: &str) -> Vec<u8> {
        std::fs::read(vectors(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn globalsign_r3(dir: &str) -> Vec<Certificate> {
        parse_certificate_file(&read(&format!("{dir}/GlobalSignRootCA.crt"))).unwrap()
    }

    /// Steps 2–6 of notation's order for `token` over `message`, the roots `roots`.
    fn verify(token: &[u8], message: &[u8], roots: &[Certificate]) -> Result<Timestamp, String> {
        let token = TimestampToken::parse(token).map_err(|e| e.to_string())?;
        let stamp = token.timestamp(message).map_err(|e| e.to_string())?;
        let chain = token.verify(roots, stamp.time).map_err(|e| e.to_string())?;
        crate::notation::x509::validate_timestamping_chain(&chain)
            .map_err(|e| TimestampError::Chain(e).to_string())?;
        Ok(stamp)
    }

    fn gen_time(token: &TimestampToken) -> OffsetDateTime {
        let info: TstInfo<'_> = SliceReader::new(&token.tst_info)
            .and_then(|mut r| r.decode())
            .unwrap();
        go_generalized_time(info.gen_time.value()).unwrap()
    }

    const STEP6: &str =
        "failed to verify the timestamp countersignature with error: failed to verify signed token: ";

    #[test]
    fn tspclient_tokens_that_verify() {
        let roots = globalsign_r3("tspclient-go/testdata");
        for file in [
            "TimeStampToken.p7s",
            "TimeStampTokenWithValidAndInvalidSignerInfos.p7s",
        ] {
            let stamp = verify(
                &read(&format!("tspclient-go/testdata/{file}")),
                b"notation",
                &roots,
            )
            .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(
                stamp.time,
                time::macros::datetime!(2021-09-17 14:09:10 UTC),
                "{file}"
            );
            assert_eq!(stamp.accuracy, Duration::SECOND, "{file}");
        }
    }

    #[test]
    fn layers_of_edited_vectors_pass_where_tspclient_tests_them() {
        // These two were edited after signing (issuerSerial dropped, a signing time added):
        // tspclient tests only the layer they exercise, and their signature no longer verifies.
        let roots = globalsign_r3("tspclient-go/testdata");
        let token = TimestampToken::parse(&read(
            "tspclient-go/testdata/TimeStampTokenWithoutSigningCertificateV2IssuerSerial.p7s",
        ))
        .unwrap();
        let signer = token.signing_certificate(&token.signers[0]).unwrap();
        assert!(signer
            .subject()
            .starts_with("CN=Globalsign TSA for Advanced - G4"));
        let err = token
            .verify(&roots, gen_time(&token))
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("the signature is invalid"), "{err}");
        let token = TimestampToken::parse(&read(
            "tspclient-go/cms-testdata/TimeStampTokenWithSigningTime.p7s",
        ))
        .unwrap();
        let chain = token.certificates().to_vec();
        token
            .verify_signed_attributes(&token.signers[0], &chain)
            .unwrap();
    }

    #[test]
    fn tspclient_tokens_that_fail_say_which_step_and_why() {
        let roots = globalsign_r3("tspclient-go/testdata");
        let cases: &[(&str, &str)] = &[
            (
                "TimeStampTokenWithoutCertificate.p7s",
                "signing certificate not found in the timestamp token",
            ),
            (
                "TimeStampTokenWithInvalidSignature.p7s",
                "cms verification failure: ",
            ),
            (
                "TimeStampTokenWithoutSigningCertificate.p7s",
                "failed to get SigningCertificateV2 from signed attributes: attribute not found",
            ),
            (
                "TimeStampTokenWithSigningCertificateV1.p7s",
                "failed to get SigningCertificateV2 from signed attributes: attribute not found",
            ),
            (
                "TimeStampTokenWithWrongSigningCertificateV2IssuerChoiceTag.p7s",
                "issuer name is missing in IssuerSerial",
            ),
            (
                "TimeStampTokenWithSHA1CertHash.p7s",
                "unsupported certificate hash algorithm in SigningCertificateV2 attribute",
            ),
            (
                "TimeStampTokenWithMismatchCertHash.p7s",
                "signing certificate hash does not match CertHash in signed attribute",
            ),
            (
                "TimeStampTokenWithInvalidSigningCertificateV2.p7s",
                "failed to get SigningCertificateV2 from signed attributes: ",
            ),
            (
                "TimeStampTokenWithSigningCertificateV2NoCert.p7s",
                "signingCertificateV2 does not contain any certificate",
            ),
        ];
        for (file, tail) in cases {
            // As tspclient's own tests: the signed-token layer alone, at the token's time.
            let token = TimestampToken::parse(&read(&format!("tspclient-go/testdata/{file}")))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let err = token
                .verify(&roots, gen_time(&token))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("{STEP6}{tail}")), "{file}: {err}");
        }
        let earlier: &[(&str, &str)] = &[
            ("TimeStampTokenWithInvalideContentType.p7s", "failed to parse timestamp countersignature with error: unexpected content type: 1.2.840.113549.1.7.1. Expected to be id-ct-TSTInfo (1.2.840.113549.1.9.16.1.4)"),
            ("TimeStampTokenWithInvalidTSTInfo.p7s", "failed to get the timestamp TSTInfo with error: cannot unmarshal TSTInfo from timestamp token: "),
            ("TimeStampTokenWithTSTInfoVersion2.p7s", "failed to get timestamp from timestamp countersignature with error: invalid TSTInfo: timestamp token info version must be 1, but got 2"),
            ("SHA1TimeStampToken.p7s", "failed to get timestamp from timestamp countersignature with error: invalid TSTInfo: unrecognized hash algorithm: 1.2.840.113549.1.1.5"),
        ];
        for (file, prefix) in earlier {
            let err = verify(
                &read(&format!("tspclient-go/testdata/{file}")),
                b"notation",
                &roots,
            )
            .unwrap_err();
            assert!(err.starts_with(prefix), "{file}: {err}");
        }
    }

    #[test]
    fn a_token_from_a_root_not_in_the_store_is_signed_by_an_unknown_authority() {
        let digicert = parse_certificate_file(&read(
            "notation-go/truststore/x509/tsa/test-mismatch/DigiCertTSARootSHA384.cer",
        ))
        .unwrap();
        let err = verify(
            &read("tspclient-go/testdata/TimeStampToken.p7s"),
            b"notation",
            &digicert,
        )
        .unwrap_err();
        assert!(
            err.starts_with(&format!(
                "{STEP6}cms verification failure: x509: certificate signed by unknown authority"
            )),
            "{err}"
        );
        // Microsoft's token (fractional-second genTime) parses; its root is in no store here.
        let err = verify(
            &read("tspclient-go/testdata/TimeStampTokenNoRoot.p7s"),
            b"notation",
            &digicert,
        )
        .unwrap_err();
        assert!(
            !err.starts_with("failed to get the timestamp TSTInfo"),
            "{err}"
        );
    }

    #[test]
    fn cms_layer_vectors() {
        let roots = globalsign_r3("tspclient-go/cms-testdata");
        for file in [
            "TimeStampToken.p7s",
            "TimeStampTokenWithAnInvalidAndAValidSignerInfo.p7s",
        ] {
            let token = TimestampToken::parse(&read(&format!("tspclient-go/cms-testdata/{file}")))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            token
                .verify(&roots, gen_time(&token))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        let failing: &[(&str, &str)] = &[
            ("TimeStampTokenWithSignerVersion2.p7s", "cms verification failure: invalid signer info version: only version 1 is supported; got 2"),
            ("TimeStampTokenWithInvalidSignature.p7s", "cms verification failure: crypto verification error"),
        ];
        for (file, needle) in failing {
            let token = TimestampToken::parse(&read(&format!("tspclient-go/cms-testdata/{file}")))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let err = token
                .verify(&roots, gen_time(&token))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{file}: {err}");
        }
        // The signed-attribute layer, as tspclient's `TestVerifyAttributes` calls it (these
        // tokens' attributes were edited after signing).
        let attributes: &[(&str, &str)] = &[
            (
                "TimeStampTokenWithSigningTimeBeforeExpected.p7s",
                "is outside certificate's validity period",
            ),
            (
                "TimeStampTokenWithoutSignedAttributes.p7s",
                "missing signed attributes",
            ),
            (
                "TimeStampTokenWithoutSignedAttributeDigest.p7s",
                "invalid message digest: attribute not found",
            ),
            (
                "TimeStampTokenWithoutSignedAttributeContentType.p7s",
                "invalid content type: attribute not found",
            ),
            (
                "TimeStampTokenInvalidSignedAttributeContentType.p7s",
                "content type",
            ),
            (
                "TimeStampTokenWithSignedAttributeSHA1.p7s",
                "unsupported digest algorithm",
            ),
        ];
        for (file, needle) in attributes {
            let token = TimestampToken::parse(&read(&format!("tspclient-go/cms-testdata/{file}")))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let chain = token.certificates().to_vec();
            let err = token
                .verify_signed_attributes(&token.signers[0], &chain)
                .unwrap_err();
            assert!(err.contains(needle), "{file}: {err}");
        }
        // Not a TSTInfo, unparsable certificates, no signer, SHA-1: refused, never verified.
        // (`TimeStampTokenWithUnknownSignerIssuer` fails only tspclient's CMS-level `Verify`,
        // which finds the signer by `sid`; notation's token-level `Verify` finds it through
        // SigningCertificateV2, which names it correctly.)
        for file in [
            "TimeStampTokenWithInvalidContentType.p7s",
            "TimeStampTokenWithInvalidCertificates.p7s",
            "TimeStampTokenWithoutSigner.p7s",
            "TimeStampTokenWithoutCertificate.p7s",
            "Sha1SignedData.p7s",
            "TimeStampTokenWithSignedAttributeSHA1.p7s",
            "SignedDataWithoutSignedAttributes.p7s",
            "TimeStampTokenInvalidSignedAttributeContentType.p7s",
            "TimeStampTokenWithInvalidSigningTime.p7s",
        ] {
            let bytes = read(&format!("tspclient-go/cms-testdata/{file}"));
            let verified = TimestampToken::parse(&bytes).is_ok_and(|t| {
                t.verify(&roots, time::macros::datetime!(2021-09-17 14:09:10 UTC))
                    .is_ok()
            });
            assert!(!verified, "{file} verified");
        }
    }

    #[test]
    fn notation_countersignature_vectors() {
        let roots = globalsign_r3("tspclient-go/testdata");
        let dir = "notation-go/countersignature";
        let err = verify(
            &read(&format!("{dir}/TimeStampTokenWithInvalideContentType.p7s")),
            b"notation",
            &roots,
        )
        .unwrap_err();
        assert_eq!(err, "failed to parse timestamp countersignature with error: unexpected content type: 1.2.840.113549.1.7.1. Expected to be id-ct-TSTInfo (1.2.840.113549.1.9.16.1.4)");
        let err = verify(
            &read(&format!("{dir}/TimeStampTokenWithInvalidTSTInfo.p7s")),
            b"notation",
            &roots,
        )
        .unwrap_err();
        assert!(err.starts_with("failed to get the timestamp TSTInfo with error: cannot unmarshal TSTInfo from timestamp token:"), "{err}");
        let err = verify(
            &read(&format!("{dir}/TimeStampToken.p7s")),
            b"mismatch",
            &roots,
        )
        .unwrap_err();
        assert_eq!(err, "failed to get timestamp from timestamp countersignature with error: invalid TSTInfo: mismatched message");
        let err = verify(
            &read(&format!("{dir}/TimeStampTokenWithoutCertificate.p7s")),
            b"notation",
            &roots,
        )
        .unwrap_err();
        assert_eq!(
            err,
            format!("{STEP6}signing certificate not found in the timestamp token")
        );
    }

    #[test]
    fn garbage_never_panics_and_fails_at_parse() {
        for bytes in [
            &b""[..],
            b"\x30",
            b"\x30\x80\x00\x00",
            b"garbage!",
            &[0x30, 0x03, 0x06, 0x01, 0x00],
        ] {
            let err = TimestampToken::parse(bytes).unwrap_err().to_string();
            assert!(
                err.starts_with("failed to parse timestamp countersignature with error: "),
                "{err}"
            );
        }
    }

    #[test]
    fn timestamping_chain_rules_of_notation_core_go() {
        use crate::notation::x509::validate_timestamping_chain;
        let cert = |f: &str| {
            parse_certificate_file(&read(&format!("notation-core-go/x509/{f}")))
                .unwrap()
                .remove(0)
        };
        let (leaf, inter, root) = (
            cert("timestamp_leaf.crt"),
            cert("timestamp_intermediate.crt"),
            cert("timestamp_root.crt"),
        );
        validate_timestamping_chain(&[leaf.clone(), inter.clone(), root.clone()]).unwrap();
        let err = validate_timestamping_chain(std::slice::from_ref(&leaf)).unwrap_err();
        assert!(err.starts_with(r#"invalid self-signed certificate. subject: "CN=DigiCert Timestamp 2023,O=DigiCert\\, Inc.,C=US". Error:"#), "{err}");
        let err = validate_timestamping_chain(&[leaf.clone(), inter.clone()]).unwrap_err();
        assert!(err.starts_with(r#"root certificate with subject "CN=DigiCert Trusted G4 RSA4096 SHA256 TimeStamping CA,O=DigiCert\\, Inc.,C=US" is invalid or not self-signed. Certificate chain must end with a valid self-signed root certificate. Error:"#), "{err}");
        let err = validate_timestamping_chain(&[root.clone(), root.clone()]).unwrap_err();
        assert_eq!(
            err,
            r#"leaf certificate with subject "CN=DigiCert Trusted Root G4,OU=www.digicert.com,O=DigiCert Inc,C=US" is self-signed. Certificate chain must not contain self-signed leaf certificate"#
        );
        let err = validate_timestamping_chain(&[leaf, inter, root.clone(), root]).unwrap_err();
        assert_eq!(
            err,
            r#"intermediate certificate with subject "CN=DigiCert Trusted Root G4,OU=www.digicert.com,O=DigiCert Inc,C=US" is self-signed. Certificate chain must not contain self-signed intermediate certificate"#
        );
    }
}
