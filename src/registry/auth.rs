//! Registry authentication: credentials from a Docker `config.json` (`auths`, `credHelpers`,
//! `credsStore`, through the `docker_credential` crate) and the distribution token flow
//! (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`, parsed with `http-auth`).
//!
//! Tokens are cached per (registry, scope) until shortly before they expire. The token client is
//! ours rather than oci-client's because oci-client only asks for `pull` scopes and cannot share
//! its HTTP client; the quarantine metadata API needs other scopes through the same code.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use docker_credential::{CredentialRetrievalError, DockerCredential};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{read_limited, RegistryError};

/// Largest token response read.
const MAX_TOKEN_BYTES: u64 = 256 * 1024;
/// Tokens are dropped this long before the registry says they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(15);

/// A credential for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credential: anonymous access.
    Anonymous,
    /// Username and password (Basic, or exchanged for a bearer token).
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: String,
    },
    /// An identity (refresh) token, exchanged through the OAuth2 refresh-token grant.
    IdentityToken(String),
}

impl Credential {
    /// Who this credential is, without what it is: an HMAC of the secret material under a key
    /// made at start-up, so tokens, read proofs and verdicts obtained with one credential are
    /// never used with another (a tenant's bearer token must not serve another tenant's
    /// request), and neither a log nor a shared cache's key names anything a weak password
    /// could be guessed back from (the key never leaves the process).
    pub fn identity(&self) -> String {
        let digest = |kind: &str, material: &str| {
            let tag =
                aws_lc_rs::hmac::sign(identity_key(), format!("{kind}\0{material}").as_bytes());
            format!("{kind}:{}", &hex::encode(tag.as_ref())[..32])
        };
        match self {
            Credential::Anonymous => "anonymous".into(),
            Credential::Basic { username, password } => {
                digest("basic", &format!("{username}\0{password}"))
            }
            Credential::IdentityToken(t) => digest("token", t),
        }
    }
}

/// The process's key for [`Credential::identity`].
fn identity_key() -> &'static aws_lc_rs::hmac::Key {
    static KEY: std::sync::OnceLock<aws_lc_rs::hmac::Key> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        // A failing system RNG leaves an all-zero key: identities still separate credentials,
        // only the guessing protection is lost.
        let mut bytes = [0u8; 32];
        let _ = aws_lc_rs::rand::SecureRandom::fill(&rng, &mut bytes);
        aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &bytes)
    })
}

/// One credential of a pod's pull secrets: the registry host it was issued for (canonical, as
/// images name it) and, when its key names one, the repository path it is limited to
/// (`registry.example/team-a` applies to `team-a` and below only, as the kubelet matches it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullCredential {
    /// Canonical registry host (`docker.io` for Docker Hub).
    pub host: String,
    /// Repository prefix, whole path segments (`team-a`, `team-a/app`).
    pub path: Option<String>,
    /// The credential.
    pub credential: Credential,
}

impl PullCredential {
    /// Whether this credential is for `repository` of the registry `host` (canonical).
    pub fn applies_to(&self, host: &str, repository: &str) -> bool {
        self.host == host
            && self.path.as_deref().is_none_or(|p| {
                repository == p
                    || repository
                        .strip_prefix(p)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
    }
}

/// The credentials one admission may read an image with: the pod's pull credentials in the
/// kubelet's order (its `imagePullSecrets`, then its ServiceAccount's), and whether vouch's own
/// ([`CredentialSource`]: docker config, Azure workload identity) stand in when none of the
/// pod's names the image's registry (`pullCredentials: pod`) or never do (`pod-only`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullCredentials {
    /// The pod's credentials, first match wins.
    pub entries: Vec<PullCredential>,
    /// Use vouch's own credentials for a registry none of the pod's names.
    pub own_fallback: bool,
}

/// Which credential a request is made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Chosen {
    /// vouch's own ([`CredentialSource::lookup`], Azure workload identity).
    Own,
    /// One of the pod's, or anonymous when the pod has none for the registry under `pod-only`.
    Given(Credential),
}

impl Chosen {
    /// The token-cache identity of the choice: `own`, or the credential's
    /// [`Credential::identity`].
    pub(crate) fn identity(&self) -> String {
        match self {
            Chosen::Own => "own".into(),
            Chosen::Given(c) => format!("pod:{}", c.identity()),
        }
    }
}

