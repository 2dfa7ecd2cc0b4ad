//! CRLs kept on disk in the notation CLI's own cache layout, so that a CI machine running
//! `vouch verify` and `notation verify` downloads each CRL once between them (notation-go
//! `verifier/crl/crl.go` `FileCache`, used by notation's `internal/revocation`):
//!
//! - the directory is `${NOTATION_CACHE:-$XDG_CACHE_HOME/notation}/crl` (`~/.cache` without
//!   `XDG_CACHE_HOME`), created with mode 0700 ([`notation_crl_dir`]);
//! - one file per distribution point URL, named `hex(sha256(url))`;
//! - holding the JSON `{"baseCRL":"<base64 DER>","deltaCRL":"<base64 DER>"}` (standard base64,
//!   `deltaCRL` left out when there is none), written to a temporary file in the directory and
//!   renamed over the old one, so a reader sees the old file or the new one, never half of one;
//! - a stored bundle is a hit only while its base (and delta) `nextUpdate` is set and not
//!   passed; a hit is still validated in full on every use by the checker.
//!
//! Everything read is untrusted: a file larger than two CRLs of the size limit could hold, a
//! file that is not that JSON, or that holds something other than CRLs, is an error the caller
//! treats as a miss. Nothing here panics on what it reads.

use std::borrow::Cow;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use time::OffsetDateTime;

use super::crl::{self, Crl};

/// Largest CRL accepted from a file, as from the network (notation refuses exactly 32 MiB).
const MAX_CRL: usize = crl::MAX_CRL_SIZE - 1;

/// Largest cache file read: a base and a delta of [`MAX_CRL`] bytes each, in base64, and the
/// JSON around them.
pub const MAX_FILE_SIZE: u64 = (2 * MAX_CRL.div_ceil(3) * 4 + 1024) as u64;

/// A cache file that could not be used or written. Never fails a revocation check: the
/// checker logs and counts it, and goes on as for a miss.
#[derive(Debug, thiserror::Error)]
pub enum DiskCacheError {
    /// The file exists but could not be read (permissions, not a regular file, too large).
    #[error("cannot read CRL cache file {0}")]
    Read(#[source] crate::files::FileError),
    /// The file is not a CRL bundle in notation's format.
    #[error("CRL cache file {path} is not usable: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory is not the user's own: files others may plant there are not trusted
    /// (a genuine CRL of another partition of the same CA would hide a revocation).
    #[error("the CRL cache directory {0} is not used: it is owned by another user or writable by others")]
    NotPrivate(String),
    /// The bundle could not be stored.
    #[error("cannot store CRL cache file {path}: {source}")]
    Write {
        /// The file (or the directory, when it could not be created).
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// notation's CRL cache directory for this environment: `$NOTATION_CACHE/crl`, else
/// `$XDG_CACHE_HOME/notation/crl` (an absolute `XDG_CACHE_HOME` only, as Go's
/// `os.UserCacheDir`), else `$HOME/.cache/notation/crl`; `None` when none of them is set. Empty
/// variables count as unset, as notation's.
pub fn notation_crl_dir() -> Option<PathBuf> {
    crl_dir_from(|name| std::env::var_os(name))
}

/// [`notation_crl_dir`] with the environment read through `env`.
fn crl_dir_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let var = |name| env(name).filter(|v| !v.is_empty());
    let cache = match var("NOTATION_CACHE") {
        Some(d) => PathBuf::from(d),
        None => match var("XDG_CACHE_HOME") {
            Some(x) if Path::new(&x).is_absolute() => PathBuf::from(x).join("notation"),
            // Go refuses a relative one (and notation then uses `./.notation/cache`, which a CI
            // job's working directory should not receive): no cache.
            Some(_) => return None,
            None => PathBuf::from(var("HOME")?).join(".cache/notation"),
        },
    };
    Some(cache.join("crl"))
}

/// The JSON of one cache file, as notation-go writes it (`fileCacheContent`).
#[derive(serde::Deserialize, serde::Serialize)]
struct Content<'a> {
    #[serde(rename = "baseCRL", borrow)]
    base: Cow<'a, str>,
    #[serde(
        rename = "deltaCRL",
        default,
        borrow,
        skip_serializing_if = "Option::is_none"
    )]
    delta: Option<Cow<'a, str>>,
}

/// A directory of CRL bundles in notation's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskCache {
    root: PathBuf,
}

