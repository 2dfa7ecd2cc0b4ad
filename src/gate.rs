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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::cache::{CacheSettings, DigestKey, VerdictCache, VerdictKey};
use crate::cosign::{self, CosignPolicy, CosignRule, SignaturesMode};
use crate::metrics::Metrics;
use crate::notation::envelope::TargetArtifact;
use crate::notation::level::{LevelName, VerificationLevel};
use crate::notation::revocation::{Checker, RevocationSettings};
use crate::notation::trust_policy::{
    TrustPolicy, TrustPolicyStatement, TrustedIdentities, VerifyTimestamp,
};
use crate::notation::trust_store::TrustStores;
use crate::notation::verifier::{verify_signature, VerificationContext};
use crate::notation::ARTIFACT_TYPE_SIGNATURE;
use crate::platforms::{self, is_index, IndexError, PlatformMode, PlatformPolicy, PlatformRule};
use crate::quarantine::{
    acr, referrer, QuarantineConfig, QuarantineEnforcement, QuarantineRule, SourceKind,
    State as QuarantineState,
};
use crate::reference::ImageReference;
use crate::registry::{digest, RegistryError};
use crate::registry::{
    Descriptor, Manifest, RegistryClient, MAX_ENVELOPE_BYTES, OCI_ARTIFACT_MANIFEST, OCI_MANIFEST,
};
use crate::verdict::{
    admission, apply_quarantine, Admission, Judgement, Outcome, PlatformVerdict, QuarantineStatus,
    Verdict,
};

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
    /// How multi-platform indexes are judged, per scope.
    pub platforms: PlatformPolicy,
    /// The `cosign:` rules.
    pub cosign: Arc<CosignPolicy>,
    /// How a scope with both a Notation statement and a cosign rule is judged.
    pub signatures: SignaturesMode,
}

