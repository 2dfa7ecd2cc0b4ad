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

//!
//! The module is split by job: [`transport`] sends one request (origin rule, authentication,
//! per-host limits, throttling), [`origin`] is the rule that credentials stay on their registry,
//! [`error`] reads a registry's error answers, `push` writes (quarantine status artifacts).

pub mod auth;
pub mod digest;
mod error;
mod origin;
mod push;
mod transport;

pub use digest::Digest;
pub use error::RegistryError;
pub(crate) use error::{error_chain, error_codes};
pub(crate) use transport::{read_limited, HostLimits};

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::reference::ImageReference;
use auth::{CredentialSource, PullCredentials, TokenCache};
use error::status_error;
use transport::{client_builder, header};

/// Largest manifest or index read (oras-go's `defaultMaxMetadataBytes`).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest signature envelope read.
pub const MAX_ENVELOPE_BYTES: u64 = 1024 * 1024;
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
    /// Content digest: checked when read from the network (see [`digest::checked`]), since it
    /// becomes part of request URLs and verdicts.
    #[serde(deserialize_with = "digest::checked")]
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

/// The registry client. Cheap to clone; clones share connections and tokens.
#[derive(Clone)]
pub struct RegistryClient {
    /// For plain-HTTP registries: no TLS roots loaded.
    plain: reqwest::Client,
    /// For HTTPS: built on first use, because loading the system's CA certificates costs tens
    /// of milliseconds that a `vouch verify` against a plain-HTTP registry should not pay.
    tls: Arc<std::sync::OnceLock<reqwest::Client>>,
    request_timeout: Duration,
    /// Plain-HTTP registries, canonical `host[:port]`.
    insecure: HashSet<String>,
    credentials: CredentialSource,
    /// A pod's pull credentials, on a client made for one admission
    /// ([`Self::with_pull_credentials`]); `None`: vouch's own only.
    pull: Option<Arc<PullCredentials>>,
    tokens: TokenCache,
    metrics: Option<Arc<Metrics>>,
    per_host: Arc<HostLimits>,
}

impl RegistryClient {
    /// Build a client.
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        let plain = client_builder(options.request_timeout)
            .tls_certs_only(Vec::<reqwest::Certificate>::new())
            .build()
            .map_err(|e| RegistryError::Unreachable {
                host: "(client)".into(),
                reason: e.to_string(),
            })?;
        // Spelled as the user wrote it and canonically, so `LOCALHOST:05000` names the registry
        // every image spelling of it resolves to.
        let insecure = options
            .insecure_registries
            .into_iter()
            .flat_map(|h| {
                let canonical = crate::reference::canonical_host(&h).ok();
                std::iter::once(h).chain(canonical)
            })
            .collect();
        Ok(Self {
            plain,
            tls: Default::default(),
            request_timeout: options.request_timeout,
            insecure,
            credentials: options.credentials,
            pull: None,
            tokens: TokenCache::default(),
            metrics: options.metrics,
            per_host: Arc::new(HostLimits::new(options.per_host_concurrency)),
        })
    }

    /// This client reading with a pod's pull credentials (and vouch's own as the fallback the
    /// credentials allow): shares connections, limits and the token cache, whose entries are
    /// kept apart by credential identity.
    pub fn with_pull_credentials(&self, pull: PullCredentials) -> Self {
        Self {
            pull: Some(Arc::new(pull)),
            ..self.clone()
        }
    }

    /// Who this client's requests for `image` are made as: `own` (vouch's credentials) or
    /// `pod:<digest of the credential>`; never the secret itself.
    pub fn credential_identity(&self, image: &ImageReference) -> String {
        self.chosen(image).identity()
    }

    /// `scheme://endpoint/v2/repository`: the base of every distribution API URL of an image.
    fn base(&self, image: &ImageReference) -> Result<String, RegistryError> {
        Ok(format!(
            "{}/v2/{}",
            self.origin(image)?.base(),
            image.repository()
        ))
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
        let url = format!("{}/manifests/{reference}", self.base(image)?);
        let resp = self
            .send(image, Method::HEAD, &url, MANIFEST_ACCEPT)
            .await?;
        let status = resp.status();
        if status.is_success() {
            let h = resp.headers();
            let digest = header(h, "docker-content-digest")
                .map(|d| checked_header_digest(host, &what, d))
                .transpose()?;
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
        let header_digest = header(resp.headers(), "docker-content-digest")
            .map(|d| checked_header_digest(host, &what, d))
            .transpose()?;
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
            self.base(image)?,
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
        let url = format!("{}/manifests/{tag}", self.base(image)?);
        let resp = self.send(image, Method::GET, &url, MANIFEST_ACCEPT).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !resp.status().is_success() {
            return Err(status_error(host, &what, resp).await);
        }
        let header_digest = header(resp.headers(), "docker-content-digest")
            .map(|d| checked_header_digest(host, &what, d))
            .transpose()?;
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
        let url = format!("{}/manifests/{}", self.base(image)?, desc.digest);
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
        let url = format!("{}/blobs/{}", self.base(image)?, desc.digest);
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

/// A `Docker-Content-Digest` header, refused unless it is a digest vouch can check (it becomes
/// a URL path and the digest reported).
fn checked_header_digest(host: &str, what: &str, value: String) -> Result<String, RegistryError> {
    digest::check(&value).map_err(|e| RegistryError::Malformed {
        host: host.into(),
        what: what.into(),
        reason: format!("its Docker-Content-Digest header {e}"),
    })?;
    Ok(value)
}

pub(crate) fn base_media_type(m: &str) -> String {
    m.split(';').next().unwrap_or("").trim().to_string()
}

pub(crate) fn is_manifest_type(m: &str) -> bool {
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

/// Check `bytes` against an OCI digest (`sha256:`, `sha384:` or `sha512:`).
pub fn verify_digest(digest: &str, bytes: &[u8]) -> Result<(), String> {
    digest::check(digest).map_err(|e| e.to_string())?;
    let (alg, hex_value) = digest
        .split_once(':')
        .ok_or_else(|| format!("digest {digest:?} is malformed"))?;
    let actual = match alg {
        "sha256" => sha256_hex(bytes),
        "sha384" => hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, bytes)),
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

#[cfg(test)]
mod tests {
    use super::*;

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
