//! Multi-platform images: how an image index (or Docker manifest list) is judged, per scope.
//!
//! A tag of a multi-platform image names an index; each node pulls the manifest listed for its
//! own platform. Pipelines sign either the index or each platform manifest, so how an index
//! verifies is a choice per scope ([`PlatformMode`]). Notation's trust policy has no field for
//! it, so it is a vouch setting beside the policy (`platforms:` in the config file), with scopes
//! written and matched as trust-policy `registryScopes` are, and notation's own behaviour
//! ([`PlatformMode::Index`]) as the default.
//!
//! This module owns the setting and the reading of an index: which of its entries a node could
//! pull ([`platform_manifests`]) — image manifests, flattened through nested indexes; not
//! attestations (BuildKit's `attestation-manifest` entries) nor other artifacts listed for a
//! platform no node runs (`unknown/unknown`), which runtimes never pull — bounded in depth and
//! count. The gate judges each of them as it judges any
//! manifest.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::notation::trust_policy::RegistryScopes;
use crate::reference::ImageReference;
use crate::registry::digest::short;
use crate::registry::{
    Descriptor, RegistryClient, RegistryError, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX,
    OCI_MANIFEST,
};

/// Most entries read from an index and the indexes nested in it, all together.
pub const MAX_INDEX_ENTRIES: usize = 128;
/// Most levels of indexes: an index may list indexes, which list only manifests.
pub const MAX_INDEX_DEPTH: usize = 2;
/// Most indexes read for one image (the index and those nested in it): each is a request.
pub const MAX_INDEXES: usize = 16;

/// How an image whose reference names an index verifies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlatformMode {
    /// The digest the reference names must carry a signature that verifies (notation's
    /// behaviour): pipelines that sign the index.
    #[default]
    Index,
    /// The index verifies, or else every platform manifest it lists does: pipelines that sign
    /// either way, or are moving from one to the other.
    IndexOrPlatforms,
    /// Every platform manifest must verify on its own; the index's signature is not enough:
    /// for nodes that pull manifests built and signed by different builders.
    Platforms,
}

impl PlatformMode {
    /// The name written in the config file.
    pub fn name(self) -> &'static str {
        match self {
            PlatformMode::Index => "index",
            PlatformMode::IndexOrPlatforms => "index-or-platforms",
            PlatformMode::Platforms => "platforms",
        }
    }
}

/// One `platforms:` entry of the config file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformRuleConfig {
    /// Scopes, as trust-policy `registryScopes` (or `["*"]`).
    pub registry_scopes: Vec<String>,
    /// How an index verifies.
    #[serde(default)]
    pub mode: PlatformMode,
    /// Only these platforms (`os/architecture[/variant]`) are required; empty: all.
    #[serde(default)]
    pub only: Vec<String>,
}

/// A validated `platforms:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformRule {
    scopes: RegistryScopes,
    /// How an index verifies.
    pub mode: PlatformMode,
    /// The required platforms; empty: every platform the index lists.
    pub only: Vec<PlatformFilter>,
}

impl PlatformRule {
    /// The default: an index verifies by its own signature, as notation verifies it.
    pub const INDEX: PlatformRule = PlatformRule {
        scopes: RegistryScopes::EMPTY,
        mode: PlatformMode::Index,
        only: Vec::new(),
    };

    /// What decides verdicts under this rule, for cache keys.
    pub fn fingerprint(&self) -> String {
        let only: Vec<String> = self.only.iter().map(ToString::to_string).collect();
        format!("{}[{}]", self.mode.name(), only.join(","))
    }

    /// Whether `platform` is required (no filter, or the filter names it). A manifest listed
    /// without a platform is always required: nothing says which nodes pull it.
    pub fn requires(&self, platform: Option<&Platform>) -> bool {
        match platform {
            None => true,
            Some(p) => self.only.is_empty() || self.only.iter().any(|f| f.matches(p)),
        }
    }
}

