//! One signature against one trust-policy statement (notation-go `verifier/verifier.go`
//! `processSignature`): the checks run in the specification's order and the statement's level
//! says what each failure means. The level table lives in [`super::level`]; nothing here
//! branches on a level's name.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::envelope::{self, Envelope, SigningScheme, TargetArtifact};
use super::level::{Action, Check};
use super::revocation::{chain_result, CertResult, Checker, Purpose};
use super::trust_policy::{TrustPolicyStatement, TrustedIdentities, VerifyTimestamp};
use super::trust_store::{StoreType, TrustStores};
use super::x509::rfc1123z;
use crate::registry::Digest;

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
    pub digest: Digest,
    /// Envelope media type.
    pub envelope: Cow<'static, str>,
    /// Leaf certificate subject, when the envelope could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// Signing time (or authentic signing time), shown in RFC 3339.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub signing_time: Option<OffsetDateTime>,
    /// Whether this signature verified under the statement.
    pub verified: bool,
    /// Each check that ran, in order. Lists in which every check passed are shared between
    /// outcomes (a cache holds many thousands of outcomes and few distinct such lists).
    pub checks: Arc<[CheckResult]>,
    /// Why the signature failed, in notation's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Logged (non-enforced) failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The signing chain's revocation status, when it was checked and a certificate of it
    /// names OCSP responders or CRL distribution points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Box<ChainRevocation>>,
}

/// The revocation status of a signing chain, certificate by certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainRevocation {
    /// Each certificate, leaf first (the root is always non-revocable).
    pub certificates: Vec<CertResult>,
    /// The earliest `nextUpdate` of the OCSP responses and CRLs the status rests on.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub valid_until: Option<OffsetDateTime>,
}

impl SignatureOutcome {
    fn new(digest: &str, media_type: &str) -> Self {
        let envelope = match media_type {
            envelope::MEDIA_TYPE_COSE => Cow::Borrowed(envelope::MEDIA_TYPE_COSE),
            envelope::MEDIA_TYPE_JWS => Cow::Borrowed(envelope::MEDIA_TYPE_JWS),
            other => Cow::Owned(other.to_string()),
        };
        Self {
            digest: Digest::new(digest),
            envelope,
            signer: None,
            signing_time: None,
            verified: false,
            checks: Arc::new([]),
            error: None,
            warnings: Vec::new(),
            revocation: None,
        }
    }
}

/// An outcome being built: the checks are collected here and frozen once at the end.
struct Run {
    out: SignatureOutcome,
    checks: Vec<CheckResult>,
}

impl Run {
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
                self.out.warnings.push(format!(
                    "{check} was set to \"log\" and failed with error: {e}"
                ));
                true
            }
            (Some(e), _) => {
                self.out.error = Some(format!("{check} validation failed: {e}"));
                false
            }
        }
    }

    fn finish(mut self) -> SignatureOutcome {
        self.out.checks = shared_checks(self.checks);
        self.out
    }
}

/// The check list as a shared slice: lists without errors come from a small table (there are
/// at most a few dozen distinct ones: which checks ran and with what action), lists with errors
/// are kept as they are, since their messages differ from signature to signature.
fn shared_checks(checks: Vec<CheckResult>) -> Arc<[CheckResult]> {
    type Key = Vec<(Check, Action)>;
    static PASSED: OnceLock<Mutex<HashMap<Key, Arc<[CheckResult]>>>> = OnceLock::new();
    if checks.iter().any(|c| c.error.is_some()) {
        return checks.into();
    }
    let key: Key = checks.iter().map(|c| (c.check, c.action)).collect();
    let mut table = PASSED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    table.entry(key).or_insert_with(|| checks.into()).clone()
}

/// Everything a signature is judged against.
pub struct VerificationContext<'a> {
    /// The statement that applies to the repository.
    pub statement: &'a TrustPolicyStatement,
    /// Loaded trust stores.
    pub stores: &'a TrustStores,
    /// The descriptor the registry resolved for the image.
    pub target: &'a TargetArtifact,
    /// The time "now" for expiry, certificate validity and revocation data.
    pub now: OffsetDateTime,
    /// Where revocation status comes from.
    pub revocation: &'a Checker,
    /// When every network wait of the verification (OCSP, CRL) must be over.
    pub deadline: tokio::time::Instant,
}

/// Verify one envelope (already fetched and digest-checked) under a statement.
pub async fn verify_signature(
    ctx: &VerificationContext<'_>,
    signature_digest: &str,
    envelope_media_type: &str,
    envelope_bytes: &[u8],
) -> SignatureOutcome {
    let mut run = Run {
        out: SignatureOutcome::new(signature_digest, envelope_media_type),
        checks: Vec::with_capacity(5),
    };
    verify_into(&mut run, ctx, envelope_media_type, envelope_bytes).await;
    run.finish()
}

