//! Caches in front of the registry: tag → digest, and verdicts keyed by
//! (registry, repository, digest, fingerprint of everything that decides them).
//!
//! - Never by digest alone: signatures and quarantine state belong to a repository.
//! - Separate lifetimes: allow (10 min), deny (30 s), quarantine pending (30 s); errors are
//!   never cached.
//! - Single-flight: concurrent requests for one uncached key share one verification (moka's
//!   `try_get_with`); the verification runs as its own task, so a requester that gives up at
//!   its deadline does not waste the work — the result still lands in the cache.
//! - Stale-if-error: an allow verdict younger than `staleIfError` is served, with a warning, when
//!   the registry cannot be reached. Denials are never extended.
//! - Bounded by entries and by bytes.

pub mod shared;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;
use serde::Deserialize;

use crate::metrics::Metrics;
use crate::registry::{Descriptor, Digest, RegistryError};
use crate::verdict::{Judgement, Outcome};
use shared::SharedCache;

/// Cache lifetimes and bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Lifetime of an allow verdict.
    #[serde(with = "humantime_serde")]
    pub allow_ttl: Duration,
    /// Lifetime of a deny verdict.
    #[serde(with = "humantime_serde")]
    pub deny_ttl: Duration,
    /// Lifetime of a verdict whose quarantine state is not final (`Quarantined`, unknown).
    #[serde(with = "humantime_serde")]
    pub pending_ttl: Duration,
    /// Lifetime of a tag → digest resolution.
    #[serde(with = "humantime_serde")]
    pub digest_ttl: Duration,
    /// How long an allow verdict may be served when the registry cannot be reached.
    #[serde(with = "humantime_serde")]
    pub stale_if_error: Duration,
    /// Most verdicts kept.
    pub max_entries: u64,
    /// Most bytes of verdicts kept (estimated).
    pub max_bytes: u64,
    /// Optional shared cache across webhook replicas.
    pub redis: Option<shared::RedisSettings>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            allow_ttl: Duration::from_secs(600),
            deny_ttl: Duration::from_secs(30),
            pending_ttl: Duration::from_secs(30),
            digest_ttl: Duration::from_secs(30),
            stale_if_error: Duration::from_secs(3600),
            max_entries: 200_000,
            max_bytes: 256 * 1024 * 1024,
            redis: None,
        }
    }
}

/// What a cached verdict is keyed by: the repository, the manifest digest and a fingerprint of
/// everything that decides the verdict. Kept compact (one small allocation for the name, the
/// digest as bytes) because a busy webhook holds a hundred thousand of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerdictKey {
    /// `registry/repository`.
    name: Box<str>,
    digest: Digest,
    /// Fingerprint of the statement, trust stores and quarantine settings that decide.
    fingerprint: Arc<str>,
}

impl VerdictKey {
    /// The key of `registry/repository@digest` judged under `fingerprint`.
    pub fn new(registry: &str, repository: &str, digest: &str, fingerprint: Arc<str>) -> Self {
        let mut name = String::with_capacity(registry.len() + 1 + repository.len());
        name.push_str(registry);
        name.push('/');
        name.push_str(repository);
        Self {
            name: name.into_boxed_str(),
            digest: Digest::new(digest),
            fingerprint,
        }
    }

    /// A stable string form, `registry/repository@digest#fingerprint` (shared cache key).
    pub fn flat(&self) -> String {
        format!("{}@{}#{}", self.name, self.digest, self.fingerprint)
    }
}

/// Tag resolution key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DigestKey {
    /// Registry host.
    pub registry: String,
    /// Repository.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// Whose credentials resolve it (`own`, or a pod credential's identity): tenants reading
    /// with different credentials never share a resolution, its errors, or learn what another
    /// tenant's tag points to.
    pub reader: String,
}

