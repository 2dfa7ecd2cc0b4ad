//! The revocation checker: asks OCSP responders and CRL distribution points about a chain,
//! inside the admission deadline, and remembers their answers until they expire.
//!
//! notation-core-go `revocation.ValidateContext` is the model: every certificate but the root
//! is checked concurrently; per certificate OCSP first, CRL when OCSP gives no answer and the
//! certificate names distribution points. The decisions themselves are [`super::ocsp`]'s and
//! [`super::crl`]'s; this module owns what they leave out:
//!
//! - **Bounded waits.** A fetch ends at its own timeout (OCSP 2 s, CRL 5 s, as notation) or at
//!   the caller's deadline, whichever comes first; a fetch that did not finish is "unknown",
//!   never "OK". Bodies are size-limited (OCSP 20 KiB, CRLs 32 MiB). Requests are limited per
//!   host, and only plain `http` is fetched, as the specification says.
//! - **Caches that know when the data expires.** A CRL (with its delta) is kept by URL until
//!   its `nextUpdate`; an OCSP answer by (responder, certificate) until its `nextUpdate`. One
//!   fetch per URL at a time: concurrent admissions needing the same CRL share it. A cached CRL
//!   is validated again on every use, as notation does, against the issuer and the time.
//! - **Shared with the notation CLI.** With a disk cache directory (`vouch verify` uses notation's
//!   own), a CRL bundle missing from memory is looked up there before it is fetched, and every
//!   download is stored there, in notation's layout ([`super::disk_cache`]). A cache file that
//!   cannot be read or written never fails a check: it is logged, counted, and treated as a miss.
//! - **Air-gapped clusters.** A directory of DER CRLs (e.g. a ConfigMap a CronJob refreshes) is
//!   used for a distribution point that cannot be fetched: the CRL issued by the certificate's
//!   issuer is taken from there, held to the same signature and `nextUpdate` rules.
//!
//! Every answer that counted carries its `nextUpdate` ([`CertResult::valid_until`]), so no
//! verdict built on it is cached past that time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use moka::future::Cache;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::crl::{self, Crl};
use super::disk_cache::DiskCache;
use super::ocsp;
use super::{CertResult, Decision, Method, ServerResult, Status};
use crate::metrics::Metrics;
use crate::notation::x509::Certificate;
use crate::registry::HostLimits;

/// Most bytes of OCSP answers kept (a few kilobytes each).
const OCSP_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Longest wait for one disk cache read or write: a stalled disk must not eat the time a
/// download needs.
const DISK_BUDGET: Duration = Duration::from_secs(1);

/// Requests in flight to one revocation host at most.
const PER_HOST_CONCURRENCY: usize = 8;

/// Revocation settings (the `revocation:` section of the config file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RevocationSettings {
    /// Longest wait for one OCSP responder.
    #[serde(with = "humantime_serde")]
    pub ocsp_timeout: Duration,
    /// Longest wait for one CRL download (the base and each delta URL get their own).
    #[serde(with = "humantime_serde")]
    pub crl_timeout: Duration,
    /// Most bytes of CRLs kept in memory.
    pub crl_cache_bytes: u64,
    /// A directory of DER CRLs used when a distribution point cannot be fetched.
    pub offline_crls: Option<PathBuf>,
    /// A CRL cache directory in notation's layout (e.g. `~/.cache/notation/crl`), consulted
    /// after memory and before the network, and written after every download. `None`: memory
    /// only.
    pub crl_cache_dir: Option<PathBuf>,
    /// Whether OCSP responders and CRL distribution points are asked at all. Off, only the
    /// offline CRLs count (air-gapped clusters; a certificate with only OCSP is then unknown).
    pub fetch: bool,
}

impl Default for RevocationSettings {
    fn default() -> Self {
        Self {
            ocsp_timeout: ocsp::DEFAULT_TIMEOUT,
            crl_timeout: Duration::from_secs(5),
            crl_cache_bytes: 256 * 1024 * 1024,
            offline_crls: None,
            crl_cache_dir: None,
            fetch: true,
        }
    }
}