impl PullCredentials {
    /// The pod's credential for `repository` on the registry `host` (canonical), if any.
    pub fn for_image(&self, host: &str, repository: &str) -> Option<&Credential> {
        self.entries
            .iter()
            .find(|e| e.applies_to(host, repository))
            .map(|e| &e.credential)
    }

    pub(crate) fn choose(&self, host: &str, repository: &str) -> Chosen {
        match self.for_image(host, repository) {
            Some(c) => Chosen::Given(c.clone()),
            None if self.own_fallback => Chosen::Own,
            None => Chosen::Given(Credential::Anonymous),
        }
    }
}

/// Azure workload identity (AKS): a projected federated token and `AZURE_CLIENT_ID`,
/// `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE` (and optionally `AZURE_AUTHORITY_HOST`), as
/// the workload-identity webhook injects them. Exchanged for an Entra ID token for ACR
/// (`https://containerregistry.azure.net/.default`), then for an ACR refresh token at the
/// registry's `/oauth2/exchange` (`grant_type=access_token`), which the token flow then uses.
#[derive(Debug, Clone)]
pub struct AzureWorkloadIdentity {
    token_file: PathBuf,
    client_id: String,
    tenant_id: String,
    authority: String,
}

#[derive(Deserialize)]
struct EntraToken {
    access_token: String,
}

#[derive(Deserialize)]
struct AcrExchange {
    refresh_token: String,
}

impl AzureWorkloadIdentity {
    /// From the environment the AKS workload-identity webhook sets, if it is set.
    pub fn from_env() -> Option<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(Self {
            token_file: PathBuf::from(var("AZURE_FEDERATED_TOKEN_FILE")?),
            client_id: var("AZURE_CLIENT_ID")?,
            tenant_id: var("AZURE_TENANT_ID")?,
            authority: var("AZURE_AUTHORITY_HOST")
                .unwrap_or_else(|| "https://login.microsoftonline.com/".into()),
        })
    }

    /// An ACR refresh token for the registry `host`, from its `/oauth2/exchange` endpoint
    /// (`exchange_url`, always on the registry itself).
    pub async fn acr_refresh_token(
        &self,
        http: &reqwest::Client,
        host: &str,
        exchange_url: &str,
        service: &str,
    ) -> Result<String, RegistryError> {
        let fail = |reason: String| RegistryError::Auth {
            host: host.to_string(),
            reason: format!("Azure workload identity: {reason}"),
        };
        // A projected service-account token is a few KiB.
        let assertion = crate::files::read_to_string(&self.token_file, 64 * 1024)
            .map_err(|e| fail(e.to_string()))?;
        let authority = if self.authority.ends_with('/') {
            self.authority.clone()
        } else {
            format!("{}/", self.authority)
        };
        let form = |pairs: &[(&str, &str)]| {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter().copied())
                .finish()
        };
        let entra = http
            .post(format!("{authority}{}/oauth2/v2.0/token", self.tenant_id))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("client_id", &self.client_id),
                ("client_assertion", assertion.trim()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("grant_type", "client_credentials"),
                ("scope", "https://containerregistry.azure.net/.default"),
            ]))
            .send()
            .await
            .map_err(|e| fail(format!("Entra ID token request failed: {e}")))?;
        let status = entra.status();
        let body = read_limited(entra, MAX_TOKEN_BYTES, "Entra ID token", host).await?;
        if !status.is_success() {
            return Err(fail(format!(
                "Entra ID answered {status}: {}",
                crate::escape::excerpt(&body, 300)
            )));
        }
        let entra: EntraToken = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("Entra ID token response: {e}")))?;
        let resp = http
            .post(exchange_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "access_token"),
                ("service", service),
                ("tenant", &self.tenant_id),
                ("access_token", &entra.access_token),
            ]))
            .send()
            .await
            .map_err(|e| fail(format!("ACR token exchange failed: {e}")))?;
        let status = resp.status();
        let body = read_limited(resp, MAX_TOKEN_BYTES, "ACR exchange", host).await?;
        if !status.is_success() {
            return Err(fail(format!(
                "ACR /oauth2/exchange answered {status}: {}",
                crate::escape::excerpt(&body, 300)
            )));
        }
        let exchanged: AcrExchange = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("ACR exchange response: {e}")))?;
        Ok(exchanged.refresh_token)
    }
}

