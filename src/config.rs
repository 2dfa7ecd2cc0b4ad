//! One configuration file for `serve`, `audit` and `verify` (`--config FILE`, YAML); command-line
//! flags override it. Unknown keys are refused with the key named, so a typo at 02:00 is a clear
//! start-up error rather than a silently ignored setting.
//!
//! ```yaml
//! trustPolicy: /etc/vouch/policy/trustpolicy.json
//! trustStore: /etc/vouch/truststore
//! insecureRegistries: ["registry.local:5000"]
//! dockerConfig: /etc/vouch/registry/config.json
//! maxSignatures: 100
//! serve:
//!   listen: 0.0.0.0:8443
//!   tlsCert: /etc/vouch/tls/tls.crt
//!   tlsKey: /etc/vouch/tls/tls.key
//!   deadline: 8s
//!   enforcement: enforce      # or dryrun
//!   maxConcurrency: 512     # requests reading their bodies at once (1/8, at most 8, per connection)
//!   maxPending: 4096        # requests waiting for verdicts; more are shed (fail-closed answer)
//!   maxConnections: 1000    # at the cap an idle or never-answered connection is closed for a new one
//!   readTimeout: 5s         # TLS handshake + first request headers; each HTTP/1.1 header; body
//!   idleTimeout: 60s        # HTTP/2 connection without a request
//!   logFormat: json
//! quarantine:
//!   - registries: ["*.azurecr.io"]
//!     source: acr            # acr | referrer | none
//!     enforcement: enforce   # enforce | audit | off
//! revocation:                # OCSP and CRL checks of signing chains
//!   ocspTimeout: 2s          # one responder (notation's default)
//!   crlTimeout: 5s           # one CRL download (notation's default)
//!   crlCacheBytes: 268435456 # CRLs kept in memory, each until its nextUpdate
//!   offlineCrls: /etc/vouch/crls   # DER CRLs used when a distribution point cannot be fetched
//!   crlCacheDir: /var/cache/vouch/crl  # CRLs on disk, notation's layout (verify: notation's own)
//!   fetch: true              # false: no network, only offlineCrls (air-gapped clusters)
//! cosign:                  # cosign (Sigstore) signatures, per scope (crate::cosign)
//!   - registryScopes: ["registry.example/team/app"]
//!     level: strict          # strict | permissive | audit
//!     keys: ["/etc/vouch/cosign/release.pub"]
//!     keyless: [{issuer: "https://token.actions.githubusercontent.com", subjectRegExp: "^https://github.com/org/app/"}]
//!     trustedRoot: /etc/vouch/sigstore/trusted_root.json
//! signatures: any            # any | all: with both a Notation statement and a cosign rule
//! cache:
//!   allowTtl: 10m
//!   denyTtl: 30s
//!   pendingTtl: 30s
//!   digestTtl: 30s
//!   staleIfError: 1h
//!   redis: {url: "redis://vouch-redis:6379", timeout: 50ms}
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::admission::Enforcement;
use crate::cache::{CacheSettings, VerdictCache};
use crate::cosign::{CosignPolicy, CosignRuleConfig, SignaturesMode};
use crate::gate::{Gate, GateOptions};
use crate::metrics::Metrics;
use crate::notation::revocation::{Checker, RevocationSettings};
use crate::notation::trust_policy::TrustPolicy;
use crate::notation::trust_store::TrustStores;
use crate::platforms::{PlatformPolicy, PlatformRuleConfig};
use crate::quarantine::{QuarantineConfig, QuarantineRule};
use crate::registry::auth::CredentialSource;
use crate::registry::{RegistryClient, RegistryOptions};
use crate::tenancy::namespaces::{NamespaceMatcher, NamespaceTrustConfig};
use crate::tenancy::PullCredentialsMode;
use crate::yaml::{Duplicates, Limits};

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A configuration problem (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("config {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The trust policy or a trust store is invalid.
    #[error("{0}")]
    Policy(String),
    /// Anything else.
    #[error("{0}")]
    Invalid(String),
}

/// The configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Notation trust policy document.
    pub trust_policy: Option<PathBuf>,
    /// Trust store root (holding `x509/`).
    pub trust_store: Option<PathBuf>,
    /// Registries reached over plain HTTP.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Docker `config.json` with registry credentials.
    pub docker_config: Option<PathBuf>,
    /// Most signatures evaluated per image.
    pub max_signatures: Option<usize>,
    /// Webhook settings.
    #[serde(default)]
    pub serve: ServeConfig,
    /// Verdict cache settings.
    #[serde(default)]
    pub cache: CacheSettings,
    /// Quarantine sources per registry.
    #[serde(default)]
    pub quarantine: Vec<QuarantineRule>,
    /// OCSP and CRL checks.
    #[serde(default)]
    pub revocation: RevocationSettings,
    /// Trust per namespace: mappings tried in order before the cluster-wide policy.
    #[serde(default)]
    pub namespaces: Vec<NamespaceTrustConfig>,
    /// cosign (Sigstore) signature rules, per scope ([`crate::cosign`]).
    #[serde(default)]
    pub cosign: Vec<CosignRuleConfig>,
    /// `any` (a verified Notation or cosign signature suffices) or `all` (each kind configured
    /// for the scope must verify).
    #[serde(default)]
    pub signatures: SignaturesMode,
    /// How multi-platform images are judged, per scope ([`crate::platforms`]).
    #[serde(default)]
    pub platforms: Vec<PlatformRuleConfig>,
}

