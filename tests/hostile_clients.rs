//! Issue 11, defects 2 and 3: hostile clients of `vouch serve` (connections that finish TLS and
//! send nothing, headers a byte at a time, idle HTTP/2, HTTP/2 streams sending bodies slowly,
//! more connections than the cap or the file-descriptor limit) and floods of admissions on a stalled registry. The webhook must close
//! what is useless within its timeouts, keep answering real admissions, and answer every review
//! before its deadline.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::fake_registry::{FakeRegistry, State};
use common::hostile_client::{Held, Hostile, Stalled, Target};
use common::vectors;

/// The signed e2e image (`e2e-valid-signature` layout).
const SIGNED_DIGEST: &str =
    "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

/// `skipped` needs no registry for a digest reference; `sandbox` is audit; the rest strict.
const POLICY: &str = r#"{"version":"1.0","trustPolicies":[
 {"name":"skipped","registryScopes":["127.0.0.1:9/skipped"],"signatureVerification":{"level":"skip"}},
 {"name":"sandbox","registryScopes":["STALLED/sandbox/app"],"signatureVerification":{"level":"audit"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]},
 {"name":"prod","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#;

struct Webhook {
    child: Child,
    port: u16,
    ca_pem: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `vouch serve` with `serve:` settings (YAML lines), registries reached over HTTP, and
/// at most `nofile` file descriptors when given.
async fn start(serve: &str, insecure: &[&str], stalled: &str, nofile: Option<u64>) -> Webhook {
    let dir = tempfile::tempdir().unwrap();
    let tls = common::TestTls::in_dir(dir.path());
    let (ca_pem, cert, key) = (tls.ca_pem(), tls.cert, tls.key);
    common::e2e_trust_store(&dir.path().join("store"));
    let policy = dir.path().join("trustpolicy.json");
    std::fs::write(&policy, POLICY.replace("STALLED", stalled)).unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, format!("serve:\n{serve}")).unwrap();
    let port = common::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--trust-policy")
        .arg(&policy)
        .arg("--trust-store")
        .arg(dir.path().join("store"))
        .arg("--config")
        .arg(&config)
        .env_remove("DOCKER_CONFIG")
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for host in insecure {
        cmd.arg("--insecure-registry").arg(host);
    }
    // SAFETY: prctl and setrlimit are async-signal-safe; nothing else runs before exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if let Some(n) = nofile {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn vouch serve");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut w = Webhook {
        child,
        port,
        ca_pem,
        client,
        _dir: dir,
    };
    let started = Instant::now();
    loop {
        if let Ok(r) = w.client.get(w.url("/healthz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        if let Some(status) = w.child.try_wait().unwrap() {
            panic!("vouch serve exited: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "vouch serve did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w
}

impl Webhook {
    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    fn target(&self) -> Target {
        Target::new(self.port, &self.ca_pem)
    }

    /// Send a review for a Pod running `images`; the answer, and how long it took.
    async fn review_with(
        &self,
        client: &reqwest::Client,
        uid: &str,
        images: &[&str],
    ) -> (Value, Duration) {
        let containers: Vec<Value> = images
            .iter()
            .enumerate()
            .map(|(i, im)| json!({"name": format!("c{i}"), "image": im}))
            .collect();
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "name": uid, "namespace": "team", "operation": "CREATE",
                "object": {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": uid, "namespace": "team"},
                    "spec": {"containers": containers}},
            }
        });
        let sent = Instant::now();
        let r = client
            .post(self.url("/validate"))
            .json(&review)
            .send()
            .await
            .unwrap_or_else(|e| panic!("review {uid}: {e}"));
        let status = r.status();
        let body = r.text().await.unwrap();
        let took = sent.elapsed();
        assert_eq!(status, 200, "review {uid}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["response"]["uid"], uid);
        (v["response"].clone(), took)
    }

    async fn review(&self, uid: &str, images: &[&str]) -> (Value, Duration) {
        self.review_with(&self.client, uid, images).await
    }

    async fn metrics(&self) -> String {
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

/// An image that needs no registry: a `skip` statement and a digest.
fn skipped_image() -> String {
    format!("127.0.0.1:9/skipped@sha256:{}", "a".repeat(64))
}

fn message(r: &Value) -> &str {
    r["status"]["message"].as_str().unwrap_or_default()
}

async fn outcomes(handles: Vec<tokio::task::JoinHandle<Held>>) -> Vec<Held> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Defect 2: stalled handshakes and silent, slow-header and idle HTTP/2 connections are closed
/// within the configured timeouts (before this fix every connection that finished TLS was held
/// indefinitely, and a stalled handshake for 10 s), and a real admission is answered while they
/// are open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_within_their_timeouts() {
    let w = start(
        "  readTimeout: 2s\n  idleTimeout: 3s\n",
        &[],
        "127.0.0.1:9",
        None,
    )
    .await;
    let target = w.target();
    let give_up = Duration::from_secs(15);
    let mut handles = Vec::new();
    for kind in [
        Hostile::StalledHandshake,
        Hostile::SilentH1,
        Hostile::SilentH2,
        Hostile::SlowHeaders,
        Hostile::IdleH2,
    ] {
        handles.push((kind, target.hold_many(kind, 25, give_up)));
    }
    // While they are open, a real admission is answered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (r, took) = w.review("real-1", &[&skipped_image()]).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(took < Duration::from_secs(5), "answered in {took:?}");
    for (kind, hs) in handles {
        // readTimeout (or idleTimeout after the HTTP/2 request), the 2 s allowed for a graceful
        // close, and generous slack for a loaded machine.
        let bound = match kind {
            Hostile::IdleH2 => Duration::from_secs(3 + 2 + 4),
            _ => Duration::from_secs(2 + 2 + 4),
        };
        for held in outcomes(hs).await {
            match held {
                Held::Closed(t) => assert!(t < bound, "{kind:?} closed only after {t:?}"),
                other => panic!("{kind:?} connection: {other:?} (the server never closed it)"),
            }
        }
    }
    let metrics = w.metrics().await;
    for reason in ["read_timeout", "idle"] {
        let line = format!("vouch_connections_closed_total{{kind=\"{reason}\"}}");
        assert!(metrics.contains(&line), "{line} missing from:\n{metrics}");
    }
}

/// Defect 2: more hostile connections than the file-descriptor limit allows. Before this fix
/// vouch accepted until it ran out of descriptors and real admissions timed out; now the
/// connection cap stays below the limit and the oldest idle connection makes room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_admission_is_answered_past_the_connection_cap() {
    let w = start(
        "  maxConnections: 100\n  readTimeout: 20s\n  idleTimeout: 30s\n",
        &[],
        "127.0.0.1:9",
        Some(256),
    )
    .await;
    let target = w.target();
    let give_up = Duration::from_secs(25);
    let mut handles = target.hold_many(Hostile::SilentH1, 150, give_up);
    handles.extend(target.hold_many(Hostile::IdleH2, 50, give_up));
    handles.extend(target.hold_many(Hostile::SlowHeaders, 100, give_up));
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A fresh client: a new connection, as the API server would open.
    let fresh = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(w.ca_pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(8))
        .build()
        .unwrap();
    for i in 0..3 {
        let (r, took) = w
            .review_with(&fresh, &format!("past-cap-{i}"), &[&skipped_image()])
            .await;
        assert_eq!(r["allowed"], true, "{r}");
        assert!(took < Duration::from_secs(8), "answered in {took:?}");
    }
    let metrics = w.metrics().await;
    assert!(
        metrics.contains("vouch_connections_closed_total{kind=\"evicted\"}"),
        "{metrics}"
    );
    for h in handles {
        h.abort();
    }
}

/// A client with a connection of its own, as the API server opens one.
fn fresh_client(w: &Webhook) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(w.ca_pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Defect 2 (review): a few HTTP/2 connections, each with many streams sending their review
/// bodies slowly. Before this fix they held every reading slot (100 streams per connection,
/// one FIFO queue for the server's slots), and a real review on another connection queued
/// behind them until its deadline (503, or 408 when `readTimeout` ran out first); now one connection reads at most its share of the
/// slots (2 of 16 here) and the review is answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_http2_bodies_on_a_few_connections_do_not_starve_a_review() {
    let w = start(
        // readTimeout past the deadline: a slow body holds its slot until its deadline.
        "  maxConcurrency: 16\n  readTimeout: 10s\n",
        &[],
        "127.0.0.1:9",
        None,
    )
    .await;
    let handles = w
        .target()
        .hold_many(Hostile::SlowBodyH2, 3, Duration::from_secs(25));
    // Long enough for the flood to be under way: streams keep arriving for 5 s, and each
    // answered one is replaced.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fresh = fresh_client(&w);
    for i in 0..4 {
        let (r, took) = w
            .review_with(
                &fresh,
                &format!("beside-slow-bodies-{i}"),
                &[&skipped_image()],
            )
            .await;
        assert_eq!(r["allowed"], true, "{r}");
        // Well before the 8 s deadline (behind the flood it took the whole deadline: 503).
        assert!(took < Duration::from_secs(4), "answered in {took:?}");
    }
    // The attack was still on: its connections were open, not closed by a flood guard.
    let metrics = w.metrics().await;
    assert!(
        metrics.contains("vouch_connections_open 5")
            || metrics.contains("vouch_connections_open 4"),
        "{metrics}"
    );
    for h in handles {
        h.abort();
    }
}

/// Defect 2 (review): at the connection cap, connections that have never completed a request
/// make room even with requests in flight. Before this fix only a connection with no request
/// in flight could be closed, so slow-body connections filling the cap got a new connection
/// closed at once; now the oldest of them is closed and the review is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_http2_bodies_at_the_connection_cap_make_room() {
    let w = start(
        "  maxConnections: 4\n  readTimeout: 5s\n",
        &[],
        "127.0.0.1:9",
        None,
    )
    .await;
    let handles = w
        .target()
        .hold_many(Hostile::SlowBodyH2, 4, Duration::from_secs(25));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fresh = fresh_client(&w);
    for i in 0..2 {
        let (r, took) = w
            .review_with(&fresh, &format!("at-the-cap-{i}"), &[&skipped_image()])
            .await;
        assert_eq!(r["allowed"], true, "{r}");
        assert!(took < Duration::from_secs(8), "answered in {took:?}");
    }
    let metrics = w.metrics().await;
    assert!(
        metrics.contains("vouch_connections_closed_total{kind=\"evicted\"}"),
        "{metrics}"
    );
    for h in handles {
        h.abort();
    }
}

fn signed_registry() -> FakeRegistry {
    let mut st = State {
        referrers_api: true,
        ..Default::default()
    };
    st.load_layout(&vectors().join("notation-e2e/layouts/e2e-valid-signature"))
        .expect("layout");
    FakeRegistry::start(st).expect("fake registry")
}

/// Defect 3: a flood of pods on a stalled registry (more than `maxConcurrency`) plus one normal
/// pod. Before this fix requests queued for the concurrency limit outside the deadline and were
/// answered in waves, long after it; now every answer arrives before the deadline, the stalled
/// ones fail closed saying why, and the normal pod is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_on_a_stalled_registry_is_answered_before_the_deadline() {
    let stalled = Stalled::start(1000).await;
    let good = signed_registry();
    let w = start(
        "  deadline: 2s\n  maxConcurrency: 4\n",
        &[&stalled.host, &good.host],
        &stalled.host,
        None,
    )
    .await;
    let deadline = Duration::from_secs(2);
    let slack = Duration::from_millis(1500);
    let mut tasks = Vec::new();
    // Four connections, as the API server opens more when one has its 32 HTTP/2 streams busy
    // (one reqwest client would queue the rest behind them instead).
    let clients: Vec<reqwest::Client> = (0..4).map(|_| fresh_client(&w)).collect();
    let w = std::sync::Arc::new(w);
    for i in 0..60 {
        let (w, client) = (w.clone(), clients[i % clients.len()].clone());
        let image = format!("{}/app:v{i}", stalled.host);
        tasks.push(tokio::spawn(async move {
            w.review_with(&client, &format!("stalled-{i}"), &[&image])
                .await
        }));
    }
    let normal = format!("{}/signed@{SIGNED_DIGEST}", good.host);
    let (r, took) = w.review("normal", &[&normal]).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(took < deadline + slack, "normal pod answered in {took:?}");
    for t in tasks {
        let (r, took) = t.await.unwrap();
        assert!(took < deadline + slack, "answered in {took:?}: {r}");
        assert_eq!(r["allowed"], false, "{r}");
        assert!(message(&r).contains("did not finish within 2s"), "{r}");
    }
}

