//! The gate: the one path from an image string to a [`Verdict`].
//!
//! ```text
//! image ─► reference ─► trust-policy statement ─► digest ─► signatures ─► verdict ─► admission
//! ```
//!
//! `vouch verify`, `vouch serve` and `vouch audit` all call [`Gate::judge`]; they differ only in
//! where images come from and how verdicts are shown. Registry problems are never turned into a
//! pass: an image that could not be judged gets [`Outcome::Error`], which denies unless its
//! statement is `audit` or `skip`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::cache::{CacheSettings, DigestKey, VerdictCache, VerdictKey};
use crate::metrics::Metrics;
use crate::notation::envelope::TargetArtifact;
use crate::notation::level::LevelName;
use crate::notation::revocation::{Checker, RevocationSettings};
use crate::notation::trust_policy::{TrustPolicy, TrustPolicyStatement};
use crate::notation::trust_store::TrustStores;
use crate::notation::verifier::{verify_signature, SignatureOutcome, VerificationContext};
use crate::notation::ARTIFACT_TYPE_SIGNATURE;
use crate::quarantine::{
    acr, referrer, QuarantineConfig, QuarantineEnforcement, QuarantineRule, SourceKind,
    State as QuarantineState,
};
use crate::reference::ImageReference;
use crate::registry::RegistryError;
use crate::registry::{
    Descriptor, Manifest, RegistryClient, MAX_ENVELOPE_BYTES, OCI_ARTIFACT_MANIFEST, OCI_MANIFEST,
};

/// What verification concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// A signature verified under the statement.
    Verified,
    /// The statement's level is `skip`.
    Skipped,
    /// Verification ran and failed (no signature, untrusted, tampered, no statement, …).
    Failed,
    /// Verification could not finish (registry unreachable, not found, timeout, bad reference).
    Error,
}

/// What the admission gate answers for the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Admission {
    /// Admit.
    Allow,
    /// Refuse.
    Deny,
}

/// The image's quarantine status, as the registry reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuarantineStatus {
    /// Where the status came from: `acr`, `referrer`, or `none` when the registry has no
    /// quarantine source configured.
    pub source: Cow<'static, str>,
    /// `notApplicable`, `Passed`, `Quarantined`, `Failed`, `Locked`, `unknown`, or another value
    /// the registry reported.
    pub state: Cow<'static, str>,
    /// Details the scanner attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// `enforce` or `audit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Cow<'static, str>>,
    /// Why the image is not admitted (absent when it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl QuarantineStatus {
    /// The status of an image whose registry has no quarantine source.
    pub fn not_applicable() -> Self {
        Self {
            source: "none".into(),
            state: "notApplicable".into(),
            details: None,
            enforcement: None,
            reason: None,
        }
    }

    fn from_state(rule: &QuarantineRule, state: &QuarantineState, image: &str) -> Self {
        Self {
            source: match rule.source {
                SourceKind::Acr => "acr",
                SourceKind::Referrer => "referrer",
                SourceKind::None => "none",
            }
            .into(),
            state: state.name(),
            details: match state {
                QuarantineState::NotPassed { details, .. } => details.clone(),
                QuarantineState::Locked(d) | QuarantineState::Unknown(d) => Some(d.clone()),
                QuarantineState::Passed => None,
            },
            enforcement: Some(
                match rule.enforcement {
                    QuarantineEnforcement::Audit => "audit",
                    _ => "enforce",
                }
                .into(),
            ),
            reason: state.reason(image),
        }
    }
}