/// The `serve:` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServeConfig {
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Time allowed for one admission request.
    #[serde(default, with = "humantime_serde")]
    pub deadline: Option<Duration>,
    /// `enforce` or `dryrun`.
    pub enforcement: Option<Enforcement>,
    /// Admission requests reading and decoding their bodies at once.
    pub max_concurrency: Option<usize>,
    /// Admission requests waiting for verdicts at once; more are shed with the fail-closed
    /// answer.
    pub max_pending: Option<usize>,
    /// Open connections at most.
    pub max_connections: Option<usize>,
    /// Time for a TLS handshake plus first request headers, later HTTP/1.1 request headers,
    /// and a request body.
    #[serde(default, with = "humantime_serde")]
    pub read_timeout: Option<Duration>,
    /// HTTP/2 connections with no request for this long are closed.
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// How often policy, trust store and certificate files are checked for changes.
    #[serde(default, with = "humantime_serde")]
    pub reload_interval: Option<Duration>,
    /// What `POST /mutate` pins.
    #[serde(default)]
    pub mutate: MutateSettings,
    /// Whose credentials read a pod's images: `own` (default), `pod` or `pod-only`.
    pub pull_credentials: Option<PullCredentialsMode>,
}

/// The `serve.mutate:` section: what the mutating webhook rewrites to the verified digest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MutateSettings {
    /// Also pin the pod templates of workloads (Deployments, StatefulSets, DaemonSets, Jobs,
    /// CronJobs, ReplicaSets, ReplicationControllers). Off by default: a template rewritten by
    /// the cluster drifts from what a GitOps tool applied. Pods are always pinned.
    #[serde(default)]
    pub templates: bool,
}

impl Config {
    /// Read a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = crate::files::read_to_string(path, MAX_CONFIG_BYTES).map_err(|e| {
            ConfigError::File {
                path: e.path,
                reason: e.problem.to_string(),
            }
        })?;
        Self::from_yaml(&text).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Parse configuration YAML with the manifests' reader (limits, merge keys), refusing a key
    /// written twice; an error names the setting's path (`serve.deadline: ...`).
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let limits = Limits {
            max_bytes: MAX_CONFIG_BYTES as usize,
            ..Limits::MANIFEST
        };
        let value = crate::yaml::to_json(text, &limits, Duplicates::Refuse)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if value.is_null() {
            return Ok(Self::default());
        }
        serde_path_to_error::deserialize(value).map_err(|e| ConfigError::Invalid(e.to_string()))
    }
}

/// What every command needs to build the verification engine, after flags and config are merged.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Trust policy file.
    pub trust_policy: PathBuf,
    /// Trust store root.
    pub trust_store: PathBuf,
    /// Plain-HTTP registries.
    pub insecure_registries: Vec<String>,
    /// Docker config for credentials.
    pub docker_config: Option<PathBuf>,
    /// Signature limit per image.
    pub max_signatures: usize,
    /// Verdict cache settings.
    pub cache: CacheSettings,
    /// Quarantine rules (defaults appended by [`QuarantineConfig::new`]).
    pub quarantine: Vec<QuarantineRule>,
    /// OCSP and CRL settings.
    pub revocation: RevocationSettings,
    /// How multi-platform images are judged.
    pub platforms: PlatformPolicy,
    /// The `cosign:` rules as written (keys and trusted roots are read with the trust store).
    pub cosign: Vec<CosignRuleConfig>,
    /// `signatures: any|all`.
    pub signatures: SignaturesMode,
    /// Trust per namespace (`namespaces:`), in order.
    pub namespaces: Vec<NamespaceTrustConfig>,
}

