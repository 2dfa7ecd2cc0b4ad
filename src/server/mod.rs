//! `vouch serve`: the validating admission webhook over TLS.
//!
//! Connections are accepted, TLS-terminated and bounded by [`conn`] (connection cap, handshake,
//! header-read and idle timeouts, HTTP/2 limits). Requests go to a thin axum router whose layers
//! stamp the arrival time, limit the body (413 past 3 MiB), trace, and keep a timeout backstop.
//!
//! `/validate` works against one deadline counted from the request's arrival, so time spent
//! waiting is never given again:
//!
//! 1. Reading: at most `max_concurrency` requests read and decode their bodies at once (each may
//!    hold up to 3 MiB), and at most [`reading_per_connection`] of them from one connection
//!    (one eighth of `max_concurrency`, at least 1 and at most 8): a request first waits for its
//!    connection's slot ([`conn::ReadingSlots`]), then for one of the server's, both until its
//!    deadline, so a client that sends bodies a byte at a time on a few connections holds only
//!    a small share of the slots and a review on another connection still gets one. The body
//!    must arrive within `read_timeout`. Failures are answered at once (503 / 408: without a
//!    body there is no AdmissionReview to answer).
//! 2. Judging: the images are collected ([`crate::admission`]) and the body and slot released.
//!    At most `max_pending` requests wait for verdicts at once; a request past that is shed at
//!    once with the fail-closed answer ("vouch is overloaded", deny unless every image's
//!    statement is `audit` or `skip`, from [`Gate::unjudged`]) rather than queued behind work
//!    it would delay. An AdmissionReview answer rather than an HTTP error, because with
//!    `failurePolicy: Fail` its message reaches the user. Accepted requests ask the gate about
//!    each distinct image concurrently, finishing by the deadline: an image not judged by then
//!    gets the gate's timeout verdict. Requests waiting on a stalled registry hold no reading
//!    slot, so they cannot starve a request whose images are cached or on another registry.
//!
//! The trust policy, trust stores and serving certificate are re-read when their files change;
//! an invalid new policy or certificate is refused and the old one kept.

pub mod conn;
pub mod tls;
pub mod watch;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::admission::pin::{pin, PinScope};
use crate::admission::{decide, images_of, Decision, Enforcement, ImageUse};
use crate::cache::VerdictCache;
use crate::config::Gates;
use crate::config::{ConfigError, EngineSettings, MutateSettings};
use crate::gate::Gate;
use crate::metrics::Metrics;
use crate::registry::auth::PullCredentials;
use crate::registry::RegistryClient;
use crate::tenancy::namespaces::choose;
use crate::tenancy::proof::ReadProofs;
use crate::tenancy::{PullCredentialsMode, PullRefs, Tenancy, Watches};
use crate::verdict::Verdict;
use tls::{ReloadingCert, TlsError};

/// Largest AdmissionReview accepted.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// Most recent would-be denials kept for `GET /report`.
const REPORT_CAPACITY: usize = 500;
/// Most request bodies one connection reads at once.
const MAX_READING_PER_CONNECTION: usize = 8;

/// Request bodies one connection may read at once: an eighth of `max_concurrency`, at least 1
/// and at most 8, so that it takes several connections to hold every reading slot.
pub fn reading_per_connection(max_concurrency: usize) -> usize {
    (max_concurrency / 8).clamp(1, MAX_READING_PER_CONNECTION)
}

/// Time kept back from the deadline to encode and send the answer.
const ANSWER_MARGIN: Duration = Duration::from_millis(100);

/// Webhook settings after flags and config are merged.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// Listen address.
    pub listen: SocketAddr,
    /// PEM certificate chain.
    pub tls_cert: PathBuf,
    /// PEM private key.
    pub tls_key: PathBuf,
    /// Time allowed for one admission request (below the API server's 10 s default).
    pub deadline: Duration,
    /// Enforce or only record.
    pub enforcement: Enforcement,
    /// Admission requests reading and decoding their bodies at once (from one connection at
    /// most [`reading_per_connection`] of them).
    pub max_concurrency: usize,
    /// Admission requests waiting for verdicts at once; more are shed with the fail-closed
    /// answer.
    pub max_pending: usize,
    /// Open connections at most (at the cap one is closed to make room for a new one, see
    /// [`conn`]).
    pub max_connections: usize,
    /// Time for a new connection's TLS handshake and first request headers, for each later
    /// HTTP/1.1 request's headers, and for a request body.
    pub read_timeout: Duration,
    /// An HTTP/2 connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// How often files are checked for changes.
    pub reload_interval: Duration,
    /// What `/mutate` pins.
    pub mutate: MutateSettings,
    /// Whose credentials read a pod's images.
    pub pull_credentials: PullCredentialsMode,
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            deadline: Duration::from_secs(8),
            enforcement: Enforcement::Enforce,
            max_concurrency: 512,
            max_pending: 4096,
            max_connections: 1000,
            read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            reload_interval: Duration::from_secs(2),
            mutate: MutateSettings::default(),
            pull_credentials: PullCredentialsMode::Own,
        }
    }
}

