//! Images out of a live cluster, through kube-rs: Pods and the pod templates of workloads, in
//! every namespace or one, with an optional label selector, following `continue` pagination.
//!
//! Each image is reported against the workload that owns it: a Pod created by a ReplicaSet of a
//! Deployment is the Deployment's, a Job of a CronJob is the CronJob's. Each workload's registry
//! credentials are its own, found as the kubelet finds them and as `vouch serve` does
//! ([`crate::tenancy`]: its pod (template)'s `imagePullSecrets`, then its ServiceAccount's, in
//! its namespace; per image the first credential for its registry and repository prefix), so
//! one tenant's pull secret never reads another tenant's images.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::Client;
use serde_json::Value;

use super::{ImageUse, InputError, WorkloadRef};
use crate::admission::images_of;
use crate::registry::auth::PullCredentials;
use crate::tenancy::{account_secrets, secret_credentials, Credentials, PullRefs};

/// What was found in the cluster.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Every image use, each with its workload's pull credentials when they were read.
    pub uses: Vec<ImageUse>,
    /// Resources that could not be listed or read.
    pub errors: Vec<InputError>,
}

/// Whether workloads' images are read with their pull credentials.
#[derive(Debug, Clone, Copy)]
pub enum PullSecrets {
    /// vouch's own credentials only (`--no-pull-secrets`).
    Ignored,
    /// Each workload's own pull credentials; `own_fallback`: vouch's own for a registry they do
    /// not name (else such an image is read anonymously).
    Read {
        /// Whether vouch's own credentials stand in.
        own_fallback: bool,
    },
}

/// Listed kinds: (group, version, kind, plural).
const KINDS: [(&str, &str, &str, &str); 8] = [
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("apps", "v1", "ReplicaSet", "replicasets"),
    ("batch", "v1", "CronJob", "cronjobs"),
    ("batch", "v1", "Job", "jobs"),
    ("", "v1", "ReplicationController", "replicationcontrollers"),
    ("", "v1", "Pod", "pods"),
];

/// Kinds whose pods (or children) are reported through their owner.
const OWNERS: [&str; 7] = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "CronJob",
    "Job",
    "ReplicationController",
];

fn api(
    client: &Client,
    namespace: Option<&str>,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// List everything; with [`PullSecrets::Read`], read the pull secrets each workload names.
pub async fn inventory(
    client: &Client,
    namespace: Option<&str>,
    selector: Option<&str>,
    pull_secrets: PullSecrets,
) -> Inventory {
    let mut inv = Inventory::default();
    // Each workload's namespace and pull references, and the range of its uses in `inv.uses`.
    let mut workloads: Vec<(String, PullRefs, std::ops::Range<usize>)> = Vec::new();
    for (group, version, kind, plural) in KINDS {
        let api = api(client, namespace, group, version, kind, plural);
        let mut lp = ListParams::default().limit(250);
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        let mut pages = 0;
        loop {
            pages += 1;
            let list = match api.list(&lp).await {
                Ok(l) => l,
                Err(e) => {
                    inv.errors.push(InputError {
                        source: format!("{plural}.{group}/{version}"),
                        message: format!("cannot list: {e}"),
                    });
                    break;
                }
            };
            for obj in &list.items {
                let owned = obj
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.controller == Some(true) && OWNERS.contains(&o.kind.as_str()));
                if owned {
                    continue;
                }
                let ns = obj.metadata.namespace.clone().unwrap_or_default();
                let name = obj.metadata.name.clone().unwrap_or_default();
                let mut object = obj.data.clone();
                if let Value::Object(m) = &mut object {
                    m.insert("kind".into(), Value::String(kind.into()));
                }
                let first = inv.uses.len();
                match images_of(kind, &object) {
                    Ok(found) => {
                        for u in found {
                            inv.uses.push(ImageUse {
                                workload: WorkloadRef {
                                    kind: kind.to_string(),
                                    namespace: ns.clone(),
                                    name: name.clone(),
                                    container: u.container,
                                    source: None,
                                },
                                image: u.image,
                                pull: None,
                            });
                        }
                    }
                    Err(e) => inv.errors.push(InputError {
                        source: format!("{kind}/{ns}/{name}"),
                        message: e.to_string(),
                    }),
                }
                if matches!(pull_secrets, PullSecrets::Read { .. }) {
                    // A spec whose references cannot be read names none: its pods would pull
                    // with their namespace's default ServiceAccount.
                    let refs = PullRefs::of(kind, &object).unwrap_or_else(|| PullRefs {
                        secrets: Vec::new(),
                        service_account: "default".into(),
                    });
                    workloads.push((ns.clone(), refs, first..inv.uses.len()));
                }
            }
            match list.metadata.continue_.as_deref() {
                Some(c) if !c.is_empty() && pages < 10_000 => lp = lp.continue_token(c),
                _ => break,
            }
        }
    }
    if let PullSecrets::Read { own_fallback } = pull_secrets {
        let credentials = read_pull_secrets(client, &workloads, &mut inv.errors).await;
        for (ns, refs, uses) in workloads {
            let account = credentials
                .accounts
                .get(&(ns.clone(), refs.service_account.clone()));
            let entries = refs
                .secret_names(account.map(|a| &a[..]))
                .into_iter()
                .filter_map(|name| credentials.secrets.get(&(ns.clone(), name)))
                .flat_map(|c| c.iter().cloned())
                .collect();
            let pull = Arc::new(PullCredentials {
                entries,
                own_fallback,
            });
            for u in &mut inv.uses[uses] {
                u.pull = Some(pull.clone());
            }
        }
    }
    inv
}

