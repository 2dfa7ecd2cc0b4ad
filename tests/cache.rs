//! The verdict cache: lifetimes per verdict class, policy-reload invalidation, stale-if-error,
//! single-flight under concurrency (registry requests counted), per-repository keys, and the
//! shared Redis cache with Redis killed mid-run.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake_registry::{put_image, FakeRegistry, State};
use common::pki;
use vouch::cache::shared::RedisSettings;
use vouch::cache::{CacheSettings, VerdictCache};
use vouch::gate::{Gate, GateOptions};
use vouch::notation::trust_policy::TrustPolicy;
use vouch::notation::trust_store::TrustStores;
use vouch::registry::{Descriptor, RegistryClient, RegistryOptions};
use vouch::verdict::{Admission, Outcome};

const STRICT: &str = r#"{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],
 "signatureVerification":{"level":"strict"},"trustStores":["ca:test"],"trustedIdentities":["*"]}]}"#;

struct World {
    reg: FakeRegistry,
    signed: Descriptor,
    unsigned: Descriptor,
    _store: tempfile::TempDir,
    store_root: std::path::PathBuf,
}

fn world() -> World {
    let reg = FakeRegistry::start(State {
        referrers_api: true,
        ..Default::default()
    })
    .expect("registry");
    let id = pki::self_signed("signer", &rcgen::PKCS_ECDSA_P256_SHA256);
    let signed = put_image(&reg, "app", "signed", b"signed");
    let unsigned = put_image(&reg, "app", "unsigned", b"unsigned");
    let sig = id.signer().sign_artifact(&signed, None).unwrap();
    reg.with(|s| s.put_signature(&sig));
    let store = tempfile::tempdir().unwrap();
    id.write_store(store.path(), "test");
    World {
        store_root: store.path().to_path_buf(),
        _store: store,
        reg,
        signed,
        unsigned,
    }
}

fn gate(w: &World, policy: &str, cache: Arc<VerdictCache>) -> Gate {
    let policy = Arc::new(TrustPolicy::from_json(policy.as_bytes()).unwrap());
    let stores = Arc::new(TrustStores::load(&w.store_root, policy.trust_store_refs()).unwrap());
    let registry = RegistryClient::new(RegistryOptions {
        insecure_registries: vec![w.reg.host.clone()],
        ..Default::default()
    })
    .unwrap();
    Gate::with_cache(
        registry,
        policy,
        stores,
        GateOptions {
            deadline: Duration::from_secs(10),
            ..Default::default()
        },
        cache,
    )
}

fn cache(settings: CacheSettings) -> Arc<VerdictCache> {
    Arc::new(VerdictCache::new(settings, None))
}

fn requests(w: &World) -> usize {
    w.reg.requests().len()
}

#[tokio::test]
async fn allow_and_deny_verdicts_live_for_their_own_ttls() {
    let w = world();
    let g = gate(
        &w,
        STRICT,
        cache(CacheSettings {
            allow_ttl: Duration::from_millis(1500),
            deny_ttl: Duration::from_millis(300),
            digest_ttl: Duration::from_secs(60),
            ..Default::default()
        }),
    );
    let signed = format!("{}/app@{}", w.reg.host, w.signed.digest);
    let unsigned = format!("{}/app@{}", w.reg.host, w.unsigned.digest);
    assert_eq!(g.judge(&signed).await.outcome, Outcome::Verified);
    assert_eq!(g.judge(&unsigned).await.outcome, Outcome::Failed);
    let before = requests(&w);
    assert_eq!(g.judge(&signed).await.outcome, Outcome::Verified);
    assert_eq!(g.judge(&unsigned).await.outcome, Outcome::Failed);
    assert_eq!(requests(&w), before, "both answered from memory");
    tokio::time::sleep(Duration::from_millis(500)).await;
    g.judge(&signed).await;
    assert_eq!(requests(&w), before, "allow still cached");
    g.judge(&unsigned).await;
    assert!(requests(&w) > before, "deny expired and was verified again");
    let before = requests(&w);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    g.judge(&signed).await;
    assert!(requests(&w) > before, "allow expired");
}

