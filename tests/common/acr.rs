//! An Azure Container Registry emulator: it fronts a real docker-registry and adds what ACR adds
//! for quarantine, in ACR's documented wire format — the token endpoint with Basic credentials
//! (`/oauth2/token`, `access_token`), Bearer challenges with ACR's scopes, the data-plane metadata
//! API (`GET`/`PATCH /acr/v1/{repo}/_manifests/{digest}` with `changeableAttributes`), and the
//! quarantined-pull refusal (`IMAGE_QUARANTINED`, tag hidden).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde_json::{json, Value};

#[derive(Default)]
pub struct AcrState {
    /// digest -> (quarantineState, quarantineDetails)
    pub quarantine: HashMap<String, (String, String)>,
    /// digests with readEnabled: false
    pub locked: Vec<String>,
    /// Answer the metadata API with this status.
    pub metadata_status: Option<u16>,
    pub user: String,
    pub password: String,
    pub log: Vec<String>,
}

pub struct Acr {
    pub host: String,
    pub state: Arc<Mutex<AcrState>>,
}

struct Shared {
    state: Arc<Mutex<AcrState>>,
    upstream: String,
    http: reqwest::Client,
}

impl Acr {
    pub fn start(upstream: &str, user: &str, password: &str) -> Acr {
        let state = Arc::new(Mutex::new(AcrState {
            user: user.into(),
            password: password.into(),
            ..Default::default()
        }));
        let shared = Arc::new(Shared {
            state: state.clone(),
            upstream: format!("http://{upstream}"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        });
        let app = Router::new()
            .route("/oauth2/token", get(token).post(token))
            .route("/oauth2/exchange", axum::routing::post(exchange))
            .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(entra))
            .route("/acr/v1/{*rest}", any(metadata))
            .route("/v2/", get(|| async { "{}" }))
            .route("/v2/{*rest}", any(proxy))
            .with_state(shared);
        let addr = vouch::demo::registry::serve_in_background(app).expect("ACR emulator");
        Acr {
            host: format!("127.0.0.1:{}", addr.port()),
            state,
        }
    }

    pub fn set(&self, digest: &str, state: &str, details: &str) {
        self.state
            .lock()
            .unwrap()
            .quarantine
            .insert(digest.into(), (state.into(), details.into()));
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut AcrState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }
}

fn acr_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        json!({"errors": [{"code": code, "message": message, "detail": null}]}).to_string(),
    )
        .into_response()
}

fn challenge(host: &str, scope: &str) -> Response {
    let mut r = acr_error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "authentication required, visit https://aka.ms/acr/authorization for more information.",
    );
    let v =
        format!(r#"Bearer realm="http://{host}/oauth2/token",service="{host}",scope="{scope}""#);
    r.headers_mut()
        .insert("www-authenticate", HeaderValue::from_str(&v).unwrap());
    r
}

/// Tokens are "acr:<scope>"; a token grants what its scope names.
fn granted(headers: &HeaderMap, repo: &str, action: &str) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer acr:"))
        .is_some_and(|scope| {
            scope.split(' ').any(|s| {
                s.strip_prefix(&format!("repository:{repo}:"))
                    .is_some_and(|actions| actions.split(',').any(|a| a == action || a == "*"))
            })
        })
}

/// The federated token the emulated AKS workload identity presents, and the Entra ID token
/// issued for it.
pub const FEDERATED_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.federated.sig";
const ENTRA_TOKEN: &str = "entra-access-token-for-acr";
const REFRESH_TOKEN: &str = "acr-refresh-token";

/// Entra ID's token endpoint (client credentials with a federated assertion).
async fn entra(Path(tenant): Path<String>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str);
    let ok = tenant == "tenant-1"
        && field("client_id") == Some("client-1")
        && field("client_assertion") == Some(FEDERATED_TOKEN)
        && field("client_assertion_type")
            == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        && field("scope") == Some("https://containerregistry.azure.net/.default");
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client"}).to_string(),
        )
            .into_response();
    }
    (
        StatusCode::OK,
        json!({"token_type": "Bearer", "expires_in": 3599, "access_token": ENTRA_TOKEN})
            .to_string(),
    )
        .into_response()
}

/// ACR's `/oauth2/exchange`: an Entra ID access token for an ACR refresh token.
async fn exchange(body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("access_token")
        || form.get("access_token").map(String::as_str) != Some(ENTRA_TOKEN)
    {
        return acr_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "invalid access token",
        );
    }
    (
        StatusCode::OK,
        json!({"refresh_token": REFRESH_TOKEN}).to_string(),
    )
        .into_response()
}

async fn token(
    AxState(s): AxState<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let st = s.state.lock().unwrap();
    use base64::Engine;
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", st.user, st.password))
    );
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let refresh_ok = form.get("grant_type").map(String::as_str) == Some("refresh_token")
        && form.get("refresh_token").map(String::as_str) == Some(REFRESH_TOKEN);
    if !refresh_ok
        && headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str())
    {
        return acr_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "invalid credentials",
        );
    }
    let scope = q
        .get("scope")
        .or(form.get("scope"))
        .cloned()
        .unwrap_or_default();
    (
        StatusCode::OK,
        json!({"access_token": format!("acr:{scope}")}).to_string(),
    )
        .into_response()
}