impl Default for GateOptions {
    fn default() -> Self {
        Self {
            max_signatures: 100,
            deadline: Duration::from_secs(60),
            metrics: None,
            quarantine: QuarantineConfig::new(Vec::new()),
            revocation: Checker::new(RevocationSettings::default(), None),
            platforms: PlatformPolicy::default(),
            cosign: Arc::new(CosignPolicy::default()),
            signatures: SignaturesMode::Any,
        }
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
    /// The statements of scopes judged by a cosign rule alone (no Notation statement applies,
    /// or it skips): named `cosign[N]`, at the rule's level, trusting no Notation signer.
    cosign_statements: Arc<Vec<TrustPolicyStatement>>,
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
        let cosign_statements = cosign_statements(&options.cosign);
        let fingerprints = policy
            .statements()
            .iter()
            .chain(cosign_statements.iter())
            .map(|s| {
                // Revocation settings too: replicas sharing verdicts through Redis with
                // different offline CRLs or fetching must not take each other's. And the
                // cosign rules (key and trusted-root bytes), since any scope may have one.
                let material = format!(
                    "{}|{}|{}|{}|{:?}|{}|{}",
                    policy.digest(),
                    s.name,
                    stores.fingerprint(),
                    options.max_signatures,
                    options.revocation.settings(),
                    options.cosign.fingerprint(),
                    options.signatures.name()
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
            cosign_statements: Arc::new(cosign_statements),
        }
    }

    /// This gate reading through `registry` instead (a client carrying one pod's pull
    /// credentials): the same policy, stores, options and shared verdict cache.
    pub fn with_registry(&self, registry: RegistryClient) -> Self {
        Self {
            registry,
            ..self.clone()
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

    /// The registry client this gate reads through.
    pub fn registry(&self) -> &RegistryClient {
        &self.registry
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
        let (verdict, reference, statement, level) = match self.statement_of(image) {
            Begun::Judge(v, r, s, l) => (v, r, s, l),
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
        conclude(verdict, &reference, level, digest, &judgement)
    }

    /// The verdict of an image the caller gave up judging before any work began (the webhook
    /// sheds requests when overloaded): [`Outcome::Error`] with `reason`, admitted or not by
    /// the image's statement exactly as a timeout is. Touches neither registry nor cache.
    pub fn unjudged(&self, image: &str, reason: &str) -> Verdict {
        let (verdict, reference, level) = match self.statement_of(image) {
            Begun::Judge(v, r, _, l) => (v, r, l),
            Begun::Done(v) => return v,
        };
        let judgement = Judgement::error(reason);
        conclude(verdict, &reference, level, None, &judgement)
    }

    /// The image's reference and the statement that applies to it, with a verdict naming them;
    /// or the final verdict when the reference is invalid or no statement applies.
    fn statement_of(&self, image: &str) -> Begun<'_> {
        let mut verdict = Verdict::new(image);
        let reference = match ImageReference::parse(image) {
            Ok(r) => r,
            Err(e) => {
                verdict.reasons.push(e.to_string());
                return Begun::Done(verdict);
            }
        };
        let scope = reference.scope();
        let statement = match (
            self.policy.statement_for(&scope),
            self.options.cosign.rule_for(&scope),
        ) {
            (Some(s), Some(rule)) if s.level.is_skip() => self.cosign_statement(rule),
            (None, Some(rule)) => self.cosign_statement(rule),
            (s, _) => s,
        };
        let Some(statement) = statement else {
            verdict.outcome = Outcome::Failed;
            verdict.reasons.push(format!(
                "no trust policy applies to {scope}: no statement lists it in registryScopes and there is no \"*\" statement"
            ));
            return Begun::Done(verdict);
        };
        verdict.policy = Some(statement.name.clone());
        verdict.level = Some(statement.level.label().to_string());
        // Both kinds judge the scope: a failure is refused if either one's level refuses it
        // (an `audit` rollout statement must not relax a team's `strict` cosign rule).
        let mut level = statement.level.name();
        let is_stand_in = self.is_cosign_stand_in(statement);
        if let Some(rule) = self
            .options
            .cosign
            .rule_for(&scope)
            .filter(|_| !is_stand_in)
        {
            if refuses(rule.level) && !refuses(level) {
                level = rule.level;
                verdict.level = Some(format!(
                    "{} (cosign rule {})",
                    rule.level.name(),
                    rule.name()
                ));
            }
        }
        Begun::Judge(verdict, reference, statement, level)
    }

    /// Digest, then the cached or freshly computed judgement for it. The digest is `None` when
    /// it could not be resolved. A short sequence of named steps:
    ///
    /// 1. [`Gate::rules_for`]: what applies besides the statement (quarantine, platforms) and
    ///    the cache-key fingerprints;
    /// 2. [`Gate::resolve`]: the tag's digest (cached; a stale allow when the registry is away);
    /// 3. [`Gate::cached_judgement`] → [`Gate::judge_image`]: the digest's judgement, computed
    ///    once for all concurrent callers — its manifest ([`Gate::judge_manifest`]: signatures,
    ///    then quarantine), and for an index judged by its platforms, each platform manifest
    ///    ([`Gate::judge_platforms`]), each cached on its own.
    async fn assess(
        &self,
        reference: &ImageReference,
        statement: &TrustPolicyStatement,
        due: Instant,
    ) -> (Option<String>, Arc<Judgement>) {
        let rules = Arc::new(self.rules_for(reference, statement));
        // A skip statement without a quarantine rule needs nothing from the registry: no tag is
        // resolved (nothing is pinned either: skipped images are not verified).
        if statement.level.is_skip() && rules.quarantine.is_none() {
            return (
                reference.digest().map(str::to_string),
                Arc::new(skipped(statement)),
            );
        }
        let (digest, target) = match self.resolve(reference, statement, &rules).await {
            Ok(resolved) => resolved,
            Err(done) => return done,
        };
        let judgement = self
            .cached_judgement(reference, statement, &rules, &digest, target, due)
            .await;
        (Some(digest), judgement)
    }

    /// Step 1: the quarantine and platform rules of the image, and the fingerprints of its
    /// cache keys.
    fn rules_for(&self, reference: &ImageReference, statement: &TrustPolicyStatement) -> Rules {
        let quarantine = self
            .options
            .quarantine
            .rule_for(reference.registry())
            .cloned();
        let platforms = self.options.platforms.rule_for(&reference.scope()).clone();
        // Judgements are shared by the requests that read with the same credentials: a
        // tenant's failed read (or its timing) never reaches another tenant, and what one
        // tenant's credentials read is never judged for another's.
        let reader = self.registry.credential_identity(reference);
        let manifest: Arc<str> = Arc::from(format!(
            "{}:{}{}",
            self.fingerprints
                .get(&statement.name)
                .map(|f| f.as_ref())
                .unwrap_or("unknown"),
            QuarantineConfig::fingerprint(quarantine.as_ref()),
            if reader == "own" {
                String::new()
            } else {
                format!(":{reader}")
            }
        ));
        // Under notation's rule the image's judgement is its manifest's: one key for both, so
        // a platform manifest named by digest shares its entry with the same manifest judged
        // as a child.
        let image = match platforms.mode {
            PlatformMode::Index => manifest.clone(),
            _ => Arc::from(format!("{manifest}:{}", platforms.fingerprint())),
        };
        Rules {
            reader,
            quarantine,
            platforms,
            manifest_fingerprint: manifest,
            image_fingerprint: image,
        }
    }

    /// Step 2: the digest the reference names, with its descriptor when a tag was resolved.
    /// `Err` is the final answer when the tag could not be resolved: a stale allow of its last
    /// digest while the registry is away, else an error (a warning under `skip`).
    async fn resolve(
        &self,
        reference: &ImageReference,
        statement: &TrustPolicyStatement,
        rules: &Rules,
    ) -> Result<(String, Option<Descriptor>), (Option<String>, Arc<Judgement>)> {
        if let Some(d) = reference.digest() {
            return Ok((d.to_string(), None));
        }
        let key = DigestKey {
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
            tag: reference.manifest_reference().to_string(),
            reader: rules.reader.clone(),
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
            Ok(t) => Ok((t.digest.clone(), Some(t))),
            // The registry refuses the image as quarantined: that is the answer at every level.
            Err(e) if matches!(*e, RegistryError::Quarantined { .. }) => Err((
                None,
                Arc::new(quarantined_by_registry(
                    reference,
                    rules.quarantine.as_ref(),
                    &e,
                )),
            )),
            // Skipped signatures still leave the quarantine rule (the only reason to reach the
            // registry): a state that could not be read is unknown, never passed.
            Err(e) if statement.level.is_skip() => {
                let mut j = skipped(statement);
                if let Some(rule) = &rules.quarantine {
                    let state = QuarantineState::Unknown(format!(
                        "could not resolve the digest, so the quarantine state is unknown: {e}"
                    ));
                    j.set_quarantine(rule, &state, reference.original());
                }
                Err((None, Arc::new(j)))
            }
            Err(e) => {
                let failed = Arc::new(Judgement::error(e.to_string()));
                // The registry is away: a recent allow for the tag's last digest may stand. Not
                // when it answered that the tag is not there: the tag was deleted, or hidden
                // (ACR hides the tags of quarantined images), and a pin to its last digest
                // would run what the registry no longer serves by that name.
                let answered = matches!(*e, RegistryError::NotFound { .. });
                let last = match answered {
                    true => None,
                    false => self.cache.stale_digest(&key).await,
                };
                if let Some(last) = last {
                    let key = rules.image_key(reference, &last.digest);
                    if let Some(stale) = self.cache.stale(&key, &failed).await {
                        return Err((Some(last.digest), stale));
                    }
                }
                Err((None, failed))
            }
        }
    }

    /// Step 3: the judgement of the image's digest from the cache, or computed once for every
    /// concurrent caller, in time to answer by `due`.
    async fn cached_judgement(
        &self,
        reference: &ImageReference,
        statement: &TrustPolicyStatement,
        rules: &Arc<Rules>,
        digest: &str,
        target: Option<Descriptor>,
        due: Instant,
    ) -> Arc<Judgement> {
        let gate = self.clone();
        let r = reference.clone();
        let name = statement.name.clone();
        let d = digest.to_string();
        let rules2 = rules.clone();
        self.cache
            .verdict(
                rules.image_key(reference, digest),
                async move {
                    let Some(statement) = gate.statement_named(&name) else {
                        return Judgement::error("trust policy statement vanished during a reload");
                    };
                    gate.judge_image(&r, statement, &rules2, &d, target, due)
                        .await
                },
                answer_wait(due),
            )
            .await
    }

    fn statement_named(&self, name: &str) -> Option<&TrustPolicyStatement> {
        self.policy
            .statements()
            .iter()
            .chain(self.cosign_statements.iter())
            .find(|s| s.name == name)
    }

    /// The statement standing for a cosign rule that judges its scope alone.
    fn cosign_statement(&self, rule: &CosignRule) -> Option<&TrustPolicyStatement> {
        let name = rule.name();
        self.cosign_statements.iter().find(|s| s.name == name)
    }

    /// Whether `statement` stands for a cosign rule judging its scope alone.
    fn is_cosign_stand_in(&self, statement: &TrustPolicyStatement) -> bool {
        self.cosign_statements
            .iter()
            .any(|s| s.name == statement.name)
    }

    /// The judgement of the image `digest` names: its own manifest's, or, for an index whose
    /// platform rule says so, its platform manifests'.
    async fn judge_image(
        &self,
        reference: &ImageReference,
        statement: &TrustPolicyStatement,
        rules: &Arc<Rules>,
        digest: &str,
        target: Option<Descriptor>,
        due: Instant,
    ) -> Judgement {
        let target = match target {
            Some(t) => t,
            None => match self.describe(reference, rules, digest).await {
                Ok(t) => t,
                Err(j) => return j,
            },
        };
        let mode = if is_index(&target.media_type) {
            rules.platforms.mode
        } else {
            PlatformMode::Index
        };
        match mode {
            PlatformMode::Index => {
                let mut j = self
                    .judge_manifest(reference, statement, rules, &target, due)
                    .await;
                if is_index(&target.media_type) && j.outcome == Outcome::Failed {
                    j.warnings.push(format!(
                        "{} is a multi-platform index, judged by its own signatures (platforms mode \"index\"); if the pipeline signs each platform manifest, set platforms mode \"index-or-platforms\" for {}",
                        reference.with_digest(digest),
                        reference.scope()
                    ));
                }
                j
            }
            PlatformMode::IndexOrPlatforms => {
                let own = self
                    .judge_manifest(reference, statement, rules, &target, due)
                    .await;
                if matches!(own.outcome, Outcome::Verified | Outcome::Skipped) {
                    return own;
                }
                let mut j = self
                    .judge_platforms(reference, statement, rules, &target, due)
                    .await;
                if matches!(j.outcome, Outcome::Verified | Outcome::Skipped) {
                    j.warnings.insert(
                        0,
                        format!(
                            "the index did not verify ({}); every platform manifest it lists did",
                            own.reasons.join("; ")
                        ),
                    );
                } else {
                    let own_reasons = own.reasons.iter().map(|r| format!("index: {r}"));
                    j.reasons.splice(0..0, own_reasons);
                }
                j.signatures = own.signatures;
                j.pending |= own.pending;
                j.quarantine = own.quarantine;
                // The index's signatures could not be read, so neither was its quarantine
                // state; its platforms may still admit it, so read it now (never "not
                // applicable" while a rule applies).
                if j.quarantine.is_none() {
                    self.add_quarantine(&mut j, reference, statement, rules, &target, due)
                        .await;
                }
                j.quarantine = by_platforms(j.quarantine.take(), &mut j.warnings);
                j
            }
            PlatformMode::Platforms => {
                let mut j = self
                    .judge_platforms(reference, statement, rules, &target, due)
                    .await;
                self.add_quarantine(&mut j, reference, statement, rules, &target, due)
                    .await;
                j.quarantine = by_platforms(j.quarantine.take(), &mut j.warnings);
                j
            }
        }
    }

    /// The quarantine state of `manifest`, when a rule applies, set on `j` (its own judgement,
    /// or for an index, the judgement of its platforms).
    async fn add_quarantine(
        &self,
        j: &mut Judgement,
        reference: &ImageReference,
        statement: &TrustPolicyStatement,
        rules: &Rules,
        manifest: &Descriptor,
        due: Instant,
    ) {
        if let Some(rule) = &rules.quarantine {
            let state = self
                .quarantine_state(reference, statement, rule, manifest, due)
                .await;
            j.pending |= state.pending();
            j.set_quarantine(rule, &state, &reference.with_digest(&manifest.digest));
        }
    }

    /// The descriptor of a digest named by the user (HEAD): the registry may refuse to serve a
    /// quarantined image, which is a judgement, not an error.
    async fn describe(
        &self,
        reference: &ImageReference,
        rules: &Rules,
        digest: &str,
    ) -> Result<Descriptor, Judgement> {
        match self.registry.resolve_digest(reference).await {
            Ok(t) => Ok(t),
            Err(e @ RegistryError::Quarantined { .. }) => {
                let mut j = quarantined_by_registry(reference, rules.quarantine.as_ref(), &e);
                // ACR still answers its metadata API: show the scanner's state and details
                // rather than the bare refusal.
                if let Some(rule) = rules
                    .quarantine
                    .as_ref()
                    .filter(|r| r.source == SourceKind::Acr)
                {
                    let state = acr::state(&self.registry, reference, digest).await;
                    if matches!(
                        state,
                        QuarantineState::NotPassed { .. } | QuarantineState::Locked(_)
                    ) {
                        j.set_quarantine(rule, &state, &reference.with_digest(digest));
                    }
                }
                Err(j)
            }
            Err(e) => Err(Judgement::error(e.to_string())),
        }
    }

    /// One manifest's judgement: its signatures under the statement, then its quarantine state.
    async fn judge_manifest(
        &self,
        reference: &ImageReference,
        statement: &TrustPolicyStatement,
        rules: &Rules,
        target: &Descriptor,
        due: Instant,
    ) -> Judgement {
        let mut judgement = self
            .judge_signatures(reference, statement, target, due)
            .await;
        if judgement.outcome != Outcome::Error {
            self.add_quarantine(&mut judgement, reference, statement, rules, target, due)
                .await;
        }
        judgement
    }

    /// A manifest's signatures: Notation's under the statement, cosign's under the scope's
    /// cosign rule, or both, combined by `signatures: any|all` into one judgement listing
    /// every signature tried.
    async fn judge_signatures(
        &self,
        reference: &ImageReference,
        statement: &TrustPolicyStatement,
        target: &Descriptor,
        due: Instant,
    ) -> Judgement {
        let cosign_only = self.is_cosign_stand_in(statement);
        // (A skip statement never meets a cosign rule here: `statement_of` judges such a scope
        // by the rule's stand-in.)
        let Some(rule) = self.options.cosign.rule_for(&reference.scope()) else {
            return if statement.level.is_skip() {
                skipped(statement)
            } else {
                self.verify_signatures(reference, statement, target, due)
                    .await
            };
        };
        let max = self.options.max_signatures.max(1);
        let cosign = async {
            let c = cosign::judge(&self.registry, reference, target, rule, max).await;
            let mut j = Judgement::new(match (&c.unfinished, c.verified) {
                (_, true) => Outcome::Verified,
                (Some(_), false) => Outcome::Error,
                (None, false) => Outcome::Failed,
            });
            j.reasons = c.unfinished.into_iter().chain(c.reasons).collect();
            j.signatures = c.signatures;
            j
        };
        if cosign_only {
            return cosign.await;
        }
        let (notation, cosign) = futures::join!(
            self.verify_signatures(reference, statement, target, due),
            cosign
        );
        combine_kinds(notation, cosign, self.options.signatures)
    }

    /// An index judged by its platforms: every platform manifest the rule requires, judged
    /// concurrently, each through the cache on its own (a manifest listed by many indexes, or
    /// pulled by digest, is verified once).
    async fn judge_platforms(
        &self,
        reference: &ImageReference,
        statement: &TrustPolicyStatement,
        rules: &Arc<Rules>,
        index: &Descriptor,
        due: Instant,
    ) -> Judgement {
        let shown = reference.with_digest(&index.digest);
        let selection =
            match platforms::platform_manifests(&self.registry, reference, index, &rules.platforms)
                .await
            {
                Ok(s) => s,
                Err(e @ IndexError::Registry(_)) => {
                    return Judgement::error(format!(
                        "unable to read the platform manifests of {shown}: {e}"
                    ))
                }
                Err(e) => return Judgement::failed(e.to_string()),
            };
        if selection.required.is_empty() {
            let only: Vec<String> = rules
                .platforms
                .only
                .iter()
                .map(ToString::to_string)
                .collect();
            return Judgement::failed(format!(
                "{shown} lists no platform manifest to verify{}",
                if only.is_empty() {
                    String::new()
                } else {
                    format!(" for the required platforms {}", only.join(", "))
                }
            ));
        }
        let children = selection.required.iter().map(|m| {
            let key = rules.manifest_key(reference, &m.descriptor.digest);
            let gate = self.clone();
            let r = reference.clone();
            let name = statement.name.clone();
            let rules = rules.clone();
            let desc = m.descriptor.clone();
            self.cache.verdict(
                key,
                async move {
                    let Some(statement) = gate.statement_named(&name) else {
                        return Judgement::error("trust policy statement vanished during a reload");
                    };
                    gate.judge_manifest(&r, statement, &rules, &desc, due).await
                },
                answer_wait(due),
            )
        });
        let judged = futures::future::join_all(children).await;
        let mut j = Judgement::new(Outcome::Verified);
        for (m, child) in selection.required.iter().zip(&judged) {
            let p = PlatformVerdict::from_judgement(m.label(), m.descriptor.digest.clone(), child);
            j.pending |= child.pending;
            // A platform served stale makes the index's judgement stale: not cached as fresh.
            j.stale |= child.stale;
            j.outcome = worse(j.outcome, p.outcome);
            let what = format!("platform {} ({})", p.platform, digest::short(&p.digest));
            if p.passed() {
                j.warnings
                    .extend(p.warnings.iter().map(|w| format!("{what}: {w}")));
            } else {
                j.reasons.push(format!(
                    "{what}: {}",
                    if p.reasons.is_empty() {
                        "did not verify".to_string()
                    } else {
                        p.reasons.join("; ")
                    }
                ));
            }
            j.platforms.push(p);
        }
        j
    }

    /// The quarantine state of a resolved image from the rule's source.
    async fn quarantine_state(
        &self,
        reference: &ImageReference,
        statement: &TrustPolicyStatement,
        rule: &QuarantineRule,
        target: &Descriptor,
        due: Instant,
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
        due: Instant,
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
                    digest::short(&s.digest.to_string()),
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

/// What applies to one image besides its statement, and the fingerprints of its cache keys.
struct Rules {
    /// Whose credentials read the registry for this image (`own`, or a pod credential).
    reader: String,
    quarantine: Option<QuarantineRule>,
    platforms: PlatformRule,
    /// Of one manifest's judgement: statement, trust material, quarantine rule.
    manifest_fingerprint: Arc<str>,
    /// Of the image's judgement: the manifest's, with the platform rule when it judges
    /// platforms.
    image_fingerprint: Arc<str>,
}

impl Rules {
    fn image_key(&self, reference: &ImageReference, digest: &str) -> VerdictKey {
        VerdictKey::new(
            reference.registry(),
            reference.repository(),
            digest,
            self.image_fingerprint.clone(),
        )
    }

    fn manifest_key(&self, reference: &ImageReference, digest: &str) -> VerdictKey {
        VerdictKey::new(
            reference.registry(),
            reference.repository(),
            digest,
            self.manifest_fingerprint.clone(),
        )
    }
}

/// How long to wait for a judgement: until shortly before `due`, leaving time to answer with a
/// stale verdict (or say why not).
fn answer_wait(due: Instant) -> Duration {
    due.saturating_duration_since(Instant::now())
        .saturating_sub(Duration::from_millis(200))
        .max(Duration::from_millis(10))
}

/// Whether a failure at `level` is refused (the admission table: strict and permissive refuse).
fn refuses(level: LevelName) -> bool {
    admission(Outcome::Failed, level) == Admission::Deny
}

/// The combined outcome of platform manifests: a failure decides, then an error (a platform not
/// judged is never a pass), then a skip.
fn worse(a: Outcome, b: Outcome) -> Outcome {
    let rank = |o| match o {
        Outcome::Verified => 0,
        Outcome::Skipped => 1,
        Outcome::Error => 2,
        Outcome::Failed => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// The index's own quarantine status when its platforms are judged: a state the registry
/// reports still counts, but "no status found" does not refuse — each platform manifest's own
/// state decides.
fn by_platforms(
    q: Option<Box<QuarantineStatus>>,
    warnings: &mut Vec<String>,
) -> Option<Box<QuarantineStatus>> {
    let mut q = q?;
    if q.state == "unknown" {
        if let Some(reason) = q.reason.take() {
            warnings.push(format!(
                "index quarantine not decisive, the platform manifests' states decide: {reason}"
            ));
        }
    }
    Some(q)
}

/// The statements standing for cosign rules where they judge a scope alone.
fn cosign_statements(policy: &CosignPolicy) -> Vec<TrustPolicyStatement> {
    policy
        .rules()
        .iter()
        .map(|r| TrustPolicyStatement {
            name: r.name(),
            registry_scopes: Vec::new(),
            is_wildcard: false,
            level: VerificationLevel::new(r.level),
            verify_timestamp: VerifyTimestamp::Always,
            trust_stores: Vec::new(),
            trusted_identities: TrustedIdentities::Subjects(Vec::new()),
        })
        .collect()
}

/// One judgement from a Notation and a cosign one: under `any` the image verifies when either
/// kind does, under `all` when both do; the signatures of both are listed, and the reasons of
/// the kinds that did not verify.
fn combine_kinds(notation: Judgement, cosign: Judgement, mode: SignaturesMode) -> Judgement {
    let passed = |j: &Judgement| j.outcome == Outcome::Verified;
    let verified = match mode {
        SignaturesMode::Any => passed(&notation) || passed(&cosign),
        SignaturesMode::All => passed(&notation) && passed(&cosign),
    };
    let mut j = Judgement::new(if verified {
        Outcome::Verified
    } else {
        [&notation, &cosign]
            .into_iter()
            .filter(|k| !passed(k))
            .map(|k| k.outcome)
            .fold(Outcome::Verified, worse)
    });
    for k in [notation, cosign] {
        if !verified && !passed(&k) {
            j.reasons.extend(k.reasons);
        } else if !passed(&k) {
            // Under `any`, the kind that did not verify is noted, not held against the image.
            j.warnings.extend(
                k.reasons
                    .into_iter()
                    .map(|r| format!("signatures: any: {r}")),
            );
        }
        j.warnings.extend(k.warnings);
        j.signatures.extend(k.signatures);
    }
    if !verified && mode == SignaturesMode::All {
        j.reasons.insert(
            0,
            "signatures: all: each of Notation and cosign must verify".into(),
        );
    }
    j
}

/// Where judging an image starts.
enum Begun<'a> {
    /// Judge the reference under the statement, answering at the level given (the
    /// statement's, or a stricter cosign rule's for the same scope); the verdict names both.
    Judge(Verdict, ImageReference, &'a TrustPolicyStatement, LevelName),
    /// Nothing to judge: the verdict is final.
    Done(Verdict),
}

/// A verdict from the judgement of its digest: the admission table of the statement's level,
/// then quarantine.
fn conclude(
    mut verdict: Verdict,
    reference: &ImageReference,
    level: LevelName,
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
    verdict.admission = admission(j.outcome, level);
    verdict.platforms = j.platforms.clone();
    let quarantined = apply_quarantine(
        &verdict.quarantine,
        &mut verdict.outcome,
        &mut verdict.reasons,
        &mut verdict.warnings,
    );
    // A platform manifest's enforced quarantine refuses as the image's own does, at every
    // level: folded into the outcome alone, `audit` and `skip` would admit it.
    let platform_quarantined = verdict.platforms.iter().any(|p| {
        p.quarantine
            .as_deref()
            .is_some_and(QuarantineStatus::refuses)
    });
    if quarantined || platform_quarantined {
        verdict.verified = false;
        verdict.admission = Admission::Deny;
    }
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

fn skipped(statement: &TrustPolicyStatement) -> Judgement {
    Judgement {
        warnings: vec![format!(
            "signature verification skipped: trust policy statement {:?} is configured to skip signature verification",
            statement.name
        )],
        ..Judgement::new(Outcome::Skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::auth::{Credential, PullCredential, PullCredentials};
    use crate::registry::RegistryOptions;

    /// The verdict `conclude` makes of `j` for `image` under a one-statement policy at `level`.
    fn concluded(level: &str, image: &str, j: &Judgement) -> Verdict {
        let policy = TrustPolicy::from_json(
            format!(r#"{{"version":"1.0","trustPolicies":[{{"name":"all","registryScopes":["*"],"signatureVerification":{{"level":"{level}"}},"trustStores":["ca:x"],"trustedIdentities":["*"]}}]}}"#)
                .as_bytes(),
        )
        .or_else(|_| {
            TrustPolicy::from_json(
                format!(r#"{{"version":"1.0","trustPolicies":[{{"name":"all","registryScopes":["*"],"signatureVerification":{{"level":"{level}"}}}}]}}"#)
                    .as_bytes(),
            )
        })
        .expect("policy");
        let gate = Gate::new(
            RegistryClient::new(RegistryOptions::default()).expect("client"),
            Arc::new(policy),
            Arc::new(TrustStores::default()),
            GateOptions::default(),
        );
        let Begun::Judge(verdict, reference, _, level) = gate.statement_of(image) else {
            panic!("no statement for {image}");
        };
        conclude(
            verdict,
            &reference,
            level,
            Some(format!("sha256:{}", "1".repeat(64))),
            j,
        )
    }

    /// An index judged by its platforms, one of which its scanner quarantined (enforced), is
    /// refused at every level, as a quarantined single-platform image is.
    #[test]
    fn a_quarantined_platform_manifest_is_refused_at_every_level() {
        let rule = QuarantineRule {
            registries: Vec::new(),
            source: SourceKind::Referrer,
            enforcement: QuarantineEnforcement::Enforce,
            require_signature: false,
        };
        let image = "registry.example/team/app:v1";
        let child_digest = format!("sha256:{}", "2".repeat(64));
        for (level, child_outcome) in [
            ("strict", Outcome::Verified),
            ("audit", Outcome::Failed),
            ("skip", Outcome::Skipped),
        ] {
            let mut child = Judgement::new(child_outcome);
            child.set_quarantine(
                &rule,
                &QuarantineState::NotPassed {
                    state: "Quarantined".into(),
                    details: None,
                },
                &format!("registry.example/team/app@{child_digest}"),
            );
            let p =
                PlatformVerdict::from_judgement("linux/amd64".into(), child_digest.clone(), &child);
            let mut index = Judgement::new(p.outcome);
            index
                .reasons
                .push(format!("platform linux/amd64: {}", p.reasons.join("; ")));
            index.set_quarantine(&rule, &QuarantineState::Passed, image);
            index.platforms.push(p);
            let v = concluded(level, image, &index);
            assert_eq!(v.admission, Admission::Deny, "{level}: {v:?}");
            assert!(!v.verified, "{level}: {v:?}");
            assert!(v.pinned.is_none(), "{level}: {v:?}");
        }
        // Under `audit` enforcement it is a warning, as for the image's own state.
        let audit_rule = QuarantineRule {
            enforcement: QuarantineEnforcement::Audit,
            ..rule
        };
        let mut child = Judgement::new(Outcome::Verified);
        child.set_quarantine(
            &audit_rule,
            &QuarantineState::NotPassed {
                state: "Quarantined".into(),
                details: None,
            },
            "registry.example/team/app@sha256:22",
        );
        let mut index = Judgement::new(Outcome::Verified);
        index.platforms.push(PlatformVerdict::from_judgement(
            "linux/amd64".into(),
            child_digest,
            &child,
        ));
        assert_eq!(
            concluded("strict", image, &index).admission,
            Admission::Allow
        );
    }

    #[test]
    fn readers_with_different_credentials_never_share_a_cache_key() {
        let policy = TrustPolicy::from_json(
            br#"{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"audit"},"trustStores":["ca:x"],"trustedIdentities":["*"]}]}"#,
        )
        .expect("policy");
        let own = RegistryClient::new(RegistryOptions::default()).expect("client");
        let gate = Gate::new(
            own.clone(),
            Arc::new(policy),
            Arc::new(TrustStores::default()),
            GateOptions::default(),
        );
        let as_pod = |password: &str| {
            gate.with_registry(own.with_pull_credentials(PullCredentials {
                entries: vec![PullCredential {
                    host: "registry.example".into(),
                    path: None,
                    credential: Credential::Basic {
                        username: "team".into(),
                        password: password.into(),
                    },
                }],
                own_fallback: false,
            }))
        };
        let (a, a_again, b) = (as_pod("a"), as_pod("a"), as_pod("b"));
        let image = ImageReference::parse("registry.example/team/app:v1").expect("reference");
        let statement = &gate.policy().statements()[0];
        let key = |g: &Gate| {
            let rules = g.rules_for(&image, statement);
            (rules.reader.clone(), rules.image_key(&image, "sha256:00"))
        };
        let (own_key, a_key, a_again_key, b_key) = (key(&gate), key(&a), key(&a_again), key(&b));
        assert_eq!(own_key.0, "own");
        assert!(a_key.0.starts_with("pod:"), "{}", a_key.0);
        assert_eq!(a_key, a_again_key, "one credential, one key: shared");
        assert_ne!(
            a_key.1, b_key.1,
            "tenants with other credentials never share"
        );
        assert_ne!(a_key.1, own_key.1);
    }
}
