//! A fake Kubernetes API server for `vouch audit`: it serves real-shaped list JSON (`PodList`,
//! `DeploymentList`, …) with `limit`/`continue` pagination, and gets of ServiceAccounts and
//! Secrets — the calls kube-rs makes. No mocking of kube-rs itself.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

#[derive(Default)]
pub struct Cluster {
    /// (plural, object) — objects carry metadata.namespace.
    pub objects: Vec<(String, Value)>,
    pub log: Vec<String>,
}

pub struct FakeApi {
    pub url: String,
    pub state: Arc<Mutex<Cluster>>,
}

impl FakeApi {
    pub fn start(cluster: Cluster) -> FakeApi {
        let state = Arc::new(Mutex::new(cluster));
        let app = Router::new()
            .route("/api/v1/{plural}", get(list_core))
            .route("/api/v1/namespaces/{ns}/{plural}", get(list_core_ns))
            .route("/api/v1/namespaces/{ns}/{plural}/{name}", get(get_core))
            .route("/apis/{group}/{version}/{plural}", get(list_group))
            .route(
                "/apis/{group}/{version}/namespaces/{ns}/{plural}",
                get(list_group_ns),
            )
            .with_state(state.clone());
        let addr = vouch::demo::registry::serve_in_background(app).expect("fake API server");
        FakeApi {
            url: format!("http://127.0.0.1:{}", addr.port()),
            state,
        }
    }

    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let p = dir.join("kubeconfig");
        std::fs::write(&p, format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: test-token\n",
            self.url
        )).unwrap();
        p
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }
}

fn kind_of(plural: &str) -> &'static str {
    match plural {
        "pods" => "Pod",
        "deployments" => "Deployment",
        "replicasets" => "ReplicaSet",
        "statefulsets" => "StatefulSet",
        "daemonsets" => "DaemonSet",
        "jobs" => "Job",
        "cronjobs" => "CronJob",
        "replicationcontrollers" => "ReplicationController",
        "serviceaccounts" => "ServiceAccount",
        "secrets" => "Secret",
        _ => "Unknown",
    }
}

fn list(
    st: &Mutex<Cluster>,
    api_version: &str,
    plural: &str,
    ns: Option<&str>,
    q: &HashMap<String, String>,
) -> Response {
    let mut c = st.lock().unwrap();
    c.log.push(format!("list {plural} ns={ns:?} {q:?}"));
    let selector = q.get("labelSelector").cloned();
    let items: Vec<Value> = c
        .objects
        .iter()
        .filter(|(p, o)| p == plural && ns.is_none_or(|n| o["metadata"]["namespace"] == n))
        .filter(|(_, o)| match &selector {
            Some(sel) => sel.split(',').all(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                o["metadata"]["labels"][k] == v
            }),
            None => true,
        })
        .map(|(_, o)| o.clone())
        .collect();
    let start: usize = q
        .get("continue")
        .and_then(|c| c.strip_prefix("offset-"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX)
        .max(1);
    let page: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
    let mut metadata = json!({"resourceVersion": "1234"});
    if start + limit < items.len() {
        metadata["continue"] = format!("offset-{}", start + limit).into();
        metadata["remainingItemCount"] = (items.len() - start - limit).into();
    }
    let kind = format!("{}List", kind_of(plural));
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "items": page})
            .to_string(),
    )
        .into_response()
}

async fn list_core(
    State(s): State<Arc<Mutex<Cluster>>>,
    Path(plural): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(&s, "v1", &plural, None, &q)
}

async fn list_core_ns(
    State(s): State<Arc<Mutex<Cluster>>>,
    Path((ns, plural)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(&s, "v1", &plural, Some(&ns), &q)
}

async fn list_group(
    State(s): State<Arc<Mutex<Cluster>>>,
    Path((group, version, plural)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(&s, &format!("{group}/{version}"), &plural, None, &q)
}

async fn list_group_ns(
    State(s): State<Arc<Mutex<Cluster>>>,
    Path((group, version, ns, plural)): Path<(String, String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(&s, &format!("{group}/{version}"), &plural, Some(&ns), &q)
}

async fn get_core(
    State(s): State<Arc<Mutex<Cluster>>>,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> Response {
    let mut c = s.lock().unwrap();
    c.log.push(format!("get {plural} {ns}/{name}"));
    let found = c.objects.iter().find(|(p, o)| {
        *p == plural
            && o["metadata"]["namespace"] == ns.as_str()
            && o["metadata"]["name"] == name.as_str()
    });
    match found {
        Some((_, o)) => (StatusCode::OK, [("content-type", "application/json")], o.to_string()).into_response(),
        None => (StatusCode::NOT_FOUND, [("content-type", "application/json")], json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":format!("{plural} \"{name}\" not found"),"reason":"NotFound","details":{"name":name,"kind":plural},"code":404}).to_string()).into_response(),
    }
}