/// The judgement of one image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// The image as written.
    pub image: String,
    /// `registry/repository@digest`, once resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The resolved manifest digest.
    pub digest: Option<String>,
    /// Name of the trust-policy statement that applied.
    pub policy: Option<String>,
    /// Its level (`custom` when overridden).
    pub level: Option<String>,
    /// What verification concluded.
    pub outcome: Outcome,
    /// Whether the image verified (notation's pass: verified or skipped).
    pub verified: bool,
    /// What the webhook would answer.
    pub admission: Admission,
    /// Why the image did not verify.
    pub reasons: Vec<String>,
    /// Logged failures and other notes that do not change the answer.
    pub warnings: Vec<String>,
    /// Every signature tried, in discovery order.
    pub signatures: Vec<SignatureOutcome>,
    /// Quarantine status.
    pub quarantine: QuarantineStatus,
    /// What to run so that the runtime pulls exactly what was verified: the image as written,
    /// with the verified digest appended when it was written by tag alone
    /// (`name:tag@sha256:…`). Only for images that verified (not skipped, not refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned: Option<String>,
}

/// Gate settings.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// Most signatures evaluated per image (notation's `--max-signatures`, default 100).
    pub max_signatures: usize,
    /// Time allowed for one image.
    pub deadline: Duration,
    /// Where to count outcomes and durations.
    pub metrics: Option<Arc<Metrics>>,
    /// Quarantine sources per registry.
    pub quarantine: QuarantineConfig,
    /// OCSP and CRL checks of signing chains.
    pub revocation: Checker,
}

impl Default for GateOptions {
    fn default() -> Self {
        Self {
            max_signatures: 100,
            deadline: Duration::from_secs(60),
            metrics: None,
            quarantine: QuarantineConfig::new(Vec::new()),
            revocation: Checker::new(RevocationSettings::default(), None),
        }
    }
}

/// The part of a verdict that depends only on (registry, repository, digest) and the trust
/// material: what the caches hold, a hundred thousand at a time, so nothing in it is derivable
/// from the cache key (the digest) or shared by most images (a not-applicable quarantine status).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Judgement {
    /// What verification concluded.
    pub outcome: Outcome,
    /// Why not verified.
    pub reasons: Vec<String>,
    /// Logged failures and notes.
    pub warnings: Vec<String>,
    /// Signatures tried.
    pub signatures: Vec<SignatureOutcome>,
    /// Quarantine status; `None` when no quarantine source applies (not applicable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<Box<QuarantineStatus>>,
    /// Whether the answer may change soon (quarantine not final): cached briefly.
    #[serde(default)]
    pub pending: bool,
}

impl Judgement {
    fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            reasons: Vec::new(),
            warnings: Vec::new(),
            signatures: Vec::new(),
            quarantine: None,
            pending: false,
        }
    }

    /// A judgement that could not be made.
    pub fn error(reason: impl Into<String>) -> Self {
        let mut j = Self::new(Outcome::Error);
        j.reasons.push(reason.into());
        j
    }

    fn failed(reason: impl Into<String>) -> Self {
        let mut j = Self::new(Outcome::Failed);
        j.reasons.push(reason.into());
        j
    }

    /// The earliest time any of its signatures' outcomes may change by itself (expiry,
    /// certificate validity judged at "now", the `nextUpdate` of the OCSP responses and CRLs
    /// it rests on): no cached verdict outlives it.
    pub fn evidence_valid_until(&self) -> Option<OffsetDateTime> {
        // The signing chain's revocation is read too: verdicts shared through Redis by an
        // older vouch carry only that one.
        self.signatures
            .iter()
            .flat_map(|s| {
                [
                    s.valid_until,
                    s.revocation.as_ref().and_then(|r| r.valid_until),
                ]
            })
            .flatten()
            .min()
    }

    fn set_quarantine(&mut self, rule: &QuarantineRule, state: &QuarantineState, image: &str) {
        self.quarantine = Some(Box::new(QuarantineStatus::from_state(rule, state, image)));
    }
}

/// The verification engine shared by every command.
#[derive(Clone)]
pub struct Gate {
    registry: RegistryClient,
    policy: Arc<TrustPolicy>,
    stores: Arc<TrustStores>,
    options: GateOptions,
    cache: Arc<VerdictCache>,
    /// Per statement name: what decides its verdicts, for cache keys.
    fingerprints: Arc<HashMap<String, Arc<str>>>,
}

