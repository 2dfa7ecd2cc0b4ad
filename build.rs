//! Records the git revision vouch is built from, for `vouch --version` and the image's labels.
//!
//! The revision comes from `VOUCH_GIT_REVISION` when set (container builds, whose context leaves
//! `.git` out, pass it as a build argument), else from `git rev-parse HEAD`, else it is
//! `unknown`: a source tarball without git still builds. It is written to
//! `$OUT_DIR/git-revision` and read only by the binary (`src/main.rs`), so a new commit relinks
//! the binary without rebuilding the library.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=VOUCH_GIT_REVISION");
    let revision = match std::env::var("VOUCH_GIT_REVISION") {
        Ok(given) if !given.trim().is_empty() => {
            let given = given.trim().to_string();
            let plain = given.len() <= 64
                && given
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
            if !plain {
                // An explicit setting that is not a revision is a mistake worth stopping for.
                eprintln!("VOUCH_GIT_REVISION must be a git revision (at most 64 characters of [0-9A-Za-z._+-]), got {given:?}");
                std::process::exit(1);
            }
            given
        }
        _ => git_revision().unwrap_or_else(|| "unknown".to_string()),
    };
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out).join("git-revision"), revision)
        .expect("write $OUT_DIR/git-revision");
}

/// `git rev-parse HEAD` of the checkout, asking cargo to run this again when HEAD moves.
fn git_revision() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let revision = git(&["rev-parse", "HEAD"])?;
    // HEAD, the branch it names and packed-refs: what a commit, checkout or fetch rewrites.
    // Each path is resolved by git, which knows worktrees; only existing files are named, as
    // cargo re-runs the script on every build for a missing one.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name]) {
            if Path::new(&path).is_file() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    Some(revision)
}
