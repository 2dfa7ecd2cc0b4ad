//! Shared test harness: a real `docker-registry` (Debian's distribution 2.8) on a free loopback
//! port, OCI layouts pushed into it, and helpers to run the built `vouch` binary.
#![allow(dead_code)]

pub mod acr;
pub mod cosign;
pub mod crl_server;
pub mod fake_registry;
pub mod hostile_client;
pub mod hostile_registry;
pub mod kube_api;
pub mod ocsp_responder;
pub mod pki;
pub mod tsa;
pub mod webhook;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `../shared/vectors`, beside the checkout.
pub fn vectors() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors");
    assert!(p.is_dir(), "test vectors not found at {}", p.display());
    p
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running docker-registry, stopped on drop.
pub struct Registry {
    child: Child,
    /// `localhost:PORT`.
    pub host: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Start Debian's docker-registry with a temporary storage directory.
    pub fn start() -> Registry {
        Self::start_inner(None)
    }

    /// [`Registry::start`] serving HTTPS with `tls`'s certificate (for `localhost` and
    /// `127.0.0.1`); clients must trust `tls.ca`. [`Registry::base`] and the push helpers speak
    /// plain HTTP and do not work with it.
    pub fn start_tls(tls: &TestTls) -> Registry {
        Self::start_inner(Some(tls))
    }

