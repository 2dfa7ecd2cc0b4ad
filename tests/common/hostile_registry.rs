//! A hostile OCI registry and a collector, for the regression tests of issue 11: loopback only,
//! over HTTPS (a CA of the test's own, handed to vouch as `SSL_CERT_FILE`) or plain HTTP.
//!
//! The registry serves one image, `app:v1`, behind Basic or Bearer authentication, and can be
//! told to misbehave: a referrers `Link` to anywhere, a token realm anywhere, redirects, a
//! `Docker-Content-Digest` that is not a digest. The collector stands for "another host": it
//! records every request it gets (with its `Authorization` header), hands out an Entra ID token
//! when asked as an Azure authority, and asks for credentials the way a registry would (a Bearer challenge with a realm of its own for manifests, Basic for the
//! rest), then answers with an empty image index. Every server runs on a thread of its
//! own and handles at most a bounded number of requests' bodies (none are read).

pub use super::TestTls;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use base64::Engine;

/// The image the hostile registry serves (an OCI manifest with an empty config).
pub const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

/// The digest of [`MANIFEST`].
pub fn manifest_digest() -> String {
    format!(
        "sha256:{}",
        vouch::registry::sha256_hex(MANIFEST.as_bytes())
    )
}

/// How the registry asks for credentials.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `WWW-Authenticate: Basic`; accepts these credentials.
    Basic(String, String),
    /// `WWW-Authenticate: Bearer realm=…`; accepts the token `good-token`, which its own
    /// `/token` endpoint issues for the Basic credentials given.
    Bearer {
        /// The realm the challenge names (anywhere: that is the attack).
        realm: String,
        /// Credentials the token endpoint accepts.
        user: (String, String),
    },
}

/// What the hostile registry does.
#[derive(Clone, Debug)]
pub struct Knobs {
    /// Authentication it requires.
    pub auth: Auth,
    /// `Link` header of the first referrers page.
    pub referrers_link: Option<String>,
    /// Answer manifest requests with a 307 to this URL.
    pub redirect_manifests: Option<String>,
    /// `Docker-Content-Digest` of manifest answers instead of the real one.
    pub digest_header: Option<String>,
}

impl Knobs {
    /// A registry that wants `alice:s3cret` over Basic and behaves otherwise.
    pub fn basic() -> Self {
        Knobs {
            auth: Auth::Basic("alice".into(), "s3cret".into()),
            referrers_link: None,
            redirect_manifests: None,
            digest_header: None,
        }
    }
}

/// One request a server received.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `METHOD /path?query`.
    pub request: String,
    /// Its `Authorization` header, if any.
    pub authorization: Option<String>,
}

/// A running hostile registry or collector.
pub struct Server {
    /// `localhost:PORT`.
    pub host: String,
    /// `https://localhost:PORT` or `http://localhost:PORT`.
    pub base: String,
    /// Every request received.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Requests received so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[derive(Clone)]
struct Ctx {
    knobs: Option<Knobs>,
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// Start the hostile registry, over HTTPS when `tls` is given.
pub fn registry(knobs: Knobs, tls: Option<&TestTls>) -> Server {
    start(Some(knobs), tls)
}

/// Start a collector: another origin that records what reaches it.
pub fn collector(tls: Option<&TestTls>) -> Server {
    start(None, tls)
}

fn start(knobs: Option<Knobs>, tls: Option<&TestTls>) -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = format!("{scheme}://localhost:{port}");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ctx = Ctx {
        knobs,
        base: base.clone(),
        seen: seen.clone(),
    };
    let app = Router::new().route("/{*rest}", any(handle)).with_state(ctx);
    let tls_files = tls.map(|t| (t.cert.clone(), t.key.clone()));
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            match tls_files {
                Some((cert, key)) => serve_tls(listener, app, &cert, &key).await,
                None => {
                    if let Ok(l) = tokio::net::TcpListener::from_std(listener) {
                        let _ = axum::serve(l, app).await;
                    }
                }
            }
        });
    });
    Server {
        host: format!("localhost:{port}"),
        base,
        seen,
    }
}

async fn serve_tls(listener: std::net::TcpListener, app: Router, cert: &Path, key: &Path) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    let Ok(config) = vouch::server::tls::ReloadingCert::load(cert, key)
        .map_err(|e| e.to_string())
        .and_then(|c| c.server_config().map_err(|e| e.to_string()))
    else {
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                .await;
        });
    }
}

fn answer(status: StatusCode, headers: &[(&str, String)], body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(name, value);
        }
    }
    r
}