/// One cached verdict. Lifetimes are kept as milliseconds after `verified_at` (saturating at
/// 49 days) to keep the entry small.
#[derive(Clone)]
struct Entry {
    judgement: Arc<Judgement>,
    /// When it was verified (or, for a shared-cache hit, fetched).
    verified_at: Instant,
    /// How long after `verified_at` it is served as fresh; after that it is only a
    /// stale-if-error fallback.
    fresh_ms: u32,
    /// How long it stays in memory: its class's lifetime, and for allows at least the
    /// stale-if-error window.
    keep_ms: u32,
    weight: u32,
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl Entry {
    fn is_fresh(&self) -> bool {
        self.verified_at.elapsed() < Duration::from_millis(u64::from(self.fresh_ms))
    }
}

struct ByClass;

impl Expiry<VerdictKey, Entry> for ByClass {
    fn expire_after_create(&self, _k: &VerdictKey, v: &Entry, _now: Instant) -> Option<Duration> {
        Some(Duration::from_millis(u64::from(v.keep_ms)))
    }
}

/// The caches of one process (shared by every reload of the trust policy). One map entry per
/// verdict: allows stay past their lifetime, for the stale-if-error window, as fallbacks only.
pub struct VerdictCache {
    settings: CacheSettings,
    verdicts: Cache<VerdictKey, Entry>,
    digests: Cache<DigestKey, Descriptor>,
    last_digests: Cache<DigestKey, Descriptor>,
    inflight: std::sync::Mutex<HashMap<VerdictKey, Flight>>,
    shared: Option<SharedCache>,
    metrics: Option<Arc<Metrics>>,
}

type Flight = futures::future::Shared<futures::future::BoxFuture<'static, Arc<Judgement>>>;

impl std::fmt::Debug for VerdictCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerdictCache")
            .field("entries", &self.verdicts.entry_count())
            .finish()
    }
}

/// Rough size in memory of a cached verdict, for the byte bound: the key, the judgement, the
/// text it carries, and the cache's own bookkeeping (measured by the memory benchmark).
fn weigh(j: &Judgement) -> usize {
    const FIXED: usize = 600;
    // An index judged by its platforms holds a judgement's worth per platform.
    let platforms: usize = j
        .platforms
        .iter()
        .map(|p| {
            std::mem::size_of_val(p)
                + text(&p.platform)
                + text(&p.digest)
                + texts(&p.reasons)
                + texts(&p.warnings)
                + p.signatures.iter().map(weigh_signature).sum::<usize>()
                + p.quarantine.as_deref().map_or(0, weigh_quarantine)
        })
        .sum();
    FIXED
        + texts(&j.reasons)
        + texts(&j.warnings)
        + j.signatures.iter().map(weigh_signature).sum::<usize>()
        + j.quarantine.as_deref().map_or(0, weigh_quarantine)
        + platforms
}

fn text(s: &str) -> usize {
    16 + s.len()
}

fn texts(v: &[String]) -> usize {
    v.iter().map(|s| text(s)).sum()
}

fn weigh_signature(s: &crate::notation::verifier::SignatureOutcome) -> usize {
    std::mem::size_of_val(s)
        + s.signer.as_deref().map_or(0, text)
        + s.error.as_deref().map_or(0, text)
        + texts(&s.warnings)
        + s.checks
            .iter()
            .filter_map(|c| c.error.as_deref())
            .map(|e| 32 + text(e))
            .sum::<usize>()
}

fn weigh_quarantine(q: &crate::verdict::QuarantineStatus) -> usize {
    std::mem::size_of_val(q)
        + q.details.as_deref().map_or(0, text)
        + q.reason.as_deref().map_or(0, text)
}

