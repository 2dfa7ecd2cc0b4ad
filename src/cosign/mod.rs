//! cosign (Sigstore) signatures, the second kind of signature the gate judges beside Notation:
//! the policy rules of the config file's `cosign:` list, and [`judge`], which finds a resolved
//! image's cosign signatures ([`discovery`]) and verifies them offline against a rule — keyed
//! ([`keyed`]) or keyless (Fulcio certificate, SCT, Rekor entry: [`bundle`]) against a local
//! Sigstore trusted root ([`trusted_root`]).
//!
//! Verification of certificates, logs and bundles is `sigstore-verify`'s (sigstore/sigstore-rust,
//! runs the Sigstore conformance suite, builds on aws-lc-rs and the RustCrypto X.509 crates vouch
//! already has). Written here: registry discovery (through vouch's client), the legacy `.sig`
//! layout and simple-signing payload, identity matching by regular expression, and the policy.
//!
//! Levels: every cosign check is enforced for the signature itself; the rule's level decides
//! the admission as for Notation (`strict` and `permissive` refuse an image whose cosign
//! signatures all fail, `audit` admits it with the failure as a warning). cosign has no
//! equivalent of Notation's expiry or revocation checks to relax, and its time proof is what
//! the certificate is judged at, so `permissive` is `strict` for cosign.

pub mod bundle;
pub mod discovery;
pub mod keyed;
pub mod simple_signing;
pub mod trusted_root;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use regex::Regex;
use serde::Deserialize;
use sigstore_verify::types::bundle::VerificationMaterialContent;
use sigstore_verify::types::Bundle;
use time::OffsetDateTime;

use crate::notation::level::{Action, LevelName};
use crate::notation::trust_policy::RegistryScopes;
use crate::notation::verifier::{CheckResult, LogEntry, SignatureKind, SignatureOutcome};
use crate::reference::ImageReference;
use crate::registry::{Descriptor, RegistryClient};
use bundle::{Artifact, Failure, Material};
use discovery::Found;
use keyed::PublicKey;
use trusted_root::TrustRoot;

/// The in-toto predicate type of a `cosign sign` signature in bundle form.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// A configuration problem in the `cosign:` list.
#[derive(Debug, thiserror::Error)]
#[error("cosign[{index}]: {reason}")]
pub struct CosignError {
    /// Which rule (0-based).
    pub index: usize,
    /// What is wrong.
    pub reason: String,
}

/// One `cosign:` rule as written in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CosignRuleConfig {
    /// Repositories the rule applies to, as trust-policy `registryScopes` (or `["*"]`).
    pub registry_scopes: Vec<String>,
    /// `strict`, `permissive` or `audit` (default `strict`).
    #[serde(default)]
    pub level: Option<String>,
    /// PEM public keys of keyed signing.
    #[serde(default)]
    pub keys: Vec<PathBuf>,
    /// Keyless identities: certificate SAN and OIDC issuer, each exact or a regular expression.
    #[serde(default)]
    pub keyless: Vec<KeylessConfig>,
    /// The Sigstore `trusted_root.json` (Fulcio, Rekor, CT logs, TSAs). Required for keyless;
    /// with keys it makes a verified Rekor entry required too.
    #[serde(default)]
    pub trusted_root: Option<PathBuf>,
    /// In-toto predicate types accepted from bundles besides `cosign sign`'s
    /// (`https://sigstore.dev/cosign/sign/v1`), e.g. attestations a pipeline signs.
    #[serde(default)]
    pub predicate_types: Vec<String>,
}

/// One keyless identity as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeylessConfig {
    /// The certificate identity (SAN email or URI), exactly.
    #[serde(default)]
    pub subject: Option<String>,
    /// The certificate identity, as a regular expression (unanchored, as cosign's).
    #[serde(default)]
    pub subject_reg_exp: Option<String>,
    /// The OIDC issuer, exactly.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The OIDC issuer, as a regular expression.
    #[serde(default)]
    pub issuer_reg_exp: Option<String>,
}

