//! The OCI distribution client vouch needs: resolve a reference to a descriptor, list an
//! image's referrers, and fetch manifests and blobs — each size-limited and digest-checked.
//!
//! Written on reqwest rather than through oci-client's `Client` because oci-client does not
//! follow referrers `Link` pagination, does not URL-encode `artifactType`, turns a 403 during the
//! tag fallback into "no referrers", puts no size limit on manifests, only asks for `pull`
//! token scopes and cannot be handed our HTTP client (connection reuse, limits). We use its
//! reference grammar ([`crate::reference`]) and share the wire rules with oras-go
//! (`registry/remote/repository.go`), which notation uses:
//! - referrers API first; a 404 that is not `NAME_UNKNOWN`, or a 200 that is not an image
//!   index, means "no referrers API": fall back to the `sha256-<hex>` tag;
//! - filter by `artifactType` ourselves unless `OCI-Filters-Applied` says the registry did;
//! - follow `Link: <…>; rel="next"` pages.

pub mod auth;
pub mod digest;

pub use digest::Digest;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::metrics::{Metrics, RegistryHost};
use crate::reference::ImageReference;
use auth::{parse_challenge, Challenge, Credential, CredentialSource, TokenCache};

/// Largest manifest or index read (oras-go's `defaultMaxMetadataBytes`).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest signature envelope read.
pub const MAX_ENVELOPE_BYTES: u64 = 1024 * 1024;
/// Attempts of one request the registry throttles.
const MAX_THROTTLE_RETRIES: u32 = 6;
/// Longest Retry-After honoured at once.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Most referrers pages followed for one image.
const MAX_REFERRERS_PAGES: usize = 32;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The pre-1.1 OCI artifact manifest, still readable.
pub const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";

/// Every manifest type we ask for. docker-registry answers 404 to a GET whose Accept lacks the
/// OCI types, so they are always sent.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.artifact.manifest.v1+json";

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type.
    pub media_type: String,
    /// Content digest.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Artifact type (referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// An image index (referrers response or fallback tag).
#[derive(Debug, Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// An image manifest (signature manifests), or the older artifact manifest.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Media type, when the manifest states it.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Artifact type (OCI 1.1).
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Config descriptor.
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// Layers (image manifest).
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Blobs (artifact manifest).
    #[serde(default)]
    pub blobs: Vec<Descriptor>,
    /// Subject.
    #[serde(default)]
    pub subject: Option<Descriptor>,
}

/// A registry problem: the image could not be judged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// Connection, TLS or timeout failure.
    #[error("registry {host} is unreachable: {reason}")]
    Unreachable {
        /// Registry host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The manifest or repository does not exist.
    #[error("{what} not found in {host}")]
    NotFound {
        /// Registry host.
        host: String,
        /// What was looked for.
        what: String,
    },
    /// The registry refused access.
    #[error("registry {host} denied access to {what} ({status}){}", fmt_detail(.detail))]
    Denied {
        /// Registry host.
        host: String,
        /// What was asked for.
        what: String,
        /// HTTP status.
        status: u16,
        /// Error code and message from the body.
        detail: String,
    },
    /// Any other unexpected status.
    #[error("registry {host} answered {status} for {what}{}", fmt_detail(.detail))]
    Status {
        /// Registry host.
        host: String,
        /// What was asked for.
        what: String,
        /// HTTP status.
        status: u16,
        /// Error code and message from the body.
        detail: String,
    },
    /// Content larger than we read.
    #[error("{what} from {host} is larger than the {limit}-byte limit")]
    TooLarge {
        /// Registry host.
        host: String,
        /// What was fetched.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// Content does not match its digest or declared size.
    #[error("{what} from {host} does not match its descriptor: {reason}")]
    DigestMismatch {
        /// Registry host.
        host: String,
        /// What was fetched.
        what: String,
        /// Expected vs. actual.
        reason: String,
    },
    /// Content that is not what the protocol says it must be.
    #[error("{what} from {host} is malformed: {reason}")]
    Malformed {
        /// Registry host.
        host: String,
        /// What was fetched.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry refuses to serve the image because it is quarantined (Azure Container
    /// Registry: `IMAGE_QUARANTINED`).
    #[error("{what} is quarantined in {host}: the registry refuses to serve it until it passes its scan")]
    Quarantined {
        /// Registry host.
        host: String,
        /// What was asked for.
        what: String,
    },
    /// Credentials or the token flow failed.
    #[error("authentication with registry {host} failed: {reason}")]
    Auth {
        /// Registry host.
        host: String,
        /// What failed.
        reason: String,
    },
}

fn fmt_detail(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(": {d}")
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Hosts (`host[:port]`) reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Credentials.
    pub credentials: CredentialSource,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Where to count requests and errors.
    pub metrics: Option<Arc<Metrics>>,
    /// Requests in flight to one registry host at most (a burst never opens thousands of
    /// connections).
    pub per_host_concurrency: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            credentials: CredentialSource::default(),
            request_timeout: Duration::from_secs(10),
            metrics: None,
            per_host_concurrency: 32,
        }
    }
}

