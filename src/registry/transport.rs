//! Sending one request to a registry: the origin rule, the authentication challenge, per-host
//! limits and throttling, and size-limited reading of the answer.
//!
//! The rules that keep credentials where they belong live here, in the one function every
//! request goes through ([`RegistryClient::send_inner`]):
//! - the URL must be on the image registry's origin ([`Origin`]); anything else is refused
//!   before it is sent, so a hostile pagination `Link` or upload `Location` gets nothing;
//! - the HTTP client is chosen by the registry's scheme (from `--insecure-registry`), never by
//!   the URL a registry wrote;
//! - redirects are followed by reqwest, which drops `Authorization` on leaving the origin; an
//!   HTTPS-to-HTTP redirect is refused, and a 401 from another origin is never answered;
//! - a Bearer token realm must be HTTPS when the registry is; tokens are cached per origin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use super::auth::{parse_challenge, Challenge, Chosen, Credential};
use super::error::error_chain;
use super::origin::Origin;
use super::{RegistryClient, RegistryError};
use crate::reference::ImageReference;

/// Attempts of one request the registry throttles.
const MAX_THROTTLE_RETRIES: u32 = 6;
/// Longest Retry-After honoured at once.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 5;
/// Most registry hosts whose limits are remembered. Image strings come from whoever creates
/// pods; hosts beyond this that are not busy are forgotten first.
pub(crate) const MAX_TRACKED_HOSTS: usize = 1024;

/// The reqwest client settings shared by the plain-HTTP and the HTTPS client.
pub(crate) fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("vouch/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let downgrade = attempt.url().scheme() != "https"
                && attempt.previous().iter().any(|u| u.scheme() == "https");
            if downgrade {
                let to = attempt.url().to_string();
                attempt.error(format!(
                    "refused a redirect from HTTPS to plain HTTP ({to})"
                ))
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else {
                attempt.follow()
            }
        }))
}

/// What one registry host is allowed: a number of requests at once, and none while it has asked
/// us (429 with Retry-After) to wait.
pub(crate) struct HostLimit {
    permits: tokio::sync::Semaphore,
    resume_at: Mutex<Option<Instant>>,
}

impl HostLimit {
    pub(crate) fn new(concurrency: usize) -> Self {
        Self {
            permits: tokio::sync::Semaphore::new(concurrency),
            resume_at: Mutex::new(None),
        }
    }

    fn paused(&self) -> bool {
        self.resume_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t > Instant::now())
    }

    /// A permit to send, once any pause the host asked for is over.
    pub(crate) async fn acquire(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        loop {
            let resume_at = *self.resume_at.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = resume_at.filter(|t| *t > Instant::now()) {
                tokio::time::sleep_until(t.into()).await;
                continue;
            }
            let permit = self.permits.acquire().await.ok();
            // A pause may have begun while this request queued for a permit.
            if !self.paused() {
                return permit;
            }
        }
    }

    /// Send nothing to the host for `wait` (extends, never shortens, a pause in force).
    pub(crate) fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut resume_at = self.resume_at.lock().unwrap_or_else(|e| e.into_inner());
        if resume_at.is_none_or(|t| t < until) {
            *resume_at = Some(until);
        }
    }
}

/// The [`HostLimit`] of every registry host, at most [`MAX_TRACKED_HOSTS`] of them.
pub(crate) struct HostLimits {
    hosts: Mutex<HashMap<String, Arc<HostLimit>>>,
    concurrency: usize,
}

impl HostLimits {
    pub(crate) fn new(concurrency: usize) -> Self {
        Self {
            hosts: Mutex::default(),
            concurrency: concurrency.max(1),
        }
    }

    /// The limit of `host`. When the table is full, hosts with no request in flight and no
    /// pause in force are forgotten; if all are busy, `host` gets a limit of its own that is
    /// not remembered (it still bounds this request's retries).
    pub(crate) fn of(&self, host: &str) -> Arc<HostLimit> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = hosts.get(host) {
            return l.clone();
        }
        if hosts.len() >= MAX_TRACKED_HOSTS {
            hosts.retain(|_, l| Arc::strong_count(l) > 1 || l.paused());
        }
        let limit = Arc::new(HostLimit::new(self.concurrency));
        if hosts.len() < MAX_TRACKED_HOSTS {
            hosts.insert(host.to_string(), limit.clone());
        }
        limit
    }

    /// Hosts remembered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.hosts.lock().map(|h| h.len()).unwrap_or(0)
    }
}