/// How a scope with both kinds of rule is judged (`signatures:` in the config file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignaturesMode {
    /// A verified Notation or cosign signature suffices.
    #[default]
    Any,
    /// Each kind configured for the scope must verify.
    All,
}

impl SignaturesMode {
    /// As written in the config file.
    pub fn name(self) -> &'static str {
        match self {
            SignaturesMode::Any => "any",
            SignaturesMode::All => "all",
        }
    }
}

/// A string matched exactly or by a regular expression.
#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    Pattern(Regex),
}

impl Matcher {
    fn new(exact: Option<&String>, pattern: Option<&String>, what: &str) -> Result<Self, String> {
        match (exact, pattern) {
            (Some(e), None) => Ok(Matcher::Exact(e.clone())),
            (None, Some(p)) => Regex::new(p)
                .map(Matcher::Pattern)
                .map_err(|e| format!("{what}RegExp {p:?} is not a regular expression: {e}")),
            (Some(_), Some(_)) => Err(format!("give {what} or {what}RegExp, not both")),
            (None, None) => Err(format!("a keyless identity needs {what} or {what}RegExp")),
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(e) => e == value,
            Matcher::Pattern(p) => p.is_match(value),
        }
    }

    fn shown(&self) -> String {
        match self {
            Matcher::Exact(e) => format!("{e:?}"),
            Matcher::Pattern(p) => format!("/{}/", p.as_str()),
        }
    }
}

/// A keyless identity: certificate SAN and OIDC issuer.
#[derive(Debug, Clone)]
pub struct KeylessIdentity {
    subject: Matcher,
    issuer: Matcher,
}

/// A loaded `cosign:` rule.
#[derive(Debug)]
pub struct CosignRule {
    /// Position in the list (0-based), shown in messages.
    pub index: usize,
    scopes: RegistryScopes,
    /// The level: what a failure means for admission.
    pub level: LevelName,
    keys: Vec<PublicKey>,
    keyless: Vec<KeylessIdentity>,
    trusted_root: Option<TrustRoot>,
    predicate_types: Vec<String>,
}

impl CosignRule {
    /// The rule's name in verdicts: `cosign[N]`.
    /// Reserved: the trust policy refuses statement names starting with `cosign[`
    /// ([`crate::notation::trust_policy::RESERVED_NAME_PREFIX`]).
    pub fn name(&self) -> String {
        format!(
            "{}{}]",
            crate::notation::trust_policy::RESERVED_NAME_PREFIX,
            self.index
        )
    }

