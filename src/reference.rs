//! Image references as a Kubernetes `image:` field writes them, normalised the way the container
//! runtime pulls them.
//!
//! Parsing follows the distribution reference grammar (via `oci-client`, which implements Docker's
//! `normalize.go`): `nginx` is `docker.io/library/nginx:latest`, `localhost:5000/a/b:t` keeps its
//! port and nested path, and `repo:tag@sha256:…` keeps both tag and digest (the digest wins for
//! pulling). The normalised `registry/repository` is what Notation trust-policy scopes are matched
//! against, so users write scopes like `docker.io/library/nginx`.

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
        let inner = Reference::try_from(image).map_err(|e| fail(describe(&e, image)))?;
        if inner.repository().chars().any(|c| c.is_ascii_uppercase()) {
            return Err(fail("repository name must be lowercase".into()));
        }
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

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
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