impl VerdictCache {
    /// Build the caches; connects nothing until first use.
    pub fn new(settings: CacheSettings, metrics: Option<Arc<Metrics>>) -> Self {
        let max_bytes = settings.max_bytes.max(1024);
        let verdicts = Cache::builder()
            .max_capacity(max_bytes)
            // Every entry weighs at least max_bytes / max_entries, so both bounds hold.
            .weigher(|_k: &VerdictKey, v: &Entry| v.weight)
            .expire_after(ByClass)
            .build();
        let digests = Cache::builder()
            .max_capacity(settings.max_entries.max(1))
            .time_to_live(settings.digest_ttl.max(Duration::from_millis(1)))
            .build();
        let last_digests = Cache::builder()
            .max_capacity(settings.max_entries.max(1))
            .time_to_live(settings.stale_if_error.max(Duration::from_millis(1)))
            .build();
        let shared = settings
            .redis
            .clone()
            .and_then(|r| SharedCache::new(r, metrics.clone()));
        Self {
            settings,
            verdicts,
            digests,
            last_digests,
            inflight: Default::default(),
            shared,
            metrics,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    fn count(&self, kind: &'static str) {
        if let Some(m) = &self.metrics {
            Metrics::inc(&m.cache_requests, kind);
        }
    }

    /// Verdicts currently held.
    pub async fn len(&self) -> u64 {
        self.verdicts.run_pending_tasks().await;
        self.verdicts.entry_count()
    }

    /// Whether no verdict is held.
    pub async fn is_empty(&self) -> bool {
        self.len().await == 0
    }

    /// Resolve a tag through the cache (single-flight); remember the answer for stale-if-error.
    pub async fn digest<F>(
        &self,
        key: DigestKey,
        resolve: F,
    ) -> Result<Descriptor, Arc<RegistryError>>
    where
        F: Future<Output = Result<Descriptor, RegistryError>>,
    {
        let result = self.digests.try_get_with(key.clone(), resolve).await;
        if let Ok(d) = &result {
            self.last_digests.insert(key, d.clone()).await;
        }
        result
    }

    /// The last digest a tag resolved to, within `staleIfError`.
    pub async fn stale_digest(&self, key: &DigestKey) -> Option<Descriptor> {
        self.last_digests.get(key).await
    }

    /// How long a judgement stays fresh: by outcome, and never past the moment its outcome may
    /// change by itself (an expiry, a certificate's validity, the earliest `nextUpdate` of the
    /// revocation data it rests on): a verdict cannot outlive its evidence.
    fn ttl_for(&self, j: &Judgement) -> Option<Duration> {
        if j.stale {
            return None;
        }
        let by_outcome = if j.pending {
            self.settings.pending_ttl
        } else {
            match j.outcome {
                Outcome::Verified | Outcome::Skipped => self.settings.allow_ttl,
                Outcome::Failed => self.settings.deny_ttl,
                Outcome::Error => return None,
            }
        };
        match j.evidence_valid_until() {
            Some(until) => {
                let left = Duration::try_from(until - time::OffsetDateTime::now_utc())
                    .unwrap_or(Duration::ZERO);
                (!left.is_zero()).then(|| by_outcome.min(left))
            }
            None => Some(by_outcome),
        }
    }

    fn entry(&self, j: Arc<Judgement>, fresh_for: Duration) -> Entry {
        let allow = j.outcome == Outcome::Verified && !j.pending;
        let keep = if allow {
            fresh_for.max(self.settings.stale_if_error)
        } else {
            fresh_for
        };
        let floor = self.settings.max_bytes / self.settings.max_entries.max(1);
        let weight = (weigh(&j) as u64).max(floor);
        Entry {
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
            judgement: j,
            verified_at: Instant::now(),
            fresh_ms: millis(fresh_for),
            keep_ms: millis(keep),
        }
    }

    async fn store(&self, key: &VerdictKey, j: Arc<Judgement>) {
        let Some(ttl) = self.ttl_for(&j) else {
            return;
        };
        if ttl.is_zero() {
            return;
        }
        let e = self.entry(j, ttl);
        self.verdicts.insert(key.clone(), e).await;
    }

    /// The verdict for `key`: from memory, else from the shared cache, else computed once for
    /// all concurrent callers by `compute` (run as its own task, so it finishes and fills the
    /// cache even if every caller gives up). A caller waits at most `wait`; when the answer is an
    /// error or does not come in time, a recent allow is served instead (stale-if-error).
    pub async fn verdict<F>(
        self: &Arc<Self>,
        key: VerdictKey,
        compute: F,
        wait: Duration,
    ) -> Arc<Judgement>
    where
        F: Future<Output = Judgement> + Send + 'static,
    {
        let existing = self.verdicts.get(&key).await;
        if let Some(e) = &existing {
            if e.is_fresh() {
                self.count("hit");
                return e.judgement.clone();
            }
        }
        let flight = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match inflight.get(&key) {
                Some(f) => f.clone(),
                None => {
                    let this = self.clone();
                    let k = key.clone();
                    let task = tokio::spawn(async move {
                        let j = this.fill(&k, compute).await;
                        this.inflight
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&k);
                        j
                    });
                    let f: futures::future::BoxFuture<'static, Arc<Judgement>> =
                        Box::pin(async move {
                            task.await.unwrap_or_else(|e| {
                                Arc::new(Judgement::error(format!("verification task failed: {e}")))
                            })
                        });
                    let f = futures::FutureExt::shared(f);
                    inflight.insert(key.clone(), f.clone());
                    f
                }
            }
        };
        let answer = match tokio::time::timeout(wait, flight).await {
            Ok(j) => j,
            Err(_) => Arc::new(Judgement::error(format!(
                "the registry did not answer within {}s",
                wait.as_secs_f32()
            ))),
        };
        if answer.outcome != Outcome::Error {
            return answer;
        }
        self.stale_or(existing, answer)
    }

