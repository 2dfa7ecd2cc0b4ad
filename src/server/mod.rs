//! `vouch serve`: the validating admission webhook over TLS.
//!
//! A thin axum server made of layers: a request-body limit (413 past 3 MiB), a concurrency
//! limit, a timeout backstop and request tracing apply to every route. `/validate` decodes the
//! AdmissionReview, collects images ([`crate::admission`]), asks the gate about each distinct
//! image concurrently within the request deadline, and encodes the answer. The trust policy,
//! trust stores and serving certificate are re-read when their files change; an invalid new
//! policy or certificate is refused and the old one kept.

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
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::admission::{decide, images_of, Decision, Enforcement};
use crate::cache::VerdictCache;
use crate::config::{ConfigError, EngineSettings};
use crate::gate::{Gate, Verdict};
use crate::metrics::Metrics;
use crate::registry::RegistryClient;
use tls::{ReloadingCert, TlsError};

/// Largest AdmissionReview accepted.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// Most recent would-be denials kept for `GET /report`.
const REPORT_CAPACITY: usize = 500;

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
    /// Admission requests handled at once.
    pub max_concurrency: usize,
    /// How often files are checked for changes.
    pub reload_interval: Duration,
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
            reload_interval: Duration::from_secs(2),
        }
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
    gate: ArcSwap<Gate>,
    engine: EngineSettings,
    registry: RegistryClient,
    metrics: Arc<Metrics>,
    settings: ServeSettings,
    ready: AtomicBool,
    report: Mutex<VecDeque<WouldDeny>>,
}

/// A started server.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    app: Arc<App>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    watchers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stop accepting, let in-flight reviews finish (up to `grace`), then return.
    pub async fn shutdown(self, grace: Duration) {
        self.app.ready.store(false, Ordering::SeqCst);
        self.handle.graceful_shutdown(Some(grace));
        for w in &self.watchers {
            w.abort();
        }
        let _ = self.task.await;
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
    let registry = engine.registry_client(Some(metrics.clone()))?;
    let cache = Arc::new(VerdictCache::new(
        engine.cache.clone(),
        Some(metrics.clone()),
    ));
    let gate = engine.gate_with_cache(
        registry.clone(),
        settings.deadline,
        Some(metrics.clone()),
        cache.clone(),
    )?;
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
    let listener =
        std::net::TcpListener::bind(settings.listen).map_err(|e| listen_err(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| listen_err(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| listen_err(e.to_string()))?;
    let app = Arc::new(App {
        gate: ArcSwap::from_pointee(gate),
        engine,
        registry,
        metrics,
        settings: settings.clone(),
        ready: AtomicBool::new(true),
        report: Mutex::new(VecDeque::new()),
    });
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls_config)),
    )
    .map_err(|e| listen_err(e.to_string()))?
    .handle(handle.clone());
    let router = router(app.clone());
    let task = tokio::spawn(async move { server.serve(router.into_make_service()).await });
    let watchers = vec![
        tokio::spawn(watch_trust(app.clone())),
        tokio::spawn(watch_tls(cert, settings.reload_interval)),
    ];
    tracing::info!(%addr, enforcement = ?settings.enforcement, "vouch webhook listening");
    Ok(Running {
        addr,
        handle,
        app,
        task,
        watchers,
    })
}

/// The routes and their layers.
pub fn router(app: Arc<App>) -> Router {
    let backstop = app.settings.deadline + Duration::from_secs(1);
    Router::new()
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/report", get(report))
        .layer(
            tower::ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
                .layer(DefaultBodyLimit::disable())
                .layer(tower::limit::ConcurrencyLimitLayer::new(
                    app.settings.max_concurrency.max(1),
                ))
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    backstop,
                )),
        )
        .with_state(app)
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.ready.load(Ordering::SeqCst) {
        let gate = app.gate.load();
        format!(
            "ready: {} trust policy statement(s)\n",
            gate.policy().statements().len()
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
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
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
        }
    }

    fn deny(mut self, message: String) -> Self {
        self.allowed = false;
        self.status = Some(DenialStatus {
            status: "Failure",
            message,
            reason: "Forbidden",
            code: 403,
        });
        self
    }
}