    fn start_inner(tls: Option<&TestTls>) -> Registry {
        let bin = which("docker-registry").expect(
            "docker-registry is not installed: run `apt-get install -y docker-registry` (the test script does)",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = dir.path().join("config.yml");
        let tls_config = tls
            .map(|t| {
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    t.cert.display(),
                    t.key.display()
                )
            })
            .unwrap_or_default();
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{tls_config}",
                dir.path().join("data").display()
            ),
        )
        .expect("write config");
        let child = spawn_tied_to_process(Command::new(bin).arg("serve").arg(&config));
        let host = format!("localhost:{port}");
        let started = Instant::now();
        loop {
            if tls.is_some() {
                // The harness's client is plain HTTP: a listening socket is enough here.
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break;
                }
            } else if let Ok(resp) = http::blocking_get(&format!("http://{host}/v2/")) {
                if resp == 200 {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "docker-registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            host,
            _dir: dir,
        }
    }

    /// A second docker-registry serving this one's storage, with `htpasswd` authentication
    /// (Basic) for `users` (name, password; bcrypt hashes made by Apache's `htpasswd -B`):
    /// push into `self` without credentials, read through the returned one with them. Its
    /// `_dir` holds only its config and password file.
    pub fn with_htpasswd(&self, users: &[(&str, &str)]) -> Registry {
        let bin = which("docker-registry").expect("docker-registry is not installed");
        let htpasswd = which("htpasswd")
            .expect("htpasswd is not installed: run `apt-get install -y apache2-utils` (the test script does)");
        let dir = tempfile::tempdir().expect("tempdir");
        let passwords = dir.path().join("htpasswd");
        for (i, (user, password)) in users.iter().enumerate() {
            let mut cmd = Command::new(&htpasswd);
            if i == 0 {
                cmd.arg("-c");
            }
            let status = cmd
                .args(["-B", "-b"])
                .arg(&passwords)
                .args([user, password])
                .stderr(Stdio::null())
                .status()
                .expect("htpasswd");
            assert!(status.success(), "htpasswd failed");
        }
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nauth:\n  htpasswd:\n    realm: vouch-test\n    path: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                self._dir.path().join("data").display(),
                passwords.display()
            ),
        )
        .expect("write config");
        let child = spawn_tied_to_process(Command::new(bin).arg("serve").arg(&config));
        let host = format!("localhost:{port}");
        let started = Instant::now();
        // Up when it asks for credentials.
        while http::blocking_get(&format!("http://{host}/v2/")) != Ok(401) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "docker-registry with htpasswd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            host,
            _dir: dir,
        }
    }

    /// A started registry holding notation's e2e layouts (`layouts`: layout name, repository).
    pub fn with_e2e_layouts(layouts: &[(&str, &str)]) -> Registry {
        let r = Registry::start();
        for (layout, repo) in layouts {
            r.push_e2e_layout(layout, repo);
        }
        r
    }

    /// Push notation's e2e layout `layout` (`e2e-valid-signature`…) into `repo`, tags included.
    pub fn push_e2e_layout(&self, layout: &str, repo: &str) {
        self.push_layout(&vectors().join("notation-e2e/layouts").join(layout), repo);
    }

    /// Push an OCI image layout (index.json + blobs) into `repo`, tags included.
    pub fn push_layout(&self, layout: &Path, repo: &str) {
        push_layout(&self.base(), layout, repo);
    }

    /// `http://localhost:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.host)
    }

    /// The digest the registry serves for `repo:reference` (its `Docker-Content-Digest`), and
    /// the manifest's media type and bytes.
    pub fn manifest(&self, repo: &str, reference: &str) -> (String, String, Vec<u8>) {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base());
        let accept =
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
        let r = http::request("GET", &url, &[("Accept", accept)], &[]).expect("get manifest");
        assert_eq!(r.status, 200, "{url}: {}", String::from_utf8_lossy(&r.body));
        let digest = r
            .header("docker-content-digest")
            .expect("Docker-Content-Digest");
        let media_type = r.header("content-type").expect("Content-Type");
        (digest.to_string(), media_type.to_string(), r.body)
    }

    /// Tag the manifest `repo@digest` (or `repo:tag`) as `repo:tag` too; a tag that named
    /// another manifest moves.
    pub fn tag(&self, repo: &str, reference: &str, tag: &str) {
        let (_, media_type, bytes) = self.manifest(repo, reference);
        put_manifest(&self.base(), repo, tag, &media_type, &bytes);
    }

    /// Push an unsigned image unique to `n` into `repo` (a config and a layer of its own, no
    /// tag): its manifest digest.
    pub fn push_unsigned_image(&self, repo: &str, n: usize) -> String {
        self.push_image_as(repo, n, "application/vnd.oci.image.manifest.v1+json")
            .digest
    }

    /// [`Registry::push_unsigned_image`] with the manifest media type `media_type` (OCI or
    /// Docker v2): its descriptor.
    pub fn push_image_as(
        &self,
        repo: &str,
        n: usize,
        media_type: &str,
    ) -> vouch::registry::Descriptor {
        let docker = media_type.contains("docker");
        let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"n\":{n}}}");
        let layer = format!("unsigned layer {n}\n");
        let digest_of = |b: &[u8]| format!("sha256:{}", vouch::registry::sha256_hex(b));
        let (config_digest, layer_digest) =
            (digest_of(config.as_bytes()), digest_of(layer.as_bytes()));
        upload_blob(&self.base(), repo, &config_digest, config.as_bytes());
        upload_blob(&self.base(), repo, &layer_digest, layer.as_bytes());
        let (config_type, layer_type) = if docker {
            (
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        } else {
            (
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar",
            )
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer.len()}],
        });
        let bytes = serde_json::to_vec(&manifest).expect("manifest");
        let digest = digest_of(&bytes);
        put_manifest(&self.base(), repo, &digest, media_type, &bytes);
        vouch::registry::Descriptor {
            media_type: media_type.into(),
            digest,
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        }
    }

    /// The descriptor of `repo@reference` (or `repo:reference`) as the registry serves it.
    pub fn descriptor(&self, repo: &str, reference: &str) -> vouch::registry::Descriptor {
        let (digest, media_type, bytes) = self.manifest(repo, reference);
        vouch::registry::Descriptor {
            media_type,
            digest,
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        }
    }

    /// Push an index (`media_type`: OCI image index or Docker manifest list) of `entries`
    /// (descriptor JSON, `platform` and `annotations` included) as `repo:tag`.
    pub fn push_index(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        entries: &[Value],
    ) -> vouch::registry::Descriptor {
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": media_type, "manifests": entries});
        let bytes = serde_json::to_vec(&index).expect("index");
        put_manifest(&self.base(), repo, tag, media_type, &bytes);
        vouch::registry::Descriptor {
            media_type: media_type.into(),
            digest: format!("sha256:{}", vouch::registry::sha256_hex(&bytes)),
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod http {
    //! A tiny blocking HTTP/1.1 client over std, so the harness needs no async runtime.
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub struct Response {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Response {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    pub fn blocking_get(url: &str) -> Result<u16, String> {
        request("GET", url, &[], &[]).map(|r| r.status)
    }

    pub fn request(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        let rest = url.strip_prefix("http://").ok_or("only http")?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = hostport.replace("localhost", "127.0.0.1");
        let mut s = TcpStream::connect(&addr).map_err(|e| e.to_string())?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        s.write_all(body).map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no header end")?;
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or("bad status line")?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn dechunk(mut b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let Some(i) = b.windows(2).position(|w| w == b"\r\n") else {
                return out;
            };
            let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&b[i + 2..i + 2 + n]);
            b = &b[i + 2 + n + 2..];
        }
    }
}

/// Spawn a child that is killed when this test process exits, even when the process never runs
/// destructors (statics). PR_SET_PDEATHSIG fires when the *spawning thread* exits, so the spawn
/// happens on a thread that lives as long as the process.
pub fn spawn_tied_to_process(cmd: &mut Command) -> Child {
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc;
    use std::sync::OnceLock;
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<std::sync::Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
            loop {
                std::thread::park();
            }
        });
        std::sync::Mutex::new(tx)
    });
    let mut owned = Command::new(cmd.get_program());
    owned.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => owned.env(k, v),
            None => owned.env_remove(k),
        };
    }
    owned.stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        owned.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    spawner
        .lock()
        .expect("spawner lock")
        .send((owned, tx))
        .expect("spawner alive");
    rx.recv().expect("spawner reply").expect("spawn child")
}

