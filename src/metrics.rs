//! Prometheus metrics (`GET /metrics`, names prefixed `vouch_`), with prometheus-client.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label: one value.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    /// The value.
    pub kind: &'static str,
}

/// Labels: a revocation fetch's kind (`ocsp`, `crl`) and outcome (`ok`, `error`, `timeout`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Fetch {
    /// `ocsp` or `crl`.
    pub kind: &'static str,
    /// `ok`, `error` or `timeout`.
    pub outcome: &'static str,
}

/// Label: registry host.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegistryHost {
    /// `host[:port]`.
    pub registry: String,
}

/// Most distinct registry hosts that get a label of their own. Requests to any further host are
/// counted under `registry="other"`: image strings are chosen by whoever creates pods, and a new
/// host per pod must not grow `/metrics` (or memory) without end.
pub const MAX_REGISTRY_LABELS: usize = 64;

/// Which registry hosts have a label of their own.
#[derive(Default)]
struct RegistryLabels {
    /// Hosts the configuration names (trust-policy scopes, quarantine rules, insecure
    /// registries): always labelled, so images naming new hosts cannot push them out.
    reserved: std::collections::HashSet<String>,
    /// Other hosts, first come, at most [`MAX_REGISTRY_LABELS`].
    seen: std::collections::HashSet<String>,
}