#[tokio::test]
async fn a_policy_reload_never_serves_a_verdict_of_the_old_policy() {
    let w = world();
    let shared = cache(CacheSettings::default());
    let strict = gate(&w, STRICT, shared.clone());
    let unsigned = format!("{}/app@{}", w.reg.host, w.unsigned.digest);
    let v = strict.judge(&unsigned).await;
    assert_eq!(v.admission, Admission::Deny);
    let audit = gate(&w, &STRICT.replace("strict", "audit"), shared.clone());
    let v = audit.judge(&unsigned).await;
    assert_eq!(
        v.admission,
        Admission::Allow,
        "new policy, new fingerprint: {v:?}"
    );
    assert_eq!(v.level.as_deref(), Some("audit"));
    // And the old policy's entry is still right for the old policy.
    assert_eq!(strict.judge(&unsigned).await.admission, Admission::Deny);
}

#[tokio::test]
async fn the_same_digest_is_judged_per_repository() {
    let w = world();
    // The signed manifest also lives in a second repository without a signature... but this
    // registry holds one store, so make the second repository's policy differ instead: a
    // statement that trusts nobody for it.
    let policy = r#"{"version":"1.0","trustPolicies":[
      {"name":"other","registryScopes":["HOST/other"],"signatureVerification":{"level":"strict"},"trustStores":["ca:test"],"trustedIdentities":["x509.subject: C=XX, ST=None, O=Nobody"]},
      {"name":"all","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:test"],"trustedIdentities":["*"]}]}"#
        .replace("HOST", &w.reg.host);
    let g = gate(&w, &policy, cache(CacheSettings::default()));
    let a = g
        .judge(&format!("{}/app@{}", w.reg.host, w.signed.digest))
        .await;
    let b = g
        .judge(&format!("{}/other@{}", w.reg.host, w.signed.digest))
        .await;
    assert_eq!(a.outcome, Outcome::Verified);
    assert_eq!(b.outcome, Outcome::Failed, "{b:?}");
}

#[tokio::test]
async fn two_hundred_concurrent_admissions_cost_the_registry_traffic_of_one() {
    let w = world();
    // The traffic of one verification, on a cold cache.
    let g1 = gate(&w, STRICT, cache(CacheSettings::default()));
    let signed = format!("{}/app:signed", w.reg.host);
    let before = requests(&w);
    assert_eq!(g1.judge(&signed).await.outcome, Outcome::Verified);
    let one = requests(&w) - before;
    assert!(one >= 4, "HEAD, referrers, manifest, blob: {one}");
    // 200 at once, on another cold cache.
    let g = gate(&w, STRICT, cache(CacheSettings::default()));
    let before = requests(&w);
    let all = futures::future::join_all((0..200).map(|_| g.judge(&signed))).await;
    assert!(all.iter().all(|v| v.outcome == Outcome::Verified));
    assert_eq!(requests(&w) - before, one, "single flight");
}