/// The `platforms:` entries in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformPolicy {
    rules: Vec<PlatformRule>,
}

impl PlatformPolicy {
    /// Validate the config file's entries: scopes as notation validates a statement's, each
    /// scope in one entry at most, platforms written `os/architecture[/variant]`.
    pub fn new(entries: &[PlatformRuleConfig]) -> Result<Self, String> {
        let mut rules = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let owner = format!("platforms entry {}", i + 1);
            let scopes = RegistryScopes::parse(&owner, &e.registry_scopes)?;
            let only = e
                .only
                .iter()
                .map(|p| PlatformFilter::parse(p).map_err(|why| format!("{owner}: {why}")))
                .collect::<Result<Vec<_>, _>>()?;
            if !only.is_empty() && e.mode == PlatformMode::Index {
                return Err(format!(
                    "{owner}: `only` selects platform manifests, but mode \"index\" never judges them; use mode \"index-or-platforms\" or \"platforms\""
                ));
            }
            rules.push(PlatformRule {
                scopes,
                mode: e.mode,
                only,
            });
        }
        RegistryScopes::check_disjoint(rules.iter().map(|r| &r.scopes))
            .map_err(|e| format!("platforms: {e}"))?;
        Ok(Self { rules })
    }

    /// The rule for an image's scope (`registry/repository`): the entry listing it, else the
    /// `"*"` entry, else [`PlatformRule::INDEX`].
    pub fn rule_for(&self, scope: &str) -> &PlatformRule {
        static DEFAULT: PlatformRule = PlatformRule::INDEX;
        RegistryScopes::select(&self.rules, |r| &r.scopes, scope).unwrap_or(&DEFAULT)
    }
}

/// A platform as an index entry describes it (OCI image-index `platform`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`, …).
    #[serde(default)]
    pub architecture: String,
    /// Operating system (`linux`, `windows`, …).
    #[serde(default)]
    pub os: String,
    /// CPU variant (`v8`, `v7`, …).
    #[serde(default)]
    pub variant: Option<String>,
    /// Operating system version (Windows).
    #[serde(default, rename = "os.version")]
    pub os_version: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            write!(f, "/{v}")?;
        }
        if let Some(v) = self.os_version.as_deref().filter(|v| !v.is_empty()) {
            write!(f, " ({v})")?;
        }
        Ok(())
    }
}

/// A required platform, `os/architecture[/variant]`, matched as containerd matches platforms:
/// architecture aliases normalised (`x86_64` is `amd64`, `aarch64` is `arm64`), `arm64`'s
/// variant `v8` when unstated, the variant compared only when the filter names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformFilter {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl PlatformFilter {
    /// Parse `os/architecture[/variant]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= 32
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if valid(os) && valid(arch) => {
                let variant = parts.get(2).copied();
                if variant.is_some_and(|v| !valid(v)) {
                    return Err(format!("platform {text:?} has an invalid variant"));
                }
                let architecture = normalise_architecture(arch);
                Ok(Self {
                    os: os.to_ascii_lowercase(),
                    variant: variant.map(|v| normalise_variant(&architecture, Some(v))),
                    architecture,
                })
            }
            _ => Err(format!(
                "platform {text:?} is not of the form os/architecture[/variant], e.g. linux/amd64 or linux/arm/v7"
            )),
        }
    }

    /// Whether an index entry's platform is this one.
    pub fn matches(&self, p: &Platform) -> bool {
        let architecture = normalise_architecture(&p.architecture);
        if p.os.to_ascii_lowercase() != self.os || architecture != self.architecture {
            return false;
        }
        match &self.variant {
            None => true,
            Some(want) => *want == normalise_variant(&architecture, p.variant.as_deref()),
        }
    }
}

impl fmt::Display for PlatformFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalise_architecture(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "i386" => "386".into(),
        other => other.into(),
    }
}

