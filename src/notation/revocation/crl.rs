//! CRLs: parse one, validate it against the certificate's issuer, apply the delta-CRL rules,
//! and decide one certificate's status from a base CRL and its optional delta — as
//! notation-core-go decides (`revocation/internal/crl/crl.go` `CertCheckStatus`, `validate`,
//! `validateCRL`, `checkRevocation`, `parseEntryExtensions`; `revocation/crl/fetcher.go`
//! `parseCRLDistributionPoint`, `fetchCRL`; Go's `x509.ParseRevocationList` and
//! `RevocationList.CheckSignatureFrom`), with notation's messages.
//!
//! Everything here is a synchronous function of bytes, certificates and a time: fetching
//! (HTTP only, 32 MiB, deadlines), caching and the loop over a certificate's distribution points
//! belong to the checker that calls it. That loop is: for each CRL URL of the certificate, in
//! order, fetch the base CRL (and the delta its Freshest CRL extension names, [`delta_urls`]) and
//! call [`decide_url`]; an `Ok` decision moves on to the next URL, a `Revoked` or `Unknown` one
//! ends the loop and is the certificate's status (notation then keeps only that URL's server
//! result); the certificate is OK when every URL was. [`download_failed`] and the `*_error`
//! helpers word the fetch failures as notation does. A cached CRL is re-validated on every use
//! (as notation re-validates cache hits): [`decide_url`] does it, cheaply.
//!
//! A parsed [`Crl`] keeps its DER and indexes the revoked serials once (sorted, binary-searched),
//! so a cached 32 MiB CRL answers each certificate without re-parsing.
//!
//! Deliberately not done, as notation does not: the Issuing Distribution Point's scope is not
//! evaluated (the extension is only allowed to be critical); the CRL issuer is the certificate's
//! issuer (no indirect CRLs, no name or AKI matching); thisUpdate is not checked; a delta CRL is
//! only taken from the base CRL's Freshest CRL extension, never from the certificate's.

use time::{OffsetDateTime, UtcOffset};
use x509_parser::num_bigint::BigInt;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::signature_algorithm::SignatureAlgorithm as X509SigAlg;

use super::{Decision, Method, ServerResult, Status};
use crate::notation::x509::{Certificate, Sha1, X509SignatureError};

const OID_ISSUING_DISTRIBUTION_POINT: &str = "2.5.29.28";
const OID_DELTA_CRL_INDICATOR: &str = "2.5.29.27";
const OID_FRESHEST_CRL: &str = "2.5.29.46";
const OID_CRL_NUMBER: &str = "2.5.29.20";
const OID_REASON_CODE: &str = "2.5.29.21";
const OID_INVALIDITY_DATE: &str = "2.5.29.24";

/// notation's CRL size limit (`maxCRLSize`, 32 MiB): a body of this many bytes or more is
/// refused ([`size_error`]), so read at most this many and refuse when the limit is reached.
pub const MAX_CRL_SIZE: usize = 32 * 1024 * 1024;

/// Why bytes are not a CRL, in Go's words (`x509: malformed crl…`, `x509: unsupported crl
/// version…`): what follows notation's `failed to retrieve CRL: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CrlParseError(pub String);

/// A parsed CRL: its DER, the facts validation needs and its revoked serials, indexed.
pub struct Crl {
    der: Vec<u8>,
    issuer: Vec<u8>,
    tbs: (usize, usize),
    signature: Vec<u8>,
    signature_oid: String,
    pss_hash_oid: Option<String>,
    next_update: Option<OffsetDateTime>,
    number: Option<BigInt>,
    extensions: Vec<CrlExtension>,
    /// Sorted by serial bytes; entries of one serial stay in CRL order (stable sort).
    entries: Vec<Entry>,
    entry_errors: Vec<String>,
}

struct CrlExtension {
    oid: String,
    critical: bool,
    value: Vec<u8>,
}

/// One revoked-certificate entry, compact (a large CRL has hundreds of thousands).
struct Entry {
    serial_at: u32,
    serial_len: u32,
    revoked_at: i64,
    reason: Reason,
    ext: EntryExt,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// Any reason but the two below, or none: revoked for good.
    Permanent,
    /// certificateHold (6).
    Hold,
    /// removeFromCRL (8).
    Remove,
}

/// The outcome of notation's `parseEntryExtensions`, computed once at parse time and only
/// reported when the entry matches a certificate (as notation, which parses lazily).
#[derive(Clone, Copy)]
enum EntryExt {
    None,
    /// Seconds and nanoseconds since the epoch.
    InvalidityDate(i64, u32),
    Error(u32),
}

impl std::fmt::Debug for Crl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crl")
            .field("number", &self.number)
            .field("next_update", &self.next_update)
            .field("entries", &self.entries.len())
            .finish()
    }
}

