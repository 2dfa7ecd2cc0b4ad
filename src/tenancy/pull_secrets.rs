//! Registry credentials out of Kubernetes pull secrets (`kubernetes.io/dockerconfigjson`,
//! `kubernetes.io/dockercfg`): the one parser `vouch audit` and `vouch serve` share (through
//! [`super::secret_credentials`]).
//!
//! A secret's keys are read as the kubelet reads them (`auths` of `.dockerconfigjson`, the bare
//! map of `.dockercfg`; `username`/`password`, else `auth` = base64 `user:password`), and each
//! key's host is canonicalised as images name registries, so a credential filed under
//! `https://Registry.Example:443/v1/` is the one for `registry.example`. A key with a path
//! (`registry.example/team-a`) is limited to that repository prefix. Hosts with wildcards
//! (`*.example.com`), which the kubelet also matches, are skipped: vouch sends a credential only
//! to the one host it names. What is kept of a Secret is bounded ([`MAX_CREDENTIAL_FIELD_BYTES`],
//! [`MAX_SECRET_KEPT_BYTES`], [`MAX_CREDENTIALS_PER_SECRET`]): the rest is skipped and said so.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::Value;

use crate::registry::auth::{Credential, PullCredential};

/// The secret type of a `.dockerconfigjson` pull secret.
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// The secret type of a legacy `.dockercfg` pull secret.
pub const DOCKER_CFG: &str = "kubernetes.io/dockercfg";

/// Most credentials kept from one secret (the API server bounds a secret at 1 MiB; this
/// bounds what is kept of it).
pub const MAX_CREDENTIALS_PER_SECRET: usize = 256;
/// Longest username or password kept (a registry token is a few KiB at most); a credential with
/// a longer one is skipped, so a tenant cannot make vouch hold a megabyte per cached Secret.
pub const MAX_CREDENTIAL_FIELD_BYTES: usize = 16 * 1024;
/// Most bytes of credentials ([`kept_bytes`]) kept from one secret; credentials past it are
/// skipped.
pub const MAX_SECRET_KEPT_BYTES: usize = 64 * 1024;

/// Most reasons kept in [`Parsed::skipped`] (the rest are only counted).
pub const MAX_SKIPPED_NOTED: usize = 8;

/// What a pull secret yields: its credentials, in the kubelet's order, and what was skipped
/// for being over a limit (each naming the registry key and the limit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The credentials kept.
    pub credentials: Vec<PullCredential>,
    /// Why others were not kept: the first [`MAX_SKIPPED_NOTED`].
    pub skipped: Vec<String>,
    /// How many were skipped in all.
    pub skipped_count: usize,
}

impl Parsed {
    fn skip(&mut self, why: String) {
        self.skipped_count += 1;
        if self.skipped.len() < MAX_SKIPPED_NOTED {
            self.skipped.push(why);
        }
    }

    /// One sentence for a log or a report: what was skipped and why.
    pub fn skipped_summary(&self) -> String {
        let mut s = format!(
            "{} credential(s) not used, over a size limit: {}",
            self.skipped_count,
            self.skipped.join("; ")
        );
        if self.skipped_count > self.skipped.len() {
            s.push_str(&format!(
                "; and {} more",
                self.skipped_count - self.skipped.len()
            ));
        }
        s
    }
}

/// The memory one kept credential stands for: its strings and its fixed size (what the watch
/// caches weigh it at).
pub fn kept_bytes(c: &PullCredential) -> usize {
    let material = match &c.credential {
        Credential::Anonymous => 0,
        Credential::Basic { username, password } => username.len() + password.len(),
        Credential::IdentityToken(t) => t.len(),
    };
    std::mem::size_of::<PullCredential>()
        + c.host.len()
        + c.path.as_ref().map_or(0, String::len)
        + material
}