async fn validate(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let started = Instant::now();
    let review: ReviewIn = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            Metrics::inc(&app.metrics.admission_requests, "invalid");
            return bad_request(format!("malformed AdmissionReview: {e}"));
        }
    };
    if review.api_version != "admission.k8s.io/v1" || review.kind != "AdmissionReview" {
        Metrics::inc(&app.metrics.admission_requests, "invalid");
        return bad_request(format!(
            "unsupported {}/{}: vouch answers admission.k8s.io/v1 AdmissionReview (set admissionReviewVersions: [v1])",
            review.api_version, review.kind
        ));
    }
    let Some(request) = review.request else {
        Metrics::inc(&app.metrics.admission_requests, "invalid");
        return bad_request("AdmissionReview has no request".into());
    };
    let response = app.review(&request).await;
    app.metrics
        .admission_seconds
        .observe(started.elapsed().as_secs_f64());
    axum::Json(ReviewOut {
        api_version: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response,
    })
    .into_response()
}

impl App {
    async fn review(&self, req: &Request<'_>) -> Answer {
        let response = Answer::allow(&req.uid);
        let kind = req.kind.kind.as_str();
        let workload = format!("{kind}/{}", req.name);
        let namespace = req.namespace.clone().unwrap_or_default();
        if matches!(req.operation, Operation::Delete | Operation::Connect) {
            Metrics::inc(&self.metrics.admission_requests, "allow");
            return response;
        }
        let Some(object) = req.object else {
            Metrics::inc(&self.metrics.admission_requests, "deny");
            return response.deny(format!(
                "vouch: the {} request for {workload} carries no object",
                op_name(req.operation)
            ));
        };
        let images = match images_of(kind, &mut serde_json::Deserializer::from_str(object.get())) {
            Ok(i) => i,
            Err(e) => {
                Metrics::inc(&self.metrics.admission_requests, "deny");
                return response.deny(format!("vouch cannot read the images of {workload}: {e}"));
            }
        };
        // On UPDATE only images the old object did not run are judged: scaling or relabelling
        // a workload never depends on the registry being reachable.
        let previous: BTreeSet<String> = match (req.operation, req.old_object) {
            (Operation::Update, Some(old)) => {
                images_of(kind, &mut serde_json::Deserializer::from_str(old.get()))
                    .map(|v| v.into_iter().map(|u| u.image).collect())
                    .unwrap_or_default()
            }
            _ => BTreeSet::new(),
        };
        let distinct: BTreeSet<String> = images
            .into_iter()
            .map(|u| u.image)
            .filter(|i| !previous.contains(i))
            .collect();
        let gate = self.gate.load_full();
        let verdicts: Vec<Verdict> =
            futures::future::join_all(distinct.iter().map(|image| gate.judge(image))).await;
        let decision = decide(&verdicts, self.settings.enforcement);
        self.record(req, &workload, &namespace, &verdicts, &decision);
        let mut response = response;
        response.warnings = (!decision.warnings.is_empty()).then(|| decision.warnings.clone());
        response.audit_annotations = decision.audit_annotations.clone();
        if decision.allowed {
            response
        } else {
            response.deny(decision.message)
        }
    }

    fn record(
        &self,
        req: &Request<'_>,
        workload: &str,
        namespace: &str,
        verdicts: &[Verdict],
        decision: &Decision,
    ) {
        // Formatted only when the log line is written.
        struct Summary<'a>(&'a [Verdict]);
        impl std::fmt::Display for Summary<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut sep = "";
                for v in self.0 {
                    write!(f, "{sep}{}={:?}/{:?}", v.image, v.outcome, v.admission)?;
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
            uid = %req.uid,
            namespace,
            workload,
            operation = op_name(req.operation),
            dry_run = req.dry_run.unwrap_or(false),
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
                    uid: req.uid.clone(),
                    namespace: namespace.to_string(),
                    workload: workload.to_string(),
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
    let paths = vec![
        app.engine.trust_policy.clone(),
        app.engine.trust_store.clone(),
    ];
    let every = app.settings.reload_interval;
    watch::on_change(paths, every, move || reload_trust(&app)).await
}

fn reload_trust(app: &App) {
    let cache = app.gate.load().cache().clone();
    match app.engine.gate_with_cache(
        app.registry.clone(),
        app.settings.deadline,
        Some(app.metrics.clone()),
        cache,
    ) {
        Ok(gate) => {
            app.gate.store(Arc::new(gate));
            Metrics::inc(&app.metrics.policy_reloads, "applied");
            tracing::info!(policy = %app.engine.trust_policy.display(), "trust policy and trust stores reloaded");
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
