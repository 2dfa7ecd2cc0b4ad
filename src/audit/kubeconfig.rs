//! The cluster `vouch audit` talks to: the kubeconfig, read once through [`crate::files::read`]
//! (so a FIFO, a device or an oversized file is refused at once instead of hanging or
//! exhausting memory), or the in-cluster service account when no kubeconfig exists.
//!
//! Where to look is what kubectl and `kube::Config::infer` do: `--kubeconfig` when given, else
//! every path of `$KUBECONFIG` (merged, first value wins; paths that do not exist are skipped as
//! kubectl skips them), else `~/.kube/config`, else in-cluster. A kubeconfig that exists but
//! cannot be read is an error, never a silent switch to another cluster.
//!
//! The files a kubeconfig names — `certificate-authority`, `client-certificate`, `client-key` —
//! are read here too, through the same reader, and handed to kube as data. `tokenFile` is
//! checked through the reader but left for kube to read, because kube re-reads it as the token
//! rotates. Exec and auth-provider plugins are commands kube runs, not files. The in-cluster
//! service-account token and CA are read by kube from the kubelet's mount.

use std::path::{Path, PathBuf};

use base64::Engine;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Largest kubeconfig, and largest file one names.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Why no cluster configuration was found.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// A kubeconfig, or a file it names, could not be read.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// A kubeconfig is not valid.
    #[error("{path}: {reason}")]
    Invalid {
        /// The kubeconfig.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// No kubeconfig exists and this is not a pod.
    #[error("no cluster configuration: no kubeconfig ({looked}) and not in a cluster ({reason})")]
    None {
        /// Where a kubeconfig was looked for.
        looked: String,
        /// Why the in-cluster configuration failed.
        reason: String,
    },
}

/// The client configuration for `explicit` (`--kubeconfig`), or as kubectl finds it.
pub async fn config(explicit: Option<&Path>) -> Result<kube::Config, KubeconfigError> {
    let (paths, required) = match explicit {
        Some(p) => (vec![p.to_path_buf()], true),
        None => (default_paths(), false),
    };
    let mut merged: Option<Kubeconfig> = None;
    let mut first = None;
    for path in &paths {
        // Only a named `--kubeconfig` must exist; `$KUBECONFIG` entries and the default are
        // looked for.
        if !required && !exists(path) {
            continue;
        }
        let kc = read_one(path)?;
        first.get_or_insert_with(|| path.display().to_string());
        merged = Some(match merged {
            None => kc,
            Some(m) => m.merge(kc).map_err(|e| invalid(path, e))?,
        });
    }
    let Some(kc) = merged else {
        return kube::Config::incluster().map_err(|e| KubeconfigError::None {
            looked: looked(&paths),
            reason: e.to_string(),
        });
    };
    let label = first.unwrap_or_default();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| KubeconfigError::Invalid {
            path: label,
            reason: e.to_string(),
        })?;
    config.apply_debug_overrides();
    Ok(config)
}

/// `$KUBECONFIG`'s paths (empty entries ignored), else `~/.kube/config`.
fn default_paths() -> Vec<PathBuf> {
    if let Some(value) = std::env::var_os("KUBECONFIG") {
        let paths: Vec<PathBuf> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            return paths;
        }
    }
    std::env::home_dir()
        .map(|h| h.join(".kube").join("config"))
        .into_iter()
        .collect()
}

/// Whether anything is at `path`, links followed (a FIFO counts: reading it says what is wrong).
/// Looking does not open it, so it cannot block.
fn exists(path: &Path) -> bool {
    std::fs::metadata(path).is_ok()
}

