//! vouch's own container image, made as a release makes it: `scripts/build-image.sh` (buildah
//! from scratch, no daemon) around the static binary, pushed with skopeo to a real
//! docker-registry, inspected (config, layer contents, size), run with podman, signed with a
//! Notation signature and verified by `vouch verify` — by the vouch on the host and by the vouch
//! inside the image. The Dockerfile is checked to describe the same image.
//!
//! The static (musl) binary is the one `tests/run.sh` builds and names in `VOUCH_IMAGE_BINARY`:
//! the dev profile without debug info, a third of a release build's time (a release image comes
//! from the same script, which builds with `--release`). Without it the test looks for
//! `<target>/<arch>-unknown-linux-musl/{release,debug}/vouch`; either way the binary must be
//! built from the same revision as this test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use common::pki;
use serde_json::Value;
use vouch::registry::Descriptor;

const REPO: &str = "vouch-dev/vouch";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run a program; its stdout, or a panic with everything it said.
fn run(program: &str, args: &[&str]) -> String {
    let out = run_output(program, args);
    assert!(
        out.status.success(),
        "{program} {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_output(program: &str, args: &[&str]) -> Output {
    let path = common::which(program).unwrap_or_else(|| {
        panic!("{program} is not installed: tests/run.sh installs it (apt-get install -y buildah skopeo podman runc)")
    });
    Command::new(path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// `vouch --version` of a binary.
fn version_line(binary: &Path) -> String {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .expect("run --version");
    assert!(
        out.status.success(),
        "{} --version failed",
        binary.display()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The static binary the image is built from (see the module comment).
fn static_binary() -> PathBuf {
    let want = version_line(Path::new(env!("CARGO_BIN_EXE_vouch")));
    let triple = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
    let candidates: Vec<PathBuf> = match std::env::var_os("VOUCH_IMAGE_BINARY") {
        Some(p) => vec![PathBuf::from(p)],
        None => {
            // CARGO_BIN_EXE_vouch is <target>/<profile>/vouch.
            let target = Path::new(env!("CARGO_BIN_EXE_vouch"))
                .parent()
                .and_then(Path::parent)
                .expect("target directory");
            ["release", "debug"]
                .iter()
                .map(|p| target.join(&triple).join(p).join("vouch"))
                .filter(|p| p.is_file())
                .collect()
        }
    };
    // Built from another commit, it would test an image of other code.
    let found: Vec<(PathBuf, String)> = candidates
        .into_iter()
        .map(|p| {
            let v = version_line(&p);
            (p, v)
        })
        .collect();
    found
        .iter()
        .find(|(_, v)| *v == want)
        .map(|(p, _)| p.clone())
        .unwrap_or_else(|| {
            panic!(
                "no static vouch binary built from this revision ({want}); found {found:?}. \
                 tests/run.sh builds it: cargo build --locked --target {triple}, or name one \
                 in VOUCH_IMAGE_BINARY"
            )
        })
}

/// A built image: an OCI layout directory holding one tagged manifest.
struct Image {
    dir: tempfile::TempDir,
    tag: String,
    /// What `build-image.sh` printed.
    log: String,
    /// The binary it holds.
    version: String,
}

impl Image {
    fn build(binary: &Path) -> Image {
        let dir = tempfile::tempdir().expect("tempdir");
        let tag = env!("CARGO_PKG_VERSION").to_string();
        let dest = format!("oci:{}:{tag}", dir.path().join("oci").display());
        let script = root().join("scripts/build-image.sh");
        let out = Command::new(&script)
            .args([
                "--binary",
                binary.to_str().expect("utf-8 path"),
                "--dest",
                &dest,
            ])
            .output()
            .expect("run scripts/build-image.sh");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "build-image.sh failed:\n{log}");
        Image {
            dir,
            tag,
            log,
            version: version_line(binary),
        }
    }

    /// `oci:<dir>:<tag>`, the transport name skopeo and podman read.
    fn oci(&self) -> String {
        format!("oci:{}:{}", self.layout().display(), self.tag)
    }

    fn layout(&self) -> PathBuf {
        self.dir.path().join("oci")
    }

    /// The manifest as stored.
    fn manifest_text(&self) -> String {
        run("skopeo", &["inspect", "--raw", &self.oci()])
    }

    fn manifest(&self) -> Value {
        serde_json::from_str(&self.manifest_text()).expect("manifest")
    }

    fn config(&self) -> Value {
        serde_json::from_str(&run("skopeo", &["inspect", "--config", &self.oci()])).expect("config")
    }

    fn blob(&self, digest: &str) -> PathBuf {
        common::blob_path(&self.layout(), digest)
    }

    /// `skopeo copy` to `host/REPO:tag` (a registry reached without verifying TLS): the digest
    /// of the manifest pushed.
    fn push(&self, host: &str) -> String {
        let digest_file = self.dir.path().join("digest");
        run(
            "skopeo",
            &[
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--digestfile",
                digest_file.to_str().expect("path"),
                &self.oci(),
                &format!("docker://{host}/{REPO}:{}", self.tag),
            ],
        );
        std::fs::read_to_string(&digest_file)
            .expect("digest file")
            .trim()
            .to_string()
    }
}

#[test]
fn version_names_the_revision_it_was_built_from() {
    let line = version_line(Path::new(env!("CARGO_BIN_EXE_vouch")));
    let expected = match option_env!("VOUCH_GIT_REVISION").filter(|r| !r.trim().is_empty()) {
        Some(given) => given.trim().to_string(),
        None => Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into()),
    };
    assert_eq!(
        line,
        format!("vouch {} (revision {expected})", env!("CARGO_PKG_VERSION"))
    );
}

/// The settings of the Dockerfile's runtime stage, as an image config would carry them.
struct DockerfileRuntime {
    user: String,
    workdir: String,
    entrypoint: Value,
    cmd: Value,
    env: Vec<String>,
    expose: Vec<String>,
    labels: Vec<(String, String)>,
    args: Vec<(String, String)>,
    text: String,
}

fn dockerfile_runtime() -> DockerfileRuntime {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let joined = text.replace("\\\n", " ");
    let stage = joined
        .rsplit_once("\nFROM scratch")
        .map(|(_, s)| s.to_string())
        .expect("a `FROM scratch` runtime stage");
    let mut d = DockerfileRuntime {
        user: String::new(),
        workdir: String::new(),
        entrypoint: Value::Null,
        cmd: Value::Null,
        env: Vec::new(),
        expose: Vec::new(),
        labels: Vec::new(),
        args: Vec::new(),
        text: text.clone(),
    };
    let pair = regex::Regex::new(r#"([A-Za-z0-9_.-]+)="([^"]*)""#).expect("regex");
    for line in stage.lines().map(str::trim) {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match word {
            "USER" => d.user = rest.into(),
            "WORKDIR" => d.workdir = rest.into(),
            "ENTRYPOINT" => d.entrypoint = serde_json::from_str(rest).expect("ENTRYPOINT JSON"),
            "CMD" => d.cmd = serde_json::from_str(rest).expect("CMD JSON"),
            "ENV" => d.env.push(rest.into()),
            "EXPOSE" => d.expose.push(rest.into()),
            "ARG" => {
                let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
                d.args.push((k.into(), v.into()));
            }
            "LABEL" => {
                for c in pair.captures_iter(rest) {
                    d.labels.push((c[1].to_string(), c[2].to_string()));
                }
            }
            _ => {}
        }
    }
    d
}

#[test]
fn image_is_built_without_a_daemon_holds_only_vouch_and_matches_the_dockerfile() {
    let binary = static_binary();
    let started = Instant::now();
    let image = Image::build(&binary);
    let built_in = started.elapsed();
    let again = Image::build(&binary);
    assert_eq!(
        image.manifest(),
        again.manifest(),
        "the same binary and commit give another image: the build is not reproducible"
    );

    // The config: what Kubernetes and the chart rely on.
    let config = image.config();
    let c = &config["config"];
    assert_eq!(
        c["User"], "65532:65532",
        "non-root by number (runAsNonRoot)"
    );
    assert_eq!(c["Entrypoint"], serde_json::json!(["vouch"]));
    assert_eq!(config["os"], "linux");
    let (version, revision) = image
        .version
        .strip_prefix("vouch ")
        .and_then(|v| v.split_once(" (revision "))
        .map(|(v, r)| (v.to_string(), r.trim_end_matches(')').to_string()))
        .expect("version line");
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let label = |k: &str| c["Labels"][k].as_str().unwrap_or_default().to_string();
    assert_eq!(label("org.opencontainers.image.version"), version);
    assert_eq!(label("org.opencontainers.image.revision"), revision);
    assert_eq!(label("org.opencontainers.image.licenses"), "Apache-2.0");
    assert_eq!(
        label("org.opencontainers.image.source"),
        "https://github.com/vouch-dev/vouch"
    );

    // The one layer: the binary, the CA bundle, passwd and group. No shell, no package manager.
    let manifest = image.manifest();
    let layers = manifest["layers"].as_array().expect("layers").clone();
    assert_eq!(layers.len(), 1, "{manifest}");
    let layer = image.blob(layers[0]["digest"].as_str().expect("digest"));
    let listing = run("tar", &["-tzf", layer.to_str().expect("path")]);
    let mut files: Vec<&str> = listing
        .lines()
        .map(|l| l.trim_start_matches("./"))
        .filter(|l| !l.ends_with('/') && !l.is_empty())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "etc/group",
            "etc/passwd",
            "etc/ssl/certs/ca-certificates.crt",
            "usr/local/bin/vouch"
        ],
        "the image holds more than vouch"
    );
    for forbidden in [
        "bin/sh",
        "bin/bash",
        "bin/busybox",
        "usr/bin/apt",
        "usr/bin/dpkg",
    ] {
        assert!(
            !listing
                .lines()
                .any(|l| l.trim_start_matches("./") == forbidden),
            "{forbidden} in the image"
        );
    }
    let unpacked = tempfile::tempdir().expect("tempdir");
    run(
        "tar",
        &[
            "-xzf",
            layer.to_str().expect("path"),
            "-C",
            unpacked.path().to_str().expect("path"),
        ],
    );
    let inside = unpacked.path().join("usr/local/bin/vouch");
    let headers = run("readelf", &["-l", inside.to_str().expect("path")]);
    assert!(
        !headers.contains("program interpreter"),
        "the binary needs a dynamic loader, which the image does not have:\n{headers}"
    );
    assert_eq!(
        version_line(&inside),
        image.version,
        "the layer holds another binary"
    );
    let bundle = std::fs::read_to_string(unpacked.path().join("etc/ssl/certs/ca-certificates.crt"))
        .expect("CA bundle");
    assert!(
        bundle.matches("-----BEGIN CERTIFICATE-----").count() > 50,
        "the CA bundle holds too few roots for public registries and Entra ID"
    );
    let passwd = std::fs::read_to_string(unpacked.path().join("etc/passwd")).expect("passwd");
    assert!(passwd.contains(":65532:65532:"), "{passwd}");

    let compressed: u64 = std::iter::once(&manifest["config"])
        .chain(layers.iter())
        .filter_map(|d| d["size"].as_u64())
        .sum();
    let binary_size = std::fs::metadata(&inside).map(|m| m.len()).unwrap_or(0);
    println!(
        "image built in {:.1}s: {} bytes to pull ({:.1} MiB), binary {:.1} MiB; {}",
        built_in.as_secs_f64(),
        compressed,
        compressed as f64 / 1048576.0,
        binary_size as f64 / 1048576.0,
        image.log.trim()
    );

    // The Dockerfile describes the same image: the same files (the script lays them out in
    // its build stage) and the same runtime settings.
    let d = dockerfile_runtime();
    assert!(
        d.text.contains("scripts/build-image.sh --binary")
            && d.text.contains("--rootfs-only /rootfs")
            && d.text.contains("COPY --from=build /rootfs/ /"),
        "the Dockerfile does not lay out the image with scripts/build-image.sh --rootfs-only"
    );
    assert_eq!(c["User"], d.user.as_str(), "USER");
    assert_eq!(c["WorkingDir"], d.workdir.as_str(), "WORKDIR");
    assert_eq!(c["Entrypoint"], d.entrypoint, "ENTRYPOINT");
    assert_eq!(c["Cmd"], d.cmd, "CMD");
    let mut env: Vec<String> = c["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    env.sort();
    let mut denv = d.env.clone();
    denv.sort();
    assert_eq!(env, denv, "ENV");
    let mut ports: Vec<String> = c["ExposedPorts"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    ports.sort();
    assert_eq!(ports, d.expose, "EXPOSE");
    let arg = |k: &str| {
        d.args
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        arg("VOUCH_VERSION"),
        env!("CARGO_PKG_VERSION"),
        "the Dockerfile's VOUCH_VERSION default is not Cargo.toml's version"
    );
    // The chart deploys this image by default: its repository, tagged with appVersion.
    let chart: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("charts/vouch/Chart.yaml")).expect("Chart.yaml"),
    )
    .expect("Chart.yaml");
    let values: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("charts/vouch/values.yaml")).expect("values.yaml"),
    )
    .expect("values.yaml");
    assert_eq!(
        chart["appVersion"],
        version.as_str(),
        "Chart.yaml appVersion"
    );
    assert_eq!(
        values["image"]["repository"],
        format!("ghcr.io/{REPO}").as_str()
    );
    assert_eq!(
        values["image"]["tag"], "",
        "the chart's tag is not appVersion"
    );
    let labels = c["Labels"].as_object().expect("labels");
    assert_eq!(
        labels.len(),
        d.labels.len(),
        "LABEL: {labels:?} vs {:?}",
        d.labels
    );
    for (k, v) in &d.labels {
        let v = v
            .replace("${VOUCH_VERSION}", &arg("VOUCH_VERSION"))
            .replace("${VOUCH_GIT_REVISION}", &revision);
        assert_eq!(
            labels.get(k).and_then(Value::as_str),
            Some(v.as_str()),
            "LABEL {k}"
        );
    }
}