impl ServeSettings {
    /// Refuse limits that would make the server useless (a zero timeout closes every
    /// connection at once).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("serve.deadline", self.deadline),
            ("serve.readTimeout", self.read_timeout),
            ("serve.idleTimeout", self.idle_timeout),
        ];
        for (name, d) in positive {
            if d.is_zero() {
                return Err(ConfigError::Invalid(format!("{name} must be above zero")));
            }
        }
        let counts = [
            ("serve.maxConcurrency", self.max_concurrency),
            ("serve.maxPending", self.max_pending),
            ("serve.maxConnections", self.max_connections),
        ];
        for (name, n) in counts {
            if n == 0 {
                return Err(ConfigError::Invalid(format!("{name} must be at least 1")));
            }
        }
        Ok(())
    }
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Policy, trust store or settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Serving certificate.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The listener.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// Address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// A would-be denial recorded under dry-run enforcement.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WouldDeny {
    /// RFC 3339 time.
    pub time: String,
    /// Request uid.
    pub uid: String,
    /// Namespace.
    pub namespace: String,
    /// `Kind/name`.
    pub workload: String,
    /// Images that would be denied.
    pub images: Vec<String>,
    /// The message a denial would have carried.
    pub message: String,
}

/// Shared state of the handlers.
pub struct App {
    /// The cluster-wide gate and one per `namespaces:` mapping.
    gate: ArcSwap<Gates>,
    engine: EngineSettings,
    /// The cluster state pull credentials and namespace selectors need (started when either
    /// is configured).
    tenancy: Option<Tenancy>,
    /// `pullCredentials: pod-only` read proofs.
    proofs: ReadProofs,
    registry: RegistryClient,
    metrics: Arc<Metrics>,
    settings: ServeSettings,
    ready: AtomicBool,
    report: Mutex<VecDeque<WouldDeny>>,
    /// Reading slots (`max_concurrency`).
    reading: tokio::sync::Semaphore,
    /// Requests waiting for verdicts (`max_pending`).
    pending: tokio::sync::Semaphore,
}