/// What the workloads' pull references name: ServiceAccounts' secret names and Secrets'
/// credentials, by (namespace, name), each read once.
#[derive(Default)]
struct PullSecretsRead {
    accounts: HashMap<(String, String), Arc<[String]>>,
    secrets: HashMap<(String, String), Credentials>,
}

async fn read_pull_secrets(
    client: &Client,
    workloads: &[(String, PullRefs, std::ops::Range<usize>)],
    errors: &mut Vec<InputError>,
) -> PullSecretsRead {
    let mut read = PullSecretsRead::default();
    let wanted: BTreeSet<(String, String)> = workloads
        .iter()
        .map(|(ns, refs, _)| (ns.clone(), refs.service_account.clone()))
        .collect();
    for (ns, sa) in wanted {
        match Api::<ServiceAccount>::namespaced(client.clone(), &ns)
            .get_opt(&sa)
            .await
        {
            Ok(Some(obj)) => {
                if let Some(names) = account_secrets(&obj) {
                    read.accounts.insert((ns, sa), names);
                }
            }
            Ok(None) => {}
            Err(e) => errors.push(InputError {
                source: format!("ServiceAccount/{ns}/{sa}"),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    let wanted: BTreeSet<(String, String)> = workloads
        .iter()
        .flat_map(|(ns, refs, _)| {
            let account = read
                .accounts
                .get(&(ns.clone(), refs.service_account.clone()));
            refs.secret_names(account.map(|a| &a[..]))
                .into_iter()
                .map(move |name| (ns.clone(), name))
        })
        .collect();
    for (ns, name) in wanted {
        match Api::<Secret>::namespaced(client.clone(), &ns)
            .get_opt(&name)
            .await
        {
            // Not a docker-config Secret: the kubelet ignores it, and so does this.
            Ok(Some(obj)) => {
                if let Some(c) = secret_credentials(&obj) {
                    read.secrets.insert((ns, name), c);
                }
            }
            Ok(None) => {}
            // Without RBAC for secrets, images are pulled anonymously; say so.
            Err(e) => errors.push(InputError {
                source: format!("Secret/{ns}/{name}"),
                message: format!("cannot read the pull secret: {e}"),
            }),
        }
    }
    read
}

/// Every namespace's labels (for `namespaces:` mappings with selectors), or why they could not
/// be listed.
pub async fn namespace_labels(
    client: &Client,
) -> Result<HashMap<String, std::collections::BTreeMap<String, String>>, InputError> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let mut out = HashMap::new();
    let mut lp = ListParams::default().limit(500);
    for _ in 0..10_000 {
        let list = api.list(&lp).await.map_err(|e| InputError {
            source: "namespaces/v1".into(),
            message: format!("cannot list (namespace selectors need their labels): {e}"),
        })?;
        for ns in list.items {
            if let Some(name) = ns.metadata.name {
                out.insert(name, ns.metadata.labels.unwrap_or_default());
            }
        }
        match list.metadata.continue_.as_deref() {
            Some(c) if !c.is_empty() => lp = lp.continue_token(c),
            _ => break,
        }
    }
    Ok(out)
}