/// podman with its own storage (nothing global is touched) and runc. This machine's sandbox
/// lacks CAP_SYS_RESOURCE, so podman's default RLIMIT_NOFILE/NPROC (raised above the current
/// hard limits) cannot be set: the limits are given, below the sandbox's. crun refuses the
/// host's hybrid cgroup v1/v2 layout ("cgroups in hybrid mode not supported"); runc runs it.
fn podman(storage: &Path, args: &[&str]) -> Output {
    let root = storage.join("root");
    let runroot = storage.join("run");
    let mut all = vec![
        "--root",
        root.to_str().expect("path"),
        "--runroot",
        runroot.to_str().expect("path"),
        "--storage-driver",
        "vfs",
        "--runtime",
        "runc",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "none",
    ];
    all.extend_from_slice(args);
    run_output("podman", &all)
}

/// `podman run` of `image` with the chart's restrictions: read-only root filesystem (and no
/// writable /tmp), no capabilities, no privilege escalation, the image's own user.
fn podman_run(storage: &Path, extra: &[&str], image: &str, args: &[&str]) -> Output {
    let mut all = vec![
        "run",
        "--rm",
        "--tls-verify=false",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ];
    all.extend_from_slice(extra);
    all.push(image);
    all.extend_from_slice(args);
    podman(storage, &all)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn image_is_pushed_run_signed_and_verified_by_vouch_inside_and_out() {
    let binary = static_binary();
    let image = Image::build(&binary);
    let registry = common::Registry::start();
    // 127.0.0.1 rather than localhost: the image has no /etc/hosts of its own to name it.
    let host = registry.host.replace("localhost", "127.0.0.1");
    let tag = &image.tag;
    let pushed = format!("{host}/{REPO}:{tag}");
    let digest = image.push(&host);
    let remote: Value = serde_json::from_str(&run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{pushed}"),
        ],
    ))
    .expect("inspect");
    assert_eq!(
        remote["Digest"],
        digest.as_str(),
        "the registry serves another manifest"
    );
    let (served, media_type, bytes) = registry.manifest(REPO, tag);
    assert_eq!(served, digest);
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        image.manifest_text(),
        "the registry holds another manifest than the one built"
    );
    println!("pushed {pushed}@{digest}");

    // Run it as the chart does, pulled from the registry by digest.
    let storage = tempfile::tempdir().expect("podman storage");
    let by_digest = format!("{host}/{REPO}@{digest}");
    let version = podman_run(
        storage.path(),
        &["--network", "none"],
        &by_digest,
        &["--version"],
    );
    assert!(version.status.success(), "podman run: {}", text(&version));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        image.version
    );
    let shell = podman_run(
        storage.path(),
        &["--network", "none", "--entrypoint", "/bin/sh"],
        &by_digest,
        &["-c", "true"],
    );
    assert!(
        !shell.status.success(),
        "a shell ran in the image: {}",
        text(&shell)
    );
    assert!(
        text(&shell).contains("/bin/sh") && text(&shell).contains("no such file"),
        "{}",
        text(&shell)
    );
    // The demo (its registry, PKI and webhook on the container's loopback) writes its files to
    // a temporary directory: the one writable place, as an emptyDir would be in a pod.
    let demo = podman_run(
        storage.path(),
        &["--network", "none", "--tmpfs", "/tmp:rw,size=16m,mode=1777"],
        &by_digest,
        &["demo"],
    );
    assert!(
        demo.status.success() && text(&demo).contains("Every answer was the expected one."),
        "vouch demo in the image: {}",
        text(&demo)
    );

    // Sign it as the release pipeline does, and verify it as a user would.
    let signer = pki::ca_issued("vouch release signing", &rcgen::PKCS_ECDSA_P384_SHA384);
    let subject = Descriptor {
        media_type,
        digest: digest.clone(),
        size: bytes.len() as u64,
        artifact_type: None,
        annotations: None,
    };
    common::push_signature(&host, REPO, &subject, &signer.signer());
    let trust = tempfile::tempdir().expect("trust dir");
    signer.write_store(&trust.path().join("store"), "vouch-release");
    let policy = serde_json::json!({"version": "1.0", "trustPolicies": [{
        "name": "vouch-image",
        "registryScopes": [format!("{host}/{REPO}")],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:vouch-release"],
        "trustedIdentities": [format!("x509.subject: {}", signer.subject())],
    }]});
    std::fs::write(trust.path().join("trustpolicy.json"), policy.to_string()).expect("policy");
    let policy_path = trust.path().join("trustpolicy.json");
    let store_path = trust.path().join("store");
    let verify_args = |image: &str| -> Vec<String> {
        [
            "verify",
            image,
            "--trust-policy",
            policy_path.to_str().expect("path"),
            "--trust-store",
            store_path.to_str().expect("path"),
            "--insecure-registry",
            &host,
            "-o",
            "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let args = verify_args(&pushed);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = common::outcome(&common::vouch(&args));
    assert_eq!(code, 0, "vouch verify of its own image: {out}{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let result = &v["results"][0];
    assert_eq!(result["verified"], true, "{out}");
    assert_eq!(result["digest"], digest.as_str());
    assert_eq!(
        result["pinned"],
        format!("{pushed}@{digest}").as_str(),
        "{out}"
    );

    // An unsigned image in vouch's repository is refused by the same policy.
    let other = registry.push_unsigned_image(REPO, 14);
    let args = verify_args(&format!("{host}/{REPO}@{other}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, _) = common::outcome(&common::vouch(&args));
    assert_eq!(
        code, 1,
        "an unsigned image in vouch's repository verified: {out}"
    );
    assert!(out.contains("no Notation signature found"), "{out}");

    // The vouch inside the image verifies itself: the policy and store mounted read-only, the
    // registry reached over the host's loopback.
    let mount = format!("{}:/trust:ro", trust.path().display());
    let inside = podman_run(
        storage.path(),
        &["--network", "host", "--volume", &mount],
        &by_digest,
        &[
            "verify",
            &pushed,
            "--trust-policy",
            "/trust/trustpolicy.json",
            "--trust-store",
            "/trust/store",
            "--insecure-registry",
            &host,
        ],
    );
    assert!(
        inside.status.success() && text(&inside).contains("VERIFIED"),
        "vouch verify inside the image: {}",
        text(&inside)
    );
}

#[test]
fn vouch_in_the_image_trusts_the_roots_at_the_image_ca_bundle_path() {
    // An HTTPS registry whose certificate only the test CA vouches for: the image's vouch
    // reaches it exactly when that CA is the bundle at /etc/ssl/certs/ca-certificates.crt.
    let binary = static_binary();
    let image = Image::build(&binary);
    let tls = common::TestTls::new();
    let registry = common::Registry::start_tls(&tls);
    let host = registry.host.replace("localhost", "127.0.0.1");
    let storage = tempfile::tempdir().expect("podman storage");
    // podman names an image from an oci: path by the path, which a temporary directory's mixed
    // case makes invalid: run it from the registry instead (pulled without verifying TLS).
    let local = format!("{host}/{REPO}@{}", image.push(&host));
    let probe = format!("{host}/{REPO}:absent");
    let bundle = format!("{}:/etc/ssl/certs/ca-certificates.crt:ro", tls.ca.display());
    // Not "skip": a skip statement never asks the registry anything. Any CA fills the store.
    let policy = tempfile::tempdir().expect("policy dir");
    std::fs::write(
        policy.path().join("trustpolicy.json"),
        r#"{"version":"1.0","trustPolicies":[{"name":"s","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:any"],"trustedIdentities":["*"]}]}"#,
    )
    .expect("policy");
    let store = policy.path().join("store/x509/ca/any");
    std::fs::create_dir_all(&store).expect("store");
    std::fs::copy(&tls.ca, store.join("ca.pem")).expect("store certificate");
    let mount = format!("{}:/trust:ro", policy.path().display());
    let verify = |extra: &[&str]| {
        let mut all = vec!["--network", "host", "--volume", mount.as_str()];
        all.extend_from_slice(extra);
        podman_run(
            storage.path(),
            &all,
            &local,
            &[
                "verify",
                &probe,
                "--trust-policy",
                "/trust/trustpolicy.json",
                "--trust-store",
                "/trust/store",
            ],
        )
    };
    // With the image's own bundle (public roots only) the test CA is unknown.
    let public = verify(&[]);
    println!("with the image's bundle: {}", text(&public).trim());
    assert!(
        public.status.code() == Some(3) && text(&public).contains("UnknownIssuer"),
        "the image's vouch trusted a certificate no public root issued: {}",
        text(&public)
    );
    // With the test CA at the bundle path, the TLS handshake succeeds and the registry answers
    // (the image does not exist: exit 3, with the registry's not-found, not a TLS error). The
    // same holds without SSL_CERT_FILE: the path is where rustls-native-certs looks by default.
    let bundle = bundle.as_str();
    for extra in [
        &["--volume", bundle][..],
        &["--volume", bundle, "--unsetenv", "SSL_CERT_FILE"],
    ] {
        let trusted = verify(extra);
        let said = text(&trusted);
        println!(
            "with the test CA at the bundle path ({extra:?}): {}",
            said.trim()
        );
        assert_eq!(trusted.status.code(), Some(3), "{said}");
        assert!(
            said.contains("manifest vouch-dev/vouch:absent not found")
                && !said.contains("UnknownIssuer"),
            "the image's vouch did not trust the bundle at the default path ({extra:?}): {said}"
        );
    }
}
