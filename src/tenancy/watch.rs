//! A bounded, watch-backed map of what vouch needs from one kind of Kubernetes object: the
//! kube-rs watcher (`kube::runtime::watcher`: a paged list, then a watch from its
//! `resourceVersion` with bookmarks, a relist on `410 Gone`, backoff on errors) feeds a map of
//! (namespace, name) → the small value `extract` keeps of the object (parsed credentials,
//! pull-secret names, labels), never the object itself.
//!
//! Not a kube-rs `reflector::Store` because a store keeps whole objects (every Secret's data and
//! managed fields) and has no bound; this keeps only the extracted value, at most `cap`
//! entries, and says so once in the log when the cap is reached (names past it are read by the
//! caller's direct GET, see [`super::Tenancy`]).

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

/// The map a watch keeps up to date.
pub struct Watched<V> {
    what: &'static str,
    cap: usize,
    map: RwLock<HashMap<Key, V>>,
    synced: AtomicBool,
    full_logged: AtomicBool,
}

impl<V: Clone + Send + Sync + 'static> Watched<V> {
    /// An empty map of `what` (for logs), holding at most `cap` entries.
    pub fn new(what: &'static str, cap: usize) -> Arc<Self> {
        Arc::new(Self {
            what,
            cap,
            map: RwLock::default(),
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
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert_into(&self, map: &mut HashMap<Key, V>, key: Key, value: Option<V>) {
        let Some(value) = value else {
            map.remove(&key);
            return;
        };
        if map.len() >= self.cap && !map.contains_key(&key) {
            if !self.full_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    what = self.what,
                    cap = self.cap,
                    "watch cache full: further {} are not cached and are read from the API server when an admission needs them",
                    self.what
                );
            }
            return;
        }
        map.insert(key, value);
    }

    fn apply(&self, key: Key, value: Option<V>) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        self.insert_into(&mut map, key, value);
    }

    fn replace(&self, fresh: HashMap<Key, V>) {
        let n = fresh.len();
        *self.map.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        if !self.synced.swap(true, Ordering::AcqRel) {
            tracing::info!(what = self.what, entries = n, "watch cache synced");
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
        let mut relist: Option<HashMap<Key, V>> = None;
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => relist = Some(HashMap::new()),
                Ok(Event::InitApply(obj)) => {
                    let map = relist.get_or_insert_with(HashMap::new);
                    into.insert_into(map, key_of(&obj), extract(&obj));
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
