//! One signature against one trust-policy statement (notation-go `verifier/verifier.go`
//! `processSignature`): the checks run in the specification's order and the statement's level
//! says what each failure means. The level table lives in [`super::level`]; nothing here
//! branches on a level's name.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::envelope::{self, Envelope, SigningScheme, TargetArtifact};
use super::level::{Action, Check};
use super::trust_policy::{TrustPolicyStatement, TrustedIdentities, VerifyTimestamp};
use super::trust_store::{StoreType, TrustStores};
use super::x509::rfc1123z;

/// What happened to one check of one signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check.
    pub check: Check,
    /// What the level says a failure means.
    pub action: Action,
    /// `None` when the check passed; the failure otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome of verifying one signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureOutcome {
    /// Digest of the signature manifest.
    pub digest: String,
    /// Envelope media type.
    pub envelope: String,
    /// Leaf certificate subject, when the envelope could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// Signing time (or authentic signing time), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_time: Option<String>,
    /// Whether this signature verified under the statement.
    pub verified: bool,
    /// Each check that ran.
    pub checks: Vec<CheckResult>,
    /// Why the signature failed, in notation's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Logged (non-enforced) failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl SignatureOutcome {
    fn new(digest: &str, media_type: &str) -> Self {
        Self {
            digest: digest.to_string(),
            envelope: media_type.to_string(),
            signer: None,
            signing_time: None,
            verified: false,
            checks: Vec::new(),
            error: None,
            warnings: Vec::new(),
        }
    }

    /// Record one check's result; `false` means verification of this signature stops.
    fn record(&mut self, check: Check, action: Action, result: Result<(), String>) -> bool {
        let error = result.err();
        self.checks.push(CheckResult {
            check,
            action,
            error: error.clone(),
        });
        match (error, action) {
            (None, _) => true,
            (Some(e), Action::Log) => {
                self.warnings.push(format!(
                    "{check} was set to \"log\" and failed with error: {e}"
                ));
                true
            }
            (Some(e), _) => {
                self.error = Some(format!("{check} validation failed: {e}"));
                false
            }
        }
    }
}

/// Everything a signature is judged against.
pub struct VerificationContext<'a> {
    /// The statement that applies to the repository.
    pub statement: &'a TrustPolicyStatement,
    /// Loaded trust stores.
    pub stores: &'a TrustStores,
    /// The descriptor the registry resolved for the image.
    pub target: &'a TargetArtifact,
    /// The time "now" for expiry and certificate validity.
    pub now: OffsetDateTime,
}

/// One level-governed check, run lazily so that a skipped check costs nothing.
type CheckFn<'a> = dyn Fn() -> Result<(), String> + 'a;

/// Verify one envelope (already fetched and digest-checked) under a statement.
pub fn verify_signature(
    ctx: &VerificationContext<'_>,
    signature_digest: &str,
    envelope_media_type: &str,
    envelope_bytes: &[u8],
) -> SignatureOutcome {
    let level = ctx.statement.level;
    let mut out = SignatureOutcome::new(signature_digest, envelope_media_type);

    // 1. Integrity: always enforced (the trust-policy loader refuses overriding it).
    let parsed = envelope::parse(envelope_media_type, envelope_bytes);
    if let Ok(env) = &parsed {
        out.signer = env.leaf().map(|c| c.subject().to_string());
        out.signing_time = env
            .signing_time
            .format(&time::format_description::well_known::Rfc3339)
            .ok();
    }
    let integrity = parsed.and_then(|env| env.verify_integrity().map(|t| (env, t)));
    let (env, signed_target) = match integrity {
        Ok(v) => {
            out.record(Check::Integrity, Action::Enforce, Ok(()));
            v
        }
        Err(e) => {
            out.record(Check::Integrity, Action::Enforce, Err(e));
            return out;
        }
    };

    // 2–5: the checks whose meaning the level decides.
    let checks: [(Check, &CheckFn); 4] = [
        (Check::Authenticity, &|| authenticity(ctx, &env)),
        (Check::Expiry, &|| expiry(ctx, &env)),
        (Check::AuthenticTimestamp, &|| {
            authentic_timestamp(ctx, &env)
        }),
        (Check::Revocation, &|| revocation(&env)),
    ];
    for (check, run) in checks {
        let action = level.action(check);
        if action == Action::Skip {
            continue;
        }
        if !out.record(check, action, run()) {
            return out;
        }
    }

    // The payload must name exactly the manifest we resolved, whatever the level.
    if signed_target.media_type != ctx.target.media_type
        || signed_target.digest != ctx.target.digest
        || signed_target.size != ctx.target.size
    {
        out.error = Some(format!(
            "content descriptor mismatch: the signature is for {} (size {}, {}), but the registry resolved {} (size {}, {})",
            signed_target.digest,
            signed_target.size,
            signed_target.media_type,
            ctx.target.digest,
            ctx.target.size,
            ctx.target.media_type
        ));
        return out;
    }
    out.verified = true;
    out
}

