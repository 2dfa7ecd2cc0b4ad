//! Reading a file that comes from outside — a trust policy, a trust-store certificate, the
//! configuration, a docker config, the TLS pair, a manifest, a token file — the one way vouch
//! does it. The path is opened without blocking (opening a FIFO would otherwise wait for a writer
//! forever), the opened handle must be a regular file (after following symlinks: a link to
//! `/dev/zero` is the device), and at most `limit` bytes are read from the handle: one byte more
//! is an error, never a silent truncation. Each caller chooses its own limit.

use std::fs::{FileType, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// A file that could not be read, with the path as given.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct FileError {
    /// The path as the caller gave it (`<stdin>` for standard input).
    pub path: String,
    /// What is wrong.
    pub problem: Problem,
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The operating system refused (missing, permission denied...).
    #[error("{0}")]
    Io(io::Error),
    /// The path names something other than a regular file.
    #[error("is {0}, not a regular file")]
    NotRegular(Kind),
    /// The file holds more than the caller's limit.
    #[error("is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The caller wanted text and the bytes are not UTF-8.
    #[error("is not UTF-8 text")]
    NotUtf8,
}

/// What a path names when it is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Kind {
    /// A directory.
    #[error("a directory")]
    Directory,
    /// A FIFO (named pipe): reading it waits for a writer.
    #[error("a FIFO (named pipe)")]
    Fifo,
    /// A character device such as `/dev/zero`: endless.
    #[error("a character device")]
    CharDevice,
    /// A block device.
    #[error("a block device")]
    BlockDevice,
    /// A Unix socket.
    #[error("a socket")]
    Socket,
    /// Anything else the platform has.
    #[error("not a file")]
    Other,
}

impl Kind {
    /// `None` for a regular file, else what the file type is.
    pub fn of(t: FileType) -> Option<Kind> {
        let kind = if t.is_file() {
            return None;
        } else if t.is_dir() {
            Kind::Directory
        } else if t.is_fifo() {
            Kind::Fifo
        } else if t.is_char_device() {
            Kind::CharDevice
        } else if t.is_block_device() {
            Kind::BlockDevice
        } else if t.is_socket() {
            Kind::Socket
        } else {
            Kind::Other
        };
        Some(kind)
    }
}

/// Read a regular file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    read_regular(path, limit).map_err(|problem| FileError {
        path: path.display().to_string(),
        problem,
    })
}

/// Read a regular file of at most `limit` bytes of UTF-8 text.
pub fn read_to_string(path: &Path, limit: u64) -> Result<String, FileError> {
    let bytes = read(path, limit)?;
    String::from_utf8(bytes).map_err(|_| FileError {
        path: path.display().to_string(),
        problem: Problem::NotUtf8,
    })
}

/// Read standard input, whatever it is (a pipe is the normal case), up to `limit` bytes; more is
/// an error.
pub fn read_stdin(limit: u64) -> Result<Vec<u8>, FileError> {
    read_bounded(io::stdin().lock(), limit, 0).map_err(|problem| FileError {
        path: "<stdin>".into(),
        problem,
    })
}

fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, Problem> {
    // Look before opening: opening some devices has effects of its own.
    refuse_irregular(&std::fs::metadata(path).map_err(Problem::Io)?)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(Problem::Io)?;
    // The path may have been swapped between the look and the open: the handle decides.
    let meta = file.metadata().map_err(Problem::Io)?;
    refuse_irregular(&meta)?;
    // Too big already: refused without reading it (the bound below still holds for a file
    // that grows while it is read).
    if meta.len() > limit {
        return Err(Problem::TooLarge { limit });
    }
    read_bounded(file, limit, meta.len())
}

fn refuse_irregular(meta: &Metadata) -> Result<(), Problem> {
    match Kind::of(meta.file_type()) {
        None => Ok(()),
        Some(kind) => Err(Problem::NotRegular(kind)),
    }
}

/// At most `limit` bytes from `r`; reads one byte past the limit to tell "exactly the limit"
/// from "more".
fn read_bounded(r: impl Read, limit: u64, size_hint: u64) -> Result<Vec<u8>, Problem> {
    let capacity = usize::try_from(size_hint.min(limit).saturating_add(1)).unwrap_or(0);
    let mut buf = Vec::with_capacity(capacity);
    r.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(Problem::Io)?;
    if buf.len() as u64 > limit {
        return Err(Problem::TooLarge { limit });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("run mkfifo");
        assert!(status.success());
    }

    #[test]
    fn a_fifo_is_refused_at_once_even_behind_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("policy.json");
        mkfifo(&fifo);
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        let started = Instant::now();
        for p in [&fifo, &link] {
            let err = read(p, 1024).unwrap_err();
            assert!(
                matches!(err.problem, Problem::NotRegular(Kind::Fifo)),
                "{err}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "{}: is a FIFO (named pipe), not a regular file",
                    p.display()
                )
            );
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn devices_and_directories_are_refused() {
        let err = read(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/zero: is a character device, not a regular file"
        );
        let dir = tempfile::tempdir().unwrap();
        let err = read_to_string(dir.path(), 1024).unwrap_err();
        assert!(
            matches!(err.problem, Problem::NotRegular(Kind::Directory)),
            "{err}"
        );
    }

    #[test]
    fn the_limit_is_inclusive_and_one_byte_more_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, [b'x'; 10]).unwrap();
        assert_eq!(read(&p, 10).unwrap().len(), 10);
        let err = read(&p, 9).unwrap_err();
        assert!(err.to_string().ends_with("is larger than 9 bytes"), "{err}");
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        let err = read_to_string(&p, 10).unwrap_err();
        assert!(matches!(err.problem, Problem::NotUtf8), "{err}");
        let err = read(&dir.path().join("missing"), 10).unwrap_err();
        assert!(matches!(err.problem, Problem::Io(_)), "{err}");
    }

    #[test]
    fn a_reader_longer_than_the_limit_is_refused_not_truncated() {
        let endless = io::repeat(b'a');
        let err = read_bounded(endless, 1 << 20, 0).unwrap_err();
        assert!(matches!(err, Problem::TooLarge { limit } if limit == 1 << 20));
        assert_eq!(read_bounded(&b"abc"[..], 3, 0).unwrap(), b"abc");
    }
}