async fn verify_into(
    run: &mut Run,
    ctx: &VerificationContext<'_>,
    envelope_media_type: &str,
    envelope_bytes: &[u8],
) {
    let level = ctx.statement.level;

    // 1. Integrity: always enforced (the trust-policy loader refuses overriding it).
    let parsed = envelope::parse(envelope_media_type, envelope_bytes);
    if let Ok(env) = &parsed {
        run.out.signer = env.leaf().map(|c| c.subject().to_string());
        // Kept only when RFC 3339 can show it (years 0–9999), as the JSON output must.
        run.out.signing_time = Some(env.signing_time).filter(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .is_ok()
        });
    }
    let integrity = parsed.and_then(|env| env.verify_integrity().map(|t| (env, t)));
    let (env, signed_target) = match integrity {
        Ok(v) => {
            run.record(Check::Integrity, Action::Enforce, Ok(()));
            v
        }
        Err(e) => {
            run.record(Check::Integrity, Action::Enforce, Err(e));
            return;
        }
    };

    // 2–5: the checks whose meaning the level decides; a skipped check costs nothing.
    for check in [
        Check::Authenticity,
        Check::Expiry,
        Check::AuthenticTimestamp,
        Check::Revocation,
    ] {
        let action = level.action(check);
        if action == Action::Skip {
            continue;
        }
        let result = match check {
            Check::Authenticity => authenticity(ctx, &env),
            Check::Expiry => expiry(ctx, &env),
            Check::AuthenticTimestamp => authentic_timestamp(ctx, &env),
            Check::Revocation => {
                let (result, report) = revocation(ctx, &env).await;
                run.out.revocation = report;
                result
            }
            Check::Integrity => Ok(()),
        };
        if !run.record(check, action, result) {
            return;
        }
    }

    // The payload must name exactly the manifest we resolved, whatever the level.
    if signed_target.media_type != ctx.target.media_type
        || signed_target.digest != ctx.target.digest
        || signed_target.size != ctx.target.size
    {
        run.out.error = Some(format!(
            "content descriptor mismatch: the signature is for {} (size {}, {}), but the registry resolved {} (size {}, {})",
            signed_target.digest,
            signed_target.size,
            signed_target.media_type,
            ctx.target.digest,
            ctx.target.size,
            ctx.target.media_type
        ));
        return;
    }
    run.out.verified = true;
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

/// The signing chain's revocation (notation-go `verifyRevocation`): every certificate but the
/// root, by OCSP or CRL ([`super::revocation`]). Under `notary.x509.signingAuthority` a
/// revocation whose invalidity date is after the authentic signing time does not count. A
/// chain none of whose certificates names an endpoint is not revocable: OK, with no report and
/// no request.
async fn revocation(
    ctx: &VerificationContext<'_>,
    env: &Envelope,
) -> (Result<(), String>, Option<Box<ChainRevocation>>) {
    let n = env.chain.len();
    if n == 0 {
        return (
            Err("unable to check revocation status, err: invalid chain: expected chain to be correct and complete: chain does not contain any certificates".into()),
            None,
        );
    }
    let revocable = env.chain[..n - 1]
        .iter()
        .any(|c| c.revocation_endpoints().is_some());
    if !revocable {
        return (Ok(()), None);
    }
    let signing_time =
        (env.signing_scheme == SigningScheme::X509SigningAuthority).then_some(env.signing_time);
    let certificates = ctx
        .revocation
        .check_chain(&env.chain, signing_time, ctx.now, ctx.deadline)
        .await;
    let result = chain_result(Purpose::CodeSigning, &certificates);
    let valid_until = certificates.iter().filter_map(|c| c.valid_until).min();
    (
        result,
        Some(Box::new(ChainRevocation {
            certificates,
            valid_until,
        })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(check: Check) -> CheckResult {
        CheckResult {
            check,
            action: Action::Enforce,
            error: None,
        }
    }

    #[test]
    fn passing_check_lists_are_shared_and_failing_ones_are_not() {
        let a = shared_checks(vec![passed(Check::Integrity), passed(Check::Authenticity)]);
        let b = shared_checks(vec![passed(Check::Integrity), passed(Check::Authenticity)]);
        assert!(Arc::ptr_eq(&a, &b));
        let c = shared_checks(vec![passed(Check::Integrity)]);
        assert!(!Arc::ptr_eq(&a, &c));
        let failing = || {
            vec![
                passed(Check::Integrity),
                CheckResult {
                    check: Check::Expiry,
                    action: Action::Log,
                    error: Some("expired".into()),
                },
            ]
        };
        let f1 = shared_checks(failing());
        let f2 = shared_checks(failing());
        assert!(!Arc::ptr_eq(&f1, &f2));
        assert_eq!(f1[1].error.as_deref(), Some("expired"));
    }
}
