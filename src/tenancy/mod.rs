//! Multi-tenant clusters: what `vouch serve` reads from the cluster to judge each pod as its
//! tenant — the pod's pull credentials (its `imagePullSecrets`, then its ServiceAccount's, as
//! the kubelet uses them) and its namespace's labels (for `namespaces:` trust mappings).
//!
//! Everything is read through watch-backed caches ([`watch`]) so an admission does not wait on
//! the API server in the common case and a rotated Secret counts from its `MODIFIED` event on.
//! Only docker-config Secrets are watched (one field-selected watch per type,
//! `type=kubernetes.io/dockerconfigjson` and `type=kubernetes.io/dockercfg`), and only their
//! parsed credentials are kept, within a count and a byte budget per cache (what a tenant's
//! Secrets make vouch hold is bounded; see [`pull_secrets`] for the bounds per Secret). A name
//! the cache does not hold (not yet synced, over a bound, created a moment ago, or no RBAC to
//! watch) is read with one direct GET, bounded by the admission's deadline and
//! [`GET_TIMEOUT`]; its answer is not cached (the watch stays the one writer of the cache).

pub mod namespaces;
pub mod proof;
pub mod pull_secrets;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::Api;
use kube::runtime::watcher;
use kube::Client;
use serde::Deserialize;

use crate::registry::auth::PullCredential;
use watch::Watched;

/// Longest direct GET of one object an admission waits for.
pub const GET_TIMEOUT: Duration = Duration::from_secs(2);
/// Most Secrets, ServiceAccounts and Namespaces each cache holds.
pub const MAX_CACHED: usize = 50_000;
/// Most bytes each cache holds (its values and keys as weighed: parsed credentials, secret
/// names, labels). An entry is at most [`pull_secrets::MAX_SECRET_KEPT_BYTES`] of credentials
/// and a typical one a few hundred bytes, so this caps what tenants who can create Secrets
/// make vouch hold, not what real clusters need.
pub const MAX_CACHED_BYTES: usize = 64 * 1024 * 1024;
/// Objects per page of a watch's list of Secrets: a Secret may be 1 MiB, and the watcher holds
/// a whole page at once (kube-rs's default of 500 would be up to 500 MiB).
pub const SECRET_PAGE_SIZE: u32 = 50;
/// Most pull secrets one pod (with its ServiceAccount) may name; the rest are ignored.
pub const MAX_SECRETS_PER_POD: usize = 32;

/// `serve.pullCredentials`: whose credentials read a pod's images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullCredentialsMode {
    /// vouch's own only (docker config, Azure workload identity).
    #[default]
    Own,
    /// The pod's for the registries they name, vouch's own for the others.
    Pod,
    /// The pod's only: an image they cannot read is not admitted, whatever is cached.
    PodOnly,
}

impl PullCredentialsMode {
    /// The setting as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Own => "own",
            Self::Pod => "pod",
            Self::PodOnly => "pod-only",
        }
    }
}

/// What a pod (or a workload's pod template) names for pulling: its `imagePullSecrets` and its
/// ServiceAccount (`default` when unset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRefs {
    /// Secret names, in order.
    pub secrets: Vec<String>,
    /// ServiceAccount name.
    pub service_account: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecRefs {
    #[serde(default)]
    image_pull_secrets: Option<Vec<NameRef>>,
    #[serde(default)]
    service_account_name: Option<String>,
    /// The deprecated alias the API server still fills in.
    #[serde(default)]
    service_account: Option<String>,
}

#[derive(Deserialize)]
struct NameRef {
    #[serde(default)]
    name: Option<String>,
}