fn basic(user: &(String, String)) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", user.0, user.1))
    )
}

async fn handle(State(ctx): State<Ctx>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    ctx.seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Seen {
            request: format!("{} {path}", req.method()),
            authorization: authorization.clone(),
        });
    let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let Some(knobs) = ctx.knobs else {
        // As Entra ID, it hands out a token to whoever asks: what matters is where it goes.
        if path.ends_with("/oauth2/v2.0/token") {
            return answer(
                StatusCode::OK,
                &[],
                r#"{"access_token":"ENTRA-SECRET-TOKEN","expires_in":3600}"#,
            );
        }
        // The collector: a challenge of its own for token requests it could bait, an empty
        // index for anything else.
        if path.starts_with("/v2/app/manifests/") && authorization.is_none() {
            return answer(
                StatusCode::UNAUTHORIZED,
                &[(
                    "www-authenticate",
                    format!(r#"Bearer realm="{}/token",service="collector""#, ctx.base),
                )],
                "",
            );
        }
        if path.starts_with("/v2/") && authorization.is_none() {
            return answer(
                StatusCode::UNAUTHORIZED,
                &[("www-authenticate", r#"Basic realm="collector""#.into())],
                "",
            );
        }
        return answer(
            StatusCode::OK,
            &[(
                "content-type",
                "application/vnd.oci.image.index.v1+json".into(),
            )],
            index,
        );
    };
    if path.starts_with("/token") {
        let ok = match &knobs.auth {
            Auth::Bearer { user, .. } => authorization.as_deref() == Some(basic(user).as_str()),
            Auth::Basic(..) => false,
        };
        return if ok {
            answer(StatusCode::OK, &[], r#"{"token":"good-token"}"#)
        } else {
            answer(StatusCode::UNAUTHORIZED, &[], "")
        };
    }
    // Redirects come before authentication, as a CDN front does.
    if let (true, Some(to)) = (
        path.starts_with("/v2/app/manifests/"),
        &knobs.redirect_manifests,
    ) {
        return answer(
            StatusCode::TEMPORARY_REDIRECT,
            &[("location", to.clone())],
            "",
        );
    }
    let authorized = match &knobs.auth {
        Auth::Basic(u, p) => {
            authorization.as_deref() == Some(basic(&(u.clone(), p.clone())).as_str())
        }
        Auth::Bearer { .. } => authorization.as_deref() == Some("Bearer good-token"),
    };
    if !authorized {
        let challenge = match &knobs.auth {
            Auth::Basic(..) => r#"Basic realm="hostile""#.to_string(),
            Auth::Bearer { realm, .. } => {
                format!(r#"Bearer realm="{realm}",service="hostile",scope="repository:app:pull""#)
            }
        };
        return answer(
            StatusCode::UNAUTHORIZED,
            &[("www-authenticate", challenge)],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
    }
    let digest = manifest_digest();
    if path.starts_with("/v2/app/manifests/") {
        if let Some(to) = &knobs.redirect_manifests {
            return answer(
                StatusCode::TEMPORARY_REDIRECT,
                &[("location", to.clone())],
                "",
            );
        }
        let headers = [
            (
                "content-type",
                "application/vnd.oci.image.manifest.v1+json".to_string(),
            ),
            (
                "docker-content-digest",
                knobs.digest_header.clone().unwrap_or(digest),
            ),
            ("content-length", MANIFEST.len().to_string()),
        ];
        let body = if req.method() == Method::HEAD {
            Body::empty()
        } else {
            Body::from(MANIFEST)
        };
        return answer(StatusCode::OK, &headers, body);
    }
    if path.starts_with("/v2/app/referrers/") {
        let mut headers = vec![(
            "content-type",
            "application/vnd.oci.image.index.v1+json".to_string(),
        )];
        if let Some(link) = &knobs.referrers_link {
            headers.push(("link", format!(r#"<{link}>; rel="next""#)));
        }
        return answer(StatusCode::OK, &headers, index);
    }
    answer(
        StatusCode::NOT_FOUND,
        &[],
        r#"{"errors":[{"code":"NAME_UNKNOWN","message":"not here"}]}"#,
    )
}

/// A docker `config.json` holding `user:password` for `host`, in `dir`.
pub fn docker_config(dir: &Path, host: &str, user: &str, password: &str) -> PathBuf {
    let p = dir.join("docker-config.json");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        &p,
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .expect("write docker config");
    p
}

/// Whether any request carried an `Authorization` header.
pub fn any_credentials(seen: &[Seen]) -> bool {
    seen.iter().any(|s| s.authorization.is_some())
}
