//! An in-memory OCI distribution server on loopback: what `vouch demo` serves its sample images
//! from, and what the tests use for everything docker-registry cannot do — the referrers API
//! (with `Link` pagination and optional server-side filtering), bearer-token and Basic auth, and
//! injected faults (403 on referrers, NAME_UNKNOWN, bytes that do not match their digest, HEAD
//! refused). It speaks the distribution specification's wire format for the calls vouch makes,
//! holds one content store for every repository name, and is not meant for production use.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde_json::{json, Value};

/// Content and behaviour of the registry.
#[derive(Default)]
pub struct State {
    /// Manifests by digest: (media type, bytes).
    pub manifests: HashMap<String, (String, Vec<u8>)>,
    /// Tags to digests.
    /// A key may be `repo:tag` to tag in one repository only.
    pub tags: HashMap<String, String>,
    /// Blobs by digest.
    pub blobs: HashMap<String, Vec<u8>>,
    /// Serve `/referrers/` (else 404 with a non-NAME_UNKNOWN body, like a registry without it).
    pub referrers_api: bool,
    /// Referrers per page (0 = all).
    pub page_size: usize,
    /// Filter by artifactType and say so in `OCI-Filters-Applied`.
    pub filters_applied: bool,
    /// Answer the referrers call with this status instead.
    pub referrers_status: Option<u16>,
    /// Repositories that do not exist (NAME_UNKNOWN).
    pub missing_repos: HashSet<String>,
    /// Refuse HEAD with 405.
    pub head_not_allowed: bool,
    /// Blobs or manifests served with one byte changed.
    pub corrupt: HashSet<String>,
    /// Require a bearer token obtained with these Basic credentials.
    pub require_token: Option<(String, String)>,
    /// Answer every `/v2/` request with this status (a registry that is down).
    pub fail_status: Option<u16>,
    /// The body of those answers instead of a distribution error (a hostile registry's text).
    pub fail_body: Option<String>,
    /// Answer 429 with `Retry-After` above this many `/v2/` requests per second.
    pub rate_limit: Option<usize>,
    /// Times of recent requests (for `rate_limit`).
    pub recent: std::collections::VecDeque<std::time::Instant>,
    /// 429 answers given.
    pub throttled: usize,
    /// Require HTTP Basic authentication with these credentials.
    pub require_basic: Option<(String, String)>,
    /// Every request: "METHOD path".
    pub log: Vec<String>,
}

/// Serve an axum app on a free loopback port from a thread of its own (with its own runtime,
/// so it keeps serving whatever the caller's runtime does). Returns the bound address.
pub fn serve_in_background(app: Router) -> std::io::Result<std::net::SocketAddr> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                return;
            };
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "loopback server stopped");
            }
        });
    });
    Ok(addr)
}

/// A running in-memory registry.
pub struct MemoryRegistry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// Shared content and knobs.
    pub state: Arc<Mutex<State>>,
}

impl MemoryRegistry {
    /// Start serving on a free loopback port (on a thread of its own).
    pub fn start(state: State) -> std::io::Result<MemoryRegistry> {
        let state = Arc::new(Mutex::new(state));
        let app = Router::new()
            .route("/v2/", get(|| async { "{}" }))
            .route("/token", get(token))
            .route("/v2/{*rest}", any(dispatch))
            .with_state(state.clone());
        let addr = serve_in_background(app)?;
        Ok(MemoryRegistry {
            host: format!("127.0.0.1:{}", addr.port()),
            state,
        })
    }

    /// Read or change the state.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Every request received, as `METHOD uri`.
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.log.clone())
    }
}

type Shared = Arc<Mutex<State>>;

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::registry::sha256_hex(bytes))
}

impl State {
    /// Store a blob; returns its digest.
    pub fn put_blob(&mut self, bytes: &[u8]) -> String {
        let d = digest_of(bytes);
        self.blobs.insert(d.clone(), bytes.to_vec());
        d
    }

    /// Store a manifest (and tag it); returns its digest.
    pub fn put_manifest(&mut self, media_type: &str, bytes: &[u8], tag: Option<&str>) -> String {
        let d = digest_of(bytes);
        self.manifests
            .insert(d.clone(), (media_type.into(), bytes.to_vec()));
        if let Some(t) = tag {
            self.tags.insert(t.into(), d.clone());
        }
        d
    }