/// Where credentials come from.
#[derive(Debug, Clone, Default)]
pub struct CredentialSource {
    /// Azure workload identity, used for registries that offer nothing else (see
    /// [`AzureWorkloadIdentity`]).
    pub azure: Option<AzureWorkloadIdentity>,
    /// A Docker `config.json`; `None` means `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json` when present, else anonymous.
    pub docker_config: Option<PathBuf>,
    /// Explicit credentials per registry host, taking precedence over the config file
    /// (used for Kubernetes pull secrets and tests).
    pub explicit: HashMap<String, Credential>,
    /// The registries (host patterns, `*` matching any run, as quarantine rules write them)
    /// the Azure workload identity is exchanged for: Azure Container Registry only. The Entra
    /// ID token is good for every registry of the tenant, so it must never reach a registry
    /// that merely asks for a token.
    pub azure_registries: Vec<String>,
}

/// The registry hosts of Azure Container Registry in Azure's public and sovereign clouds.
pub const ACR_HOSTS: [&str; 3] = ["*.azurecr.io", "*.azurecr.cn", "*.azurecr.us"];

impl CredentialSource {
    /// The Azure workload identity, when there is one and `registry` is an ACR
    /// ([`Self::azure_registries`]).
    pub fn azure_for(&self, registry: &str) -> Option<&AzureWorkloadIdentity> {
        self.azure.as_ref().filter(|_| {
            self.azure_registries
                .iter()
                .any(|p| crate::quarantine::glob(p, registry))
        })
    }

    fn config_path(&self) -> Option<PathBuf> {
        if let Some(p) = &self.docker_config {
            return Some(p.clone());
        }
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
        let p = dir.join("config.json");
        p.exists().then_some(p)
    }

    /// The credential for a registry host (canonical, as [`crate::reference::ImageReference`]
    /// writes it), looked up the way the Docker CLI stores them. Explicit credentials match
    /// when their key names the same host once canonicalised.
    pub async fn lookup(&self, registry: &str) -> Result<Credential, RegistryError> {
        if let Some(c) = self.explicit.get(registry) {
            return Ok(c.clone());
        }
        if let Some(c) = self
            .explicit
            .iter()
            .find(|(k, _)| crate::reference::canonical_host(k).is_ok_and(|k| k == registry))
            .map(|(_, c)| c)
        {
            return Ok(c.clone());
        }
        let Some(path) = self.config_path() else {
            return Ok(Credential::Anonymous);
        };
        let registry = registry.to_string();
        let auth_err = {
            let registry = registry.clone();
            move |reason: String| RegistryError::Auth {
                host: registry.clone(),
                reason,
            }
        };
        let bytes = crate::files::read(&path, 1024 * 1024)
            .map_err(|e| auth_err(format!("docker config {e}")))?;
        let mut candidates = server_keys(&registry);
        candidates.extend(keys_naming(&bytes, &registry));
        // Credential helpers are processes; keep them off the async threads.
        let found = tokio::task::spawn_blocking(move || {
            for key in candidates {
                match docker_credential::get_credential_from_reader(bytes.as_slice(), &key) {
                    Ok(c) => return Ok(Some(c)),
                    Err(CredentialRetrievalError::NoCredentialConfigured) => continue,
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(None)
        })
        .await
        .map_err(|e| auth_err(e.to_string()))?
        .map_err(|e| auth_err(format!("reading credentials from {}: {e}", path.display())))?;
        Ok(match found {
            None => Credential::Anonymous,
            Some(DockerCredential::UsernamePassword(username, password)) => {
                Credential::Basic { username, password }
            }
            Some(DockerCredential::IdentityToken(t)) => Credential::IdentityToken(t),
        })
    }
}

/// The `auths` and `credHelpers` keys of a docker config that name `registry` once their host
/// is canonicalised (`Registry.Example:05000`, `https://127.1:5000/v1/`), in file order: images
/// are canonical, and the config must match every spelling of a host as its canonical one.
fn keys_naming(config: &[u8], registry: &str) -> Vec<String> {
    let Ok(serde_json::Value::Object(doc)) = serde_json::from_slice(config) else {
        return Vec::new();
    };
    ["auths", "credHelpers"]
        .iter()
        .filter_map(|section| doc.get(*section)?.as_object())
        .flat_map(|m| m.keys())
        .filter(|key| {
            let host = key
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default();
            crate::reference::canonical_registry(host).is_ok_and(|h| h == registry)
        })
        .cloned()
        .collect()
}

/// The keys the Docker CLI files a registry's credentials under.
fn server_keys(registry: &str) -> Vec<String> {
    if registry == "docker.io"
        || registry == "index.docker.io"
        || registry == "registry-1.docker.io"
    {
        return vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ];
    }
    vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ]
}

