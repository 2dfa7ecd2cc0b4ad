//! Hostile configuration and manifest files against the built binary (issue 11, defects 7–11):
//! FIFOs and devices where vouch expects a file, standard input past its limit, symlink loops in
//! a manifest directory, YAML merge keys, deeply nested and amplifying YAML, and a FIFO dropped
//! into a trust store the webhook watches. Every child is bounded: a regression fails the test
//! instead of hanging it.

mod common;

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any one run of vouch may take here.
const BOUND: Duration = Duration::from_secs(20);
/// What `vouch audit -f -` reads at most (`audit::manifests::MAX_FILE_BYTES`).
const STDIN_LIMIT: usize = 64 * 1024 * 1024;

const POLICY: &str = r#"{"version":"1.0","trustPolicies":[
 {"name":"all","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#;

/// A finished run.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    /// Peak resident memory of the child (`VmHWM`) as last seen while it ran, in KiB.
    peak_rss_kib: u64,
}

impl Run {
    fn code(&self) -> i32 {
        match self.status.code() {
            Some(c) => c,
            None => panic!(
                "vouch died by signal {:?}\nstderr: {}",
                self.status.signal(),
                self.stderr
            ),
        }
    }

    fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Run vouch with `args`, feeding `stdin`, killing it (and failing) after [`BOUND`].
fn run(args: &[&str], stdin: Option<Box<dyn FnOnce(std::process::ChildStdin) + Send>>) -> Run {
    run_env(args, &[], stdin)
}

/// [`run`] with environment variables set (after the defaults, so `HOME` may be replaced).
fn run_env(
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: Option<Box<dyn FnOnce(std::process::ChildStdin) + Send>>,
) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .env_remove("DOCKER_CONFIG")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", std::env::temp_dir())
        .envs(envs.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vouch");
    let started = Instant::now();
    let feeder = stdin.map(|feed| {
        let pipe = child.stdin.take().expect("stdin");
        std::thread::spawn(move || feed(pipe))
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).to_string()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let mut peak_rss_kib = 0;
    let status = loop {
        // The high-water mark of the child's own memory (wait4's ru_maxrss would count the
        // test process's memory at spawn time too). Sampled: a peak in the last few
        // milliseconds may be missed, a peak that builds up over seconds is not.
        peak_rss_kib = peak_rss_kib.max(vm_hwm_kib(child.id()).unwrap_or(0));
        if let Some(status) = child.try_wait().expect("wait for vouch") {
            break status;
        }
        if started.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vouch {args:?} was still running after {BOUND:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Run {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        elapsed,
        peak_rss_kib,
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

/// A directory with a valid policy, trust store and serving certificate.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        common::e2e_trust_store(&dir.path().join("store"));
        std::fs::write(dir.path().join("policy.json"), POLICY).unwrap();
        vouch::certs::generate(&["localhost".into()], 30, &dir.path().join("tls")).unwrap();
        Env { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn fifo(&self, name: &str) -> String {
        mkfifo(&self.path(name));
        self.p(name)
    }

    /// `vouch audit` over `files` with this policy, JSON report.
    fn audit(
        &self,
        files: &[&str],
        stdin: Option<Box<dyn FnOnce(std::process::ChildStdin) + Send>>,
    ) -> Run {
        let (policy, store) = (self.p("policy.json"), self.p("store"));
        let mut args = vec!["audit", "--trust-policy", &policy, "--trust-store", &store];
        args.extend(["--output", "json", "--timeout", "5"]);
        for f in files {
            args.extend(["-f", f]);
        }
        run(&args, stdin)
    }
}

fn report(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.output()))
}

fn errors(r: &Run) -> String {
    report(r)["errors"].to_string()
}

/// A closed loopback port: an image there is judged (an error) without any network wait.
fn closed_registry() -> String {
    format!("127.0.0.1:{}", common::free_port())
}

/// Run vouch, which must exit at once with `code`, saying `why`.
fn refused_at_once(args: &[&str], code: i32, why: &str) {
    let r = run(args, None);
    assert_eq!(r.code(), code, "{}", r.output());
    assert!(r.output().contains(why), "{}", r.output());
}

#[test]
fn a_fifo_or_dev_zero_as_trust_policy_is_refused_at_once() {
    let env = Env::new();
    let fifo = env.fifo("policy.fifo");
    let store = env.p("store");
    for (policy, kind) in [
        (fifo.as_str(), "a FIFO (named pipe)"),
        ("/dev/zero", "a character device"),
    ] {
        let verify = ["verify", "registry.example/app:1", "--trust-store", &store];
        refused_at_once(
            &[&verify[..], &["--trust-policy", policy]].concat(),
            2,
            &format!("trust policy {policy}: is {kind}, not a regular file"),
        );
    }
}

#[test]
fn a_fifo_as_config_or_in_the_trust_store_is_refused_at_once() {
    let env = Env::new();
    let fifo = env.fifo("config.yaml");
    let why = format!("config {fifo}: is a FIFO");
    refused_at_once(&["policy", "check", "--config", &fifo], 2, &why);
    mkfifo(&env.path("store/x509/ca/e2e/dropped.crt"));
    let (policy, store) = (env.p("policy.json"), env.p("store"));
    let check = [
        "policy",
        "check",
        "--trust-policy",
        &policy,
        "--trust-store",
        &store,
    ];
    refused_at_once(&check, 2, "dropped.crt: is a FIFO");
}

#[test]
fn a_fifo_as_docker_config_is_refused_at_once() {
    let env = Env::new();
    let fifo = env.fifo("docker.json");
    // A registry that asks for credentials, so that they are looked up.
    let registry = common::fake_registry::FakeRegistry::start(common::fake_registry::State {
        require_basic: Some(("user".into(), "secret".into())),
        ..Default::default()
    })
    .expect("fake registry");
    let host = registry.host.clone();
    let (image, policy, store) = (
        format!("{host}/app:1"),
        env.p("policy.json"),
        env.p("store"),
    );
    let verify = [
        "verify",
        &image,
        "--trust-policy",
        &policy,
        "--trust-store",
        &store,
    ];
    let flags = [
        "--insecure-registry",
        &host,
        "--docker-config",
        &fifo,
        "--timeout",
        "5",
    ];
    // The image cannot be judged: exit 3, with the reason.
    let why = format!("docker config {fifo}: is a FIFO");
    refused_at_once(&[&verify[..], &flags].concat(), 3, &why);
}

/// Issue 11 defect 11 (review): `vouch audit` on the live cluster found its kubeconfig through
/// `kube::Config::infer`, which reads `$KUBECONFIG` or `~/.kube/config` itself: a FIFO there
/// hung `audit` forever (and `--kubeconfig` was read twice). Now every kubeconfig, and every
/// file one names, is read once through the bounded reader and refused at once.
#[test]
fn a_fifo_as_kubeconfig_or_named_by_one_is_refused_at_once() {
    let env = Env::new();
    let (policy, store) = (env.p("policy.json"), env.p("store"));
    let audit = ["audit", "--trust-policy", &policy, "--trust-store", &store];
    let fifo = env.fifo("kubeconfig.fifo");
    let home = env.dir.path().to_str().unwrap();
    let why = format!("{fifo}: is a FIFO (named pipe), not a regular file");
    // As $KUBECONFIG, alone or first of a list (kube merges them all).
    let list = format!("{fifo}:{}", env.p("missing"));
    for value in [fifo.as_str(), list.as_str()] {
        let r = run_env(&audit, &[("KUBECONFIG", value), ("HOME", home)], None);
        assert_eq!(r.code(), 2, "KUBECONFIG={value}: {}", r.output());
        assert!(r.output().contains(&why), "{}", r.output());
    }
    // As ~/.kube/config.
    std::fs::create_dir(env.path(".kube")).unwrap();
    mkfifo(&env.path(".kube/config"));
    let r = run_env(&audit, &[("HOME", home)], None);
    assert_eq!(r.code(), 2, "{}", r.output());
    assert!(
        r.output().contains(".kube/config: is a FIFO"),
        "{}",
        r.output()
    );
    // As --kubeconfig.
    refused_at_once(&[&audit[..], &["--kubeconfig", &fifo]].concat(), 2, &why);
    // As the certificate authority a kubeconfig names (relative to it).
    mkfifo(&env.path("ca.crt"));
    std::fs::write(
        env.path("kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:9\n    certificate-authority: ca.crt\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n",
    )
    .unwrap();
    let kubeconfig = env.p("kubeconfig");
    let r = run_env(&audit, &[("KUBECONFIG", &kubeconfig), ("HOME", home)], None);
    assert_eq!(r.code(), 2, "{}", r.output());
    assert!(r.output().contains("ca.crt: is a FIFO"), "{}", r.output());
}

#[test]
fn a_fifo_or_dev_zero_as_tls_certificate_is_refused_without_abort() {
    let env = Env::new();
    let fifo = env.fifo("tls.fifo");
    let (key, policy, store) = (env.p("tls/tls.key"), env.p("policy.json"), env.p("store"));
    for cert in [fifo.as_str(), "/dev/zero"] {
        let listen = format!("127.0.0.1:{}", common::free_port());
        let serve = ["serve", "--listen", &listen, "--tls-key", &key];
        let trust = ["--trust-policy", &policy, "--trust-store", &store];
        let why = format!("TLS certificate {cert}: is a");
        refused_at_once(
            &[&serve[..], &trust, &["--tls-cert", cert]].concat(),
            2,
            &why,
        );
    }
}

#[test]
fn a_fifo_given_with_f_is_refused_and_stdin_as_a_pipe_is_read() {
    let env = Env::new();
    let fifo = env.fifo("pods.yaml");
    let r = env.audit(&[&fifo], None);
    assert_eq!(r.code(), 2, "{}", r.output());
    assert!(
        errors(&r).contains("is a FIFO (named pipe), not a regular file"),
        "{}",
        r.output()
    );
    // Standard input is a pipe, the normal case.
    let r = env.audit(
        &["-"],
        Some(Box::new(|mut w| {
            let _ = w.write_all(b"kind: ConfigMap\nmetadata: {name: c}\n");
        })),
    );
    assert_eq!(r.code(), 0, "{}", r.output());
}

#[test]
fn standard_input_past_the_limit_is_an_error_not_a_truncation() {
    let env = Env::new();
    // 64 MiB of comments, then a Pod the audit must not lose.
    let feed = |mut w: std::process::ChildStdin| {
        let line =
            [b"# padding to push the next document past the limit ....\n".as_slice(); 64].concat();
        let mut written = 0usize;
        while written <= STDIN_LIMIT {
            if w.write_all(&line).is_err() {
                return;
            }
            written += line.len();
        }
        let pod = format!(
            "---\nkind: Pod\nmetadata: {{name: late}}\nspec: {{containers: [{{name: c, image: {}/evil:1}}]}}\n",
            closed_registry()
        );
        let _ = w.write_all(pod.as_bytes());
    };
    let r = env.audit(&["-"], Some(Box::new(feed)));
    assert_eq!(r.code(), 2, "{}", r.output());
    let errors = errors(&r);
    assert!(errors.contains("<stdin>"), "{errors}");
    assert!(errors.contains("is larger than 67108864 bytes"), "{errors}");
}

#[test]
fn symlink_loops_in_a_manifest_directory_are_walked_once() {
    let env = Env::new();
    let dir = env.path("manifests");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("cm.yaml"),
        "kind: ConfigMap\nmetadata: {name: c}\n",
    )
    .unwrap();
    for l in ["l1", "l2", "l3"] {
        std::os::unix::fs::symlink(".", dir.join(l)).unwrap();
    }
    let r = env.audit(&[&dir.display().to_string()], None);
    assert_eq!(r.code(), 0, "{}", r.output());
    assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
}

#[test]
fn containers_from_a_yaml_merge_key_are_audited() {
    let env = Env::new();
    let host = closed_registry();
    let manifest = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nx-pod: &pod\n  containers:\n    - name: app\n      image: {host}/evil:1\nspec:\n  template:\n    spec:\n      <<: *pod\n"
    );
    std::fs::write(env.path("deploy.yaml"), manifest).unwrap();
    let r = env.audit(&[&env.p("deploy.yaml")], None);
    let report = report(&r);
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{}", r.output());
    assert_eq!(results[0]["workload"]["name"], "web");
    assert_eq!(results[0]["workload"]["container"], "app");
    assert!(
        r.output().contains(&format!("{host}/evil:1")),
        "{}",
        r.output()
    );
    assert_ne!(r.code(), 0, "{}", r.output());
}

/// Audit one manifest file that must be refused quickly, with one error saying `why`.
fn refused_quickly(text: &str, why: &str) -> Run {
    let env = Env::new();
    std::fs::write(env.path("m.yaml"), text).unwrap();
    let r = env.audit(&[&env.p("m.yaml")], None);
    assert_eq!(r.code(), 2, "{}", r.output());
    let report = report(&r);
    let errors = report["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(why), "{errors:?}");
    assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
    r
}

#[test]
fn deeply_nested_yaml_is_refused_quickly_with_one_error() {
    let nested = "{a: ".repeat(50_000) + &"}".repeat(50_000);
    assert!(nested.len() > 200_000);
    refused_quickly(
        &format!("kind: Pod\nspec: {nested}\n"),
        "nest deeper than 64 levels",
    );
}

#[test]
fn amplifying_flow_sequences_are_refused_within_bounded_memory() {
    // 8 MiB of empty flow sequences: about 75 bytes of parser memory each byte if parsed.
    let amplifying = format!("[{}[]]\n", "[],".repeat(8 * 1024 * 1024 / 3));
    let r = refused_quickly(
        &format!("kind: List\nitems: {amplifying}"),
        "more than 1000000 nodes",
    );
    assert!(
        r.peak_rss_kib < 256 * 1024,
        "peak memory {} KiB",
        r.peak_rss_kib
    );
}

#[tokio::test]
async fn a_fifo_dropped_into_a_watched_trust_store_is_refused_and_the_webhook_keeps_serving() {
    let env = Env::new();
    std::fs::write(env.path("config.yaml"), "serve:\n  reloadInterval: 200ms\n").unwrap();
    let port = common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            &env.p("tls/tls.crt"),
            "--tls-key",
            &env.p("tls/tls.key"),
            "--trust-policy",
            &env.p("policy.json"),
            "--trust-store",
            &env.p("store"),
            "--config",
            &env.p("config.yaml"),
        ])
        // One worker thread, as in a one-CPU pod: a blocked worker is a blocked webhook.
        .env("TOKIO_WORKER_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vouch serve");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let log = Arc::new(Mutex::new(String::new()));
    {
        let log = log.clone();
        let mut stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    let mut child = Kill(child);
    let ca = std::fs::read(env.path("tls/ca.crt")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let healthy = || async {
        client
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    };
    let started = Instant::now();
    while !healthy().await {
        assert!(
            started.elapsed() < BOUND,
            "vouch serve did not come up: {}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    mkfifo(&env.path("store/x509/ca/e2e/dropped.crt"));
    let started = Instant::now();
    while !log.lock().unwrap().contains("dropped.crt: is a FIFO") {
        assert!(
            started.elapsed() < BOUND,
            "no log line refusing the FIFO: {}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        assert!(
            healthy().await,
            "the webhook stopped answering: {}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM);
    }
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "{status:?}: {}", log.lock().unwrap());
            break;
        }
        assert!(
            started.elapsed() < BOUND,
            "SIGTERM did not stop the webhook: {}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