impl Gate {
    /// A gate over a loaded policy and its trust stores, with a cache of its own.
    pub fn new(
        registry: RegistryClient,
        policy: Arc<TrustPolicy>,
        stores: Arc<TrustStores>,
        options: GateOptions,
    ) -> Self {
        let cache = Arc::new(VerdictCache::new(
            CacheSettings::default(),
            options.metrics.clone(),
        ));
        Self::with_cache(registry, policy, stores, options, cache)
    }

    /// A gate that shares `cache` (across policy reloads: keys carry the fingerprint).
    pub fn with_cache(
        registry: RegistryClient,
        policy: Arc<TrustPolicy>,
        stores: Arc<TrustStores>,
        options: GateOptions,
        cache: Arc<VerdictCache>,
    ) -> Self {
        let fingerprints = policy
            .statements()
            .iter()
            .map(|s| {
                // Revocation settings too: replicas sharing verdicts through Redis with
                // different offline CRLs or fetching must not take each other's.
                let material = format!(
                    "{}|{}|{}|{}|{:?}",
                    policy.digest(),
                    s.name,
                    stores.fingerprint(),
                    options.max_signatures,
                    options.revocation.settings()
                );
                (
                    s.name.clone(),
                    Arc::from(&crate::registry::sha256_hex(material.as_bytes())[..24]),
                )
            })
            .collect();
        Self {
            registry,
            policy,
            stores,
            options,
            cache,
            fingerprints: Arc::new(fingerprints),
        }
    }

    /// Judge one image string, within the gate's deadline.
    pub async fn judge(&self, image: &str) -> Verdict {
        self.judge_by(image, Instant::now() + self.options.deadline)
            .await
    }

    /// Judge one image string, finishing by `due`: the webhook passes its request's deadline,
    /// counted from the request's arrival, so time spent queued is not given again. An image
    /// not judged by then gets the same [`Outcome::Error`] verdict as any other timeout.
    pub async fn judge_by(&self, image: &str, due: Instant) -> Verdict {
        let started = Instant::now();
        let mut verdict = self.judge_untimed(image, due).await;
        verdict.escape_messages();
        if let Some(m) = &self.options.metrics {
            m.verification_seconds
                .observe(started.elapsed().as_secs_f64());
            let outcome = match verdict.outcome {
                Outcome::Verified => "verified",
                Outcome::Skipped => "skipped",
                Outcome::Failed => "failed",
                Outcome::Error => "error",
            };
            Metrics::inc(&m.verifications, outcome);
        }
        verdict
    }

    /// The trust policy this gate judges by.
    pub fn policy(&self) -> &TrustPolicy {
        &self.policy
    }

    /// The revocation checker (shared across policy reloads, like the cache).
    pub fn revocation(&self) -> &Checker {
        &self.options.revocation
    }

    /// The verdict cache.
    pub fn cache(&self) -> &Arc<VerdictCache> {
        &self.cache
    }

    async fn judge_untimed(&self, image: &str, due: Instant) -> Verdict {
        let (verdict, reference, statement) = match self.statement_of(image) {
            Begun::Judge(v, r, s) => (v, r, s),
            Begun::Done(v) => return v,
        };
        let deadline = self.options.deadline;
        let (digest, judgement) = match tokio::time::timeout_at(
            due.into(),
            self.assess(&reference, statement, due),
        )
        .await
        {
            Ok(assessed) => assessed,
            Err(_) => (
                None,
                Arc::new(Judgement::error(format!(
                    "verification of {image} did not finish within {}s",
                    deadline.as_secs_f32()
                ))),
            ),
        };
        conclude(verdict, &reference, statement, digest, &judgement)
    }