/// The credentials of a pull secret, given its decoded `data` (as the API's typed `Secret`
/// holds it): `.dockerconfigjson` first, else `.dockercfg`. Anything unreadable yields
/// nothing rather than an error: the kubelet, too, skips a secret it cannot parse. A
/// credential over [`MAX_CREDENTIAL_FIELD_BYTES`], or past [`MAX_SECRET_KEPT_BYTES`] or
/// [`MAX_CREDENTIALS_PER_SECRET`] for the secret, is skipped and said so in
/// [`Parsed::skipped`].
pub fn credentials_of(data: &BTreeMap<String, Vec<u8>>) -> Parsed {
    let parsed = |key: &str| -> Option<Value> { serde_json::from_slice(data.get(key)?).ok() };
    let auths = parsed(".dockerconfigjson")
        .and_then(|v| v.get("auths").cloned())
        .or_else(|| parsed(".dockercfg"));
    let mut out = Parsed::default();
    let Some(Value::Object(map)) = auths else {
        return out;
    };
    let mut kept = 0;
    for (server, entry) in &map {
        let Some((host, path)) = server_key(server) else {
            continue;
        };
        let credential = match entry_credential(entry) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(why) => {
                out.skip(format!("{}: {why}", shown_key(server)));
                continue;
            }
        };
        let c = PullCredential {
            host,
            path,
            credential,
        };
        let weight = kept_bytes(&c);
        if out.credentials.len() == MAX_CREDENTIALS_PER_SECRET {
            out.skip(format!(
                "{}: the secret already has {MAX_CREDENTIALS_PER_SECRET} credentials",
                shown_key(server)
            ));
        } else if kept + weight > MAX_SECRET_KEPT_BYTES {
            out.skip(format!(
                "{}: the secret's credentials would take more than {} KiB",
                shown_key(server),
                MAX_SECRET_KEPT_BYTES / 1024
            ));
        } else {
            kept += weight;
            out.credentials.push(c);
        }
    }
    out
}

/// A docker config key as it may appear in a message: escaped and short.
fn shown_key(server: &str) -> String {
    format!(
        "the credential for {}",
        crate::escape::excerpt(server.as_bytes(), 100)
    )
}

/// A docker config key's canonical registry host and repository prefix
/// (`https://index.docker.io/v1/` is Docker Hub, no prefix: `/v1/` is the API path).
fn server_key(server: &str) -> Option<(String, Option<String>)> {
    let rest = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = crate::reference::canonical_registry(host).ok()?;
    let path = path.trim_matches('/');
    let path = (!path.is_empty() && path != "v1" && path != "v2").then(|| path.to_string());
    Some((host, path))
}