/// What one registry host is allowed: a number of requests at once, and none while it has asked
/// us (429 with Retry-After) to wait.
struct HostLimit {
    permits: tokio::sync::Semaphore,
    resume_at: std::sync::Mutex<Option<std::time::Instant>>,
}

impl HostLimit {
    fn new(concurrency: usize) -> Self {
        Self {
            permits: tokio::sync::Semaphore::new(concurrency),
            resume_at: std::sync::Mutex::new(None),
        }
    }

    /// A permit to send, once any pause the host asked for is over.
    async fn acquire(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        loop {
            let resume_at = *self.resume_at.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = resume_at.filter(|t| *t > std::time::Instant::now()) {
                tokio::time::sleep_until(t.into()).await;
                continue;
            }
            let permit = self.permits.acquire().await.ok();
            // A pause may have begun while this request queued for a permit.
            let paused = self
                .resume_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some_and(|t| t > std::time::Instant::now());
            if !paused {
                return permit;
            }
        }
    }

    /// Send nothing to the host for `wait` (extends, never shortens, a pause in force).
    fn pause_for(&self, wait: Duration) {
        let until = std::time::Instant::now() + wait;
        let mut resume_at = self.resume_at.lock().unwrap_or_else(|e| e.into_inner());
        if resume_at.is_none_or(|t| t < until) {
            *resume_at = Some(until);
        }
    }
}

/// The registry client. Cheap to clone; clones share connections and tokens.
#[derive(Clone)]
pub struct RegistryClient {
    /// For plain-HTTP registries: no TLS roots loaded.
    plain: reqwest::Client,
    /// For HTTPS: built on first use, because loading the system's CA certificates costs tens
    /// of milliseconds that a `vouch verify` against a plain-HTTP registry should not pay.
    tls: Arc<std::sync::OnceLock<reqwest::Client>>,
    request_timeout: Duration,
    insecure: HashSet<String>,
    credentials: CredentialSource,
    tokens: TokenCache,
    metrics: Option<Arc<Metrics>>,
    per_host: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<HostLimit>>>>,
    per_host_concurrency: usize,
}

impl RegistryClient {
    /// Build a client.
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        let plain = Self::builder(options.request_timeout)
            .tls_certs_only(Vec::<reqwest::Certificate>::new())
            .build()
            .map_err(|e| RegistryError::Unreachable {
                host: "(client)".into(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            plain,
            tls: Default::default(),
            request_timeout: options.request_timeout,
            insecure: options.insecure_registries.into_iter().collect(),
            credentials: options.credentials,
            tokens: TokenCache::default(),
            metrics: options.metrics,
            per_host: Default::default(),
            per_host_concurrency: options.per_host_concurrency.max(1),
        })
    }

