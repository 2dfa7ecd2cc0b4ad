//! JWS envelopes as Notation writes them (specification `signature-envelope-jws.md`,
//! notation-core-go `signature/jws`): the flattened JSON serialization only.
//!
//! - `payload`, `protected`, `signature` are base64url without padding; `x5c` entries and the
//!   timestamp token are standard base64 with padding.
//! - The signing input is `protected "." payload` exactly as stored.
//! - `crit` must list `io.cncf.notary.signingScheme`, `io.cncf.notary.expiry` when present and
//!   `io.cncf.notary.authenticSigningTime` under the signing-authority scheme; listing a known
//!   header that is not an extended attribute fails, as in notation; an extended critical
//!   attribute we do not understand fails (specification rule).
//! - Times are RFC 3339 with any offset.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{Envelope, SigningScheme, MEDIA_TYPE_JWS};
use crate::notation::x509::{Certificate, PssSalt, SignatureAlgorithm};

const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
const EXPIRY: &str = "io.cncf.notary.expiry";
const PLUGIN: &str = "io.cncf.notary.verificationPlugin";
const PLUGIN_MIN_VERSION: &str = "io.cncf.notary.verificationPluginMinVersion";
const MAX_CHAIN: usize = 10;

#[derive(Deserialize)]
struct Flattened {
    payload: String,
    protected: String,
    #[serde(default)]
    header: Unprotected,
    signature: String,
}

#[derive(Deserialize, Default)]
struct Unprotected {
    #[serde(default)]
    x5c: Vec<String>,
    #[serde(default, rename = "io.cncf.notary.timestampSignature")]
    timestamp: Option<String>,
    #[serde(default, rename = "io.cncf.notary.signingAgent")]
    signing_agent: Option<String>,
}

/// Parse a JWS envelope.
pub fn parse(bytes: &[u8]) -> Result<Envelope, String> {
    let fail = |m: String| format!("unable to parse the JWS signature envelope: {m}");
    let env: Flattened = serde_json::from_slice(bytes).map_err(|e| fail(e.to_string()))?;
    let protected_json = URL_SAFE_NO_PAD
        .decode(&env.protected)
        .map_err(|e| fail(format!("protected header is not base64url: {e}")))?;
    let payload = URL_SAFE_NO_PAD
        .decode(&env.payload)
        .map_err(|e| fail(format!("payload is not base64url: {e}")))?;
    let signature = URL_SAFE_NO_PAD
        .decode(&env.signature)
        .map_err(|e| fail(format!("signature is not base64url: {e}")))?;
    let header: Map<String, Value> = serde_json::from_slice(&protected_json)
        .map_err(|e| fail(format!("protected header is not a JSON object: {e}")))?;

    let string = |key: &str| -> Result<Option<&str>, String> {
        match header.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(fail(format!("{key} must be a string"))),
        }
    };
    let time = |key: &str| -> Result<Option<OffsetDateTime>, String> {
        string(key)?
            .map(|s| {
                OffsetDateTime::parse(s, &Rfc3339)
                    .map_err(|e| fail(format!("{key} {s:?} is not an RFC 3339 time: {e}")))
            })
            .transpose()
    };

    let alg_name = string("alg")?.ok_or_else(|| fail("missing alg".into()))?;
    let algorithm = SignatureAlgorithm::from_jws_name(alg_name)
        .ok_or_else(|| fail(format!("signature algorithm {alg_name:?} is not supported")))?;
    let content_type = string("cty")?
        .ok_or_else(|| fail("missing content type (cty)".into()))?
        .to_string();
    if header.contains_key(PLUGIN) || header.contains_key(PLUGIN_MIN_VERSION) {
        return Err(fail(
            "the signature requires a verification plugin, which vouch does not support".into(),
        ));
    }
    let scheme = SigningScheme::parse(
        string(SIGNING_SCHEME)?.ok_or_else(|| fail("missing signingScheme".into()))?,
    )
    .map_err(fail)?;
    let signing_time = time(SIGNING_TIME)?;
    let authentic_time = time(AUTHENTIC_SIGNING_TIME)?;
    let expiry = time(EXPIRY)?;

    let crit: Vec<String> = match header.get("crit") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(fail("crit entries must be strings".into())),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(fail("missing or empty critical headers (crit)".into())),
    };
    let mut required = vec![SIGNING_SCHEME];
    if expiry.is_some() {
        required.push(EXPIRY);
    }
    if scheme == SigningScheme::X509SigningAuthority {
        required.push(AUTHENTIC_SIGNING_TIME);
    }
    if let Some(missing) = required.iter().find(|r| !crit.iter().any(|c| c == *r)) {
        return Err(fail(format!(
            "these required headers are not marked as critical: [{missing}]"
        )));
    }
    let header_keys = ["alg", "cty", "crit", SIGNING_TIME];
    for c in &crit {
        if required.contains(&c.as_str()) {
            continue;
        }
        if header_keys.contains(&c.as_str()) || !header.contains_key(c) {
            return Err(fail(format!(
                "{c:?} header is marked critical but not present"
            )));
        }
        return Err(fail(format!(
            "unsupported critical header {c:?}: vouch does not understand this extended attribute"
        )));
    }

    let signing_time = match scheme {
        SigningScheme::X509 => {
            if authentic_time.is_some() {
                return Err(fail(format!(
                    "{AUTHENTIC_SIGNING_TIME} header must not be present for notary.x509 signing scheme"
                )));
            }
            signing_time.ok_or_else(|| fail("missing signingTime".into()))?
        }
        SigningScheme::X509SigningAuthority => {
            if signing_time.is_some() {
                return Err(fail(format!(
                    "{SIGNING_TIME} header must not be present for notary.x509.signingAuthority signing scheme"
                )));
            }
            authentic_time.ok_or_else(|| fail("missing authenticSigningTime".into()))?
        }
    };

    if env.header.x5c.is_empty() {
        return Err(fail("certificate chain is not present".into()));
    }
    if env.header.x5c.len() > MAX_CHAIN {
        return Err(fail(format!(
            "certificate chain has more than {MAX_CHAIN} certificates"
        )));
    }
    let chain = env
        .header
        .x5c
        .iter()
        .map(|b64| {
            let der = STANDARD
                .decode(b64)
                .map_err(|e| format!("x5c entry is not base64: {e}"))?;
            Certificate::from_der(&der).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("malformed leaf certificate: {e}")))?;
    let timestamp_token = env
        .header
        .timestamp
        .as_deref()
        .map(|t| STANDARD.decode(t))
        .transpose()
        .map_err(|e| fail(format!("timestampSignature is not base64: {e}")))?;

    // golang-jwt requires the payload to be a JSON object (claims); so do we.
    if !matches!(
        serde_json::from_slice::<Value>(&payload),
        Ok(Value::Object(_))
    ) {
        return Err(fail("payload is not a JSON object".into()));
    }
    let signed_bytes = format!("{}.{}", env.protected, env.payload).into_bytes();
    Ok(Envelope {
        media_type: MEDIA_TYPE_JWS,
        payload,
        content_type,
        algorithm,
        signing_scheme: scheme,
        signing_time,
        expiry,
        chain,
        timestamp_token,
        signing_agent: env.header.signing_agent,
        signature,
        signed_bytes,
        pss_salt: PssSalt::HashOrMax,
    })
}
