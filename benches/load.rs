//! Load benchmarks, each next to a floor measured in the same run on this machine. Figures, not
//! assertions: it prints a table and writes JSON under `target/bench/`.
//!
//! - warm: `vouch serve` answering AdmissionReviews for an already-verified image over TLS
//!   with keep-alive at 32 connections (wrk), next to nginx returning a fixed response;
//! - cold: `vouch verify` of one signed image against docker-registry, next to curl making the
//!   same registry round trips in one process (hyperfine);
//! - cold_revocation: the same for an image whose chain is checked by CRL (the notation e2e CRL
//!   chain, its CRLs served on port 10086), curl making the registry and CRL round trips;
//! - cold_ocsp_crl: the same for a chain minted here whose leaf is checked by OCSP (`openssl
//!   ocsp`) and whose intermediate by CRL, both on ports chosen at run time, curl making the
//!   registry, OCSP and CRL round trips; and the same `vouch verify` with the CRL on disk;
//! - warm_revocation: the warm path (one core, wrk) for that image next to an image whose chain
//!   names no revocation endpoint, in one `vouch serve`; revocation requests counted during the
//!   warm phase (there must be none);
//! - herd: 200 concurrent admissions of a never-seen image; registry requests counted;
//! - memory: resident memory with 100,000 cached verdicts;
//! - scale: the published Ratify load test replayed: 10,000 pod admissions of 10 images each
//!   (50 distinct signed images, 5 referrers each) at a steady rate, the registry throttled to
//!   50 requests/s with 429 + Retry-After.
//!
//! Run: `benches/run.sh` (installs nginx, wrk and hyperfine when missing). One part:
//! `cargo bench --bench load -- scale`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vouch::demo::registry::{MemoryRegistry, State};
use vouch::registry::Descriptor;

/// The same allocator as the `vouch` binary, so memory figures match what it would hold, counting
/// the bytes it hands out (the memory benchmark reports live heap bytes next to resident memory).
struct Counting;

static LIVE_BYTES: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

