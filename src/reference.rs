//! Image references as a Kubernetes `image:` field writes them, normalised the way the container
//! runtime pulls them.
//!
//! Parsing follows the distribution reference grammar (via `oci-client`, which implements Docker's
//! `normalize.go`): `nginx` is `docker.io/library/nginx:latest`, `localhost:5000/a/b:t` keeps its
//! port and nested path, and `repo:tag@sha256:…` keeps both tag and digest (the digest wins for
//! pulling). The normalised `registry/repository` is what Notation trust-policy scopes are matched
//! against, so users write scopes like `docker.io/library/nginx`.
//!
//! The registry host is then canonicalised ([`canonical_host`]): `LOCALHOST:046000`,
//! `127.1:5000` and `2130706433:5000` reach the same registry as `localhost:46000` and
//! `127.0.0.1:5000`, so they must select the same trust-policy statement, quarantine rule and
//! credentials. Everything downstream sees only the canonical spelling; [`ImageReference::original`]
//! keeps what was written.
//!
//! The grammar is checked by a small hand-written parser rather than oci-spec's regular
//! expression: compiling that expression costs ~25 ms of CPU per process (Unicode classes),
//! which is most of a cold `vouch verify`. A differential test keeps the two in agreement.

use std::fmt;

use oci_client::{ParseError, Reference};

/// Longest image string we try to parse. Kubernetes has no limit of its own, but a reference
/// longer than this is certainly not a real one and the regex should not chew on it.
const MAX_REFERENCE_LEN: usize = 4096;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    original: String,
    inner: Reference,
}

/// Why an image string is not a reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct ReferenceError {
    /// The string as it was given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ImageReference {
    /// Parse an image string as Kubernetes accepts it in `image:`.
    pub fn parse(image: &str) -> Result<Self, ReferenceError> {
        let fail = |reason: String| ReferenceError {
            reference: truncate_for_message(image),
            reason,
        };
        if image.len() > MAX_REFERENCE_LEN {
            return Err(fail(format!("longer than {MAX_REFERENCE_LEN} characters")));
        }
        if image.trim() != image {
            return Err(fail("leading or trailing white space".into()));
        }
        let inner = grammar::parse(image).map_err(|e| fail(describe(&e, image)))?;
        if inner.repository().chars().any(|c| c.is_ascii_uppercase()) {
            return Err(fail("repository name must be lowercase".into()));
        }
        let inner = if already_canonical(inner.registry()) {
            inner
        } else {
            let registry = canonical_registry(inner.registry()).map_err(fail)?;
            // Parse again with the host spelled canonically, so that Docker's normalisation
            // (`Index.Docker.io/redis` is `docker.io/library/redis`) applies to it as well. A
            // canonical host differs only when the first component was a host.
            let rest = image.find('/').map_or("", |i| &image[i..]);
            if registry == inner.registry() {
                inner
            } else {
                grammar::parse(&format!("{registry}{rest}"))
                    .map_err(|e| fail(describe(&e, image)))?
            }
        };
        if let Some(digest) = inner.digest() {
            // The grammar admits upper-case hex; registries and Notation payloads use lower case
            // only, so an upper-case digest could never match a signature.
            if digest.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(fail("digest must be lower-case hex".into()));
            }
        }
        Ok(Self {
            original: image.to_string(),
            inner,
        })
    }

    /// The string as written in the workload.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// Registry host (and port), normalised: `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// Host to contact for the registry API (`index.docker.io` for Docker Hub).
    pub fn registry_endpoint(&self) -> &str {
        self.inner.resolve_registry()
    }

    /// Repository path inside the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// Tag, if one was written (`latest` when neither tag nor digest was).
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// Digest, if one was written.
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// `registry/repository`: the string Notation trust-policy `registryScopes` are compared with.
    pub fn scope(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// `registry/repository@digest` for a resolved digest.
    pub fn with_digest(&self, digest: &str) -> String {
        format!("{}@{}", self.scope(), digest)
    }

    /// The tag or digest to ask the registry for: the digest when one was written.
    pub fn manifest_reference(&self) -> &str {
        self.digest().or_else(|| self.tag()).unwrap_or("latest")
    }
}

/// The canonical spelling of a registry host `host[:port]`, as the WHATWG URL host parser (the
/// `url` crate) reads it, which agrees with what the C resolver connects to: the name in lower
/// case, an IPv4 address in any of its spellings (`127.1`, `2130706433`, `0x7f.0.0.1`) as
/// dotted decimal, the port without leading zeros and without the HTTPS default (`:443` is the
/// same registry as none: registries are HTTPS unless listed insecure, and an insecure registry
/// on port 443 is not supported). Refused: anything but letters, digits, `.`, `-` and one
/// `:port`; a trailing dot; a port past 65535; a name that ends in a number but is no IPv4
/// address.
pub fn canonical_host(host: &str) -> Result<String, String> {
    let bad = || format!("registry host {host:?} is not a valid host name");
    if host.is_empty()
        || host.ends_with('.')
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        || host.bytes().filter(|b| *b == b':').count() > 1
    {
        return Err(bad());
    }
    let url = url::Url::parse(&format!("https://{host}/"))
        .map_err(|e| format!("registry host {host:?} is not a valid host name: {e}"))?;
    let name = url.host_str().ok_or_else(bad)?;
    Ok(match url.port() {
        Some(port) => format!("{name}:{port}"),
        None => name.to_string(),
    })
}