/// A started server.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    listener: conn::Listener,
    app: Arc<App>,
    watchers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stop accepting, let in-flight reviews finish (up to `grace`), then return.
    pub async fn shutdown(self, grace: Duration) {
        self.app.ready.store(false, Ordering::SeqCst);
        for w in &self.watchers {
            w.abort();
        }
        self.listener.shutdown(grace).await;
    }

    /// Serve until SIGTERM or SIGINT, then shut down gracefully.
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing in-flight reviews");
        self.shutdown(Duration::from_secs(25)).await;
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Load everything, bind, and start serving. Invalid policy, trust stores or certificates are
/// errors here, before anything is served.
pub async fn start(
    engine: EngineSettings,
    settings: ServeSettings,
    metrics: Arc<Metrics>,
) -> Result<Running, ServeError> {
    settings.validate()?;
    let registry = engine.registry_client(Some(metrics.clone()))?;
    let cache = Arc::new(VerdictCache::new(
        engine.cache.clone(),
        Some(metrics.clone()),
    ));
    let (gates, _) = engine.gates(
        registry.clone(),
        settings.deadline,
        Some(metrics.clone()),
        cache.clone(),
        engine.revocation_checker(Some(metrics.clone())),
        None,
    )?;
    reserve_registry_labels(&metrics, &gates.cluster, &engine);
    let watches = Watches {
        pull_credentials: settings.pull_credentials != PullCredentialsMode::Own,
        namespaces: gates
            .namespaces
            .iter()
            .any(|(m, _)| m.needs() == crate::tenancy::namespaces::Needs::Labels),
    };
    let tenancy = if watches.pull_credentials || watches.namespaces {
        let config = crate::audit::kubeconfig::config(None).await.map_err(|e| {
            ConfigError::Invalid(format!(
                "serve.pullCredentials {} and namespace selectors read the cluster, but {e}",
                settings.pull_credentials.as_str()
            ))
        })?;
        let client = kube::Client::try_from(config)
            .map_err(|e| ConfigError::Invalid(format!("Kubernetes client: {e}")))?;
        Some(Tenancy::start(client, watches))
    } else {
        None
    };
    let cert = ReloadingCert::load(&settings.tls_cert, &settings.tls_key)?;
    let tls_config = cert.server_config().map_err(|e| TlsError {
        what: "configuration",
        path: settings.tls_cert.display().to_string(),
        reason: e.to_string(),
    })?;
    let listen_err = |reason: String| ServeError::Listen {
        addr: settings.listen,
        reason,
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| listen_err(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| listen_err(e.to_string()))?;
    let app = Arc::new(App {
        gate: ArcSwap::from_pointee(gates),
        engine,
        tenancy,
        proofs: ReadProofs::default(),
        registry,
        metrics,
        settings: settings.clone(),
        ready: AtomicBool::new(true),
        report: Mutex::new(VecDeque::new()),
        reading: tokio::sync::Semaphore::new(settings.max_concurrency),
        pending: tokio::sync::Semaphore::new(settings.max_pending),
    });
    let listener = conn::Listener::spawn(
        listener,
        Arc::new(tls_config),
        router(app.clone()),
        conn::ConnLimits {
            max_connections: settings.max_connections,
            read_timeout: settings.read_timeout,
            idle_timeout: settings.idle_timeout,
            reading_per_connection: reading_per_connection(settings.max_concurrency),
        },
        app.metrics.clone(),
    );
    let watchers = vec![
        tokio::spawn(watch_trust(app.clone())),
        tokio::spawn(watch_tls(cert, settings.reload_interval)),
    ];
    tracing::info!(%addr, enforcement = ?settings.enforcement, "vouch webhook listening");
    Ok(Running {
        addr,
        listener,
        app,
        watchers,
    })
}

/// The registries the configuration names keep metric labels of their own, however many other
/// hosts images name (see [`Metrics::registry_host`]).
fn reserve_registry_labels(metrics: &Metrics, gate: &Gate, engine: &EngineSettings) {
    let canonical = |h: &str| crate::reference::canonical_host(h).ok();
    let mut hosts: Vec<String> = gate
        .policy()
        .statements()
        .iter()
        .flat_map(|s| s.registry_scopes.iter())
        .filter_map(|scope| scope.split_once('/').map(|(host, _)| host.to_string()))
        .chain(
            engine
                .insecure_registries
                .iter()
                .filter_map(|h| canonical(h)),
        )
        .chain(
            engine
                .quarantine
                .iter()
                .flat_map(|r| r.registries.iter())
                .filter(|p| !p.contains('*'))
                .filter_map(|h| canonical(h)),
        )
        .collect();
    // Docker Hub is asked at its API endpoint.
    if hosts.iter().any(|h| h == "docker.io") {
        hosts.push("index.docker.io".into());
    }
    metrics.reserve_registry_labels(hosts.iter().map(String::as_str));
}

/// The routes and their layers.
pub fn router(app: Arc<App>) -> Router {
    let backstop = app.settings.deadline + Duration::from_secs(1);
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/report", get(report))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::middleware::map_request(stamp_arrival))
                .layer(TraceLayer::new_for_http())
                .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
                .layer(DefaultBodyLimit::disable())
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    backstop,
                )),
        )
        .with_state(app)
}

/// When a request arrived: its headers were read. Deadlines count from here.
#[derive(Debug, Clone, Copy)]
struct Arrived(Instant);

async fn stamp_arrival(mut req: axum::extract::Request) -> axum::extract::Request {
    req.extensions_mut().insert(Arrived(Instant::now()));
    req
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.ready.load(Ordering::SeqCst) {
        let gates = app.gate.load();
        format!(
            "ready: {} trust policy statement(s), {} namespace mapping(s)\n",
            gates.cluster.policy().statements().len(),
            gates.namespaces.len()
        )
        .into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}

async fn report(State(app): State<Arc<App>>) -> Response {
    let items: Vec<WouldDeny> = app
        .report
        .lock()
        .map(|r| r.iter().cloned().collect())
        .unwrap_or_default();
    axum::Json(serde_json::json!({ "wouldDeny": items })).into_response()
}

fn bad_request(message: String) -> Response {
    plain(
        StatusCode::BAD_REQUEST,
        crate::escape::escape(&message).into_owned(),
    )
}

/// The parts of an `admission.k8s.io/v1` AdmissionReview that vouch reads. The objects stay raw
/// text until their images are read, so nothing else in them is ever built.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn<'a> {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(borrow)]
    request: Option<Request<'a>>,
}

/// An admission request (the fields vouch uses).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    uid: String,
    kind: GroupVersionKind,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    operation: Operation,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    old_object: Option<&'a RawValue>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