/// The path of program `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Push a blob if it is in the layout.
fn push_blob(base: &str, repo: &str, layout: &Path, digest: &str) -> bool {
    let path = blob_path(layout, digest);
    let Ok(bytes) = std::fs::read(&path) else {
        return false;
    };
    upload_blob(base, repo, digest, &bytes);
    true
}

/// Upload bytes as a blob (monolithic POST + PUT).
pub fn upload_blob(base: &str, repo: &str, digest: &str, bytes: &[u8]) {
    let start = http::request(
        "POST",
        &format!("{base}/v2/{repo}/blobs/uploads/"),
        &[],
        &[],
    )
    .expect("start upload");
    assert_eq!(
        start.status,
        202,
        "start upload: {}",
        String::from_utf8_lossy(&start.body)
    );
    let location = start
        .header("location")
        .expect("upload location")
        .to_string();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("{base}{location}")
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = http::request(
        "PUT",
        &format!("{location}{sep}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        bytes,
    )
    .expect("upload blob");
    assert_eq!(
        put.status,
        201,
        "upload blob {digest}: {}",
        String::from_utf8_lossy(&put.body)
    );
}

/// PUT a manifest under a tag or digest.
pub fn put_manifest(base: &str, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
    let put = http::request(
        "PUT",
        &format!("{base}/v2/{repo}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        bytes,
    )
    .expect("put manifest");
    assert_eq!(
        put.status,
        201,
        "put manifest {reference}: {}",
        String::from_utf8_lossy(&put.body)
    );
}

pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').expect("digest");
    layout.join("blobs").join(alg).join(hex)
}

fn push_manifest_tree(base: &str, repo: &str, layout: &Path, desc: &Value) {
    let digest = desc["digest"].as_str().expect("digest");
    let media_type = desc["mediaType"].as_str().expect("mediaType");
    let bytes = std::fs::read(blob_path(layout, digest)).expect("manifest blob");
    let manifest: Value = serde_json::from_slice(&bytes).expect("manifest json");
    if let Some(children) = manifest["manifests"].as_array() {
        for child in children {
            if blob_path(layout, child["digest"].as_str().unwrap_or("x:y")).exists() {
                push_manifest_tree(base, repo, layout, child);
            }
        }
    }
    for key in ["config"] {
        if let Some(d) = manifest[key]["digest"].as_str() {
            if !push_blob(base, repo, layout, d)
                && d.ends_with("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
            {
                upload_blob(base, repo, d, b"{}");
            }
        }
    }
    for key in ["layers", "blobs"] {
        if let Some(layers) = manifest[key].as_array() {
            for l in layers {
                if let Some(d) = l["digest"].as_str() {
                    push_blob(base, repo, layout, d);
                }
            }
        }
    }
    put_manifest(base, repo, digest, media_type, &bytes);
}

/// Push every manifest of an OCI layout (children before parents) and its tags.
pub fn push_layout(base: &str, layout: &Path, repo: &str) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("index json");
    let manifests = index["manifests"].as_array().expect("manifests");
    // Image manifests first, then indexes (which reference them).
    let mut ordered: Vec<&Value> = manifests
        .iter()
        .filter(|d| d["mediaType"] != "application/vnd.oci.image.index.v1+json")
        .collect();
    ordered.extend(
        manifests
            .iter()
            .filter(|d| d["mediaType"] == "application/vnd.oci.image.index.v1+json"),
    );
    for desc in &ordered {
        push_manifest_tree(base, repo, layout, desc);
        if let Some(tag) = desc["annotations"]["org.opencontainers.image.ref.name"].as_str() {
            let digest = desc["digest"].as_str().expect("digest");
            let bytes = std::fs::read(blob_path(layout, digest)).expect("blob");
            put_manifest(
                base,
                repo,
                tag,
                desc["mediaType"].as_str().expect("mt"),
                &bytes,
            );
        }
    }
    // Layouts made for OCI 1.1 registries carry no referrers tag; docker-registry has no
    // referrers API, so write the tag index a notation 1.x client would have written.
    let mut by_subject: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for desc in &ordered {
        let digest = desc["digest"].as_str().expect("digest");
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(blob_path(layout, digest)).expect("blob"))
                .expect("json");
        if let Some(subject) = manifest["subject"]["digest"].as_str() {
            let artifact_type = manifest["artifactType"]
                .as_str()
                .or(manifest["config"]["mediaType"].as_str())
                .unwrap_or_default();
            let mut d = serde_json::json!({
                "mediaType": desc["mediaType"], "digest": digest, "size": desc["size"],
                "artifactType": artifact_type,
            });
            if !manifest["annotations"].is_null() {
                d["annotations"] = manifest["annotations"].clone();
            }
            by_subject.entry(subject.to_string()).or_default().push(d);
        }
    }
    for (subject, referrers) in by_subject {
        let tag = subject.replacen(':', "-", 1);
        let has_tag = manifests
            .iter()
            .any(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag.as_str());
        if !has_tag {
            let index = serde_json::json!({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": referrers,
            });
            let bytes = serde_json::to_vec(&index).expect("index");
            put_manifest(
                base,
                repo,
                &tag,
                "application/vnd.oci.image.index.v1+json",
                &bytes,
            );
        }
    }
}