/// Whether `host` is already written as [`canonical_registry`] writes it, decided without the
/// URL parser, since every admission parses its images: lower-case DNS labels, none of them
/// punycode (the parser checks those) and the last not a number (an IPv4 spelling), no Docker
/// Hub alias, and no port or one without leading zeros, at most 65535 and not 443. Anything
/// else takes the full path, which may well find it canonical too.
fn already_canonical(host: &str) -> bool {
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let port_ok = port.is_none_or(|p| {
        !p.starts_with('0')
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65535 && n != 443)
    });
    let last = name.rsplit('.').next().unwrap_or_default();
    port_ok
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !name
            .split('.')
            .any(|l| l.is_empty() || l.starts_with("xn--"))
        && !last.bytes().all(|b| b.is_ascii_digit())
        && !last.starts_with("0x")
        && !matches!(name, "index.docker.io" | "registry-1.docker.io")
}

/// The registry a canonical host names, with Docker Hub's aliases (`index.docker.io`,
/// `registry-1.docker.io`) as `docker.io`, the name trust-policy scopes use.
pub fn canonical_registry(host: &str) -> Result<String, String> {
    let host = canonical_host(host)?;
    Ok(match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        _ => host,
    })
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

/// distribution's reference grammar (`reference/regexp.go`), the same one oci-spec's regular
/// expression encodes, followed by Docker's normalisation (`normalize.go#splitDockerDomain`).
mod grammar {
    use oci_client::{ParseError, Reference};

    const NAME_TOTAL_LENGTH_MAX: usize = 255;

    fn alnum_lower(c: char) -> bool {
        c.is_ascii_lowercase() || c.is_ascii_digit()
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    fn path_component(s: &str) -> bool {
        let b = s.as_bytes();
        if b.is_empty() || !alnum_lower(b[0] as char) || !alnum_lower(b[b.len() - 1] as char) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            let c = b[i] as char;
            if alnum_lower(c) {
                i += 1;
                continue;
            }
            // A separator: ".", "_", "__" or a run of "-", followed by an alphanumeric.
            let start = i;
            match c {
                '.' => i += 1,
                '_' => {
                    i += 1;
                    if i < b.len() && b[i] == b'_' {
                        i += 1;
                    }
                }
                '-' => {
                    while i < b.len() && b[i] == b'-' {
                        i += 1;
                    }
                }
                _ => return false,
            }
            if i == start || i >= b.len() || !alnum_lower(b[i] as char) {
                return false;
            }
        }
        true
    }

    /// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
    fn domain_component(s: &str) -> bool {
        let b = s.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    }

    /// `domain-component(\.domain-component)*(:[0-9]+)?`
    fn domain(s: &str) -> bool {
        let (host, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        host.split('.').all(domain_component)
            && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
    }

    /// `[\w][\w.-]{0,127}` (ASCII word characters, as in Go).
    fn tag(s: &str) -> bool {
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && word(b[0])
            && b.iter().all(|c| word(*c) || *c == b'.' || *c == b'-')
    }

    /// `algorithm:hex`, with the algorithms and lengths oci-spec accepts.
    fn digest(s: &str) -> Result<(), ParseError> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or(ParseError::ReferenceInvalidFormat)?;
        let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
            part.as_bytes()
                .first()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && part.bytes().all(|c| c.is_ascii_alphanumeric())
        });
        if !alg_ok || hex.len() < 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(ParseError::ReferenceInvalidFormat);
        }
        let want = match alg {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => return Err(ParseError::DigestUnsupported),
        };
        if hex.len() != want {
            return Err(ParseError::DigestInvalidLength);
        }
        Ok(())
    }

    /// Parse and normalise a reference.
    pub fn parse(s: &str) -> Result<Reference, ParseError> {
        if s.is_empty() {
            return Err(ParseError::NameEmpty);
        }
        let (rest, dig) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        // A ":" after the last "/" separates the tag; one before it is a registry port.
        let (name, tg) = match rest.rfind(':') {
            Some(i) if rest[i..].find('/').is_none() => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if tg.is_some_and(|t| !tag(t)) {
            return Err(ParseError::ReferenceInvalidFormat);
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        // The grammar: an optional domain, then path components.
        let first_is_domain = parts.len() > 1 && domain(parts[0]) && !path_component(parts[0]);
        let first_could_be_both = parts.len() > 1 && domain(parts[0]) && path_component(parts[0]);
        let path_start = usize::from(first_is_domain || first_could_be_both);
        if parts[path_start..].iter().any(|p| !path_component(p)) {
            return Err(ParseError::ReferenceInvalidFormat);
        }
        if let Some(d) = dig {
            digest(d)?;
        }
        // Docker's split: the first component is a registry only if it looks like a host.
        let (mut registry, mut repository) = if parts.len() > 1
            && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
        {
            let r = parts.remove(0).to_string();
            (r, parts.join("/"))
        } else {
            ("docker.io".to_string(), parts.join("/"))
        };
        if registry == "index.docker.io" {
            registry = "docker.io".into();
        }
        if registry == "docker.io" && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        if repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ParseError::NameTooLong);
        }
        Ok(match (tg, dig) {
            (Some(t), Some(d)) => {
                Reference::with_tag_and_digest(registry, repository, t.into(), d.into())
            }
            (None, Some(d)) => Reference::with_digest(registry, repository, d.into()),
            (Some(t), None) => Reference::with_tag(registry, repository, t.into()),
            (None, None) => Reference::with_tag(registry, repository, "latest".into()),
        })
    }
}

