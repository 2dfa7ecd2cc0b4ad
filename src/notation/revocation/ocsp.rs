//! OCSP for one certificate, as notation-core-go checks it: the request
//! (`revocation/internal/ocsp/ocsp.go` `executeOCSPCheck`, golang.org/x/crypto `ocsp.CreateRequest`),
//! the choice between GET and POST, and the decision taken from the responder's bytes
//! (`checkStatusFromServer` and x/crypto `ocsp.ParseResponseForCert`), with notation's messages.
//!
//! Everything here is a synchronous function of bytes, certificates and a time: no network, no
//! clock. The checker that calls it fetches (plain HTTP only, [`check_server`]; GET with
//! [`request_url`] or POST with [`CONTENT_TYPE_REQUEST`]; at most [`MAX_RESPONSE_SIZE`] bytes; a
//! per-request timeout, [`timeout_error`]; HTTP 200, [`status_code_error`]; other transport
//! failures, [`transport_error`]), asks the certificate's responders in order until one
//! [`decides`], and caches a response until its [`Decision::next_update`].
//!
//! The decision follows Go line by line, including where Go is lenient or terse:
//! - responseStatus: Go's five canned error responses (`30 03 0A 01 0n`) get notation's own
//!   words (`error checking revocation status via OCSP: OCSP try later`…); any other
//!   non-successful response gets x/crypto's (`ocsp: error from server: …`);
//! - parse and signature errors are x/crypto's `ParseError` texts, unwrapped, as notation
//!   returns them (`bad OCSP signature: …`, `no response matching the supplied certificate`);
//! - the single response is picked by serial number alone (hash algorithm and issuer hashes
//!   are not compared), the first that matches;
//! - the signer is the first embedded certificate, which the issuer must have signed, or else
//!   the issuer itself; SHA-1 signatures are accepted (Go's `Certificate.CheckSignature`);
//!   RSASSA-PSS signatures on the response are not (x/crypto's algorithm table lacks them);
//! - freshness is `now > nextUpdate` only; an absent nextUpdate counts as expired (Go compares
//!   with the zero time); thisUpdate and producedAt are not checked; there is no clock skew;
//! - a revoked status whose invalidityDate (2.5.29.24) is after the signing time counts as
//!   good — for `notary.x509.signingAuthority` only, the caller passes no time otherwise;
//! - the DER walk accepts what Go's `encoding/asn1` accepts and RustCrypto's typed decoders
//!   would refuse (fractional-second GeneralizedTime, extra trailing SEQUENCE elements such
//!   as responseExtensions, unknown responseStatus and revocation-reason values, serials
//!   longer than 20 bytes, explicit DEFAULT values), which is why it reads der's TLVs by hand
//!   instead of decoding `x509-ocsp`'s structures. The signed `tbsResponseData` bytes are taken
//!   as received, never re-encoded.
//!
//! Deliberately not done, because notation does not do it: no nonce is sent or checked; the
//! responder certificate's extended key usage (id-kp-OCSPSigning), validity period, responderID
//! match and `id-pkix-ocsp-nocheck` are not checked — a certificate embedded in the response
//! only needs the issuer's signature.

use std::fmt;
use std::time::Duration;

use const_oid::db::{
    rfc5280::ID_CE_INVALIDITY_DATE, rfc5912::ID_SHA_1, rfc6960::ID_PKIX_OCSP_BASIC,
};
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode, Reader, Sequence, SliceReader, Tag, Tagged};
use spki::AlgorithmIdentifierRef;
use time::OffsetDateTime;

use super::{Decision, Status};
use crate::notation::x509::{Certificate, Sha1, X509SignatureError};

/// The `Content-Type` of a POSTed request (Go sets it; the GET form has no body).
pub const CONTENT_TYPE_REQUEST: &str = "application/ocsp-request";

/// How much of a response body is read (notation's `ocspMaxResponseSize`). Go reads through an
/// `io.LimitReader`: a longer body is cut, not refused, and the cut bytes then fail to parse.
/// The fetcher should do the same: read at most this many bytes and pass them on.
pub const MAX_RESPONSE_SIZE: usize = 20480;

/// notation CLI's default OCSP request timeout; a request that overruns it is [`timeout_error`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The error of a valid response saying the certificate is revoked (notation `RevokedError`).
pub const REVOKED: &str = "certificate is revoked via OCSP";

/// The error of a valid response saying the status is unknown (`UnknownStatusError`).
pub const UNKNOWN_STATUS: &str = "certificate has unknown status via OCSP";

const GENERIC: &str = "error checking revocation status via OCSP";
const EXPIRED: &str = "expired OCSP response";
const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";

/// notation's `GenericError` wrapping of `e`: `error checking revocation status via OCSP: <e>`.
/// For transport failures other than a timeout (connection refused, DNS, reset, a body that
/// could not be read).
pub fn transport_error(e: &dyn fmt::Display) -> String {
    format!("{GENERIC}: {e}")
}

/// The error of a request that ran out of time (notation `TimeoutError`), `timeout` being the
/// client's timeout: `exceeded timeout threshold of 2.00 seconds for OCSP check`. Whatever ends
/// the request early — its own timeout or the admission deadline — report the configured
/// timeout, as Go reports `http.Client.Timeout`.
pub fn timeout_error(timeout: Duration) -> String {
    format!(
        "exceeded timeout threshold of {:.2} seconds for OCSP check",
        timeout.as_secs_f64()
    )
}

/// The error of an HTTP answer other than 200 (not wrapped, as in notation):
/// `failed to retrieve OCSP: response had status code 404`.
pub fn status_code_error(code: u16) -> String {
    format!("failed to retrieve OCSP: response had status code {code}")
}

/// Whether `server` may be asked at all: only `http` URLs are (case-insensitive, as Go's
/// `url.Parse` lower-cases the scheme), else
/// `error checking revocation status via OCSP: OCSPServer protocol https is not supported`.
/// Nothing is fetched for a refused server; its result is Unknown with this error.
pub fn check_server(server: &str) -> Result<(), String> {
    let scheme = go_url_scheme(server);
    if scheme == "http" {
        Ok(())
    } else {
        Err(transport_error(&format_args!(
            "OCSPServer protocol {scheme} is not supported"
        )))
    }
}

