//! `vouch serve` for the webhook tests: a serving certificate from a CA of the test's own, the
//! built binary started over real TLS, and AdmissionReviews shaped as kube-apiserver sends them,
//! posted to `/validate` or `/mutate`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use serde_json::{json, Value};

/// The config file a webhook starts with unless told otherwise: quick reloads.
pub const DEFAULT_CONFIG: &str = "serve:\n  reloadInterval: 200ms\n";

/// A serving certificate for `localhost` and `127.0.0.1` and the CA that issued it.
pub struct Tls {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The serving certificate file.
    pub cert: PathBuf,
    /// Its key file.
    pub key: PathBuf,
}

/// Write a serving certificate issued by a new CA named `ca_name` into `dir` (`tls.crt`,
/// `tls.key`), by temporary names and renames, as a rotation would.
pub fn write_tls(dir: &Path, ca_name: &str) -> Tls {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let issuer = CertifiedIssuer::self_signed(ca, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = p.signed_by(&key, &issuer).unwrap();
    let (c, k) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(dir.join("tls.crt.tmp"), cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key.tmp"), key.serialize_pem()).unwrap();
    std::fs::rename(dir.join("tls.key.tmp"), &k).unwrap();
    std::fs::rename(dir.join("tls.crt.tmp"), &c).unwrap();
    Tls {
        ca_pem: issuer.pem(),
        cert: c,
        key: k,
    }
}

/// A running `vouch serve`, killed on drop.
pub struct Webhook {
    /// The server process.
    pub child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its policy (`trustpolicy.json`), trust store, config and certificate files.
    pub dir: tempfile::TempDir,
    /// Its serving certificate.
    pub tls: Tls,
    /// A client trusting the serving certificate's CA.
    pub client: reqwest::Client,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTPS client trusting only `ca_pem`.
pub fn client_for(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Start `vouch serve` with `policy` (`REG` standing for `registry_host`, reached over HTTP)
/// and the [`DEFAULT_CONFIG`]; `extra` flags are appended.
pub async fn start(extra: &[&str], registry_host: &str, policy: &str) -> Webhook {
    start_with_config(extra, registry_host, policy, DEFAULT_CONFIG).await
}

/// [`start`] with the config file `config` (YAML).
pub async fn start_with_config(
    extra: &[&str],
    registry_host: &str,
    policy: &str,
    config: &str,
) -> Webhook {
    start_with_store(extra, registry_host, policy, config, None).await
}

/// [`start_with_config`] with the trust store root `store` (default: one holding the notation
/// e2e certificate as `ca:e2e`).
pub async fn start_with_store(
    extra: &[&str],
    registry_host: &str,
    policy: &str,
    config: &str,
    store: Option<&Path>,
) -> Webhook {
    start_with_env(extra, registry_host, policy, config, store, &[]).await
}

/// [`start_with_store`] with environment variables `env` set for the server (`KUBECONFIG`
/// naming a [`super::kube_api::FakeApi`]'s kubeconfig, …).
pub async fn start_with_env(
    extra: &[&str],
    registry_host: &str,
    policy: &str,
    config: &str,
    store: Option<&Path>,
    env: &[(&str, &str)],
) -> Webhook {
    let dir = tempfile::tempdir().unwrap();
    let tls = write_tls(dir.path(), "webhook CA 1");
    let store = match store {
        Some(s) => s.to_path_buf(),
        None => {
            super::e2e_trust_store(&dir.path().join("store"));
            dir.path().join("store")
        }
    };
    let policy_path = dir.path().join("trustpolicy.json");
    std::fs::write(&policy_path, policy.replace("REG", registry_host)).unwrap();
    std::fs::write(dir.path().join("config.yaml"), config).unwrap();
    let port = super::free_port();
    let mut args: Vec<String> = vec![
        "serve".into(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--tls-cert".into(),
        tls.cert.display().to_string(),
        "--tls-key".into(),
        tls.key.display().to_string(),
        "--trust-policy".into(),
        policy_path.display().to_string(),
        "--trust-store".into(),
        store.display().to_string(),
        "--insecure-registry".into(),
        registry_host.to_string(),
        "--config".into(),
        dir.path().join("config.yaml").display().to_string(),
        "--log-format".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(&args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = client_for(&tls.ca_pem);
    let started = Instant::now();
    loop {
        if let Ok(r) = client
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
        {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "vouch serve did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Webhook {
        child,
        port,
        dir,
        tls,
        client,
    }
}

impl Webhook {
    /// `https://localhost:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// POST `body` to `/validate`: status and body text.
    pub async fn post(&self, body: Vec<u8>) -> (u16, String) {
        self.post_to("/validate", body).await
    }

    /// POST `body` to `path`: status and body text.
    pub async fn post_to(&self, path: &str, body: Vec<u8>) -> (u16, String) {
        let r = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// The `response` of the AdmissionReview `/validate` answers `review` with.
    pub async fn review(&self, review: &Value) -> Value {
        self.review_at("/validate", review).await
    }

    /// The `response` of the AdmissionReview `path` answers `review` with (checked to be an
    /// `admission.k8s.io/v1` AdmissionReview echoing the request's uid).
    pub async fn review_at(&self, path: &str, review: &Value) -> Value {
        let (status, body) = self
            .post_to(path, serde_json::to_vec(review).unwrap())
            .await;
        assert_eq!(status, 200, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(v["response"]["uid"], review["request"]["uid"], "uid echo");
        v["response"].clone()
    }

    /// The `GET /report` document (`{"wouldDeny": [...]}`).
    pub async fn report(&self) -> Value {
        self.client
            .get(self.url("/report"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The value of the series `series` (`name{label="x"}`, exactly as written in the exposition)
/// in the metrics text, or 0 when it is absent (a counter never incremented).
pub fn metric(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a metric value"))
        .unwrap_or(0.0)
}

/// The denial message of an admission response ("" when there is none).
pub fn message(response: &Value) -> &str {
    response["status"]["message"].as_str().unwrap_or_default()
}

/// The first warning of an admission response ("" when there is none).
pub fn first_warning(response: &Value) -> &str {
    response["warnings"][0].as_str().unwrap_or_default()
}

/// A pod spec with one container per image, named `c0`, `c1`…
pub fn pod_spec(images: &[&str]) -> Value {
    json!({"containers": images.iter().enumerate().map(|(i, im)| json!({"name": format!("c{i}"), "image": im})).collect::<Vec<_>>()})
}

/// The API group, version and resource of `kind`, and an object of that kind named `w` in
/// namespace `team` with `spec` as its pod spec.
pub fn object(kind: &str, spec: Value) -> (&'static str, &'static str, &'static str, Value) {
    let meta = json!({"name": "w", "namespace": "team"});
    match kind {
        "Pod" => (
            "",
            "v1",
            "pods",
            json!({"apiVersion":"v1","kind":"Pod","metadata":meta,"spec":spec}),
        ),
        "CronJob" => (
            "batch",
            "v1",
            "cronjobs",
            json!({"apiVersion":"batch/v1","kind":"CronJob","metadata":meta,"spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"spec":spec}}}}}),
        ),
        "Job" => (
            "batch",
            "v1",
            "jobs",
            json!({"apiVersion":"batch/v1","kind":"Job","metadata":meta,"spec":{"template":{"spec":spec}}}),
        ),
        "ReplicationController" => (
            "",
            "v1",
            "replicationcontrollers",
            json!({"apiVersion":"v1","kind":"ReplicationController","metadata":meta,"spec":{"template":{"spec":spec}}}),
        ),
        "Deployment" => (
            "apps",
            "v1",
            "deployments",
            json!({"apiVersion":"apps/v1","kind":kind,"metadata":meta,"spec":{"template":{"spec":spec}}}),
        ),
        "ReplicaSet" => (
            "apps",
            "v1",
            "replicasets",
            json!({"apiVersion":"apps/v1","kind":kind,"metadata":meta,"spec":{"template":{"spec":spec}}}),
        ),
        "StatefulSet" => (
            "apps",
            "v1",
            "statefulsets",
            json!({"apiVersion":"apps/v1","kind":kind,"metadata":meta,"spec":{"template":{"spec":spec}}}),
        ),
        "DaemonSet" => (
            "apps",
            "v1",
            "daemonsets",
            json!({"apiVersion":"apps/v1","kind":kind,"metadata":meta,"spec":{"template":{"spec":spec}}}),
        ),
        other => panic!("{other}"),
    }
}

/// Every workload kind whose pod template is judged (and, when asked, pinned).
pub const WORKLOAD_KINDS: [&str; 7] = [
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicationController",
];

/// The [`review`] of a CREATE of a Pod with one container per image.
pub fn pod_review(uid: &str, images: &[&str]) -> Value {
    review(uid, "Pod", "CREATE", pod_spec(images), None, None, false)
}

/// The [`review`] `kubectl debug` makes: an UPDATE of `pods/ephemeralcontainers` from the pod
/// spec `old` to `new`.
pub fn debug_review(uid: &str, old: Value, new: Value) -> Value {
    review(
        uid,
        "Pod",
        "UPDATE",
        new,
        Some(old),
        Some("ephemeralcontainers"),
        false,
    )
}

/// An AdmissionReview shaped as kube-apiserver sends it: `op` on an object of `kind` with pod
/// spec `spec` (and `old` as the old object's pod spec), for `sub_resource` if any.
pub fn review(
    uid: &str,
    kind: &str,
    op: &str,
    spec: Value,
    old: Option<Value>,
    sub_resource: Option<&str>,
    dry_run: bool,
) -> Value {
    let (group, version, resource, obj) = object(kind, spec);
    let old_obj = old.map(|o| object(kind, o).3);
    let mut req = json!({
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": "w", "namespace": "team", "operation": op,
        "userInfo": {"username": "kubernetes-admin", "uid": "aaaa", "groups": ["system:masters", "system:authenticated"]},
        "object": if op == "DELETE" { Value::Null } else { obj.clone() },
        "oldObject": if op == "DELETE" { obj } else { old_obj.unwrap_or(Value::Null) },
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": if op == "CREATE" { "CreateOptions" } else { "UpdateOptions" }}
    });
    if let Some(s) = sub_resource {
        req["subResource"] = s.into();
        req["requestSubResource"] = s.into();
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
}