    /// The work behind a miss: the shared cache, else `compute`; the result is stored.
    async fn fill<F>(&self, key: &VerdictKey, compute: F) -> Arc<Judgement>
    where
        F: Future<Output = Judgement>,
    {
        if let Some(shared) = &self.shared {
            if let Some((j, remaining)) = shared.get(key).await {
                self.count("shared_hit");
                let j = Arc::new(j);
                let e = self.entry(j.clone(), remaining);
                self.verdicts.insert(key.clone(), e).await;
                return j;
            }
        }
        self.count("miss");
        let j = Arc::new(compute.await);
        self.store(key, j.clone()).await;
        if let (Some(shared), Some(ttl)) = (&self.shared, self.ttl_for(&j)) {
            shared.put(key, &j, ttl);
        }
        j
    }

    /// On an error, the allow verdict the caller saw (now past its lifetime) if it is younger
    /// than `staleIfError`, marked as stale; else the error. Denials are never extended.
    fn stale_or(&self, existing: Option<Entry>, failed: Arc<Judgement>) -> Arc<Judgement> {
        self.stale_allow(existing, &failed).unwrap_or(failed)
    }

    fn stale_allow(&self, existing: Option<Entry>, failed: &Judgement) -> Option<Arc<Judgement>> {
        let e = existing?;
        let age = e.verified_at.elapsed();
        // Never past the revocation data the allow rests on, whatever staleIfError says.
        let evidence_expired = e
            .judgement
            .evidence_valid_until()
            .is_some_and(|until| until < time::OffsetDateTime::now_utc());
        if e.judgement.outcome != Outcome::Verified
            || e.judgement.pending
            || age > self.settings.stale_if_error
            || evidence_expired
        {
            return None;
        }
        self.count("stale");
        let mut j = (*e.judgement).clone();
        j.stale = true;
        j.warnings.push(format!(
            "served from cache: verified {}s ago, but the registry could not be reached now ({}); staleIfError allows up to {}s",
            age.as_secs(),
            failed.reasons.join("; "),
            self.settings.stale_if_error.as_secs()
        ));
        Some(Arc::new(j))
    }