impl PullRefs {
    /// The pull references of an admitted object of `kind` (a Pod, or a workload through its
    /// pod template); `None` for kinds without a pod spec or an object without one.
    pub fn of(kind: &str, object: &serde_json::Value) -> Option<Self> {
        let mut spec = object;
        for k in crate::admission::pod_spec_path(kind)? {
            spec = spec.get(k)?;
        }
        let refs = SpecRefs::deserialize(spec).ok()?;
        Some(Self {
            secrets: refs
                .image_pull_secrets
                .into_iter()
                .flatten()
                .filter_map(|r| r.name.filter(|n| !n.is_empty()))
                .take(MAX_SECRETS_PER_POD)
                .collect(),
            service_account: refs
                .service_account_name
                .or(refs.service_account)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "default".into()),
        })
    }
}

impl PullRefs {
    /// The Secrets a pod's pull credentials come from, in the kubelet's order: its own
    /// `imagePullSecrets`, then `account`'s (its ServiceAccount's, when it could be read),
    /// each name once, at most [`MAX_SECRETS_PER_POD`]. Its credentials are theirs, in this
    /// order ([`Tenancy::pull_credentials`], `vouch audit`).
    pub fn secret_names(&self, account: Option<&[String]>) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.secrets
            .iter()
            .chain(account.into_iter().flatten())
            .filter(|n| seen.insert(n.as_str()))
            .take(MAX_SECRETS_PER_POD)
            .cloned()
            .collect()
    }
}

/// Parsed credentials of one Secret.
pub type Credentials = Arc<[PullCredential]>;
type Labels = Arc<BTreeMap<String, String>>;

/// The cluster state `serve` reads: started once, shared by every admission.
pub struct Tenancy {
    client: Client,
    /// `kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg` Secrets.
    secrets: [Arc<Watched<Credentials>>; 2],
    /// ServiceAccounts' `imagePullSecrets` names.
    accounts: Arc<Watched<Arc<[String]>>>,
    /// Namespaces' labels.
    namespaces: Arc<Watched<Labels>>,
    which: Watches,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Tenancy {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The credentials of a docker-config Secret (`None` for any other type), as the kubelet
/// reads them ([`pull_secrets::credentials_of`]); credentials over a size limit are skipped
/// with a warning naming the Secret.
pub fn secret_credentials(s: &Secret) -> Option<Credentials> {
    let ty = s.type_.as_deref()?;
    if ty != pull_secrets::DOCKER_CONFIG_JSON && ty != pull_secrets::DOCKER_CFG {
        return None;
    }
    let data: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    let parsed = pull_secrets::credentials_of(&data);
    if parsed.skipped_count > 0 {
        let secret = format!(
            "{}/{}",
            s.metadata.namespace.as_deref().unwrap_or_default(),
            s.metadata.name.as_deref().unwrap_or_default()
        );
        let secret = crate::escape::excerpt(secret.as_bytes(), 300);
        tracing::warn!(
            secret = %secret,
            skipped = parsed.skipped_count,
            "pull secret {secret}: {}",
            parsed.skipped_summary()
        );
    }
    Some(parsed.credentials.into())
}

/// The ServiceAccount's `imagePullSecrets` names (at most [`MAX_SECRETS_PER_POD`]).
pub fn account_secrets(sa: &ServiceAccount) -> Option<Arc<[String]>> {
    Some(
        sa.image_pull_secrets
            .iter()
            .flatten()
            .filter(|r| !r.name.is_empty())
            .map(|r| r.name.clone())
            .take(MAX_SECRETS_PER_POD)
            .collect(),
    )
}

fn namespace_labels(ns: &Namespace) -> Option<Labels> {
    Some(Arc::new(ns.metadata.labels.clone().unwrap_or_default()))
}

fn credentials_weight(c: &Credentials) -> usize {
    c.iter().map(pull_secrets::kept_bytes).sum()
}

fn names_weight(names: &Arc<[String]>) -> usize {
    names
        .iter()
        .map(|n| std::mem::size_of::<String>() + n.len())
        .sum()
}

fn labels_weight(labels: &Labels) -> usize {
    labels
        .iter()
        .map(|(k, v)| 2 * std::mem::size_of::<String>() + k.len() + v.len())
        .sum()
}

/// The bounds of each cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Most entries ([`MAX_CACHED`]).
    pub entries: usize,
    /// Most bytes ([`MAX_CACHED_BYTES`]).
    pub bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            entries: MAX_CACHED,
            bytes: MAX_CACHED_BYTES,
        }
    }
}