impl DiskCache {
    /// The cache in `root` (created on the first store).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file name for a distribution point: `hex(sha256(url))`.
    pub fn file_name(url: &str) -> String {
        crate::registry::sha256_hex(url.as_bytes())
    }

    /// The file for a distribution point.
    pub fn path(&self, url: &str) -> PathBuf {
        self.root.join(Self::file_name(url))
    }

    /// The bundle stored for `url` (base, and delta when stored) when it is still effective at
    /// `now`: `Ok(None)` when there is none or it has expired (a miss), an error when the file
    /// is there but unusable (also a miss for the caller). Blocking: call it off the runtime.
    pub fn get(
        &self,
        url: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(Crl, Option<Crl>)>, DiskCacheError> {
        if !self.root.exists() {
            return Ok(None);
        }
        self.check_private()?;
        let path = self.path(url);
        let bytes = match crate::files::read(&path, MAX_FILE_SIZE) {
            Ok(b) => b,
            Err(e) => {
                if let crate::files::Problem::Io(io) = &e.problem {
                    if io.kind() == std::io::ErrorKind::NotFound {
                        return Ok(None);
                    }
                }
                return Err(DiskCacheError::Read(e));
            }
        };
        let corrupt = |reason: String| DiskCacheError::Corrupt {
            path: path.display().to_string(),
            reason,
        };
        let content: Content<'_> =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("invalid JSON: {e}")))?;
        let decode = |what: &str, b64: &str| -> Result<Crl, DiskCacheError> {
            // Refused before decoding: base64 is 4 bytes for every 3.
            if b64.len() > MAX_CRL.div_ceil(3) * 4 {
                return Err(corrupt(format!(
                    "{what} CRL is larger than {MAX_CRL} bytes"
                )));
            }
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| corrupt(format!("{what} CRL is not base64: {e}")))?;
            if der.len() > MAX_CRL {
                return Err(corrupt(format!(
                    "{what} CRL is larger than {MAX_CRL} bytes"
                )));
            }
            let crl = crl::parse(der).map_err(|e| corrupt(format!("{what} CRL: {e}")))?;
            if crl.next_update().is_none() {
                return Err(corrupt(format!("{what} CRL does not contain NextUpdate")));
            }
            Ok(crl)
        };
        let base = decode("base", &content.base)?;
        let delta = content
            .delta
            .as_deref()
            .map(|d| decode("delta", d))
            .transpose()?;
        // A base naming delta CRLs is never used without one (nor is it stored without one).
        match (crl::delta_urls(&base), &delta) {
            (Err(e), _) => return Err(corrupt(format!("base CRL: {e}"))),
            (Ok(urls), None) if !urls.is_empty() => {
                return Err(corrupt(
                    "the base CRL names delta CRLs and no delta CRL is stored".into(),
                ))
            }
            _ => {}
        }
        let effective =
            base.is_effective(now) && delta.as_ref().is_none_or(|d| d.is_effective(now));
        if !effective {
            tracing::debug!(url, path = %path.display(), "CRL bundle in the file cache has expired");
            return Ok(None);
        }
        Ok(Some((base, delta)))
    }

    /// The directory must be the effective user's and writable by no one else (notation
    /// creates it 0700; an existing shared one, e.g. under `/tmp`, is refused).
    fn check_private(&self) -> Result<(), DiskCacheError> {
        use std::os::unix::fs::MetadataExt;
        let not_private = || DiskCacheError::NotPrivate(self.root.display().to_string());
        let meta = std::fs::metadata(&self.root).map_err(|_| not_private())?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me || meta.mode() & 0o022 != 0 {
            return Err(not_private());
        }
        Ok(())
    }

