//! Multi-tenant clusters, end to end: `vouch serve` reading each pod's pull credentials
//! (`serve.pullCredentials`) from a fake Kubernetes API server (list + watch, as kube-rs's
//! watcher speaks it) for a real docker-registry with htpasswd authentication, and trust chosen
//! per namespace (`namespaces:`), by name and by label selector.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use common::kube_api::{pull_secret, Cluster, FakeApi};
use common::webhook::{message, pod_spec, review, start_with_env, Webhook};
use common::Registry;

const DIGEST: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

/// The open registry holding the signed image, and a second one serving the same storage
/// behind htpasswd (alice's and bob's passwords).
fn registries() -> &'static (Registry, Registry) {
    static R: OnceLock<(Registry, Registry)> = OnceLock::new();
    R.get_or_init(|| {
        let open = Registry::with_e2e_layouts(&[("e2e-valid-signature", "team-a/app")]);
        let private = open.with_htpasswd(&[("alice", "alice-pw"), ("bob", "bob-pw")]);
        (open, private)
    })
}

fn private_host() -> &'static str {
    &registries().1.host
}

const POLICY: &str = r#"{"version":"1.0","trustPolicies":[
 {"name":"prod","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#;

fn secret(ns: &str, name: &str, host: &str, user: &str, password: &str) -> Value {
    pull_secret(ns, name, &[(host, user, password)])
}

fn account(ns: &str, name: &str, secrets: &[&str]) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"namespace": ns, "name": name},
           "imagePullSecrets": secrets.iter().map(|s| json!({"name": s})).collect::<Vec<_>>()})
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

fn cluster() -> Cluster {
    let host = private_host();
    Cluster {
        objects: vec![
            (
                "secrets".into(),
                secret("team-a", "regcred", host, "alice", "alice-pw"),
            ),
            (
                "secrets".into(),
                secret("team-a", "sa-cred", host, "alice", "alice-pw"),
            ),
            (
                "secrets".into(),
                secret("team-a", "wrong", host, "alice", "not-the-password"),
            ),
            // Another tenant's secret: never used for team-a's pods.
            (
                "secrets".into(),
                secret("team-b", "regcred", host, "bob", "bob-pw"),
            ),
            ("serviceaccounts".into(), account("team-a", "default", &[])),
            (
                "serviceaccounts".into(),
                account("team-a", "builder", &["sa-cred"]),
            ),
            (
                "namespaces".into(),
                namespace("team-a", json!({"tenant": "a"})),
            ),
            (
                "namespaces".into(),
                namespace("team-b", json!({"tenant": "b", "tier": "prod"})),
            ),
            ("namespaces".into(), namespace("other", json!({}))),
        ],
        ..Default::default()
    }
}

/// A Pod CREATE in `ns` with `image`, naming `secrets` and `account`.
fn pod(uid: &str, ns: &str, image: &str, secrets: &[&str], account: Option<&str>) -> Value {
    let mut spec = pod_spec(&[image]);
    if !secrets.is_empty() {
        spec["imagePullSecrets"] = secrets.iter().map(|s| json!({"name": s})).collect();
    }
    if let Some(a) = account {
        spec["serviceAccountName"] = a.into();
    }
    let mut r = review(uid, "Pod", "CREATE", spec, None, None, false);
    r["request"]["namespace"] = ns.into();
    r["request"]["object"]["metadata"]["namespace"] = ns.into();
    r
}

async fn serve(
    api: &FakeApi,
    config: &str,
    policy: &str,
    env: &[(&str, &str)],
) -> (Webhook, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let mut all = vec![("KUBECONFIG", kubeconfig.to_str().unwrap())];
    all.extend_from_slice(env);
    let w = start_with_env(
        &["--insecure-registry", &registries().0.host],
        private_host(),
        policy,
        config,
        None,
        &all,
    )
    .await;
    (w, dir)
}

