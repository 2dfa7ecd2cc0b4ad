//! Polling for changed files. Kubernetes updates mounted ConfigMaps and Secrets by swapping a
//! `..data` symlink, which inotify on the file itself does not see; a cheap periodic look at
//! size, modification time and content of the resolved files sees every update.

use std::path::Path;

/// A fingerprint of files and directory trees (following symlinks): changes when any file's
/// content, size or set of files changes.
pub fn fingerprint(paths: &[&Path]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in paths {
        walk(p, &mut ctx, 0);
    }
    hex::encode(ctx.finish())
}

fn walk(path: &Path, ctx: &mut aws_lc_rs::digest::Context, depth: usize) {
    ctx.update(path.as_os_str().as_encoded_bytes());
    if depth > 6 {
        return;
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            entries.sort();
            for e in entries {
                if e.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(".."))
                {
                    continue;
                }
                walk(&e, ctx, depth + 1);
            }
        }
        Ok(meta) if meta.len() <= 1024 * 1024 => {
            ctx.update(&meta.len().to_le_bytes());
            if let Ok(bytes) = std::fs::read(path) {
                ctx.update(&bytes);
            }
        }
        Ok(meta) => ctx.update(&meta.len().to_le_bytes()),
        Err(_) => ctx.update(b"<missing>"),
    }
}