async fn metadata(
    AxState(s): AxState<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    Path(rest): Path<String>,
    body: Bytes,
) -> Response {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let Some((repo, digest)) = rest.rsplit_once("/_manifests/") else {
        return acr_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "unknown");
    };
    let action = if method == Method::PATCH {
        "metadata_write"
    } else {
        "metadata_read"
    };
    if !granted(&headers, repo, action) {
        return challenge(&host, &format!("repository:{repo}:{action}"));
    }
    let mut st = s.state.lock().unwrap();
    st.log.push(format!("{method} /acr/v1/{rest}"));
    if let Some(code) = st.metadata_status {
        return acr_error(
            StatusCode::from_u16(code).unwrap(),
            "INTERNAL_SERVER_ERROR",
            "metadata unavailable",
        );
    }
    if method == Method::PATCH {
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        let state = v["quarantineState"].as_str().unwrap_or("").to_string();
        let details = v["quarantineDetails"].as_str().unwrap_or("").to_string();
        st.quarantine.insert(digest.into(), (state, details));
    }
    let q = st.quarantine.get(digest).cloned();
    let mut attrs = json!({"deleteEnabled": true, "writeEnabled": true, "readEnabled": !st.locked.iter().any(|d| d == digest), "listEnabled": true});
    if let Some((state, details)) = q {
        attrs["quarantineState"] = state.into();
        attrs["quarantineDetails"] = details.into();
    }
    let body = json!({"registry": host, "imageName": repo, "manifest": {
        "digest": digest, "imageSize": 517, "createdTime": "2024-01-01T00:00:00Z", "lastUpdateTime": "2024-01-01T00:00:00Z",
        "architecture": "amd64", "os": "linux", "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "tags": [], "changeableAttributes": attrs}});
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

async fn proxy(
    AxState(s): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(rest): Path<String>,
    body: Bytes,
) -> Response {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let repo = ["/manifests/", "/blobs/", "/referrers/", "/tags/"]
        .iter()
        .find_map(|m| rest.find(m).map(|i| rest[..i].to_string()))
        .unwrap_or_default();
    let action = if matches!(method, Method::GET | Method::HEAD) {
        "pull"
    } else {
        "push"
    };
    if !granted(&headers, &repo, action) {
        return challenge(&host, &format!("repository:{repo}:{action}"));
    }
    s.state.lock().unwrap().log.push(format!("{method} {uri}"));
    // Quarantine: by-digest pulls refused, tags of quarantined images hidden.
    if let Some((_, reference)) = rest.split_once("/manifests/") {
        let quarantined = |d: &str| {
            s.state
                .lock()
                .unwrap()
                .quarantine
                .get(d)
                .is_some_and(|(state, _)| state != "Passed")
        };
        if reference.starts_with("sha256:") && quarantined(reference) {
            return if method == Method::HEAD {
                StatusCode::FORBIDDEN.into_response()
            } else {
                acr_error(
                    StatusCode::FORBIDDEN,
                    "IMAGE_QUARANTINED",
                    "The image is quarantined.",
                )
            };
        }
        if !reference.starts_with("sha256") {
            let head = s.http.head(format!("{}/v2/{rest}", s.upstream))
                .header("accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json")
                .send().await;
            if let Ok(r) = head {
                if let Some(d) = r
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                {
                    if quarantined(d) {
                        return acr_error(
                            StatusCode::NOT_FOUND,
                            "MANIFEST_UNKNOWN",
                            "manifest tagged by \"x\" is not found",
                        );
                    }
                }
            }
        }
    }
    let url = format!(
        "{}{}",
        s.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut rb = s.http.request(method.clone(), &url).body(body.to_vec());
    for name in ["accept", "content-type"] {
        if let Some(v) = headers.get(name) {
            rb = rb.header(name, v.as_bytes());
        }
    }
    let Ok(r) = rb.send().await else {
        return acr_error(StatusCode::BAD_GATEWAY, "UNAVAILABLE", "upstream down");
    };
    let status = r.status().as_u16();
    let mut out_headers = Vec::new();
    for name in [
        "content-type",
        "docker-content-digest",
        "content-length",
        "link",
        "location",
    ] {
        if let Some(v) = r.headers().get(name) {
            out_headers.push((name, v.to_str().unwrap_or("").to_string()));
        }
    }
    let bytes = r.bytes().await.unwrap_or_default();
    let mut resp = (StatusCode::from_u16(status).unwrap(), bytes).into_response();
    for (k, v) in out_headers {
        let v = if k == "location" {
            v.replace(&s.upstream, &format!("http://{host}"))
        } else {
            v
        };
        resp.headers_mut()
            .insert(k, HeaderValue::from_str(&v).unwrap());
    }
    resp
}