// Go's `url.getScheme`: letters, then letters, digits, `+-.`, up to the first `:`; anything else
// first (or no `:`) means no scheme.
fn go_url_scheme(raw: &str) -> String {
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i > 0 => return raw[..i].to_ascii_lowercase(),
            _ => return String::new(),
        }
    }
    String::new()
}

/// Whether a server's decision ends the loop over the certificate's responders (notation
/// `CertCheckStatus`): a good, revoked or "unknown" status from a valid response does, and only
/// that server's result is reported; an error of any other kind does not, and the next server
/// is asked; when all fail, every server's result is reported and the last one's status counts.
pub fn decides(decision: &Decision) -> bool {
    match decision.status {
        Status::Ok | Status::Revoked => true,
        Status::Unknown => decision.error.as_deref() == Some(UNKNOWN_STATUS),
        Status::NonRevokable => false,
    }
}

#[derive(Sequence)]
struct OcspRequest<'a> {
    tbs_request: TbsRequest<'a>,
}

// version is DEFAULT v1 and so omitted, no requestorName, no requestExtensions (no nonce).
#[derive(Sequence)]
struct TbsRequest<'a> {
    request_list: Vec<SingleRequest<'a>>,
}

#[derive(Sequence)]
struct SingleRequest<'a> {
    req_cert: CertId<'a>,
}

#[derive(Sequence)]
struct CertId<'a> {
    hash_algorithm: AlgorithmIdentifierRef<'a>,
    issuer_name_hash: OctetStringRef<'a>,
    issuer_key_hash: OctetStringRef<'a>,
    // AnyRef (tag INTEGER) rather than der's integer types, which cap or re-shape the bytes.
    serial_number: AnyRef<'a>,
}

/// The DER OCSPRequest for `cert`, as Go's `ocsp.CreateRequest(cert, issuer, SHA-1)` makes it:
/// one CertID with SHA-1 `issuerNameHash` (over the issuer's subject DER) and `issuerKeyHash`
/// (over its subjectPublicKey bits), the serial, no nonce, no signature (87 bytes for a
/// 20-byte serial). The error, which cannot happen for a parsed certificate, is in notation's
/// words.
pub fn request(cert: &Certificate, issuer: &Certificate) -> Result<Vec<u8>, String> {
    use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY as SHA1};
    let name_hash = digest(&SHA1, issuer.subject_der());
    let key_hash = digest(&SHA1, issuer.public_key_bits());
    let serial = canonical_integer(cert.serial());
    let encode = || -> der::Result<Vec<u8>> {
        OcspRequest {
            tbs_request: TbsRequest {
                request_list: vec![SingleRequest {
                    req_cert: CertId {
                        hash_algorithm: AlgorithmIdentifierRef {
                            oid: ID_SHA_1,
                            parameters: Some(AnyRef::NULL),
                        },
                        issuer_name_hash: OctetStringRef::new(name_hash.as_ref())?,
                        issuer_key_hash: OctetStringRef::new(key_hash.as_ref())?,
                        serial_number: AnyRef::new(Tag::Integer, serial)?,
                    },
                }],
            },
        }
        .to_der()
    };
    encode().map_err(|e| transport_error(&e))
}

// The minimal two's-complement form of an INTEGER's content bytes, so that equal numbers have
// equal bytes (Go compares serials as big.Int).
/// An INTEGER's content without redundant sign bytes; `[0]` for an empty one.
fn canonical_integer(b: &[u8]) -> &[u8] {
    match super::minimal_integer(b) {
        [] => &[0],
        b => b,
    }
}

/// The URL to GET for `request` from `server`, or `None` when the request must be POSTed to
/// `server` itself (body `request`, `Content-Type:` [`CONTENT_TYPE_REQUEST`]). As notation: GET
/// when the standard base64 of the request and its query-escaped form are both shorter than 255
/// characters, the escaped form appended to the server's path as one segment (`url.JoinPath`);
/// a `server` that does not parse as a URL is POSTed to (and fails there).
pub fn request_url(server: &str, request: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(request);
    if b64.len() >= 255 {
        return None;
    }
    // url.QueryEscape over the base64 alphabet: only `+`, `/` and `=` change.
    let mut escaped = String::with_capacity(b64.len() + 16);
    for c in b64.chars() {
        match c {
            '+' => escaped.push_str("%2B"),
            '/' => escaped.push_str("%2F"),
            '=' => escaped.push_str("%3D"),
            c => escaped.push(c),
        }
    }
    if escaped.len() >= 255 {
        return None;
    }
    let mut url = url::Url::parse(server).ok()?;
    // path.Join drops empty segments and trailing slashes (dot segments are already resolved
    // by the URL parser).
    let mut path = String::new();
    for segment in url.path().split('/').filter(|s| !s.is_empty()) {
        path.push('/');
        path.push_str(segment);
    }
    path.push('/');
    path.push_str(&escaped);
    url.set_path(&path);
    Some(url.into())
}