    /// Load an OCI layout (blobs and manifests; tags from ref.name annotations).
    pub fn load_layout(&mut self, layout: &std::path::Path) -> Result<(), String> {
        let read = |p: std::path::PathBuf| {
            crate::files::read(&p, 256 * 1024 * 1024).map_err(|e| e.to_string())
        };
        let index: Value = serde_json::from_slice(&read(layout.join("index.json"))?)
            .map_err(|e| format!("index.json: {e}"))?;
        let dir = layout.join("blobs/sha256");
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let p = entry.map_err(|e| e.to_string())?.path();
            let Some(name) = p.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            self.blobs.insert(format!("sha256:{name}"), read(p)?);
        }
        for m in index["manifests"].as_array().into_iter().flatten() {
            let (Some(d), Some(mt)) = (m["digest"].as_str(), m["mediaType"].as_str()) else {
                return Err("index.json: a manifest descriptor lacks digest or mediaType".into());
            };
            let bytes = self
                .blobs
                .get(d)
                .cloned()
                .ok_or_else(|| format!("blob {d} is missing"))?;
            self.manifests
                .insert(d.to_string(), (mt.to_string(), bytes));
            if let Some(t) = m["annotations"]["org.opencontainers.image.ref.name"].as_str() {
                self.tags.insert(t.into(), d.to_string());
            }
        }
        Ok(())
    }

    /// Push a signature artifact made by vouch's signer.
    pub fn put_signature(&mut self, sig: &crate::notation::signer::SignatureArtifact) {
        self.put_blob(&sig.envelope);
        self.put_blob(crate::notation::signer::EMPTY_CONFIG);
        self.put_manifest(&sig.manifest_descriptor.media_type, &sig.manifest, None);
    }

    fn referrers(&self, subject: &str, artifact_type: Option<&str>) -> Vec<Value> {
        let mut out: BTreeMap<String, Value> = BTreeMap::new();
        for (d, (mt, bytes)) in &self.manifests {
            let Ok(m) = serde_json::from_slice::<Value>(bytes) else {
                continue;
            };
            if m["subject"]["digest"].as_str() != Some(subject) {
                continue;
            }
            let at = m["artifactType"]
                .as_str()
                .or(m["config"]["mediaType"].as_str())
                .unwrap_or("");
            if self.filters_applied && artifact_type.is_some_and(|a| a != at) {
                continue;
            }
            let mut desc =
                json!({"mediaType": mt, "digest": d, "size": bytes.len(), "artifactType": at});
            if !m["annotations"].is_null() {
                desc["annotations"] = m["annotations"].clone();
            }
            // Order by creation annotation then digest: stable pages.
            let key = format!(
                "{}{d}",
                m["annotations"]["org.opencontainers.image.created"]
                    .as_str()
                    .unwrap_or("")
            );
            out.insert(key, desc);
        }
        out.into_values().collect()
    }
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = axum::http::HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({"errors": [{"code": code, "message": message}]}).to_string(),
    )
        .into_response()
}

async fn token(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let st = state.lock().unwrap_or_else(|e| e.into_inner());
    let Some((user, pass)) = &st.require_token else {
        return error(StatusCode::NOT_FOUND, "UNSUPPORTED", "no token service");
    };
    use base64::Engine;
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "bad credentials");
    }
    let scope = q.get("scope").cloned().unwrap_or_default();
    (
        StatusCode::OK,
        json!({"token": format!("tok:{scope}"), "expires_in": 300}).to_string(),
    )
        .into_response()
}