/// Parse a DER CRL as Go's `x509.ParseRevocationList` accepts it: version v2 only, the inner
/// and outer signature algorithms identical, minimal serial numbers, well-formed reason codes
/// and CRL number. Trailing bytes after the CRL are ignored, as Go ignores them.
pub fn parse(der: Vec<u8>) -> Result<Crl, CrlParseError> {
    let bad = |m: &str| CrlParseError(m.to_string());
    if u32::try_from(der.len()).is_err() {
        return Err(bad("x509: malformed crl: larger than 4 GiB"));
    }
    // Go's word for any structural failure; x509-parser's detail (`NomError(Eof)`) says no more.
    let (_, crl) =
        CertificateRevocationList::from_der(&der).map_err(|_| bad("x509: malformed crl"))?;
    let tbs = &crl.tbs_cert_list;
    match tbs.version {
        None => return Err(bad("x509: unsupported crl version")),
        Some(v) if v.0 != 1 => {
            return Err(CrlParseError(format!(
                "x509: unsupported crl version: {}",
                v.0
            )))
        }
        Some(_) => {}
    }
    if tbs.signature != crl.signature_algorithm {
        return Err(bad(
            "x509: inner and outer signature algorithm identifiers don't match",
        ));
    }
    let pss_hash_oid = match X509SigAlg::try_from(&crl.signature_algorithm) {
        Ok(X509SigAlg::RSASSA_PSS(params)) => Some(params.hash_algorithm_oid().to_id_string()),
        _ => None,
    };
    let mut number = None;
    let mut extensions = Vec::with_capacity(tbs.extensions().len());
    for ext in tbs.extensions() {
        let oid = ext.oid.to_id_string();
        if oid == OID_CRL_NUMBER {
            number = Some(
                read_integer(ext.value)
                    .ok_or_else(|| bad("x509: malformed crl number"))?
                    .0,
            );
        }
        extensions.push(CrlExtension {
            oid,
            critical: ext.critical,
            value: ext.value.to_vec(),
        });
    }
    let mut entries = Vec::with_capacity(tbs.revoked_certificates.len());
    let mut entry_errors = Vec::new();
    for revoked in crl.iter_revoked_certificates() {
        let serial = revoked.raw_serial();
        if !minimal_integer(serial) {
            return Err(bad("x509: malformed serial number"));
        }
        let mut reason = Reason::Permanent;
        let mut ext = EntryExt::None;
        let mut ext_done = false;
        for e in revoked.extensions() {
            let oid = e.oid.to_id_string();
            if oid == OID_REASON_CODE {
                reason = match read_enum(e.value) {
                    Some(6) => Reason::Hold,
                    Some(8) => Reason::Remove,
                    Some(_) => Reason::Permanent,
                    None => return Err(bad("x509: malformed reasonCode extension")),
                };
            }
            if ext_done {
                continue;
            }
            // notation's parseEntryExtensions: the first failure wins; a later invalidityDate
            // replaces an earlier one.
            let failure = if oid == OID_INVALIDITY_DATE {
                match parse_generalized_time(e.value) {
                    Ok((t, [])) => {
                        ext = EntryExt::InvalidityDate(t.unix_timestamp(), t.nanosecond());
                        None
                    }
                    Ok(_) => Some("invalid invalidity date extension: trailing data".to_string()),
                    Err(m) => Some(format!("failed to parse invalidity date: {m}")),
                }
            } else if e.critical {
                Some(format!(
                    "unsupported critical extension found in CRL: {oid}"
                ))
            } else {
                None
            };
            if let Some(message) = failure {
                ext = EntryExt::Error(entry_errors.len() as u32);
                entry_errors.push(message);
                ext_done = true;
            }
        }
        let serial_at = offset_in(&der, serial).ok_or_else(|| bad("x509: malformed crl"))?;
        entries.push(Entry {
            serial_at: serial_at as u32,
            serial_len: serial.len() as u32,
            revoked_at: revoked.revocation_date.timestamp(),
            reason,
            ext,
        });
    }
    let tbs_raw = tbs.as_ref();
    let tbs_at = offset_in(&der, tbs_raw).ok_or_else(|| bad("x509: malformed tbs crl"))?;
    let tbs_range = (tbs_at, tbs_at + tbs_raw.len());
    let signature = crl.signature_value.data.to_vec();
    let signature_oid = crl.signature_algorithm.algorithm.to_id_string();
    let issuer = tbs.issuer.as_raw().to_vec();
    let next_update = crl.next_update().map(|t| t.to_datetime());
    drop(crl);
    entries.sort_by(|a, b| serial_of(&der, a).cmp(serial_of(&der, b)));
    Ok(Crl {
        der,
        issuer,
        tbs: tbs_range,
        signature,
        signature_oid,
        pss_hash_oid,
        next_update,
        number,
        extensions,
        entries,
        entry_errors,
    })
}