/// Defect 3: past `maxPending` new reviews are shed at once with the fail-closed answer — a
/// denial saying vouch is overloaded, or an allow with that warning for an audit statement —
/// instead of waiting behind the requests already accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_past_max_pending_are_shed_with_the_fail_closed_answer() {
    let stalled = Stalled::start(1000).await;
    let w = std::sync::Arc::new(
        start(
            "  deadline: 2s\n  maxPending: 10\n",
            &[&stalled.host],
            &stalled.host,
            None,
        )
        .await,
    );
    let deadline = Duration::from_secs(2);
    let slack = Duration::from_millis(1500);
    let spawn = |uid: String, image: String| {
        let w = w.clone();
        tokio::spawn(async move { w.review(&uid, &[&image]).await })
    };
    let accepted: Vec<_> = (0..10)
        .map(|i| spawn(format!("first-{i}"), format!("{}/app:v{i}", stalled.host)))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shed: Vec<_> = (0..20)
        .map(|i| spawn(format!("more-{i}"), format!("{}/app:w{i}", stalled.host)))
        .collect();
    let (audit, took) = w
        .review("audit", &[&format!("{}/sandbox/app:v1", stalled.host)])
        .await;
    assert!(took < Duration::from_secs(1), "shed in {took:?}");
    assert_eq!(
        audit["allowed"], true,
        "audit statements fail open: {audit}"
    );
    assert!(
        audit["warnings"]
            .to_string()
            .contains("vouch is overloaded"),
        "{audit}"
    );
    for t in accepted {
        let (r, took) = t.await.unwrap();
        assert!(took < deadline + slack, "answered in {took:?}: {r}");
        assert!(message(&r).contains("did not finish within 2s"), "{r}");
    }
    for t in shed {
        let (r, took) = t.await.unwrap();
        assert!(took < Duration::from_secs(1), "shed in {took:?}: {r}");
        assert_eq!(r["allowed"], false, "{r}");
        assert!(message(&r).contains("vouch is overloaded"), "{r}");
    }
    // Once the flood is answered, new reviews are judged again.
    let (r, _) = w.review("after", &[&skipped_image()]).await;
    assert_eq!(r["allowed"], true, "{r}");
    let metrics = w.metrics().await;
    assert!(
        metrics.contains("vouch_admission_shed_total{kind=\"overloaded\"} 21"),
        "{metrics}"
    );
}
