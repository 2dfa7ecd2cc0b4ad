//! Verdicts: what the gate concludes about an image ([`Verdict`]), the cached part of it that
//! depends only on the manifest digest and the trust material ([`Judgement`]), and the admission
//! table that turns an outcome at a level into an answer.
//!
//! Its own module so that the caches (`crate::cache`), the reports and the webhook read verdicts
//! without depending on the gate that makes them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::notation::level::LevelName;
use crate::notation::verifier::SignatureOutcome;
use crate::quarantine::{
    QuarantineEnforcement, QuarantineRule, SourceKind, State as QuarantineState,
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

    pub(crate) fn from_state(rule: &QuarantineRule, state: &QuarantineState, image: &str) -> Self {
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
    /// When the reference names a multi-platform index judged by its platforms: each platform
    /// manifest's verdict, in index order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformVerdict>,
    /// Which trust policy judged it when the config maps namespaces to policies: a
    /// `namespaces:` mapping's name, or `cluster` for the cluster-wide one; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_mapping: Option<String>,
}

/// The verdict of one platform manifest of a multi-platform index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformVerdict {
    /// The platform as the index states it (`linux/arm64/v8`, or `unknown platform`).
    pub platform: String,
    /// The platform manifest's digest.
    pub digest: String,
    /// What judging it concluded, its quarantine state counted.
    pub outcome: Outcome,
    /// Why it did not verify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Notes that did not decide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Its signatures tried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<SignatureOutcome>,
    /// Its quarantine status, when a quarantine source applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<Box<QuarantineStatus>>,
}

impl Verdict {
    /// The verdict of `image` before anything is known of it: not judged ([`Outcome::Error`]),
    /// denied, no digest, statement or evidence. The gate starts every verdict here; anything
    /// else that makes one (tests, reports) names only what differs.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
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
            policy_mapping: None,
            platforms: Vec::new(),
        }
    }
}

impl PlatformVerdict {
    /// The verdict of platform manifest `digest` from its own judgement: its quarantine state
    /// applied to its outcome as [`Verdict`]s apply theirs.
    pub fn from_judgement(platform: String, digest: String, j: &Judgement) -> Self {
        let mut v = Self {
            platform,
            digest,
            outcome: j.outcome,
            reasons: j.reasons.clone(),
            warnings: j.warnings.clone(),
            signatures: j.signatures.clone(),
            quarantine: j.quarantine.clone(),
        };
        if let Some(q) = v.quarantine.as_deref() {
            apply_quarantine(q, &mut v.outcome, &mut v.reasons, &mut v.warnings);
        }
        v
    }

    /// Whether it verified (or was skipped by its statement).
    pub fn passed(&self) -> bool {
        matches!(self.outcome, Outcome::Verified | Outcome::Skipped)
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
    /// The platform manifests' verdicts, when the image was judged by its platforms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformVerdict>,
    /// Served from a past verdict (stale-if-error), or built from one (an index whose
    /// platform manifest was): never cached or shared as fresh, so the stale window is never
    /// extended.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

impl Judgement {
    pub(crate) fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            reasons: Vec::new(),
            warnings: Vec::new(),
            signatures: Vec::new(),
            quarantine: None,
            pending: false,
            platforms: Vec::new(),
            stale: false,
        }
    }

    /// A judgement that could not be made.
    pub fn error(reason: impl Into<String>) -> Self {
        let mut j = Self::new(Outcome::Error);
        j.reasons.push(reason.into());
        j
    }

    pub(crate) fn failed(reason: impl Into<String>) -> Self {
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
            .chain(self.platforms.iter().flat_map(|p| &p.signatures))
            .flat_map(|s| {
                [
                    s.valid_until,
                    s.revocation.as_ref().and_then(|r| r.valid_until),
                ]
            })
            .flatten()
            .min()
    }

    pub(crate) fn set_quarantine(
        &mut self,
        rule: &QuarantineRule,
        state: &QuarantineState,
        image: &str,
    ) {
        self.quarantine = Some(Box::new(QuarantineStatus::from_state(rule, state, image)));
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
        use crate::escape::escape_in_place;
        self.reasons.iter_mut().for_each(escape_in_place);
        self.warnings.iter_mut().for_each(escape_in_place);
        self.signatures.iter_mut().for_each(escape_signature);
        escape_quarantine(&mut self.quarantine);
        for p in &mut self.platforms {
            p.reasons.iter_mut().for_each(escape_in_place);
            p.warnings.iter_mut().for_each(escape_in_place);
            p.signatures.iter_mut().for_each(escape_signature);
            if let Some(q) = p.quarantine.as_deref_mut() {
                escape_quarantine(q);
            }
        }
    }
}

fn escape_signature(s: &mut SignatureOutcome) {
    use crate::escape::{escape_in_place, is_unsafe};
    s.error.iter_mut().for_each(escape_in_place);
    s.warnings.iter_mut().for_each(escape_in_place);
    if s.checks
        .iter()
        .any(|c| c.error.as_deref().is_some_and(|e| e.contains(is_unsafe)))
    {
        let mut checks = s.checks.to_vec();
        checks
            .iter_mut()
            .for_each(|c| c.error.iter_mut().for_each(escape_in_place));
        s.checks = checks.into();
    }
}

fn escape_quarantine(q: &mut QuarantineStatus) {
    use crate::escape::{escape_in_place, is_unsafe};
    if q.state.contains(is_unsafe) {
        q.state = crate::escape::escape(&q.state).into_owned().into();
    }
    q.details.iter_mut().for_each(escape_in_place);
    q.reason.iter_mut().for_each(escape_in_place);
}

impl QuarantineStatus {
    /// Whether this status refuses the image whatever its level: a state other than `Passed`
    /// under `enforce`.
    pub fn refuses(&self) -> bool {
        self.reason.is_some() && self.enforcement.as_deref() != Some("audit")
    }
}

/// Quarantine's say in an outcome: under `enforce`, a state other than `Passed` fails what
/// verified and adds the reason; under `audit` it is a warning. Returns whether it refuses.
pub(crate) fn apply_quarantine(
    q: &QuarantineStatus,
    outcome: &mut Outcome,
    reasons: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> bool {
    let Some(reason) = q.reason.clone() else {
        return false;
    };
    if !q.refuses() {
        warnings.push(format!("quarantine (audit): {reason}"));
        return false;
    }
    if matches!(*outcome, Outcome::Verified | Outcome::Skipped) {
        *outcome = if q.state == "unknown" {
            Outcome::Error
        } else {
            Outcome::Failed
        };
    }
    if !reasons.contains(&reason) {
        reasons.push(reason);
    }
    true
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