    /// The verdict of an image the caller gave up judging before any work began (the webhook
    /// sheds requests when overloaded): [`Outcome::Error`] with `reason`, admitted or not by
    /// the image's statement exactly as a timeout is. Touches neither registry nor cache.
    pub fn unjudged(&self, image: &str, reason: &str) -> Verdict {
        let (verdict, reference, statement) = match self.statement_of(image) {
            Begun::Judge(v, r, s) => (v, r, s),
            Begun::Done(v) => return v,
        };
        let judgement = Judgement::error(reason);
        conclude(verdict, &reference, statement, None, &judgement)
    }

    /// The image's reference and the statement that applies to it, with a verdict naming them;
    /// or the final verdict when the reference is invalid or no statement applies.
    fn statement_of(&self, image: &str) -> Begun<'_> {
        let mut verdict = Verdict {
            image: image.to_string(),
            reference: None,
            digest: None,
            policy: None,
            level: None,
            outcome: Outcome::Error,
            verified: false,
            admission: Admission::Deny,
            reasons: Vec::new(),
            warnings: Vec::new(),
            signatures: Vec::new(),
            quarantine: QuarantineStatus::not_applicable(),
            pinned: None,
        };
        let reference = match ImageReference::parse(image) {
            Ok(r) => r,
            Err(e) => {
                verdict.reasons.push(e.to_string());
                return Begun::Done(verdict);
            }
        };
        let scope = reference.scope();
        let Some(statement) = self.policy.statement_for(&scope) else {
            verdict.outcome = Outcome::Failed;
            verdict.reasons.push(format!(
                "no trust policy applies to {scope}: no statement lists it in registryScopes and there is no \"*\" statement"
            ));
            return Begun::Done(verdict);
        };
        verdict.policy = Some(statement.name.clone());
        verdict.level = Some(statement.level.label().to_string());
        Begun::Judge(verdict, reference, statement)
    }

    /// Digest, then the cached or freshly computed judgement for it. The digest is `None` when
    /// it could not be resolved.
    async fn assess(
        &self,
        reference: &ImageReference,
        statement: &TrustPolicyStatement,
        due: std::time::Instant,
    ) -> (Option<String>, Arc<Judgement>) {
        let skip = statement.level.is_skip();
        let rule = self
            .options
            .quarantine
            .rule_for(reference.registry())
            .cloned();
        let fingerprint: Arc<str> = Arc::from(format!(
            "{}:{}",
            self.fingerprints
                .get(&statement.name)
                .map(|f| f.as_ref())
                .unwrap_or("unknown"),
            QuarantineConfig::fingerprint(rule.as_ref())
        ));
        let key_for = |digest: &str| {
            VerdictKey::new(
                reference.registry(),
                reference.repository(),
                digest,
                fingerprint.clone(),
            )
        };
        // A skip statement without a quarantine rule needs nothing from the registry: no tag is
        // resolved (nothing is pinned either: skipped images are not verified).
        if skip && rule.is_none() {
            return (
                reference.digest().map(str::to_string),
                Arc::new(skipped(statement)),
            );
        }
        let (digest, target) = match reference.digest() {
            Some(d) => (d.to_string(), None),
            None => {
                let key = DigestKey {
                    registry: reference.registry().to_string(),
                    repository: reference.repository().to_string(),
                    tag: reference.manifest_reference().to_string(),
                };
                let registry = self.registry.clone();
                let r = reference.clone();
                match self
                    .cache
                    .digest(
                        key.clone(),
                        async move { registry.resolve_digest(&r).await },
                    )
                    .await
                {
                    Ok(t) => (t.digest.clone(), Some(t)),
                    Err(e) if skip => {
                        let mut j = skipped(statement);
                        j.warnings
                            .push(format!("could not resolve the digest: {e}"));
                        return (None, Arc::new(j));
                    }
                    Err(e) => {
                        let failed = Arc::new(Judgement::error(e.to_string()));
                        // The registry is away: a recent allow for the tag's last digest may stand.
                        if let Some(last) = self.cache.stale_digest(&key).await {
                            let key = key_for(&last.digest);
                            if let Some(stale) = self.cache.stale(&key, &failed).await {
                                return (Some(last.digest), stale);
                            }
                        }
                        return (None, failed);
                    }
                }
            }
        };
        let gate = self.clone();
        let r = reference.clone();
        let name = statement.name.clone();
        let d = digest.clone();
        // Leave time to answer with a stale verdict (or say why not) before the deadline.
        let wait = due
            .saturating_duration_since(std::time::Instant::now())
            .saturating_sub(Duration::from_millis(200))
            .max(Duration::from_millis(10));
        let judgement = self
            .cache
            .verdict(
                key_for(&digest),
                async move {
                    let Some(statement) = gate.policy.statements().iter().find(|s| s.name == name)
                    else {
                        return Judgement::error("trust policy statement vanished during a reload");
                    };
                    let target = match target {
                        Some(t) => t,
                        None => match gate.registry.resolve_digest(&r).await {
                            Ok(t) => t,
                            Err(e @ RegistryError::Quarantined { .. }) => {
                                let mut j = quarantined_by_registry(&r, rule.as_ref(), &e);
                                // ACR still answers its metadata API: show the scanner's state
                                // and details rather than the bare refusal.
                                if let Some(rule) =
                                    rule.as_ref().filter(|r| r.source == SourceKind::Acr)
                                {
                                    let state = acr::state(&gate.registry, &r, &d).await;
                                    if matches!(
                                        state,
                                        QuarantineState::NotPassed { .. }
                                            | QuarantineState::Locked(_)
                                    ) {
                                        j.set_quarantine(rule, &state, &r.with_digest(&d));
                                    }
                                }
                                return j;
                            }
                            Err(e) => return Judgement::error(e.to_string()),
                        },
                    };
                    let mut judgement = if statement.level.is_skip() {
                        skipped(statement)
                    } else {
                        gate.verify_signatures(&r, statement, &target, due).await
                    };
                    if let Some(rule) = &rule {
                        if judgement.outcome != Outcome::Error {
                            let state = gate
                                .quarantine_state(&r, statement, rule, &target, due)
                                .await;
                            judgement.pending = state.pending();
                            judgement.set_quarantine(rule, &state, &r.with_digest(&d));
                        }
                    }
                    judgement
                },
                wait,
            )
            .await;
        (Some(digest), judgement)
    }

    /// The quarantine state of a resolved image from the rule's source.
    async fn quarantine_state(
        &self,
        reference: &ImageReference,
        statement: &TrustPolicyStatement,
        rule: &QuarantineRule,
        target: &Descriptor,
        due: std::time::Instant,
    ) -> QuarantineState {
        match rule.source {
            SourceKind::None => QuarantineState::Passed,
            SourceKind::Acr => acr::state(&self.registry, reference, &target.digest).await,
            SourceKind::Referrer => {
                let (found, notes) = match referrer::list(&self.registry, reference, target).await {
                    Ok(v) => v,
                    Err(e) => {
                        return QuarantineState::Unknown(format!("reading status artifacts: {e}"))
                    }
                };
                for status in &found {
                    if rule.require_signature {
                        if statement.level.is_skip() {
                            return QuarantineState::Unknown(format!(
                                "status artifacts must be signed, but trust policy statement {:?} skips signature verification, so no signer can be trusted",
                                statement.name
                            ));
                        }
                        // The status must carry a signature the image's statement trusts, at
                        // strict level whatever the image's level is.
                        let strict = TrustPolicyStatement {
                            level: crate::notation::level::VerificationLevel::new(
                                LevelName::Strict,
                            ),
                            ..statement.clone()
                        };
                        let checked = self
                            .verify_signatures(reference, &strict, &status.manifest, due)
                            .await;
                        if checked.outcome != Outcome::Verified {
                            continue;
                        }
                    }
                    return match status.body.state.as_str() {
                        "Passed" => QuarantineState::Passed,
                        other => QuarantineState::NotPassed {
                            state: other.to_string(),
                            details: status.body.details.as_ref().map(|d| match d {
                                serde_json::Value::String(s) => s.clone(),
                                v => v.to_string(),
                            }),
                        },
                    };
                }
                let what = if rule.require_signature {
                    "signed "
                } else {
                    ""
                };
                let mut why =
                    format!("no {what}quarantine status artifact is attached to the image");
                if !found.is_empty() {
                    why.push_str(&format!(" ({} unsigned or untrusted ignored)", found.len()));
                }
                if !notes.is_empty() {
                    why.push_str(&format!("; {}", notes.join("; ")));
                }
                QuarantineState::Unknown(why)
            }
        }
    }

    /// List, fetch and verify the signatures of a resolved image, finishing by `due`.
    async fn verify_signatures(
        &self,
        reference: &ImageReference,
        statement: &TrustPolicyStatement,
        target: &Descriptor,
        due: std::time::Instant,
    ) -> Judgement {
        let shown = reference.with_digest(&target.digest);
        let max = self.options.max_signatures.max(1);
        let listed = match self
            .registry
            .referrers(reference, target, ARTIFACT_TYPE_SIGNATURE, max)
            .await
        {
            Ok(l) => l,
            Err(e) => {
                return Judgement::error(format!("unable to list the signatures of {shown}: {e}"))
            }
        };
        if listed.is_empty() {
            return Judgement::failed(format!(
                "no Notation signature found for {shown}: no signature is associated with it, make sure the image was signed"
            ));
        }
        let target_artifact = TargetArtifact {
            media_type: target.media_type.clone(),
            digest: target.digest.clone(),
            size: target.size,
            annotations: None,
        };
        let ctx = VerificationContext {
            statement,
            stores: &self.stores,
            target: &target_artifact,
            now: OffsetDateTime::now_utc(),
            revocation: &self.options.revocation,
            // Revocation fetches end before the gate must answer (with a stale verdict or why).
            deadline: tokio::time::Instant::from_std(due)
                .checked_sub(Duration::from_millis(250))
                .unwrap_or_else(tokio::time::Instant::now),
        };
        let mut judgement = Judgement::new(Outcome::Failed);
        let mut tried = 0usize;
        for desc in &listed {
            if tried == max {
                break;
            }
            tried += 1;
            let (media_type, envelope) = match self.fetch_envelope(reference, desc).await {
                Ok(v) => v,
                Err(e) => {
                    let mut j = Judgement::error(format!(
                        "unable to retrieve digital signature with digest {} of {shown}: {e}",
                        desc.digest
                    ));
                    j.signatures = judgement.signatures;
                    return j;
                }
            };
            let outcome = verify_signature(&ctx, &desc.digest, &media_type, &envelope).await;
            let passed = outcome.verified;
            let warnings = outcome.warnings.clone();
            judgement.signatures.push(outcome);
            if passed {
                judgement.outcome = Outcome::Verified;
                judgement.warnings = warnings;
                return judgement;
            }
        }
        judgement.reasons = judgement
            .signatures
            .iter()
            .map(|s| {
                format!(
                    "signature {}: {}",
                    short_digest(&s.digest.to_string()),
                    s.error.as_deref().unwrap_or("failed")
                )
            })
            .collect();
        if tried >= max {
            judgement.reasons.insert(
                0,
                format!("signature evaluation stopped. The configured limit of {max} signatures to verify per artifact exceeded"),
            );
        }
        judgement
    }

    /// Fetch a signature manifest and its single envelope blob.
    async fn fetch_envelope(
        &self,
        reference: &ImageReference,
        desc: &Descriptor,
    ) -> Result<(String, Vec<u8>), String> {
        if desc.media_type != OCI_MANIFEST && desc.media_type != OCI_ARTIFACT_MANIFEST {
            return Err(format!(
                "signature manifest media type {:?} is not supported",
                desc.media_type
            ));
        }
        let bytes = self
            .registry
            .fetch_manifest(reference, desc)
            .await
            .map_err(|e| e.to_string())?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| format!("signature manifest is malformed: {e}"))?;
        let layers = if desc.media_type == OCI_ARTIFACT_MANIFEST {
            &manifest.blobs
        } else {
            &manifest.layers
        };
        let [layer] = layers.as_slice() else {
            return Err(format!(
                "signature manifest requires exactly one signature envelope blob, got {}",
                layers.len()
            ));
        };
        let envelope = self
            .registry
            .fetch_blob(reference, layer, MAX_ENVELOPE_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        Ok((layer.media_type.clone(), envelope))
    }
}