struct GroupVersionKind {
    kind: String,
}

/// The admission operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

/// The AdmissionReview answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut {
    api_version: &'static str,
    kind: &'static str,
    response: Answer,
}

/// An admission response, as the API server reads it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    uid: String,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<DenialStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    audit_annotations: HashMap<String, String>,
    /// `JSONPatch` when `patch` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    /// The base64 of an RFC 6902 JSON Patch (the mutating webhook's pins).
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
}

/// The `status` of a denial (a `meta/v1` Status).
#[derive(Debug, Serialize)]
struct DenialStatus {
    status: &'static str,
    message: String,
    reason: &'static str,
    code: u16,
}

impl Answer {
    fn allow(uid: &str) -> Self {
        Self {
            uid: uid.to_string(),
            allowed: true,
            status: None,
            warnings: None,
            audit_annotations: HashMap::new(),
            patch_type: None,
            patch: None,
        }
    }

    fn deny(mut self, message: String) -> Self {
        self.allowed = false;
        self.status = Some(DenialStatus {
            status: "Failure",
            // It quotes the request and the registry; kubectl and logs show it.
            message: crate::escape::escape(&message).into_owned(),
            reason: "Forbidden",
            code: 403,
        });
        self
    }
}

/// An admission request reduced to what judging it needs: owned, so the body (up to 3 MiB)
/// is released before verdicts are awaited.
struct Work {
    uid: String,
    /// The object's kind (`Pod`, `Deployment`…).
    kind: String,
    workload: String,
    namespace: String,
    operation: Operation,
    dry_run: bool,
    /// Distinct images to judge.
    images: BTreeSet<String>,
    /// Where each image of the object is (for `/mutate`'s patch).
    uses: Vec<ImageUse>,
    /// The pod's (template's) pull secrets and ServiceAccount, when pod credentials are used.
    pull_refs: Option<PullRefs>,
}

/// Which webhook a review came to: both judge alike and give the same allow or deny answer;
/// the mutating one also pins what it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Webhook {
    Validate,
    Mutate,
}

/// What decoding a review gave.
enum Decoded {
    /// Images to judge.
    Work(Work),
    /// An answer that needs no verdict.
    Answer(Answer),
    /// Not an AdmissionReview: an HTTP error.
    Invalid(Response),
}

async fn validate(State(app): State<Arc<App>>, request: axum::extract::Request) -> Response {
    admit(app, request, Webhook::Validate).await
}

async fn mutate(State(app): State<Arc<App>>, request: axum::extract::Request) -> Response {
    admit(app, request, Webhook::Mutate).await
}

/// One AdmissionReview, for either webhook, inside the request's deadline.
async fn admit(app: Arc<App>, request: axum::extract::Request, webhook: Webhook) -> Response {
    let arrived = request
        .extensions()
        .get::<Arrived>()
        .map_or_else(Instant::now, |a| a.0);
    let deadline = app.settings.deadline;
    let answer_by = arrived + deadline.saturating_sub(ANSWER_MARGIN.min(deadline / 10));
    let answer = async {
        // 1. Reading, under a slot of the connection's, then one of the server's.
        let connection = request.extensions().get::<conn::ReadingSlots>().cloned();
        let slots = async {
            let mine = match &connection {
                Some(c) => Some(c.0.acquire().await?),
                None => None,
            };
            Ok::<_, tokio::sync::AcquireError>((mine, app.reading.acquire().await?))
        };
        let slot = match tokio::time::timeout_at(answer_by.into(), slots).await {
            Ok(Ok(slot)) => slot,
            _ => {
                Metrics::inc(&app.metrics.admission_shed, "queue_timeout");
                let message = format!(
                    "vouch is overloaded: no reading slot (of {} in all, {} per connection) came free before the {}s deadline",
                    app.settings.max_concurrency,
                    reading_per_connection(app.settings.max_concurrency),
                    deadline.as_secs_f32()
                );
                return plain(StatusCode::SERVICE_UNAVAILABLE, message);
            }
        };
        let read_by = answer_by.min(arrived + app.settings.read_timeout);
        let body = match tokio::time::timeout_at(read_by.into(), Bytes::from_request(request, &()))
            .await
        {
            Ok(Ok(b)) => b,
            Ok(Err(rejection)) => return rejection.into_response(),
            Err(_) => {
                Metrics::inc(&app.metrics.admission_shed, "body_timeout");
                return plain(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the AdmissionReview body did not arrive within {}s",
                        app.settings.read_timeout.as_secs_f32()
                    ),
                );
            }
        };
        let work = match app.prepare(&body) {
            Decoded::Work(work) => work,
            Decoded::Answer(answer) => return review_out(answer),
            Decoded::Invalid(bad) => return bad,
        };
        drop(body);
        drop(slot);
        // 2. Judging, unless too many requests already wait for verdicts.
        let answer = match app.pending.try_acquire() {
            Ok(_waiting) => app.judge(&work, answer_by, webhook).await,
            Err(_) => {
                Metrics::inc(&app.metrics.admission_shed, "overloaded");
                let reason = format!(
                    "vouch is overloaded: {} admission requests are already waiting for verdicts, so this one was not verified; retry shortly",
                    app.settings.max_pending
                );
                let verdicts = app.shed_verdicts(&work, &reason).await;
                app.answer(&work, &verdicts, webhook)
            }
        };
        review_out(answer)
    };
    let response = answer.await;
    app.metrics
        .admission_seconds
        .observe(arrived.elapsed().as_secs_f64());
    response
}

