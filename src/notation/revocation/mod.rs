//! Revocation of a certificate chain (OCSP and CRL), decided as notation-core-go's
//! `revocation` package decides it (`revocation/revocation.go` `ValidateContext`, notation-go
//! `verifier.go` `revocationFinalResult`; the rules are quoted in
//! `../shared/vectors/timestamp-revocation.md`, Part B):
//!
//! - the last certificate of the chain (the root) is never checked: it is not revocable;
//! - a certificate naming OCSP responders is checked by OCSP ([`ocsp`]); when OCSP gives no
//!   answer (any error, timeout, bad or expired response, status unknown) and the certificate
//!   also names CRL distribution points, the CRL decides ([`crl`]);
//! - a certificate naming only CRL distribution points is checked by CRL;
//! - a certificate naming neither is non-revocable, which counts as OK;
//! - the chain is revoked if any certificate is (the one nearest the leaf is named), else
//!   unknown if any is unknown, else OK ([`chain_result`]).
//!
//! The parsing and validation of OCSP responses and CRLs are synchronous functions of bytes, a
//! certificate, its issuer and the time; fetching them (bounded by the admission deadline,
//! size-limited, single-flighted, cached until `nextUpdate`) is the job of the checker that
//! calls them.

mod checker;
pub mod crl;
pub mod disk_cache;
pub mod ocsp;

pub use checker::{Checker, RevocationSettings};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What a chain is checked for: the signing chain or a timestamping authority's chain. The
/// two differ only in the words of the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The chain that signed the artifact.
    CodeSigning,
    /// A TSA's chain (an RFC 3161 timestamp countersignature).
    Timestamping,
}

/// How a certificate's revocation status was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// An OCSP responder answered.
    #[serde(rename = "OCSP")]
    Ocsp,
    /// A CRL decided.
    #[serde(rename = "CRL")]
    Crl,
    /// OCSP gave no answer and the CRL decided.
    #[serde(rename = "OCSPFallbackCRL")]
    OcspFallbackCrl,
}

/// A revocation status, for one certificate or the whole chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Not revoked, according to a valid, current answer.
    Ok,
    /// The certificate names no revocation endpoint (or is the root): nothing to check.
    NonRevokable,
    /// Revoked.
    Revoked,
    /// No valid answer could be had: never counted as OK.
    Unknown,
}

/// What one OCSP responder or CRL distribution point said about one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerResult {
    /// OCSP or CRL.
    pub method: Method,
    /// The responder or distribution point URL.
    pub url: String,
    /// What it decided.
    pub status: Status,
    /// Why it could not decide, or why the certificate is revoked, in notation's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The revocation status of one certificate of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertResult {
    /// The certificate's subject (Go `pkix.Name.String()` form, as notation writes it).
    pub subject: String,
    /// Its status.
    pub status: Status,
    /// How it was found; `None` for non-revocable certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// Every server asked, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerResult>,
    /// The earliest `nextUpdate` of the OCSP responses and CRLs this status rests on: no
    /// verdict built on it may be cached past this time.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub valid_until: Option<OffsetDateTime>,
}

/// What one OCSP response or CRL (with its delta) decides about one certificate: the output of
/// the synchronous validators in [`ocsp`] and [`crl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `Ok`, `Revoked` or `Unknown`.
    pub status: Status,
    /// For `Revoked` and `Unknown`: what happened, in notation's words (e.g. `certificate is
    /// revoked via OCSP`, `expired CRL. Current time … is after CRL NextUpdate …`).
    pub error: Option<String>,
    /// The answer's `nextUpdate` (the earliest of base and delta CRL), when it has one.
    pub next_update: Option<OffsetDateTime>,
}

impl Decision {
    /// A decision of `Unknown` for `reason`.
    pub fn unknown(reason: impl Into<String>) -> Self {
        Self {
            status: Status::Unknown,
            error: Some(reason.into()),
            next_update: None,
        }
    }
}