fn authenticity(ctx: &VerificationContext<'_>, env: &Envelope) -> Result<(), String> {
    let store_type = match env.signing_scheme {
        SigningScheme::X509 => StoreType::Ca,
        SigningScheme::X509SigningAuthority => StoreType::SigningAuthority,
    };
    let refs: Vec<_> = ctx
        .statement
        .trust_stores
        .iter()
        .filter(|r| r.store_type == store_type)
        .collect();
    if refs.is_empty() {
        return Err(format!(
            "no trust store of type {:?} is configured in trust policy statement {:?}, which signing scheme {:?} requires",
            store_type.name(),
            ctx.statement.name,
            serde_json::to_value(env.signing_scheme).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
        ));
    }
    let trusted = refs.iter().any(|r| {
        ctx.stores.certificates(r).is_some_and(|store| {
            env.chain
                .iter()
                .any(|c| store.iter().any(|t| t.der() == c.der()))
        })
    });
    if !trusted {
        let names: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
        return Err(format!(
            "the signature's certificate chain does not contain any trusted certificate (signed by {:?}; trust stores tried: {})",
            env.leaf().map(|c| c.subject()).unwrap_or_default(),
            names.join(", ")
        ));
    }
    match &ctx.statement.trusted_identities {
        TrustedIdentities::Any => Ok(()),
        TrustedIdentities::Subjects(subjects) if subjects.is_empty() => {
            Err("no x509 trusted identities are configured in the trust policy".into())
        }
        TrustedIdentities::Subjects(subjects) => {
            let leaf = env.leaf().ok_or("certificate chain is not present")?;
            let mismatch = || {
                format!(
                    "signing certificate from the digital signature does not match the X.509 trusted identities {:?} defined in the trust policy {:?} (signed by {:?})",
                    subjects.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    ctx.statement.name,
                    leaf.subject()
                )
            };
            let dn = leaf
                .subject_dn()
                .map_err(|e| format!("{}: {e}", mismatch()))?;
            if subjects.iter().any(|s| s.is_subset_of(dn)) {
                Ok(())
            } else {
                Err(mismatch())
            }
        }
    }
}

fn expiry(ctx: &VerificationContext<'_>, env: &Envelope) -> Result<(), String> {
    match env.expiry {
        Some(e) if ctx.now >= e => Err(format!(
            "digital signature has expired on {:?}",
            rfc1123z(e)
        )),
        _ => Ok(()),
    }
}

fn authentic_timestamp(ctx: &VerificationContext<'_>, env: &Envelope) -> Result<(), String> {
    let within = |at: OffsetDateTime, what: &str| -> Result<(), String> {
        for cert in &env.chain {
            if at < cert.not_before() {
                return Err(format!(
                    "{what} is before certificate {:?} validity period, it will be valid from {:?}",
                    cert.subject(),
                    rfc1123z(cert.not_before())
                ));
            }
            if at > cert.not_after() {
                return Err(format!(
                    "{what} is after certificate {:?} validity period, it was expired at {:?}",
                    cert.subject(),
                    rfc1123z(cert.not_after())
                ));
            }
        }
        Ok(())
    };
    if env.signing_scheme == SigningScheme::X509SigningAuthority {
        return within(env.signing_time, "authentic signing time");
    }
    let has_tsa_store = ctx
        .statement
        .trust_stores
        .iter()
        .any(|r| r.store_type == StoreType::Tsa);
    let chain_expired = env.chain.iter().any(|c| ctx.now > c.not_after());
    let verify_timestamp = has_tsa_store
        && match ctx.statement.verify_timestamp {
            VerifyTimestamp::Always => true,
            VerifyTimestamp::AfterCertExpiry => chain_expired,
        };
    if !verify_timestamp {
        return within(ctx.now, "verification time");
    }
    match &env.timestamp_token {
        None => Err("no timestamp countersignature was found in the signature envelope".into()),
        // Never reported as passed: RFC 3161 verification is not implemented yet.
        Some(_) => Err(
            "timestamp countersignature not checked: RFC 3161 timestamp verification is not supported by this version of vouch"
                .into(),
        ),
    }
}

fn revocation(env: &Envelope) -> Result<(), String> {
    // The root is never checked (notation: non-revokable); a chain without endpoints is not
    // revocable and passes. Anything else we cannot check yet, so it is "not checked".
    let n = env.chain.len();
    for cert in env.chain.iter().take(n.saturating_sub(1)) {
        if let Some(kind) = cert.revocation_endpoints() {
            return Err(format!(
                "revocation status not checked: certificate {:?} names {kind} endpoints, and online revocation checking is not supported by this version of vouch",
                cert.subject()
            ));
        }
    }
    Ok(())
}
