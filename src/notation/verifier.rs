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
use super::revocation::{chain_result, CertResult, Checker, Purpose, Status};
use super::timestamp::{TimestampError, TimestampToken};
use super::trust_policy::{TrustPolicyStatement, TrustedIdentities, VerifyTimestamp};
use super::trust_store::{StoreType, TrustStoreRef, TrustStores};
use super::x509::{rfc1123z, validate_timestamping_chain};
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
    /// The finer check within [`Self::check`]'s category, for signature kinds whose checks are
    /// not Notation's five (cosign: `signature`, `payloadDigest`, `certificateChain`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Cow<'static, str>>,
}

/// Which kind of signature an outcome is about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignatureKind {
    /// A Notary Project signature (COSE or JWS envelope).
    #[default]
    Notation,
    /// A cosign (Sigstore) signature: a legacy `.sig` layer or a Sigstore bundle.
    Cosign,
}

impl SignatureKind {
    fn is_notation(&self) -> bool {
        *self == SignatureKind::Notation
    }
}

/// The transparency-log entry a cosign signature's time rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// The entry's index in the log.
    pub log_index: u64,
    /// When the log integrated the entry (Unix seconds), as its signed entry timestamp says.
    pub integrated_time: i64,
    /// The log's ID (hex SHA-256 of its public key).
    pub log_id: String,
}

/// The outcome of verifying one signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureOutcome {
    /// Notation or cosign (absent in JSON for Notation, and in verdicts cached before cosign).
    #[serde(default, skip_serializing_if = "SignatureKind::is_notation")]
    pub kind: SignatureKind,
    /// Digest of the signature manifest.
    pub digest: Digest,
    /// Envelope media type.
    pub envelope: Cow<'static, str>,
    /// Leaf certificate subject, when the envelope could be read (cosign: the certificate's
    /// SAN identity, or the key that verified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// The OIDC issuer of a cosign keyless certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The transparency-log entry of a cosign signature, once verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_entry: Option<Box<LogEntry>>,
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
    /// The RFC 3161 timestamp the signature's time rests on, once its token verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Box<TimestampReport>>,
    /// When this outcome may change by itself, so no cached verdict built on it outlives it:
    /// the signature's expiry, the chain's validity bounds when they were judged at "now"
    /// (no verified timestamp), the earliest `nextUpdate` of the revocation data used.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub valid_until: Option<OffsetDateTime>,
}

/// A verified RFC 3161 timestamp countersignature, as the JSON result shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimestampReport {
    /// The TSA's `genTime`.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// `genTime` minus the TSA's accuracy: the earliest the signature may have been made
    /// (absent when an absurd accuracy puts it past the calendar).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub earliest: Option<OffsetDateTime>,
    /// `genTime` plus the accuracy.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub latest: Option<OffsetDateTime>,
    /// The subject of the TSA's signing certificate.
    pub tsa: String,
    /// The TSA chain's revocation status, when a certificate of it names OCSP responders or
    /// CRL distribution points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<ChainRevocation>,
}

