//! A bounded, watch-backed map of what vouch needs from one kind of Kubernetes object: the
//! kube-rs watcher (`kube::runtime::watcher`: a paged list, then a watch from its
//! `resourceVersion` with bookmarks, a relist on `410 Gone`, backoff on errors) feeds a map of
//! (namespace, name) → the small value `extract` keeps of the object (parsed credentials,
//! pull-secret names, labels), never the object itself.
//!
//! Not a kube-rs `reflector::Store` because a store keeps whole objects (every Secret's data and
//! managed fields) and has no bound; this keeps only the extracted value, at most `cap`
//! entries weighing at most `budget` bytes in all (each entry weighed by its key and the
//! caller's `weigh`), and says so once in the log when a bound is reached (names past it are
//! read by the caller's direct GET, see [`super::Tenancy`]). While a relist is being gathered
//! it is a second map with the same bounds, so at most twice the bounds are held for a moment.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use serde::de::DeserializeOwned;

/// (namespace — empty for cluster-scoped objects —, name).
pub type Key = (String, String);

/// What each entry costs besides its value: the key's strings and the map's slot.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Key>() + 2 * std::mem::size_of::<usize>();

/// Entries and their total weight.
struct Entries<V> {
    map: HashMap<Key, (V, usize)>,
    bytes: usize,
}

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            bytes: 0,
        }
    }
}

/// The map a watch keeps up to date.
pub struct Watched<V> {
    what: &'static str,
    cap: usize,
    budget: usize,
    weigh: fn(&V) -> usize,
    entries: RwLock<Entries<V>>,
    synced: AtomicBool,
    full_logged: AtomicBool,
}

impl<V: Clone + Send + Sync + 'static> Watched<V> {
    /// An empty map of `what` (for logs), holding at most `cap` entries of at most `budget`
    /// bytes in all, each value weighing `weigh` bytes.
    pub fn new(what: &'static str, cap: usize, budget: usize, weigh: fn(&V) -> usize) -> Arc<Self> {
        Arc::new(Self {
            what,
            cap,
            budget,
            weigh,
            entries: RwLock::new(Entries::default()),
            synced: AtomicBool::new(false),
            full_logged: AtomicBool::new(false),
        })
    }

    /// Whether the first list has been applied (until then a miss means nothing).
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// The value kept for (namespace, name).
    pub fn get(&self, namespace: &str, name: &str) -> Option<V> {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .get(&(namespace.to_string(), name.to_string()))
            .map(|(v, _)| v.clone())
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    /// Bytes held now, as weighed.
    pub fn bytes(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).bytes
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Set (or, with `None`, remove) `key` in `into`. A value past a bound is not kept — nor
    /// is the key's previous value, which is stale now: the name is read by GET instead.
    fn insert_into(&self, into: &mut Entries<V>, key: Key, value: Option<V>) {
        if let Some((_, old)) = into.map.remove(&key) {
            into.bytes -= old;
        }
        let Some(value) = value else {
            return;
        };
        let weight = ENTRY_OVERHEAD + key.0.len() + key.1.len() + (self.weigh)(&value);
        let bound = if into.map.len() >= self.cap {
            Some(format!("{} entries", self.cap))
        } else if into.bytes + weight > self.budget {
            Some(format!("{} bytes", self.budget))
        } else {
            None
        };
        if let Some(bound) = bound {
            if !self.full_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    what = self.what,
                    bound = %bound,
                    "watch cache full ({bound}): further {} are not cached and are read from the API server when an admission needs them",
                    self.what
                );
            }
            return;
        }
        into.bytes += weight;
        into.map.insert(key, (value, weight));
    }

    fn apply(&self, key: Key, value: Option<V>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.insert_into(&mut entries, key, value);
    }

    fn replace(&self, fresh: Entries<V>) {
        let n = fresh.map.len();
        let bytes = fresh.bytes;
        *self.entries.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        if !self.synced.swap(true, Ordering::AcqRel) {
            tracing::info!(what = self.what, entries = n, bytes, "watch cache synced");
        }
    }
}

fn key_of<K: Resource>(obj: &K) -> Key {
    let meta = obj.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Keep `into` up to date from a watch of `api` (with `config`'s selectors) until the task is
/// aborted; `extract` is what is kept of an object (`None`: nothing, the key is dropped).
pub fn spawn<K, V>(
    api: Api<K>,
    config: watcher::Config,
    into: Arc<Watched<V>>,
    extract: fn(&K) -> Option<V>,
) -> tokio::task::JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    tokio::spawn(async move {
        let mut events = watcher::watcher(api, config).default_backoff().boxed();
        // The relist in progress: replaces the map whole when done, so objects deleted while
        // the watch was down disappear.
        let mut relist: Option<Entries<V>> = None;
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => relist = Some(Entries::default()),
                Ok(Event::InitApply(obj)) => {
                    let entries = relist.get_or_insert_with(Entries::default);
                    into.insert_into(entries, key_of(&obj), extract(&obj));
                }
                Ok(Event::InitDone) => into.replace(relist.take().unwrap_or_default()),
                Ok(Event::Apply(obj)) => into.apply(key_of(&obj), extract(&obj)),
                Ok(Event::Delete(obj)) => into.apply(key_of(&obj), None),
                Err(e) => {
                    // The watcher backs off and retries; admissions meanwhile read by GET.
                    let forbidden = matches!(&e, watcher::Error::InitialListFailed(kube::Error::Api(s))
                        | watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 403);
                    if forbidden {
                        tracing::warn!(what = into.what, error = %e, "cannot list/watch {} cluster-wide (RBAC: the chart's pullCredentials ClusterRole grants it); reading them by GET per admission instead", into.what);
                    } else {
                        tracing::warn!(what = into.what, error = %e, "watch of {} failed; retrying", into.what);
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        ("ns".into(), name.into())
    }

    #[test]
    fn values_past_the_byte_budget_are_not_kept_and_drop_their_stale_value() {
        let weigh: fn(&String) -> usize = String::len;
        let small = ENTRY_OVERHEAD + "ns".len() + "a1".len() + 100;
        let w = Watched::new("things", 100, 3 * small, weigh);
        for name in ["a1", "a2", "a3", "a4"] {
            w.apply(key(name), Some("x".repeat(100)));
        }
        assert_eq!(w.len(), 3, "the fourth is over the budget");
        assert_eq!(w.bytes(), 3 * small);
        assert!(w.get("ns", "a4").is_none());
        // Replacing a value frees the old one's weight first.
        w.apply(key("a1"), Some("y".repeat(100)));
        assert_eq!(w.get("ns", "a1").as_deref(), Some(&*"y".repeat(100)));
        // A replacement too heavy to keep drops the old value: it is stale, the GET answers.
        w.apply(key("a2"), Some("z".repeat(10_000)));
        assert!(w.get("ns", "a2").is_none());
        assert_eq!(w.bytes(), 2 * small);
        // Deleting frees its weight; a value heavier than the whole budget is never kept.
        w.apply(key("a1"), None);
        assert_eq!((w.len(), w.bytes()), (1, small));
        w.apply(key("huge"), Some("h".repeat(4 * small)));
        assert_eq!((w.len(), w.bytes()), (1, small));
    }

    #[test]
    fn the_entry_cap_still_holds() {
        let weigh: fn(&String) -> usize = String::len;
        let w = Watched::new("things", 2, usize::MAX, weigh);
        for name in ["a", "b", "c"] {
            w.apply(key(name), Some(String::new()));
        }
        assert_eq!(w.len(), 2);
        assert!(w.get("ns", "c").is_none());
    }
}
