//! Registry credentials out of Kubernetes pull secrets (`kubernetes.io/dockerconfigjson`,
//! `kubernetes.io/dockercfg`): the one parser `vouch audit` and `vouch serve` share.
//!
//! A secret's keys are read as the kubelet reads them (`auths` of `.dockerconfigjson`, the bare
//! map of `.dockercfg`; `username`/`password`, else `auth` = base64 `user:password`), and each
//! key's host is canonicalised as images name registries, so a credential filed under
//! `https://Registry.Example:443/v1/` is the one for `registry.example`. A key with a path
//! (`registry.example/team-a`) is limited to that repository prefix. Hosts with wildcards
//! (`*.example.com`), which the kubelet also matches, are skipped: vouch sends a credential only
//! to the one host it names.

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

/// The credentials of a pull secret, given its decoded `data` (as the API's typed `Secret`
/// holds it): `.dockerconfigjson` first, else `.dockercfg`. Anything unreadable yields
/// nothing rather than an error: the kubelet, too, skips a secret it cannot parse.
pub fn credentials_of(data: &BTreeMap<String, Vec<u8>>) -> Vec<PullCredential> {
    let parsed = |key: &str| -> Option<Value> { serde_json::from_slice(data.get(key)?).ok() };
    let auths = parsed(".dockerconfigjson")
        .and_then(|v| v.get("auths").cloned())
        .or_else(|| parsed(".dockercfg"));
    let Some(Value::Object(map)) = auths else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(server, entry)| {
            let (host, path) = server_key(server)?;
            let credential = entry_credential(entry)?;
            Some(PullCredential {
                host,
                path,
                credential,
            })
        })
        .take(MAX_CREDENTIALS_PER_SECRET)
        .collect()
}

/// The credentials of a secret read as JSON (its `data` base64, as `vouch audit` reads it
/// through the dynamic API), each as (registry host, credential) — audit's keyring is by host.
pub fn docker_config_credentials(secret: &Value) -> Vec<(String, Credential)> {
    let data: BTreeMap<String, Vec<u8>> = secret
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str()?)
                .ok()?;
            Some((k.clone(), bytes))
        })
        .collect();
    credentials_of(&data)
        .into_iter()
        .map(|c| (c.host, c.credential))
        .collect()
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

fn entry_credential(entry: &Value) -> Option<Credential> {
    let text = |k: &str| {
        entry
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let (Some(u), Some(p)) = (text("username"), text("password")) {
        return Some(Credential::Basic {
            username: u.to_string(),
            password: p.to_string(),
        });
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text("auth")?)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some(Credential::Basic {
        username: u.to_string(),
        password: p.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn data(key: &str, doc: &str) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(key.to_string(), doc.as_bytes().to_vec())])
    }

    #[test]
    fn reads_both_secret_types_and_canonicalises_hosts() {
        let auth = STANDARD.encode("alice:pw");
        let json = format!(
            r#"{{"auths":{{"https://Registry.Example:443/v1/":{{"auth":"{auth}"}},"index.docker.io":{{"username":"bob","password":"hub"}},"localhost:5000/team-a":{{"auth":"{auth}"}},"*.wild.example":{{"auth":"{auth}"}}}}}}"#
        );
        let got = credentials_of(&data(".dockerconfigjson", &json));
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
        ));
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
                credentials_of(&data(".dockerconfigjson", doc)).is_empty(),
                "{doc}"
            );
        }
    }
}