/// A gate per trust policy: the cluster-wide one and one per `namespaces:` mapping, sharing
/// one verdict cache, registry client and revocation checker (each statement's cache
/// fingerprint covers its policy document and stores, so their verdicts never mix).
#[derive(Clone)]
pub struct Gates {
    /// The cluster-wide policy's gate.
    pub cluster: Arc<Gate>,
    /// Each mapping's matcher and gate, in order.
    pub namespaces: Vec<(NamespaceMatcher, Arc<Gate>)>,
}

/// What verdicts, logs and reports call the cluster-wide policy.
pub const CLUSTER_POLICY: &str = "cluster";

impl Gates {
    /// The gate of mapping `index` (`None`: the cluster-wide one) and the mapping's name.
    pub fn get(&self, index: Option<usize>) -> (&Arc<Gate>, &str) {
        match index.and_then(|i| self.namespaces.get(i)) {
            Some((m, g)) => (g, m.name.as_str()),
            None => (&self.cluster, CLUSTER_POLICY),
        }
    }

    /// Matchers in order.
    pub fn matchers(&self) -> impl Iterator<Item = &NamespaceMatcher> {
        self.namespaces.iter().map(|(m, _)| m)
    }
}

/// Notation's configuration directory (`$NOTATION_CONFIG`, else `$XDG_CONFIG_HOME/notation` or
/// `~/.config/notation`).
pub fn notation_config_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("NOTATION_CONFIG") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("notation"))
}

impl EngineSettings {
    /// Merge flags over the config file over notation's defaults.
    pub fn resolve(
        config: &Config,
        trust_policy: Option<PathBuf>,
        trust_store: Option<PathBuf>,
        insecure_registries: Vec<String>,
        docker_config: Option<PathBuf>,
        max_signatures: Option<usize>,
    ) -> Result<Self, ConfigError> {
        let notation = notation_config_dir();
        let trust_policy = match trust_policy.or_else(|| config.trust_policy.clone()) {
            Some(p) => p,
            None => {
                let dir = notation.clone().ok_or_else(|| {
                    ConfigError::Invalid(
                        "no trust policy given (--trust-policy or trustPolicy) and no notation configuration directory found".into(),
                    )
                })?;
                let oci = dir.join("trustpolicy.oci.json");
                if oci.exists() {
                    oci
                } else {
                    dir.join("trustpolicy.json")
                }
            }
        };
        let trust_store = match trust_store.or_else(|| config.trust_store.clone()) {
            Some(p) => p,
            None => notation
                .ok_or_else(|| {
                    ConfigError::Invalid(
                        "no trust store given (--trust-store or trustStore) and no notation configuration directory found".into(),
                    )
                })?
                .join("truststore"),
        };
        let mut insecure = config.insecure_registries.clone();
        insecure.extend(insecure_registries);
        let max_signatures = max_signatures.or(config.max_signatures).unwrap_or(100);
        if max_signatures == 0 {
            return Err(ConfigError::Invalid(
                "maxSignatures must be at least 1".into(),
            ));
        }
        Ok(Self {
            trust_policy,
            trust_store,
            insecure_registries: insecure,
            docker_config: docker_config.or_else(|| config.docker_config.clone()),
            max_signatures,
            cache: config.cache.clone(),
            quarantine: config.quarantine.clone(),
            revocation: config.revocation.clone(),
            namespaces: config.namespaces.clone(),
            platforms: PlatformPolicy::new(&config.platforms).map_err(ConfigError::Invalid)?,
            cosign: config.cosign.clone(),
            signatures: config.signatures,
        })
    }

    /// These settings with mapping `index`'s policy and store in place of the cluster-wide
    /// ones.
    fn for_mapping(&self, index: usize) -> Option<Self> {
        let m = self.namespaces.get(index)?;
        Some(Self {
            trust_policy: m.trust_policy.clone(),
            trust_store: m.trust_store.clone(),
            namespaces: Vec::new(),
            ..self.clone()
        })
    }

    /// Every trust policy file and store these settings read (what a reload watches).
    pub fn trust_paths(&self) -> Vec<PathBuf> {
        let mut out = vec![self.trust_policy.clone(), self.trust_store.clone()];
        for m in &self.namespaces {
            out.push(m.trust_policy.clone());
            out.push(m.trust_store.clone());
        }
        // cosign keys and trusted roots reload with the trust store.
        out.extend(crate::cosign::files(&self.cosign));
        out
    }

