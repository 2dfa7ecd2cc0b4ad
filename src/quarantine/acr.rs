//! Azure Container Registry quarantine, from the ACR data-plane metadata API.
//!
//! Wire format, from Azure's REST specification (`specification/containerregistry/data-plane`
//! in azure-rest-api-specs: `GetManifestProperties`, `UpdateManifestProperties`), the Azure/acr
//! repository's `docs/preview/quarantine`, and azure-cli's acr module:
//! - `GET /acr/v1/{repository}/_manifests/{digest}` answers
//!   `{"registry", "imageName", "manifest": {"digest", …, "changeableAttributes":
//!   {"deleteEnabled", "writeEnabled", "readEnabled", "listEnabled", "quarantineState",
//!   "quarantineDetails"}}}`. The stable 2021-07-01 specification and the generated SDKs drop
//!   the two quarantine fields, so they are read here by hand. Only `Passed` and `Failed` are
//!   documented; every value other than `Passed` is "not admitted".
//! - `PATCH` of the same path with `{"quarantineState", "quarantineDetails"}` promotes.
//! - The metadata API challenges for scope `repository:{repo}:metadata_read` (`metadata_write`
//!   to PATCH); tokens come from `/oauth2/token` like pull tokens.
//! - A by-digest pull of a quarantined image is refused with `IMAGE_QUARANTINED` (see
//!   [`crate::registry::RegistryError::Quarantined`]).

use reqwest::Method;
use serde::Deserialize;

use super::State;
use crate::escape;
use crate::reference::ImageReference;
use crate::registry::{RegistryClient, RegistryError};

const MAX_PROPERTIES_BYTES: u64 = 1024 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Properties {
    manifest: ManifestProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestProperties {
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    changeable_attributes: Option<Attributes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attributes {
    #[serde(default)]
    read_enabled: Option<bool>,
    #[serde(default)]
    quarantine_state: Option<String>,
    #[serde(default)]
    quarantine_details: Option<String>,
}

fn path(image: &ImageReference, digest: &str) -> String {
    format!("/acr/v1/{}/_manifests/{digest}", image.repository())
}

/// Read an image's quarantine state. An image without a `quarantineState` was pushed before
/// quarantine was enabled and is treated as `Passed`, as ACR serves it.
pub async fn state(registry: &RegistryClient, image: &ImageReference, digest: &str) -> State {
    let scope = Some(format!("repository:{}:metadata_read", image.repository()));
    let (status, body) = match registry
        .api(
            image,
            Method::GET,
            &path(image, digest),
            None,
            scope,
            MAX_PROPERTIES_BYTES,
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return State::Unknown(format!("ACR metadata API: {e}")),
    };
    if !status.is_success() {
        return State::Unknown(format!(
            "ACR metadata API answered {status}: {}",
            escape::excerpt(&body, 200)
        ));
    }
    let props: Properties = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return State::Unknown(format!("ACR manifest properties are malformed: {e}")),
    };
    if props
        .manifest
        .digest
        .as_deref()
        .is_some_and(|d| d != digest)
    {
        return State::Unknown(format!(
            "ACR answered for {} when asked about {digest}",
            escape::escape(&props.manifest.digest.unwrap_or_default())
        ));
    }
    let Some(attrs) = props.manifest.changeable_attributes else {
        return State::Unknown("ACR manifest properties have no changeableAttributes".into());
    };
    if attrs.read_enabled == Some(false) {
        return State::Locked(
            "ACR image lock readEnabled is false: nothing can pull it (pods would fail with ImagePullBackOff)".into(),
        );
    }
    match attrs.quarantine_state.as_deref() {
        None | Some("Passed") => State::Passed,
        // The scanner's words are shown in denials and logs: escaped where they enter.
        Some(other) => State::NotPassed {
            state: escape::escape(other).into_owned(),
            details: attrs
                .quarantine_details
                .filter(|d| !d.is_empty())
                .map(|d| escape::escape(&d).into_owned()),
        },
    }
}

/// Set an image's quarantine state (the promotion a scanner performs).
pub async fn set(
    registry: &RegistryClient,
    image: &ImageReference,
    digest: &str,
    state: &str,
    details: Option<&str>,
) -> Result<(), RegistryError> {
    let scope = Some(format!(
        "repository:{}:metadata_read,metadata_write",
        image.repository()
    ));
    let body = serde_json::to_vec(&serde_json::json!({
        "quarantineState": state,
        "quarantineDetails": details.unwrap_or(""),
    }))
    .unwrap_or_default();
    let (status, resp) = registry
        .api(
            image,
            Method::PATCH,
            &path(image, digest),
            Some(body),
            scope,
            MAX_PROPERTIES_BYTES,
        )
        .await?;
    if status.is_success() {
        Ok(())
    } else {
        Err(RegistryError::Status {
            host: image.registry_endpoint().into(),
            what: format!("quarantine state of {digest}"),
            status: status.as_u16(),
            detail: escape::excerpt(&resp, 200),
        })
    }
}