/// Decide what the OCSP response `der` (the HTTP body, at most [`MAX_RESPONSE_SIZE`] bytes)
/// says about `cert`, issued by `issuer`, at `now`. `signing_time` is the authentic signing
/// time under `notary.x509.signingAuthority` (a revocation whose invalidityDate is after it does
/// not count), `None` otherwise. The result is `Ok`, `Revoked` ([`REVOKED`]) or `Unknown` with
/// notation's message; `next_update` is the response's nextUpdate whenever the response was
/// valid and current, so the caller may cache it until then.
pub fn check_response(
    der: &[u8],
    cert: &Certificate,
    issuer: &Certificate,
    now: OffsetDateTime,
    signing_time: Option<OffsetDateTime>,
) -> Decision {
    // notation compares the body with x/crypto's pre-serialised error responses first.
    let canned: &[(&[u8], &str)] = &[
        (&[0x30, 0x03, 0x0a, 0x01, 0x06], "OCSP unauthorized"),
        (&[0x30, 0x03, 0x0a, 0x01, 0x01], "OCSP malformed"),
        (&[0x30, 0x03, 0x0a, 0x01, 0x02], "OCSP internal error"),
        (&[0x30, 0x03, 0x0a, 0x01, 0x03], "OCSP try later"),
        (&[0x30, 0x03, 0x0a, 0x01, 0x05], "OCSP signature required"),
    ];
    if let Some((_, what)) = canned.iter().find(|(bytes, _)| *bytes == der) {
        return Decision::unknown(transport_error(what));
    }
    let resp = match parse_response_for_cert(der, cert, issuer) {
        Ok(resp) => resp,
        Err(e) => return Decision::unknown(e),
    };
    let Some(next_update) = resp.next_update.filter(|next| now <= *next) else {
        return Decision::unknown(transport_error(&EXPIRED));
    };
    let decided = |status, error: Option<&str>| Decision {
        status,
        error: error.map(str::to_owned),
        next_update: Some(next_update),
    };
    match resp.status {
        CertStatus::Good => decided(Status::Ok, None),
        CertStatus::Unknown => decided(Status::Unknown, Some(UNKNOWN_STATUS)),
        CertStatus::Revoked => {
            // Go keeps the last extension of each OID; a date that does not parse is ignored.
            let invalidity = resp
                .extensions
                .iter()
                .rev()
                .find(|e| e.oid == ID_CE_INVALIDITY_DATE)
                .and_then(|e| AnyRef::from_der(e.value).ok())
                .and_then(|t| generalized_time(t).ok());
            match (signing_time, invalidity) {
                (Some(signed), Some(invalid)) if signed < invalid => decided(Status::Ok, None),
                _ => decided(Status::Revoked, Some(REVOKED)),
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertStatus {
    Good,
    Revoked,
    Unknown,
}

struct Extension<'a> {
    oid: ObjectIdentifier,
    critical: bool,
    value: &'a [u8],
}

struct ParsedResponse<'a> {
    status: CertStatus,
    next_update: Option<OffsetDateTime>,
    extensions: Vec<Extension<'a>>,
}

// Why a response is refused, in x/crypto's words where it has them (`ParseError` texts) and as
// a DER error otherwise (Go's would be an `asn1:` error; the words differ, the outcome does not).
fn asn1_error(e: der::Error) -> String {
    format!("malformed OCSP response: {e}")
}

// A cursor over the elements of one constructed value, lenient as Go's `encoding/asn1` is with
// SEQUENCE contents: extra elements after the last expected one are ignored.
struct Elements<'a> {
    reader: SliceReader<'a>,
}

impl<'a> Elements<'a> {
    fn new(content: &'a [u8]) -> Result<Self, String> {
        Ok(Self {
            reader: SliceReader::new(content).map_err(asn1_error)?,
        })
    }

    fn of(any: AnyRef<'a>, tag: Tag) -> Result<Self, String> {
        any.tag().assert_eq(tag).map_err(asn1_error)?;
        Self::new(any.value())
    }

    fn peek(&self) -> Option<Tag> {
        self.reader.peek_tag().ok()
    }

    fn is_empty(&self) -> bool {
        self.reader.is_finished()
    }

    fn next(&mut self) -> Result<AnyRef<'a>, String> {
        AnyRef::decode(&mut self.reader).map_err(asn1_error)
    }

    fn next_tlv(&mut self) -> Result<&'a [u8], String> {
        self.reader.tlv_bytes().map_err(asn1_error)
    }

    fn next_as<T: Decode<'a>>(&mut self) -> Result<T, String> {
        T::decode(&mut self.reader).map_err(asn1_error)
    }

    // An OPTIONAL element with this context-specific tag number, if it comes next.
    fn optional(&mut self, number: u8, constructed: bool) -> Result<Option<AnyRef<'a>>, String> {
        match self.peek() {
            Some(tag)
                if tag.is_context_specific()
                    && tag.number().value() == number
                    && tag.is_constructed() == constructed =>
            {
                self.next().map(Some)
            }
            _ => Ok(None),
        }
    }

    // The one element inside an EXPLICIT tag.
    fn explicit(any: AnyRef<'a>) -> Result<AnyRef<'a>, String> {
        let mut inner = Self::new(any.value())?;
        let value = inner.next()?;
        if !inner.is_empty() {
            return Err(asn1_error(
                der::ErrorKind::TrailingData {
                    decoded: der::Length::ZERO,
                    remaining: inner.reader.remaining_len(),
                }
                .into(),
            ));
        }
        Ok(value)
    }
}