    /// Store the bundle for `url` (the DER of its base and delta), replacing any stored one
    /// atomically: written to a temporary file in the directory (mode 0600), then renamed.
    /// Creates the directory (mode 0700) when missing. Blocking: call it off the runtime.
    pub fn set(&self, url: &str, base: &[u8], delta: Option<&[u8]>) -> Result<(), DiskCacheError> {
        let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
        let content = Content {
            base: Cow::Owned(b64(base)),
            delta: delta.map(|d| Cow::Owned(b64(d))),
        };
        let json = serde_json::to_vec(&content).map_err(|e| DiskCacheError::Write {
            path: self.path(url).display().to_string(),
            source: e.into(),
        })?;
        let failed = |path: &Path| {
            let path = path.display().to_string();
            move |source| DiskCacheError::Write { path, source }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(failed(&self.root))?;
        self.check_private()?;
        let path = self.path(url);
        let mut tmp = tempfile::Builder::new()
            .prefix("notation-")
            .tempfile_in(&self.root)
            .map_err(failed(&self.root))?;
        tmp.write_all(&json).map_err(failed(tmp.path()))?;
        // On failure the temporary file is removed when dropped.
        tmp.persist(&path).map_err(|e| failed(&path)(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn vectors() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/revocation/notation-e2e/crl")
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(vectors().join(name)).expect("CRL fixture")
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn file_names_are_the_sha256_of_the_url_as_notation_names_them() {
        // The names notation gave the e2e distribution points' cache files.
        assert_eq!(
            DiskCache::file_name("http://localhost:10086/leaf.crl"),
            "eaf8bbfe35f6c2c8b136081de9a994f9515752b2e30b9a6889ae3128ea97656c"
        );
        assert_eq!(
            DiskCache::file_name("http://localhost:10086/intermediate.crl"),
            "ec59c7c03c08507daa79ac3aebb1a2bdc1ee82c10df3ceedd9f3ee7e70c3435c"
        );
    }

    #[test]
    fn the_directory_is_notations_for_the_environment() {
        fn env<'a>(
            vars: &'a [(&'a str, &'a str)],
        ) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        }
        let all = [
            ("NOTATION_CACHE", "/n"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(crl_dir_from(env(&all)), Some("/n/crl".into()));
        assert_eq!(crl_dir_from(env(&all[1..])), Some("/x/notation/crl".into()));
        assert_eq!(
            crl_dir_from(env(&all[2..])),
            Some("/h/.cache/notation/crl".into())
        );
        // Empty is unset; a relative XDG_CACHE_HOME is refused, as by Go.
        let empty = [
            ("NOTATION_CACHE", ""),
            ("XDG_CACHE_HOME", ""),
            ("HOME", "/h"),
        ];
        assert_eq!(
            crl_dir_from(env(&empty)),
            Some("/h/.cache/notation/crl".into())
        );
        assert_eq!(
            crl_dir_from(env(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")])),
            None
        );
        assert_eq!(crl_dir_from(env(&[])), None);
    }

    #[test]
    fn a_stored_bundle_reads_back_in_notations_json_with_a_private_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(tmp.path().join("notation/crl"));
        let url = "http://localhost:10086/leaf.crl";
        let (leaf, inter) = (fixture("leaf.crl"), fixture("intermediate.crl"));
        cache.set(url, &leaf, None).unwrap();
        let mode = std::fs::metadata(cache.root())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
        let file = cache.path(url);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        // Byte for byte what Go's json.Marshal writes for fileCacheContent.
        let b64 = base64::engine::general_purpose::STANDARD.encode(&leaf);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!(r#"{{"baseCRL":"{b64}"}}"#)
        );
        let (base, delta) = cache.get(url, now()).unwrap().expect("hit");
        assert_eq!(base.der(), &leaf[..]);
        assert!(delta.is_none());
        // With a delta (any CRL will do for the layout), replacing the first file.
        cache.set(url, &leaf, Some(&inter)).unwrap();
        let (base, delta) = cache.get(url, now()).unwrap().expect("hit");
        assert_eq!(base.der(), &leaf[..]);
        assert_eq!(delta.expect("delta").der(), &inter[..]);
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(cache.root()).unwrap().count(), 1);
        // Another URL is a miss.
        assert!(cache
            .get("http://localhost:10086/other.crl", now())
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_file_written_as_notation_writes_it_is_read() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(tmp.path());
        let url = "http://example.test/leaf.crl";
        let leaf = fixture("leaf.crl");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&leaf);
        // Go also accepts an explicit null delta and unknown fields.
        std::fs::write(
            cache.path(url),
            format!(r#"{{"baseCRL": "{b64}", "deltaCRL": null, "extra": 1}}"#),
        )
        .unwrap();
        let (base, delta) = cache.get(url, now()).unwrap().expect("hit");
        assert_eq!(base.der(), &leaf[..]);
        assert!(delta.is_none());
    }

    #[test]
    fn an_expired_bundle_is_a_miss() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(tmp.path());
        let url = "http://localhost:10086/leaf.crl";
        // nextUpdate 2023-12-25: notation's e2e seed for an expired cache entry.
        cache.set(url, &fixture("leaf_expired.crl"), None).unwrap();
        assert!(cache.get(url, now()).unwrap().is_none());
        // Before its nextUpdate the same file is a hit.
        let before = time::macros::datetime!(2023-12-24 12:00 UTC);
        assert!(cache.get(url, before).unwrap().is_some());
        // An expired delta makes the bundle a miss too.
        cache
            .set(
                url,
                &fixture("leaf.crl"),
                Some(&fixture("leaf_expired.crl")),
            )
            .unwrap();
        assert!(cache.get(url, now()).unwrap().is_none());
    }

    #[test]
    fn a_base_naming_delta_crls_is_used_only_with_its_delta() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/vectors/revocation/notation-core-go/crl-testdata");
        let base = std::fs::read(dir.join("crlWithMultipleFreshestCRLs.crl")).unwrap();
        let delta = std::fs::read(dir.join("delta.crl")).unwrap();
        // Both current until 2024-11-25T07:36:40Z.
        let then = time::macros::datetime!(2024-11-25 07:33 UTC);
        let tmp = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(tmp.path());
        let url = "http://example.test/base.crl";
        cache.set(url, &base, None).unwrap();
        let err = cache.get(url, then).unwrap_err();
        assert!(err.to_string().contains("no delta CRL is stored"), "{err}");
        cache.set(url, &base, Some(&delta)).unwrap();
        let (_, d) = cache.get(url, then).unwrap().expect("hit");
        assert_eq!(d.expect("delta").der(), &delta[..]);
    }

    #[test]
    fn a_directory_others_may_write_is_not_used() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("crl");
        let cache = DiskCache::new(&root);
        let url = "http://localhost:10086/leaf.crl";
        cache.set(url, &fixture("leaf.crl"), None).unwrap();
        assert!(cache.get(url, now()).unwrap().is_some());
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        for err in [
            cache.get(url, now()).unwrap_err(),
            cache.set(url, &fixture("leaf.crl"), None).unwrap_err(),
        ] {
            assert!(matches!(err, DiskCacheError::NotPrivate(_)), "{err}");
        }
    }

    #[test]
    fn corrupt_or_oversized_files_are_errors_not_panics() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(tmp.path());
        let url = "http://localhost:10086/leaf.crl";
        let b64 = base64::engine::general_purpose::STANDARD.encode(fixture("leaf.crl"));
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"not json".to_vec(),
            br#"{"deltaCRL":"AAAA"}"#.to_vec(),
            br#"{"baseCRL":"!!!"}"#.to_vec(),
            br#"{"baseCRL":"AAAA"}"#.to_vec(),
            format!(r#"{{"baseCRL":"{}"}}"#, &b64[..b64.len() / 2]).into_bytes(),
            format!(r#"{{"baseCRL":"{b64}","deltaCRL":"AAAA"}}"#).into_bytes(),
            format!(r#"{{"baseCRL":"{b64}","deltaCRL":7}}"#).into_bytes(),
            vec![0xff; 100],
        ];
        for bytes in cases {
            std::fs::write(cache.path(url), &bytes).unwrap();
            let err = cache.get(url, now()).unwrap_err();
            assert!(
                matches!(err, DiskCacheError::Corrupt { .. }),
                "{:?}: {err}",
                String::from_utf8_lossy(&bytes)
            );
        }
        // A base64 string longer than a CRL may be is refused before it is decoded.
        let long = "A".repeat(MAX_CRL.div_ceil(3) * 4 + 4);
        std::fs::write(cache.path(url), format!(r#"{{"baseCRL":"{long}"}}"#)).unwrap();
        let err = cache.get(url, now()).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        // A file larger than any bundle is not read at all (sparse: no disk used).
        let f = std::fs::File::create(cache.path(url)).unwrap();
        f.set_len(MAX_FILE_SIZE + 1).unwrap();
        let err = cache.get(url, now()).unwrap_err();
        assert!(matches!(err, DiskCacheError::Read(_)), "{err}");
        // A directory where the file should be.
        std::fs::remove_file(cache.path(url)).unwrap();
        std::fs::create_dir(cache.path(url)).unwrap();
        assert!(matches!(
            cache.get(url, now()).unwrap_err(),
            DiskCacheError::Read(_)
        ));
    }

    #[test]
    fn an_unwritable_directory_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        // A file where the directory should be.
        let blocked = tmp.path().join("crl");
        std::fs::write(&blocked, b"").unwrap();
        let cache = DiskCache::new(&blocked);
        let err = cache
            .set("http://x.test/a.crl", &fixture("leaf.crl"), None)
            .unwrap_err();
        assert!(matches!(err, DiskCacheError::Write { .. }), "{err}");
        assert!(cache.get("http://x.test/a.crl", now()).is_err());
    }
}
