//! The cosign "simple signing" payload of a legacy `.sig` signature: what the signature says it
//! is about. cosign (and containers/image writing the same format) signs
//! `{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":…},"type":"cosign container image signature"},"optional":…}`.
//!
//! Hand-written: it is one small JSON document; the crates that read it (`sigstore`) bring the
//! registry client we must not use.

use serde::Deserialize;

/// The only `critical.type` a signature of an image has.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// The parts of the payload vouch judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// `critical.image.docker-manifest-digest`: the manifest digest the signature is about.
    pub manifest_digest: String,
    /// `critical.identity.docker-reference`: the repository the signer named (not judged, as
    /// cosign does not judge it: the digest binds the signature to the image).
    pub docker_reference: String,
}

#[derive(Deserialize)]
struct Raw {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Parse a payload; the error says what is wrong with it.
pub fn parse(payload: &[u8]) -> Result<SimpleSigning, String> {
    let raw: Raw = serde_json::from_slice(payload)
        .map_err(|e| format!("the payload is not a simple-signing document: {e}"))?;
    if raw.critical.kind != SIGNATURE_TYPE {
        return Err(format!(
            "the payload's critical.type is {:?}, not {SIGNATURE_TYPE:?}",
            raw.critical.kind
        ));
    }
    Ok(SimpleSigning {
        manifest_digest: raw.critical.image.docker_manifest_digest,
        docker_reference: raw.critical.identity.docker_reference,
    })
}

/// The payload must name `image_digest`.
pub fn check_digest(payload: &SimpleSigning, image_digest: &str) -> Result<(), String> {
    if payload.manifest_digest != image_digest {
        return Err(format!(
            "the payload signs critical.image.docker-manifest-digest {:?}, not the image's digest {image_digest}",
            payload.manifest_digest
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cosign_payloads_and_refuses_other_types() {
        let ok = br#"{"critical":{"identity":{"docker-reference":"r/a"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":null}"#;
        let p = parse(ok).unwrap();
        assert_eq!(p.manifest_digest, "sha256:ab");
        assert!(check_digest(&p, "sha256:ab").is_ok());
        assert!(check_digest(&p, "sha256:cd")
            .unwrap_err()
            .contains("not the image's digest sha256:cd"));
        let other = br#"{"critical":{"identity":{"docker-reference":"r/a"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"atomic container signature"}}"#;
        assert!(parse(other).unwrap_err().contains("critical.type"));
        assert!(parse(b"this is not a signature").is_err());
    }
}
