//! What can go wrong talking to a registry, and how a registry's error answers are read.
//!
//! These are not verification failures: they mean the image could not be judged, which leads to
//! exit status 3 and the fail-closed admission answer.

use reqwest::{Response, StatusCode};
use serde::Deserialize;

use super::read_limited;

/// A registry problem: the image could not be judged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// Connection, TLS or timeout failure.
    #[error("registry {host} is unreachable: {reason}")]
    Unreachable {
        /// Registry host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The manifest or repository does not exist.
    #[error("{what} not found in {host}")]
    NotFound {
        /// Registry host.
        host: String,
        /// What was looked for.
        what: String,
    },
    /// The registry refused access.
    #[error("registry {host} denied access to {what} ({status}){}", fmt_detail(.detail))]
    Denied {
        /// Registry host.
        host: String,
        /// What was asked for.
        what: String,
        /// HTTP status.
        status: u16,
        /// Error code and message from the body.
        detail: String,
    },
    /// Any other unexpected status.
    #[error("registry {host} answered {status} for {what}{}", fmt_detail(.detail))]
    Status {
        /// Registry host.
        host: String,
        /// What was asked for.
        what: String,
        /// HTTP status.
        status: u16,
        /// Error code and message from the body.
        detail: String,
    },
    /// Content larger than we read.
    #[error("{what} from {host} is larger than the {limit}-byte limit")]
    TooLarge {
        /// Registry host.
        host: String,
        /// What was fetched.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// Content does not match its digest or declared size.
    #[error("{what} from {host} does not match its descriptor: {reason}")]
    DigestMismatch {
        /// Registry host.
        host: String,
        /// What was fetched.
        what: String,
        /// Expected vs. actual.
        reason: String,
    },
    /// Content that is not what the protocol says it must be.
    #[error("{what} from {host} is malformed: {reason}")]
    Malformed {
        /// Registry host.
        host: String,
        /// What was fetched.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry refuses to serve the image because it is quarantined (Azure Container
    /// Registry: `IMAGE_QUARANTINED`).
    #[error("{what} is quarantined in {host}: the registry refuses to serve it until it passes its scan")]
    Quarantined {
        /// Registry host.
        host: String,
        /// What was asked for.
        what: String,
    },
    /// Credentials or the token flow failed.
    #[error("authentication with registry {host} failed: {reason}")]
    Auth {
        /// Registry host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// A URL the registry pointed to (a pagination `Link`, a redirect, an upload `Location`, a
    /// token realm) that leaves the registry's scheme, host and port, or downgrades HTTPS to
    /// plain HTTP. Not followed: a registry's credentials go only to that registry.
    #[error("registry {host} pointed to {url}, {reason}: refused (credentials for a registry are sent only to its own scheme, host and port, and never over plain HTTP when it uses HTTPS)")]
    LeavesRegistry {
        /// Registry host.
        host: String,
        /// The URL it pointed to (escaped, shortened).
        url: String,
        /// How it leaves the registry.
        reason: String,
    },
}

fn fmt_detail(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(": {d}")
    }
}
/// The error a non-success answer stands for, with the code and message of its body.
pub(crate) async fn status_error(host: &str, what: &str, resp: Response) -> RegistryError {
    let status = resp.status();
    let body = read_limited(resp, 64 * 1024, what, host)
        .await
        .unwrap_or_default();
    let detail = error_detail(&body);
    if error_codes(&body).iter().any(|c| c == "IMAGE_QUARANTINED") {
        return RegistryError::Quarantined {
            host: host.into(),
            what: what.into(),
        };
    }
    match status {
        StatusCode::NOT_FOUND => RegistryError::NotFound {
            host: host.into(),
            what: what.into(),
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Denied {
            host: host.into(),
            what: what.into(),
            status: status.as_u16(),
            detail,
        },
        _ => RegistryError::Status {
            host: host.into(),
            what: what.into(),
            status: status.as_u16(),
            detail,
        },
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The `code`s of a distribution error body.
pub(crate) fn error_codes(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.errors.into_iter().map(|e| e.code).collect())
        .unwrap_or_default()
}

/// The code and message of a distribution error body (else the body's start), as one escaped,
/// bounded line: the registry's text must not draw on the terminal or log it is shown in.
fn error_detail(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) if !b.errors.is_empty() => {
            let joined = b
                .errors
                .iter()
                .take(8)
                .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
                .collect::<Vec<_>>()
                .join("; ");
            crate::escape::excerpt(joined.as_bytes(), 1024)
        }
        _ => crate::escape::excerpt(body, 200),
    }
}

/// An error and its sources, as one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = inner.source();
    }
    s
}