    fn load(index: usize, c: &CosignRuleConfig) -> Result<Self, CosignError> {
        let err = |reason: String| CosignError { index, reason };
        let name = format!("cosign[{index}]");
        let scopes = RegistryScopes::parse(&name, &c.registry_scopes).map_err(err)?;
        let level = match c.level.as_deref().unwrap_or("strict") {
            "strict" => LevelName::Strict,
            "permissive" => LevelName::Permissive,
            "audit" => LevelName::Audit,
            other => {
                return Err(err(format!(
                    "level {other:?} is not one of strict, permissive, audit"
                )))
            }
        };
        let keys = c
            .keys
            .iter()
            .map(|p| PublicKey::load(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let keyless = c
            .keyless
            .iter()
            .map(|k| {
                Ok(KeylessIdentity {
                    subject: Matcher::new(
                        k.subject.as_ref(),
                        k.subject_reg_exp.as_ref(),
                        "subject",
                    )?,
                    issuer: Matcher::new(k.issuer.as_ref(), k.issuer_reg_exp.as_ref(), "issuer")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(err)?;
        if keys.is_empty() && keyless.is_empty() {
            return Err(err("a rule needs keys, keyless identities or both".into()));
        }
        if !keyless.is_empty() && c.trusted_root.is_none() {
            return Err(err(
                "keyless identities need a trustedRoot (the Fulcio CA, Rekor and CT log keys they are verified against)".into(),
            ));
        }
        let trusted_root = c
            .trusted_root
            .as_deref()
            .map(TrustRoot::load)
            .transpose()
            .map_err(err)?;
        Ok(Self {
            index,
            scopes,
            level,
            keys,
            keyless,
            trusted_root,
            predicate_types: c.predicate_types.clone(),
        })
    }

    /// What decides this rule's verdicts, for cache keys: scopes, level, key bytes, identities,
    /// trusted-root bytes and predicate types.
    fn fingerprint_material(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| crate::registry::sha256_hex(k.der.as_bytes()))
            .collect();
        let ids: Vec<String> = self
            .keyless
            .iter()
            .map(|k| format!("{}={}", k.subject.shown(), k.issuer.shown()))
            .collect();
        format!(
            "{}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.index,
            self.scopes.iter().collect::<Vec<_>>(),
            self.level,
            keys,
            ids,
            (
                self.trusted_root.as_ref().map(|r| &r.sha256),
                &self.predicate_types
            )
        )
    }

    fn accepts_predicate(&self, predicate_type: &str) -> bool {
        predicate_type == COSIGN_SIGN_PREDICATE
            || self.predicate_types.iter().any(|p| p == predicate_type)
    }
}

/// The loaded `cosign:` list.
#[derive(Debug, Default)]
pub struct CosignPolicy {
    rules: Vec<CosignRule>,
    fingerprint: String,
}

impl CosignPolicy {
    /// Load every rule, reading keys and trusted roots; errors name the rule and the file.
    pub fn load(configs: &[CosignRuleConfig]) -> Result<Self, CosignError> {
        let rules = configs
            .iter()
            .enumerate()
            .map(|(i, c)| CosignRule::load(i, c))
            .collect::<Result<Vec<_>, _>>()?;
        for i in 1..rules.len() {
            RegistryScopes::check_disjoint(rules[..=i].iter().map(|r| &r.scopes))
                .map_err(|reason| CosignError { index: i, reason })?;
        }
        let material: Vec<String> = rules.iter().map(CosignRule::fingerprint_material).collect();
        let fingerprint = crate::registry::sha256_hex(material.join("\n").as_bytes());
        Ok(Self { rules, fingerprint })
    }

    /// The rule for a normalised `registry/repository`: one that lists it, else the `"*"` rule.
    pub fn rule_for(&self, scope: &str) -> Option<&CosignRule> {
        RegistryScopes::select(&self.rules, |r| &r.scopes, scope)
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[CosignRule] {
        &self.rules
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// What decides the verdicts of every rule (key and trusted-root bytes included).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// The files a `cosign:` list reads (watched for reloads).
pub fn files(configs: &[CosignRuleConfig]) -> Vec<PathBuf> {
    configs
        .iter()
        .flat_map(|c| c.keys.iter().cloned().chain(c.trusted_root.clone()))
        .collect()
}

/// What the cosign signatures of an image came to under a rule.
#[derive(Debug, Default)]
pub struct CosignJudgement {
    /// Whether a signature verified.
    pub verified: bool,
    /// Every signature tried.
    pub signatures: Vec<SignatureOutcome>,
    /// Why none verified.
    pub reasons: Vec<String>,
    /// Set when the signatures could not be read (registry): not a failure, an error.
    pub unfinished: Option<String>,
}

/// Find and verify the cosign signatures of a resolved image under `rule`, trying at most
/// `max`; the first that verifies decides.
pub async fn judge(
    registry: &RegistryClient,
    reference: &ImageReference,
    target: &Descriptor,
    rule: &CosignRule,
    max: usize,
) -> CosignJudgement {
    let shown = reference.with_digest(&target.digest);
    let mut j = CosignJudgement::default();
    let found = match discovery::discover(registry, reference, target, max).await {
        Ok(f) => f,
        Err(e) => {
            j.unfinished = Some(format!("cosign signatures of {shown}: {e}"));
            return j;
        }
    };
    if found.found.is_empty() {
        let mut why = format!("no cosign signature found for {shown}");
        if found.other_attachments > 0 {
            why.push_str(&format!(
                " ({} .sig attachments that are not signatures skipped)",
                found.other_attachments
            ));
        }
        j.reasons.push(why);
        return j;
    }
    for f in &found.found {
        let outcome = verify_found(rule, f, &target.digest);
        let passed = outcome.verified;
        j.signatures.push(outcome);
        if passed {
            j.verified = true;
            return j;
        }
    }
    j.reasons = j
        .signatures
        .iter()
        .map(|s| {
            let d = s.digest.to_string();
            format!(
                "cosign signature {}: {}",
                crate::registry::digest::short(&d),
                s.error.as_deref().unwrap_or("failed")
            )
        })
        .collect();
    if found.truncated {
        j.reasons.insert(
            0,
            format!("cosign signature evaluation stopped: the configured limit of {max} signatures to verify per artifact exceeded"),
        );
    }
    j
}

/// An outcome being built.
struct Run {
    out: SignatureOutcome,
    checks: Vec<CheckResult>,
}

impl Run {
    fn new(manifest: &str, envelope: &str) -> Self {
        Self {
            out: SignatureOutcome {
                kind: SignatureKind::Cosign,
                ..SignatureOutcome::new(manifest, envelope)
            },
            checks: Vec::new(),
        }
    }

    fn pass(&mut self, name: &'static str) {
        self.checks.push(CheckResult {
            check: bundle::category_of(name),
            action: Action::Enforce,
            error: None,
            name: Some(Cow::Borrowed(name)),
        });
    }

    fn fail(mut self, f: Failure) -> SignatureOutcome {
        let message = format!("cosign {}: {}", f.name, f.detail);
        self.checks.push(CheckResult {
            check: f.category,
            action: Action::Enforce,
            error: Some(f.detail),
            name: Some(Cow::Borrowed(f.name)),
        });
        self.out.error = Some(message);
        self.finish()
    }

    /// The log entry, and as the signing time the time the verifier authenticated (a SET
    /// covers `integratedTime`, an inclusion proof alone does not; else a verified RFC 3161
    /// time), never the entry's unauthenticated field.
    fn log_entry(&mut self, entry: LogEntry, result: &sigstore_verify::VerificationResult) {
        let proven = result
            .integrated_time()
            .or_else(|| result.verified_timestamps().iter().min().copied());
        self.out.signing_time =
            proven.and_then(|t| OffsetDateTime::from_unix_timestamp(t.as_second()).ok());
        self.out.log_entry = Some(Box::new(entry));
    }

    fn finish(mut self) -> SignatureOutcome {
        self.out.verified = self.out.error.is_none();
        self.out.checks = self.checks.into();
        self.out
    }
}

/// Verify one found signature under `rule` against the image digest it must bind: what
/// [`judge`] does with each signature discovery finds. Public so the Sigstore conformance
/// cases and other bundles that sign blobs, not images, are tested at the layer they exercise
/// (a [`Found::Bundle`] with the artifact's digest); the outcome's checks name what passed
/// and its error the check that failed.
pub fn verify_found(rule: &CosignRule, found: &Found, image_digest: &str) -> SignatureOutcome {
    match found {
        Found::Legacy {
            manifest,
            payload,
            annotations,
        } => {
            let run = Run::new(manifest, discovery::SIMPLE_SIGNING);
            verify_legacy(run, rule, payload, annotations, image_digest)
        }
        Found::Bundle {
            manifest,
            media_type,
            bytes,
        } => verify_bundle(Run::new(manifest, media_type), rule, bytes, image_digest),
    }
}

fn verify_legacy(
    mut run: Run,
    rule: &CosignRule,
    payload: &[u8],
    annotations: &BTreeMap<String, String>,
    image_digest: &str,
) -> SignatureOutcome {
    let Some(encoded) = annotations.get(bundle::ANNOTATION_SIGNATURE) else {
        return run.fail(Failure::new(
            "signature",
            format!(
                "the layer has no {} annotation",
                bundle::ANNOTATION_SIGNATURE
            ),
        ));
    };
    let Ok(signature) = B64.decode(encoded.trim()) else {
        return run.fail(Failure::new(
            "signature",
            format!(
                "the {} annotation is not base64",
                bundle::ANNOTATION_SIGNATURE
            ),
        ));
    };
    let certificate = annotations.get(bundle::ANNOTATION_CERTIFICATE);
    if let Some(key) = rule.keys.iter().find(|k| k.verifies(payload, &signature)) {
        run.pass("signature");
        run.out.signer = Some(key.label());
        if let Some(root) = &rule.trusted_root {
            match bundle::legacy_to_bundle(payload, &signature, annotations, Material::Key) {
                Ok(Some((b, entry))) => {
                    match bundle::verify_keyed(&root.verifier, &b, &Artifact::Bytes(payload), &key.der) {
                        Ok(result) => {
                            run.pass("transparencyLog");
                            run.log_entry(entry, &result);
                        }
                        Err(f) => return run.fail(f),
                    }
                }
                Ok(None) => {
                    return run.fail(Failure::new(
                        "transparencyLog",
                        format!(
                            "the signature carries no Rekor entry ({} annotation), and the rule's trustedRoot requires a verified one",
                            bundle::ANNOTATION_BUNDLE
                        ),
                    ))
                }
                Err(f) => return run.fail(f),
            }
        }
    } else if let (Some(leaf), false) = (certificate, rule.keyless.is_empty()) {
        let Some(root) = &rule.trusted_root else {
            return run.fail(Failure::new("trustedRoot", "the rule names no trustedRoot"));
        };
        let material = Material::Certificate {
            leaf,
            chain: annotations
                .get(bundle::ANNOTATION_CHAIN)
                .map(String::as_str),
        };
        let (b, entry) = match bundle::legacy_to_bundle(payload, &signature, annotations, material) {
            Ok(Some(v)) => v,
            Ok(None) => {
                return run.fail(Failure::new(
                    "transparencyLog",
                    format!(
                        "the keyless signature carries no Rekor entry ({} annotation) to prove when it was made",
                        bundle::ANNOTATION_BUNDLE
                    ),
                ))
            }
            Err(f) => return run.fail(f),
        };
        match bundle::verify_keyless(&root.verifier, &b, &Artifact::Bytes(payload)) {
            Ok(result) => {
                for name in bundle::passed_checks(&result, true) {
                    run.pass(name);
                }
                run.log_entry(entry, &result);
                if let Err(f) = match_identity(&mut run, rule, &result) {
                    return run.fail(f);
                }
            }
            Err(f) => return run.fail(f),
        }
    } else {
        let mut why = if rule.keys.is_empty() {
            "the signature carries no certificate, and the rule has no keys".to_string()
        } else {
            format!(
                "no configured key verifies the signature over the payload ({} tried)",
                rule.keys.len()
            )
        };
        if certificate.is_some() && rule.keyless.is_empty() {
            why.push_str("; it carries a certificate, but the rule has no keyless identities");
        }
        return run.fail(Failure::new("signature", why));
    }
    match simple_signing::parse(payload) {
        Ok(p) => {
            run.pass("payload");
            match simple_signing::check_digest(&p, image_digest) {
                Ok(()) => run.pass("payloadDigest"),
                Err(e) => return run.fail(Failure::new("payloadDigest", e)),
            }
        }
        Err(e) => return run.fail(Failure::new("payload", e)),
    }
    run.finish()
}

fn verify_bundle(
    mut run: Run,
    rule: &CosignRule,
    bytes: &[u8],
    image_digest: &str,
) -> SignatureOutcome {
    let parsed = std::str::from_utf8(bytes)
        .map_err(|e| e.to_string())
        .and_then(|t| Bundle::from_json(t).map_err(|e| e.to_string()));
    let b = match parsed {
        Ok(b) => b,
        Err(e) => {
            return run.fail(Failure::new(
                "bundle",
                format!("not a Sigstore bundle: {e}"),
            ))
        }
    };
    match bundle::predicate_type(&b) {
        Some(Ok(p)) if !rule.accepts_predicate(&p) => {
            return run.fail(Failure::new(
                "payload",
                format!(
                    "the bundle's in-toto predicateType {p:?} is not a cosign signature ({COSIGN_SIGN_PREDICATE}) nor one of the rule's predicateTypes"
                ),
            ))
        }
        Some(Err(f)) => return run.fail(f),
        _ => {}
    }
    let Some(root) = &rule.trusted_root else {
        return run.fail(Failure::new(
            "trustedRoot",
            "a Sigstore bundle is verified against a trustedRoot, and the rule names none",
        ));
    };
    let artifact = match bundle::image_artifact(image_digest) {
        Ok(a) => a,
        Err(f) => return run.fail(f),
    };
    let entry = bundle::log_entry_of(&b);
    if matches!(
        b.verification_material.content,
        VerificationMaterialContent::PublicKey(_)
    ) {
        if rule.keys.is_empty() {
            return run.fail(Failure::new(
                "signature",
                "the bundle is signed with a key, and the rule has no keys",
            ));
        }
        let mut last = None;
        for key in &rule.keys {
            match bundle::verify_keyed(&root.verifier, &b, &artifact, &key.der) {
                Ok(result) => {
                    for name in bundle::passed_checks(&result, false) {
                        run.pass(name);
                    }
                    run.pass("payloadDigest");
                    run.out.signer = Some(key.label());
                    if let Some(e) = entry {
                        run.log_entry(e, &result);
                    }
                    return run.finish();
                }
                Err(f) => last = Some(f),
            }
        }
        let f = match last {
            Some(f) if f.name != "signature" => f,
            _ => Failure::new(
                "signature",
                format!(
                    "no configured key verifies the bundle ({} tried)",
                    rule.keys.len()
                ),
            ),
        };
        return run.fail(f);
    }
    if rule.keyless.is_empty() {
        return run.fail(Failure::new(
            "signature",
            "the bundle is signed with a certificate, and the rule has no keyless identities",
        ));
    }
    match bundle::verify_keyless(&root.verifier, &b, &artifact) {
        Ok(result) => {
            for name in bundle::passed_checks(&result, true) {
                run.pass(name);
            }
            run.pass("payloadDigest");
            if let Some(e) = entry {
                run.log_entry(e, &result);
            }
            if let Err(f) = match_identity(&mut run, rule, &result) {
                return run.fail(f);
            }
            run.finish()
        }
        Err(f) => run.fail(f),
    }
}

/// The verified certificate's identity and issuer against the rule's keyless identities.
fn match_identity(
    run: &mut Run,
    rule: &CosignRule,
    result: &sigstore_verify::VerificationResult,
) -> Result<(), Failure> {
    let subject = result.identity().map(|i| i.as_str().to_string());
    let issuer = result.issuer().map(str::to_string);
    run.out.signer = subject.clone();
    run.out.issuer = issuer.clone();
    let (Some(subject), Some(issuer)) = (subject, issuer) else {
        return Err(Failure::new(
            "identity",
            "the certificate names no identity (SAN) or no OIDC issuer",
        ));
    };
    let subject_matches: Vec<&KeylessIdentity> = rule
        .keyless
        .iter()
        .filter(|k| k.subject.matches(&subject))
        .collect();
    if subject_matches.is_empty() {
        let wanted: Vec<String> = rule.keyless.iter().map(|k| k.subject.shown()).collect();
        return Err(Failure::new(
            "identity",
            format!(
                "the certificate identity {subject:?} matches no keyless subject of the rule ({})",
                wanted.join(", ")
            ),
        ));
    }
    run.pass("identity");
    if !subject_matches.iter().any(|k| k.issuer.matches(&issuer)) {
        let wanted: Vec<String> = subject_matches.iter().map(|k| k.issuer.shown()).collect();
        return Err(Failure::new(
            "issuer",
            format!(
                "the certificate's OIDC issuer {issuer:?} is not the rule's issuer for {subject:?} ({})",
                wanted.join(", ")
            ),
        ));
    }
    run.pass("issuer");
    Ok(())
}