/// Which caches to start.
#[derive(Debug, Clone, Copy, Default)]
pub struct Watches {
    /// Secrets and ServiceAccounts (`pullCredentials: pod | pod-only`).
    pub pull_credentials: bool,
    /// Namespaces (`namespaces:` mappings with a selector).
    pub namespaces: bool,
}

impl Tenancy {
    /// Start the watches `which` asks for against `client`'s cluster; admissions may begin at
    /// once (until a cache syncs, its reads are GETs).
    pub fn start(client: Client, which: Watches) -> Self {
        Self::start_with(client, which, CacheLimits::default())
    }

    /// [`Self::start`] with other bounds for each cache.
    pub fn start_with(client: Client, which: Watches, limits: CacheLimits) -> Self {
        let (n, bytes) = (limits.entries, limits.bytes);
        let secrets = [
            Watched::new(
                "pull secrets (dockerconfigjson)",
                n,
                bytes,
                credentials_weight,
            ),
            Watched::new("pull secrets (dockercfg)", n, bytes, credentials_weight),
        ];
        let accounts = Watched::new("service accounts", n, bytes, names_weight);
        let namespaces = Watched::new("namespaces", n, bytes, labels_weight);
        let mut tasks = Vec::new();
        if which.pull_credentials {
            for (cache, ty) in secrets
                .iter()
                .zip([pull_secrets::DOCKER_CONFIG_JSON, pull_secrets::DOCKER_CFG])
            {
                tasks.push(watch::spawn(
                    Api::<Secret>::all(client.clone()),
                    watcher::Config::default()
                        .fields(&format!("type={ty}"))
                        .page_size(SECRET_PAGE_SIZE),
                    cache.clone(),
                    secret_credentials,
                ));
            }
            tasks.push(watch::spawn(
                Api::<ServiceAccount>::all(client.clone()),
                watcher::Config::default(),
                accounts.clone(),
                account_secrets,
            ));
        }
        if which.namespaces {
            tasks.push(watch::spawn(
                Api::<Namespace>::all(client.clone()),
                watcher::Config::default(),
                namespaces.clone(),
                namespace_labels,
            ));
        }
        Self {
            client,
            secrets,
            accounts,
            namespaces,
            which,
            tasks,
        }
    }

    /// Whether every started cache has synced.
    pub fn synced(&self) -> bool {
        (!self.which.pull_credentials
            || (self.secrets.iter().all(|s| s.synced()) && self.accounts.synced()))
            && (!self.which.namespaces || self.namespaces.synced())
    }

    /// A pod's pull credentials in the kubelet's order — the pod's `imagePullSecrets`, then
    /// its ServiceAccount's — and notes on what could not be read (a named Secret that does not
    /// exist, is not a docker-config Secret, or could not be fetched by `due`). Every read is
    /// in `namespace`.
    pub async fn pull_credentials(
        &self,
        namespace: &str,
        refs: &PullRefs,
        due: Instant,
    ) -> (Vec<PullCredential>, Vec<String>) {
        let mut notes = Vec::new();
        let account = match self.account(namespace, &refs.service_account, due).await {
            Ok(a) => a,
            Err(e) => {
                notes.push(format!(
                    "the pull secrets of ServiceAccount {namespace}/{} could not be read: {e}",
                    refs.service_account
                ));
                None
            }
        };
        let mut out = Vec::new();
        for name in refs.secret_names(account.as_deref()) {
            match self.secret(namespace, &name, due).await {
                Ok(Some(c)) => out.extend(c.iter().cloned()),
                Ok(None) => notes.push(format!(
                    "pull secret {namespace}/{name} does not exist or is not of type {} or {}",
                    pull_secrets::DOCKER_CONFIG_JSON,
                    pull_secrets::DOCKER_CFG
                )),
                Err(e) => notes.push(format!(
                    "pull secret {namespace}/{name} could not be read: {e}"
                )),
            }
        }
        (out, notes)
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
        due: Instant,
    ) -> Result<Option<Credentials>, String> {
        if let Some(c) = self.secrets.iter().find_map(|s| s.get(namespace, name)) {
            return Ok(Some(c));
        }
        let api = Api::<Secret>::namespaced(self.client.clone(), namespace);
        Ok(bounded_get(&api, name, due)
            .await?
            .as_ref()
            .and_then(secret_credentials))
    }

