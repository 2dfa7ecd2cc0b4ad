//! COSE_Sign1 envelopes as Notation writes them (specification `signature-envelope-cose.md`,
//! notation-core-go `signature/cose/envelope.go`).
//!
//! - The envelope must be tagged (`18`); indefinite lengths and duplicate labels are refused.
//! - Protected: `alg` (1), `crit` (2), content type (3, text only), the `io.cncf.notary.*`
//!   attributes; times are CBOR tag 1 integers.
//! - `crit` must list `signingScheme`, `expiry` when present and `authenticSigningTime` under the
//!   signing-authority scheme; every listed label must be present; a critical label we do not
//!   understand fails (the specification requires it; notation-go only does when a plugin is
//!   named), and so does any verification-plugin header.
//! - Unprotected: `x5chain` (33) as an array of DER certificates, leaf first.
//! - The signature covers `Sig_structure` built from the protected bytes as received.

use coset::cbor::value::Value;
use coset::iana::EnumI64;
use coset::{ContentType, Label, RegisteredLabelWithPrivate, TaggedCborSerializable};
use time::OffsetDateTime;

use super::{cbor, Envelope, SigningScheme, MEDIA_TYPE_COSE};
use crate::notation::x509::{Certificate, PssSalt, SignatureAlgorithm};

const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
const EXPIRY: &str = "io.cncf.notary.expiry";
const PLUGIN: &str = "io.cncf.notary.verificationPlugin";
const PLUGIN_MIN_VERSION: &str = "io.cncf.notary.verificationPluginMinVersion";
const TIMESTAMP: &str = "io.cncf.notary.timestampSignature";
const SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";
const X5CHAIN: i64 = 33;
/// Most certificates accepted in a chain.
const MAX_CHAIN: usize = 10;