    fn builder(timeout: Duration) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::limited(5))
    }

    /// The HTTP client for a URL: the TLS one (built once, on first use) for `https://`.
    fn http(&self, url: &str) -> &reqwest::Client {
        if url.starts_with("http://") {
            return &self.plain;
        }
        self.tls.get_or_init(|| {
            Self::builder(self.request_timeout)
                .build()
                .unwrap_or_else(|e| {
                    // Only a broken system TLS setup gets here; every HTTPS call then fails with
                    // a connection error naming the host instead of crashing.
                    tracing::error!(error = %e, "cannot build the HTTPS client");
                    self.plain.clone()
                })
        })
    }

    fn base(&self, image: &ImageReference) -> String {
        format!(
            "{}://{}/v2/{}",
            self.scheme(image),
            image.registry_endpoint(),
            image.repository()
        )
    }

    fn scheme(&self, image: &ImageReference) -> &'static str {
        let host = image.registry_endpoint();
        if self.insecure.contains(host) || self.insecure.contains(image.registry()) {
            "http"
        } else {
            "https"
        }
    }

    /// Send a request, answering an authentication challenge once.
    async fn send(
        &self,
        image: &ImageReference,
        method: Method,
        url: &str,
        accept: &str,
    ) -> Result<Response, RegistryError> {
        self.send_with(image, method, url, accept, None, None).await
    }

    async fn send_with_type(
        &self,
        image: &ImageReference,
        method: Method,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
        scope: Option<String>,
    ) -> Result<Response, RegistryError> {
        self.send_inner(image, method, url, "*/*", Some((content_type, body)), scope)
            .await
    }

    async fn send_with(
        &self,
        image: &ImageReference,
        method: Method,
        url: &str,
        accept: &str,
        body: Option<Vec<u8>>,
        scope: Option<String>,
    ) -> Result<Response, RegistryError> {
        let typed = body.map(|b| ("application/json", b));
        self.send_inner(image, method, url, accept, typed, scope)
            .await
    }

    /// One request with an optional body; a 401 challenge is answered once, for the scope the
    /// registry names (or `scope`, else pull).
    async fn send_inner(
        &self,
        image: &ImageReference,
        method: Method,
        url: &str,
        accept: &str,
        body: Option<(&str, Vec<u8>)>,
        scope: Option<String>,
    ) -> Result<Response, RegistryError> {
        let host = image.registry_endpoint();
        let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", image.repository()));
        let build = |auth: Option<String>| -> RequestBuilder {
            let mut rb = self
                .http(url)
                .request(method.clone(), url)
                .header(ACCEPT, accept);
            if let Some((ct, b)) = &body {
                rb = rb.header("content-type", *ct).body(b.clone());
            }
            if let Some(a) = auth {
                rb = rb.header("authorization", a);
            }
            rb
        };
        let cached = self
            .tokens
            .get(host, &scope)
            .await
            .map(|t| format!("Bearer {t}"));
        let resp = self.execute(host, build(cached.clone())).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let Some(challenge) = challenge else {
            return Ok(resp);
        };
        let credential = self.credentials.lookup(image.registry()).await?;
        let auth = match challenge {
            Challenge::Basic => match &credential {
                Credential::Basic { username, password } => {
                    use base64::Engine;
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD
                            .encode(format!("{username}:{password}"))
                    )
                }
                _ => return Ok(resp),
            },
            Challenge::Bearer(b) => {
                let wanted = b.scope.clone().unwrap_or(scope);
                let credential = match (&credential, &self.credentials.azure) {
                    (Credential::Anonymous, Some(azure))
                        if self.tokens.get(host, &wanted).await.is_none() =>
                    {
                        let service = b.service.clone().unwrap_or_else(|| host.to_string());
                        let refresh = azure
                            .acr_refresh_token(self.http(&b.realm), host, &b.realm, &service)
                            .await?;
                        Credential::IdentityToken(refresh)
                    }
                    _ => credential,
                };
                let token = match self.tokens.get(host, &wanted).await {
                    Some(t) => t,
                    None => {
                        self.tokens
                            .fetch(self.http(&b.realm), host, &b, &wanted, &credential)
                            .await?
                    }
                };
                format!("Bearer {token}")
            }
        };
        self.execute(host, build(Some(auth))).await
    }

    /// Send one request: at most `per_host_concurrency` at once per registry host, and a 429
    /// (or 503 with Retry-After) is retried after the time the registry asks for, a few times.
    /// That wait applies to every request to the host, not only the refused one: the registry
    /// said it is overloaded, so nothing more is sent to it until then. Callers bound the whole
    /// exchange by their deadline, so no retry outlives it.
    async fn execute(&self, host: &str, rb: RequestBuilder) -> Result<Response, RegistryError> {
        let label = || RegistryHost {
            registry: host.to_string(),
        };
        let limit = {
            let mut hosts = self.per_host.lock().unwrap_or_else(|e| e.into_inner());
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(HostLimit::new(self.per_host_concurrency)))
                .clone()
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let this_try = rb.try_clone().ok_or_else(|| RegistryError::Unreachable {
                host: host.to_string(),
                reason: "request body cannot be replayed".into(),
            })?;
            let permit = limit.acquire().await;
            if let Some(m) = &self.metrics {
                m.registry_requests.get_or_create(&label()).inc();
            }
            let resp = this_try.send().await.map_err(|e| {
                if let Some(m) = &self.metrics {
                    m.registry_errors.get_or_create(&label()).inc();
                }
                RegistryError::Unreachable {
                    host: host.to_string(),
                    reason: error_chain(&e),
                }
            })?;
            drop(permit);
            let throttled = resp.status() == StatusCode::TOO_MANY_REQUESTS
                || (resp.status() == StatusCode::SERVICE_UNAVAILABLE
                    && resp.headers().contains_key(RETRY_AFTER));
            if !throttled || attempt >= MAX_THROTTLE_RETRIES {
                return Ok(resp);
            }
            if let Some(m) = &self.metrics {
                m.registry_throttled.get_or_create(&label()).inc();
            }
            let wait = retry_after(resp.headers())
                .unwrap_or(Duration::from_millis(200 * u64::from(attempt)))
                .min(MAX_RETRY_AFTER);
            limit.pause_for(wait);
        }
    }

    /// Resolve a reference to the manifest descriptor (media type, digest, size) the registry
    /// serves: HEAD, then GET when HEAD is refused or lacks the headers.
    pub async fn resolve_digest(
        &self,
        image: &ImageReference,
    ) -> Result<Descriptor, RegistryError> {
        let host = image.registry_endpoint();
        let reference = image.manifest_reference();
        let what = format!("manifest {}:{}", image.repository(), reference);
        let url = format!("{}/manifests/{reference}", self.base(image));
        let resp = self
            .send(image, Method::HEAD, &url, MANIFEST_ACCEPT)
            .await?;
        let status = resp.status();
        if status.is_success() {
            let h = resp.headers();
            let digest = header(h, "docker-content-digest");
            let media_type = header(h, "content-type").map(|m| base_media_type(&m));
            let size = header(h, "content-length").and_then(|s| s.parse::<u64>().ok());
            if let (Some(digest), Some(media_type), Some(size)) = (digest, media_type, size) {
                if is_manifest_type(&media_type) && size > 0 && size <= MAX_MANIFEST_BYTES {
                    if let Some(want) = image.digest() {
                        if want != digest {
                            return Err(RegistryError::DigestMismatch {
                                host: host.into(),
                                what,
                                reason: format!("user input digest {want} does not match the resolved digest {digest}"),
                            });
                        }
                    }
                    return Ok(Descriptor {
                        media_type,
                        digest,
                        size,
                        artifact_type: None,
                        annotations: None,
                    });
                }
            }
        } else if status != StatusCode::METHOD_NOT_ALLOWED
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::FORBIDDEN
        {
            // (A 403 to HEAD carries no body; the GET below reads the reason, e.g. ACR's
            // IMAGE_QUARANTINED.)
            return Err(status_error(host, &what, resp).await);
        }
        // GET: read the manifest itself and compute what HEAD did not tell us.
        let resp = self.send(image, Method::GET, &url, MANIFEST_ACCEPT).await?;
        if !resp.status().is_success() {
            return Err(status_error(host, &what, resp).await);
        }
        let header_digest = header(resp.headers(), "docker-content-digest");
        let header_type = header(resp.headers(), "content-type").map(|m| base_media_type(&m));
        let body = read_limited(resp, MAX_MANIFEST_BYTES, &what, host).await?;
        let digest = match image.digest().or(header_digest.as_deref()) {
            Some(d) => {
                verify_digest(d, &body).map_err(|reason| RegistryError::DigestMismatch {
                    host: host.into(),
                    what: what.clone(),
                    reason,
                })?;
                d.to_string()
            }
            None => format!("sha256:{}", sha256_hex(&body)),
        };
        let declared: Manifest =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                host: host.into(),
                what: what.clone(),
                reason: e.to_string(),
            })?;
        let media_type = declared
            .media_type
            .or(header_type)
            .filter(|m| is_manifest_type(m))
            .ok_or_else(|| RegistryError::Malformed {
                host: host.into(),
                what: what.clone(),
                reason: "no manifest media type".into(),
            })?;
        Ok(Descriptor {
            media_type,
            digest,
            size: body.len() as u64,
            artifact_type: None,
            annotations: None,
        })
    }

    /// The referrers of `subject` with `artifact_type`, at most `limit` of them (plus one, so a
    /// caller can tell that the limit was exceeded).
    pub async fn referrers(
        &self,
        image: &ImageReference,
        subject: &Descriptor,
        artifact_type: &str,
        limit: usize,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let host = image.registry_endpoint();
        let what = format!("referrers of {}@{}", image.repository(), subject.digest);
        let encoded: String =
            url::form_urlencoded::byte_serialize(artifact_type.as_bytes()).collect();
        let mut next = Some(format!(
            "{}/referrers/{}?artifactType={encoded}",
            self.base(image),
            subject.digest
        ));
        let mut out = Vec::new();
        let mut seen_urls = HashSet::new();
        let mut first = true;
        while let Some(url) = next.take() {
            if !seen_urls.insert(url.clone()) || seen_urls.len() > MAX_REFERRERS_PAGES {
                break;
            }
            let resp = self.send(image, Method::GET, &url, OCI_INDEX).await?;
            let status = resp.status();
            let content_type = header(resp.headers(), "content-type").map(|m| base_media_type(&m));
            if first {
                first = false;
                let unsupported = match status {
                    StatusCode::NOT_FOUND => {
                        let body = read_limited(resp, 64 * 1024, &what, host)
                            .await
                            .unwrap_or_default();
                        if error_codes(&body).iter().any(|c| c == "NAME_UNKNOWN") {
                            return Err(RegistryError::NotFound {
                                host: host.into(),
                                what: format!("repository {}", image.repository()),
                            });
                        }
                        return self
                            .referrers_by_tag(image, subject, artifact_type, limit)
                            .await;
                    }
                    s if s.is_success() => content_type.as_deref() != Some(OCI_INDEX),
                    _ => return Err(status_error(host, &what, resp).await),
                };
                if unsupported {
                    return self
                        .referrers_by_tag(image, subject, artifact_type, limit)
                        .await;
                }
            } else if !status.is_success() {
                return Err(status_error(host, &what, resp).await);
            }
            let filtered = header(resp.headers(), "oci-filters-applied")
                .is_some_and(|v| v.split(',').any(|f| f.trim() == "artifactType"));
            let link = header(resp.headers(), "link");
            let body = read_limited(resp, MAX_MANIFEST_BYTES, &what, host).await?;
            let index: Index =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                    host: host.into(),
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
            out.extend(
                index
                    .manifests
                    .into_iter()
                    .filter(|d| filtered || d.artifact_type.as_deref() == Some(artifact_type)),
            );
            if out.len() > limit {
                out.truncate(limit + 1);
                break;
            }
            next = link
                .and_then(|l| next_link(&l))
                .and_then(|n| url::Url::parse(&url).ok()?.join(&n).ok())
                .map(|u| u.to_string());
        }
        Ok(out)
    }

    /// The referrers tag schema: the index tagged `<alg>-<hex>`; a missing tag is "none".
    async fn referrers_by_tag(
        &self,
        image: &ImageReference,
        subject: &Descriptor,
        artifact_type: &str,
        limit: usize,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let host = image.registry_endpoint();
        let tag = subject.digest.replacen(':', "-", 1);
        let what = format!("referrers tag {}:{tag}", image.repository());
        let url = format!("{}/manifests/{tag}", self.base(image));
        let resp = self.send(image, Method::GET, &url, MANIFEST_ACCEPT).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !resp.status().is_success() {
            return Err(status_error(host, &what, resp).await);
        }
        let header_digest = header(resp.headers(), "docker-content-digest");
        let body = read_limited(resp, MAX_MANIFEST_BYTES, &what, host).await?;
        if let Some(d) = header_digest {
            verify_digest(&d, &body).map_err(|reason| RegistryError::DigestMismatch {
                host: host.into(),
                what: what.clone(),
                reason,
            })?;
        }
        let index: Index = serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
            host: host.into(),
            what,
            reason: e.to_string(),
        })?;
        Ok(index
            .manifests
            .into_iter()
            .filter(|d| d.artifact_type.as_deref() == Some(artifact_type))
            .take(limit + 1)
            .collect())
    }

    /// Fetch a manifest by descriptor: size-limited, size- and digest-checked.
    pub async fn fetch_manifest(
        &self,
        image: &ImageReference,
        desc: &Descriptor,
    ) -> Result<Vec<u8>, RegistryError> {
        let url = format!("{}/manifests/{}", self.base(image), desc.digest);
        let accept = format!("{}, {MANIFEST_ACCEPT}", desc.media_type);
        self.fetch_checked(image, &url, &accept, desc, MAX_MANIFEST_BYTES, "manifest")
            .await
    }

    /// Fetch a blob by descriptor: size-limited, size- and digest-checked.
    pub async fn fetch_blob(
        &self,
        image: &ImageReference,
        desc: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let url = format!("{}/blobs/{}", self.base(image), desc.digest);
        self.fetch_checked(image, &url, "*/*", desc, limit, "blob")
            .await
    }

    async fn fetch_checked(
        &self,
        image: &ImageReference,
        url: &str,
        accept: &str,
        desc: &Descriptor,
        limit: u64,
        kind: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        let host = image.registry_endpoint();
        let what = format!("{kind} {}", desc.digest);
        if desc.size > limit {
            return Err(RegistryError::TooLarge {
                host: host.into(),
                what,
                limit,
            });
        }
        let resp = self.send(image, Method::GET, url, accept).await?;
        if !resp.status().is_success() {
            return Err(status_error(host, &what, resp).await);
        }
        let body = read_limited(resp, desc.size, &what, host).await?;
        if body.len() as u64 != desc.size {
            return Err(RegistryError::DigestMismatch {
                host: host.into(),
                what,
                reason: format!("expected {} bytes, got {}", desc.size, body.len()),
            });
        }
        verify_digest(&desc.digest, &body).map_err(|reason| RegistryError::DigestMismatch {
            host: host.into(),
            what,
            reason,
        })?;
        Ok(body)
    }
}