/// Where judging an image starts.
enum Begun<'a> {
    /// Judge the reference under the statement; the verdict names both.
    Judge(Verdict, ImageReference, &'a TrustPolicyStatement),
    /// Nothing to judge: the verdict is final.
    Done(Verdict),
}

/// A verdict from the judgement of its digest: the admission table of the statement's level,
/// then quarantine.
fn conclude(
    mut verdict: Verdict,
    reference: &ImageReference,
    statement: &TrustPolicyStatement,
    digest: Option<String>,
    j: &Judgement,
) -> Verdict {
    verdict.reference = digest.as_deref().map(|d| reference.with_digest(d));
    verdict.digest = digest;
    verdict.outcome = j.outcome;
    verdict.reasons = j.reasons.clone();
    verdict.warnings = j.warnings.clone();
    verdict.signatures = j.signatures.clone();
    verdict.quarantine = j
        .quarantine
        .as_deref()
        .cloned()
        .unwrap_or_else(QuarantineStatus::not_applicable);
    verdict.verified = matches!(j.outcome, Outcome::Verified | Outcome::Skipped);
    verdict.admission = admission(j.outcome, statement.level.name());
    apply_quarantine(&mut verdict);
    if verdict.outcome == Outcome::Verified && verdict.admission == Admission::Allow {
        verdict.pinned = match (reference.digest(), &verdict.digest) {
            (Some(_), _) => Some(verdict.image.clone()),
            (None, Some(d)) => Some(format!("{}@{d}", verdict.image)),
            (None, None) => None,
        };
    }
    verdict
}