/// The revocation status of a chain (signing or TSA), certificate by certificate.
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
    /// An outcome not yet verified, of a signature manifest `digest` with envelope `media_type`.
    pub(crate) fn new(digest: &str, media_type: &str) -> Self {
        let envelope = match media_type {
            envelope::MEDIA_TYPE_COSE => Cow::Borrowed(envelope::MEDIA_TYPE_COSE),
            envelope::MEDIA_TYPE_JWS => Cow::Borrowed(envelope::MEDIA_TYPE_JWS),
            other => Cow::Owned(other.to_string()),
        };
        Self {
            kind: SignatureKind::Notation,
            digest: Digest::new(digest),
            envelope,
            signer: None,
            issuer: None,
            log_entry: None,
            signing_time: None,
            verified: false,
            checks: Arc::new([]),
            error: None,
            warnings: Vec::new(),
            revocation: None,
            timestamp: None,
            valid_until: None,
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
            name: None,
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
            Check::AuthenticTimestamp => {
                let (result, report) = authentic_timestamp(ctx, &env).await;
                run.out.timestamp = report;
                result
            }
            Check::Revocation => {
                let (result, report) = revocation(ctx, &env).await;
                run.out.revocation = report;
                result
            }
            Check::Integrity => Ok(()),
        };
        let go_on = run.record(check, action, result);
        run.out.valid_until = valid_until(ctx, &env, &run.out);
        if !go_on {
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

/// The earliest future moment at which what was decided so far would be decided otherwise
/// without any new input (see [`SignatureOutcome::valid_until`]).
fn valid_until(
    ctx: &VerificationContext<'_>,
    env: &Envelope,
    out: &SignatureOutcome,
) -> Option<OffsetDateTime> {
    let judged_now = env.signing_scheme == SigningScheme::X509 && out.timestamp.is_none();
    let validity = env
        .chain
        .iter()
        .filter(|_| judged_now)
        .flat_map(|c| [c.not_before(), c.not_after()]);
    let revocation = [
        out.revocation.as_ref().and_then(|r| r.valid_until),
        out.timestamp
            .as_ref()
            .and_then(|t| t.revocation.as_ref()?.valid_until),
    ];
    env.expiry
        .into_iter()
        .chain(validity)
        .filter(|t| *t > ctx.now)
        .chain(revocation.into_iter().flatten())
        .min()
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

/// notation-go `verifyAuthenticTimestamp`: when is the signature deemed made, and was every
/// signing certificate valid then? Under `notary.x509.signingAuthority`, at the signed
/// authentic signing time. Under `notary.x509`, at the time an RFC 3161 countersignature
/// proves ([`verify_timestamp`]) when the statement has a `tsa` store and asks for it
/// (`verifyTimestamp: always`, or `afterCertExpiry` with an expired chain); otherwise now.
async fn authentic_timestamp(
    ctx: &VerificationContext<'_>,
    env: &Envelope,
) -> (Result<(), String>, Option<Box<TimestampReport>>) {
    if env.signing_scheme == SigningScheme::X509SigningAuthority {
        let invalid = env.chain.iter().find(|c| !c.is_valid_at(env.signing_time));
        return match invalid {
            Some(cert) => (
                Err(format!(
                    "certificate {:?} was not valid when the digital signature was produced at {:?}",
                    cert.subject(),
                    rfc1123z(env.signing_time)
                )),
                None,
            ),
            None => (Ok(()), None),
        };
    }
    let tsa_stores: Vec<_> = ctx
        .statement
        .trust_stores
        .iter()
        .filter(|r| r.store_type == StoreType::Tsa)
        .collect();
    let due = !tsa_stores.is_empty()
        && match ctx.statement.verify_timestamp {
            VerifyTimestamp::Always => true,
            VerifyTimestamp::AfterCertExpiry => env.chain.iter().any(|c| ctx.now > c.not_after()),
        };
    if !due {
        return (valid_now(ctx, env), None);
    }
    let mut report = None;
    let result = verify_timestamp(ctx, env, &tsa_stores, &mut report).await;
    (result.map_err(|e| e.to_string()), report)
}

/// Without a timestamp to rely on, every signing certificate must be valid now.
fn valid_now(ctx: &VerificationContext<'_>, env: &Envelope) -> Result<(), String> {
    for cert in &env.chain {
        if ctx.now < cert.not_before() {
            return Err(format!(
                "verification time is before certificate {:?} validity period, it will be valid from {:?}",
                cert.subject(),
                rfc1123z(cert.not_before())
            ));
        }
        if ctx.now > cert.not_after() {
            return Err(format!(
                "verification time is after certificate {:?} validity period, it was expired at {:?}",
                cert.subject(),
                rfc1123z(cert.not_after())
            ));
        }
    }
    Ok(())
}

/// The countersignature's steps in notation-go's order (`verifyTimestamp`), the first failure
/// winning: token present, parsed, its TSTInfo valid for this signature, a `tsa` root to trust,
/// the token's signature and TSA path, the TSA chain's rules, the stamped time inside every
/// signing certificate's validity, and the TSA chain's revocation. That last one runs whatever
/// the statement says of `revocation`: it is part of trusting the time. `report` is filled in
/// once the token's signature verified.
async fn verify_timestamp(
    ctx: &VerificationContext<'_>,
    env: &Envelope,
    tsa_stores: &[&TrustStoreRef],
    report: &mut Option<Box<TimestampReport>>,
) -> Result<(), TimestampError> {
    let bytes = env
        .timestamp_token
        .as_deref()
        .ok_or(TimestampError::Missing)?;
    let token = TimestampToken::parse(bytes)?;
    let stamp = token.timestamp(&env.signature)?;
    let mut roots = Vec::new();
    for r in tsa_stores {
        let certs = ctx.stores.certificates(r).ok_or_else(|| {
            TimestampError::TrustStore(format!(
                "the trust store {:?} of type \"tsa\" is not loaded",
                r.name
            ))
        })?;
        roots.extend_from_slice(certs);
    }
    if roots.is_empty() {
        return Err(TimestampError::NoTrustedTsa);
    }
    let chain = token.verify(&roots, stamp.time)?;
    validate_timestamping_chain(&chain).map_err(TimestampError::Chain)?;
    let shown = report.insert(Box::new(TimestampReport {
        time: stamp.time,
        earliest: stamp.earliest(),
        latest: stamp.latest(),
        tsa: chain[0].subject().to_string(),
        revocation: None,
    }));
    for cert in &env.chain {
        stamp.within(cert)?;
    }
    let certificates = ctx
        .revocation
        .check_chain(&chain, None, ctx.now, ctx.deadline)
        .await;
    let result = chain_result(Purpose::Timestamping, &certificates);
    if certificates
        .iter()
        .any(|c| c.status != Status::NonRevokable)
    {
        shown.revocation = Some(ChainRevocation {
            valid_until: certificates.iter().filter_map(|c| c.valid_until).min(),
            certificates,
        });
    }
    result.map_err(TimestampError::Revocation)
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
    use crate::notation::revocation::RevocationSettings;
    use crate::notation::trust_policy::TrustPolicy;
    use std::path::{Path, PathBuf};

    fn timestamp_vectors() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/timestamp/notation-go")
    }

    /// One strict statement for every repository with `trust_stores` and `verify_timestamp`.
    fn policy(trust_stores: &[&str], verify_timestamp: &str) -> TrustPolicy {
        let policy = serde_json::json!({
            "version": "1.0",
            "trustPolicies": [{
                "name": "ts",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict", "verifyTimestamp": verify_timestamp},
                "trustStores": trust_stores,
                "trustedIdentities": ["*"],
            }]
        });
        TrustPolicy::from_json(policy.to_string().as_bytes()).unwrap()
    }

    /// A revocation checker that never leaves this machine (fetching off).
    fn offline_checker() -> Checker {
        Checker::new(
            RevocationSettings {
                fetch: false,
                ..Default::default()
            },
            None,
        )
    }

    /// A target no payload names (the checks under test come before the payload's).
    fn no_target() -> TargetArtifact {
        TargetArtifact {
            media_type: String::new(),
            digest: String::new(),
            size: 0,
            annotations: None,
        }
    }

    /// notation-go `TestAuthenticTimestamp`'s setup: the file trust store of its testdata, a
    /// statement with `trust_stores` and `verify_timestamp`, and a revocation checker that
    /// never leaves this machine (fetching off: the GlobalSign TSA chain names real OCSP and
    /// CRL hosts, so its revocation is unknown here, as notation finds offline).
    async fn authentic_timestamp_of(
        file: &str,
        trust_stores: &[&str],
        verify_timestamp: &str,
    ) -> (Result<(), String>, Option<Box<TimestampReport>>) {
        let policy = policy(trust_stores, verify_timestamp);
        let root = timestamp_vectors().join("truststore");
        let stores = TrustStores::load(&root, policy.trust_store_refs()).unwrap();
        let bytes = std::fs::read(timestamp_vectors().join("sigEnv").join(file)).unwrap();
        let media = if bytes.starts_with(b"{") {
            envelope::MEDIA_TYPE_JWS
        } else {
            envelope::MEDIA_TYPE_COSE
        };
        let env = envelope::parse(media, &bytes).unwrap();
        let (checker, target) = (offline_checker(), no_target());
        let ctx = VerificationContext {
            statement: &policy.statements()[0],
            stores: &stores,
            target: &target,
            now: OffsetDateTime::now_utc(),
            revocation: &checker,
            deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(10),
        };
        authentic_timestamp(&ctx, &env).await
    }

    #[test]
    fn an_outcome_judged_at_now_holds_until_the_chain_expires_and_a_timestamped_one_longer() {
        let bytes =
            std::fs::read(timestamp_vectors().join("sigEnv/coseWithTimestamp.sig")).unwrap();
        let env = envelope::parse(envelope::MEDIA_TYPE_COSE, &bytes).unwrap();
        let policy = policy(&["ca:x"], "always");
        let stores = TrustStores::default();
        let (checker, target) = (offline_checker(), no_target());
        let ctx = VerificationContext {
            statement: &policy.statements()[0],
            stores: &stores,
            target: &target,
            now: time::macros::datetime!(2026-12-01 00:00 UTC),
            revocation: &checker,
            deadline: tokio::time::Instant::now(),
        };
        let mut out = SignatureOutcome::new("sha256:00", envelope::MEDIA_TYPE_COSE);
        assert_eq!(
            valid_until(&ctx, &env, &out),
            Some(env.chain[0].not_after())
        );
        out.timestamp = Some(Box::new(TimestampReport {
            time: ctx.now,
            earliest: Some(ctx.now),
            latest: Some(ctx.now),
            tsa: "CN=tsa".into(),
            revocation: Some(ChainRevocation {
                certificates: Vec::new(),
                valid_until: Some(ctx.now + time::Duration::hours(1)),
            }),
        }));
        assert_eq!(
            valid_until(&ctx, &env, &out),
            Some(ctx.now + time::Duration::hours(1))
        );
    }

    const GLOBALSIGN_TSA_UNKNOWN: &str = r#"timestamping certificate with subject "CN=Globalsign TSA for Advanced - G4 - 202311,O=GlobalSign nv-sa,C=BE" revocation status is unknown"#;

    #[tokio::test]
    async fn notation_go_timestamped_envelopes_verify_up_to_the_tsa_revocation_check() {
        // Every step before the TSA chain's revocation passes; that one is unknown offline,
        // exactly as notation decides without network.
        for file in [
            "jwsWithTimestamp.sig",
            "coseWithTimestamp.sig",
            "jwsExpiredWithTimestamp.sig",
            "coseExpiredWithTimestamp.sig",
        ] {
            let (result, report) = authentic_timestamp_of(
                file,
                &["ca:valid-trust-store", "tsa:test-timestamp"],
                "always",
            )
            .await;
            assert_eq!(result.unwrap_err(), GLOBALSIGN_TSA_UNKNOWN, "{file}");
            let report = report.unwrap_or_else(|| panic!("{file}: no timestamp report"));
            assert_eq!(
                report.tsa,
                "CN=Globalsign TSA for Advanced - G4 - 202311,O=GlobalSign nv-sa,C=BE"
            );
            let revocation = report.revocation.as_ref().unwrap();
            assert_eq!(revocation.certificates.len(), 3, "{file}");
        }
        let (_, report) = authentic_timestamp_of(
            "jwsWithTimestamp.sig",
            &["ca:valid-trust-store", "tsa:test-timestamp"],
            "always",
        )
        .await;
        let report = report.unwrap();
        assert_eq!(
            report.time,
            time::macros::datetime!(2024-06-18 06:29:37 UTC)
        );
        assert_eq!(
            report.latest.unwrap() - report.earliest.unwrap(),
            time::Duration::seconds(2)
        );
    }

    #[tokio::test]
    async fn notation_go_timestamp_failures() {
        let both = ["ca:valid-trust-store", "tsa:test-timestamp"];
        let err = |r: (Result<(), String>, Option<Box<TimestampReport>>)| r.0.unwrap_err();
        assert_eq!(
            err(authentic_timestamp_of("timestampBeforeNotBefore.sig", &both, "always").await),
            r#"timestamp can be before certificate "CN=testTSA,O=Notary,L=Seattle,ST=WA,C=US" validity period, it will be valid from "Fri, 18 Sep 2099 11:54:34 +0000""#
        );
        assert_eq!(
            err(authentic_timestamp_of("timestampAfterNotAfter.sig", &both, "always").await),
            r#"timestamp can be after certificate "CN=testTSA,O=Notary,L=Seattle,ST=WA,C=US" validity period, it was expired at "Tue, 18 Sep 2001 11:54:34 +0000""#
        );
        assert_eq!(
            err(authentic_timestamp_of("withoutTimestamp.sig", &both, "always").await),
            "no timestamp countersignature was found in the signature envelope"
        );
        assert_eq!(
            err(authentic_timestamp_of(
                "coseWithTimestamp.sig",
                &["ca:valid-trust-store", "tsa:test-mismatch"],
                "always"
            )
            .await),
            "failed to verify the timestamp countersignature with error: failed to verify signed token: cms verification failure: x509: certificate signed by unknown authority"
        );
        // Without a tsa store the token is not looked at: the expired certificate decides.
        assert_eq!(
            err(authentic_timestamp_of(
                "coseExpiredWithTimestamp.sig",
                &["ca:valid-trust-store"],
                "always"
            )
            .await),
            r#"verification time is after certificate "CN=testTSA,O=Notary,L=Seattle,ST=WA,C=US" validity period, it was expired at "Tue, 18 Jun 2024 07:30:31 +0000""#
        );
        // afterCertExpiry with a valid certificate: no timestamp verification, pass.
        let (result, report) =
            authentic_timestamp_of("coseWithTimestamp.sig", &both, "afterCertExpiry").await;
        result.unwrap();
        assert!(report.is_none());
    }

    fn passed(check: Check) -> CheckResult {
        CheckResult {
            check,
            action: Action::Enforce,
            error: None,
            name: None,
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
                    name: None,
                },
            ]
        };
        let f1 = shared_checks(failing());
        let f2 = shared_checks(failing());
        assert!(!Arc::ptr_eq(&f1, &f2));
        assert_eq!(f1[1].error.as_deref(), Some("expired"));
    }
}
