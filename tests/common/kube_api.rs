//! A fake Kubernetes API server for `vouch audit` and `vouch serve`: it serves real-shaped list
//! JSON (`PodList`, `DeploymentList`, …) with `limit`/`continue` pagination, `labelSelector`
//! and `fieldSelector` (`type=`, `metadata.name=`, `metadata.namespace=`), gets of namespaced
//! objects and Namespaces, and watches — the calls kube-rs makes, its `watcher` included. No
//! mocking of kube-rs itself.
//!
//! Watches follow the API's wire format: a list answers with the collection's
//! `metadata.resourceVersion`; `?watch=true` (or `1`) from a `resourceVersion` streams
//! newline-delimited JSON events (`{"type":"ADDED|MODIFIED|DELETED","object":{…}}`) for every
//! change after it, then live ones, with `BOOKMARK` events (an object carrying only the
//! current `metadata.resourceVersion`) when `allowWatchBookmarks=true`, until
//! `timeoutSeconds`. A `resourceVersion` older than the history kept ([`FakeApi::compact`]) gets
//! an `ERROR` event carrying a `410 Expired` Status, as etcd compaction produces, and the
//! client must list again.
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
    /// The collection's resourceVersion: the last change's.
    pub resource_version: u64,
    /// Changes kept for watches: (resourceVersion, plural, event type, object).
    pub history: Vec<(u64, String, &'static str, Value)>,
    /// Watches from before this resourceVersion get 410 Gone.
    pub compacted: u64,
}

pub struct FakeApi {
    pub url: String,
    pub state: Arc<Mutex<Cluster>>,
    changes: tokio::sync::broadcast::Sender<(u64, String, &'static str, Value)>,
}

/// The watch events the server has sent, per plural (`secrets`, …), to wait on in tests.
#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<Cluster>>,
    changes: tokio::sync::broadcast::Sender<(u64, String, &'static str, Value)>,
}

impl FakeApi {
    pub fn start(cluster: Cluster) -> FakeApi {
        let mut cluster = cluster;
        cluster.resource_version = cluster.resource_version.max(1000);
        let rv = cluster.resource_version;
        for (_, o) in &mut cluster.objects {
            o["metadata"]["resourceVersion"] = rv.to_string().into();
        }
        let state = Arc::new(Mutex::new(cluster));
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        let shared = Shared {
            state: state.clone(),
            changes: changes.clone(),
        };
        let app = Router::new()
            .route("/api/v1/namespaces/{name}", get(get_namespace))
            .route("/api/v1/{plural}", get(list_core))
            .route("/api/v1/namespaces/{ns}/{plural}", get(list_core_ns))
            .route("/api/v1/namespaces/{ns}/{plural}/{name}", get(get_core))
            .route("/apis/{group}/{version}/{plural}", get(list_group))
            .route(
                "/apis/{group}/{version}/namespaces/{ns}/{plural}",
                get(list_group_ns),
            )
            .with_state(shared);
        let addr = vouch::demo::registry::serve_in_background(app).expect("fake API server");
        FakeApi {
            url: format!("http://127.0.0.1:{}", addr.port()),
            state,
            changes,
        }
    }

    /// Create or replace an object (ADDED or MODIFIED to watchers).
    pub fn apply(&self, plural: &str, mut object: Value) {
        let mut c = self.state.lock().unwrap();
        c.resource_version += 1;
        let rv = c.resource_version;
        object["metadata"]["resourceVersion"] = rv.to_string().into();
        let same = |o: &Value| {
            o["metadata"]["namespace"] == object["metadata"]["namespace"]
                && o["metadata"]["name"] == object["metadata"]["name"]
        };
        let kind = match c.objects.iter_mut().find(|(p, o)| p == plural && same(o)) {
            Some((_, o)) => {
                *o = object.clone();
                "MODIFIED"
            }
            None => {
                c.objects.push((plural.to_string(), object.clone()));
                "ADDED"
            }
        };
        let change = (rv, plural.to_string(), kind, object);
        c.history.push(change.clone());
        let _ = self.changes.send(change);
    }

    /// Delete an object (DELETED to watchers).
    pub fn delete(&self, plural: &str, namespace: &str, name: &str) {
        let mut c = self.state.lock().unwrap();
        let Some(i) = c.objects.iter().position(|(p, o)| {
            p == plural && o["metadata"]["namespace"] == namespace && o["metadata"]["name"] == name
        }) else {
            return;
        };
        let (_, mut object) = c.objects.remove(i);
        c.resource_version += 1;
        let rv = c.resource_version;
        object["metadata"]["resourceVersion"] = rv.to_string().into();
        let change = (rv, plural.to_string(), "DELETED", object);
        c.history.push(change.clone());
        let _ = self.changes.send(change);
    }

    /// Forget the history: a watch from an older resourceVersion gets 410 Gone.
    pub fn compact(&self) {
        let mut c = self.state.lock().unwrap();
        c.compacted = c.resource_version;
        c.history.clear();
    }

    /// How many requests so far match `pred`.
    pub fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|l| pred(l))
            .count()
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

/// A `kubernetes.io/dockerconfigjson` Secret whose `auths` are `entries` (key, user, password),
/// each as an `auth` (base64 `user:password`), in the API's wire form (`data` base64).
pub fn pull_secret(ns: &str, name: &str, entries: &[(&str, &str, &str)]) -> Value {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let auths: serde_json::Map<String, Value> = entries
        .iter()
        .map(|(key, u, p)| (key.to_string(), json!({"auth": b64(&format!("{u}:{p}"))})))
        .collect();
    let doc = json!({ "auths": auths }).to_string();
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
           "metadata": {"namespace": ns, "name": name},
           "data": {".dockerconfigjson": b64(&doc)}})
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
        "namespaces" => "Namespace",
        _ => "Unknown",
    }
}