/// An INTEGER's content bytes without redundant leading sign bytes (`0x00` before a clear
/// high bit, `0xff` before a set one): serials compare equal however they were padded. An empty
/// input stays empty.
pub(crate) fn minimal_integer(mut bytes: &[u8]) -> &[u8] {
    while bytes.len() > 1
        && ((bytes[0] == 0 && bytes[1] & 0x80 == 0) || (bytes[0] == 0xff && bytes[1] & 0x80 != 0))
    {
        bytes = &bytes[1..];
    }
    bytes
}

/// A GeneralizedTime's text as Go's `encoding/asn1` accepts it (`20060102150405.999999999Z0700`,
/// and only what serialises back identically): `YYYYMMDDHHMMSS`, an optional fraction without
/// trailing zeros, then `Z` or a non-zero `±hhmm`; in UTC. OCSP responses and CRL entries are
/// read with it alike.
pub(crate) fn go_generalized_time(s: &[u8]) -> Option<OffsetDateTime> {
    use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};
    let digits = |b: &[u8]| -> Option<u32> {
        b.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    if s.len() < 15 {
        return None;
    }
    let year = digits(&s[0..4])?;
    let month = digits(&s[4..6])?;
    let day = digits(&s[6..8])?;
    let hour = digits(&s[8..10])?;
    let minute = digits(&s[10..12])?;
    let second = digits(&s[12..14])?;
    let mut rest = &s[14..];
    let mut nanos = 0u32;
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 || rest[n] == b'0' {
            return None;
        }
        nanos = digits(&rest[1..=n])? * 10u32.pow(9 - n as u32);
        rest = &rest[n + 1..];
    }
    let offset = match rest {
        b"Z" => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), hh @ ..] if hh.len() == 4 => {
            let h = digits(&hh[0..2])? as i8;
            let m = digits(&hh[2..4])? as i8;
            if (h == 0 && m == 0) || m > 59 {
                return None;
            }
            let (h, m) = if *sign == b'-' { (-h, -m) } else { (h, m) };
            UtcOffset::from_hms(h, m, 0).ok()?
        }
        _ => return None,
    };
    let date = Date::from_calendar_date(
        i32::try_from(year).ok()?,
        Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let time = Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .to_offset(UtcOffset::UTC),
    )
}

/// notation's chain result (`revocationFinalResult`): `Ok(())` when every certificate is OK or
/// non-revocable; otherwise the message naming the revoked certificate nearest the leaf, or
/// else the not-OK certificate nearest the leaf whose status is unknown. `results` are in
/// chain order, leaf first.
pub fn chain_result(purpose: Purpose, results: &[CertResult]) -> Result<(), String> {
    let what = match purpose {
        Purpose::CodeSigning => "signing certificate",
        Purpose::Timestamping => "timestamping certificate",
    };
    if let Some(r) = results.iter().find(|r| r.status == Status::Revoked) {
        return Err(format!("{what} with subject {:?} is revoked", r.subject));
    }
    if let Some(r) = results
        .iter()
        .find(|r| !matches!(r.status, Status::Ok | Status::NonRevokable))
    {
        return Err(format!(
            "{what} with subject {:?} revocation status is unknown",
            r.subject
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(subject: &str, status: Status) -> CertResult {
        CertResult {
            subject: subject.into(),
            status,
            method: None,
            servers: Vec::new(),
            valid_until: None,
        }
    }

    #[test]
    fn the_chain_names_the_revoked_certificate_nearest_the_leaf_before_any_unknown() {
        use Status::*;
        let chain = [
            cert("CN=leaf", Unknown),
            cert("CN=intermediate", Revoked),
            cert("CN=root", NonRevokable),
        ];
        assert_eq!(
            chain_result(Purpose::CodeSigning, &chain).unwrap_err(),
            r#"signing certificate with subject "CN=intermediate" is revoked"#
        );
        let chain = [
            cert("CN=leaf", Ok),
            cert("CN=i", Unknown),
            cert("CN=root", NonRevokable),
        ];
        assert_eq!(
            chain_result(Purpose::Timestamping, &chain).unwrap_err(),
            r#"timestamping certificate with subject "CN=i" revocation status is unknown"#
        );
        let chain = [cert("CN=leaf", Ok), cert("CN=root", NonRevokable)];
        assert!(chain_result(Purpose::CodeSigning, &chain).is_ok());
    }
}