/// The registry itself refused the image as quarantined (ACR `IMAGE_QUARANTINED`).
fn quarantined_by_registry(
    reference: &ImageReference,
    rule: Option<&QuarantineRule>,
    e: &RegistryError,
) -> Judgement {
    let mut j = Judgement::failed(e.to_string());
    let default_rule = QuarantineRule {
        registries: Vec::new(),
        source: SourceKind::Acr,
        enforcement: QuarantineEnforcement::Enforce,
        require_signature: true,
    };
    let state = QuarantineState::NotPassed {
        state: "Quarantined".into(),
        details: Some("the registry refuses to serve the image (IMAGE_QUARANTINED)".into()),
    };
    j.set_quarantine(rule.unwrap_or(&default_rule), &state, reference.original());
    j.pending = true;
    j
}

/// Quarantine's say in the answer: under `enforce`, a state other than `Passed` fails the image
/// and denies whatever the trust-policy level; under `audit` it is a warning.
fn apply_quarantine(v: &mut Verdict) {
    let Some(reason) = v.quarantine.reason.clone() else {
        return;
    };
    if v.quarantine.enforcement.as_deref() == Some("audit") {
        v.warnings.push(format!("quarantine (audit): {reason}"));
        return;
    }
    if matches!(v.outcome, Outcome::Verified | Outcome::Skipped) {
        v.outcome = if v.quarantine.state == "unknown" {
            Outcome::Error
        } else {
            Outcome::Failed
        };
    }
    if !v.reasons.contains(&reason) {
        v.reasons.push(reason);
    }
    v.verified = false;
    v.admission = Admission::Deny;
}