fn looked(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "no $KUBECONFIG and no home directory".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn invalid(path: &Path, e: impl std::fmt::Display) -> KubeconfigError {
    KubeconfigError::Invalid {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// One kubeconfig file, with the files it names read in (relative to its directory, as kube
/// and kubectl resolve them).
fn read_one(path: &Path) -> Result<Kubeconfig, KubeconfigError> {
    let bytes = crate::files::read(path, MAX_FILE_BYTES)?;
    let text = decode(bytes).map_err(|e| invalid(path, e))?;
    let mut kc = Kubeconfig::from_yaml(&text).map_err(|e| invalid(path, e))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    for named in &mut kc.clusters {
        let Some(cluster) = named.cluster.as_mut() else {
            continue;
        };
        // Inline data wins over a file (kube, kubectl): the file is read only without it.
        if let Some(file) = cluster.certificate_authority.take() {
            if cluster.certificate_authority_data.is_none() {
                cluster.certificate_authority_data = Some(b64(read_named(dir, &file)?));
            }
        }
    }
    for named in &mut kc.auth_infos {
        let Some(user) = named.auth_info.as_mut() else {
            continue;
        };
        if let Some(file) = user.client_certificate.take() {
            if user.client_certificate_data.is_none() {
                user.client_certificate_data = Some(b64(read_named(dir, &file)?));
            }
        }
        if let Some(file) = user.client_key.take() {
            if user.client_key_data.is_none() {
                let data = b64(read_named(dir, &file)?);
                user.client_key_data = Some(secrecy::SecretString::from(data));
            }
        }
        if let Some(file) = user.token_file.as_mut() {
            // Refused here if it is not a small regular file; kube reads it again as it rotates.
            let full = dir.join(&*file);
            crate::files::read(&full, MAX_FILE_BYTES)?;
            if let Some(s) = full.to_str() {
                *file = s.to_string();
            }
        }
        if let Some(exec) = user.exec.as_mut() {
            // A relative command with a separator is relative to the kubeconfig (client-go).
            if let Some(cmd) = exec.command.as_mut() {
                if cmd.contains(std::path::MAIN_SEPARATOR) && Path::new(cmd.as_str()).is_relative()
                {
                    if let Some(s) = dir.join(&*cmd).to_str() {
                        *cmd = s.to_string();
                    }
                }
            }
        }
    }
    Ok(kc)
}

fn read_named(dir: &Path, file: &str) -> Result<Vec<u8>, KubeconfigError> {
    Ok(crate::files::read(&dir.join(file), MAX_FILE_BYTES)?)
}

/// The text of a kubeconfig: UTF-8, with or without a byte-order mark, or UTF-16 with one (as
/// kube reads them).
fn decode(bytes: Vec<u8>) -> Result<String, &'static str> {
    let utf16 = |rest: &[u8], word: fn([u8; 2]) -> u16| {
        let units: Vec<u16> = rest
            .chunks(2)
            .map(|c| word([c[0], c.get(1).copied().unwrap_or(0)]))
            .collect();
        String::from_utf16(&units).map_err(|_| "is not valid UTF-16")
    };
    match bytes.as_slice() {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        [0xEF, 0xBB, 0xBF, rest @ ..] => {
            String::from_utf8(rest.to_vec()).map_err(|_| "is not UTF-8 text")
        }
        _ => String::from_utf8(bytes).map_err(|_| "is not UTF-8 text"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority: ca.crt\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    tokenFile: token\n";

    #[test]
    fn named_files_are_read_relative_to_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), "CA").unwrap();
        std::fs::write(dir.path().join("token"), "t").unwrap();
        std::fs::write(dir.path().join("config"), KUBECONFIG).unwrap();
        let kc = read_one(&dir.path().join("config")).unwrap();
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.certificate_authority, None);
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0E="));
        let user = kc.auth_infos[0].auth_info.as_ref().unwrap();
        let token = dir.path().join("token");
        assert_eq!(user.token_file.as_deref(), token.to_str());
    }

    #[test]
    fn a_fifo_named_by_the_kubeconfig_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(dir.path().join("ca.crt"))
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::write(dir.path().join("token"), "t").unwrap();
        std::fs::write(dir.path().join("config"), KUBECONFIG).unwrap();
        let e = read_one(&dir.path().join("config"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ca.crt: is a FIFO (named pipe)"), "{e}");
    }

    #[test]
    fn utf16_and_bom_kubeconfigs_are_read() {
        assert_eq!(decode(b"\xEF\xBB\xBFab".to_vec()).unwrap(), "ab");
        assert_eq!(decode(b"\xFF\xFEa\0b\0".to_vec()).unwrap(), "ab");
        assert_eq!(decode(b"\xFE\xFF\0a\0b".to_vec()).unwrap(), "ab");
        assert!(decode(vec![0xC3]).is_err());
    }
}