/// Whether `o` passes the query's `labelSelector` (`k=v,…`) and `fieldSelector`.
fn selected(o: &Value, ns: Option<&str>, q: &HashMap<String, String>) -> bool {
    let labels = q.get("labelSelector").is_none_or(|sel| {
        sel.split(',').all(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            o["metadata"]["labels"][k] == v
        })
    });
    let fields = q.get("fieldSelector").is_none_or(|sel| {
        sel.split(',').all(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let field = match k {
                "type" => &o["type"],
                "metadata.name" => &o["metadata"]["name"],
                "metadata.namespace" => &o["metadata"]["namespace"],
                other => panic!("the fake API server has no field selector {other}"),
            };
            field == v
        })
    });
    labels && fields && ns.is_none_or(|n| o["metadata"]["namespace"] == n)
}

fn list(
    sh: &Shared,
    api_version: &str,
    plural: &str,
    ns: Option<&str>,
    q: &HashMap<String, String>,
) -> Response {
    if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        return watch(sh, plural, ns, q);
    }
    let st = &sh.state;
    let mut c = st.lock().unwrap();
    c.log.push(format!("list {plural} ns={ns:?} {q:?}"));
    let items: Vec<Value> = c
        .objects
        .iter()
        .filter(|(p, o)| p == plural && selected(o, ns, q))
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
    let mut metadata = json!({"resourceVersion": c.resource_version.to_string()});
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
    State(s): State<Shared>,
    Path(plural): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(&s, "v1", &plural, None, &q)
}

async fn list_core_ns(
    State(s): State<Shared>,
    Path((ns, plural)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(&s, "v1", &plural, Some(&ns), &q)
}

async fn list_group(
    State(s): State<Shared>,
    Path((group, version, plural)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(&s, &format!("{group}/{version}"), &plural, None, &q)
}

async fn list_group_ns(
    State(s): State<Shared>,
    Path((group, version, ns, plural)): Path<(String, String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list(&s, &format!("{group}/{version}"), &plural, Some(&ns), &q)
}

/// A watch: the changes after `resourceVersion`, then live ones, as newline-delimited JSON.
fn watch(sh: &Shared, plural: &str, ns: Option<&str>, q: &HashMap<String, String>) -> Response {
    let mut c = sh.state.lock().unwrap();
    c.log.push(format!("watch {plural} ns={ns:?} {q:?}"));
    let since: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(c.resource_version);
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .unwrap_or(300u64)
        .min(300);
    let line =
        |kind: &str, object: &Value| format!("{}\n", json!({"type": kind, "object": object}));
    let mut backlog = String::new();
    if since < c.compacted {
        backlog.push_str(&line(
            "ERROR",
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("too old resource version: {since} ({})", c.compacted),
                    "reason": "Expired", "code": 410}),
        ));
        let body = axum::body::Body::from(backlog);
        return (StatusCode::OK, [("content-type", "application/json")], body).into_response();
    }
    for (rv, p, kind, o) in &c.history {
        if *rv > since && p == plural && selected(o, ns, q) {
            backlog.push_str(&line(kind, o));
        }
    }
    let live = sh.changes.subscribe();
    let current = c.resource_version;
    drop(c);
    let plural = plural.to_string();
    let ns = ns.map(str::to_string);
    let q = q.clone();
    let kind = kind_of(&plural);
    let api_version = "v1";
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(timeout);
    struct Watching {
        backlog: Option<String>,
        live: tokio::sync::broadcast::Receiver<(u64, String, &'static str, Value)>,
        last: u64,
    }
    let stream = futures::stream::unfold(
        Watching {
            backlog: Some(backlog),
            live,
            last: current,
        },
        move |mut w| {
            let (plural, ns, q) = (plural.clone(), ns.clone(), q.clone());
            async move {
                if let Some(b) = w.backlog.take() {
                    return Some((Ok::<_, std::io::Error>(b), w));
                }
                loop {
                    let tick = tokio::time::sleep(std::time::Duration::from_millis(500));
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => return None,
                        change = w.live.recv() => match change {
                            Ok((rv, p, kind, o)) => {
                                w.last = rv;
                                if p == plural && selected(&o, ns.as_deref(), &q) {
                                    let text = format!("{}\n", json!({"type": kind, "object": o}));
                                    return Some((Ok(text), w));
                                }
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return None,
                            Err(_) => return None,
                        },
                        _ = tick, if bookmarks => {
                            let mark = json!({"type": "BOOKMARK", "object": {
                                "kind": kind, "apiVersion": api_version,
                                "metadata": {"resourceVersion": w.last.to_string()}}});
                            return Some((Ok(format!("{mark}\n")), w));
                        }
                    }
                }
            }
        },
    );
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

async fn get_namespace(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    let mut c = s.state.lock().unwrap();
    c.log.push(format!("get namespaces {name}"));
    match c
        .objects
        .iter()
        .find(|(p, o)| p == "namespaces" && o["metadata"]["name"] == name.as_str())
    {
        Some((_, o)) => (StatusCode::OK, [("content-type", "application/json")], o.to_string()).into_response(),
        None => (StatusCode::NOT_FOUND, [("content-type", "application/json")], json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":format!("namespaces \"{name}\" not found"),"reason":"NotFound","details":{"name":name,"kind":"namespaces"},"code":404}).to_string()).into_response(),
    }
}

async fn get_core(
    State(s): State<Shared>,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> Response {
    let mut c = s.state.lock().unwrap();
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