impl RegistryClient {
    /// The origin an image's registry is reached at: its endpoint over HTTPS, or plain HTTP
    /// when it is an insecure registry.
    pub(crate) fn origin(&self, image: &ImageReference) -> Result<Origin, RegistryError> {
        let host = image.registry_endpoint();
        let scheme = if self.insecure.contains(host) || self.insecure.contains(image.registry()) {
            "http"
        } else {
            "https"
        };
        Origin::new(scheme, host)
    }

    /// The HTTP client for a scheme: the TLS one (built once, on first use) for `https`.
    pub(crate) fn http(&self, scheme: &str) -> &reqwest::Client {
        if scheme == "http" {
            return &self.plain;
        }
        self.tls.get_or_init(|| {
            client_builder(self.request_timeout)
                .build()
                .unwrap_or_else(|e| {
                    // Only a broken system TLS setup gets here; every HTTPS call then fails with
                    // a connection error naming the host instead of crashing.
                    tracing::error!(error = %e, "cannot build the HTTPS client");
                    self.plain.clone()
                })
        })
    }

    /// The credential requests for `image` are made with: the pod's (see
    /// [`super::auth::PullCredentials`]) when this client carries a pod's, else vouch's own.
    pub(crate) fn chosen(&self, image: &ImageReference) -> Chosen {
        match &self.pull {
            Some(pull) => pull.choose(image.registry(), image.repository()),
            None => Chosen::Own,
        }
    }

    /// Send a request, answering an authentication challenge once.
    pub(crate) async fn send(
        &self,
        image: &ImageReference,
        method: Method,
        url: &str,
        accept: &str,
    ) -> Result<Response, RegistryError> {
        self.send_inner(image, method, url, accept, None, None)
            .await
    }