fn skipped(statement: &TrustPolicyStatement) -> Judgement {
    Judgement {
        warnings: vec![format!(
            "signature verification skipped: trust policy statement {:?} is configured to skip signature verification",
            statement.name
        )],
        ..Judgement::new(Outcome::Skipped)
    }
}

/// The admission semantics table of the design: what the webhook answers for an outcome at a
/// level.
pub fn admission(outcome: Outcome, level: LevelName) -> Admission {
    use Admission::{Allow, Deny};
    match (outcome, level) {
        (Outcome::Verified | Outcome::Skipped, _) => Allow,
        (Outcome::Failed | Outcome::Error, LevelName::Audit | LevelName::Skip) => Allow,
        (Outcome::Failed | Outcome::Error, LevelName::Strict | LevelName::Permissive) => Deny,
    }
}

fn short_digest(d: &str) -> &str {
    let end = d.find(':').map(|i| i + 13).unwrap_or(d.len()).min(d.len());
    &d[..end]
}

/// The exit status of `vouch verify` for a set of verdicts: 3 when something could not be
/// judged, else 1 when something failed, else 0.
pub fn exit_status(verdicts: &[Verdict]) -> u8 {
    if verdicts.iter().any(|v| v.outcome == Outcome::Error) {
        3
    } else if verdicts.iter().any(|v| v.outcome == Outcome::Failed) {
        1
    } else {
        0
    }
}