/// A bearer-token challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    /// Token endpoint.
    pub realm: String,
    /// `service` parameter.
    pub service: Option<String>,
    /// `scope` parameter, if the registry named one.
    pub scope: Option<String>,
}

/// What a `WWW-Authenticate` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Basic authentication.
    Basic,
    /// The token flow.
    Bearer(BearerChallenge),
}

/// Parse a `WWW-Authenticate` header value; the first Bearer or Basic challenge wins.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let challenges = http_auth::parse_challenges(value).ok()?;
    for c in challenges {
        if c.scheme.eq_ignore_ascii_case("bearer") {
            let param = |name: &str| {
                c.params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            return Some(Challenge::Bearer(BearerChallenge {
                realm: param("realm")?,
                service: param("service"),
                scope: param("scope"),
            }));
        }
        if c.scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
    }
    None
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// (registry origin, scope, credential identity).
type TokenKey = (String, String, String);

/// Bearer tokens per (registry origin — `scheme://host[:port]` —, scope, identity of the
/// credential that obtained them — [`Chosen::identity`]): a token one tenant's credentials
/// earned is never sent for another's request.
#[derive(Debug, Default, Clone)]
pub struct TokenCache {
    tokens: Arc<Mutex<HashMap<TokenKey, (String, Instant)>>>,
}

impl TokenCache {
    /// A cached, unexpired token for a registry origin, scope and credential identity.
    pub async fn get(&self, origin: &str, scope: &str, identity: &str) -> Option<String> {
        let tokens = self.tokens.lock().await;
        tokens
            .get(&(origin.to_string(), scope.to_string(), identity.to_string()))
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.clone())
    }

    async fn put(
        &self,
        origin: &str,
        scope: &str,
        identity: &str,
        token: String,
        lifetime: Duration,
    ) {
        let until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        let mut tokens = self.tokens.lock().await;
        // Bounded: a registry handing out a new scope per request cannot grow this forever.
        if tokens.len() > 4096 {
            let now = Instant::now();
            tokens.retain(|_, (_, u)| *u > now);
            if tokens.len() > 4096 {
                tokens.clear();
            }
        }
        tokens.insert(
            (origin.to_string(), scope.to_string(), identity.to_string()),
            (token, until),
        );
    }

    /// Fetch a token from `realm`, the challenge's token endpoint already checked by the
    /// caller (see `transport::token_realm`), and cache it under `origin` (the registry's
    /// `scheme://host[:port]`) and `identity` (who `credential` is, [`Chosen::identity`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn fetch(
        &self,
        http: &reqwest::Client,
        origin: &str,
        identity: &str,
        host: &str,
        realm: url::Url,
        challenge: &BearerChallenge,
        scope: &str,
        credential: &Credential,
    ) -> Result<String, RegistryError> {
        let auth_err = |reason: String| RegistryError::Auth {
            host: host.to_string(),
            reason,
        };
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(s) = &challenge.service {
            params.push(("service", s.clone()));
        }
        params.push(("scope", scope.to_string()));
        let request = match credential {
            Credential::IdentityToken(refresh) => {
                params.push(("grant_type", "refresh_token".into()));
                params.push(("refresh_token", refresh.clone()));
                params.push(("client_id", "vouch".into()));
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish();
                http.post(realm)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
            }
            Credential::Basic { username, password } => {
                let mut url = realm;
                url.query_pairs_mut()
                    .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
                http.get(url).header(
                    "authorization",
                    format!(
                        "Basic {}",
                        STANDARD.encode(format!("{username}:{password}"))
                    ),
                )
            }
            Credential::Anonymous => {
                let mut url = realm;
                url.query_pairs_mut()
                    .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
                http.get(url)
            }
        };
        let resp = request
            .send()
            .await
            .map_err(|e| auth_err(format!("token request failed: {e}")))?;
        let status = resp.status();
        let body = read_limited(resp, MAX_TOKEN_BYTES, "token response", host).await?;
        if !status.is_success() {
            return Err(auth_err(format!(
                "token endpoint answered {status}: {}",
                crate::escape::excerpt(&body, 300)
            )));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| auth_err(format!("token response is not JSON: {e}")))?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| auth_err("token response has no token".into()))?;
        // The distribution spec's default lifetime is 60 s.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).clamp(1, 24 * 3600));
        self.put(origin, scope, identity, token.clone(), lifetime)
            .await;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_distribution_and_acr_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer(BearerChallenge {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("garbage,,,"), None);
    }

    #[tokio::test]
    async fn tokens_are_kept_apart_by_credential_identity() {
        let alice = Credential::Basic {
            username: "alice".into(),
            password: "pw".into(),
        };
        let bob = Credential::Basic {
            username: "bob".into(),
            password: "pw".into(),
        };
        assert_ne!(alice.identity(), bob.identity());
        assert!(!alice.identity().contains("pw") && !alice.identity().contains("alice"));
        let cache = TokenCache::default();
        let a = Chosen::Given(alice).identity();
        cache
            .put(
                "https://r",
                "repository:x:pull",
                &a,
                "A".into(),
                Duration::from_secs(60),
            )
            .await;
        assert_eq!(
            cache
                .get("https://r", "repository:x:pull", &a)
                .await
                .as_deref(),
            Some("A")
        );
        for other in [
            Chosen::Given(bob).identity(),
            Chosen::Own.identity(),
            Chosen::Given(Credential::Anonymous).identity(),
        ] {
            assert_eq!(
                cache.get("https://r", "repository:x:pull", &other).await,
                None
            );
        }
    }

    #[test]
    fn pod_credentials_choose_by_host_and_path_and_fall_back_only_when_allowed() {
        let c = |u: &str| Credential::Basic {
            username: u.into(),
            password: "p".into(),
        };
        let mut pull = PullCredentials {
            entries: vec![
                PullCredential {
                    host: "r.example".into(),
                    path: Some("team-a".into()),
                    credential: c("a"),
                },
                PullCredential {
                    host: "r.example".into(),
                    path: None,
                    credential: c("any"),
                },
            ],
            own_fallback: true,
        };
        assert_eq!(
            pull.choose("r.example", "team-a/app"),
            Chosen::Given(c("a"))
        );
        assert_eq!(
            pull.choose("r.example", "team-b/app"),
            Chosen::Given(c("any"))
        );
        assert_eq!(pull.choose("other.example", "team-a/app"), Chosen::Own);
        pull.own_fallback = false;
        assert_eq!(
            pull.choose("other.example", "team-a/app"),
            Chosen::Given(Credential::Anonymous)
        );
    }

    #[tokio::test]
    async fn reads_auths_from_a_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"localhost:5000":{{"auth":"{}"}},"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
                STANDARD.encode("alice:s3cret"),
                STANDARD.encode("bob:hub")
            ),
        )
        .unwrap();
        let src = CredentialSource {
            docker_config: Some(path),
            ..Default::default()
        };
        assert_eq!(
            src.lookup("localhost:5000").await.unwrap(),
            Credential::Basic {
                username: "alice".into(),
                password: "s3cret".into()
            }
        );
        assert!(
            matches!(src.lookup("docker.io").await.unwrap(), Credential::Basic { username, .. } if username == "bob")
        );
        assert_eq!(src.lookup("other:1").await.unwrap(), Credential::Anonymous);
    }

    #[tokio::test]
    async fn docker_config_keys_match_every_spelling_of_their_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://LOCALHOST:05000/v1/":{{"auth":"{}"}}}}}}"#,
                STANDARD.encode("alice:s3cret")
            ),
        )
        .unwrap();
        let src = CredentialSource {
            docker_config: Some(path),
            ..Default::default()
        };
        assert!(matches!(
            src.lookup("localhost:5000").await.unwrap(),
            Credential::Basic { username, .. } if username == "alice"
        ));
        assert_eq!(
            src.lookup("localhost:5001").await.unwrap(),
            Credential::Anonymous
        );
    }
}