    /// The cluster-wide gate and one per `namespaces:` mapping, all validated (a broken
    /// mapping document is a start-up error naming the mapping), sharing `cache` and
    /// `revocation`. With `previous` (a reload), a mapping whose documents no longer load
    /// keeps its previous gate and the problem is returned beside the result.
    pub fn gates(
        &self,
        registry: RegistryClient,
        deadline: Duration,
        metrics: Option<Arc<Metrics>>,
        cache: Arc<VerdictCache>,
        revocation: Checker,
        previous: Option<&Gates>,
    ) -> Result<(Gates, Vec<String>), ConfigError> {
        let mut problems = Vec::new();
        let build = |s: &EngineSettings| {
            s.gate_with_cache(
                registry.clone(),
                deadline,
                metrics.clone(),
                cache.clone(),
                revocation.clone(),
            )
        };
        let cluster = match (build(self), previous) {
            (Ok(g), _) => Arc::new(g),
            (Err(e), Some(p)) => {
                problems.push(format!("{CLUSTER_POLICY}: {e}"));
                p.cluster.clone()
            }
            (Err(e), None) => return Err(e),
        };
        let mut namespaces = Vec::new();
        for (i, config) in self.namespaces.iter().enumerate() {
            let matcher = NamespaceMatcher::new(i, config)
                .map_err(|e| ConfigError::Invalid(format!("namespaces: {e}")))?;
            let settings = self
                .for_mapping(i)
                .ok_or_else(|| ConfigError::Invalid(format!("namespaces[{i}] vanished")))?;
            let gate = match (build(&settings), previous.and_then(|p| p.namespaces.get(i))) {
                (Ok(g), _) => Arc::new(g),
                (Err(e), Some((_, old))) => {
                    problems.push(format!("namespace mapping {}: {e}", matcher.name));
                    old.clone()
                }
                (Err(e), None) => {
                    return Err(ConfigError::Policy(format!(
                        "namespace mapping {}: {e}",
                        matcher.name
                    )))
                }
            };
            namespaces.push((matcher, gate));
        }
        Ok((
            Gates {
                cluster,
                namespaces,
            },
            problems,
        ))
    }

    /// Load and validate the trust policy and every trust store it names.
    pub fn load_trust(&self) -> Result<(Arc<TrustPolicy>, Arc<TrustStores>), ConfigError> {
        let policy = TrustPolicy::load(&self.trust_policy)
            .map_err(|e| ConfigError::Policy(e.to_string()))?;
        let stores = TrustStores::load(&self.trust_store, policy.trust_store_refs())
            .map_err(|e| ConfigError::Policy(e.to_string()))?;
        Ok((Arc::new(policy), Arc::new(stores)))
    }