// x/crypto `ParseResponseForCert`, step by step, with its error texts.
fn parse_response_for_cert<'a>(
    der: &'a [u8],
    cert: &Certificate,
    issuer: &Certificate,
) -> Result<ParsedResponse<'a>, String> {
    // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT … OPTIONAL }
    let mut top = Elements::new(der)?;
    let outer = top.next()?;
    if !top.is_empty() {
        return Err("trailing data in OCSP response".into());
    }
    let mut outer = Elements::of(outer, Tag::Sequence)?;
    let status = outer.next()?;
    status
        .tag()
        .assert_eq(Tag::Enumerated)
        .map_err(asn1_error)?;
    let status = go_int(status.value())?;
    if status != 0 {
        return Err(format!(
            "ocsp: error from server: {}",
            response_status(status)
        ));
    }
    let response_bytes = outer.optional(0, true)?;
    let (response_type, basic) = match response_bytes {
        Some(rb) => {
            let mut rb = Elements::of(Elements::explicit(rb)?, Tag::Sequence)?;
            let oid: ObjectIdentifier = rb.next_as()?;
            let body: OctetStringRef<'a> = rb.next_as()?;
            (Some(oid), body.as_bytes())
        }
        None => (None, &[][..]),
    };
    if response_type != Some(ID_PKIX_OCSP_BASIC) {
        return Err("bad OCSP response type".into());
    }

    // BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature BIT STRING,
    //                                  certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
    let mut top = Elements::new(basic)?;
    let basic = top.next()?;
    if !top.is_empty() {
        return Err("trailing data in OCSP response".into());
    }
    let mut basic = Elements::of(basic, Tag::Sequence)?;
    let tbs_raw = basic.next_tlv()?;
    let signature_algorithm: AlgorithmIdentifierRef<'a> = basic.next_as()?;
    let signature: BitStringRef<'a> = basic.next_as()?;
    let mut certs = Vec::new();
    if let Some(list) = basic.optional(0, true)? {
        let mut list = Elements::of(Elements::explicit(list)?, Tag::Sequence)?;
        while !list.is_empty() {
            certs.push(list.next_tlv()?);
        }
    }

    // ResponseData ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, responderID, producedAt,
    //                             responses SEQUENCE OF SingleResponse, … }
    let mut tbs = Elements::of(
        AnyRef::from_der(tbs_raw).map_err(asn1_error)?,
        Tag::Sequence,
    )?;
    if let Some(version) = tbs.optional(0, true)? {
        let version = Elements::explicit(version)?;
        version.tag().assert_eq(Tag::Integer).map_err(asn1_error)?;
        go_int(version.value())?;
    }
    let responder_id = tbs.next()?;
    let produced_at = tbs.next()?;
    generalized_time(produced_at)?;
    let mut responses = Elements::of(tbs.next()?, Tag::Sequence)?;
    let mut single = None;
    let mut count = 0;
    while !responses.is_empty() {
        let response = parse_single_response(responses.next()?)?;
        count += 1;
        if single.is_none() && response.serial == canonical_integer(cert.serial()) {
            single = Some(response);
        }
    }
    if count == 0 {
        return Err("OCSP response contains bad number of responses".into());
    }
    let Some(single) = single else {
        return Err("no response matching the supplied certificate".into());
    };

    // Go checks only the CHOICE's tag number (1 = byName, 2 = byKey), whatever the class.
    match responder_id.tag().number().value() {
        1 => {
            let name = Elements::new(responder_id.value())
                .and_then(|mut e| {
                    let name = e.next()?;
                    if e.is_empty() {
                        Ok(name)
                    } else {
                        Err(String::new())
                    }
                })
                .map_err(|_| "invalid responder name".to_string())?;
            if !is_rdn_sequence(name) {
                return Err("invalid responder name".into());
            }
        }
        2 => {
            let ok = Elements::new(responder_id.value())
                .and_then(|mut e| {
                    let _: OctetStringRef<'_> = e.next_as()?;
                    Ok(e.is_empty())
                })
                .unwrap_or(false);
            if !ok {
                return Err("invalid responder key hash".into());
            }
        }
        _ => return Err("invalid responder id tag".into()),
    }

    let sig_oid = signature_algorithm.oid.to_string();
    // BIT STRING right-aligned, as Go's `RightAlign` (signatures have no unused bits).
    let signature = signature.raw_bytes();
    let verify_response = |signer: &Certificate| -> Result<(), String> {
        if sig_oid == OID_RSASSA_PSS {
            // x/crypto maps the response's algorithm through its own table, which has no PSS.
            return Err(go_signature_error(
                &sig_oid,
                &X509SignatureError::UnsupportedPssHash,
            ));
        }
        signer
            .verify_x509_signature(&sig_oid, None, tbs_raw, signature, Sha1::Accepted)
            .map_err(|e| go_signature_error(&sig_oid, &e))
    };
    if let Some(first) = certs.first() {
        // Go ignores all but the first embedded certificate.
        let responder = Certificate::from_der(first).map_err(|e| e.to_string())?;
        verify_response(&responder)
            .map_err(|e| format!("bad signature on embedded certificate: {e}"))?;
        responder
            .verify_issued_by(issuer, Sha1::Accepted)
            .map_err(|e| {
                format!(
                    "bad OCSP signature: {}",
                    go_signature_error(responder.signature_algorithm_oid(), &e)
                )
            })?;
    } else {
        verify_response(issuer).map_err(|e| format!("bad OCSP signature: {e}"))?;
    }

    if single.extensions.iter().any(|e| e.critical) {
        return Err("unsupported critical extension".into());
    }
    const HASHES: [&str; 4] = [
        "1.3.14.3.2.26",
        "2.16.840.1.101.3.4.2.1",
        "2.16.840.1.101.3.4.2.2",
        "2.16.840.1.101.3.4.2.3",
    ];
    if !HASHES.contains(&single.hash_oid.to_string().as_str()) {
        return Err("unsupported issuer hash algorithm".into());
    }
    Ok(ParsedResponse {
        status: single.status,
        next_update: single.next_update,
        extensions: single.extensions,
    })
}

struct SingleResponse<'a> {
    hash_oid: ObjectIdentifier,
    serial: &'a [u8],
    status: CertStatus,
    next_update: Option<OffsetDateTime>,
    extensions: Vec<Extension<'a>>,
}

// SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate, nextUpdate [0] EXPLICIT OPTIONAL,
//                               singleExtensions [1] EXPLICIT Extensions OPTIONAL }
fn parse_single_response(any: AnyRef<'_>) -> Result<SingleResponse<'_>, String> {
    let mut e = Elements::of(any, Tag::Sequence)?;
    let mut cert_id = Elements::of(e.next()?, Tag::Sequence)?;
    let hash: AlgorithmIdentifierRef<'_> = cert_id.next_as()?;
    let _name_hash: OctetStringRef<'_> = cert_id.next_as()?;
    let _key_hash: OctetStringRef<'_> = cert_id.next_as()?;
    let serial = cert_id.next()?;
    serial.tag().assert_eq(Tag::Integer).map_err(asn1_error)?;
    check_integer(serial.value())?;

    // Go reads certStatus as three OPTIONAL fields in order, good [0], revoked [1], unknown [2],
    // and calls the response revoked unless good or unknown was present.
    let good = e.optional(0, false)?.is_some();
    let revoked = e.optional(1, true)?;
    if let Some(info) = revoked {
        // RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT
        // CRLReason OPTIONAL } (IMPLICIT: the [1] is the SEQUENCE). Parsed for its errors only.
        let mut info = Elements::new(info.value())?;
        generalized_time(info.next()?)?;
        if let Some(reason) = info.optional(0, true)? {
            let reason = Elements::explicit(reason)?;
            reason
                .tag()
                .assert_eq(Tag::Enumerated)
                .map_err(asn1_error)?;
            go_int(reason.value())?;
        }
    }
    let unknown = e.optional(2, false)?.is_some();
    let status = if good {
        CertStatus::Good
    } else if unknown {
        CertStatus::Unknown
    } else {
        CertStatus::Revoked
    };
    generalized_time(e.next()?)?;
    let next_update = match e.optional(0, true)? {
        Some(t) => Some(generalized_time(Elements::explicit(t)?)?),
        None => None,
    };
    let mut extensions = Vec::new();
    if let Some(list) = e.optional(1, true)? {
        let mut list = Elements::of(Elements::explicit(list)?, Tag::Sequence)?;
        while !list.is_empty() {
            // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
            let mut ext = Elements::of(list.next()?, Tag::Sequence)?;
            let oid: ObjectIdentifier = ext.next_as()?;
            let critical = match ext.peek() {
                Some(Tag::Boolean) => ext.next_as::<bool>()?,
                _ => false,
            };
            let value: OctetStringRef<'_> = ext.next_as()?;
            extensions.push(Extension {
                oid,
                critical,
                value: value.as_bytes(),
            });
        }
    }
    Ok(SingleResponse {
        hash_oid: hash.oid,
        serial: canonical_integer(serial.value()),
        status,
        next_update,
        extensions,
    })
}

// Go `encoding/asn1` integer rules: non-empty, minimally encoded.
fn check_integer(b: &[u8]) -> Result<(), String> {
    if b.is_empty() {
        return Err("malformed OCSP response: empty integer".into());
    }
    if b.len() > 1 && ((b[0] == 0 && b[1] & 0x80 == 0) || (b[0] == 0xff && b[1] & 0x80 != 0)) {
        return Err("malformed OCSP response: integer not minimally-encoded".into());
    }
    Ok(())
}

// An ENUMERATED or small INTEGER as Go reads it into an `int` (32-bit range for Enumerated).
fn go_int(b: &[u8]) -> Result<i64, String> {
    check_integer(b)?;
    if b.len() > 4 {
        return Err("malformed OCSP response: integer too large".into());
    }
    let mut v: i64 = if b[0] & 0x80 != 0 { -1 } else { 0 };
    for &byte in b {
        v = (v << 8) | i64::from(byte);
    }
    Ok(v)
}

fn response_status(status: i64) -> String {
    match status {
        1 => "malformed".into(),
        2 => "internal error".into(),
        3 => "try later".into(),
        5 => "signature required".into(),
        6 => "unauthorized".into(),
        other => format!("unknown OCSP status: {other}"),
    }
}

// Name ::= SEQUENCE OF SET OF SEQUENCE { type OBJECT IDENTIFIER, value ANY }.
fn is_rdn_sequence(name: AnyRef<'_>) -> bool {
    let walk = || -> Result<(), String> {
        let mut rdns = Elements::of(name, Tag::Sequence)?;
        while !rdns.is_empty() {
            let mut set = Elements::of(rdns.next()?, Tag::Set)?;
            while !set.is_empty() {
                let mut atv = Elements::of(set.next()?, Tag::Sequence)?;
                let _: ObjectIdentifier = atv.next_as()?;
                atv.next()?;
            }
        }
        Ok(())
    };
    walk().is_ok()
}

/// A GeneralizedTime as Go's `encoding/asn1` reads it: layout `20060102150405.999999999Z0700`,
/// and the text must be what Go would write back (a fraction without trailing zeros, `Z` for
/// UTC, `±hhmm` otherwise).
fn generalized_time(any: AnyRef<'_>) -> Result<OffsetDateTime, String> {
    any.tag()
        .assert_eq(Tag::GeneralizedTime)
        .map_err(asn1_error)?;
    super::go_generalized_time(any.value()).ok_or_else(|| {
        format!(
            "malformed OCSP response: invalid GeneralizedTime {:?}",
            String::from_utf8_lossy(any.value())
        )
    })
}

// Go's `Certificate.CheckSignature` errors, for the messages notation shows.
fn go_signature_error(alg_oid: &str, e: &X509SignatureError) -> String {
    let ecdsa = alg_oid.starts_with("1.2.840.10045.4");
    match e {
        X509SignatureError::Invalid if ecdsa => "x509: ECDSA verification failure".into(),
        X509SignatureError::Invalid => "crypto/rsa: verification error".into(),
        X509SignatureError::KeyMismatch(_) if ecdsa => "x509: signature algorithm specifies an ECDSA public key, but have public key of type *rsa.PublicKey".into(),
        X509SignatureError::KeyMismatch(_) => "x509: signature algorithm specifies an RSA public key, but have public key of type *ecdsa.PublicKey".into(),
        X509SignatureError::Sha1Refused
        | X509SignatureError::UnsupportedPssHash
        | X509SignatureError::Unsupported(_) => {
            "x509: cannot verify signature: algorithm unimplemented".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
        ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber, SigningKey as _,
    };
    use time::macros::datetime;

    // A DER TLV with a definite length (tests craft responses field by field, so that each
    // rule can be broken on its own).
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = content.len();
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let len = n.to_be_bytes();
            let len: Vec<u8> = len.iter().copied().skip_while(|b| *b == 0).collect();
            out.push(0x80 | len.len() as u8);
            out.extend(len);
        }
        out.extend_from_slice(content);
        out
    }

    fn seq(parts: &[&[u8]]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    fn oid(s: &str) -> Vec<u8> {
        ObjectIdentifier::new_unwrap(s).to_der().unwrap()
    }

    fn gtime(s: &str) -> Vec<u8> {
        tlv(0x18, s.as_bytes())
    }

    const LEAF_SERIAL: [u8; 3] = [0x8a, 0x01, 0x02];
    const NEXT: &str = "20300101000000Z";
    const NOW: OffsetDateTime = datetime!(2029-06-01 00:00 UTC);

    struct Pki {
        ca: Certificate,
        ca_key: KeyPair,
        leaf: Certificate,
        responder: Certificate,
        responder_key: KeyPair,
        stranger: Certificate,
        stranger_key: KeyPair,
    }

    fn name(cn: &str) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn
    }

    fn pki() -> Pki {
        let key = |()| KeyPair::generate().unwrap();
        let again = |k: &KeyPair| KeyPair::from_pem(&k.serialize_pem()).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name = name("Test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = key(());
        let issuer = CertifiedIssuer::self_signed(ca, again(&ca_key)).unwrap();
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name = name("Leaf");
        leaf.serial_number = Some(SerialNumber::from_slice(&LEAF_SERIAL));
        let leaf = leaf.signed_by(&key(()), &issuer).unwrap();
        let mut responder = CertificateParams::new(Vec::<String>::new()).unwrap();
        responder.distinguished_name = name("Responder");
        responder.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        let responder_key = key(());
        let responder = responder.signed_by(&responder_key, &issuer).unwrap();
        let mut stranger = CertificateParams::new(Vec::<String>::new()).unwrap();
        stranger.distinguished_name = name("Test CA");
        let stranger_key = key(());
        let stranger = stranger.self_signed(&stranger_key).unwrap();
        let parse = |der: &[u8]| Certificate::from_der(der).unwrap();
        Pki {
            ca: parse(issuer.der()),
            ca_key,
            leaf: parse(leaf.der()),
            responder: parse(responder.der()),
            responder_key,
            stranger: parse(stranger.der()),
            stranger_key,
        }
    }

    // certStatus encodings.
    fn good() -> Vec<u8> {
        vec![0x80, 0x00]
    }
    fn unknown() -> Vec<u8> {
        vec![0x82, 0x00]
    }
    fn revoked() -> Vec<u8> {
        tlv(0xa1, &gtime("20250214013720Z"))
    }

    struct Single<'a> {
        hash: &'a str,
        serial: &'a [u8],
        status: Vec<u8>,
        next_update: Option<&'a str>,
        extensions: Vec<Vec<u8>>,
    }

    impl Default for Single<'_> {
        fn default() -> Self {
            Self {
                hash: "1.3.14.3.2.26",
                serial: &[0x00, 0x8a, 0x01, 0x02],
                status: good(),
                next_update: Some(NEXT),
                extensions: Vec::new(),
            }
        }
    }

    impl Single<'_> {
        fn der(&self) -> Vec<u8> {
            let cert_id = seq(&[
                &seq(&[&oid(self.hash), &[0x05, 0x00]]),
                &tlv(0x04, &[0; 20]),
                &tlv(0x04, &[0; 20]),
                &tlv(0x02, self.serial),
            ]);
            let mut parts = vec![cert_id, self.status.clone(), gtime("20290101000000Z")];
            if let Some(next) = self.next_update {
                parts.push(tlv(0xa0, &gtime(next)));
            }
            if !self.extensions.is_empty() {
                parts.push(tlv(0xa1, &tlv(0x30, &self.extensions.concat())));
            }
            tlv(0x30, &parts.concat())
        }
    }

    fn extension(id: &str, critical: Option<bool>, value: &[u8]) -> Vec<u8> {
        let mut parts = vec![oid(id)];
        if let Some(c) = critical {
            parts.push(vec![0x01, 0x01, if c { 0xff } else { 0x00 }]);
        }
        parts.push(tlv(0x04, value));
        tlv(0x30, &parts.concat())
    }

    const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";

    // A successful OCSPResponse: `singles` signed by `key` with `alg`, `certs` embedded.
    fn response_with(
        tbs_extra: &[u8],
        singles: &[Vec<u8>],
        alg: &str,
        key: &KeyPair,
        certs: &[&Certificate],
    ) -> Vec<u8> {
        let tbs = seq(&[
            &tlv(0xa2, &tlv(0x04, &[7; 20])),
            &gtime("20290101000000Z"),
            &tlv(0x30, &singles.concat()),
            tbs_extra,
        ]);
        let signature = key.sign(&tbs).unwrap();
        let mut basic = vec![
            tbs,
            seq(&[&oid(alg)]),
            tlv(0x03, &[&[0u8][..], &signature].concat()),
        ];
        if !certs.is_empty() {
            let list: Vec<u8> = certs.iter().flat_map(|c| c.der().to_vec()).collect();
            basic.push(tlv(0xa0, &tlv(0x30, &list)));
        }
        let basic = tlv(0x30, &basic.concat());
        seq(&[
            &[0x0a, 0x01, 0x00],
            &tlv(
                0xa0,
                &seq(&[&oid("1.3.6.1.5.5.7.48.1.1"), &tlv(0x04, &basic)]),
            ),
        ])
    }

    fn response(singles: &[Vec<u8>], key: &KeyPair, certs: &[&Certificate]) -> Vec<u8> {
        response_with(&[], singles, ECDSA_SHA256, key, certs)
    }

    fn check(p: &Pki, der: &[u8]) -> Decision {
        check_response(der, &p.leaf, &p.ca, NOW, None)
    }

    fn error(d: &Decision) -> &str {
        d.error.as_deref().unwrap_or("")
    }

    fn ok_until(d: &Decision) -> OffsetDateTime {
        assert_eq!(d.status, Status::Ok, "{d:?}");
        d.next_update.expect("next update")
    }

    #[test]
    fn the_request_is_one_sha1_cert_id_for_the_certificate_without_nonce() {
        let p = pki();
        let der = request(&p.leaf, &p.ca).unwrap();
        use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY as SHA1};
        let expected = seq(&[&seq(&[&seq(&[&seq(&[&seq(&[
            &seq(&[&oid("1.3.14.3.2.26"), &[0x05, 0x00]]),
            &tlv(0x04, digest(&SHA1, p.ca.subject_der()).as_ref()),
            &tlv(0x04, digest(&SHA1, p.ca.public_key_bits()).as_ref()),
            &tlv(0x02, &[0x00, 0x8a, 0x01, 0x02]),
        ])])])])]);
        assert_eq!(der, expected);
    }

    #[test]
    fn short_requests_are_got_with_the_escaped_base64_as_one_path_segment() {
        let req = [0xfb, 0xff, 0xbf, 0x00];
        // base64 "+/+/AA==" → "%2B%2F%2B%2FAA%3D%3D"
        assert_eq!(
            request_url("http://localhost:10087", &req).as_deref(),
            Some("http://localhost:10087/%2B%2F%2B%2FAA%3D%3D")
        );
        assert_eq!(
            request_url("http://ocsp.example/a//b/", &req).as_deref(),
            Some("http://ocsp.example/a/b/%2B%2F%2B%2FAA%3D%3D")
        );
        assert_eq!(
            request_url("http://ocsp.example/x?k=v", &req).as_deref(),
            Some("http://ocsp.example/x/%2B%2F%2B%2FAA%3D%3D?k=v")
        );
        // 189 bytes: 252 base64 characters, GET; escaping pushes them past 254: POST.
        assert!(request_url("http://h", &[0u8; 189]).is_some());
        assert!(request_url("http://h", &[0xffu8; 189]).is_none());
        // 190 bytes: 256 base64 characters, POST.
        assert!(request_url("http://h", &[0u8; 190]).is_none());
    }

    #[test]
    fn only_http_servers_are_asked() {
        assert!(check_server("http://localhost:10087").is_ok());
        assert!(check_server("HTTP://localhost:10087").is_ok());
        let refused = |s| check_server(s).unwrap_err();
        assert_eq!(
            refused("https://ocsp.example"),
            "error checking revocation status via OCSP: OCSPServer protocol https is not supported"
        );
        assert_eq!(
            refused("LDAP://x"),
            "error checking revocation status via OCSP: OCSPServer protocol ldap is not supported"
        );
        assert_eq!(
            refused("/relative"),
            "error checking revocation status via OCSP: OCSPServer protocol  is not supported"
        );
    }

    #[test]
    fn transport_messages_are_notations() {
        assert_eq!(
            timeout_error(Duration::from_secs(2)),
            "exceeded timeout threshold of 2.00 seconds for OCSP check"
        );
        assert_eq!(
            timeout_error(Duration::from_millis(1500)),
            "exceeded timeout threshold of 1.50 seconds for OCSP check"
        );
        assert_eq!(
            status_code_error(503),
            "failed to retrieve OCSP: response had status code 503"
        );
        assert_eq!(
            transport_error(&"connection refused"),
            "error checking revocation status via OCSP: connection refused"
        );
    }

    #[test]
    fn unsuccessful_response_statuses_have_notations_words() {
        let p = pki();
        let cases: &[(&[u8], &str)] = &[
            (
                &[0x30, 0x03, 0x0a, 0x01, 0x01],
                "error checking revocation status via OCSP: OCSP malformed",
            ),
            (
                &[0x30, 0x03, 0x0a, 0x01, 0x02],
                "error checking revocation status via OCSP: OCSP internal error",
            ),
            (
                &[0x30, 0x03, 0x0a, 0x01, 0x03],
                "error checking revocation status via OCSP: OCSP try later",
            ),
            (
                &[0x30, 0x03, 0x0a, 0x01, 0x05],
                "error checking revocation status via OCSP: OCSP signature required",
            ),
            (
                &[0x30, 0x03, 0x0a, 0x01, 0x06],
                "error checking revocation status via OCSP: OCSP unauthorized",
            ),
            // Not one of the canned byte strings: x/crypto's words.
            (
                &[0x30, 0x03, 0x0a, 0x01, 0x04],
                "ocsp: error from server: unknown OCSP status: 4",
            ),
            (
                &[0x30, 0x05, 0x0a, 0x01, 0x03, 0x05, 0x00],
                "ocsp: error from server: try later",
            ),
            (&[0x30, 0x03, 0x0a, 0x01, 0x00], "bad OCSP response type"),
            (
                &[0x30, 0x03, 0x0a, 0x01, 0x06, 0x00],
                "trailing data in OCSP response",
            ),
        ];
        for (der, message) in cases {
            let d = check(&p, der);
            assert_eq!(
                (d.status, error(&d)),
                (Status::Unknown, *message),
                "{der:02x?}"
            );
            assert!(!decides(&d));
        }
        for garbage in [&b""[..], b"\x30", b"not der", b"\x30\x03\x02\x01\x00"] {
            let d = check(&p, garbage);
            assert_eq!(d.status, Status::Unknown);
            assert!(error(&d).starts_with("malformed OCSP response: "), "{d:?}");
        }
    }

    #[test]
    fn good_revoked_and_unknown_from_a_response_signed_by_the_issuer() {
        let p = pki();
        let der = response(&[Single::default().der()], &p.ca_key, &[]);
        assert_eq!(ok_until(&check(&p, &der)), datetime!(2030-01-01 00:00 UTC));
        assert!(decides(&check(&p, &der)));

        let der = response(
            &[Single {
                status: revoked(),
                ..Default::default()
            }
            .der()],
            &p.ca_key,
            &[],
        );
        let d = check(&p, &der);
        assert_eq!((d.status, error(&d)), (Status::Revoked, REVOKED));
        assert_eq!(d.next_update, Some(datetime!(2030-01-01 00:00 UTC)));
        assert!(decides(&d));

        let der = response(
            &[Single {
                status: unknown(),
                ..Default::default()
            }
            .der()],
            &p.ca_key,
            &[],
        );
        let d = check(&p, &der);
        assert_eq!((d.status, error(&d)), (Status::Unknown, UNKNOWN_STATUS));
        assert!(
            decides(&d),
            "a valid unknown answer ends the loop over servers"
        );
    }

    #[test]
    fn the_signer_is_the_first_embedded_certificate_which_the_issuer_must_have_signed() {
        let p = pki();
        let single = [Single::default().der()];
        // Delegated responder, issued by the CA: good (its EKU is not looked at).
        let der = response(&single, &p.responder_key, &[&p.responder, &p.stranger]);
        ok_until(&check(&p, &der));
        // A self-signed stranger with the CA's name: the issuer did not sign it.
        let der = response(&single, &p.stranger_key, &[&p.stranger]);
        let d = check(&p, &der);
        assert_eq!(
            (d.status, error(&d)),
            (
                Status::Unknown,
                "bad OCSP signature: x509: ECDSA verification failure"
            )
        );
        assert!(!decides(&d));
        // The responder's certificate, but another key signed the response.
        let der = response(&single, &p.stranger_key, &[&p.responder]);
        assert_eq!(
            error(&check(&p, &der)),
            "bad signature on embedded certificate: x509: ECDSA verification failure"
        );
        // No certificate: the issuer must have signed it, a delegated key is not enough.
        let der = response(&single, &p.responder_key, &[]);
        assert_eq!(
            error(&check(&p, &der)),
            "bad OCSP signature: x509: ECDSA verification failure"
        );
        // Only the first embedded certificate counts.
        let der = response(&single, &p.responder_key, &[&p.stranger, &p.responder]);
        assert_eq!(
            error(&check(&p, &der)),
            "bad signature on embedded certificate: x509: ECDSA verification failure"
        );
        // x/crypto knows no RSASSA-PSS for the response itself.
        let der = response_with(&[], &single, OID_RSASSA_PSS, &p.ca_key, &[]);
        assert_eq!(
            error(&check(&p, &der)),
            "bad OCSP signature: x509: cannot verify signature: algorithm unimplemented"
        );
        // A tampered response no longer verifies: the signed bytes are the received ones.
        let mut der = response(&single, &p.ca_key, &[]);
        let at = der.windows(4).position(|w| w == b"2030").unwrap();
        der[at + 3] = b'1';
        assert_eq!(
            error(&check(&p, &der)),
            "bad OCSP signature: x509: ECDSA verification failure"
        );
    }

    #[test]
    fn the_single_response_is_picked_by_serial_alone() {
        let p = pki();
        let other = Single {
            serial: &[0x01],
            status: revoked(),
            ..Default::default()
        };
        let mine = Single {
            hash: "2.16.840.1.101.3.4.2.1",
            ..Default::default()
        };
        let der = response(&[other.der(), mine.der()], &p.ca_key, &[]);
        ok_until(&check(&p, &der));
        let der = response(&[other.der()], &p.ca_key, &[]);
        assert_eq!(
            error(&check(&p, &der)),
            "no response matching the supplied certificate"
        );
        let der = response(&[], &p.ca_key, &[]);
        assert_eq!(
            error(&check(&p, &der)),
            "OCSP response contains bad number of responses"
        );
        let md5 = Single {
            hash: "1.2.840.113549.2.5",
            ..Default::default()
        };
        let der = response(&[md5.der()], &p.ca_key, &[]);
        assert_eq!(error(&check(&p, &der)), "unsupported issuer hash algorithm");
    }

    #[test]
    fn critical_single_extensions_are_refused_others_ignored() {
        let p = pki();
        let with = |critical| Single {
            extensions: vec![extension("1.2.3.4", critical, b"\x05\x00")],
            ..Default::default()
        };
        for critical in [None, Some(false)] {
            let der = response(&[with(critical).der()], &p.ca_key, &[]);
            ok_until(&check(&p, &der));
        }
        let der = response(&[with(Some(true)).der()], &p.ca_key, &[]);
        assert_eq!(error(&check(&p, &der)), "unsupported critical extension");
        // responseExtensions (after the responses) are skipped, as Go skips them.
        let nonce = tlv(
            0xa1,
            &seq(&[&extension("1.3.6.1.5.5.7.48.1.2", None, &tlv(0x04, b"n"))]),
        );
        let der = response_with(
            &nonce,
            &[Single::default().der()],
            ECDSA_SHA256,
            &p.ca_key,
            &[],
        );
        ok_until(&check(&p, &der));
    }

    #[test]
    fn a_response_past_or_without_next_update_is_expired() {
        let p = pki();
        let expired = "error checking revocation status via OCSP: expired OCSP response";
        let der = response(&[Single::default().der()], &p.ca_key, &[]);
        let at = |now| check_response(&der, &p.leaf, &p.ca, now, None);
        ok_until(&at(datetime!(2030-01-01 00:00 UTC)));
        let d = at(datetime!(2030-01-01 00:00:00.001 UTC));
        assert_eq!(
            (d.status, error(&d), d.next_update),
            (Status::Unknown, expired, None)
        );
        // A revoked answer that has expired is no answer either.
        let der = response(
            &[Single {
                status: revoked(),
                next_update: None,
                ..Default::default()
            }
            .der()],
            &p.ca_key,
            &[],
        );
        assert_eq!(error(&check(&p, &der)), expired);
    }

    #[test]
    fn an_invalidity_date_after_the_signing_time_makes_a_revocation_not_count() {
        let p = pki();
        let single = |value: &[u8]| Single {
            status: revoked(),
            extensions: vec![extension("2.5.29.24", None, value)],
            ..Default::default()
        };
        let der = response(&[single(&gtime("20250201000000Z")).der()], &p.ca_key, &[]);
        let at = |signed| check_response(&der, &p.leaf, &p.ca, NOW, signed);
        ok_until(&at(Some(datetime!(2025-01-31 23:59:59 UTC))));
        assert_eq!(
            at(Some(datetime!(2025-02-01 00:00 UTC))).status,
            Status::Revoked
        );
        assert_eq!(at(None).status, Status::Revoked);
        // An invalidity date that does not parse is ignored: revoked.
        let der = response(&[single(b"\x18\x0220").der()], &p.ca_key, &[]);
        let d = check_response(
            &der,
            &p.leaf,
            &p.ca,
            NOW,
            Some(datetime!(2000-01-01 0:00 UTC)),
        );
        assert_eq!(d.status, Status::Revoked);
    }

    #[test]
    fn a_single_response_without_status_is_revoked_as_in_go() {
        let p = pki();
        let der = response(
            &[Single {
                status: vec![],
                ..Default::default()
            }
            .der()],
            &p.ca_key,
            &[],
        );
        assert_eq!(check(&p, &der).status, Status::Revoked);
    }

    #[test]
    fn generalized_times_are_read_as_go_reads_them() {
        let t = |s: &str| crate::notation::revocation::go_generalized_time(s.as_bytes());
        assert_eq!(t("20300101000000Z"), Some(datetime!(2030-01-01 00:00 UTC)));
        assert_eq!(
            t("20300101000000.5Z"),
            Some(datetime!(2030-01-01 00:00:00.5 UTC))
        );
        assert_eq!(
            t("20300101010000+0100"),
            Some(datetime!(2030-01-01 00:00 UTC))
        );
        assert_eq!(
            t("20300101000000-0130"),
            Some(datetime!(2030-01-01 01:30 UTC))
        );
        for bad in [
            "20300101000000",
            "20300101000000.50Z",
            "20300101000000.Z",
            "20300101000000+0000",
            "20301301000000Z",
            "20300230000000Z",
            "20300101240000Z",
            "20300101000060Z",
            "2030010100000Z",
            "20300101000000z",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}