fn plain(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

fn review_out(response: Answer) -> Response {
    axum::Json(ReviewOut {
        api_version: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response,
    })
    .into_response()
}

impl App {
    /// Decode a review: the work it asks for, an answer needing no verdict, or an HTTP error
    /// for what is not an AdmissionReview.
    fn prepare(&self, body: &[u8]) -> Decoded {
        let review: ReviewIn = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                Metrics::inc(&self.metrics.admission_requests, "invalid");
                return Decoded::Invalid(bad_request(format!("malformed AdmissionReview: {e}")));
            }
        };
        if review.api_version != "admission.k8s.io/v1" || review.kind != "AdmissionReview" {
            Metrics::inc(&self.metrics.admission_requests, "invalid");
            return Decoded::Invalid(bad_request(format!(
                "unsupported {}/{}: vouch answers admission.k8s.io/v1 AdmissionReview (set admissionReviewVersions: [v1])",
                review.api_version, review.kind
            )));
        }
        let Some(req) = review.request else {
            Metrics::inc(&self.metrics.admission_requests, "invalid");
            return Decoded::Invalid(bad_request("AdmissionReview has no request".into()));
        };
        self.work_of(&req)
    }

    fn work_of(&self, req: &Request<'_>) -> Decoded {
        let response = Answer::allow(&req.uid);
        let kind = req.kind.kind.as_str();
        let workload = format!("{kind}/{}", req.name);
        if matches!(req.operation, Operation::Delete | Operation::Connect) {
            Metrics::inc(&self.metrics.admission_requests, "allow");
            return Decoded::Answer(response);
        }
        let Some(object) = req.object else {
            Metrics::inc(&self.metrics.admission_requests, "deny");
            return Decoded::Answer(response.deny(format!(
                "vouch: the {} request for {workload} carries no object",
                op_name(req.operation)
            )));
        };
        let images = match images_of(kind, &mut serde_json::Deserializer::from_str(object.get())) {
            Ok(i) => i,
            Err(e) => {
                Metrics::inc(&self.metrics.admission_requests, "deny");
                return Decoded::Answer(
                    response.deny(format!("vouch cannot read the images of {workload}: {e}")),
                );
            }
        };
        // On UPDATE only containers the old object did not already run as they are are judged
        // (and pinned): scaling or relabelling a workload never depends on the registry, and a
        // running container's image is never rewritten. A container is the same when its list,
        // name and image are: a new container (`kubectl debug` adding an ephemeral one) is
        // judged even when another container already ran its image, since the kubelet pulls
        // it anew.
        let mut old_unreadable = false;
        let previous: BTreeSet<(&'static str, String, String)> =
            match (req.operation, req.old_object) {
                (Operation::Update, Some(old)) => {
                    match images_of(kind, &mut serde_json::Deserializer::from_str(old.get())) {
                        Ok(v) => v
                            .into_iter()
                            .map(|u| (u.field, u.container, u.image))
                            .collect(),
                        // Every image is judged then, but none is rewritten: which containers
                        // already run is unknown.
                        Err(_) => {
                            old_unreadable = true;
                            BTreeSet::new()
                        }
                    }
                }
                _ => BTreeSet::new(),
            };
        let images: Vec<ImageUse> = images
            .into_iter()
            .filter(|u| !previous.contains(&(u.field, u.container.clone(), u.image.clone())))
            .collect();
        let judged: BTreeSet<String> = images.iter().map(|u| u.image.clone()).collect();
        Decoded::Work(Work {
            uid: req.uid.clone(),
            kind: kind.to_string(),
            workload,
            namespace: req.namespace.clone().unwrap_or_default(),
            operation: req.operation,
            dry_run: req.dry_run.unwrap_or(false),
            images: judged,
            uses: if old_unreadable { Vec::new() } else { images },
            pull_refs: (self.settings.pull_credentials != PullCredentialsMode::Own)
                .then(|| serde_json::from_str::<serde_json::Value>(object.get()).ok())
                .flatten()
                .and_then(|o| PullRefs::of(kind, &o)),
        })
    }

    /// Judge every distinct image concurrently, each finishing by `due`.
    async fn judge(&self, work: &Work, due: Instant, webhook: Webhook) -> Answer {
        let verdicts = self.judge_as_tenant(work, due).await;
        self.answer(work, &verdicts, webhook)
    }

    /// Every distinct image of `work` judged as its tenant sees it: by the trust policy its
    /// namespace's mapping selects, read with the pod's pull credentials as
    /// `pullCredentials` says, and under `pod-only` admitted only when the pod's own
    /// credentials read it.
    async fn judge_as_tenant(&self, work: &Work, due: Instant) -> Vec<Verdict> {
        let gates = self.gate.load_full();
        // 1. Which policy.
        let chosen = if gates.namespaces.is_empty() {
            Ok(None)
        } else {
            choose(gates.matchers(), &work.namespace, || async {
                match &self.tenancy {
                    Some(t) => t
                        .namespace_labels(&work.namespace, due)
                        .await
                        .map(|l| l.map(|l| (*l).clone())),
                    None => Err("no cluster connection".into()),
                }
            })
            .await
        };
        let (gate, mapping) = match &chosen {
            Ok(index) => gates.get(*index),
            Err(reason) => {
                let gate = gates.cluster.clone();
                return work
                    .images
                    .iter()
                    .map(|image| {
                        let mut v = gate.unjudged(image, reason);
                        // Which policy applies is unknown: never admitted on a guess.
                        v.admission = crate::verdict::Admission::Deny;
                        v
                    })
                    .collect();
            }
        };
        let mapping = (!gates.namespaces.is_empty()).then(|| mapping.to_string());
        // 2. Whose credentials.
        let mode = self.settings.pull_credentials;
        let (registry, notes) = match (mode, &self.tenancy, &work.pull_refs) {
            (PullCredentialsMode::Own, _, _) | (_, None, _) => (None, Vec::new()),
            (_, Some(tenancy), refs) => {
                let refs = refs.clone().unwrap_or_default();
                let (entries, notes) = tenancy.pull_credentials(&work.namespace, &refs, due).await;
                let pull = PullCredentials {
                    entries,
                    own_fallback: mode == PullCredentialsMode::Pod,
                };
                (Some(self.registry.with_pull_credentials(pull)), notes)
            }
        };
        let gate: Arc<Gate> = match &registry {
            Some(r) => Arc::new(gate.with_registry(r.clone())),
            None => gate.clone(),
        };
        let judged = futures::future::join_all(work.images.iter().map(|image| async {
            let mut v = gate.judge_by(image, due).await;
            if let (PullCredentialsMode::PodOnly, Some(r)) = (mode, &registry) {
                self.prove_pod_can_read(&mut v, r, due).await;
            }
            v
        }))
        .await;
        judged
            .into_iter()
            .map(|mut v| {
                v.policy_mapping.clone_from(&mapping);
                for n in &notes {
                    if v.admission == crate::verdict::Admission::Deny {
                        v.reasons.push(n.clone());
                    } else {
                        v.warnings.push(n.clone());
                    }
                }
                v
            })
            .collect()
    }

    /// The verdicts of a review shed unjudged (`reason`): each image's error verdict under the
    /// policy its namespace's mapping selects, as a judged review's would be — by name, or by
    /// labels the watch already holds (an overloaded vouch waits for no API server). When the
    /// mapping cannot be told, or under `pod-only` (nothing proves the pod can read the image),
    /// the image is denied: a shed review never passes on another policy's level.
    async fn shed_verdicts(&self, work: &Work, reason: &str) -> Vec<Verdict> {
        let gates = self.gate.load_full();
        let chosen = if gates.namespaces.is_empty() {
            Ok(None)
        } else {
            choose(gates.matchers(), &work.namespace, || async {
                match &self.tenancy {
                    Some(t) => t
                        .cached_namespace_labels(&work.namespace)
                        .map(|l| Some((*l).clone()))
                        .ok_or_else(|| "they are not in the watch cache yet".to_string()),
                    None => Err("no cluster connection".into()),
                }
            })
            .await
        };
        let (gate, mapping, undecided) = match &chosen {
            Ok(index) => {
                let (gate, name) = gates.get(*index);
                (gate.clone(), name.to_string(), None)
            }
            Err(why) => (
                gates.cluster.clone(),
                crate::config::CLUSTER_POLICY.to_string(),
                Some(why.clone()),
            ),
        };
        let pod_only = self.settings.pull_credentials == PullCredentialsMode::PodOnly;
        work.images
            .iter()
            .map(|image| {
                let mut v = gate.unjudged(image, reason);
                if let Some(why) = &undecided {
                    v.reasons.push(why.clone());
                    v.admission = crate::verdict::Admission::Deny;
                } else if pod_only && v.outcome != crate::verdict::Outcome::Skipped {
                    v.admission = crate::verdict::Admission::Deny;
                }
                if !gates.namespaces.is_empty() {
                    v.policy_mapping = Some(mapping.clone());
                }
                v
            })
            .collect()
    }

    /// `pod-only`: a verdict stands only if the pod's own credentials read the manifest it is
    /// about (a verdict is shared by everyone who asks; readability is not). Denials are proven
    /// too when they name a digest: the digest a tag resolved to and the judgement may be
    /// another tenant's (cached), and a pod that cannot read the image must learn neither —
    /// its denial then says only that it cannot read it.
    async fn prove_pod_can_read(&self, v: &mut Verdict, registry: &RegistryClient, due: Instant) {
        if v.outcome == crate::verdict::Outcome::Skipped
            || (v.admission != crate::verdict::Admission::Allow && v.digest.is_none())
        {
            return;
        }
        let refuse = |v: &mut Verdict, why: String| {
            v.outcome = crate::verdict::Outcome::Error;
            v.verified = false;
            v.admission = crate::verdict::Admission::Deny;
            v.pinned = None;
            // Nothing read with anyone else's credentials is shown.
            v.reference = None;
            v.digest = None;
            v.reasons = vec![why];
            v.warnings.clear();
            v.signatures.clear();
            v.platforms.clear();
            v.quarantine = crate::verdict::QuarantineStatus::not_applicable();
        };
        let Ok(image) = crate::reference::ImageReference::parse(&v.image) else {
            return refuse(v, "the image reference cannot be read".into());
        };
        let Some(digest) = v.digest.clone() else {
            return refuse(
                v,
                "pullCredentials is pod-only and no digest was resolved with the pod's own pull credentials".into(),
            );
        };
        if let Err(e) = self.proofs.prove(registry, &image, &digest, due).await {
            // A digest the image does not name came from a tag resolution, maybe another
            // tenant's: not repeated (the registry's error quotes it).
            let (shown, error) = match image.digest() {
                Some(_) => (image.with_digest(&digest), e.to_string()),
                None => (
                    format!("{} (the digest its tag names)", image.original()),
                    e.to_string().replace(&digest, "<digest>"),
                ),
            };
            refuse(
                v,
                format!(
                    "pullCredentials is pod-only and the pod's own pull credentials cannot read {shown}: {error}"
                ),
            );
        }
    }

    /// The answer the verdicts make, recorded; from `/mutate`, with the patch pinning what
    /// verified when the object is admitted.
    fn answer(&self, work: &Work, verdicts: &[Verdict], webhook: Webhook) -> Answer {
        let decision = decide(verdicts, self.settings.enforcement);
        // One request reaches both webhooks (the mutating one maybe twice, on reinvocation):
        // decisions are counted, logged and reported once, by the validating one — but a
        // denial by the mutating one ends the request before validation, so it is its own.
        if webhook == Webhook::Validate || !decision.allowed {
            self.record(work, verdicts, &decision);
        }
        let mut response = Answer::allow(&work.uid);
        response.warnings = (!decision.warnings.is_empty()).then(|| decision.warnings.clone());
        response.audit_annotations = decision.audit_annotations.clone();
        if !decision.allowed {
            return response.deny(decision.message);
        }
        if webhook == Webhook::Mutate {
            self.pin_into(&mut response, work, verdicts);
        }
        response
    }

    /// Add the patch pinning each verified image of an admitted object, and count what was and
    /// was not pinned.
    fn pin_into(&self, response: &mut Answer, work: &Work, verdicts: &[Verdict]) {
        let by_image: HashMap<&str, &Verdict> =
            verdicts.iter().map(|v| (v.image.as_str(), v)).collect();
        let scope = PinScope {
            templates: self.settings.mutate.templates,
            dry_run: self.settings.enforcement == Enforcement::Dryrun,
        };
        let pinning = pin(&work.kind, &work.uses, &by_image, scope);
        for why in &pinning.skipped {
            Metrics::inc(&self.metrics.pinning, why.label());
        }
        if pinning.patch.0.is_empty() {
            return;
        }
        let pinned = pinning
            .patch
            .0
            .iter()
            .filter(|op| matches!(op, json_patch::PatchOperation::Replace(_)));
        for _ in pinned {
            Metrics::inc(&self.metrics.pinning, "pinned");
        }
        match serde_json::to_vec(&pinning.patch) {
            Ok(json) => {
                use base64::Engine;
                response.patch_type = Some("JSONPatch");
                response.patch = Some(base64::engine::general_purpose::STANDARD.encode(json));
            }
            // A list of strings always serialises; were it ever not to, the object is
            // admitted unpinned (the validating webhook has judged it all the same).
            Err(e) => {
                tracing::error!(error = %e, uid = %work.uid, "cannot encode the pinning patch")
            }
        }
    }

    fn record(&self, work: &Work, verdicts: &[Verdict], decision: &Decision) {
        // Formatted only when the log line is written.
        struct Summary<'a>(&'a [Verdict]);
        impl std::fmt::Display for Summary<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut sep = "";
                for v in self.0 {
                    let image = crate::escape::Escaped(&v.image);
                    write!(f, "{sep}{image}={:?}/{:?}", v.outcome, v.admission)?;
                    sep = ", ";
                }
                Ok(())
            }
        }
        let label = if !decision.allowed {
            "deny"
        } else if !decision.denied.is_empty() {
            "would_deny"
        } else {
            "allow"
        };
        Metrics::inc(&self.metrics.admission_requests, label);
        tracing::info!(
            uid = %work.uid,
            namespace = %work.namespace,
            workload = %work.workload,
            operation = op_name(work.operation),
            dry_run = work.dry_run,
            decision = label,
            images = %Summary(verdicts),
            message = %decision.message,
            "admission decision"
        );
        if label == "would_deny" {
            self.metrics.would_deny.inc();
            let message = decision
                .audit_annotations
                .get("would-deny")
                .cloned()
                .unwrap_or_default();
            if let Ok(mut r) = self.report.lock() {
                r.push_front(WouldDeny {
                    time: time::OffsetDateTime::now_utc()
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    uid: work.uid.clone(),
                    namespace: work.namespace.clone(),
                    workload: work.workload.clone(),
                    images: decision.denied.clone(),
                    message,
                });
                r.truncate(REPORT_CAPACITY);
            }
        }
    }
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// Re-read the trust policy and stores when their files change; keep the old ones when the new
/// ones are invalid. Looks and reloads run on blocking threads ([`watch::on_change`]).
async fn watch_trust(app: Arc<App>) {
    let paths = app.engine.trust_paths();
    let every = app.settings.reload_interval;
    watch::on_change(paths, every, move || reload_trust(&app)).await
}