    async fn account(
        &self,
        namespace: &str,
        name: &str,
        due: Instant,
    ) -> Result<Option<Arc<[String]>>, String> {
        if let Some(a) = self.accounts.get(namespace, name) {
            return Ok(Some(a));
        }
        let api = Api::<ServiceAccount>::namespaced(self.client.clone(), namespace);
        Ok(bounded_get(&api, name, due)
            .await?
            .as_ref()
            .and_then(account_secrets))
    }

    /// A namespace's labels if the watch already holds them (no request is made).
    pub fn cached_namespace_labels(&self, namespace: &str) -> Option<Labels> {
        self.namespaces.get("", namespace)
    }

    /// A namespace's labels (`None`: the namespace does not exist).
    pub async fn namespace_labels(
        &self,
        namespace: &str,
        due: Instant,
    ) -> Result<Option<Labels>, String> {
        if let Some(l) = self.namespaces.get("", namespace) {
            return Ok(Some(l));
        }
        let api = Api::<Namespace>::all(self.client.clone());
        Ok(bounded_get(&api, namespace, due)
            .await?
            .as_ref()
            .and_then(namespace_labels))
    }
}

/// One GET, finished by `due` and within [`GET_TIMEOUT`]; not found is `None`.
async fn bounded_get<K>(api: &Api<K>, name: &str, due: Instant) -> Result<Option<K>, String>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let by = due.min(Instant::now() + GET_TIMEOUT);
    match tokio::time::timeout_at(by.into(), api.get_opt(name)).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(e)) => Err(crate::escape::excerpt(e.to_string().as_bytes(), 300)),
        Err(_) => Err("the API server did not answer in time".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pull_refs_of_pods_and_templates() {
        let pod = json!({"spec": {"imagePullSecrets": [{"name": "a"}, {"name": ""}, {}], "serviceAccountName": "builder", "containers": []}});
        assert_eq!(
            PullRefs::of("Pod", &pod),
            Some(PullRefs {
                secrets: vec!["a".into()],
                service_account: "builder".into()
            })
        );
        let deploy = json!({"spec": {"template": {"spec": {"containers": []}}}});
        assert_eq!(
            PullRefs::of("Deployment", &deploy),
            Some(PullRefs {
                secrets: vec![],
                service_account: "default".into()
            })
        );
        assert_eq!(PullRefs::of("ConfigMap", &json!({})), None);
        let alias = json!({"spec": {"serviceAccount": "old-style", "containers": []}});
        assert_eq!(
            PullRefs::of("Pod", &alias).map(|r| r.service_account),
            Some("old-style".into())
        );
        assert_eq!(
            PullRefs::of("Pod", &json!({"spec": {"imagePullSecrets": "x"}})),
            None
        );
    }

    #[test]
    fn secret_names_are_the_pods_then_its_accounts_once_each_and_bounded() {
        let refs = PullRefs {
            secrets: vec!["a".into(), "b".into(), "a".into()],
            service_account: "default".into(),
        };
        let account: Vec<String> = vec!["b".into(), "c".into()];
        assert_eq!(refs.secret_names(Some(&account)), ["a", "b", "c"]);
        assert_eq!(refs.secret_names(None), ["a", "b"]);
        let many: Vec<String> = (0..MAX_SECRETS_PER_POD + 5)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(
            refs.secret_names(Some(&many)).len(),
            MAX_SECRETS_PER_POD,
            "the pod's come first and count"
        );
    }
}