/// Parse a COSE_Sign1 envelope.
pub fn parse(bytes: &[u8]) -> Result<Envelope, String> {
    let fail = |m: String| format!("unable to parse the COSE signature envelope: {m}");
    if !bytes.starts_with(&[0xd2, 0x84]) {
        return Err(fail(
            "not a tagged COSE_Sign1 object (expected tag 18)".into(),
        ));
    }
    cbor::check_definite(bytes).map_err(fail)?;
    let sign1 = coset::CoseSign1::from_tagged_slice(bytes).map_err(|e| fail(e.to_string()))?;
    let protected_raw = sign1
        .protected
        .original_data
        .as_deref()
        .ok_or_else(|| fail("protected header is missing".into()))?;
    cbor::check_definite(protected_raw).map_err(|e| fail(format!("protected header: {e}")))?;
    let p = &sign1.protected.header;

    let algorithm = match &p.alg {
        Some(RegisteredLabelWithPrivate::Assigned(a)) => SignatureAlgorithm::from_cose(a.to_i64()),
        Some(RegisteredLabelWithPrivate::PrivateUse(v)) => SignatureAlgorithm::from_cose(*v),
        _ => None,
    }
    .ok_or_else(|| fail("signature algorithm is missing or not supported".into()))?;

    let content_type = match &p.content_type {
        Some(ContentType::Text(t)) => t.clone(),
        Some(ContentType::Assigned(_)) => {
            return Err(fail("content type must be a text string".into()))
        }
        None => return Err(fail("missing content type header".into())),
    };

    let text = |label: &str| -> Option<&Value> {
        p.rest
            .iter()
            .find(|(l, _)| matches!(l, Label::Text(t) if t == label))
            .map(|(_, v)| v)
    };
    if text(PLUGIN).is_some() || text(PLUGIN_MIN_VERSION).is_some() {
        return Err(fail(
            "the signature requires a verification plugin, which vouch does not support".into(),
        ));
    }
    let scheme = match text(SIGNING_SCHEME) {
        Some(Value::Text(s)) => SigningScheme::parse(s).map_err(fail)?,
        Some(_) => return Err(fail("signingScheme must be a text string".into())),
        None => return Err(fail("missing signingScheme header".into())),
    };
    let signing_time = text(SIGNING_TIME)
        .map(tag1_time)
        .transpose()
        .map_err(fail)?;
    let authentic_time = text(AUTHENTIC_SIGNING_TIME)
        .map(tag1_time)
        .transpose()
        .map_err(fail)?;
    let expiry = text(EXPIRY).map(tag1_time).transpose().map_err(fail)?;

    // crit: what must be listed, and everything listed must be present and understood.
    if p.crit.is_empty() {
        return Err(fail("missing critical headers (crit)".into()));
    }
    let crit_text: Vec<&str> = p
        .crit
        .iter()
        .filter_map(|l| match l {
            RegisteredLabelWithPrivate::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let mut required = vec![SIGNING_SCHEME];
    if expiry.is_some() {
        required.push(EXPIRY);
    }
    if scheme == SigningScheme::X509SigningAuthority {
        required.push(AUTHENTIC_SIGNING_TIME);
    }
    if let Some(missing) = required.iter().find(|r| !crit_text.contains(r)) {
        return Err(fail(format!(
            "these required headers are not marked as critical: [{missing}]"
        )));
    }
    for label in &p.crit {
        match label {
            RegisteredLabelWithPrivate::Text(t) => {
                let known = [SIGNING_SCHEME, SIGNING_TIME, AUTHENTIC_SIGNING_TIME, EXPIRY];
                if text(t).is_none() {
                    return Err(fail(format!("missing critical header {t:?}")));
                }
                if !known.contains(&t.as_str()) {
                    return Err(fail(format!(
                        "unsupported critical header {t:?}: vouch does not understand this extended attribute"
                    )));
                }
            }
            RegisteredLabelWithPrivate::Assigned(a) => {
                let v = a.to_i64();
                let present = match v {
                    1 => p.alg.is_some(),
                    3 => p.content_type.is_some(),
                    _ => false,
                };
                if !present {
                    return Err(fail(format!("unsupported or missing critical header {v}")));
                }
            }
            RegisteredLabelWithPrivate::PrivateUse(v) => {
                return Err(fail(format!("unsupported critical header {v}")))
            }
        }
    }

    let signing_time = match scheme {
        SigningScheme::X509 => {
            if authentic_time.is_some() {
                return Err(fail(
                    "authenticSigningTime is not allowed under the notary.x509 signing scheme"
                        .into(),
                ));
            }
            signing_time.ok_or_else(|| fail("missing signingTime header".into()))?
        }
        SigningScheme::X509SigningAuthority => {
            authentic_time.ok_or_else(|| fail("missing authenticSigningTime header".into()))?
        }
    };

    // Unprotected header.
    let u = &sign1.unprotected;
    let find_u = |want: &Label| u.rest.iter().find(|(l, _)| l == want).map(|(_, v)| v);
    let chain = match find_u(&Label::Int(X5CHAIN)) {
        Some(Value::Array(items)) if !items.is_empty() => {
            if items.len() > MAX_CHAIN {
                return Err(fail(format!(
                    "certificate chain has more than {MAX_CHAIN} certificates"
                )));
            }
            items
                .iter()
                .map(|v| match v {
                    Value::Bytes(der) => Certificate::from_der(der).map_err(|e| e.to_string()),
                    _ => Err("x5chain entries must be byte strings".into()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(format!("malformed leaf certificate: {e}")))?
        }
        _ => return Err(fail("certificate chain is not present".into())),
    };
    let timestamp_token = match find_u(&Label::Text(TIMESTAMP.into())) {
        Some(Value::Bytes(b)) => Some(b.clone()),
        Some(_) => return Err(fail("timestampSignature must be a byte string".into())),
        None => None,
    };
    let signing_agent = match find_u(&Label::Text(SIGNING_AGENT.into())) {
        Some(Value::Text(t)) => Some(t.clone()),
        _ => None,
    };

    let payload = sign1
        .payload
        .clone()
        .ok_or_else(|| fail("payload is missing (detached payloads are not supported)".into()))?;
    let signed_bytes = sign1.tbs_data(b"");
    Ok(Envelope {
        media_type: MEDIA_TYPE_COSE,
        payload,
        content_type,
        algorithm,
        signing_scheme: scheme,
        signing_time,
        expiry,
        chain,
        timestamp_token,
        signing_agent,
        signature: sign1.signature.clone(),
        signed_bytes,
        pss_salt: PssSalt::HashLength,
    })
}

/// A Notation time: CBOR tag 1 wrapping integer epoch seconds (tag 0 and untagged values fail).
fn tag1_time(v: &Value) -> Result<OffsetDateTime, String> {
    match v {
        Value::Tag(1, inner) => match inner.as_ref() {
            Value::Integer(i) => {
                let secs = i64::try_from(*i).map_err(|_| "time value out of range".to_string())?;
                OffsetDateTime::from_unix_timestamp(secs).map_err(|e| e.to_string())
            }
            _ => Err("only Tag `1` Datetime CBOR object with an integer is supported".into()),
        },
        _ => Err("only Tag `1` Datetime CBOR object is supported".into()),
    }
}

/// A timestamp authority as a signer sees it: given the raw signature bytes (what an RFC 3161
/// message imprint covers), it returns a TimeStampToken (DER) or why it could not.
pub type Countersigner<'a> = dyn Fn(&[u8]) -> Result<Vec<u8>, String> + 'a;

/// Build the bytes of a Notation COSE envelope (used by `vouch demo` and by tests that need
/// envelopes the vectors lack). `sign` signs the `Sig_structure` bytes; `countersign`, when
/// given, receives the finished signature (the 4th element of COSE_Sign1) and returns an
/// RFC 3161 TimeStampToken (DER), put in the unprotected header as
/// `io.cncf.notary.timestampSignature` (unprotected, since it is made after the signature).
#[allow(clippy::too_many_arguments)]
pub fn build(
    algorithm: SignatureAlgorithm,
    scheme: SigningScheme,
    payload: &[u8],
    chain_der: &[Vec<u8>],
    signing_time: OffsetDateTime,
    expiry: Option<OffsetDateTime>,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
    countersign: Option<&Countersigner<'_>>,
) -> Result<Vec<u8>, String> {
    let alg = match algorithm {
        SignatureAlgorithm::PS256 => coset::iana::Algorithm::PS256,
        SignatureAlgorithm::PS384 => coset::iana::Algorithm::PS384,
        SignatureAlgorithm::PS512 => coset::iana::Algorithm::PS512,
        SignatureAlgorithm::ES256 => coset::iana::Algorithm::ES256,
        SignatureAlgorithm::ES384 => coset::iana::Algorithm::ES384,
        SignatureAlgorithm::ES512 => coset::iana::Algorithm::ES512,
    };
    let time =
        |t: OffsetDateTime| Value::Tag(1, Box::new(Value::Integer(t.unix_timestamp().into())));
    let mut crit = vec![RegisteredLabelWithPrivate::Text(SIGNING_SCHEME.into())];
    let (scheme_name, time_label) = match scheme {
        SigningScheme::X509 => ("notary.x509", SIGNING_TIME),
        SigningScheme::X509SigningAuthority => {
            crit.push(RegisteredLabelWithPrivate::Text(
                AUTHENTIC_SIGNING_TIME.into(),
            ));
            ("notary.x509.signingAuthority", AUTHENTIC_SIGNING_TIME)
        }
    };
    let mut rest = vec![
        (
            Label::Text(SIGNING_SCHEME.into()),
            Value::Text(scheme_name.into()),
        ),
        (Label::Text(time_label.into()), time(signing_time)),
    ];
    if let Some(e) = expiry {
        crit.push(RegisteredLabelWithPrivate::Text(EXPIRY.into()));
        rest.push((Label::Text(EXPIRY.into()), time(e)));
    }
    let protected = coset::Header {
        alg: Some(RegisteredLabelWithPrivate::Assigned(alg)),
        crit,
        content_type: Some(ContentType::Text(super::PAYLOAD_CONTENT_TYPE.into())),
        rest,
        ..Default::default()
    };
    let unprotected = coset::Header {
        rest: vec![
            (
                Label::Int(X5CHAIN),
                Value::Array(chain_der.iter().map(|d| Value::Bytes(d.clone())).collect()),
            ),
            (
                Label::Text(SIGNING_AGENT.into()),
                Value::Text(concat!("vouch/", env!("CARGO_PKG_VERSION")).into()),
            ),
        ],
        ..Default::default()
    };
    let mut sign1 = coset::CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .payload(payload.to_vec())
        .try_create_signature(b"", sign)?
        .build();
    if let Some(countersign) = countersign {
        let token = countersign(&sign1.signature)
            .map_err(|e| format!("timestamping the signature failed: {e}"))?;
        sign1
            .unprotected
            .rest
            .push((Label::Text(TIMESTAMP.into()), Value::Bytes(token)));
    }
    sign1.to_tagged_vec().map_err(|e| e.to_string())
}