impl Verdict {
    /// Escape every message of the verdict ([`crate::escape`]): reasons, warnings, each
    /// signature's error, warnings and check errors, and the quarantine state, details and
    /// reason. They quote registries, scanners, certificates and image strings, and are shown
    /// on terminals, in logs and in denials. Data fields (image, digest, signer) are left as
    /// given. Cheap when nothing needs escaping: nothing is copied.
    pub fn escape_messages(&mut self) {
        use crate::escape::{escape_in_place, is_unsafe};
        let dirty = |s: &str| s.contains(is_unsafe);
        self.reasons.iter_mut().for_each(escape_in_place);
        self.warnings.iter_mut().for_each(escape_in_place);
        for s in &mut self.signatures {
            s.error.iter_mut().for_each(escape_in_place);
            s.warnings.iter_mut().for_each(escape_in_place);
            if s.checks
                .iter()
                .any(|c| c.error.as_deref().is_some_and(dirty))
            {
                let mut checks = s.checks.to_vec();
                checks
                    .iter_mut()
                    .for_each(|c| c.error.iter_mut().for_each(escape_in_place));
                s.checks = checks.into();
            }
        }
        let q = &mut self.quarantine;
        if dirty(&q.state) {
            q.state = crate::escape::escape(&q.state).into_owned().into();
        }
        q.details.iter_mut().for_each(escape_in_place);
        q.reason.iter_mut().for_each(escape_in_place);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judgements_round_trip_through_json() {
        let mut j = Judgement::failed("x");
        j.signatures.push(SignatureOutcome {
            kind: Default::default(),
            digest: "sha256:00".into(),
            envelope: "application/cose".into(),
            signer: None,
            issuer: None,
            log_entry: None,
            signing_time: None,
            verified: false,
            checks: Vec::new().into(),
            error: Some("e".into()),
            warnings: Vec::new(),
            revocation: None,
            timestamp: None,
            valid_until: None,
        });
        let back: Judgement = serde_json::from_slice(&serde_json::to_vec(&j).unwrap()).unwrap();
        assert_eq!(back.signatures.len(), 1);
        assert_eq!(back.outcome, Outcome::Failed);
    }
}