/// A trust store root with named stores holding the given certificate files.
pub fn trust_store(stores: &[(&str, &str, &[PathBuf])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (ty, name, files) in stores {
        let d = dir.path().join("x509").join(ty).join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        for f in *files {
            std::fs::copy(f, d.join(f.file_name().expect("name"))).expect("copy cert");
        }
    }
    dir
}

/// A trust store under `root` holding the notation e2e signing certificate as the `ca:e2e` store
/// (`root/x509/ca/e2e/e2e.crt`), the store the e2e layouts' signatures chain to.
pub fn e2e_trust_store(root: &Path) {
    let store = root.join("x509/ca/e2e");
    std::fs::create_dir_all(&store).expect("mkdir");
    std::fs::copy(
        vectors().join("notation-e2e/localkeys/e2e.crt"),
        store.join("e2e.crt"),
    )
    .expect("copy the e2e certificate");
}

/// A CA and a serving certificate for `localhost` and `127.0.0.1`, made by vouch's own
/// certificate generator, for the tests' HTTPS servers.
pub struct TestTls {
    _dir: Option<tempfile::TempDir>,
    /// The CA certificate (give it to vouch as `SSL_CERT_FILE`, or to a client).
    pub ca: PathBuf,
    /// The serving certificate.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

impl TestTls {
    /// In a temporary directory of its own.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tls = Self::in_dir(dir.path());
        tls._dir = Some(dir);
        tls
    }

    /// Written into `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        let g = vouch::certs::generate(&["localhost".into(), "127.0.0.1".into()], 1, dir)
            .expect("certs");
        TestTls {
            _dir: None,
            ca: g.ca_cert,
            cert: g.tls_cert,
            key: g.tls_key,
        }
    }

    /// The CA certificate as PEM text.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(&self.ca).expect("read CA")
    }
}