fn describe(err: &ParseError, image: &str) -> String {
    match err {
        ParseError::ReferenceInvalidFormat if image.chars().any(|c| c.is_ascii_uppercase()) => {
            "invalid reference format (repository names must be lower case)".into()
        }
        ParseError::ReferenceInvalidFormat => {
            "invalid reference format (expected [registry[:port]/]repository[:tag][@digest])".into()
        }
        other => other.to_string(),
    }
}

fn truncate_for_message(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_string();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

    #[test]
    fn docker_hub_short_names_are_normalised() {
        let r = ImageReference::parse("nginx").unwrap();
        assert_eq!(r.scope(), "docker.io/library/nginx");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.registry_endpoint(), "index.docker.io");
        let r = ImageReference::parse("bitnami/redis:7").unwrap();
        assert_eq!(r.scope(), "docker.io/bitnami/redis");
        let r = ImageReference::parse("index.docker.io/library/busybox:1").unwrap();
        assert_eq!(r.scope(), "docker.io/library/busybox");
    }

    #[test]
    fn ports_nested_paths_tags_and_digests() {
        let r = ImageReference::parse("localhost:5000/team/app/api:v1").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "team/app/api");
        assert_eq!(r.manifest_reference(), "v1");
        let r = ImageReference::parse(&format!("127.0.0.1:5000/app@{D}")).unwrap();
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_reference(), D);
        let r = ImageReference::parse(&format!("registry.example/app:v1@{D}")).unwrap();
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.manifest_reference(), D, "the digest wins over the tag");
        assert_eq!(r.with_digest(D), format!("registry.example/app@{D}"));
    }

    #[test]
    fn every_spelling_of_a_registry_host_is_canonicalised() {
        for (written, canonical) in [
            ("LOCALHOST:46000/app", "localhost:46000/app"),
            ("localhost:046000/app", "localhost:46000/app"),
            ("127.1:46000/app", "127.0.0.1:46000/app"),
            ("2130706433:46000/app", "127.0.0.1:46000/app"),
            ("0x7f.0.0.1:46000/app", "127.0.0.1:46000/app"),
            ("127.0.0.01:46000/app", "127.0.0.1:46000/app"),
            ("Registry.Example/team/app", "registry.example/team/app"),
            ("registry.example:443/app", "registry.example/app"),
            ("registry.example:0443/app", "registry.example/app"),
            ("myacr.azurecr.io:443/app", "myacr.azurecr.io/app"),
            (
                "registry-1.docker.io/library/nginx",
                "docker.io/library/nginx",
            ),
            ("registry-1.docker.io/nginx", "docker.io/library/nginx"),
            ("Registry-1.Docker.io:443/nginx", "docker.io/library/nginx"),
            ("localhost:5000/app", "localhost:5000/app"),
            ("Index.Docker.io/redis", "docker.io/library/redis"),
        ] {
            let r = ImageReference::parse(written).unwrap();
            assert_eq!(r.scope(), canonical, "{written}");
            assert_eq!(r.original(), written);
        }
        for bad in ["localhost:99999/app", "registry.123/app"] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
        for bad in ["reg%2eexample", "registry.example.", "a:1:2", "", "[::1]"] {
            assert!(canonical_host(bad).is_err(), "{bad}");
        }
    }

    /// The shortcut never calls a host canonical that the full path would spell otherwise.
    #[test]
    fn the_canonical_shortcut_agrees_with_the_url_parser() {
        let names = [
            "docker.io",
            "localhost",
            "registry.example",
            "a-b.example",
            "ghcr.io",
            "x1.y2",
            "127.0.0.1",
            "127.1",
            "2130706433",
            "0x7f.0.0.1",
            "reg.0x1",
            "reg.08",
            "reg.1a",
            "index.docker.io",
            "registry-1.docker.io",
            "xn--n3h.com",
            "xn--bad",
            "Registry.io",
            "a",
            "1a",
            "a1",
            "-a",
            "a-",
        ];
        let ports = [
            "", ":5000", ":05000", ":443", ":0443", ":65535", ":65536", ":1", ":0", ":80",
        ];
        for name in names {
            for port in ports {
                let host = format!("{name}{port}");
                if already_canonical(&host) {
                    assert_eq!(
                        canonical_registry(&host).as_deref(),
                        Ok(host.as_str()),
                        "{host}"
                    );
                }
            }
        }
        assert!(already_canonical("registry.example:5000"));
        assert!(already_canonical("docker.io"));
        assert!(!already_canonical("127.0.0.1:5000"));
    }

    /// The hand-written grammar agrees with oci-spec's regular expression (plus our lower-case
    /// rules) on accepted references and their parts, and on rejections.
    #[test]
    fn the_parser_agrees_with_the_oci_spec_grammar() {
        let d = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
        let cases = [
            "nginx".to_string(),
            "nginx:1.25".into(),
            "library/nginx".into(),
            "docker.io/nginx".into(),
            "index.docker.io/library/busybox:1".into(),
            "bitnami/redis:7.2-debian".into(),
            "localhost/app".into(),
            "localhost:5000/app".into(),
            "localhost:5000/a/b/c:v1".into(),
            "127.0.0.1:5000/app:v1".into(),
            "registry.example/app".into(),
            "registry.example:443/team/app:v1".into(),
            format!("app@{d}"),
            format!("registry.example/app:v1@{d}"),
            format!("localhost:5000/app@{d}"),
            "test.com:tag".into(),
            "test.com:5000".into(),
            "foo_bar.com:8080".into(),
            "foo/foo_bar.com:8080".into(),
            "a/b__c/d--e/f.g".into(),
            "a/b___c".into(),
            "a/-b".into(),
            "a/b-".into(),
            "a/b.".into(),
            "my-registry.io/x".into(),
            "-bad.io/x".into(),
            "bad-.io/x".into(),
            "UPPER/case".into(),
            "Upper.io/lower".into(),
            "app:".into(),
            ":tag".into(),
            "app@".into(),
            format!("@{d}"),
            "app@sha256:abc".into(),
            "app@md5:d41d8cd98f00b204e9800998ecf8427e".into(),
            format!("app@{}", d.replace("sha256", "sha384")),
            "a b".into(),
            "app:tag:tag".into(),
            "app:v1/x".into(),
            "registry.example/".into(),
            "/app".into(),
            "a//b".into(),
            "registry.example:/app".into(),
            "registry.example:port/app".into(),
            "xn--n3h.com/myimage:xn--n3h.com".into(),
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
            "app:_tag".into(),
            "app:.tag".into(),
            format!("app:{}", "t".repeat(128)),
            format!("app:{}", "t".repeat(129)),
        ];
        for c in cases {
            let ours = grammar::parse(&c);
            let theirs = Reference::try_from(c.as_str());
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(
                        (a.registry(), a.repository(), a.tag(), a.digest()),
                        (b.registry(), b.repository(), b.tag(), b.digest()),
                        "{c}"
                    )
                }
                (Err(_), Err(_)) => {}
                // oci-spec accepts upper-case names (its domain part); ImageReference rejects
                // them afterwards, so only that difference is allowed.
                (Err(_), Ok(b)) => assert!(
                    b.repository().chars().any(|ch| ch.is_ascii_uppercase()),
                    "{c}: we reject, oci-spec accepts {b:?}"
                ),
                (Ok(a), Err(e)) => panic!("{c}: we accept {a:?}, oci-spec rejects: {e}"),
            }
        }
    }

    #[test]
    fn bad_references_name_the_reference() {
        for bad in [
            "",
            "UPPER/case",
            "app@sha256:1234",
            "app@md5:d41d8cd98f00b204e9800998ecf8427e",
            " nginx",
            "registry.example/app:",
            "a b",
        ] {
            let err = ImageReference::parse(bad).unwrap_err();
            assert_eq!(err.reference, bad);
            assert!(err.to_string().contains("invalid image reference"), "{err}");
        }
        let upper =
            ImageReference::parse(&format!("app@{}", D.to_uppercase().replace("SHA", "sha")));
        assert!(upper.unwrap_err().reason.contains("lower-case"));
        let long = "a".repeat(5000);
        assert!(ImageReference::parse(&long)
            .unwrap_err()
            .reason
            .contains("longer"));
    }
}