/// Where `part`, a slice x509-parser borrowed from `whole`, starts in it (checked, so a copy
/// could never make an offset out of range).
fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start.checked_add(part.len())? <= whole.len()).then_some(start)
}

fn serial_of<'a>(der: &'a [u8], e: &Entry) -> &'a [u8] {
    &der[e.serial_at as usize..(e.serial_at + e.serial_len) as usize]
}

impl Crl {
    /// The DER this CRL was parsed from (what a disk cache stores).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The issuer name as DER (what an offline CRL directory is searched by).
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer
    }

    /// nextUpdate, when set.
    pub fn next_update(&self) -> Option<OffsetDateTime> {
        self.next_update
    }

    /// The CRL number, when set.
    pub fn number(&self) -> Option<&BigInt> {
        self.number.as_ref()
    }

    /// How many revoked-certificate entries the CRL has.
    pub fn revoked_count(&self) -> usize {
        self.entries.len()
    }

    /// Whether a cached copy may still be used at `now` (notation's `isEffective`: nextUpdate set
    /// and not passed). A cache hit is still validated in full by [`decide_url`].
    pub fn is_effective(&self, now: OffsetDateTime) -> bool {
        self.next_update.is_some_and(|n| now <= n)
    }

    /// The raw value of the Freshest CRL extension (delta CRL locations), if present.
    pub fn freshest_crl_extension(&self) -> Option<&[u8]> {
        self.extension(OID_FRESHEST_CRL).map(|e| e.value.as_slice())
    }

    /// Whether this is a delta CRL (it carries a Delta CRL Indicator).
    pub fn is_delta(&self) -> bool {
        self.extension(OID_DELTA_CRL_INDICATOR).is_some()
    }

    /// Whether it carries an Issuing Distribution Point: a CRL that may cover only part of its
    /// issuer's certificates (a partition), so it cannot stand in for another point's CRL.
    pub fn is_partitioned(&self) -> bool {
        self.extension(OID_ISSUING_DISTRIBUTION_POINT).is_some()
    }

    fn extension(&self, oid: &str) -> Option<&CrlExtension> {
        self.extensions.iter().find(|e| e.oid == oid)
    }

    /// The entries for `serial` (minimal two's-complement bytes), in CRL order.
    fn entries_for<'a>(&'a self, serial: &'a [u8]) -> impl Iterator<Item = &'a Entry> + 'a {
        let start = self
            .entries
            .partition_point(|e| serial_of(&self.der, e) < serial);
        self.entries[start..]
            .iter()
            .take_while(move |e| serial_of(&self.der, e) == serial)
    }
}

/// Validate one CRL for the certificate whose issuer is `issuer`, at `now` (notation's
/// `validateCRL`, wrapped `failed to validate base CRL: ` or, with `is_delta`, `failed to
/// validate delta CRL: `): signed by `issuer`, which must be a CA allowed to sign CRLs (SHA-1
/// accepted); nextUpdate set and not passed; no critical CRL extension but the Issuing
/// Distribution Point and the Delta CRL Indicator.
pub fn validate(
    crl: &Crl,
    issuer: &Certificate,
    now: OffsetDateTime,
    is_delta: bool,
) -> Result<(), String> {
    validate_crl(crl, issuer, now).map_err(|e| {
        format!(
            "failed to validate {} CRL: {e}",
            if is_delta { "delta" } else { "base" }
        )
    })
}