fn reload_trust(app: &App) {
    let previous = app.gate.load_full();
    let (cache, revocation) = (
        previous.cluster.cache().clone(),
        previous.cluster.revocation().clone(),
    );
    match app.engine.gates(
        app.registry.clone(),
        app.settings.deadline,
        Some(app.metrics.clone()),
        cache,
        revocation,
        Some(&previous),
    ) {
        Ok((gates, problems)) => {
            app.gate.store(Arc::new(gates));
            for p in &problems {
                tracing::error!(error = %p, "new trust policy or trust store refused; the previous one stays in force for that mapping");
            }
            let outcome = if problems.is_empty() {
                "applied"
            } else {
                "rejected"
            };
            Metrics::inc(&app.metrics.policy_reloads, outcome);
            tracing::info!(policy = %app.engine.trust_policy.display(), mappings = previous.namespaces.len(), "trust policies and trust stores reloaded");
        }
        Err(e) => {
            Metrics::inc(&app.metrics.policy_reloads, "rejected");
            tracing::error!(error = %e, "new trust policy or trust store refused; the previous one stays in force");
        }
    }
}

/// Re-read the serving certificate when its files change.
async fn watch_tls(cert: Arc<ReloadingCert>, every: Duration) {
    let paths = cert.paths().map(std::path::Path::to_path_buf).to_vec();
    watch::on_change(paths, every, move || match cert.reload() {
        Ok(()) => tracing::info!("serving certificate reloaded"),
        Err(e) => {
            tracing::error!(error = %e, "new serving certificate refused; the previous one stays in use")
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_limits_are_refused_by_name() {
        assert!(ServeSettings::default().validate().is_ok());
        let s = ServeSettings {
            read_timeout: Duration::ZERO,
            ..ServeSettings::default()
        };
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("serve.readTimeout"), "{e}");
        let s = ServeSettings {
            max_connections: 0,
            ..ServeSettings::default()
        };
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("serve.maxConnections"), "{e}");
    }
}
