//! Images out of a live cluster, through kube-rs: Pods and the pod templates of workloads, in
//! every namespace or one, with an optional label selector, following `continue` pagination.
//!
//! Each image is reported against the workload that owns it: a Pod created by a ReplicaSet of a
//! Deployment is the Deployment's, a Job of a CronJob is the CronJob's. Registry credentials come
//! from the pods' `imagePullSecrets` and their service accounts', as the kubelet uses them.

use std::collections::{BTreeSet, HashMap};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::Client;
use serde_json::Value;

use super::{ImageUse, InputError, WorkloadRef};
use crate::admission::images_of;
use crate::registry::auth::Credential;
use crate::tenancy::pull_secrets::docker_config_credentials;

/// What was found in the cluster.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Every image use.
    pub uses: Vec<ImageUse>,
    /// Resources that could not be listed or read.
    pub errors: Vec<InputError>,
    /// Registry credentials from pull secrets, by registry host.
    pub credentials: HashMap<String, Credential>,
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

/// List everything; `pull_secrets` reads the pull secrets the pods name.
pub async fn inventory(
    client: &Client,
    namespace: Option<&str>,
    selector: Option<&str>,
    pull_secrets: bool,
) -> Inventory {
    let mut inv = Inventory::default();
    // (namespace, secret names) and (namespace, service account) wanted for credentials.
    let mut secrets: BTreeSet<(String, String)> = BTreeSet::new();
    let mut accounts: BTreeSet<(String, String)> = BTreeSet::new();
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
                            });
                        }
                    }
                    Err(e) => inv.errors.push(InputError {
                        source: format!("{kind}/{ns}/{name}"),
                        message: e.to_string(),
                    }),
                }
                if pull_secrets {
                    if let Some(spec) = pod_spec(kind, &object) {
                        for s in spec
                            .get("imagePullSecrets")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            if let Some(n) = s.get("name").and_then(Value::as_str) {
                                secrets.insert((ns.clone(), n.to_string()));
                            }
                        }
                        let sa = spec
                            .get("serviceAccountName")
                            .and_then(Value::as_str)
                            .unwrap_or("default");
                        accounts.insert((ns.clone(), sa.to_string()));
                    }
                }
            }
            match list.metadata.continue_.as_deref() {
                Some(c) if !c.is_empty() && pages < 10_000 => lp = lp.continue_token(c),
                _ => break,
            }
        }
    }
    if pull_secrets {
        for (ns, sa) in accounts {
            let api = api(
                client,
                Some(&ns),
                "",
                "v1",
                "ServiceAccount",
                "serviceaccounts",
            );
            match api.get_opt(&sa).await {
                Ok(Some(obj)) => {
                    for s in obj
                        .data
                        .get("imagePullSecrets")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(n) = s.get("name").and_then(Value::as_str) {
                            secrets.insert((ns.clone(), n.to_string()));
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => inv.errors.push(InputError {
                    source: format!("ServiceAccount/{ns}/{sa}"),
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        for (ns, name) in secrets {
            let api = api(client, Some(&ns), "", "v1", "Secret", "secrets");
            match api.get_opt(&name).await {
                Ok(Some(obj)) => {
                    for (host, cred) in docker_config_credentials(&obj.data) {
                        inv.credentials.entry(host).or_insert(cred);
                    }
                }
                Ok(None) => {}
                // Without RBAC for secrets, images are pulled anonymously; say so.
                Err(e) => inv.errors.push(InputError {
                    source: format!("Secret/{ns}/{name}"),
                    message: format!("cannot read the pull secret: {e}"),
                }),
            }
        }
    }
    inv
}

fn pod_spec<'a>(kind: &str, object: &'a Value) -> Option<&'a Value> {
    let path = crate::admission::pod_spec_path(kind)?;
    let mut v = object;
    for k in path {
        v = v.get(k)?;
    }
    Some(v)
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
