//! Quarantine status from the registry: has the image been checked at all?
//!
//! Two sources, chosen per registry host in the config file:
//! - [`acr`]: Azure Container Registry's quarantine-on-push, read from the ACR data-plane
//!   metadata API (`changeableAttributes.quarantineState`);
//! - [`referrer`]: a registry-neutral status artifact that a scanner or promotion job attaches to
//!   the image as an OCI referrer, newest wins; by default it counts only when it carries a
//!   Notation signature trusted by the image's trust-policy statement (an unsigned `Passed` from
//!   anyone with push rights is worth nothing).
//!
//! ```yaml
//! quarantine:
//!   - registries: ["*.azurecr.io", "registry.example:5000"]
//!     source: acr            # acr | referrer | none
//!     enforcement: enforce   # enforce | audit | off
//! ```
//! Without a matching rule: `*.azurecr.io` → acr/enforce; everything else → none.

pub mod acr;
pub mod referrer;

use serde::{Deserialize, Serialize};

/// Artifact type of the registry-neutral status artifact.
pub const ARTIFACT_TYPE_STATUS: &str = "application/vnd.vouch.quarantine.v1+json";

/// Where a registry's quarantine state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// ACR metadata API.
    Acr,
    /// Status artifact referrers.
    Referrer,
    /// No quarantine concept.
    None,
}

/// What a quarantine state that is not `Passed` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum QuarantineEnforcement {
    /// Deny.
    #[default]
    Enforce,
    /// Allow with a warning.
    Audit,
    /// Do not look.
    Off,
}

/// One `quarantine:` rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuarantineRule {
    /// Registry `host[:port]` patterns; `*` matches any run of characters.
    pub registries: Vec<String>,
    /// The source.
    pub source: SourceKind,
    /// What a non-`Passed` state does.
    #[serde(default)]
    pub enforcement: QuarantineEnforcement,
    /// Referrer source: count only status artifacts signed by an identity the image's
    /// trust-policy statement trusts (default true).
    #[serde(default = "yes")]
    pub require_signature: bool,
}

fn yes() -> bool {
    true
}

/// The rules in force, with the defaults appended.
#[derive(Debug, Clone, Default)]
pub struct QuarantineConfig {
    rules: Vec<QuarantineRule>,
}

impl QuarantineConfig {
    /// User rules first, then `*.azurecr.io` → acr/enforce. Patterns without `*` are
    /// canonicalised as image hosts are ([`crate::reference::canonical_host`]), so a rule for
    /// `127.0.0.1:5000` also applies to an image written `127.1:5000/…`.
    pub fn new(mut rules: Vec<QuarantineRule>) -> Self {
        for rule in &mut rules {
            for pattern in &mut rule.registries {
                if !pattern.contains('*') {
                    if let Ok(c) = crate::reference::canonical_host(pattern) {
                        *pattern = c;
                    }
                }
            }
        }
        rules.push(QuarantineRule {
            registries: vec!["*.azurecr.io".into()],
            source: SourceKind::Acr,
            enforcement: QuarantineEnforcement::Enforce,
            require_signature: true,
        });
        Self { rules }
    }

    /// The rule for a registry host, or `None` when quarantine does not apply there.
    pub fn rule_for(&self, registry: &str) -> Option<&QuarantineRule> {
        self.rules
            .iter()
            .find(|r| r.registries.iter().any(|p| glob(p, registry)))
            .filter(|r| r.source != SourceKind::None && r.enforcement != QuarantineEnforcement::Off)
    }

    /// A fingerprint of the rule that applies (cache keys); `none` when none does.
    pub fn fingerprint(rule: Option<&QuarantineRule>) -> String {
        match rule {
            Some(r) => format!("{:?}/{:?}/{}", r.source, r.enforcement, r.require_signature),
            None => "none".into(),
        }
    }
}

/// `*` matches any run of characters (case-insensitive, as host names are).
pub fn glob(pattern: &str, text: &str) -> bool {
    // Bytes, not chars: `*` is ASCII, and comparing UTF-8 byte by byte matches the same strings.
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi].eq_ignore_ascii_case(&t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// What the registry says about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Scanned and admitted.
    Passed,
    /// Any other state (`Quarantined`, `Failed`, or an undocumented value): not admitted.
    NotPassed {
        /// The state as the registry names it.
        state: String,
        /// Details (scanner output), if any.
        details: Option<String>,
    },
    /// The registry refuses to serve the image at all (ACR `readEnabled: false`).
    Locked(String),
    /// The state could not be read.
    Unknown(String),
}

impl State {
    /// Whether the answer may change soon (cache briefly).
    pub fn pending(&self) -> bool {
        !matches!(self, State::Passed)
            && !matches!(self, State::NotPassed { state, .. } if state == "Failed")
    }