// SAFETY: every call is passed on unchanged to mimalloc; only a counter is added.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(l.size() as isize, std::sync::atomic::Ordering::Relaxed);
        mimalloc::MiMalloc.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE_BYTES.fetch_sub(l.size() as isize, std::sync::atomic::Ordering::Relaxed);
        mimalloc::MiMalloc.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            n as isize - l.size() as isize,
            std::sync::atomic::Ordering::Relaxed,
        );
        mimalloc::MiMalloc.realloc(p, l, n)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> isize {
    LIVE_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

const DIGEST: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn save(name: &str, v: &Value) {
    std::fs::write(
        out_dir().join(format!("{name}.json")),
        serde_json::to_vec_pretty(v).unwrap(),
    )
    .unwrap();
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

struct Serve {
    child: Child,
    port: u16,
    pid: u32,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A memory figure of `/proc/<pid>/status` (`VmHWM` peak, `VmRSS` current) in MiB.
fn proc_status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| {
            l.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn peak_rss_mib(pid: u32) -> f64 {
    proc_status_mib(pid, "VmHWM")
}

/// POST an AdmissionReview; the answer, or `None` when there was none.
async fn admit(client: &reqwest::Client, url: &str, body: &Value) -> Option<Value> {
    client
        .post(url)
        .json(body)
        .send()
        .await
        .ok()?
        .json::<Value>()
        .await
        .ok()
}

/// Trust material and TLS for a webhook started from the built binary.
struct Material {
    dir: tempfile::TempDir,
}

impl Material {
    fn new(anchor_pem_or_der: &[u8]) -> Material {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store/x509/ca/bench");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(store.join("anchor.crt"), anchor_pem_or_der).unwrap();
        std::fs::write(dir.path().join("policy.json"), r#"{"version":"1.0","trustPolicies":[{"name":"bench","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:bench"],"trustedIdentities":["*"]}]}"#).unwrap();
        vouch::certs::generate(
            &["localhost".into(), "127.0.0.1".into()],
            30,
            &dir.path().join("tls"),
        )
        .unwrap();
        Material { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn serve(&self, registry: &str, extra_config: &str) -> Serve {
        self.serve_with_threads(registry, extra_config, None)
    }

    /// `vouch serve`, with `threads` runtime worker threads (default: one per core).
    fn serve_with_threads(
        &self,
        registry: &str,
        extra_config: &str,
        threads: Option<usize>,
    ) -> Serve {
        let port = common::free_port();
        std::fs::write(
            self.path("config.yaml"),
            format!("serve:\n  deadline: 8s\n  maxConcurrency: 4096\n{extra_config}"),
        )
        .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_vouch"));
        if let Some(t) = threads {
            command.env("TOKIO_WORKER_THREADS", t.to_string());
        }
        let child = command
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--insecure-registry",
                registry,
            ])
            .arg("--config")
            .arg(self.path("config.yaml"))
            .arg("--trust-policy")
            .arg(self.path("policy.json"))
            .arg("--trust-store")
            .arg(self.path("store"))
            .arg("--tls-cert")
            .arg(self.path("tls/tls.crt"))
            .arg("--tls-key")
            .arg(self.path("tls/tls.key"))
            .env("VOUCH_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let s = Serve { child, port, pid };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "vouch serve did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn client(&self) -> reqwest::Client {
        let ca = std::fs::read(self.path("tls/ca.crt")).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .pool_max_idle_per_host(512)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }
}

fn review(uid: &str, images: &[String]) -> Value {
    json!({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
        "uid": uid, "kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
        "name":"p","namespace":"bench","operation":"CREATE","userInfo":{"username":"bench"},
        "object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"bench"},
            "spec":{"containers": images.iter().enumerate().map(|(i, im)| json!({"name": format!("c{i}"), "image": im})).collect::<Vec<_>>()}},
        "oldObject": null, "dryRun": false}})
}

/// wrk at 32 connections for `secs`; returns (requests/s, p99 ms).
fn wrk(url: &str, body_file: &Path, secs: u32) -> Option<(f64, f64)> {
    let wrk = which("wrk")?;
    let script = body_file.with_extension("lua");
    std::fs::write(&script, format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nlocal f = io.open(\"{}\", \"rb\")\nwrk.body = f:read(\"*a\")\nf:close()\n",
        body_file.display()
    )).unwrap();
    let out = Command::new(wrk)
        .args(["-t2", "-c32", &format!("-d{secs}s"), "--latency", "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))?
        .split_whitespace()
        .nth(1)?;
    let ms = if let Some(v) = p99.strip_suffix("ms") {
        v.parse().ok()?
    } else if let Some(v) = p99.strip_suffix("us") {
        v.parse::<f64>().ok()? / 1000.0
    } else if let Some(v) = p99.strip_suffix('s') {
        v.parse::<f64>().ok()? * 1000.0
    } else {
        return None;
    };
    Some((rps, ms))
}

/// The warm path at a given number of cores for both servers: vouch's runtime threads
/// (`TOKIO_WORKER_THREADS`) and nginx's worker processes. The load generator shares the
/// machine's cores with them.
fn warm_at(cores: usize) -> Value {
    let reg = common::Registry::start();
    reg.push_layout(
        &common::vectors().join("notation-e2e/layouts/e2e-valid-signature"),
        "app",
    );
    let m = Material::new(
        &std::fs::read(common::vectors().join("notation-e2e/localkeys/e2e.crt")).unwrap(),
    );
    let serve = m.serve_with_threads(&reg.host, "", Some(cores));
    let body =
        serde_json::to_vec(&review("warm", &[format!("{}/app@{DIGEST}", reg.host)])).unwrap();
    let body_file = m.path("review.json");
    std::fs::write(&body_file, &body).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let warmed: Value = rt.block_on(async {
        m.client()
            .post(format!("https://localhost:{}/validate", serve.port))
            .body(body.clone())
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(warmed["response"]["allowed"], true, "{warmed}");
    let vouch = wrk(
        &format!("https://localhost:{}/validate", serve.port),
        &body_file,
        10,
    );
    drop(serve);
    // The floor: nginx over TLS returning the same answer from memory, with as many worker
    // processes as vouch has threads.
    let floor = which("nginx").and_then(|nginx| {
        let port = common::free_port();
        let prefix = m.path("nginx");
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        let answer = serde_json::to_string(&warmed).unwrap().replace('\'', "\\'");
        std::fs::write(prefix.join("nginx.conf"), format!(
            "master_process {master};\nworker_processes {cores};\nerror_log {p}/logs/error.log;\npid {p}/nginx.pid;\nevents {{ worker_connections 1024; }}\nhttp {{\n access_log off;\n client_body_temp_path {p}/tmp;\n server {{\n  listen 127.0.0.1:{port} ssl;\n  ssl_certificate {c};\n  ssl_certificate_key {k};\n  ssl_protocols TLSv1.2 TLSv1.3;\n  keepalive_requests 100000;\n  location /validate {{ default_type application/json; return 200 '{answer}'; }}\n }}\n}}\n",
            master = if cores > 1 { "on" } else { "off" },
            p = prefix.display(), c = m.path("tls/tls.crt").display(), k = m.path("tls/tls.key").display()
        )).unwrap();
        let mut child = Command::new(nginx).arg("-p").arg(&prefix).arg("-c").arg(prefix.join("nginx.conf")).args(["-g", "daemon off;"]).stderr(Stdio::null()).spawn().ok()?;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let r = wrk(&format!("https://localhost:{port}/validate"), &body_file, 10);
        // SIGTERM, so that a master process takes its workers down with it.
        // SAFETY: kill(2) on the pid of a child we started and have not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = child.wait();
        r
    });
    json!({
        "cores": cores,
        "vouch": vouch.map(|(rps, p99)| json!({"requests_per_s": rps, "p99_ms": p99})),
        "nginx_floor": floor.map(|(rps, p99)| json!({"requests_per_s": rps, "p99_ms": p99})),
        "throughput_ratio": match (vouch, floor) { (Some(a), Some(b)) => json!(a.0 / b.0), _ => Value::Null },
    })
}

fn warm() -> Value {
    let all = std::thread::available_parallelism().map_or(2, |n| n.get());
    let v = json!({
        "one_core": warm_at(1),
        "all_cores": warm_at(all),
        "connections": 32,
        "target": "ratio >= 0.5, vouch p99 <= 5 ms",
    });
    save("warm", &v);
    v
}

fn cold() -> Value {
    let reg = common::Registry::start();
    reg.push_layout(
        &common::vectors().join("notation-e2e/layouts/e2e-valid-signature"),
        "app",
    );
    let m = Material::new(
        &std::fs::read(common::vectors().join("notation-e2e/localkeys/e2e.crt")).unwrap(),
    );
    let Some(hyperfine) = which("hyperfine") else {
        return json!({"skipped": "hyperfine is not installed"});
    };
    let h = &reg.host;
    let base = format!("http://{h}/v2/app");
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
    // The same round trips vouch makes, in one curl process (one connection, reused).
    let curl = format!(
        "curl -sf -o /dev/null -H '{accept}' -I {base}/manifests/v1 --next -s -o /dev/null {base}/referrers/{DIGEST}?artifactType=application%2Fvnd.cncf.notary.signature --next -sf -o /dev/null -H '{accept}' {base}/manifests/sha256-{hex} --next -sf -o /dev/null -H '{accept}' {base}/manifests/sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f --next -sf -o /dev/null {base}/blobs/sha256:c9af07e0e2f5f0c1bd9f9e0e6fc1e25b21c5a0d9e3b3b0a0c4f0c8d9c0a3c4e5",
        hex = &DIGEST[7..]
    );
    // The envelope blob digest, read from the layout so the last request is real.
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(common::blob_path(
            &common::vectors().join("notation-e2e/layouts/e2e-valid-signature"),
            "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f",
        ))
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let curl = curl.replace(
        "sha256:c9af07e0e2f5f0c1bd9f9e0e6fc1e25b21c5a0d9e3b3b0a0c4f0c8d9c0a3c4e5",
        layer,
    );
    let verify = format!(
        "{} verify {h}/app:v1 --insecure-registry {h} --trust-policy {} --trust-store {}",
        env!("CARGO_BIN_EXE_vouch"),
        m.path("policy.json").display(),
        m.path("store").display()
    );
    let v = versus_curl(&hyperfine, "cold", &verify, &curl);
    save("cold", &v);
    v
}

/// `verify` next to `curl` under hyperfine (40 runs each): means, medians and their ratios.
/// A median beside the mean shows when one slow run (a resolver that did not answer) moved it.
fn versus_curl(hyperfine: &Path, name: &str, verify: &str, curl: &str) -> Value {
    let json_out = out_dir().join(format!("{name}-hyperfine.json"));
    let status = Command::new(hyperfine)
        .args(["--warmup", "3", "--runs", "40", "-N", "--export-json"])
        .arg(&json_out)
        .arg(verify)
        .arg(curl)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "hyperfine failed");
    let h: Value = serde_json::from_slice(&std::fs::read(&json_out).unwrap()).unwrap();
    let ms = |i: usize, what: &str| h["results"][i][what].as_f64().unwrap_or(f64::NAN) * 1000.0;
    json!({
        "vouch_verify_ms": ms(0, "mean"),
        "curl_floor_ms": ms(1, "mean"),
        "ratio": ms(0, "mean") / ms(1, "mean"),
        "vouch_verify_median_ms": ms(0, "median"),
        "curl_floor_median_ms": ms(1, "median"),
        "median_ratio": ms(0, "median") / ms(1, "median"),
        "target": "ratio <= 1.5",
    })
}

/// curl making the registry round trips `vouch verify` of `host/app:v1` makes (tag, referrers,
/// signature manifest, envelope) and then GETs of `extra` URLs, in one process.
fn registry_curl(
    host: &str,
    subject: &Descriptor,
    sig: &vouch::notation::signer::SignatureArtifact,
    extra: &[String],
) -> String {
    let base = format!("http://{host}/v2/app");
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
    let mut curl = format!(
        "curl -sf -o /dev/null -H '{accept}' -I {base}/manifests/v1 --next -sf -o /dev/null {base}/referrers/{d}?artifactType=application%2Fvnd.cncf.notary.signature --next -sf -o /dev/null -H '{accept}' {base}/manifests/{sm} --next -sf -o /dev/null {base}/blobs/{env}",
        d = subject.digest,
        sm = sig.manifest_descriptor.digest,
        env = sig.envelope_descriptor.digest,
    );
    for url in extra {
        curl.push_str(&format!(" --next -sf -o /dev/null '{url}'"));
    }
    curl
}

/// Cold `vouch verify` of an image whose chain needs revocation data: the notation e2e CRL chain
/// (leaf and intermediate by CRL on port 10086; the intermediate's OCSP responder does not
/// resolve, so it falls back), next to curl making the same registry and CRL round trips in
/// one process.
fn cold_revocation() -> Value {
    let Some(hyperfine) = which("hyperfine") else {
        return json!({"skipped": "hyperfine is not installed"});
    };
    let crls = common::vectors().join("revocation/notation-e2e/crl");
    let server = common::crl_server::CrlServer::start(10086);
    for n in ["leaf.crl", "intermediate.crl"] {
        server.serve(n, std::fs::read(crls.join(n)).unwrap());
    }
    let reg = MemoryRegistry::start(State {
        referrers_api: true,
        ..Default::default()
    })
    .unwrap();
    let chain: Vec<Vec<u8>> = vouch::notation::trust_store::parse_certificate_file(
        &std::fs::read(crls.join("certchain_with_crl.pem")).unwrap(),
    )
    .unwrap()
    .iter()
    .map(|c| c.der().to_vec())
    .collect();
    let signer = vouch::notation::signer::Signer::new(
        vouch::notation::signer::SigningKey::from_pem(
            &std::fs::read(crls.join("leaf.key")).unwrap(),
        )
        .unwrap(),
        chain,
    )
    .unwrap();
    let (subject, sig) =
        common::fake_registry::put_signed_image(&reg, "app", "v1", b"revocation", &signer);
    let m = Material::new(&std::fs::read(crls.join("root.crt")).unwrap());
    let h = &reg.host;
    let curl = registry_curl(
        h,
        &subject,
        &sig,
        &[
            "http://localhost:10086/leaf.crl".into(),
            "http://localhost:10086/intermediate.crl".into(),
        ],
    );
    // Cold: no CRL from the disk cache.
    let verify = format!("{} --no-crl-cache", verify_command(&m, h));
    check_verifies(&verify);
    let mut v = versus_curl(&hyperfine, "cold-revocation", &verify, &curl);
    v["round_trips"] = json!("registry 4 + CRL 2 (+ one OCSP name that does not resolve)");
    save("cold_revocation", &v);
    drop(server);
    v
}

/// `vouch verify HOST/app:v1` against `m`'s trust material.
fn verify_command(m: &Material, host: &str) -> String {
    format!(
        "{} verify {host}/app:v1 --insecure-registry {host} --trust-policy {} --trust-store {}",
        env!("CARGO_BIN_EXE_vouch"),
        m.path("policy.json").display(),
        m.path("store").display()
    )
}

fn check_verifies(verify: &str) {
    let check = Command::new("sh").arg("-c").arg(verify).output().unwrap();
    assert!(
        check.status.success(),
        "the revocation bench image does not verify: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// A chain minted here — root, intermediate checked by CRL (a loopback file server), leaf
/// checked by OCSP (`openssl ocsp` answering for the intermediate) — both on ports chosen at
/// run time, and a registry holding `app:v1` signed with it and `plain:v1` signed by a leaf of
/// the same root naming no revocation endpoint.
struct RevocationWorld {
    crl: common::crl_server::CrlServer,
    _ocsp: common::ocsp_responder::OcspResponder,
    reg: MemoryRegistry,
    subject: Descriptor,
    sig: vouch::notation::signer::SignatureArtifact,
    plain: Descriptor,
    material: Material,
    /// The OCSP GET and CRL URLs vouch asks, in that order.
    urls: Vec<String>,
}

fn revocation_world() -> RevocationWorld {
    use common::pki::{Ca, Endpoints};
    let root = Ca::root("bench revocation root");
    let crl = common::crl_server::CrlServer::start(0);
    let crl_url = crl.url("intermediate.crl");
    let inter = root.intermediate(
        "bench revocation intermediate",
        2,
        Endpoints {
            crl: Some(&crl_url),
            ocsp: None,
        },
    );
    crl.serve("intermediate.crl", root.crl(1, &[]));
    let ocsp = common::ocsp_responder::OcspResponder::start(&inter, &[0x1001]);
    let id = inter.signer(
        "bench revocation",
        0x1001,
        Endpoints {
            crl: None,
            ocsp: Some(&ocsp.url()),
        },
    );
    let plain_id = root.signer("bench plain", 0x2001, Endpoints::default());
    let reg = MemoryRegistry::start(State {
        referrers_api: true,
        ..Default::default()
    })
    .unwrap();
    let (subject, sig) =
        common::fake_registry::put_signed_image(&reg, "app", "v1", b"revocation", &id.signer());
    let (plain, _) =
        common::fake_registry::put_signed_image(&reg, "plain", "v1", b"plain", &plain_id.signer());
    let cert = |der: &[u8]| vouch::notation::x509::Certificate::from_der(der).unwrap();
    let request =
        vouch::notation::revocation::ocsp::request(&cert(&id.chain[0]), &cert(&id.chain[1]))
            .unwrap();
    let ocsp_get =
        vouch::notation::revocation::ocsp::request_url(&ocsp.url(), &request).expect("OCSP GET");
    RevocationWorld {
        crl,
        _ocsp: ocsp,
        reg,
        subject,
        sig,
        plain,
        material: Material::new(&id.anchor_der),
        urls: vec![ocsp_get, crl_url],
    }
}

/// Cold `vouch verify` of an image whose chain needs OCSP (leaf) and CRL (intermediate), next
/// to curl making the same registry, OCSP and CRL round trips; then the same with the CRL in
/// the disk cache (notation's layout) from an earlier run.
fn cold_ocsp_crl() -> Value {
    let Some(hyperfine) = which("hyperfine") else {
        return json!({"skipped": "hyperfine is not installed"});
    };
    let w = revocation_world();
    let h = &w.reg.host;
    let curl = registry_curl(h, &w.subject, &w.sig, &w.urls);
    let verify = format!("{} --no-crl-cache", verify_command(&w.material, h));
    check_verifies(&verify);
    let mut v = versus_curl(&hyperfine, "cold-ocsp-crl", &verify, &curl);
    let disk = w.material.path("crl-cache");
    let with_disk = format!(
        "{} --crl-cache-dir {}",
        verify_command(&w.material, h),
        disk.display()
    );
    check_verifies(&with_disk);
    let asked = w.crl.requests().len();
    let d = versus_curl(&hyperfine, "cold-ocsp-crl-disk", &with_disk, &curl);
    v["crl_on_disk"] = json!({
        "vouch_verify_median_ms": d["vouch_verify_median_ms"],
        "curl_floor_median_ms": d["curl_floor_median_ms"],
        "median_ratio": d["median_ratio"],
        // hyperfine ran each command 3 + 40 times; curl asks every time.
        "crl_requests_by_vouch": w.crl.requests().len() as i64 - asked as i64 - 43,
    });
    v["round_trips"] = json!("registry 4 + OCSP 1 (leaf) + CRL 1 (intermediate)");
    save("cold_ocsp_crl", &v);
    v
}

/// The sum of a counter family in the Prometheus text of `GET /metrics`.
async fn metric_sum(client: &reqwest::Client, port: u16, name: &str) -> f64 {
    let text = client
        .get(format!("https://localhost:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The warm path (one runtime thread, wrk at 32 connections) for the image checked by OCSP and
/// CRL next to one whose chain names no endpoint, in one `vouch serve`, interleaved; the
/// revocation requests made during the warm phase counted at the CRL server and in vouch's
/// metrics.
fn warm_revocation() -> Value {
    let w = revocation_world();
    let serve = w.material.serve_with_threads(&w.reg.host, "", Some(1));
    let client = w.material.client();
    let url = format!("https://localhost:{}/validate", serve.port);
    let bodies: Vec<(&str, PathBuf)> = [
        ("revocation", "app", &w.subject),
        ("plain", "plain", &w.plain),
    ]
    .into_iter()
    .map(|(name, repo, d)| {
        let image = format!("{}/{repo}@{}", w.reg.host, d.digest);
        let body = serde_json::to_vec(&review(name, &[image])).unwrap();
        let file = w.material.path(&format!("review-{name}.json"));
        std::fs::write(&file, body).unwrap();
        (name, file)
    })
    .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fetches = "vouch_revocation_fetches_total";
    let (before, crl_before) = rt.block_on(async {
        for (name, file) in &bodies {
            let body: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
            let r = admit(&client, &url, &body).await.expect("answer");
            assert_eq!(r["response"]["allowed"], true, "{name}: {r}");
        }
        (
            metric_sum(&client, serve.port, fetches).await,
            w.crl.requests().len(),
        )
    });
    // Warming made the OCSP and the CRL fetch (and nothing else).
    assert_eq!(before, 2.0, "revocation fetches while warming");
    let rounds = 2;
    let mut runs: Vec<(&str, f64, f64)> = Vec::new();
    for _ in 0..rounds {
        for (name, file) in &bodies {
            if let Some((rps, p99)) = wrk(&url, file, 8) {
                runs.push((name, rps, p99));
            }
        }
    }
    let (after, crl_after) = rt.block_on(async {
        (
            metric_sum(&client, serve.port, fetches).await,
            w.crl.requests().len(),
        )
    });
    drop(serve);
    let mean = |name: &str, i: usize| {
        let v: Vec<f64> = runs
            .iter()
            .filter(|r| r.0 == name)
            .map(|r| if i == 1 { r.1 } else { r.2 })
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let v = json!({
        "cores": 1, "connections": 32, "seconds_per_run": 8, "runs_each": rounds,
        "revocation": {"requests_per_s": mean("revocation", 1), "p99_ms": mean("revocation", 2)},
        "plain": {"requests_per_s": mean("plain", 1), "p99_ms": mean("plain", 2)},
        "throughput_ratio": mean("revocation", 1) / mean("plain", 1),
        "revocation_fetches_during_warm": after - before,
        "crl_requests_during_warm": crl_after - crl_before,
        "target": "zero revocation requests; ratio >= 0.95",
    });
    // The sanity check of this benchmark: warm admissions make no revocation request.
    assert_eq!(
        after - before,
        0.0,
        "revocation fetches during the warm phase: {v}"
    );
    assert_eq!(
        crl_after, crl_before,
        "CRL requests during the warm phase: {v}"
    );
    save("warm_revocation", &v);
    v
}

/// A memory registry with `n` signed images (each with one trusted signature and `extra`
/// other referrers).
fn signed_registry(n: usize, extra: usize, state: State) -> (MemoryRegistry, Vec<String>, Vec<u8>) {
    let reg = MemoryRegistry::start(state).unwrap();
    let id = common::pki::ca_issued("bench", &rcgen::PKCS_ECDSA_P256_SHA256);
    let signer = id.signer();
    let mut images = Vec::new();
    for i in 0..n {
        let d = signed_manifest(&reg, &signer, &i.to_string());
        reg.with(|s| s.tags.insert(format!("bench/app{i}:v1"), d.digest.clone()));
        reg.with(|s| {
            for k in 0..extra {
                let body = format!("{{\"sbom\":{k}}}");
                let blob = s.put_blob(body.as_bytes());
                let m = json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json",
                    "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":format!("sha256:{}", vouch::registry::sha256_hex(b"{}")),"size":2},
                    "layers":[{"mediaType":"application/spdx+json","digest":blob,"size":body.len()}],
                    "subject":{"mediaType":d.media_type,"digest":d.digest,"size":d.size}});
                s.put_manifest("application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&m).unwrap(), None);
            }
        });
        images.push(format!("{}/bench/app{i}:v1", reg.host));
    }
    (reg, images, id.anchor_der.clone())
}

/// A signed single-manifest image in `reg` (untagged), unique to `seed`: its descriptor.
fn signed_manifest(
    reg: &MemoryRegistry,
    signer: &vouch::notation::signer::Signer,
    seed: &str,
) -> Descriptor {
    let d = reg.with(|s| {
        let layer = s.put_blob(format!("layer {seed}").as_bytes());
        let config = s.put_blob(b"{}");
        let m = json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":config,"size":2},
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":layer,"size":format!("layer {seed}").len()}]});
        let bytes = serde_json::to_vec(&m).unwrap();
        let digest = s.put_manifest("application/vnd.oci.image.manifest.v1+json", &bytes, None);
        Descriptor { media_type: "application/vnd.oci.image.manifest.v1+json".into(), digest, size: bytes.len() as u64, artifact_type: None, annotations: None }
    });
    let sig = signer.sign_artifact(&d, None).unwrap();
    reg.with(|s| s.put_signature(&sig));
    d
}

/// Multi-platform images judged by their platforms (issue 15): the cold admission of an index
/// of 8 signed platform manifests against that of one signed manifest (median of 5 images
/// each), and what one admission and 200 concurrent admissions of a new index cost the
/// registry.
fn platforms() -> Value {
    const PLATFORMS: usize = 8;
    let reg = MemoryRegistry::start(State {
        referrers_api: true,
        ..Default::default()
    })
    .unwrap();
    let id = common::pki::ca_issued("bench", &rcgen::PKCS_ECDSA_P256_SHA256);
    let signer = id.signer();
    let mut indexes = Vec::new();
    let mut singles = Vec::new();
    for i in 0..7 {
        let children: Vec<Value> = (0..PLATFORMS)
            .map(|p| {
                let d = signed_manifest(&reg, &signer, &format!("mp{i}-{p}"));
                json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size,
                    "platform": {"os": "linux", "architecture": format!("arch{p}")}})
            })
            .collect();
        let index = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":children})).unwrap();
        reg.with(|s| {
            let digest = s.put_manifest("application/vnd.oci.image.index.v1+json", &index, None);
            s.tags.insert(format!("bench/mp{i}:v1"), digest);
        });
        indexes.push(format!("{}/bench/mp{i}:v1", reg.host));
        let d = signed_manifest(&reg, &signer, &format!("single{i}"));
        reg.with(|s| {
            s.tags
                .insert(format!("bench/single{i}:v1"), d.digest.clone())
        });
        singles.push(format!("{}/bench/single{i}:v1", reg.host));
    }
    let m = Material::new(&id.anchor_der);
    let serve = m.serve(
        &reg.host,
        "platforms:\n  - registryScopes: [\"*\"]\n    mode: platforms\n",
    );
    let client = m.client();
    let url = format!("https://localhost:{}/validate", serve.port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let count = || registry_requests(&reg);
    rt.block_on(async {
        let timed = |image: String, uid: String| {
            let (c, url) = (client.clone(), url.clone());
            async move {
                let t = Instant::now();
                let r = admit(&c, &url, &review(&uid, &[image])).await;
                assert_eq!(r.as_ref().map(|r| r["response"]["allowed"] == true), Some(true), "{r:?}");
                t.elapsed().as_secs_f64() * 1000.0
            }
        };
        let mut index_ms = Vec::new();
        let mut single_ms = Vec::new();
        for i in 0..5 {
            index_ms.push(timed(indexes[i].clone(), format!("i{i}")).await);
            single_ms.push(timed(singles[i].clone(), format!("s{i}")).await);
        }
        index_ms.sort_by(f64::total_cmp);
        single_ms.sort_by(f64::total_cmp);
        let before = count();
        timed(indexes[5].clone(), "one".into()).await;
        let one = count() - before;
        let before = count();
        let allowed = burst(&client, &url, &indexes[6], 200).await;
        let v = json!({
            "platforms_per_index": PLATFORMS,
            "cold_index_ms_median": percentile(&index_ms, 50.0),
            "cold_single_manifest_ms_median": percentile(&single_ms, 50.0),
            "registry_requests_one_admission": one,
            "registry_requests_200_concurrent": count() - before,
            "allowed": allowed,
            "target": "200 concurrent cost what one costs; the index well under 8 x the single manifest (children verified concurrently)",
        });
        save("platforms", &v);
        v
    })
}

/// Requests `reg` has served, the `/v2/` version checks left out.
fn registry_requests(reg: &MemoryRegistry) -> usize {
    reg.requests()
        .iter()
        .filter(|l| !l.ends_with("/v2/"))
        .count()
}

/// `n` concurrent admissions of `image`: how many were allowed.
async fn burst(client: &reqwest::Client, url: &str, image: &str, n: usize) -> usize {
    let answers = futures::future::join_all((0..n).map(|i| {
        let c = client.clone();
        let body = review(&format!("h{i}"), &[image.to_string()]);
        async move { admit(&c, url, &body).await }
    }))
    .await;
    answers
        .iter()
        .filter(|a| a.as_ref().is_some_and(|a| a["response"]["allowed"] == true))
        .count()
}

fn herd() -> Value {
    let (reg, images, anchor) = signed_registry(
        2,
        0,
        State {
            referrers_api: true,
            ..Default::default()
        },
    );
    let m = Material::new(&anchor);
    let serve = m.serve(&reg.host, "");
    let client = m.client();
    let url = format!("https://localhost:{}/validate", serve.port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let count = || registry_requests(&reg);
    let (one, herd, allowed) = rt.block_on(async {
        let before = count();
        let r: Value = client
            .post(&url)
            .json(&review("one", &images[..1]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["response"]["allowed"], true, "{r}");
        let one = count() - before;
        let before = count();
        let allowed = burst(&client, &url, &images[1], 200).await;
        (one, count() - before, allowed)
    });
    let v = json!({"registry_requests_one_admission": one, "registry_requests_200_concurrent": herd, "allowed": allowed, "target": "equal"});
    save("herd", &v);
    v
}

fn memory() -> Value {
    // A fresh process, so the figure is the cache and nothing else.
    if std::env::var_os("VOUCH_BENCH_MEMORY_CHILD").is_none() {
        let out = Command::new(std::env::current_exe().unwrap())
            .arg("memory")
            .env("VOUCH_BENCH_MEMORY_CHILD", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("MEMORY "))
            .unwrap_or("MEMORY {}");
        let v: Value = serde_json::from_str(&line[7..]).unwrap_or_default();
        save("memory", &v);
        return v;
    }
    let rss = || peak_rss_mib(std::process::id()).max(0.0);
    let current = || proc_status_mib(std::process::id(), "VmRSS");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let before = current();
    let live_before = live_bytes();
    let n: u64 = std::env::var("VOUCH_BENCH_VERDICTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    rt.block_on(async {
        let cache = Arc::new(vouch::cache::VerdictCache::new(Default::default(), None));
        // A realistic allow verdict: one verified signature with its five checks.
        let template: vouch::verdict::Judgement = serde_json::from_value(json!({
            "outcome": "verified", "reasons": [], "warnings": [],
            "signatures": [{"digest": "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f", "envelope": "application/jose+json",
                "signer": "CN=release,O=Example,ST=WA,C=US", "signingTime": "2024-06-27T13:30:33+08:00", "verified": true,
                "checks": [{"check":"integrity","action":"enforce"},{"check":"authenticity","action":"enforce"},{"check":"expiry","action":"enforce"},{"check":"authenticTimestamp","action":"enforce"},{"check":"revocation","action":"enforce"}]}],
        })).unwrap();
        let mut template = template;
        if std::env::var_os("VOUCH_BENCH_BARE").is_some() {
            template.signatures.clear();
        }
        let fp: Arc<str> = Arc::from("0123456789abcdef01234567:none");
        for i in 0..n {
            let key = vouch::cache::VerdictKey::new(
                "registry.example",
                &format!("team/app{}", i % 5000),
                &format!("sha256:{:064x}", i),
                fp.clone(),
            );
            // Each image has a signature of its own.
            let mut j = template.clone();
            j.signatures.iter_mut().for_each(|s| s.digest = format!("sha256:{:064x}", n + i).as_str().into());
            cache.verdict(key, async move { j }, Duration::from_secs(5)).await;
        }
        let held = cache.len().await;
        let after = current();
        let live = (live_bytes() - live_before) as f64;
        println!("MEMORY {}", json!({"verdicts": held, "rss_before_mib": before, "rss_after_mib": after, "delta_mib": after - before,
            "heap_bytes_per_verdict": live / held.max(1) as f64, "peak_mib": rss(), "target": "<= 100 MB resident with 100,000 verdicts"}));
    });
    json!({})
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn scale() -> Value {
    let pods = std::env::var("VOUCH_BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000usize);
    let rate = std::env::var("VOUCH_BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250.0f64);
    let (reg, images, anchor) = signed_registry(
        50,
        4,
        State {
            referrers_api: true,
            rate_limit: Some(50),
            ..Default::default()
        },
    );
    // Setting up the images went through the same limiter; start from a clean window.
    std::thread::sleep(Duration::from_millis(1100));
    reg.with(|s| {
        s.throttled = 0;
        s.log.clear();
    });
    let m = Material::new(&anchor);
    let serve = m.serve(&reg.host, "");
    let client = m.client();
    let url = format!("https://localhost:{}/validate", serve.port);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let results = rt.block_on(async {
        let mut tasks = Vec::with_capacity(pods);
        let interval = Duration::from_secs_f64(1.0 / rate);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for p in 0..pods {
            ticker.tick().await;
            // Ten images per pod, drawn from the fifty.
            let pod_images: Vec<String> = (0..10)
                .map(|k| images[(p * 7 + k * 13) % images.len()].clone())
                .collect();
            let body = review(&format!("pod-{p}"), &pod_images);
            let c = client.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let r = tokio::time::timeout(Duration::from_secs(8), admit(&c, &url, &body)).await;
                let elapsed = t.elapsed().as_secs_f64() * 1000.0;
                let sent = p as f64 / rate;
                match r {
                    Ok(Some(v)) => (elapsed, Some(v["response"]["allowed"] == true), sent),
                    _ => (elapsed, None, sent),
                }
            }));
        }
        let mut out = Vec::with_capacity(pods);
        for t in tasks {
            out.push(t.await.unwrap_or((f64::NAN, None, 0.0)));
        }
        out
    });
    let wall = started.elapsed().as_secs_f64();
    let answered = results.iter().filter(|r| r.1.is_some()).count();
    let timeouts = results.len() - answered;
    let denied = results.iter().filter(|r| r.1 == Some(false)).count();
    let mut lat: Vec<f64> = results
        .iter()
        .filter(|r| r.1.is_some())
        .map(|r| r.0)
        .collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    // Once every image has been verified (the registry allows 50 requests/s), what is left is
    // the warm path: the same figure from the 10th second on.
    let mut warm: Vec<f64> = results
        .iter()
        .filter(|r| r.1.is_some() && r.2 >= 10.0)
        .map(|r| r.0)
        .collect();
    warm.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let registry_requests = reg.requests().len();
    let throttled = reg.with(|s| s.throttled);
    let slow: Vec<_> = results
        .iter()
        .filter(|r| r.1.is_some() && r.0 > 10.0)
        .collect();
    let v = json!({
        "pods": pods, "images_per_pod": 10, "distinct_images": 50, "referrers_per_image": 5,
        "rate_per_s": rate, "wall_s": wall,
        "answered": answered, "timeouts": timeouts, "denied": denied,
        "p50_ms": percentile(&lat, 50.0), "p95_ms": percentile(&lat, 95.0), "max_ms": lat.last().copied().unwrap_or(f64::NAN),
        "p95_after_10s_ms": percentile(&warm, 95.0),
        // Pods over 10 ms: in the cold start, those that waited for an image being verified
        // behind the registry's limit; after it, those that waited for a tag whose digest had
        // expired (digestTtl) to be resolved again.
        "slow_pods_share": slow.len() as f64 / pods as f64,
        "cold_start_s": slow.iter().filter(|r| r.2 < 10.0).map(|r| r.2 + r.0 / 1000.0).fold(0.0, f64::max),
        "slow_pods_after_10s": slow.iter().filter(|r| r.2 >= 10.0).count(),
        "peak_rss_mib": peak_rss_mib(serve.pid),
        "registry_requests": registry_requests, "registry_429s": throttled, "registry_limit_per_s": 50,
        "target": "0 timeouts, 0 denied, p95 <= 10 ms, peak <= 150 MB",
        "ratify_published_sept_2023": "p95 24-29 ms (large ACR), 161-305 ms and 238-9,492 timeouts (small ACRs), 43-430 MiB, single replica OOM-killed at 10,000 pods",
    });
    save("scale", &v);
    v
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: nothing to do there.
    if std::env::var_os("VOUCH_BENCH_MEMORY_CHILD").is_none()
        && !std::env::args().any(|a| a == "--bench")
    {
        println!("load benchmarks run with `cargo bench --bench load` (or benches/run.sh)");
        return;
    }
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = [
        "warm",
        "warm_revocation",
        "cold",
        "cold_revocation",
        "cold_ocsp_crl",
        "herd",
        "platforms",
        "memory",
        "scale",
    ];
    let run: Vec<&str> = if wanted.is_empty() {
        all.to_vec()
    } else {
        all.iter()
            .copied()
            .filter(|a| wanted.iter().any(|w| w == a))
            .collect()
    };
    if std::env::var_os("VOUCH_BENCH_MEMORY_CHILD").is_some() {
        memory();
        return;
    }
    let mut summary = serde_json::Map::new();
    for name in run {
        eprintln!("bench: {name} …");
        let v = match name {
            "warm" => warm(),
            "cold" => cold(),
            "cold_revocation" => cold_revocation(),
            "warm_revocation" => warm_revocation(),
            "cold_ocsp_crl" => cold_ocsp_crl(),
            "herd" => herd(),
            "platforms" => platforms(),
            "memory" => memory(),
            _ => scale(),
        };
        println!("{name:<7} {}", serde_json::to_string(&v).unwrap());
        summary.insert(name.into(), v);
    }
    save("load-summary", &Value::Object(summary));
}