fn normalise_variant(arch: &str, variant: Option<&str>) -> String {
    let v = variant.unwrap_or_default().to_ascii_lowercase();
    match (arch, v.as_str()) {
        ("arm64", "" | "8" | "v8") => "v8".into(),
        ("arm", "" | "7") => "v7".into(),
        ("arm", "5" | "6" | "8") => format!("v{v}"),
        _ => v,
    }
}

/// One entry of an image index.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexEntry {
    media_type: String,
    #[serde(deserialize_with = "crate::registry::digest::checked")]
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct ImageIndex {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

/// A platform manifest an index lists, which a node could pull.
#[derive(Debug, Clone)]
pub struct PlatformManifest {
    /// Its platform, as the index states it; `None` when the index states none.
    pub platform: Option<Platform>,
    /// The manifest.
    pub descriptor: Descriptor,
}

impl PlatformManifest {
    /// The platform as shown in verdicts (`linux/arm64/v8`, or `unknown platform`).
    pub fn label(&self) -> String {
        self.platform
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "unknown platform".into())
    }
}

/// What an index lists for the nodes.
#[derive(Debug, Clone, Default)]
pub struct PlatformSelection {
    /// The platform manifests the rule requires, in index order, nested indexes flattened.
    pub required: Vec<PlatformManifest>,
    /// Entries not judged, and why (attestations, artifacts, platforms outside the filter).
    pub ignored: Vec<String>,
}

/// Why an index could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The registry did not serve it.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Not an image index.
    #[error("index {digest} is malformed: {reason}")]
    Malformed {
        /// The index.
        digest: String,
        /// What is wrong.
        reason: String,
    },
    /// Over [`MAX_INDEX_ENTRIES`].
    #[error("index {digest} lists more than {MAX_INDEX_ENTRIES} manifests (with its nested indexes); vouch judges at most {MAX_INDEX_ENTRIES}")]
    TooManyEntries {
        /// The index.
        digest: String,
    },
    /// Over [`MAX_INDEXES`].
    #[error(
        "index {digest} nests more than {MAX_INDEXES} indexes; vouch reads at most {MAX_INDEXES}"
    )]
    TooManyIndexes {
        /// The index.
        digest: String,
    },
    /// Over [`MAX_INDEX_DEPTH`].
    #[error("index {digest} nests indexes more than {MAX_INDEX_DEPTH} levels deep; vouch reads at most {MAX_INDEX_DEPTH}")]
    TooDeep {
        /// The innermost index refused.
        digest: String,
    },
}

/// Whether a manifest media type is an index (OCI image index or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// The platform manifests of `index` the rule requires: entries read in order, nested indexes
/// followed to [`MAX_INDEX_DEPTH`], at most [`MAX_INDEX_ENTRIES`] entries in all.
pub async fn platform_manifests(
    registry: &RegistryClient,
    reference: &ImageReference,
    index: &Descriptor,
    rule: &PlatformRule,
) -> Result<PlatformSelection, IndexError> {
    let mut selection = PlatformSelection::default();
    let mut entries_read = 0usize;
    // Depth-first, in index order, without recursion (an async fn cannot recurse unboxed).
    let mut pending: Vec<(Descriptor, usize)> = vec![(index.clone(), 1)];
    let mut indexes_read = 0usize;
    while let Some((desc, depth)) = pending.pop() {
        indexes_read += 1;
        if indexes_read > MAX_INDEXES {
            return Err(IndexError::TooManyIndexes {
                digest: index.digest.clone(),
            });
        }
        let bytes = registry.fetch_manifest(reference, &desc).await?;
        let parsed: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|e| IndexError::Malformed {
                digest: desc.digest.clone(),
                reason: e.to_string(),
            })?;
        entries_read += parsed.manifests.len();
        if entries_read > MAX_INDEX_ENTRIES {
            return Err(IndexError::TooManyEntries {
                digest: index.digest.clone(),
            });
        }
        let mut nested = Vec::new();
        for entry in parsed.manifests {
            let descriptor = Descriptor {
                media_type: entry.media_type.clone(),
                digest: entry.digest.clone(),
                size: entry.size,
                artifact_type: entry.artifact_type.clone(),
                annotations: None,
            };
            if let Some(why) = ignored(&entry) {
                selection.ignored.push(why);
                continue;
            }
            if is_index(&entry.media_type) {
                if depth >= MAX_INDEX_DEPTH {
                    return Err(IndexError::TooDeep {
                        digest: entry.digest,
                    });
                }
                nested.push((descriptor, depth + 1));
                continue;
            }
            if !rule.requires(entry.platform.as_ref()) {
                selection.ignored.push(format!(
                    "{} ({}): not a required platform",
                    entry
                        .platform
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    short(&entry.digest)
                ));
                continue;
            }
            selection.required.push(PlatformManifest {
                platform: entry.platform,
                descriptor,
            });
        }
        pending.extend(nested.into_iter().rev());
    }
    Ok(selection)
}