    /// The state's name.
    pub fn name(&self) -> std::borrow::Cow<'static, str> {
        match self {
            State::Passed => "Passed".into(),
            State::NotPassed { state, .. } => state.clone().into(),
            State::Locked(_) => "Locked".into(),
            State::Unknown(_) => "unknown".into(),
        }
    }

    /// Why the image is not admitted, in words.
    pub fn reason(&self, image: &str) -> Option<String> {
        match self {
            State::Passed => None,
            State::NotPassed { state, details } => Some(match details {
                Some(d) if !d.is_empty() => format!("{image} is quarantined: state {state} ({d})"),
                _ => format!("{image} is quarantined: state {state}"),
            }),
            State::Locked(why) => Some(format!("{image} cannot be pulled: {why}")),
            State::Unknown(why) => Some(format!("quarantine status of {image} is unknown: {why}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        assert!(glob("*.azurecr.io", "contoso.azurecr.io"));
        assert!(!glob("*.azurecr.io", "azurecr.io.evil.example"));
        assert!(glob("registry.example:5000", "REGISTRY.example:5000"));
        assert!(!glob("registry.example:5000", "registry.example:5001"));
        assert!(glob("127.0.0.1:*", "127.0.0.1:43121"));
    }

    #[test]
    fn rules_apply_to_every_spelling_of_their_host() {
        let c = QuarantineConfig::new(vec![QuarantineRule {
            registries: vec!["127.0.0.1:05000".into()],
            source: SourceKind::Referrer,
            enforcement: QuarantineEnforcement::Enforce,
            require_signature: true,
        }]);
        for spelling in ["127.1:5000", "2130706433:5000", "127.0.0.1:005000"] {
            let image =
                crate::reference::ImageReference::parse(&format!("{spelling}/app:v1")).unwrap();
            assert!(c.rule_for(image.registry()).is_some(), "{spelling}");
        }
        // The default ACR rule holds whether the HTTPS port is written or not.
        let image = crate::reference::ImageReference::parse("myacr.azurecr.io:443/app:v1").unwrap();
        assert_eq!(
            c.rule_for(image.registry()).map(|r| r.source),
            Some(SourceKind::Acr)
        );
    }

    #[test]
    fn defaults_and_user_rules() {
        let c = QuarantineConfig::new(vec![QuarantineRule {
            registries: vec!["registry.example:5000".into()],
            source: SourceKind::Referrer,
            enforcement: QuarantineEnforcement::Audit,
            require_signature: true,
        }]);
        assert_eq!(c.rule_for("x.azurecr.io").unwrap().source, SourceKind::Acr);
        assert_eq!(
            c.rule_for("registry.example:5000").unwrap().source,
            SourceKind::Referrer
        );
        assert!(c.rule_for("docker.io").is_none());
        let off = QuarantineConfig::new(vec![QuarantineRule {
            registries: vec!["*.azurecr.io".into()],
            source: SourceKind::Acr,
            enforcement: QuarantineEnforcement::Off,
            require_signature: true,
        }]);
        assert!(off.rule_for("x.azurecr.io").is_none());
    }
}

/// Why a quarantine state could not be set.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
}

/// Set an image's quarantine state with the source configured for its registry: ACR's
/// metadata PATCH, or a new status artifact (signed by `signer` when given) for the referrer
/// source and for registries with no rule. Returns where it was written.
pub async fn set_state(
    registry: &crate::registry::RegistryClient,
    config: &QuarantineConfig,
    image: &str,
    state: &str,
    details: Option<&str>,
    signer: Option<&crate::notation::signer::Signer>,
) -> Result<String, SetError> {
    if !matches!(state, "Passed" | "Quarantined" | "Failed") {
        return Err(SetError::Usage(format!(
            "state {state:?} is not one of Passed, Quarantined, Failed"
        )));
    }
    let reference = crate::reference::ImageReference::parse(image)
        .map_err(|e| SetError::Usage(e.to_string()))?;
    let source = config
        .rule_for(reference.registry())
        .map(|r| r.source)
        .unwrap_or(SourceKind::Referrer);
    if source == SourceKind::Acr {
        // A quarantined image cannot be pulled, not even its manifest: use the digest given.
        let digest = match reference.digest() {
            Some(d) => d.to_string(),
            None => registry.resolve_digest(&reference).await?.digest,
        };
        acr::set(registry, &reference, &digest, state, details).await?;
        return Ok(format!(
            "ACR quarantine state of {} set to {state}",
            reference.with_digest(&digest)
        ));
    }
    let target = registry.resolve_digest(&reference).await?;
    let details = details
        .map(|d| serde_json::from_str(d).unwrap_or(serde_json::Value::String(d.to_string())));
    let body = referrer::StatusBody {
        state: state.to_string(),
        details,
        updated: time::OffsetDateTime::now_utc(),
    };
    let status = referrer::push(registry, &reference, &target, &body).await?;
    registry
        .index_referrer(&reference, &target, &status)
        .await?;
    let mut signed = "";
    if let Some(signer) = signer {
        let sig = signer
            .sign_artifact(&status, None)
            .map_err(SetError::Usage)?;
        registry
            .push_blob(&reference, crate::notation::signer::EMPTY_CONFIG)
            .await?;
        registry.push_blob(&reference, &sig.envelope).await?;
        let pushed = registry
            .push_manifest(
                &reference,
                &sig.manifest_descriptor.media_type,
                &sig.manifest,
                None,
            )
            .await?;
        let mut d = sig.manifest_descriptor.clone();
        d.digest = pushed.digest;
        registry.index_referrer(&reference, &status, &d).await?;
        signed = ", signed";
    }
    Ok(format!(
        "quarantine status artifact {} ({state}{signed}) attached to {}",
        status.digest,
        reference.with_digest(&target.digest)
    ))
}