impl RegistryClient {
    /// `GET` (or another method with a JSON body) of a registry API path outside `/v2/`, such
    /// as ACR's `/acr/v1/...` metadata API, with the same authentication handling and a size
    /// limit. Returns the status and body.
    pub async fn api(
        &self,
        image: &ImageReference,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        scope: Option<String>,
        limit: u64,
    ) -> Result<(StatusCode, Vec<u8>), RegistryError> {
        let host = image.registry_endpoint();
        let url = format!("{}://{host}{path}", self.scheme(image));
        let resp = self
            .send_with(image, method, &url, "application/json", body, scope)
            .await?;
        let status = resp.status();
        let bytes = read_limited(resp, limit, path, host).await?;
        Ok((status, bytes))
    }

    /// Upload a blob (monolithic POST then PUT) unless the registry already has it.
    pub async fn push_blob(
        &self,
        image: &ImageReference,
        bytes: &[u8],
    ) -> Result<Descriptor, RegistryError> {
        let host = image.registry_endpoint();
        let digest = format!("sha256:{}", sha256_hex(bytes));
        let what = format!("blob {digest}");
        let base = self.base(image);
        let scope = Some(format!("repository:{}:pull,push", image.repository()));
        let head = self
            .send_with(
                image,
                Method::HEAD,
                &format!("{base}/blobs/{digest}"),
                "*/*",
                None,
                scope.clone(),
            )
            .await?;
        if !head.status().is_success() {
            let start = self
                .send_with(
                    image,
                    Method::POST,
                    &format!("{base}/blobs/uploads/"),
                    "*/*",
                    Some(Vec::new()),
                    scope.clone(),
                )
                .await?;
            if start.status() != StatusCode::ACCEPTED {
                return Err(status_error(host, &what, start).await);
            }
            let location =
                header(start.headers(), "location").ok_or_else(|| RegistryError::Malformed {
                    host: host.into(),
                    what: what.clone(),
                    reason: "upload has no Location".into(),
                })?;
            let upload = url::Url::parse(&base)
                .and_then(|b| b.join(&location))
                .map_err(|e| RegistryError::Malformed {
                    host: host.into(),
                    what: what.clone(),
                    reason: format!("bad upload Location: {e}"),
                })?;
            let sep = if upload.query().is_some() { '&' } else { '?' };
            let put = self
                .send_with(
                    image,
                    Method::PUT,
                    &format!("{upload}{sep}digest={digest}"),
                    "*/*",
                    Some(bytes.to_vec()),
                    scope,
                )
                .await?;
            if put.status() != StatusCode::CREATED {
                return Err(status_error(host, &what, put).await);
            }
        }
        Ok(Descriptor {
            media_type: "application/octet-stream".into(),
            digest,
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        })
    }

