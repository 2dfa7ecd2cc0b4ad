//! Polling for changed files. Kubernetes updates mounted ConfigMaps and Secrets by swapping a
//! `..data` symlink, which inotify on the file itself does not see; a cheap periodic look at
//! size, modification time and content of the resolved files sees every update.
//!
//! The looks and the reloads they trigger run on blocking threads, never on the async runtime,
//! and read through [`crate::files`]: a FIFO or device dropped into a watched directory is
//! noted, not read (the reload then refuses it with a log line), and the walk visits each
//! directory once (symlink loops) within a bounded depth and number of entries.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::files::{self, Kind, Problem};

/// Largest file whose content is hashed; larger files count by size and modification time.
const MAX_HASHED_BYTES: u64 = 1024 * 1024;
/// Deepest directory level looked at.
const MAX_DEPTH: usize = 6;
/// Most directory entries looked at in one look.
const MAX_ENTRIES: usize = 4096;

/// A fingerprint of files and directory trees (following symlinks): changes when any file's
/// content, size or set of files changes. Reads files: call it off the async runtime.
pub fn fingerprint(paths: &[&Path]) -> String {
    let mut walk = Walk {
        ctx: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
        seen: HashSet::new(),
        entries: 0,
    };
    for p in paths {
        walk.visit(p, 0);
    }
    hex::encode(walk.ctx.finish())
}

/// Look at `paths` every `every`; when their fingerprint changes, call `reload`. Both run on
/// blocking threads, so a slow or hostile file never stalls the webhook; dropping the future
/// (aborting the task) stops the watch.
pub async fn on_change<F>(paths: Vec<PathBuf>, every: Duration, reload: F)
where
    F: Fn() + Send + Sync + 'static,
{
    let paths = Arc::new(paths);
    let reload = Arc::new(reload);
    let look = |paths: Arc<Vec<PathBuf>>| async move {
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
            fingerprint(&refs)
        })
        .await
        .ok()
    };
    let mut last = look(paths.clone()).await;
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let now = look(paths.clone()).await;
        if now.is_none() || now == last {
            continue;
        }
        last = now;
        let reload = reload.clone();
        let _ = tokio::task::spawn_blocking(move || reload()).await;
    }
}

struct Walk {
    ctx: aws_lc_rs::digest::Context,
    seen: HashSet<(u64, u64)>,
    entries: usize,
}

impl Walk {
    fn visit(&mut self, path: &Path, depth: usize) {
        self.ctx.update(path.as_os_str().as_encoded_bytes());
        if depth > MAX_DEPTH {
            return;
        }
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(_) => return self.ctx.update(b"<missing>"),
        };
        self.ctx.update(&meta.len().to_le_bytes());
        match Kind::of(meta.file_type()) {
            Some(Kind::Directory) => {
                if !self.seen.insert((meta.dev(), meta.ino())) {
                    return self.ctx.update(b"<seen>");
                }
                let room = MAX_ENTRIES.saturating_sub(self.entries);
                let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                    .map(|rd| {
                        rd.take(room)
                            .filter_map(|e| e.ok().map(|e| e.path()))
                            .collect()
                    })
                    .unwrap_or_default();
                self.entries += entries.len();
                entries.sort();
                for e in entries {
                    if e.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(".."))
                    {
                        continue;
                    }
                    self.visit(&e, depth + 1);
                }
            }
            // Not opened: its kind is part of the fingerprint, the reload says what is wrong.
            Some(kind) => self.ctx.update(kind.to_string().as_bytes()),
            None => match files::read(path, MAX_HASHED_BYTES) {
                Ok(bytes) => self.ctx.update(&bytes),
                Err(e) => {
                    if let Problem::TooLarge { .. } = e.problem {
                        let mtime = meta.mtime().to_le_bytes();
                        self.ctx.update(&mtime);
                    }
                    self.ctx.update(e.problem.to_string().as_bytes());
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn symlink_loops_fifos_and_devices_are_looked_at_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("ca.crt"), "x").unwrap();
        for l in ["l1", "l2", "l3", "l4", "l5"] {
            std::os::unix::fs::symlink(".", root.join(l)).unwrap();
        }
        std::os::unix::fs::symlink("/dev/zero", root.join("zero.crt")).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(root.join("dropped.crt"))
            .status()
            .unwrap();
        assert!(status.success());
        let started = Instant::now();
        let before = fingerprint(&[root]);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(before, fingerprint(&[root]));
        std::fs::write(root.join("ca.crt"), "y").unwrap();
        assert_ne!(before, fingerprint(&[root]));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_watch_runs_off_the_runtime_and_calls_reload_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.json");
        std::fs::write(&file, "1").unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let watch = tokio::spawn(on_change(
            vec![file.clone()],
            Duration::from_millis(20),
            move || {
                let _ = tx.send(());
            },
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::fs::write(&file, "2").unwrap();
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("reload called")
            .expect("channel open");
        watch.abort();
    }
}