    /// The stale allow verdict for a key, if there is one within `staleIfError` (used when even
    /// the digest could not be resolved).
    pub async fn stale(&self, key: &VerdictKey, failed: &Judgement) -> Option<Arc<Judgement>> {
        let existing = self.verdicts.get(key).await;
        self.stale_allow(existing, failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow() -> Judgement {
        serde_json::from_value(serde_json::json!({
            "outcome": "verified", "reasons": [], "warnings": [], "signatures": []
        }))
        .expect("judgement")
    }

    #[test]
    fn a_stale_judgement_is_never_kept_as_fresh() {
        let cache = VerdictCache::new(CacheSettings::default(), None);
        let mut j = allow();
        assert!(cache.ttl_for(&j).is_some());
        j.stale = true;
        assert_eq!(cache.ttl_for(&j), None, "neither stored nor shared");
        let back: Judgement =
            serde_json::from_value(serde_json::to_value(&j).expect("json")).expect("judgement");
        assert!(back.stale, "the flag survives the shared cache's encoding");
        assert!(
            !allow().stale,
            "absent means fresh: older entries read as before"
        );
    }

    #[test]
    fn an_index_judged_by_platforms_weighs_what_its_platforms_hold() {
        let single = allow();
        let mut index = allow();
        index.platforms = (0..8)
            .map(|i| {
                crate::verdict::PlatformVerdict::from_judgement(
                    format!("linux/arch{i}"),
                    format!("sha256:{}", "a".repeat(64)),
                    &Judgement::failed("no signature found for this platform manifest"),
                )
            })
            .collect();
        let (one, eight) = (weigh(&single), weigh(&index));
        assert!(
            eight >= one + 8 * (64 + "no signature found".len()),
            "{one} vs {eight}"
        );
    }

    /// An allow whose signature's outcome holds until `until` (e.g. its revocation data's
    /// `nextUpdate`).
    fn allow_until(until: time::OffsetDateTime) -> Judgement {
        let until = until
            .format(&time::format_description::well_known::Rfc3339)
            .expect("rfc3339");
        serde_json::from_value(serde_json::json!({
            "outcome": "verified", "reasons": [], "warnings": [],
            "signatures": [{"digest": "sha256:00", "envelope": "application/cose", "verified": true,
                "checks": [], "revocation": {"certificates": [], "validUntil": until},
                "validUntil": until}]
        }))
        .expect("judgement")
    }

    #[test]
    fn a_verdict_never_outlives_the_revocation_data_it_rests_on() {
        let cache = VerdictCache::new(CacheSettings::default(), None);
        let now = time::OffsetDateTime::now_utc();
        let ttl = cache
            .ttl_for(&allow_until(now + time::Duration::seconds(5)))
            .expect("cached");
        assert!(ttl <= Duration::from_secs(5), "{ttl:?}");
        assert!(ttl > Duration::from_secs(3), "{ttl:?}");
        // Data already past its nextUpdate: not cached at all.
        assert!(cache
            .ttl_for(&allow_until(now - time::Duration::seconds(1)))
            .is_none());
        // Data good for longer than allowTtl: allowTtl.
        assert_eq!(
            cache.ttl_for(&allow_until(now + time::Duration::days(7))),
            Some(CacheSettings::default().allow_ttl)
        );
        assert_eq!(
            cache.ttl_for(&allow()),
            Some(CacheSettings::default().allow_ttl)
        );
    }

    #[test]
    fn a_stale_allow_is_never_served_past_its_revocation_data() {
        let cache = VerdictCache::new(CacheSettings::default(), None);
        let now = time::OffsetDateTime::now_utc();
        let failed = Judgement::error("registry unreachable");
        let expired = cache.entry(
            Arc::new(allow_until(now - time::Duration::seconds(1))),
            Duration::from_secs(10),
        );
        assert!(cache.stale_allow(Some(expired), &failed).is_none());
        let current = cache.entry(
            Arc::new(allow_until(now + time::Duration::hours(1))),
            Duration::from_secs(10),
        );
        assert!(cache.stale_allow(Some(current), &failed).is_some());
    }

    fn key(i: usize) -> VerdictKey {
        VerdictKey::new(
            "registry.example",
            "team/app",
            &format!("sha256:{i:064x}"),
            Arc::from("fp"),
        )
    }

    #[tokio::test]
    async fn the_entry_bound_holds_as_well_as_the_byte_bound() {
        let cache = Arc::new(VerdictCache::new(
            CacheSettings {
                max_entries: 10,
                ..Default::default()
            },
            None,
        ));
        for i in 0..200 {
            let j = allow();
            cache
                .verdict(key(i), async move { j }, Duration::from_secs(5))
                .await;
        }
        let held = cache.len().await;
        assert!(held <= 10, "{held} verdicts held with max_entries 10");
        assert!(held > 0, "nothing held");
    }

    #[test]
    fn keys_show_the_reference_as_written() {
        let k = VerdictKey::new(
            "registry.example:5000",
            "team/app",
            "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
            Arc::from("0123:none"),
        );
        assert_eq!(
            k.flat(),
            "registry.example:5000/team/app@sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9#0123:none"
        );
        // The same digest in another repository is another key.
        let other = VerdictKey::new(
            "registry.example:5000",
            "team/other",
            "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
            Arc::from("0123:none"),
        );
        assert_ne!(k, other);
    }
}