    /// Put a manifest under its digest (and a tag, if given).
    pub async fn push_manifest(
        &self,
        image: &ImageReference,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Descriptor, RegistryError> {
        let host = image.registry_endpoint();
        let digest = format!("sha256:{}", sha256_hex(bytes));
        let scope = Some(format!("repository:{}:pull,push", image.repository()));
        for reference in std::iter::once(digest.as_str()).chain(tag) {
            let url = format!("{}/manifests/{reference}", self.base(image));
            let resp = self
                .send_with_type(
                    image,
                    Method::PUT,
                    &url,
                    media_type,
                    bytes.to_vec(),
                    scope.clone(),
                )
                .await?;
            if resp.status() != StatusCode::CREATED {
                return Err(status_error(host, &format!("manifest {reference}"), resp).await);
            }
        }
        Ok(Descriptor {
            media_type: media_type.into(),
            digest,
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        })
    }
}

impl RegistryClient {
    /// Make a pushed referrer discoverable on a registry without the referrers API by adding it
    /// to the `<alg>-<hex>` tag index (the distribution spec's tag schema, as notation 1.x does).
    /// On a registry with the API this does nothing: the registry indexes `subject` itself.
    pub async fn index_referrer(
        &self,
        image: &ImageReference,
        subject: &Descriptor,
        referrer: &Descriptor,
    ) -> Result<(), RegistryError> {
        let host = image.registry_endpoint();
        let probe = format!("{}/referrers/{}", self.base(image), subject.digest);
        let resp = self.send(image, Method::GET, &probe, OCI_INDEX).await?;
        let api = resp.status().is_success()
            && header(resp.headers(), "content-type")
                .map(|c| base_media_type(&c))
                .as_deref()
                == Some(OCI_INDEX);
        if api {
            return Ok(());
        }
        let tag = subject.digest.replacen(':', "-", 1);
        let url = format!("{}/manifests/{tag}", self.base(image));
        let resp = self.send(image, Method::GET, &url, MANIFEST_ACCEPT).await?;
        let mut manifests: Vec<serde_json::Value> = if resp.status() == StatusCode::NOT_FOUND {
            Vec::new()
        } else if resp.status().is_success() {
            let body = read_limited(resp, MAX_MANIFEST_BYTES, &tag, host).await?;
            let v: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                    host: host.into(),
                    what: format!("referrers tag {tag}"),
                    reason: e.to_string(),
                })?;
            v["manifests"].as_array().cloned().unwrap_or_default()
        } else {
            return Err(status_error(host, &tag, resp).await);
        };
        if manifests
            .iter()
            .any(|m| m["digest"] == referrer.digest.as_str())
        {
            return Ok(());
        }
        manifests.push(serde_json::to_value(referrer).unwrap_or_default());
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        }))
        .unwrap_or_default();
        self.push_manifest(image, OCI_INDEX, &index, Some(&tag))
            .await?;
        Ok(())
    }
}

