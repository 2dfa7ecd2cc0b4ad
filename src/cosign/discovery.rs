//! Finding an image's cosign signatures, through vouch's own [`RegistryClient`] (its size
//! limits, digest checks, credentials and host rules):
//! - the legacy tag `sha256-<hex>.sig` in the image's repository: one OCI image manifest whose
//!   layers are simple-signing payloads, each carrying its signature, certificate, chain and
//!   Rekor entry as annotations (cosign `SignatureTagSuffix`; containers/image
//!   `sigstoreAttachmentTag`);
//! - Sigstore bundles attached as OCI referrers with artifact type
//!   `application/vnd.dev.sigstore.bundle.v0.3+json` (cosign 3), through the referrers API or
//!   its `sha256-<hex>` tag fallback.
//!
//! Hand-written: the layout is small, and the `sigstore` crate's cosign client would fetch from
//! registries itself, bypassing those limits and credentials.

use std::collections::BTreeMap;

use crate::reference::ImageReference;
use crate::registry::{
    Descriptor, Manifest, RegistryClient, RegistryError, MAX_ENVELOPE_BYTES, OCI_MANIFEST,
};

/// The media type of a simple-signing payload layer: the only layer that is a signature.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The artifact type (and layer media type) of a Sigstore bundle v0.3 referrer.
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// One signature found.
#[derive(Debug, Clone)]
pub enum Found {
    /// A layer of the `.sig` manifest.
    Legacy {
        /// Digest of the `.sig` manifest.
        manifest: String,
        /// The payload (the layer blob, digest-checked).
        payload: Vec<u8>,
        /// The layer's annotations.
        annotations: BTreeMap<String, String>,
    },
    /// A bundle referrer.
    Bundle {
        /// Digest of the referrer manifest.
        manifest: String,
        /// The bundle's media type.
        media_type: String,
        /// The bundle document (digest-checked).
        bytes: Vec<u8>,
    },
}

/// What discovery found.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Signatures, legacy first, at most the limit.
    pub found: Vec<Found>,
    /// `.sig` layers that are not signatures (other attachments), skipped as cosign skips them.
    pub other_attachments: usize,
    /// Whether more signatures exist than the limit.
    pub truncated: bool,
}

/// The legacy signature tag of a manifest digest (`sha256:ab…` → `sha256-ab….sig`).
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// Find the cosign signatures of a resolved image, at most `max` of them.
pub async fn discover(
    registry: &RegistryClient,
    reference: &ImageReference,
    target: &Descriptor,
    max: usize,
) -> Result<Discovered, String> {
    let mut d = Discovery {
        registry,
        reference,
        target,
        max,
        out: Discovered::default(),
    };
    d.legacy().await?;
    if d.out.found.len() < max {
        d.bundles().await?;
    }
    Ok(d.out)
}

/// One image's discovery under way.
struct Discovery<'a> {
    registry: &'a RegistryClient,
    reference: &'a ImageReference,
    target: &'a Descriptor,
    max: usize,
    out: Discovered,
}

impl Discovery<'_> {
    /// The legacy `.sig` manifest's simple-signing layers.
    async fn legacy(&mut self) -> Result<(), String> {
        let tag = signature_tag(&self.target.digest);
        let tagged = ImageReference::parse(&format!(
            "{}/{}:{tag}",
            self.reference.registry(),
            self.reference.repository()
        ))
        .map_err(|e| format!("the signature tag {tag}: {e}"))?;
        let desc = match self.registry.resolve_digest(&tagged).await {
            Ok(d) => d,
            Err(RegistryError::NotFound { .. }) => return Ok(()),
            Err(e) => {
                return Err(format!(
                    "unable to read the cosign signature tag {tag}: {e}"
                ))
            }
        };
        if desc.media_type != OCI_MANIFEST {
            return Err(format!(
                "the cosign signature tag {tag} holds a {:?}, not an OCI image manifest",
                desc.media_type
            ));
        }
        let manifest = self
            .manifest(&desc, &format!("the cosign signature manifest {tag}"))
            .await?;
        for layer in manifest.layers {
            if layer.media_type != SIMPLE_SIGNING {
                self.out.other_attachments += 1;
                continue;
            }
            if self.out.found.len() == self.max {
                self.out.truncated = true;
                break;
            }
            let payload = self
                .blob(
                    &layer,
                    &format!("cosign signature payload {}", layer.digest),
                )
                .await?;
            self.out.found.push(Found::Legacy {
                manifest: desc.digest.clone(),
                payload,
                annotations: layer.annotations.unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// The Sigstore bundles attached as referrers.
    async fn bundles(&mut self) -> Result<(), String> {
        let room = self.max - self.out.found.len();
        let listed = self
            .registry
            .referrers(self.reference, self.target, BUNDLE_V03, room)
            .await
            .map_err(|e| format!("unable to list the Sigstore bundles of the image: {e}"))?;
        for desc in listed {
            if self.out.found.len() == self.max {
                self.out.truncated = true;
                break;
            }
            if desc.media_type != OCI_MANIFEST {
                continue;
            }
            let manifest = self
                .manifest(&desc, &format!("Sigstore bundle referrer {}", desc.digest))
                .await?;
            // cosign skips referrers that do not hold a bundle.
            let Some(layer) = manifest.layers.iter().find(|l| {
                l.media_type
                    .starts_with("application/vnd.dev.sigstore.bundle")
            }) else {
                continue;
            };
            let bytes = self
                .blob(layer, &format!("Sigstore bundle {}", layer.digest))
                .await?;
            self.out.found.push(Found::Bundle {
                manifest: desc.digest.clone(),
                media_type: layer.media_type.clone(),
                bytes,
            });
        }
        Ok(())
    }

    /// The image manifest `desc` names (`what`, in errors), digest-checked and parsed.
    async fn manifest(&self, desc: &Descriptor, what: &str) -> Result<Manifest, String> {
        let bytes = self
            .registry
            .fetch_manifest(self.reference, desc)
            .await
            .map_err(|e| format!("unable to read {what}: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{what} is malformed: {e}"))
    }

    /// A signature or bundle blob (`what`, in errors), digest-checked, at most an envelope's
    /// size.
    async fn blob(&self, layer: &Descriptor, what: &str) -> Result<Vec<u8>, String> {
        self.registry
            .fetch_blob(self.reference, layer, MAX_ENVELOPE_BYTES)
            .await
            .map_err(|e| format!("unable to read {what}: {e}"))
    }
}