async fn dispatch(
    AxState(state): AxState<Shared>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Path(rest): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    _body: Bytes,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.log.push(format!("{method} {uri}"));
    if let Some(limit) = st.rate_limit {
        let now = std::time::Instant::now();
        while st
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= std::time::Duration::from_secs(1))
        {
            st.recent.pop_front();
        }
        if st.recent.len() >= limit {
            st.throttled += 1;
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                "rate limit exceeded",
            );
            set(r.headers_mut(), "retry-after", "1");
            return r;
        }
        st.recent.push_back(now);
    }
    if let Some(status) = st.fail_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        if let Some(body) = &st.fail_body {
            return (status, [("content-type", "application/json")], body.clone()).into_response();
        }
        return error(status, "UNAVAILABLE", "registry is down");
    }
    if let Some((user, pass)) = &st.require_basic {
        use base64::Engine;
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            set(r.headers_mut(), "www-authenticate", r#"Basic realm="fake""#);
            return r;
        }
    }
    if let Some((_, _)) = &st.require_token {
        let ok = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer tok:repository:"));
        if !ok {
            let host = headers
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let repo = rest
                .split("/manifests/")
                .next()
                .unwrap_or("")
                .split("/blobs/")
                .next()
                .unwrap_or("")
                .split("/referrers/")
                .next()
                .unwrap_or("");
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            set(
                r.headers_mut(),
                "www-authenticate",
                &format!(
                    r#"Bearer realm="http://{host}/token",service="fake",scope="repository:{repo}:pull""#
                ),
            );
            return r;
        }
    }
    let (repo, kind, reference) = ["manifests", "blobs", "referrers"]
        .iter()
        .find_map(|k| {
            let marker = format!("/{k}/");
            rest.rfind(&marker).map(|i| {
                (
                    rest[..i].to_string(),
                    *k,
                    rest[i + marker.len()..].to_string(),
                )
            })
        })
        .unwrap_or_default();
    if st.missing_repos.contains(&repo) {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        );
    }
    match kind {
        "manifests" => {
            if method == Method::HEAD && st.head_not_allowed {
                return StatusCode::METHOD_NOT_ALLOWED.into_response();
            }
            // Tags may be repository-qualified (`repo:tag`) to share one store between repositories.
            let digest = st
                .tags
                .get(&format!("{repo}:{reference}"))
                .or_else(|| st.tags.get(&reference))
                .cloned()
                .unwrap_or(reference.clone());
            let Some((mt, bytes)) = st.manifests.get(&digest).cloned() else {
                return error(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    "manifest unknown",
                );
            };
            let mut bytes = bytes;
            if st.corrupt.contains(&digest) {
                bytes[0] ^= 1;
            }
            let len = bytes.len();
            let mut resp = if method == Method::HEAD {
                StatusCode::OK.into_response()
            } else {
                (StatusCode::OK, bytes).into_response()
            };
            let h = resp.headers_mut();
            set(h, "content-type", &mt);
            set(h, "docker-content-digest", &digest);
            set(h, "content-length", &len.to_string());
            resp
        }
        "blobs" => {
            let Some(mut bytes) = st.blobs.get(&reference).cloned() else {
                return error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown");
            };
            if st.corrupt.contains(&reference) {
                bytes[0] ^= 1;
            }
            (
                StatusCode::OK,
                [("content-type", "application/octet-stream")],
                bytes,
            )
                .into_response()
        }
        "referrers" => {
            if !st.referrers_api {
                return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
            }
            if let Some(s) = st.referrers_status {
                return error(
                    StatusCode::from_u16(s).unwrap_or(StatusCode::FORBIDDEN),
                    "DENIED",
                    "requested access to the resource is denied",
                );
            }
            let artifact_type = q.get("artifactType").map(String::as_str);
            let all = st.referrers(&reference, artifact_type);
            let start: usize = q.get("last").and_then(|l| l.parse().ok()).unwrap_or(0);
            let size = if st.page_size == 0 {
                all.len().max(1)
            } else {
                st.page_size
            };
            let page: Vec<Value> = all.iter().skip(start).take(size).cloned().collect();
            let mut resp = (
                StatusCode::OK,
                json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": page}).to_string(),
            )
                .into_response();
            let h = resp.headers_mut();
            set(h, "content-type", "application/vnd.oci.image.index.v1+json");
            if st.filters_applied {
                set(h, "oci-filters-applied", "artifactType");
            }
            if start + size < all.len() {
                let at = artifact_type
                    .map(|a| {
                        format!(
                            "&artifactType={}",
                            a.replace('/', "%2F").replace('+', "%2B")
                        )
                    })
                    .unwrap_or_default();
                let link = format!(
                    "</v2/{repo}/referrers/{reference}?last={}{at}>; rel=\"next\"",
                    start + size
                );
                set(h, "link", &link);
            }
            resp
        }
        _ => error(StatusCode::NOT_FOUND, "UNSUPPORTED", "unknown route"),
    }
}
