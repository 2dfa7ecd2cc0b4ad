//! A registry's origin — the scheme, host and port its credentials were issued for — and the
//! rule that nothing carrying them goes anywhere else.
//!
//! Every URL vouch requests from a registry is checked against the origin of the image's
//! registry before it is sent: a pagination `Link`, an upload `Location` or any other URL the
//! registry hands back that names another host or port, or plain HTTP where the registry uses
//! HTTPS, is refused. Redirects are followed by reqwest, which drops `Authorization` when one
//! leaves the origin; vouch additionally refuses HTTPS-to-HTTP redirects and never answers an
//! authentication challenge that came from another origin (see [`super::transport`]).

use url::Url;

use super::RegistryError;

/// Scheme, host and port of one registry, as the credentials for it are issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    /// `https` or `http` (`--insecure-registry`).
    scheme: &'static str,
    /// Host as the URL parser writes it (lower case, IPv4 dotted).
    host: String,
    /// Port, the scheme's default when none is written.
    port: u16,
    /// `scheme://host[:port]` as requests are written.
    base: String,
}

impl Origin {
    /// The origin of a registry endpoint (`host[:port]`, already canonical) over `scheme`.
    pub(crate) fn new(scheme: &'static str, endpoint: &str) -> Result<Self, RegistryError> {
        let base = format!("{scheme}://{endpoint}");
        let bad = |reason: String| RegistryError::Malformed {
            host: endpoint.to_string(),
            what: "registry host".into(),
            reason,
        };
        let url = Url::parse(&base).map_err(|e| bad(e.to_string()))?;
        let host = url
            .host_str()
            .ok_or_else(|| bad("no host".into()))?
            .to_string();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| bad("no port".into()))?;
        Ok(Self {
            scheme,
            host,
            port,
            base,
        })
    }

    /// `scheme://host[:port]`, the prefix of every URL sent to this registry.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Whether this is a plain-HTTP registry.
    pub(crate) fn is_plain_http(&self) -> bool {
        self.scheme == "http"
    }

    /// Why `url` is not on this origin, or `None` when it is.
    pub(crate) fn leaves(&self, url: &Url) -> Option<String> {
        if self.scheme == "https" && url.scheme() == "http" {
            return Some("plain HTTP for a registry reached over HTTPS".into());
        }
        if url.scheme() != self.scheme {
            return Some(format!(
                "scheme {:?} instead of {}",
                url.scheme(),
                self.scheme
            ));
        }
        if url.host_str() != Some(self.host.as_str())
            || url.port_or_known_default() != Some(self.port)
        {
            return Some(format!("another host than {}", self.base));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Some("a URL with user information".into());
        }
        None
    }

    /// Check a URL the registry handed us before anything is sent to it.
    pub(crate) fn check(&self, url: &str) -> Result<Url, RegistryError> {
        let refuse = |reason: String| RegistryError::LeavesRegistry {
            host: self.host_port(),
            url: crate::escape::excerpt(url.as_bytes(), 200),
            reason,
        };
        let parsed = Url::parse(url).map_err(|e| refuse(format!("not a URL ({e})")))?;
        match self.leaves(&parsed) {
            Some(reason) => Err(refuse(reason)),
            None => Ok(parsed),
        }
    }

    fn host_port(&self) -> String {
        self.base
            .split_once("://")
            .map_or_else(|| self.base.clone(), |(_, h)| h.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_scheme_host_and_port_are_on_the_origin() {
        let o = Origin::new("https", "registry.example:5000").unwrap();
        assert!(o
            .check("https://registry.example:5000/v2/a/referrers/x?n=1")
            .is_ok());
        for off in [
            "http://registry.example:5000/v2/a",
            "https://registry.example:5001/v2/a",
            "https://registry.example/v2/a",
            "https://evil.example:5000/v2/a",
            "https://user:pw@registry.example:5000/v2/a",
            "//registry.example:5000/v2/a",
        ] {
            let e = o.check(off).unwrap_err();
            assert!(
                matches!(e, RegistryError::LeavesRegistry { .. }),
                "{off}: {e}"
            );
        }
        // The default port is the same origin whether written or not.
        let o = Origin::new("https", "registry.example").unwrap();
        assert!(o.check("https://registry.example:443/v2/").is_ok());
        // A plain-HTTP registry's origin is plain HTTP only.
        let o = Origin::new("http", "localhost:5000").unwrap();
        assert!(o.check("http://localhost:5000/v2/").is_ok());
        assert!(o.check("https://localhost:5000/v2/").is_err());
    }
}