    /// Send a request with a JSON body (or none) and a token scope of the caller's.
    pub(crate) async fn send_with(
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

    /// Send a request with a body of the given content type.
    pub(crate) async fn send_with_type(
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

    /// One request with an optional body, to a URL on the image registry's origin; a 401
    /// challenge from that origin is answered once, for the scope the registry names (or
    /// `scope`, else pull).
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
        let origin = self.origin(image)?;
        let target = origin.check(url)?;
        let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", image.repository()));
        let http = self.http(target.scheme());
        let build = |auth: Option<String>| -> RequestBuilder {
            let mut rb = http
                .request(method.clone(), target.clone())
                .header(ACCEPT, accept);
            if let Some((ct, b)) = &body {
                rb = rb.header("content-type", *ct).body(b.clone());
            }
            if let Some(a) = auth {
                rb = rb.header("authorization", a);
            }
            rb
        };
        let token_key = origin.base();
        let chosen = self.chosen(image);
        let identity = chosen.identity();
        let cached = self
            .tokens
            .get(token_key, &scope, &identity)
            .await
            .map(|t| format!("Bearer {t}"));
        let resp = self.execute(host, build(cached.clone())).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        // A redirect may have taken the request elsewhere; only the registry itself is answered
        // with its credentials.
        if let Some(reason) = origin.leaves(resp.url()) {
            return Err(RegistryError::LeavesRegistry {
                host: host.into(),
                url: crate::escape::excerpt(resp.url().as_str().as_bytes(), 200),
                reason: format!("{reason}, which asked for credentials after a redirect"),
            });
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let Some(challenge) = challenge else {
            return Ok(resp);
        };
        let credential = match &chosen {
            Chosen::Own => self.credentials.lookup(image.registry()).await?,
            Chosen::Given(c) => c.clone(),
        };
        // vouch's Azure identity is its own credential: never used for a pod's request that
        // may not fall back to vouch's own.
        let azure = match chosen {
            Chosen::Own => self.credentials.azure_for(image.registry()),
            Chosen::Given(_) => None,
        };
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
                let realm = token_realm(&origin, host, &b.realm)?;
                let wanted = b.scope.clone().unwrap_or(scope);
                let credential = match (&credential, azure) {
                    (Credential::Anonymous, Some(azure))
                        if self
                            .tokens
                            .get(token_key, &wanted, &identity)
                            .await
                            .is_none() =>
                    {
                        let service = b.service.clone().unwrap_or_else(|| host.to_string());
                        // The exchange is always the registry's own endpoint, never the realm's
                        // host: the Entra ID token is good for every registry of the tenant.
                        let exchange = format!("{}/oauth2/exchange", origin.base());
                        let refresh = azure
                            .acr_refresh_token(
                                self.http(target.scheme()),
                                host,
                                &exchange,
                                &service,
                            )
                            .await?;
                        Credential::IdentityToken(refresh)
                    }
                    _ => credential,
                };
                let token = match self.tokens.get(token_key, &wanted, &identity).await {
                    Some(t) => t,
                    None => {
                        self.tokens
                            .fetch(
                                self.http(realm.scheme()),
                                token_key,
                                &identity,
                                host,
                                realm,
                                &b,
                                &wanted,
                                &credential,
                            )
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
        let label = self.metrics.as_ref().map(|m| (m, m.registry_host(host)));
        let limit = self.per_host.of(host);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let this_try = rb.try_clone().ok_or_else(|| RegistryError::Unreachable {
                host: host.to_string(),
                reason: "request body cannot be replayed".into(),
            })?;
            let permit = limit.acquire().await;
            if let Some((m, l)) = &label {
                m.registry_requests.get_or_create(l).inc();
            }
            let resp = this_try.send().await.map_err(|e| {
                if let Some((m, l)) = &label {
                    m.registry_errors.get_or_create(l).inc();
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
            if let Some((m, l)) = &label {
                m.registry_throttled.get_or_create(l).inc();
            }
            let wait = retry_after(resp.headers())
                .unwrap_or(Duration::from_millis(200 * u64::from(attempt)))
                .min(MAX_RETRY_AFTER);
            limit.pause_for(wait);
        }
    }
}

/// The token endpoint a Bearer challenge names, if credentials may go there: HTTP(S) without
/// user information, and HTTPS whenever the registry is HTTPS. (The realm may be another host —
/// Docker Hub's is — as every registry client allows.)
fn token_realm(origin: &Origin, host: &str, realm: &str) -> Result<Url, RegistryError> {
    let refuse = |reason: String| RegistryError::Auth {
        host: host.to_string(),
        reason,
    };
    let url = Url::parse(realm)
        .map_err(|e| refuse(format!("token realm {realm:?} is not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if origin.is_plain_http() => {}
        "http" => {
            return Err(refuse(format!(
                "token realm {realm:?} is plain HTTP for a registry reached over HTTPS: refused (the token request would carry credentials in clear text)"
            )))
        }
        _ => return Err(refuse(format!("token realm {realm:?} is not HTTP(S)"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(format!(
            "token realm {realm:?} carries user information: refused"
        )));
    }
    Ok(url)
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

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim().to_string();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let when =
        time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc2822).ok()?;
    let delta = when - time::OffsetDateTime::now_utc();
    Some(Duration::from_secs_f64(
        delta.as_seconds_f64().clamp(0.0, 3600.0),
    ))
}

/// A header's value, when it is text.
pub(crate) fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_host_that_asked_for_a_pause_gets_no_request_until_it_ends() {
        let limit = HostLimit::new(2);
        let started = Instant::now();
        drop(limit.acquire().await);
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "no pause: at once"
        );

        limit.pause_for(Duration::from_millis(300));
        // A shorter pause asked later does not shorten the one in force.
        limit.pause_for(Duration::from_millis(10));
        let started = Instant::now();
        let (a, b) = tokio::join!(limit.acquire(), limit.acquire());
        assert!(a.is_some() && b.is_some());
        assert!(
            started.elapsed() >= Duration::from_millis(290),
            "both waited out the pause: {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn host_limits_are_bounded_and_keep_the_busy_hosts() {
        let limits = HostLimits::new(4);
        let busy = limits.of("busy.example");
        for i in 0..MAX_TRACKED_HOSTS * 3 {
            let _ = limits.of(&format!("h{i}.example"));
        }
        assert!(limits.len() <= MAX_TRACKED_HOSTS, "{}", limits.len());
        // A host with a request in flight keeps its limit (its permits are shared).
        assert!(Arc::ptr_eq(&busy, &limits.of("busy.example")));
    }

    #[test]
    fn token_realms_may_not_downgrade_or_carry_user_information() {
        let https = Origin::new("https", "registry.example").unwrap();
        let http = Origin::new("http", "localhost:5000").unwrap();
        assert!(token_realm(&https, "r", "https://auth.example/token").is_ok());
        assert!(token_realm(&https, "r", "http://auth.example/token").is_err());
        assert!(token_realm(&https, "r", "ftp://auth.example/token").is_err());
        assert!(token_realm(&https, "r", "https://u:p@auth.example/token").is_err());
        assert!(token_realm(&http, "r", "http://localhost:5000/token").is_ok());
    }
}