/// An entry's credential: `None` when it has none (or none readable), an error when it is over
/// [`MAX_CREDENTIAL_FIELD_BYTES`].
fn entry_credential(entry: &Value) -> Result<Option<Credential>, String> {
    let text = |k: &str| {
        entry
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let limited = |field: &str, value: &str| {
        if value.len() > MAX_CREDENTIAL_FIELD_BYTES {
            Err(format!(
                "its {field} is {} bytes, over the limit of {} KiB",
                value.len(),
                MAX_CREDENTIAL_FIELD_BYTES / 1024
            ))
        } else {
            Ok(())
        }
    };
    let basic = |u: &str, p: &str| {
        limited("username", u)?;
        limited("password", p)?;
        Ok(Some(Credential::Basic {
            username: u.to_string(),
            password: p.to_string(),
        }))
    };
    if let (Some(u), Some(p)) = (text("username"), text("password")) {
        return basic(u, p);
    }
    let Some(auth) = text("auth") else {
        return Ok(None);
    };
    // base64 of `user:password`, both within the limit; checked before decoding.
    if auth.len() > (2 * MAX_CREDENTIAL_FIELD_BYTES + 1).div_ceil(3) * 4 {
        return Err(format!(
            "its auth is {} bytes, longer than a username and a password of {} KiB each encode to",
            auth.len(),
            MAX_CREDENTIAL_FIELD_BYTES / 1024
        ));
    }
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(auth) else {
        return Ok(None);
    };
    let Ok(raw) = String::from_utf8(raw) else {
        return Ok(None);
    };
    match raw.split_once(':') {
        Some((u, p)) => basic(u, p),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::json;

    fn data(key: &str, doc: &str) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(key.to_string(), doc.as_bytes().to_vec())])
    }

    #[test]
    fn reads_both_secret_types_and_canonicalises_hosts() {
        let auth = STANDARD.encode("alice:pw");
        let json = format!(
            r#"{{"auths":{{"https://Registry.Example:443/v1/":{{"auth":"{auth}"}},"index.docker.io":{{"username":"bob","password":"hub"}},"localhost:5000/team-a":{{"auth":"{auth}"}},"*.wild.example":{{"auth":"{auth}"}}}}}}"#
        );
        let got = credentials_of(&data(".dockerconfigjson", &json)).credentials;
        let hosts: Vec<(&str, Option<&str>)> = got
            .iter()
            .map(|c| (c.host.as_str(), c.path.as_deref()))
            .collect();
        assert_eq!(
            hosts,
            [
                ("registry.example", None),
                ("docker.io", None),
                ("localhost:5000", Some("team-a")),
            ]
        );
        assert!(got[2].applies_to("localhost:5000", "team-a/app"));
        assert!(!got[2].applies_to("localhost:5000", "team-ab/app"));
        assert!(!got[2].applies_to("localhost:5001", "team-a/app"));
        let cfg = credentials_of(&data(
            ".dockercfg",
            &format!(r#"{{"localhost:5000":{{"auth":"{auth}"}}}}"#),
        ))
        .credentials;
        assert_eq!(
            cfg[0].credential,
            Credential::Basic {
                username: "alice".into(),
                password: "pw".into()
            }
        );
    }

    #[test]
    fn unreadable_secrets_give_nothing() {
        for doc in [
            "",
            "[]",
            r#"{"auths":[]}"#,
            r#"{"auths":{"h":{"auth":"!!"}}}"#,
        ] {
            assert!(
                credentials_of(&data(".dockerconfigjson", doc)) == Parsed::default(),
                "{doc}"
            );
        }
    }

    #[test]
    fn oversized_credentials_are_skipped_and_said_so() {
        let big = "p".repeat(MAX_CREDENTIAL_FIELD_BYTES + 1);
        let big_auth = STANDARD.encode(format!("u:{big}{big}{big}"));
        let decoded_big = STANDARD.encode(format!("u:{big}"));
        let ok = STANDARD.encode("alice:pw");
        let json = json!({"auths": {
            "big.example": {"username": "u", "password": big},
            "auth.example": {"auth": big_auth},
            "decoded.example": {"auth": decoded_big},
            "long-user.example": {"username": big, "password": "pw"},
            "ok.example": {"auth": ok},
        }})
        .to_string();
        let got = credentials_of(&data(".dockerconfigjson", &json));
        let hosts: Vec<&str> = got.credentials.iter().map(|c| c.host.as_str()).collect();
        assert_eq!(hosts, ["ok.example"]);
        assert_eq!(got.skipped.len(), 4, "{:?}", got.skipped);
        for (key, field) in [
            ("auth.example", "auth"),
            ("decoded.example", "password"),
            ("big.example", "password"),
            ("long-user.example", "username"),
        ] {
            assert!(
                got.skipped
                    .iter()
                    .any(|s| s.contains(key) && s.contains(&format!("its {field} is"))),
                "{key}: {:?}",
                got.skipped
            );
        }
        // Exactly at the limit is kept.
        let edge = "p".repeat(MAX_CREDENTIAL_FIELD_BYTES);
        let json = json!({"auths": {"edge.example": {"username": "u", "password": edge}}});
        let got = credentials_of(&data(".dockerconfigjson", &json.to_string()));
        assert_eq!(got.credentials.len(), 1, "{:?}", got.skipped);
    }

    #[test]
    fn a_secret_keeps_at_most_its_byte_budget() {
        let pw = "p".repeat(MAX_CREDENTIAL_FIELD_BYTES - 300);
        let auths: serde_json::Map<String, Value> = (0..10)
            .map(|i| {
                (
                    format!("r{i}.example"),
                    json!({"username": "u", "password": pw}),
                )
            })
            .collect();
        let json = json!({ "auths": auths }).to_string();
        let got = credentials_of(&data(".dockerconfigjson", &json));
        let kept: usize = got.credentials.iter().map(kept_bytes).sum();
        assert!(kept <= MAX_SECRET_KEPT_BYTES, "{kept}");
        assert_eq!(got.credentials.len(), 4, "four of ~16 KiB fit in 64 KiB");
        assert_eq!(got.skipped_count, 6, "{:?}", got.skipped);
        assert!(
            got.skipped[0].contains("more than 64 KiB"),
            "{:?}",
            got.skipped
        );
        // The same with many small credentials: the count bound.
        let auths: serde_json::Map<String, Value> = (0..MAX_CREDENTIALS_PER_SECRET + 5)
            .map(|i| {
                (
                    format!("r{i}.example"),
                    json!({"auth": STANDARD.encode("a:b")}),
                )
            })
            .collect();
        let json = json!({ "auths": auths }).to_string();
        let got = credentials_of(&data(".dockerconfigjson", &json));
        assert_eq!(got.credentials.len(), MAX_CREDENTIALS_PER_SECRET);
        assert_eq!(got.skipped_count, 5);
        let many: serde_json::Map<String, Value> = (0..MAX_CREDENTIALS_PER_SECRET + 50)
            .map(|i| {
                (
                    format!("r{i}.example"),
                    json!({"auth": STANDARD.encode("a:b")}),
                )
            })
            .collect();
        let json = json!({ "auths": many }).to_string();
        let got = credentials_of(&data(".dockerconfigjson", &json));
        assert_eq!(
            (got.skipped.len(), got.skipped_count),
            (MAX_SKIPPED_NOTED, 50)
        );
        assert!(
            got.skipped_summary()
                .ends_with(&format!("and {} more", 50 - MAX_SKIPPED_NOTED)),
            "{}",
            got.skipped_summary()
        );
    }
}