#[tokio::test]
async fn stale_if_error_serves_recent_allows_only() {
    let w = world();
    let g = gate(
        &w,
        STRICT,
        cache(CacheSettings {
            allow_ttl: Duration::from_millis(200),
            deny_ttl: Duration::from_millis(200),
            digest_ttl: Duration::from_millis(200),
            stale_if_error: Duration::from_millis(1500),
            ..Default::default()
        }),
    );
    let by_tag = format!("{}/app:signed", w.reg.host);
    let by_digest = format!("{}/app@{}", w.reg.host, w.signed.digest);
    let unsigned = format!("{}/app:unsigned", w.reg.host);
    assert_eq!(g.judge(&by_tag).await.outcome, Outcome::Verified);
    assert_eq!(g.judge(&unsigned).await.outcome, Outcome::Failed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.reg.with(|s| s.fail_status = Some(503));
    for image in [&by_tag, &by_digest] {
        let v = g.judge(image).await;
        assert_eq!(v.outcome, Outcome::Verified, "{v:?}");
        assert!(
            v.warnings
                .iter()
                .any(|w| w.contains("served from cache") && w.contains("503")),
            "{v:?}"
        );
    }
    let v = g.judge(&unsigned).await;
    assert_eq!(v.outcome, Outcome::Error, "a deny is never extended: {v:?}");
    assert_eq!(v.admission, Admission::Deny);
    // Never-seen image: fail closed.
    let v = g.judge(&format!("{}/app:never-seen", w.reg.host)).await;
    assert_eq!(v.outcome, Outcome::Error);
    // Past the window: fail closed.
    tokio::time::sleep(Duration::from_millis(1400)).await;
    let v = g.judge(&by_tag).await;
    assert_eq!(v.outcome, Outcome::Error, "{v:?}");
}

/// Stale-if-error is for a registry that cannot be reached, not one that answered: a tag the
/// registry says is not there (deleted, or hidden as ACR hides quarantined images) gets no
/// stale allow of its last digest, which a pin would otherwise run.
#[tokio::test]
async fn a_tag_the_registry_says_is_gone_gets_no_stale_allow() {
    let w = world();
    let g = gate(
        &w,
        STRICT,
        cache(CacheSettings {
            allow_ttl: Duration::from_millis(200),
            digest_ttl: Duration::from_millis(200),
            stale_if_error: Duration::from_secs(60),
            ..Default::default()
        }),
    );
    w.reg
        .with(|s| s.tags.insert("app:doomed".into(), w.signed.digest.clone()));
    let doomed = format!("{}/app:doomed", w.reg.host);
    assert_eq!(g.judge(&doomed).await.outcome, Outcome::Verified);
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.reg.with(|s| s.tags.remove("app:doomed"));
    let v = g.judge(&doomed).await;
    assert_eq!(v.outcome, Outcome::Error, "{v:?}");
    assert_eq!(v.admission, Admission::Deny);
    assert!(v.pinned.is_none(), "{v:?}");
    assert!(
        !v.warnings.iter().any(|w| w.contains("served from cache")),
        "{v:?}"
    );
    // A registry that cannot be reached still gets the stale allow (for the digest itself).
    w.reg.with(|s| s.fail_status = Some(503));
    let by_digest = format!("{}/app@{}", w.reg.host, w.signed.digest);
    assert_eq!(g.judge(&by_digest).await.outcome, Outcome::Verified);
}

struct RedisServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_server() -> RedisServer {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let child = common::spawn_tied_to_process(
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(dir.path())
            .stdout(Stdio::null()),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    RedisServer {
        child,
        url: format!("redis://127.0.0.1:{port}"),
        _dir: dir,
    }
}

#[tokio::test]
async fn replicas_share_verdicts_through_redis_and_survive_its_death() {
    let w = world();
    let mut redis = redis_server();
    let settings = CacheSettings {
        redis: Some(RedisSettings {
            url: redis.url.clone(),
            timeout: Duration::from_millis(50),
            key_prefix: "vouch:test:".into(),
        }),
        ..Default::default()
    };
    let replica_a = gate(&w, STRICT, cache(settings.clone()));
    let replica_b = gate(&w, STRICT, cache(settings.clone()));
    let signed = format!("{}/app@{}", w.reg.host, w.signed.digest);
    assert_eq!(replica_a.judge(&signed).await.outcome, Outcome::Verified);
    // The write is in the background; give it a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = requests(&w);
    let v = replica_b.judge(&signed).await;
    assert_eq!(v.outcome, Outcome::Verified);
    assert_eq!(
        requests(&w),
        before,
        "replica B answered from the shared cache"
    );
    // Redis dies: admission goes on, on local caches, without waiting on Redis.
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let replica_c = gate(&w, STRICT, cache(settings));
    let started = Instant::now();
    let v = replica_c.judge(&signed).await;
    assert_eq!(v.outcome, Outcome::Verified);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(replica_c.judge(&signed).await.outcome, Outcome::Verified);
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "local hits do not wait on Redis: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_throttling_registry_is_backed_off_from_not_failed_on() {
    let w = world();
    w.reg.with(|s| s.rate_limit = Some(8));
    let g = gate(&w, STRICT, cache(CacheSettings::default()));
    // Ten distinct images (tags of the two manifests), all at once: ~40 requests at 8/s.
    let images: Vec<String> = (0..10)
        .map(|i| {
            let d = if i % 2 == 0 { &w.signed } else { &w.unsigned };
            w.reg
                .with(|s| s.tags.insert(format!("app:t{i}"), d.digest.clone()));
            format!("{}/app:t{i}", w.reg.host)
        })
        .collect();
    let started = Instant::now();
    let verdicts = futures::future::join_all(images.iter().map(|i| g.judge(i))).await;
    for (i, v) in verdicts.iter().enumerate() {
        let want = if i % 2 == 0 {
            Outcome::Verified
        } else {
            Outcome::Failed
        };
        assert_eq!(v.outcome, want, "{v:?}");
    }
    assert!(w.reg.with(|s| s.throttled) > 0, "the registry did throttle");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "and we waited as asked"
    );
}