/// Wait (generously) until the server's watches have listed every kind it watches.
async fn synced(api: &FakeApi, plurals: &[&str]) {
    let started = Instant::now();
    while !plurals
        .iter()
        .all(|p| api.count(|l| l.starts_with(&format!("watch {p} "))) > 0)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no watch started: {:?}",
            api.requests()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn pod_only_uses_the_pods_secrets_then_its_service_accounts_and_follows_rotation() {
    let api = FakeApi::start(cluster());
    let (w, _dir) = serve(&api, "serve:\n  pullCredentials: pod-only\n", POLICY, &[]).await;
    synced(&api, &["secrets", "serviceaccounts"]).await;
    let image = format!("{}/team-a/app@{DIGEST}", private_host());
    let tag = format!("{}/team-a/app:v1", private_host());

    // Its own secret.
    let r = w
        .review(&pod("p1", "team-a", &image, &["regcred"], None))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    // Its ServiceAccount's secret.
    let r = w
        .review(&pod("p2", "team-a", &tag, &[], Some("builder")))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    // No secret: the verdict for this digest is cached (p1), but the pod cannot read it.
    let r = w.review(&pod("p3", "team-a", &image, &[], None)).await;
    assert_eq!(r["allowed"], false, "{r}");
    let msg = message(&r);
    assert!(
        msg.contains("pod-only") && msg.contains("cannot read"),
        "{msg}"
    );
    // A wrong password, and a secret that does not exist (named in the answer).
    let r = w
        .review(&pod("p4", "team-a", &image, &["wrong"], None))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    let r = w
        .review(&pod("p5", "team-a", &image, &["nope"], None))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        message(&r).contains("pull secret team-a/nope does not exist"),
        "{}",
        message(&r)
    );
    // Another namespace's secret of the same name is not team-a's.
    let r = w
        .review(&pod("p6", "team-c", &image, &["regcred"], None))
        .await;
    assert_eq!(r["allowed"], false, "{r}");

    // Rotation: the wrong secret gets the right password; the watch's MODIFIED event makes
    // the next admission use it.
    api.apply(
        "secrets",
        secret("team-a", "wrong", private_host(), "alice", "alice-pw"),
    );
    let started = Instant::now();
    loop {
        let r = w
            .review(&pod("p7", "team-a", &image, &["wrong"], None))
            .await;
        if r["allowed"] == true {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "rotation never took effect: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Cached secrets were never fetched one by one: the watch served them.
    let gets = api.count(|l| {
        l.starts_with("get secrets team-a/regcred") || l.starts_with("get secrets team-a/wrong")
    });
    assert_eq!(gets, 0, "{:?}", api.requests());
    // A missing name is looked up directly (bounded), not assumed.
    assert!(api.count(|l| l.starts_with("get secrets team-a/nope")) >= 1);
    // Only docker-config Secrets are watched, by field selector.
    assert!(
        api.count(
            |l| l.starts_with("watch secrets") && l.contains("type=kubernetes.io/dockerconfigjson")
        ) > 0
    );
}

#[tokio::test]
async fn pod_mode_falls_back_to_vouchs_own_credentials() {
    let api = FakeApi::start(cluster());
    let dir = tempfile::tempdir().unwrap();
    let docker = dir.path().join("config.json");
    let auth = base64::engine::general_purpose::STANDARD.encode("bob:bob-pw");
    std::fs::write(
        &docker,
        json!({"auths": {private_host(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let config = format!(
        "dockerConfig: {}\nserve:\n  pullCredentials: pod\n",
        docker.display()
    );
    let (w, _d) = serve(&api, &config, POLICY, &[]).await;
    synced(&api, &["secrets", "serviceaccounts"]).await;
    let image = format!("{}/team-a/app@{DIGEST}", private_host());
    // No pod credential for the registry: vouch's own read it.
    let r = w.review(&pod("q1", "team-a", &image, &[], None)).await;
    assert_eq!(r["allowed"], true, "{r}");
    // The pod's own (wrong) credential names the registry: it is the one used, and refused.
    let r = w
        .review(&pod(
            "q2",
            "team-a",
            &format!("{}/team-a/app:v1", private_host()),
            &["wrong"],
            None,
        ))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
}

#[tokio::test]
async fn trust_is_chosen_per_namespace_by_name_and_by_label() {
    let (open, _) = registries();
    let api = FakeApi::start(cluster());
    let dir = tempfile::tempdir().unwrap();
    common::e2e_trust_store(&dir.path().join("store"));
    let store = dir.path().join("store");
    // Team A trusts the e2e signer; team B (selected by label) only its own identity.
    let a = common::policy_file(
        dir.path(),
        r#"{"version":"1.0","trustPolicies":[{"name":"team-a","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#,
    );
    let b_path = dir.path().join("b.json");
    std::fs::write(&b_path, r#"{"version":"1.0","trustPolicies":[{"name":"team-b","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["x509.subject: CN=team-b release,O=Example,ST=WA,C=US"]}]}"#).unwrap();
    let config = format!(
        "serve:\n  reloadInterval: 200ms\nnamespaces:\n  - name: team-a\n    names: [team-a]\n    trustPolicy: {}\n    trustStore: {}\n  - name: tenant-b\n    selector:\n      matchLabels: {{tenant: b}}\n      matchExpressions: [{{key: tier, operator: In, values: [prod]}}]\n    trustPolicy: {}\n    trustStore: {}\n",
        a.display(), store.display(), b_path.display(), store.display()
    );
    // The cluster-wide policy refuses everything it judges (no identity trusted).
    let cluster_policy = r#"{"version":"1.0","trustPolicies":[{"name":"cluster","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["x509.subject: CN=nobody,O=Example,ST=WA,C=US"]}]}"#;
    let (w, _d) = serve(&api, &config, cluster_policy, &[]).await;
    let image = format!("{}/team-a/app@{DIGEST}", open.host);
    for round in 0..2 {
        // Admitted in A (twice: the second from the cache) …
        let r = w
            .review(&pod(&format!("a{round}"), "team-a", &image, &[], None))
            .await;
        assert_eq!(r["allowed"], true, "{r}");
        assert!(
            r["auditAnnotations"]["verdicts"]
                .as_str()
                .unwrap()
                .contains("team-a"),
            "{r}"
        );
        // … refused in B although A's verdict for the same digest is cached …
        let r = w
            .review(&pod(&format!("b{round}"), "team-b", &image, &[], None))
            .await;
        assert_eq!(r["allowed"], false, "{r}");
        let msg = message(&r);
        assert!(msg.contains("trust policy: tenant-b"), "{msg}");
        // … and by the cluster-wide policy in a namespace no mapping selects.
        let r = w
            .review(&pod(&format!("o{round}"), "other", &image, &[], None))
            .await;
        assert_eq!(r["allowed"], false, "{r}");
        assert!(
            message(&r).contains("trust policy: cluster"),
            "{}",
            message(&r)
        );
    }
    // The selector read the namespace labels through the watch.
    assert!(
        api.count(|l| l.starts_with("watch namespaces")) > 0
            || api.count(|l| l.starts_with("get namespaces")) > 0
    );

    // Hot reload of a mapping's document: B now trusts the e2e signer.
    std::fs::write(&b_path, r#"{"version":"1.0","trustPolicies":[{"name":"team-b","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#).unwrap();
    let started = Instant::now();
    loop {
        let r = w
            .review(&pod("b-reloaded", "team-b", &image, &[], None))
            .await;
        if r["allowed"] == true {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "reload never applied: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A broken reload keeps the last good document.
    std::fs::write(&b_path, "{ not json").unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let r = w
        .review(&pod("b-broken", "team-b", &image, &[], None))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
}

/// Under `pod-only` a tenant that cannot read an image learns nothing about it from what other
/// tenants' admissions left in the caches: not the digest their tag resolved to, not whether
/// it verified (tags are resolved, and judgements cached, per reading credential).
#[tokio::test]
async fn pod_only_denials_reveal_nothing_another_tenant_resolved_or_judged() {
    let (open, _) = registries();
    let unsigned = open.push_unsigned_image("team-a/unsigned", 16_016);
    open.tag("team-a/unsigned", &unsigned, "v1");
    let api = FakeApi::start(cluster());
    let (w, _dir) = serve(&api, "serve:\n  pullCredentials: pod-only\n", POLICY, &[]).await;
    synced(&api, &["secrets", "serviceaccounts"]).await;
    let signed = format!("{}/team-a/app:v1", private_host());
    let unsigned_tag = format!("{}/team-a/unsigned:v1", private_host());
    // Team A reads both: the signed one is admitted, the unsigned one refused (both cached).
    let r = w
        .review(&pod("a1", "team-a", &signed, &["regcred"], None))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    let r = w
        .review(&pod("a2", "team-a", &unsigned_tag, &["regcred"], None))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    // Team C has no credential for the registry: both are refused as unreadable, and neither
    // answer names the digest team A's credentials resolved.
    for (uid, image, digest) in [("c1", &signed, DIGEST), ("c2", &unsigned_tag, &unsigned)] {
        let r = w.review(&pod(uid, "team-c", image, &[], None)).await;
        assert_eq!(r["allowed"], false, "{r}");
        let msg = message(&r);
        // Its own credentials resolve its own tag: the registry's refusal is the answer.
        assert!(
            (msg.contains("pod-only") && msg.contains("cannot read"))
                || msg.contains("denied access to manifest"),
            "{image}: {msg}"
        );
        assert!(!msg.contains(digest), "{image}: the digest leaked: {msg}");
        assert!(
            !msg.contains("signature"),
            "{image}: another tenant's verification result leaked: {msg}"
        );
    }
}

/// A review shed because vouch is overloaded is answered by the policy of its namespace's
/// mapping, not by the cluster-wide one: an `audit` cluster policy must not admit, unverified,
/// a pod of a namespace whose own policy is `strict`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shed_reviews_are_answered_by_their_namespaces_policy() {
    let stalled = common::hostile_client::Stalled::start(100).await;
    let dir = tempfile::tempdir().unwrap();
    common::e2e_trust_store(&dir.path().join("store"));
    let strict = common::policy_file(
        dir.path(),
        r#"{"version":"1.0","trustPolicies":[{"name":"team-a","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#,
    );
    let config = format!(
        "serve:\n  deadline: 3s\n  maxPending: 1\nnamespaces:\n  - name: team-a\n    names: [team-a]\n    trustPolicy: {}\n    trustStore: {}\n",
        strict.display(),
        dir.path().join("store").display()
    );
    let cluster_policy = r#"{"version":"1.0","trustPolicies":[{"name":"cluster","registryScopes":["*"],"signatureVerification":{"level":"audit"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#;
    let w = std::sync::Arc::new(
        start_with_env(&[], &stalled.host, cluster_policy, &config, None, &[]).await,
    );
    // One review waits on the stalled registry and holds the only pending slot.
    let waiting = {
        let w = w.clone();
        let image = format!("{}/app:v1", stalled.host);
        tokio::spawn(async move { w.review(&pod("held", "other", &image, &[], None)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let image = format!("{}/app:v2", stalled.host);
    let r = w.review(&pod("shed-a", "team-a", &image, &[], None)).await;
    let msg = message(&r);
    assert!(
        msg.contains("vouch is overloaded") || r.to_string().contains("vouch is overloaded"),
        "not shed: {r}"
    );
    assert_eq!(
        r["allowed"], false,
        "team-a's strict policy fails closed: {r}"
    );
    assert!(msg.contains("trust policy: team-a"), "{msg}");
    // A namespace no mapping picks keeps the cluster-wide (audit) answer.
    let r = w.review(&pod("shed-o", "other", &image, &[], None)).await;
    assert_eq!(r["allowed"], true, "{r}");
    waiting.await.unwrap();
}

/// Log lines written while a test runs (a `tracing` writer).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// What tenants' Secrets can make vouch hold is bounded: a credential over the size limit is
/// skipped (the Secret named in the log), the cache stops at its byte budget (logged once) and
/// names past it are read by a direct GET, and Secrets are listed 50 to a page.
#[tokio::test]
async fn pull_secret_caches_are_bounded_in_bytes_and_oversized_credentials_skipped() {
    use vouch::tenancy::{CacheLimits, PullRefs, Tenancy, Watches};
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The current-thread runtime runs the watch tasks on this thread: they log here.
    let _guard = tracing::subscriber::set_default(subscriber);
    let huge = "p".repeat(vouch::tenancy::pull_secrets::MAX_CREDENTIAL_FIELD_BYTES + 1);
    let password = "k".repeat(1000);
    let mut objects = vec![
        (
            "secrets".to_string(),
            pull_secret(
                "t1",
                "mixed",
                &[
                    ("big.example", "u", &huge),
                    ("registry.example", "alice", "pw"),
                ],
            ),
        ),
        ("serviceaccounts".to_string(), account("t1", "default", &[])),
    ];
    for i in 0..10 {
        objects.push((
            "secrets".into(),
            pull_secret(
                "t1",
                &format!("s{i}"),
                &[("registry.example", &format!("user{i}"), &password)],
            ),
        ));
    }
    let api = FakeApi::start(Cluster {
        objects,
        ..Default::default()
    });
    let client = kube::Client::try_from(kube::Config::new(api.url.parse().unwrap())).unwrap();
    // Room for about three of the ~1 KiB secrets.
    let tenancy = Tenancy::start_with(
        client,
        Watches {
            pull_credentials: true,
            namespaces: false,
        },
        CacheLimits {
            entries: 1000,
            bytes: 4000,
        },
    );
    let started = Instant::now();
    while !tenancy.synced() {
        assert!(started.elapsed() < Duration::from_secs(30), "never synced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let due = Instant::now() + Duration::from_secs(10);
    let refs = |name: &str| PullRefs {
        secrets: vec![name.into()],
        service_account: "default".into(),
    };
    let (mixed, notes) = tenancy.pull_credentials("t1", &refs("mixed"), due).await;
    assert!(notes.is_empty(), "{notes:?}");
    let hosts: Vec<&str> = mixed.iter().map(|c| c.host.as_str()).collect();
    assert_eq!(
        hosts,
        ["registry.example"],
        "the oversized credential is skipped"
    );
    let mut fetched = 0;
    for i in 0..10 {
        let name = format!("s{i}");
        let (creds, notes) = tenancy.pull_credentials("t1", &refs(&name), due).await;
        assert!(notes.is_empty(), "{name}: {notes:?}");
        assert_eq!(
            creds.len(),
            1,
            "{name}: every secret is read, cached or not"
        );
        assert_eq!(
            creds[0].credential,
            vouch::registry::auth::Credential::Basic {
                username: format!("user{i}"),
                password: password.clone()
            }
        );
        if api.count(|l| l == format!("get secrets t1/{name}")) > 0 {
            fetched += 1;
        }
    }
    assert!(
        (5..10).contains(&fetched),
        "the cache held a few, the rest were read by GET: {fetched} fetched; {:?}",
        api.requests()
    );
    let text = logs.text();
    assert!(
        text.contains("pull secret t1/mixed")
            && text.contains("big.example")
            && text.contains("over the limit of 16 KiB"),
        "{text}"
    );
    assert_eq!(
        text.matches("watch cache full").count(),
        1,
        "logged once: {text}"
    );
    assert!(text.contains("4000 bytes"), "{text}");
    let secret_lists: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|l| l.starts_with("list secrets"))
        .collect();
    assert!(!secret_lists.is_empty());
    for l in &secret_lists {
        assert!(l.contains(r#""limit": "50""#), "{l}");
    }
}

/// Through `vouch serve`: a Secret with an oversized credential is still read for its others,
/// and one whose only credential for the registry is oversized reads nothing.
#[tokio::test]
async fn oversized_pull_credentials_are_skipped_not_fatal() {
    let huge = "p".repeat(vouch::tenancy::pull_secrets::MAX_CREDENTIAL_FIELD_BYTES + 1);
    let host = private_host();
    let mut cluster = cluster();
    cluster.objects.push((
        "secrets".into(),
        pull_secret(
            "team-a",
            "mixed",
            &[("big.example", "u", &huge), (host, "alice", "alice-pw")],
        ),
    ));
    cluster.objects.push((
        "secrets".into(),
        pull_secret("team-a", "only-huge", &[(host, "alice", &huge)]),
    ));
    let api = FakeApi::start(cluster);
    let (w, _dir) = serve(&api, "serve:\n  pullCredentials: pod-only\n", POLICY, &[]).await;
    synced(&api, &["secrets", "serviceaccounts"]).await;
    let image = format!("{host}/team-a/app@{DIGEST}");
    let r = w
        .review(&pod("m1", "team-a", &image, &["mixed"], None))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    let r = w
        .review(&pod("m2", "team-a", &image, &["only-huge"], None))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(message(&r).contains("cannot read"), "{}", message(&r));
}