/// Write a trust policy (text) to a temp file.
pub fn policy_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join(format!("policy-{}.json", free_port()));
    std::fs::write(&p, text).expect("write policy");
    p
}

/// Run the built binary.
pub fn vouch(args: &[&str]) -> Output {
    vouch_env(args, &[])
}

/// Run the built binary with extra environment variables. Each run has a notation cache
/// directory of its own (`vouch verify` keeps CRLs there), removed afterwards, so that no run
/// sees another's CRLs unless `env` names a `NOTATION_CACHE` to share.
pub fn vouch_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let cache = tempfile::tempdir().expect("notation cache directory");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.args(args)
        .env_remove("DOCKER_CONFIG")
        .env_remove("XDG_CACHE_HOME")
        .env("NOTATION_CACHE", cache.path())
        .env("HOME", std::env::temp_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run vouch")
}

/// `vouch verify IMAGES --trust-policy POLICY --trust-store STORE --insecure-registry
/// REGISTRY -o json EXTRA…` with the extra environment `env`: the exit status, the JSON
/// document printed (panics, showing the output, when it is not JSON) and stderr.
pub fn verify_json(
    images: &[&str],
    policy: &Path,
    store: &Path,
    registry: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (i32, Value, String) {
    let mut json = vec!["-o", "json"];
    json.extend_from_slice(extra);
    let (code, out, err) = outcome(&verify_output(images, policy, store, registry, &json, env));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, v, err)
}

/// `vouch verify IMAGES --trust-policy POLICY --trust-store STORE --insecure-registry
/// REGISTRY EXTRA…` with the extra environment `env`, as it ran.
pub fn verify_output(
    images: &[&str],
    policy: &Path,
    store: &Path,
    registry: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let (policy, store) = (policy.display().to_string(), store.display().to_string());
    let mut args = vec!["verify"];
    args.extend_from_slice(images);
    args.extend([
        "--trust-policy",
        &policy,
        "--trust-store",
        &store,
        "--insecure-registry",
        registry,
    ]);
    args.extend_from_slice(extra);
    vouch_env(&args, env)
}

/// Exit status, stdout and stderr of a run.
pub fn outcome(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// Sign `subject` in `host/repo` with `signer` and push the signature as a referrer (the
/// referrers tag index, which notation 1.x writes on a registry without the referrers API).
/// Makes a runtime of its own: call it outside async code.
pub fn push_signature(
    host: &str,
    repo: &str,
    subject: &vouch::registry::Descriptor,
    signer: &vouch::notation::signer::Signer,
) {
    use vouch::notation::signer::EMPTY_CONFIG;
    use vouch::reference::ImageReference;
    use vouch::registry::{RegistryClient, RegistryOptions, OCI_MANIFEST};
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let image =
            ImageReference::parse(&format!("{host}/{repo}@{}", subject.digest)).expect("reference");
        let client = RegistryClient::new(RegistryOptions {
            insecure_registries: vec![host.to_string()],
            ..Default::default()
        })
        .expect("client");
        let sig = signer.sign_artifact(subject, None).expect("sign");
        client
            .push_blob(&image, &sig.envelope)
            .await
            .expect("envelope");
        client
            .push_blob(&image, EMPTY_CONFIG)
            .await
            .expect("empty config");
        client
            .push_manifest(&image, OCI_MANIFEST, &sig.manifest, None)
            .await
            .expect("signature manifest");
        client
            .index_referrer(&image, subject, &sig.manifest_descriptor)
            .await
            .expect("referrers tag");
    });
}
