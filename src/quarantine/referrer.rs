//! The registry-neutral quarantine status artifact: an OCI referrer of the image with
//! artifactType `application/vnd.vouch.quarantine.v1+json` whose single layer is
//! `{"state": "Passed"|"Quarantined"|"Failed", "details": …, "updated": RFC 3339}`.
//! The newest (by `updated`) counts.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ARTIFACT_TYPE_STATUS;
use crate::notation::signer::{EMPTY_CONFIG, EMPTY_CONFIG_MEDIA_TYPE};
use crate::reference::ImageReference;
use crate::registry::{
    sha256_hex, Descriptor, Manifest, RegistryClient, RegistryError, OCI_MANIFEST,
};

/// Most status artifacts looked at per image.
const MAX_STATUSES: usize = 50;
/// Largest status body read.
const MAX_STATUS_BYTES: u64 = 64 * 1024;

/// The body of a status artifact.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusBody {
    /// `Passed`, `Quarantined` or `Failed`.
    pub state: String,
    /// Anything the scanner wants to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// When the status was set (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub updated: OffsetDateTime,
}

/// A status artifact found in the registry.
#[derive(Debug, Clone)]
pub struct FoundStatus {
    /// The status manifest.
    pub manifest: Descriptor,
    /// Its body.
    pub body: StatusBody,
}

/// Every readable status artifact of `subject`, newest first. Unreadable ones are skipped
/// (returned as notes), registry errors are errors.
pub async fn list(
    registry: &RegistryClient,
    image: &ImageReference,
    subject: &Descriptor,
) -> Result<(Vec<FoundStatus>, Vec<String>), RegistryError> {
    let descs = registry
        .referrers(image, subject, ARTIFACT_TYPE_STATUS, MAX_STATUSES)
        .await?;
    let mut found = Vec::new();
    let mut notes = Vec::new();
    for d in descs.into_iter().take(MAX_STATUSES) {
        let bytes = registry.fetch_manifest(image, &d).await?;
        let manifest: Manifest = match serde_json::from_slice(&bytes) {
            Ok(m) => m,
            Err(e) => {
                notes.push(format!("status artifact {} is malformed: {e}", d.digest));
                continue;
            }
        };
        let [layer] = manifest.layers.as_slice() else {
            notes.push(format!(
                "status artifact {} must have exactly one layer",
                d.digest
            ));
            continue;
        };
        let blob = registry.fetch_blob(image, layer, MAX_STATUS_BYTES).await?;
        match serde_json::from_slice::<StatusBody>(&blob) {
            Ok(mut body) => {
                // Whoever pushed the artifact wrote these words: escaped where they enter.
                crate::escape::escape_in_place(&mut body.state);
                if let Some(serde_json::Value::String(d)) = &mut body.details {
                    crate::escape::escape_in_place(d);
                }
                found.push(FoundStatus { manifest: d, body })
            }
            Err(e) => notes.push(format!("status artifact {} is unreadable: {e}", d.digest)),
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.body.updated));
    Ok((found, notes))
}

/// Push a status artifact for `subject`; returns the status manifest's descriptor.
pub async fn push(
    registry: &RegistryClient,
    image: &ImageReference,
    subject: &Descriptor,
    body: &StatusBody,
) -> Result<Descriptor, RegistryError> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    registry.push_blob(image, EMPTY_CONFIG).await?;
    let layer = registry.push_blob(image, &bytes).await?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE_STATUS,
        "config": {"mediaType": EMPTY_CONFIG_MEDIA_TYPE, "digest": format!("sha256:{}", sha256_hex(EMPTY_CONFIG)), "size": EMPTY_CONFIG.len()},
        "layers": [{"mediaType": ARTIFACT_TYPE_STATUS, "digest": layer.digest, "size": layer.size}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": {"org.opencontainers.image.created": body.updated.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()},
    }))
    .unwrap_or_default();
    let mut d = registry
        .push_manifest(image, OCI_MANIFEST, &manifest, None)
        .await?;
    d.artifact_type = Some(ARTIFACT_TYPE_STATUS.into());
    Ok(d)
}