/// Every metric vouch exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// The hosts that have a `registry` label: the reserved ones, and at most
    /// [`MAX_REGISTRY_LABELS`] others.
    registry_labels: Mutex<RegistryLabels>,
    /// Admission requests by decision (`allow`, `deny`, `would_deny`, `invalid`).
    pub admission_requests: Family<Kind, Counter>,
    /// Would-be denials under dry-run enforcement.
    pub would_deny: Counter,
    /// Image verifications by outcome (`verified`, `skipped`, `failed`, `error`).
    pub verifications: Family<Kind, Counter>,
    /// Time to answer one admission request.
    pub admission_seconds: Histogram,
    /// Time to judge one image.
    pub verification_seconds: Histogram,
    /// HTTP requests sent to registries.
    pub registry_requests: Family<RegistryHost, Counter>,
    /// Registry requests that failed to complete (connection, TLS, timeout).
    pub registry_errors: Family<RegistryHost, Counter>,
    /// Registry answers that asked us to slow down (429, or 503 with Retry-After).
    pub registry_throttled: Family<RegistryHost, Counter>,
    /// Policy reloads by result (`applied`, `rejected`).
    pub policy_reloads: Family<Kind, Counter>,
    /// Verdict cache lookups by result (`hit`, `miss`, `shared_hit`, `stale`).
    pub cache_requests: Family<Kind, Counter>,
    /// Shared (Redis) cache events (`write`, `error`).
    pub shared_cache: Family<Kind, Counter>,
    /// OCSP and CRL fetches by kind and outcome.
    pub revocation_fetches: Family<Fetch, Counter>,
    /// Time of one OCSP or CRL fetch.
    pub revocation_fetch_seconds: Histogram,
    /// Revocation answers taken from a cache (`ocsp`, `crl`, `crl_disk`, `offline_crl`).
    pub revocation_cache_hits: Family<Kind, Counter>,
    /// CRL disk cache files that could not be used (`read`: unreadable, corrupt, too large) or
    /// stored (`write`); each was treated as a miss.
    pub revocation_cache_errors: Family<Kind, Counter>,
    /// Certificates checked, by status (`ok`, `revoked`, `unknown`, `non_revocable`).
    pub revocation_results: Family<Kind, Counter>,
    /// Admission requests answered without being judged, by reason (`overloaded`: too many
    /// waiting for verdicts; `queue_timeout`: no reading slot before the deadline;
    /// `body_timeout`: the body did not arrive in time).
    pub admission_shed: Family<Kind, Counter>,
    /// Connections the server closed, by reason (`handshake_timeout`, `handshake_failed`,
    /// `read_timeout`, `idle`, `evicted`, `over_capacity`).
    pub connections_closed: Family<Kind, Counter>,
    /// Connections open on the webhook port (TLS handshakes included).
    pub connections_open: Gauge,
    /// Images the mutating webhook met, by what it did (`pinned`; not pinned because
    /// `already_pinned`, `not_verified`, `templates_off`, `dryrun`).
    pub pinning: Family<Kind, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Create and register every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vouch");
        let admission_requests = Family::<Kind, Counter>::default();
        let would_deny = Counter::default();
        let verifications = Family::<Kind, Counter>::default();
        let admission_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        let verification_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        let registry_requests = Family::<RegistryHost, Counter>::default();
        let registry_errors = Family::<RegistryHost, Counter>::default();
        let registry_throttled = Family::<RegistryHost, Counter>::default();
        registry.register(
            "registry_throttled",
            "Registry answers that asked to slow down (429)",
            registry_throttled.clone(),
        );
        let policy_reloads = Family::<Kind, Counter>::default();
        let cache_requests = Family::<Kind, Counter>::default();
        let shared_cache = Family::<Kind, Counter>::default();
        let admission_shed = Family::<Kind, Counter>::default();
        let connections_closed = Family::<Kind, Counter>::default();
        let connections_open = Gauge::default();
        let pinning = Family::<Kind, Counter>::default();
        registry.register(
            "pinning",
            "Images the mutating webhook pinned to their verified digest, or why not",
            pinning.clone(),
        );
        registry.register(
            "admission_shed",
            "Admission requests answered with the fail-closed answer without being judged, by reason",
            admission_shed.clone(),
        );
        registry.register(
            "connections_closed",
            "Webhook connections closed by the server, by reason",
            connections_closed.clone(),
        );
        registry.register(
            "connections_open",
            "Open webhook connections",
            connections_open.clone(),
        );
        registry.register(
            "verdict_cache_requests",
            "Verdict cache lookups by result",
            cache_requests.clone(),
        );
        registry.register(
            "shared_cache_events",
            "Shared (Redis) verdict cache events",
            shared_cache.clone(),
        );
        registry.register(
            "admission_requests",
            "Admission requests by decision",
            admission_requests.clone(),
        );
        registry.register(
            "admission_would_deny",
            "Would-be denials allowed under dry-run enforcement",
            would_deny.clone(),
        );
        registry.register(
            "verifications",
            "Image verifications by outcome",
            verifications.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to answer one admission request",
            admission_seconds.clone(),
        );
        registry.register(
            "verification_duration_seconds",
            "Time to judge one image",
            verification_seconds.clone(),
        );
        registry.register(
            "registry_requests",
            "HTTP requests sent to registries",
            registry_requests.clone(),
        );
        registry.register(
            "registry_errors",
            "Registry requests that could not complete",
            registry_errors.clone(),
        );
        let revocation_fetches = Family::<Fetch, Counter>::default();
        let revocation_fetch_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let revocation_cache_hits = Family::<Kind, Counter>::default();
        let revocation_results = Family::<Kind, Counter>::default();
        let revocation_cache_errors = Family::<Kind, Counter>::default();
        registry.register(
            "revocation_fetches",
            "OCSP and CRL fetches by kind and outcome",
            revocation_fetches.clone(),
        );
        registry.register(
            "revocation_fetch_duration_seconds",
            "Time of one OCSP or CRL fetch",
            revocation_fetch_seconds.clone(),
        );
        registry.register(
            "revocation_cache_hits",
            "Revocation answers taken from a cache",
            revocation_cache_hits.clone(),
        );
        registry.register(
            "revocation_cache_errors",
            "CRL disk cache files that could not be read or stored (each a miss)",
            revocation_cache_errors.clone(),
        );
        registry.register(
            "revocation_results",
            "Certificates checked for revocation, by status",
            revocation_results.clone(),
        );
        registry.register(
            "policy_reloads",
            "Trust policy and trust store reloads by result",
            policy_reloads.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            registry_labels: Mutex::default(),
            admission_requests,
            would_deny,
            verifications,
            admission_seconds,
            verification_seconds,
            registry_requests,
            registry_errors,
            registry_throttled,
            policy_reloads,
            cache_requests,
            shared_cache,
            admission_shed,
            connections_closed,
            connections_open,
            pinning,
            revocation_fetches,
            revocation_fetch_seconds,
            revocation_cache_hits,
            revocation_cache_errors,
            revocation_results,
        }
    }

    /// Give these hosts (as image references canonicalise them) a `registry` label of their
    /// own whatever else is seen: the registries the configuration names.
    pub fn reserve_registry_labels<'a>(&self, hosts: impl IntoIterator<Item = &'a str>) {
        let mut labels = self
            .registry_labels
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        labels
            .reserved
            .extend(hosts.into_iter().map(str::to_string));
    }

    /// The `registry` label for a host: the host itself when it is reserved or while fewer than
    /// [`MAX_REGISTRY_LABELS`] other hosts have one, else `other`.
    pub fn registry_host(&self, host: &str) -> RegistryHost {
        let mut labels = self
            .registry_labels
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let own = labels.reserved.contains(host)
            || labels.seen.contains(host)
            || (labels.seen.len() < MAX_REGISTRY_LABELS && labels.seen.insert(host.to_string()));
        RegistryHost {
            registry: if own {
                host.to_string()
            } else {
                "other".into()
            },
        }
    }

    /// Count one labelled event.
    pub fn inc(family: &Family<Kind, Counter>, kind: &'static str) {
        family.get_or_create(&Kind { kind }).inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(reg) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_registries_keep_their_labels_however_many_hosts_images_name() {
        let m = Metrics::new();
        m.reserve_registry_labels(["registry.example"]);
        for i in 0..MAX_REGISTRY_LABELS * 2 {
            let _ = m.registry_host(&format!("h{i}.example"));
        }
        assert_eq!(
            m.registry_host("registry.example").registry,
            "registry.example"
        );
        assert_eq!(m.registry_host("h0.example").registry, "h0.example");
        assert_eq!(m.registry_host("new.example").registry, "other");
    }
}