/// A base CRL and its delta, as fetched from one distribution point.
struct Fetched {
    base: Arc<Crl>,
    delta: Option<Arc<Crl>>,
}

impl Fetched {
    /// The earliest `nextUpdate` of the two; `None` when a CRL has none (such a CRL fails
    /// validation, and is not cached).
    fn next_update(&self) -> Option<OffsetDateTime> {
        let base = self.base.next_update()?;
        match &self.delta {
            Some(d) => d.next_update().map(|n| n.min(base)),
            None => Some(base),
        }
    }
}

/// An OCSP responder's answer about one certificate, by (responder URL, certificate DER
/// SHA-256).
type OcspKey = (String, String);

/// A valid, current OCSP response as received. It is decided again on every use (with that
/// use's time and signing time), so one cached answer serves every signature of the certificate.
struct OcspAnswer {
    body: Vec<u8>,
    next_update: Option<OffsetDateTime>,
}

/// An offline CRL as read from its file: reread when the file changes.
struct OfflineCrl {
    modified: Option<std::time::SystemTime>,
    len: u64,
    crl: Arc<Crl>,
}

/// The revocation checker. Cheap to clone; clones share caches and connections.
#[derive(Clone)]
pub struct Checker {
    http: reqwest::Client,
    settings: RevocationSettings,
    crls: Cache<String, Arc<Fetched>>,
    ocsp: Cache<OcspKey, Arc<OcspAnswer>>,
    offline: Arc<std::sync::Mutex<std::collections::HashMap<PathBuf, OfflineCrl>>>,
    disk: Option<Arc<DiskCache>>,
    per_host: Arc<HostLimits>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Entries expire at the `nextUpdate` they carry.
struct UntilNextUpdate;

impl moka::Expiry<String, Arc<Fetched>> for UntilNextUpdate {
    fn expire_after_create(
        &self,
        _: &String,
        v: &Arc<Fetched>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(until(v.next_update()))
    }
}

impl moka::Expiry<OcspKey, Arc<OcspAnswer>> for UntilNextUpdate {
    fn expire_after_create(
        &self,
        _: &OcspKey,
        v: &Arc<OcspAnswer>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(until(v.next_update))
    }
}

/// Time from now to `next_update` (nothing when it is past or absent).
fn until(next_update: Option<OffsetDateTime>) -> Duration {
    next_update
        .map(|n| n - OffsetDateTime::now_utc())
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(Duration::ZERO)
}

impl Checker {
    /// A checker with its own plain-HTTP client (no TLS: revocation endpoints are `http`).
    pub fn new(settings: RevocationSettings, metrics: Option<Arc<Metrics>>) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")))
            .tls_certs_only(Vec::<reqwest::Certificate>::new())
            .redirect(reqwest::redirect::Policy::limited(3))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| {
                // Only a broken system setup gets here; fetches then fail as unknown (never OK).
                tracing::error!(error = %e, "cannot build the revocation HTTP client");
                reqwest::Client::new()
            });
        let crls = Cache::builder()
            .max_capacity(settings.crl_cache_bytes.max(1))
            .weigher(|_: &String, v: &Arc<Fetched>| {
                // The DER and the index of its entries (about as large again).
                let crl = |c: &Crl| c.der().len() + 32 * c.revoked_count();
                let bytes = crl(&v.base) + v.delta.as_deref().map_or(0, crl);
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .expire_after(UntilNextUpdate)
            .build();
        let ocsp = Cache::builder()
            .max_capacity(OCSP_CACHE_BYTES)
            .weigher(|_: &OcspKey, v: &Arc<OcspAnswer>| {
                u32::try_from(v.body.len() + 128).unwrap_or(u32::MAX)
            })
            .expire_after(UntilNextUpdate)
            .build();
        let disk = settings
            .crl_cache_dir
            .as_ref()
            .map(|d| Arc::new(DiskCache::new(d)));
        Self {
            http,
            settings,
            crls,
            ocsp,
            offline: Arc::default(),
            disk,
            per_host: Arc::new(HostLimits::new(PER_HOST_CONCURRENCY)),
            metrics,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &RevocationSettings {
        &self.settings
    }

    /// The revocation status of every certificate of `chain` (leaf first, complete to its
    /// root), at `now`, finishing by `deadline`. `signing_time` is the authentic signing time
    /// under `notary.x509.signingAuthority` (a revocation whose invalidity date is after it
    /// does not count), `None` otherwise. The root is never checked.
    pub async fn check_chain(
        &self,
        chain: &[Certificate],
        signing_time: Option<OffsetDateTime>,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Vec<CertResult> {
        let checks = chain
            .windows(2)
            .map(|pair| self.check_certificate(&pair[0], &pair[1], signing_time, now, deadline));
        let mut results = join_all(checks).await;
        if let Some(root) = chain.last() {
            results.push(non_revocable(root));
        }
        results
    }

    /// One certificate: OCSP, falling back to CRL when OCSP has no answer; non-revocable when
    /// it names neither.
    async fn check_certificate(
        &self,
        cert: &Certificate,
        issuer: &Certificate,
        signing_time: Option<OffsetDateTime>,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> CertResult {
        let mut result = non_revocable(cert);
        if !cert.ocsp_urls().is_empty() {
            let (decision, servers) = self
                .by_ocsp(cert, issuer, signing_time, now, deadline)
                .await;
            result.servers = servers;
            result.method = Some(Method::Ocsp);
            result.status = decision.status;
            result.valid_until = decision.next_update;
            if decision.status != Status::Unknown || cert.crl_urls().is_empty() {
                self.count(result.status);
                return result;
            }
            result.method = Some(Method::OcspFallbackCrl);
        } else if !cert.crl_urls().is_empty() {
            result.method = Some(Method::Crl);
        } else {
            return result;
        }
        let (decision, servers) = self.by_crl(cert, issuer, signing_time, now, deadline).await;
        result.servers.extend(servers);
        result.status = decision.status;
        result.valid_until = decision.next_update;
        self.count(result.status);
        result
    }

    fn count(&self, status: Status) {
        if let Some(m) = &self.metrics {
            Metrics::inc(
                &m.revocation_results,
                match status {
                    Status::Ok => "ok",
                    Status::NonRevokable => "non_revocable",
                    Status::Revoked => "revoked",
                    Status::Unknown => "unknown",
                },
            );
        }
    }

    /// notation's OCSP loop: responders in order; the first valid answer decides; when none
    /// gives one, every responder's result is reported and the status is unknown.
    async fn by_ocsp(
        &self,
        cert: &Certificate,
        issuer: &Certificate,
        signing_time: Option<OffsetDateTime>,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> (Decision, Vec<ServerResult>) {
        let mut servers = Vec::new();
        let mut last = Decision::unknown("no OCSP responder could be asked");
        for url in cert.ocsp_urls() {
            let decision = self
                .ocsp_answer(url, cert, issuer, signing_time, now, deadline)
                .await;
            let result = ServerResult {
                method: Method::Ocsp,
                url: url.clone(),
                status: decision.status,
                error: decision.error.clone(),
            };
            if ocsp::decides(&decision) {
                return (decision, vec![result]);
            }
            servers.push(result);
            last = decision;
        }
        (last, servers)
    }

    /// One responder's answer about `cert`: a valid, current response is kept until its
    /// `nextUpdate` and asked for once however many admissions need it at the same time.
    async fn ocsp_answer(
        &self,
        url: &str,
        cert: &Certificate,
        issuer: &Certificate,
        signing_time: Option<OffsetDateTime>,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Decision {
        if let Err(e) = ocsp::check_server(url) {
            return Decision::unknown(e);
        }
        let key = (url.to_string(), cert.sha256());
        if let Some(hit) = self.ocsp.get(&key).await {
            // Only as good as its nextUpdate, checked (again) against this use's time.
            if hit.next_update.is_some_and(|n| now <= n) {
                self.cache_hit("ocsp");
                return ocsp::check_response(&hit.body, cert, issuer, now, signing_time);
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let shared = tokio::time::timeout_at(
                deadline,
                self.ocsp.try_get_with(key.clone(), async {
                    let body = self.ocsp_fetch(url, cert, issuer, deadline).await?;
                    // Whether it is worth keeping does not depend on the signing time.
                    let decision = ocsp::check_response(&body, cert, issuer, now, None);
                    if decision.next_update.is_some() && ocsp::decides(&decision) {
                        Ok(Arc::new(OcspAnswer {
                            body,
                            next_update: decision.next_update,
                        }))
                    } else {
                        Err(OcspFailure::Uncached(body))
                    }
                }),
            )
            .await;
            let failure = match shared {
                // Waiting for another admission's fetch past this one's deadline.
                Err(_) => {
                    return Decision::unknown(ocsp::timeout_error(self.settings.ocsp_timeout))
                }
                Ok(Ok(answer)) => {
                    return ocsp::check_response(&answer.body, cert, issuer, now, signing_time)
                }
                Ok(Err(e)) => e,
            };
            return match &*failure {
                OcspFailure::Uncached(body) => {
                    ocsp::check_response(body, cert, issuer, now, signing_time)
                }
                // Another admission's shorter deadline cut the fetch: try again on this one's.
                OcspFailure::TimedOut(_)
                    if attempt < 3 && Instant::now() + Duration::from_millis(100) < deadline =>
                {
                    continue
                }
                OcspFailure::TimedOut(reason) | OcspFailure::Failed(reason) => {
                    Decision::unknown(reason.clone())
                }
            };
        }
    }

    /// The responder's answer body for `cert`, or notation's message for why there is none.
    async fn ocsp_fetch(
        &self,
        url: &str,
        cert: &Certificate,
        issuer: &Certificate,
        deadline: Instant,
    ) -> Result<Vec<u8>, OcspFailure> {
        let request = ocsp::request(cert, issuer).map_err(OcspFailure::Failed)?;
        let timeout = self.settings.ocsp_timeout;
        let max = ocsp::MAX_RESPONSE_SIZE;
        let fetched = match ocsp::request_url(url, &request) {
            Some(get) => self.fetch(&get, None, max, timeout, deadline, "ocsp").await,
            None => {
                let body = Some((ocsp::CONTENT_TYPE_REQUEST, request));
                self.fetch(url, body, max, timeout, deadline, "ocsp").await
            }
        };
        fetched.map_err(|e| match e {
            FetchError::Timeout => OcspFailure::TimedOut(ocsp::timeout_error(timeout)),
            FetchError::Status(code) => OcspFailure::Failed(ocsp::status_code_error(code)),
            // notation reads at most 20 KiB and parses that: a longer body fails to parse.
            FetchError::TooLarge => OcspFailure::Failed(ocsp::transport_error(&format_args!(
                "OCSP response is larger than {max} bytes"
            ))),
            FetchError::Transport(e) => OcspFailure::Failed(ocsp::transport_error(&e)),
        })
    }

    /// notation's CRL loop: distribution points in order; a revoked or unknown decision ends
    /// it with that point's result; OK from every point is OK.
    async fn by_crl(
        &self,
        cert: &Certificate,
        issuer: &Certificate,
        signing_time: Option<OffsetDateTime>,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> (Decision, Vec<ServerResult>) {
        let mut servers = Vec::new();
        let mut next_update: Option<OffsetDateTime> = None;
        for url in cert.crl_urls() {
            let fetched = self.crl_bundle(url, issuer, now, deadline).await;
            let decision = crl::decide_url(
                url,
                cert,
                issuer,
                fetched
                    .as_ref()
                    .map(|f| (&*f.base, f.delta.as_deref()))
                    .map_err(|e| e.as_str()),
                now,
                signing_time,
            );
            servers.push(crl::server_result(url, &decision));
            if decision.status != Status::Ok {
                return (decision, servers);
            }
            next_update = match (next_update, decision.next_update) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        (
            Decision {
                status: Status::Ok,
                error: None,
                next_update,
            },
            servers,
        )
    }

    /// The CRL bundle of `url`: from the memory cache while its `nextUpdate` holds, else from
    /// the disk cache while its `nextUpdate` holds, else fetched (and stored on disk), once
    /// however many ask at the same time, else (the base CRL could not be had) from the offline
    /// directory. Nobody waits past their own deadline for a fetch another admission leads, and
    /// a fetch that timed out on a shorter deadline than the caller's is tried again. The error
    /// is the text notation puts after `failed to retrieve CRL: `.
    async fn crl_bundle(
        &self,
        url: &str,
        issuer: &Certificate,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Result<Arc<Fetched>, String> {
        if let Some(e) = crl::url_error(url) {
            return Err(e);
        }
        if let Some(hit) = self.crls.get(url).await {
            self.cache_hit("crl");
            return Ok(hit);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let shared = tokio::time::timeout_at(
                deadline,
                self.crls.try_get_with(url.to_string(), async {
                    if let Some(hit) = self.disk_get(url, issuer, now, deadline).await {
                        return Ok(Arc::new(hit));
                    }
                    let bundle = self.download_bundle(url, deadline).await?;
                    // Only a bundle that validates goes to disk (notation stores before it
                    // validates): a bad CRL planted on the wire or in the directory must not
                    // stick there until its nextUpdate, for vouch and notation alike.
                    let valid =
                        crl::validate_bundle(&bundle.base, bundle.delta.as_deref(), issuer, now);
                    if valid.is_ok() {
                        self.disk_set(url, &bundle, deadline).await;
                    }
                    if bundle.next_update().is_none() {
                        // Not cacheable (and it fails validation): handed over, not kept.
                        return Err(Uncached(Arc::new(bundle)));
                    }
                    Ok(Arc::new(bundle))
                }),
            )
            .await;
            let failure = match shared {
                Err(_) => return Err(self.crl_timeout_error(url)),
                Ok(Ok(bundle)) => return Ok(bundle),
                Ok(Err(e)) => e,
            };
            match &*failure {
                FetchFailure::Uncached(bundle) => return Ok(bundle.clone()),
                FetchFailure::TimedOut(_)
                    if attempt < 3 && Instant::now() + Duration::from_millis(100) < deadline =>
                {
                    continue
                }
                FetchFailure::TimedOut(reason) | FetchFailure::Failed(reason) => {
                    return match self.offline_bundle(url, issuer, now).await {
                        Some(bundle) => Ok(bundle),
                        None => Err(reason.clone()),
                    }
                }
                // The base came, its delta did not: never checked without it.
                FetchFailure::DeltaFailed(reason) => return Err(reason.clone()),
            }
        }
    }

    /// The disk cache's bundle for `url`, when there is a cache and it holds an effective one
    /// that validates against `issuer` (one that does not is a miss, and is replaced by the
    /// download); read on a blocking thread, given up after [`DISK_BUDGET`] so a stalled disk
    /// leaves the download its time. Errors are logged, counted and a miss.
    async fn disk_get(
        &self,
        url: &str,
        issuer: &Certificate,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> Option<Fetched> {
        let disk = self.disk.clone()?;
        let key = url.to_string();
        let read = tokio::task::spawn_blocking(move || disk.get(&key, now));
        match tokio::time::timeout_at(deadline.min(Instant::now() + DISK_BUDGET), read).await {
            Ok(Ok(Ok(Some((base, delta)))))
                if crl::validate_bundle(&base, delta.as_ref(), issuer, now).is_err() =>
            {
                tracing::warn!(
                    url,
                    "a CRL in the disk cache does not validate: fetched again"
                );
                None
            }
            Ok(Ok(Ok(Some((base, delta))))) => {
                self.cache_hit("crl_disk");
                tracing::debug!(url, "CRL bundle taken from the disk cache");
                Some(Fetched {
                    base: Arc::new(base),
                    delta: delta.map(Arc::new),
                })
            }
            Ok(Ok(Ok(None))) => None,
            Ok(Ok(Err(e))) => {
                self.disk_error("read", url, &e);
                None
            }
            // The reading thread panicked or the deadline came first: fetch instead.
            Ok(Err(_)) | Err(_) => None,
        }
    }

    /// Store a downloaded bundle in the disk cache, when there is one; written on a blocking
    /// thread and waited for (a `vouch verify` process may exit right after), until `deadline`.
    async fn disk_set(&self, url: &str, bundle: &Fetched, deadline: Instant) {
        let Some(disk) = self.disk.clone() else {
            return;
        };
        let (key, base, delta) = (url.to_string(), bundle.base.clone(), bundle.delta.clone());
        let write = tokio::task::spawn_blocking(move || {
            disk.set(&key, base.der(), delta.as_deref().map(Crl::der))
        });
        let until = deadline.min(Instant::now() + DISK_BUDGET);
        if let Ok(Ok(Err(e))) = tokio::time::timeout_at(until, write).await {
            self.disk_error("write", url, &e);
        }
    }

    fn disk_error(&self, kind: &'static str, url: &str, e: &super::disk_cache::DiskCacheError) {
        tracing::warn!(url, error = %e, "CRL disk cache error (ignored)");
        if let Some(m) = &self.metrics {
            Metrics::inc(&m.revocation_cache_errors, kind);
        }
    }

    fn crl_timeout_error(&self, url: &str) -> String {
        format!(
            "request failed: Get {url:?}: timeout of {:.2} seconds exceeded",
            self.settings.crl_timeout.as_secs_f64()
        )
    }

    /// Fetch and parse a base CRL and, when it names one, its delta.
    async fn download_bundle(&self, url: &str, deadline: Instant) -> Result<Fetched, FetchFailure> {
        let base = Arc::new(self.download_crl(url, deadline).await?);
        let delta_urls = crl::delta_urls(&base).map_err(FetchFailure::DeltaFailed)?;
        let mut delta = None;
        let mut last_error = None;
        for delta_url in &delta_urls {
            match self.download_crl(delta_url, deadline).await {
                Ok(d) => {
                    delta = Some(Arc::new(d));
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        if let (None, Some(e)) = (&delta, last_error) {
            return Err(match e {
                FetchFailure::Failed(r) | FetchFailure::TimedOut(r) => FetchFailure::DeltaFailed(r),
                other => other,
            });
        }
        Ok(Fetched { base, delta })
    }

    async fn download_crl(&self, url: &str, deadline: Instant) -> Result<Crl, FetchFailure> {
        if let Some(e) = crl::url_error(url) {
            return Err(FetchFailure::Failed(e));
        }
        let timeout = self.settings.crl_timeout;
        let body = self
            // notation refuses a CRL of exactly 32 MiB.
            .fetch(url, None, crl::MAX_CRL_SIZE - 1, timeout, deadline, "crl")
            .await
            .map_err(|e| match e {
                FetchError::Timeout => FetchFailure::TimedOut(self.crl_timeout_error(url)),
                FetchError::Status(code) => FetchFailure::Failed(crl::status_error(code)),
                FetchError::TooLarge => FetchFailure::Failed(crl::size_error()),
                FetchError::Transport(e) => FetchFailure::Failed(format!("request failed: {e}")),
            })?;
        crl::parse(body).map_err(|e| FetchFailure::Failed(e.to_string()))
    }

    /// The CRL bundle for `url` from the offline directory, if one is configured and holds a
    /// usable one (see [`offline_bundle`]); read on a blocking thread.
    async fn offline_bundle(
        &self,
        url: &str,
        issuer: &Certificate,
        now: OffsetDateTime,
    ) -> Option<Arc<Fetched>> {
        let dir = self.settings.offline_crls.clone()?;
        let (parsed, url, issuer) = (self.offline.clone(), url.to_string(), issuer.clone());
        let found =
            tokio::task::spawn_blocking(move || offline_bundle(&dir, &parsed, &url, &issuer, now))
                .await
                .ok()??;
        self.cache_hit("offline_crl");
        Some(Arc::new(found))
    }

    fn cache_hit(&self, kind: &'static str) {
        if let Some(m) = &self.metrics {
            Metrics::inc(&m.revocation_cache_hits, kind);
        }
    }

    /// GET (or POST `body`) `url` over plain HTTP, at most `max` bytes, ending at `timeout` or
    /// `deadline`, whichever is first.
    async fn fetch(
        &self,
        url: &str,
        body: Option<(&'static str, Vec<u8>)>,
        max: usize,
        timeout: Duration,
        deadline: Instant,
        kind: &'static str,
    ) -> Result<Vec<u8>, FetchError> {
        if !self.settings.fetch {
            return Err(FetchError::Transport(
                "fetching revocation data is turned off (revocation.fetch: false)".into(),
            ));
        }
        let started = Instant::now();
        let end = deadline.min(started + timeout);
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let limit = self.per_host.of(&host);
        let request = match body {
            Some((content_type, bytes)) => self
                .http
                .post(url)
                .header("content-type", content_type)
                .body(bytes),
            None => self.http.get(url),
        };
        let result = tokio::time::timeout_at(end, async {
            let _permit = limit.acquire().await;
            let resp = request
                .send()
                .await
                .map_err(|e| FetchError::Transport(crate::registry::error_chain(&e)))?;
            if resp.status() != reqwest::StatusCode::OK {
                return Err(FetchError::Status(resp.status().as_u16()));
            }
            let host = resp.url().host_str().unwrap_or_default().to_string();
            crate::registry::read_limited(resp, max as u64, url, &host)
                .await
                .map_err(|e| match e {
                    crate::registry::RegistryError::TooLarge { .. } => FetchError::TooLarge,
                    other => FetchError::Transport(other.to_string()),
                })
        })
        .await
        .unwrap_or(Err(FetchError::Timeout));
        if let Some(m) = &self.metrics {
            let outcome = match &result {
                Ok(_) => "ok",
                Err(FetchError::Timeout) => "timeout",
                Err(_) => "error",
            };
            m.revocation_fetches
                .get_or_create(&crate::metrics::Fetch { kind, outcome })
                .inc();
            m.revocation_fetch_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        result
    }
}

/// The offline CRL files, parsed, by path: reparsed when a file changes.
type OfflineIndex = std::sync::Mutex<std::collections::HashMap<PathBuf, OfflineCrl>>;

/// The bundle for the distribution point `url` from the offline directory `dir`:
/// - the base is the file named for the point (its URL's last path segment, e.g. `leaf.crl`, or
///   `hex(sha256(url))`, notation's cache name), else the complete CRL of `issuer` with the
///   highest CRL number that validates at `now` (delta CRLs and partitions — CRLs with an
///   Issuing Distribution Point — never stand in for another point's CRL);
/// - when the base names delta CRLs, the delta is found the same way, and without one there is
///   no bundle (a base alone would miss the delta's revocations).
fn offline_bundle(
    dir: &Path,
    index: &OfflineIndex,
    url: &str,
    issuer: &Certificate,
    now: OffsetDateTime,
) -> Option<Fetched> {
    let files = offline_crls(dir, index);
    let named = |url: &str| {
        let last = url.rsplit('/').next().unwrap_or_default().to_string();
        let hashed = crate::registry::sha256_hex(url.as_bytes());
        files
            .iter()
            .find(|(name, c)| {
                (*name == last || *name == hashed) && c.issuer_der() == issuer.subject_der()
            })
            .map(|(_, c)| c.clone())
    };
    let best = |delta: bool| {
        files
            .iter()
            .map(|(_, c)| c)
            .filter(|c| c.issuer_der() == issuer.subject_der())
            .filter(|c| c.is_delta() == delta && !c.is_partitioned())
            .filter(|c| crl::validate(c, issuer, now, delta).is_ok())
            .max_by(|a, b| a.number().cmp(&b.number()))
            .cloned()
    };
    let base = named(url).or_else(|| best(false))?;
    let delta_urls = crl::delta_urls(&base).ok()?;
    let delta = if delta_urls.is_empty() {
        None
    } else {
        Some(
            delta_urls
                .iter()
                .find_map(|u| named(u))
                .or_else(|| best(true))?,
        )
    };
    Some(Fetched { base, delta })
}

/// The DER CRLs of `dir` (file name, CRL), at most [`MAX_OFFLINE_CRLS`], each parsed once per
/// version of its file. ConfigMap volumes keep their versions in `..`-prefixed entries, which
/// are skipped (their current files are reached through the links beside them).
fn offline_crls(dir: &Path, index: &OfflineIndex) -> Vec<(String, Arc<Crl>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .take(MAX_OFFLINE_CRLS)
        .collect();
    paths.sort();
    let mut parsed = index.lock().unwrap_or_else(|e| e.into_inner());
    parsed.retain(|p, _| paths.contains(p));
    let mut out = Vec::new();
    for path in paths {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let (modified, len) = (meta.modified().ok(), meta.len());
        let fresh = parsed
            .get(&path)
            .is_some_and(|o| o.modified == modified && o.len == len);
        if !fresh {
            // Below the limit, as notation refuses a CRL of exactly 32 MiB.
            let read = crate::files::read(&path, crl::MAX_CRL_SIZE as u64 - 1)
                .ok()
                .and_then(|der| crl::parse(der).ok());
            match read {
                Some(crl) => {
                    parsed.insert(
                        path.clone(),
                        OfflineCrl {
                            modified,
                            len,
                            crl: Arc::new(crl),
                        },
                    );
                }
                None => {
                    parsed.remove(&path);
                    continue;
                }
            }
        }
        if let (Some(o), Some(name)) = (parsed.get(&path), path.file_name()) {
            out.push((name.to_string_lossy().into_owned(), o.crl.clone()));
        }
    }
    out
}

/// Most files read from the offline CRL directory.
const MAX_OFFLINE_CRLS: usize = 256;

/// Why a fetch did not give a body.
#[derive(Debug)]
enum FetchError {
    /// Its timeout or the deadline came first.
    Timeout,
    /// An HTTP status other than 200.
    Status(u16),
    /// Larger than allowed.
    TooLarge,
    /// Connection, protocol or read failure.
    Transport(String),
}

/// An OCSP fetch that is not kept in the cache: failed (with notation's message), or an answer
/// that is not a valid, current one (decided again by the caller).
#[derive(Debug)]
enum OcspFailure {
    /// No answer, with notation's message.
    Failed(String),
    /// The fetch ran out of time (its own timeout or its leader's deadline).
    TimedOut(String),
    /// An answer that is not a valid, current one: decided again by the caller, not cached.
    Uncached(Vec<u8>),
}

/// A CRL download that is not kept in the cache: failed (with notation's reason), or has no
/// `nextUpdate` (its validation will say so).
#[derive(Debug)]
enum FetchFailure {
    /// The base CRL could not be had (the offline directory may stand in).
    Failed(String),
    /// The fetch ran out of time (its own timeout or its leader's deadline).
    TimedOut(String),
    /// The base CRL came, its delta did not: the bundle is unusable.
    DeltaFailed(String),
    /// Fetched but without `nextUpdate`: not cached.
    Uncached(Arc<Fetched>),
}
use FetchFailure::Uncached;

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("delta", &self.delta.is_some())
            .finish_non_exhaustive()
    }
}

fn non_revocable(cert: &Certificate) -> CertResult {
    CertResult {
        subject: cert.subject().to_string(),
        status: Status::NonRevokable,
        method: None,
        servers: Vec::new(),
        valid_until: None,
    }
}