/// Read a response body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(
    resp: Response,
    limit: u64,
    what: &str,
    host: &str,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = || RegistryError::TooLarge {
        host: host.into(),
        what: what.into(),
        limit,
    };
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RegistryError::Unreachable {
            host: host.into(),
            reason: format!("reading {what}: {}", error_chain(&e)),
        })?;
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

async fn status_error(host: &str, what: &str, resp: Response) -> RegistryError {
    let status = resp.status();
    let body = read_limited(resp, 64 * 1024, what, host)
        .await
        .unwrap_or_default();
    let detail = error_detail(&body);
    if error_codes(&body).iter().any(|c| c == "IMAGE_QUARANTINED") {
        return RegistryError::Quarantined {
            host: host.into(),
            what: what.into(),
        };
    }
    match status {
        StatusCode::NOT_FOUND => RegistryError::NotFound {
            host: host.into(),
            what: what.into(),
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Denied {
            host: host.into(),
            what: what.into(),
            status: status.as_u16(),
            detail,
        },
        _ => RegistryError::Status {
            host: host.into(),
            what: what.into(),
            status: status.as_u16(),
            detail,
        },
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The `code`s of a distribution error body.
pub(crate) fn error_codes(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.errors.into_iter().map(|e| e.code).collect())
        .unwrap_or_default()
}

/// The code and message of a distribution error body (else the body's start), as one escaped,
/// bounded line: the registry's text must not draw on the terminal or log it is shown in.
fn error_detail(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) if !b.errors.is_empty() => {
            let joined = b
                .errors
                .iter()
                .take(8)
                .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
                .collect::<Vec<_>>()
                .join("; ");
            crate::escape::excerpt(joined.as_bytes(), 1024)
        }
        _ => crate::escape::excerpt(body, 200),
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim().to_string();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when =
        time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc2822).ok()?;
    let delta = when - time::OffsetDateTime::now_utc();
    Some(Duration::from_secs_f64(delta.as_seconds_f64().max(0.0)))
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn base_media_type(m: &str) -> String {
    m.split(';').next().unwrap_or("").trim().to_string()
}

fn is_manifest_type(m: &str) -> bool {
    matches!(
        m,
        OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_LIST | OCI_ARTIFACT_MANIFEST
    )
}

/// The `rel="next"` target of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

/// Check `bytes` against an OCI digest (`sha256:` or `sha512:`).
pub fn verify_digest(digest: &str, bytes: &[u8]) -> Result<(), String> {
    let (alg, hex_value) = digest
        .split_once(':')
        .ok_or_else(|| format!("digest {digest:?} is malformed"))?;
    let actual = match alg {
        "sha256" => sha256_hex(bytes),
        "sha512" => hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, bytes)),
        other => return Err(format!("digest algorithm {other:?} is not supported")),
    };
    if actual == hex_value {
        Ok(())
    } else {
        Err(format!(
            "expected digest {digest}, content hashes to {alg}:{actual}"
        ))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_host_that_asked_for_a_pause_gets_no_request_until_it_ends() {
        let limit = HostLimit::new(2);
        let started = std::time::Instant::now();
        drop(limit.acquire().await);
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "no pause: at once"
        );

        limit.pause_for(Duration::from_millis(300));
        // A shorter pause asked later does not shorten the one in force.
        limit.pause_for(Duration::from_millis(10));
        let started = std::time::Instant::now();
        let (a, b) = tokio::join!(limit.acquire(), limit.acquire());
        assert!(a.is_some() && b.is_some());
        assert!(
            started.elapsed() >= Duration::from_millis(290),
            "both waited out the pause: {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/a/referrers/sha256:x?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/referrers/sha256:x?n=2&last=b")
        );
        assert_eq!(next_link(r#"<https://x/y>; rel="prev""#), None);
    }

    #[test]
    fn digests() {
        assert!(verify_digest(
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            b"{}"
        )
        .is_ok());
        assert!(verify_digest("sha256:00", b"{}").is_err());
        assert!(verify_digest("md5:00", b"{}").is_err());
    }
}