    /// The registry client these settings describe.
    pub fn registry_client(
        &self,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<RegistryClient, ConfigError> {
        self.registry_client_with(metrics, Default::default())
    }

    /// The registry client, with explicit credentials (pull secrets) taking precedence.
    pub fn registry_client_with(
        &self,
        metrics: Option<Arc<Metrics>>,
        explicit: std::collections::HashMap<String, crate::registry::auth::Credential>,
    ) -> Result<RegistryClient, ConfigError> {
        RegistryClient::new(RegistryOptions {
            insecure_registries: self.insecure_registries.clone(),
            credentials: CredentialSource {
                docker_config: self.docker_config.clone(),
                explicit,
                azure: crate::registry::auth::AzureWorkloadIdentity::from_env(),
                // ACR's own hosts, and any registry a quarantine rule reads as ACR.
                azure_registries: crate::registry::auth::ACR_HOSTS
                    .iter()
                    .map(|h| h.to_string())
                    .chain(
                        self.quarantine
                            .iter()
                            .filter(|r| r.source == crate::quarantine::SourceKind::Acr)
                            .flat_map(|r| r.registries.iter().cloned()),
                    )
                    .collect(),
            },
            metrics,
            ..Default::default()
        })
        .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The revocation checker these settings describe (its caches live as long as it does:
    /// make one per process and share it across policy reloads).
    pub fn revocation_checker(&self, metrics: Option<Arc<Metrics>>) -> Checker {
        Checker::new(self.revocation.clone(), metrics)
    }

    /// A gate over freshly loaded trust material, with a new cache and revocation checker.
    pub fn gate(
        &self,
        registry: RegistryClient,
        deadline: Duration,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Gate, ConfigError> {
        let cache = Arc::new(VerdictCache::new(self.cache.clone(), metrics.clone()));
        let revocation = self.revocation_checker(metrics.clone());
        self.gate_with_cache(registry, deadline, metrics, cache, revocation)
    }

    /// A gate over freshly loaded trust material that shares `cache` and `revocation` (policy
    /// reloads).
    pub fn gate_with_cache(
        &self,
        registry: RegistryClient,
        deadline: Duration,
        metrics: Option<Arc<Metrics>>,
        cache: Arc<VerdictCache>,
        revocation: Checker,
    ) -> Result<Gate, ConfigError> {
        let (policy, stores) = self.load_trust()?;
        let cosign = Arc::new(
            CosignPolicy::load(&self.cosign).map_err(|e| ConfigError::Policy(e.to_string()))?,
        );
        Ok(Gate::with_cache(
            registry,
            policy,
            stores,
            GateOptions {
                max_signatures: self.max_signatures,
                deadline,
                metrics,
                quarantine: QuarantineConfig::new(self.quarantine.clone()),
                revocation,
                platforms: self.platforms.clone(),
                cosign,
                signatures: self.signatures,
            },
            cache,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_setting_and_durations() {
        let c = Config::from_yaml(
            "trustPolicy: /p.json\ninsecureRegistries: [a:5000]\nserve:\n  listen: 127.0.0.1:9443\n  deadline: 2500ms\n  enforcement: dryrun\n",
        )
        .unwrap();
        assert_eq!(c.trust_policy.as_deref(), Some(Path::new("/p.json")));
        assert_eq!(c.serve.deadline, Some(Duration::from_millis(2500)));
        assert_eq!(c.serve.enforcement, Some(Enforcement::Dryrun));
        assert_eq!(c.insecure_registries, ["a:5000"]);
    }

    #[test]
    fn parses_connection_and_shedding_limits() {
        let c = Config::from_yaml(
            "serve:\n  maxPending: 100\n  maxConnections: 50\n  readTimeout: 2s\n  idleTimeout: 30s\n",
        )
        .unwrap();
        assert_eq!(c.serve.max_pending, Some(100));
        assert_eq!(c.serve.max_connections, Some(50));
        assert_eq!(c.serve.read_timeout, Some(Duration::from_secs(2)));
        assert_eq!(c.serve.idle_timeout, Some(Duration::from_secs(30)));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_yaml("trustPolcy: /p.json\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `trustPolcy`"), "{err}");
        let err = Config::from_yaml("serve:\n  deadline: soon\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("deadline"), "{err}");
    }

    #[test]
    fn flags_override_the_file() {
        let c = Config::from_yaml("trustPolicy: /file.json\ntrustStore: /store\nmaxSignatures: 5\ninsecureRegistries: [a]").unwrap();
        let s = EngineSettings::resolve(
            &c,
            Some("/flag.json".into()),
            None,
            vec!["b".into()],
            None,
            None,
        )
        .unwrap();
        assert_eq!(s.trust_policy, Path::new("/flag.json"));
        assert_eq!(s.trust_store, Path::new("/store"));
        assert_eq!(s.max_signatures, 5);
        assert_eq!(s.insecure_registries, ["a", "b"]);
    }

    #[test]
    fn merge_keys_apply_and_duplicate_keys_are_refused() {
        let c = Config::from_yaml(
            "quarantine:\n  - &acr {registries: [\"*.azurecr.io\"], source: acr, enforcement: audit}\n  - <<: *acr\n    registries: [\"*.azurecr.cn\"]\n",
        )
        .unwrap();
        assert_eq!(c.quarantine.len(), 2);
        assert_eq!(c.quarantine[1].registries, ["*.azurecr.cn"]);
        assert_eq!(
            c.quarantine[1].enforcement,
            crate::quarantine::QuarantineEnforcement::Audit
        );
        let err = Config::from_yaml("serve:\n  <<: {deadline: 3s}\n  deadline: 4s\n")
            .map(|c| c.serve.deadline);
        assert_eq!(err.unwrap(), Some(Duration::from_secs(4)));
        let err = Config::from_yaml("trustPolicy: /a.json\ntrustPolicy: /b.json\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate key \"trustPolicy\""), "{err}");
        assert!(Config::from_yaml("# nothing set\n").is_ok());
    }
}