fn validate_crl(crl: &Crl, issuer: &Certificate, now: OffsetDateTime) -> Result<(), String> {
    check_signature_from(crl, issuer)
        .map_err(|e| format!("CRL is not signed by CA {}: {e},", issuer.subject()))?;
    let Some(next_update) = crl.next_update else {
        return Err("CRL NextUpdate is not set".into());
    };
    if now > next_update {
        return Err(format!(
            "expired CRL. Current time {} is after CRL NextUpdate {}",
            go_time(now),
            go_time(next_update)
        ));
    }
    for ext in &crl.extensions {
        match ext.oid.as_str() {
            // The scope of the CRL is not evaluated: every distribution point is checked.
            OID_ISSUING_DISTRIBUTION_POINT | OID_DELTA_CRL_INDICATOR => {}
            oid if ext.critical => {
                return Err(format!(
                    "unsupported critical extension found in CRL: {oid}"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Go's `RevocationList.CheckSignatureFrom`, with Go's error texts.
fn check_signature_from(crl: &Crl, issuer: &Certificate) -> Result<(), String> {
    // Go also lets a v1/v2 certificate without basicConstraints sign; vouch's certificate
    // carries no version, and such CAs are not seen in practice.
    if !issuer.is_ca() || !issuer.may_sign_crls() {
        return Err(
            "x509: invalid signature: parent certificate cannot sign this kind of certificate"
                .into(),
        );
    }
    let tbs = &crl.der[crl.tbs.0..crl.tbs.1];
    issuer
        .verify_x509_signature(
            &crl.signature_oid,
            crl.pss_hash_oid.as_deref(),
            tbs,
            &crl.signature,
            Sha1::Accepted,
        )
        .map_err(|e| match e {
            X509SignatureError::Invalid if crl.signature_oid.starts_with("1.2.840.10045.") => {
                "x509: ECDSA verification failure".into()
            }
            X509SignatureError::Invalid => "crypto/rsa: verification error".into(),
            X509SignatureError::Unsupported(_) | X509SignatureError::UnsupportedPssHash => {
                "x509: cannot verify signature: algorithm unimplemented".into()
            }
            other => format!("x509: {other}"),
        })
}

/// The delta-CRL rules (RFC 5280 5.2.4, notation's `validate` after both CRLs validated): the
/// delta's CRL number greater than the base's, a Delta CRL Indicator present, parsable and not
/// above the base's number.
pub fn validate_delta(base: &Crl, delta: &Crl) -> Result<(), String> {
    // notation dereferences a missing number (a Go panic); vouch says so instead.
    let base_number = base.number.as_ref().ok_or("base CRL number is not set")?;
    let delta_number = delta.number.as_ref().ok_or("delta CRL number is not set")?;
    if delta_number <= base_number {
        return Err(format!(
            "delta CRL number {delta_number} is not greater than the base CRL number {base_number}"
        ));
    }
    let indicator = delta
        .extension(OID_DELTA_CRL_INDICATOR)
        .ok_or("delta CRL indicator extension is not found")?;
    let (minimum_base, _) =
        read_integer(&indicator.value).ok_or("failed to parse delta CRL indicator extension")?;
    if &minimum_base > base_number {
        return Err(format!(
            "delta CRL indicator {minimum_base} is not less than or equal to the base CRL number {base_number}"
        ));
    }
    Ok(())
}

/// notation's `validate(bundle, issuer)`: the base CRL, then the delta CRL, then the delta rules.
pub fn validate_bundle(
    base: &Crl,
    delta: Option<&Crl>,
    issuer: &Certificate,
    now: OffsetDateTime,
) -> Result<(), String> {
    validate(base, issuer, now, false)?;
    if let Some(delta) = delta {
        validate(delta, issuer, now, true)?;
        validate_delta(base, delta)?;
    }
    Ok(())
}

/// The URLs of a CRL distribution points value (Freshest CRL is the same syntax), walked as
/// notation's `parseCRLDistributionPoint` walks it: the `[6]` URI names of each point's fullName,
/// up to its first name of another kind; points without a name, and nameRelativeToCRLIssuer,
/// give none. Errors are Go's (`x509: invalid CRL distribution point`).
pub fn freshest_crl_urls(value: &[u8]) -> Result<Vec<String>, String> {
    const POINTS: &str = "x509: invalid CRL distribution points";
    const POINT: &str = "x509: invalid CRL distribution point";
    let (mut points, _) = read_tlv(value, 0x30).ok_or(POINTS)?;
    let mut urls = Vec::new();
    while !points.is_empty() {
        let (point, rest) = read_tlv(points, 0x30).ok_or(POINT)?;
        points = rest;
        // distributionPoint [0] is optional; reasons and cRLIssuer are not read.
        if point.first() != Some(&0xa0) {
            continue;
        }
        let (name, _) = read_tlv(point, 0xa0).ok_or(POINT)?;
        // fullName [0]; anything else (nameRelativeToCRLIssuer) is an error, as in Go.
        let (mut names, _) = read_tlv(name, 0xa0).ok_or(POINT)?;
        while names.first() == Some(&0x86) {
            let (uri, rest) = read_tlv(names, 0x86).ok_or(POINT)?;
            urls.push(String::from_utf8_lossy(uri).into_owned());
            names = rest;
        }
    }
    Ok(urls)
}

/// The delta CRL URLs the base CRL names (its Freshest CRL extension; none without one), wrapped
/// as notation wraps a bad extension (`failed to parse Freshest CRL extension: …`, a fetch
/// failure: pass it to [`download_failed`]). The fetch layer tries them in order; the first CRL
/// that downloads and parses is the delta; if all fail, the last error fails the whole fetch.
pub fn delta_urls(base: &Crl) -> Result<Vec<String>, String> {
    match base.freshest_crl_extension() {
        None => Ok(Vec::new()),
        Some(value) => freshest_crl_urls(value)
            .map_err(|e| format!("failed to parse Freshest CRL extension: {e}")),
    }
}

/// Decide `cert`'s status from a validated base CRL and optional delta (notation's
/// `checkRevocation`): the entries for its serial, base first then delta. An entry with an
/// invalidityDate after `signing_time` makes it OK at once; certificateHold / removeFromCRL
/// entries are weighed by revocation time (the latest wins, a tie keeps the first seen); any
/// other entry revokes at once; an entry with an unparsable invalidityDate or another critical
/// extension makes it unknown. A revoked decision carries no error text (notation's CRL server
/// result has none); `next_update` is the earliest of the two CRLs'.
pub fn check(
    cert: &Certificate,
    base: &Crl,
    delta: Option<&Crl>,
    signing_time: Option<OffsetDateTime>,
) -> Decision {
    check_serial(cert.serial(), base, delta, signing_time)
}

fn check_serial(
    serial: &[u8],
    base: &Crl,
    delta: Option<&Crl>,
    signing_time: Option<OffsetDateTime>,
) -> Decision {
    let next_update = earliest(base.next_update, delta.and_then(|d| d.next_update));
    let decide = |status, error: Option<String>| Decision {
        status,
        error,
        next_update,
    };
    let serial = super::minimal_integer(serial);
    let signing_time = signing_time.map(|t| t.unix_timestamp_nanos());
    let mut latest_temporary: Option<&Entry> = None;
    for crl in std::iter::once(base).chain(delta) {
        for entry in crl.entries_for(serial) {
            let invalidity = match entry.ext {
                EntryExt::None => None,
                EntryExt::InvalidityDate(secs, nanos) => {
                    Some(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
                }
                EntryExt::Error(i) => {
                    return decide(Status::Unknown, Some(crl.entry_errors[i as usize].clone()));
                }
            };
            if let (Some(signed), Some(invalid)) = (signing_time, invalidity) {
                if signed < invalid {
                    return decide(Status::Ok, None);
                }
            }
            match entry.reason {
                Reason::Hold | Reason::Remove => {
                    if latest_temporary.is_none_or(|l| l.revoked_at < entry.revoked_at) {
                        latest_temporary = Some(entry);
                    }
                }
                Reason::Permanent => return decide(Status::Revoked, None),
            }
        }
    }
    match latest_temporary {
        Some(e) if e.reason == Reason::Hold => decide(Status::Revoked, None),
        _ => decide(Status::Ok, None),
    }
}

/// One distribution point of notation's `CertCheckStatus` loop: what `url` decides about `cert`
/// (issued by `issuer`) at `now`, given what the fetch layer got from it — the base CRL and the
/// delta, or why not (the text after `failed to retrieve CRL: `, e.g. [`status_error`]). The
/// error is notation's, complete: `failed to download CRL from <url>: failed to retrieve CRL: …`,
/// `freshest CRL from certificate extension is not supported` (the certificate names delta
/// CRLs and the base CRL named none), `failed to validate CRL from <url>: …` or `failed to check
/// revocation status from <url>: …`. `Ok` means: go on to the next URL; `Revoked` or `Unknown`
/// ends the certificate's check with this URL's result.
pub fn decide_url(
    url: &str,
    cert: &Certificate,
    issuer: &Certificate,
    fetched: Result<(&Crl, Option<&Crl>), &str>,
    now: OffsetDateTime,
    signing_time: Option<OffsetDateTime>,
) -> Decision {
    let (base, delta) = match fetched {
        Ok(bundle) => bundle,
        Err(e) => return Decision::unknown(download_failed(url, e)),
    };
    let next_update = earliest(base.next_update, delta.and_then(|d| d.next_update));
    let unknown = |error: String| Decision {
        status: Status::Unknown,
        error: Some(error),
        next_update,
    };
    if cert.freshest_crl_extension().is_some() && delta.is_none() {
        return unknown("freshest CRL from certificate extension is not supported".into());
    }
    if let Err(e) = validate_bundle(base, delta, issuer, now) {
        return unknown(format!("failed to validate CRL from {url}: {e}"));
    }
    let mut decision = check(cert, base, delta, signing_time);
    if let Some(e) = decision.error.take() {
        decision.error = Some(format!("failed to check revocation status from {url}: {e}"));
    }
    decision
}

/// The server result notation records for `url`'s decision (method CRL, also under an OCSP
/// fallback, where only the certificate's method is `OCSPFallbackCRL`).
pub fn server_result(url: &str, decision: &Decision) -> ServerResult {
    ServerResult {
        method: Method::Crl,
        url: url.to_string(),
        status: decision.status,
        error: decision.error.clone(),
    }
}

/// notation's download failure for `url`: `failed to download CRL from <url>: failed to retrieve
/// CRL: <reason>`, where `reason` is a fetch error ([`url_error`], `request failed: …`,
/// [`status_error`], `failed to read CRL response: …`, [`size_error`]), a [`CrlParseError`]
/// (base or delta) or a [`delta_urls`] error.
pub fn download_failed(url: &str, reason: &str) -> String {
    format!("failed to download CRL from {url}: failed to retrieve CRL: {reason}")
}

/// notation's check of a CRL URL before fetching it (`fetchCRL`): only `http` is fetched.
pub fn url_error(url: &str) -> Option<String> {
    match url::Url::parse(url) {
        Err(e) => Some(format!("invalid CRL URL: {e}")),
        Ok(u) if u.scheme() != "http" => Some(format!(
            "unsupported scheme: {}. Only supports CRL URL in HTTP protocol",
            u.scheme()
        )),
        Ok(_) => None,
    }
}

/// notation's text for a non-200 answer.
pub fn status_error(code: u16) -> String {
    format!("failed to download with status code: {code}")
}

/// notation's text for a body that reached [`MAX_CRL_SIZE`].
pub fn size_error() -> String {
    format!("CRL size exceeds the limit: {MAX_CRL_SIZE}")
}

fn earliest(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A time as Go's `%v` prints it in UTC (`2024-11-25 07:36:40 +0000 UTC`).
fn go_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let mut s = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if t.nanosecond() != 0 {
        let frac = format!("{:09}", t.nanosecond());
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// `serial` with redundant leading sign bytes removed, so equal integers compare equal.
/// cryptobyte's `checkASN1Integer`: non-empty and minimally encoded.
fn minimal_integer(bytes: &[u8]) -> bool {
    !bytes.is_empty() && super::minimal_integer(bytes).len() == bytes.len()
}

/// Read one DER element with tag `tag` the way Go's cryptobyte `ReadASN1` does (low tag numbers
/// only, minimal definite lengths): its contents and what follows it.
fn read_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag || first & 0x1f == 0x1f {
        return None;
    }
    let (&len_byte, mut rest) = rest.split_first()?;
    let len = if len_byte & 0x80 == 0 {
        usize::from(len_byte)
    } else {
        let n = usize::from(len_byte & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        if len < 128 || rest[0] == 0 {
            return None;
        }
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// An INTEGER as cryptobyte's `ReadASN1Integer` into a `big.Int` reads it; trailing bytes are
/// returned, not refused.
fn read_integer(input: &[u8]) -> Option<(BigInt, &[u8])> {
    let (content, rest) = read_tlv(input, 0x02)?;
    minimal_integer(content).then(|| (BigInt::from_signed_bytes_be(content), rest))
}

/// An ENUMERATED as cryptobyte's `ReadASN1Enum` reads it (fits an int64).
fn read_enum(input: &[u8]) -> Option<i64> {
    let (content, _) = read_tlv(input, 0x0a)?;
    if !minimal_integer(content) || content.len() > 8 {
        return None;
    }
    let mut value: i64 = if content[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in content {
        value = (value << 8) | i64::from(b);
    }
    Some(value)
}

/// A GeneralizedTime element as Go's `asn1.UnmarshalWithParams(…, "generalized")` accepts it
/// ([`super::go_generalized_time`]), and what follows it.
fn parse_generalized_time(input: &[u8]) -> Result<(OffsetDateTime, &[u8]), String> {
    let (content, rest) = read_tlv(input, 0x18).ok_or_else(|| {
        "asn1: structure error: tags don't match (GeneralizedTime expected)".to_string()
    })?;
    let time = super::go_generalized_time(content).ok_or_else(|| {
        format!(
            "asn1: invalid GeneralizedTime {:?}",
            String::from_utf8_lossy(content)
        )
    })?;
    Ok((time, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 128 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    const SHA256_RSA: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
    ];
    const SHA1_RSA: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05,
    ];
    const REASON: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x15];
    const INVALIDITY: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x18];
    const UNKNOWN: &[u8] = &[0x06, 0x03, 0x2a, 0x03, 0x04];

    fn ext(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
        let mut parts = vec![oid.to_vec()];
        if critical {
            parts.push(vec![0x01, 0x01, 0xff]);
        }
        parts.push(tlv(0x04, value));
        seq(&parts)
    }

    fn reason(code: u8) -> Vec<u8> {
        ext(REASON, false, &[0x0a, 0x01, code])
    }

    fn utc(t: &str) -> Vec<u8> {
        tlv(0x17, t.as_bytes())
    }

    fn entry(serial: &[u8], time: &str, exts: &[Vec<u8>]) -> Vec<u8> {
        let mut parts = vec![tlv(0x02, serial), utc(time)];
        if !exts.is_empty() {
            parts.push(seq(exts));
        }
        seq(&parts)
    }

    /// An unsigned CRL (the signature is not looked at by `parse` or `check`).
    fn build(version: Option<u8>, inner_alg: &[u8], entries: &[Vec<u8>]) -> Vec<u8> {
        let alg = seq(&[SHA256_RSA.to_vec(), vec![0x05, 0x00]]);
        let inner = seq(&[inner_alg.to_vec(), vec![0x05, 0x00]]);
        let mut tbs = Vec::new();
        if let Some(v) = version {
            tbs.push(vec![0x02, 0x01, v]);
        }
        tbs.extend([inner, seq(&[]), utc("250101000000Z"), utc("350101000000Z")]);
        if !entries.is_empty() {
            tbs.push(seq(entries));
        }
        seq(&[seq(&tbs), alg, tlv(0x03, &[0x00, 0x01, 0x02])])
    }

    fn crl(entries: &[Vec<u8>]) -> Crl {
        parse(build(Some(1), SHA256_RSA, entries)).unwrap()
    }

    #[test]
    fn parse_refuses_what_go_refuses() {
        let e = |der| parse(der).unwrap_err().0;
        assert_eq!(
            e(build(None, SHA256_RSA, &[])),
            "x509: unsupported crl version"
        );
        assert_eq!(
            e(build(Some(0), SHA256_RSA, &[])),
            "x509: unsupported crl version: 0"
        );
        assert_eq!(
            e(build(Some(1), SHA1_RSA, &[])),
            "x509: inner and outer signature algorithm identifiers don't match"
        );
        let non_minimal = entry(&[0x00, 0x10], "250101000000Z", &[]);
        assert_eq!(
            e(build(Some(1), SHA256_RSA, &[non_minimal])),
            "x509: malformed serial number"
        );
        let bad_reason = entry(
            &[0x10],
            "250101000000Z",
            &[ext(REASON, false, &[0x02, 0x01, 0x01])],
        );
        assert_eq!(
            e(build(Some(1), SHA256_RSA, &[bad_reason])),
            "x509: malformed reasonCode extension"
        );
        assert_eq!(e(b"invalid crl".to_vec()), "x509: malformed crl");
        // Trailing bytes after the CRL are ignored, as Go ignores them.
        let mut der = build(Some(1), SHA256_RSA, &[]);
        der.extend([0x00, 0x00]);
        assert!(parse(der).is_ok());
    }

    #[test]
    fn entries_of_one_serial_are_weighed_in_crl_order() {
        let serial = [0x10];
        let none = None;
        // Hold then a later remove: OK; a later hold again: revoked.
        let c = crl(&[
            entry(&[0x7f], "250101000000Z", &[]),
            entry(&serial, "250101000000Z", &[reason(6)]),
            entry(&serial, "250102000000Z", &[reason(8)]),
        ]);
        assert_eq!(check_serial(&serial, &c, None, none).status, Status::Ok);
        let c = crl(&[
            entry(&serial, "250101000000Z", &[reason(6)]),
            entry(&serial, "250102000000Z", &[reason(8)]),
            entry(&serial, "250103000000Z", &[reason(6)]),
        ]);
        assert_eq!(
            check_serial(&serial, &c, None, none).status,
            Status::Revoked
        );
        // Ties keep the first seen, whichever it is.
        let c = crl(&[
            entry(&serial, "250101000000Z", &[reason(8)]),
            entry(&serial, "250101000000Z", &[reason(6)]),
        ]);
        assert_eq!(check_serial(&serial, &c, None, none).status, Status::Ok);
        // Reasons beyond RFC 5280's (x509-parser refuses > 10, Go does not) revoke.
        let c = crl(&[entry(&serial, "250101000000Z", &[reason(42)])]);
        assert_eq!(
            check_serial(&serial, &c, None, none).status,
            Status::Revoked
        );
        // A certificate serial with a redundant leading zero still matches.
        let c = crl(&[entry(&[0x10], "250101000000Z", &[])]);
        assert_eq!(
            check_serial(&[0x00, 0x10], &c, None, none).status,
            Status::Revoked
        );
        assert_eq!(check_serial(&[0x11], &c, None, none).status, Status::Ok);
        // A permanent revocation before a matching invalidity-date entry wins.
        let signed = Some(datetime!(2024-01-01 00:00:00 UTC));
        let invalid = ext(INVALIDITY, false, &tlv(0x18, b"20250101000000Z"));
        let c = crl(&[
            entry(&serial, "250101000000Z", &[]),
            entry(&serial, "250101000000Z", std::slice::from_ref(&invalid)),
        ]);
        assert_eq!(
            check_serial(&serial, &c, None, signed).status,
            Status::Revoked
        );
        let c = crl(&[
            entry(&serial, "250101000000Z", &[invalid]),
            entry(&serial, "250101000000Z", &[]),
        ]);
        assert_eq!(check_serial(&serial, &c, None, signed).status, Status::Ok);
    }

    #[test]
    fn an_invalidity_date_keeps_its_fraction_of_a_second() {
        let serial = [0x10];
        let invalid = ext(INVALIDITY, false, &tlv(0x18, b"20250101000000.5Z"));
        let c = crl(&[entry(&serial, "250101000000Z", &[invalid])]);
        let before = Some(datetime!(2025-01-01 00:00:00.2 UTC));
        let after = Some(datetime!(2025-01-01 00:00:00.7 UTC));
        assert_eq!(check_serial(&serial, &c, None, before).status, Status::Ok);
        assert_eq!(
            check_serial(&serial, &c, None, after).status,
            Status::Revoked
        );
    }

    #[test]
    fn entry_extensions_that_make_the_status_unknown() {
        let serial = [0x10];
        let unknown = |exts: &[Vec<u8>]| {
            let c = crl(&[entry(&serial, "250101000000Z", exts)]);
            let d = check_serial(&serial, &c, None, None);
            assert_eq!(d.status, Status::Unknown);
            // Another serial never sees the entry's problem.
            assert_eq!(check_serial(&[0x11], &c, None, None).status, Status::Ok);
            d.error.unwrap()
        };
        assert_eq!(
            unknown(&[ext(UNKNOWN, true, &[0x05, 0x00])]),
            "unsupported critical extension found in CRL: 1.2.3.4"
        );
        // Go keeps the reason code among the entry's extensions: critical, it is refused too.
        assert_eq!(
            unknown(&[ext(REASON, true, &[0x0a, 0x01, 0x01])]),
            "unsupported critical extension found in CRL: 2.5.29.21"
        );
        assert!(unknown(&[ext(INVALIDITY, false, &utc("250101000000Z"))])
            .starts_with("failed to parse invalidity date: asn1: structure error"));
        // A fraction is Go's, but not one with a trailing zero (it would not serialise back).
        assert!(
            unknown(&[ext(INVALIDITY, false, &tlv(0x18, b"20250101000000.50Z"))])
                .starts_with("failed to parse invalidity date: ")
        );
        let mut trailing = tlv(0x18, b"20250101000000Z");
        trailing.push(0x00);
        assert_eq!(
            unknown(&[ext(INVALIDITY, false, &trailing)]),
            "invalid invalidity date extension: trailing data"
        );
        // A non-critical unknown extension is ignored.
        let c = crl(&[entry(
            &serial,
            "250101000000Z",
            &[ext(UNKNOWN, false, &[0x05, 0x00])],
        )]);
        assert_eq!(
            check_serial(&serial, &c, None, None).status,
            Status::Revoked
        );
    }

    #[test]
    fn generalized_times_as_go_reads_them() {
        let t = |s: &str| parse_generalized_time(&tlv(0x18, s.as_bytes())).map(|(t, _)| t);
        assert_eq!(t("20250101000000Z"), Ok(datetime!(2025-01-01 00:00:00 UTC)));
        assert_eq!(
            t("20250101010000+0100"),
            Ok(datetime!(2025-01-01 00:00:00 UTC))
        );
        // Fractions without trailing zeros are Go's too (its format is `…05.999999999Z0700`).
        assert_eq!(
            t("20250101000000.25Z"),
            Ok(datetime!(2025-01-01 00:00:00.25 UTC))
        );
        for bad in [
            "20250101000000.250Z",
            "20250101000000+0000",
            "20250101000000",
            "2025010100000Z",
            "20251301000000Z",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn go_time_and_der_reading() {
        assert_eq!(
            go_time(datetime!(2024-11-25 07:36:40 UTC)),
            "2024-11-25 07:36:40 +0000 UTC"
        );
        assert_eq!(
            go_time(datetime!(2024-11-25 07:36:40.1205 +02:00)),
            "2024-11-25 05:36:40.1205 +0000 UTC"
        );
        // Non-minimal long-form lengths are refused, as cryptobyte refuses them.
        assert!(read_tlv(&[0x30, 0x81, 0x01, 0x00], 0x30).is_none());
        assert!(read_tlv(&[0x30, 0x82, 0x00, 0x80], 0x30).is_none());
        assert!(read_tlv(&[0x30, 0x03, 0x00], 0x30).is_none());
        assert_eq!(read_enum(&[0x0a, 0x01, 0xff]), Some(-1));
        assert_eq!(read_integer(&[0x02, 0x02, 0x00, 0x01]), None);
    }
}
