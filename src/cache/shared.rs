//! The optional verdict cache shared by webhook replicas, in Redis (`cache.redis.url`).
//!
//! Read-through and write-behind with the same keys and lifetimes as the local cache. Redis is
//! never on the critical path: every call has a short timeout, writes happen in the background,
//! and after a failure Redis is left alone for a few seconds (the replica runs on its local cache)
//! so that a dead Redis costs no admission any latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::VerdictKey;
use crate::metrics::Metrics;
use crate::verdict::Judgement;

/// How long Redis is left alone after a failure.
const BACKOFF: Duration = Duration::from_secs(5);
/// Largest cached verdict read back.
const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// `cache.redis` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db` (or `rediss://` for TLS).
    pub url: String,
    /// Time allowed for one Redis call (default 50ms).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Key prefix (default `vouch:v1:`).
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
}

fn default_timeout() -> Duration {
    Duration::from_millis(50)
}

fn default_prefix() -> String {
    "vouch:v1:".into()
}

struct Conn {
    conn: Option<redis::aio::MultiplexedConnection>,
    down_until: Option<Instant>,
}

/// A Redis-backed verdict cache.
#[derive(Clone)]
pub struct SharedCache {
    client: redis::Client,
    settings: RedisSettings,
    conn: Arc<Mutex<Conn>>,
    metrics: Option<Arc<Metrics>>,
}

impl SharedCache {
    /// `None` (with a log line) when the URL is not a Redis URL.
    pub fn new(settings: RedisSettings, metrics: Option<Arc<Metrics>>) -> Option<Self> {
        match redis::Client::open(settings.url.as_str()) {
            Ok(client) => Some(Self {
                client,
                settings,
                conn: Arc::new(Mutex::new(Conn {
                    conn: None,
                    down_until: None,
                })),
                metrics,
            }),
            Err(e) => {
                tracing::error!(error = %e, "cache.redis.url is not usable; running on the local cache only");
                None
            }
        }
    }

    fn key(&self, k: &VerdictKey) -> String {
        format!(
            "{}{}",
            self.settings.key_prefix,
            crate::registry::sha256_hex(k.flat().as_bytes())
        )
    }

    fn count(&self, kind: &'static str) {
        if let Some(m) = &self.metrics {
            Metrics::inc(&m.shared_cache, kind);
        }
    }

    async fn connection(&self) -> Option<redis::aio::MultiplexedConnection> {
        let mut state = self.conn.lock().await;
        if state.down_until.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        if let Some(c) = &state.conn {
            return Some(c.clone());
        }
        let attempt = tokio::time::timeout(
            self.settings.timeout * 4,
            self.client.get_multiplexed_async_connection(),
        )
        .await;
        match attempt {
            Ok(Ok(c)) => {
                state.conn = Some(c.clone());
                state.down_until = None;
                Some(c)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "shared cache unavailable; local cache only");
                state.down_until = Some(Instant::now() + BACKOFF);
                None
            }
            Err(_) => {
                tracing::warn!("shared cache connection timed out; local cache only");
                state.down_until = Some(Instant::now() + BACKOFF);
                None
            }
        }
    }

    async fn failed(&self) {
        self.count("error");
        let mut state = self.conn.lock().await;
        state.conn = None;
        state.down_until = Some(Instant::now() + BACKOFF);
    }

    /// A cached judgement and its remaining lifetime.
    pub async fn get(&self, k: &VerdictKey) -> Option<(Judgement, Duration)> {
        let mut conn = self.connection().await?;
        let key = self.key(k);
        let mut pipe = redis::pipe();
        pipe.get(&key).cmd("PTTL").arg(&key);
        let call = pipe.query_async::<(Option<Vec<u8>>, i64)>(&mut conn);
        match tokio::time::timeout(self.settings.timeout, call).await {
            Ok(Ok((Some(bytes), pttl))) if pttl > 0 && bytes.len() <= MAX_VALUE_BYTES => {
                match serde_json::from_slice::<Judgement>(&bytes) {
                    Ok(j) => Some((j, Duration::from_millis(pttl as u64))),
                    Err(e) => {
                        tracing::warn!(error = %e, "ignoring an unreadable shared cache entry");
                        None
                    }
                }
            }
            Ok(Ok(_)) => None,
            Ok(Err(_)) | Err(_) => {
                self.failed().await;
                None
            }
        }
    }

    /// Store a judgement in the background.
    pub fn put(&self, k: &VerdictKey, j: &Judgement, ttl: Duration) {
        let Ok(value) = serde_json::to_vec(j) else {
            return;
        };
        let key = self.key(k);
        let this = self.clone();
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        tokio::spawn(async move {
            let Some(mut conn) = this.connection().await else {
                return;
            };
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key).arg(value).arg("PX").arg(millis);
            let call = cmd.query_async::<()>(&mut conn);
            match tokio::time::timeout(this.settings.timeout * 2, call).await {
                Ok(Ok(())) => this.count("write"),
                _ => this.failed().await,
            }
        });
    }
}