/// Why a node never pulls this entry, if it does not.
///
/// Runtimes choose an entry by its platform alone (containerd's `images.Manifest`, containers/
/// image's `chooseInstance`): an annotation or `artifactType` does not keep a node from pulling
/// an entry whose platform it matches, or one stating no platform. So an attestation or
/// artifact is ignored only when its platform is one no node runs (BuildKit's
/// `unknown/unknown`); otherwise anyone who can push an index could list an unsigned manifest
/// for `linux/amd64` marked as an attestation, ahead of the signed one, and have it pulled.
fn ignored(entry: &IndexEntry) -> Option<String> {
    let what = short(&entry.digest);
    let reference_type = entry
        .annotations
        .as_ref()
        .and_then(|a| a.get("vnd.docker.reference.type"));
    let pulled_by_no_node = entry.platform.as_ref().is_some_and(|p| {
        p.os.eq_ignore_ascii_case("unknown") || p.architecture.eq_ignore_ascii_case("unknown")
    });
    if pulled_by_no_node && reference_type.is_some_and(|t| t == "attestation-manifest") {
        return Some(format!("{what}: attestation manifest"));
    }
    if let (true, Some(t)) = (pulled_by_no_node, &entry.artifact_type) {
        return Some(format!("{what}: artifact of type {t}"));
    }
    match entry.media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST | OCI_INDEX | DOCKER_LIST => None,
        other => Some(format!("{what}: not an image manifest ({other})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
            os_version: None,
        }
    }

    #[test]
    fn filters_match_as_containerd_normalises() {
        let arm64 = PlatformFilter::parse("linux/arm64").unwrap();
        assert!(arm64.matches(&p("linux", "arm64", Some("v8"))));
        assert!(arm64.matches(&p("linux", "aarch64", None)));
        assert!(!arm64.matches(&p("linux", "amd64", None)));
        let v8 = PlatformFilter::parse("linux/arm64/v8").unwrap();
        assert!(v8.matches(&p("linux", "arm64", None)));
        let v7 = PlatformFilter::parse("linux/arm/v7").unwrap();
        assert!(v7.matches(&p("linux", "arm", None)));
        assert!(!v7.matches(&p("linux", "arm", Some("v6"))));
        assert!(PlatformFilter::parse("linux/amd64")
            .unwrap()
            .matches(&p("linux", "x86_64", None)));
        assert!(!PlatformFilter::parse("windows/amd64")
            .unwrap()
            .matches(&p("linux", "amd64", None)));
        for bad in [
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "linux/am d64",
        ] {
            assert!(PlatformFilter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rules_are_chosen_by_scope_and_validated() {
        let entries: Vec<PlatformRuleConfig> = serde_yaml_ng::from_str(
            r#"
- registryScopes: ["registry.example/team/app"]
  mode: platforms
  only: ["linux/amd64"]
- registryScopes: ["*"]
  mode: index-or-platforms
"#,
        )
        .unwrap();
        let policy = PlatformPolicy::new(&entries).unwrap();
        let app = policy.rule_for("registry.example/team/app");
        assert_eq!(app.mode, PlatformMode::Platforms);
        assert!(app.requires(Some(&p("linux", "amd64", None))));
        assert!(!app.requires(Some(&p("linux", "arm64", None))));
        assert!(
            app.requires(None),
            "a manifest without a platform is required"
        );
        assert_eq!(
            policy.rule_for("registry.example/other").mode,
            PlatformMode::IndexOrPlatforms
        );
        assert_eq!(
            PlatformPolicy::default().rule_for("x/y").mode,
            PlatformMode::Index
        );
        assert_ne!(app.fingerprint(), policy.rule_for("x/y").fingerprint());

        let twice: Vec<PlatformRuleConfig> = serde_yaml_ng::from_str(
            r#"[{registryScopes: ["r.example/a"]}, {registryScopes: ["r.example/a"], mode: platforms}]"#,
        )
        .unwrap();
        let e = PlatformPolicy::new(&twice).unwrap_err();
        assert!(
            e.contains("\"r.example/a\" is present in multiple entries"),
            "{e}"
        );
        let filter_without_platforms: Vec<PlatformRuleConfig> =
            serde_yaml_ng::from_str(r#"[{registryScopes: ["*"], only: ["linux/amd64"]}]"#).unwrap();
        let e = PlatformPolicy::new(&filter_without_platforms).unwrap_err();
        assert!(e.contains("mode \"index\" never judges them"), "{e}");
        let bad_scope: Vec<PlatformRuleConfig> =
            serde_yaml_ng::from_str(r#"[{registryScopes: ["r.example/a:tag"], mode: platforms}]"#)
                .unwrap();
        let e = PlatformPolicy::new(&bad_scope).unwrap_err();
        assert!(e.contains("is not valid"), "{e}");
        let bad_mode = serde_yaml_ng::from_str::<Vec<PlatformRuleConfig>>(
            r#"[{registryScopes: ["*"], mode: every}]"#,
        );
        assert!(bad_mode.is_err());
    }

    #[test]
    fn attestations_and_artifacts_are_ignored() {
        let unknown = Some(p("unknown", "unknown", None));
        let entry = |media: &str, art: Option<&str>, annot: Option<(&str, &str)>| IndexEntry {
            media_type: media.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 1,
            platform: unknown.clone(),
            artifact_type: art.map(Into::into),
            annotations: annot.map(|(k, v)| [(k.to_string(), v.to_string())].into()),
        };
        let attestation = Some(("vnd.docker.reference.type", "attestation-manifest"));
        assert!(ignored(&entry(OCI_MANIFEST, None, None)).is_none());
        assert!(ignored(&entry(DOCKER_MANIFEST, None, None)).is_none());
        assert!(ignored(&entry(OCI_INDEX, None, None)).is_none());
        assert!(ignored(&entry(OCI_MANIFEST, None, attestation))
            .unwrap()
            .contains("attestation"));
        assert!(ignored(&entry(OCI_MANIFEST, Some("application/sbom"), None)).is_some());
        assert!(ignored(&entry("application/octet-stream", None, None)).is_some());
        // Marked as an attestation or artifact, but listed for a platform a node runs, or for
        // none (runtimes fall back to such entries): a node may pull it, so it is judged.
        for platform in [Some(p("linux", "amd64", None)), None] {
            let disguised = IndexEntry {
                platform: platform.clone(),
                ..entry(OCI_MANIFEST, None, attestation)
            };
            assert!(ignored(&disguised).is_none(), "{platform:?}");
            let artifact = IndexEntry {
                platform: platform.clone(),
                ..entry(OCI_MANIFEST, Some("application/sbom"), None)
            };
            assert!(ignored(&artifact).is_none(), "{platform:?}");
        }
    }
}
