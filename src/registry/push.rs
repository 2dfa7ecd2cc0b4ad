//! Writing to a registry: blobs, manifests, the referrers tag index, and registry APIs outside
//! `/v2/` (ACR's metadata API). Used by `vouch quarantine set` and ACR quarantine reads; every
//! request goes through the same origin and authentication rules as reads.

use reqwest::{Method, StatusCode};

use super::error::status_error;
use super::transport::header;
use super::{
    base_media_type, read_limited, sha256_hex, Descriptor, RegistryClient, RegistryError,
    MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, OCI_INDEX,
};
use crate::reference::ImageReference;

impl RegistryClient {
    /// `GET` (or another method with a JSON body) of a registry API path outside `/v2/`, such
    /// as ACR's `/acr/v1/...` metadata API, with the same authentication handling and a size
    /// limit. Returns the status and body.
    pub async fn api(
        &self,
        image: &ImageReference,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        scope: Option<String>,
        limit: u64,
    ) -> Result<(StatusCode, Vec<u8>), RegistryError> {
        let host = image.registry_endpoint();
        let url = format!("{}{path}", self.origin(image)?.base());
        let resp = self
            .send_with(image, method, &url, "application/json", body, scope)
            .await?;
        let status = resp.status();
        let bytes = read_limited(resp, limit, path, host).await?;
        Ok((status, bytes))
    }

    /// Upload a blob (monolithic POST then PUT) unless the registry already has it.
    pub async fn push_blob(
        &self,
        image: &ImageReference,
        bytes: &[u8],
    ) -> Result<Descriptor, RegistryError> {
        let host = image.registry_endpoint();
        let digest = format!("sha256:{}", sha256_hex(bytes));
        let what = format!("blob {digest}");
        let base = self.base(image)?;
        let scope = Some(format!("repository:{}:pull,push", image.repository()));
        let head = self
            .send_with(
                image,
                Method::HEAD,
                &format!("{base}/blobs/{digest}"),
                "*/*",
                None,
                scope.clone(),
            )
            .await?;
        if !head.status().is_success() {
            let start = self
                .send_with(
                    image,
                    Method::POST,
                    &format!("{base}/blobs/uploads/"),
                    "*/*",
                    Some(Vec::new()),
                    scope.clone(),
                )
                .await?;
            if start.status() != StatusCode::ACCEPTED {
                return Err(status_error(host, &what, start).await);
            }
            let location =
                header(start.headers(), "location").ok_or_else(|| RegistryError::Malformed {
                    host: host.into(),
                    what: what.clone(),
                    reason: "upload has no Location".into(),
                })?;
            let upload = url::Url::parse(&base)
                .and_then(|b| b.join(&location))
                .map_err(|e| RegistryError::Malformed {
                    host: host.into(),
                    what: what.clone(),
                    reason: format!("bad upload Location: {e}"),
                })?;
            let sep = if upload.query().is_some() { '&' } else { '?' };
            let put = self
                .send_with(
                    image,
                    Method::PUT,
                    &format!("{upload}{sep}digest={digest}"),
                    "*/*",
                    Some(bytes.to_vec()),
                    scope,
                )
                .await?;
            if put.status() != StatusCode::CREATED {
                return Err(status_error(host, &what, put).await);
            }
        }
        Ok(Descriptor {
            media_type: "application/octet-stream".into(),
            digest,
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        })
    }

    /// Put a manifest under its digest (and a tag, if given).
    pub async fn push_manifest(
        &self,
        image: &ImageReference,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Descriptor, RegistryError> {
        let host = image.registry_endpoint();
        let digest = format!("sha256:{}", sha256_hex(bytes));
        let scope = Some(format!("repository:{}:pull,push", image.repository()));
        for reference in std::iter::once(digest.as_str()).chain(tag) {
            let url = format!("{}/manifests/{reference}", self.base(image)?);
            let resp = self
                .send_with_type(
                    image,
                    Method::PUT,
                    &url,
                    media_type,
                    bytes.to_vec(),
                    scope.clone(),
                )
                .await?;
            if resp.status() != StatusCode::CREATED {
                return Err(status_error(host, &format!("manifest {reference}"), resp).await);
            }
        }
        Ok(Descriptor {
            media_type: media_type.into(),
            digest,
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        })
    }
}

impl RegistryClient {
    /// Make a pushed referrer discoverable on a registry without the referrers API by adding it
    /// to the `<alg>-<hex>` tag index (the distribution spec's tag schema, as notation 1.x does).
    /// On a registry with the API this does nothing: the registry indexes `subject` itself.
    pub async fn index_referrer(
        &self,
        image: &ImageReference,
        subject: &Descriptor,
        referrer: &Descriptor,
    ) -> Result<(), RegistryError> {
        let host = image.registry_endpoint();
        let probe = format!("{}/referrers/{}", self.base(image)?, subject.digest);
        let resp = self.send(image, Method::GET, &probe, OCI_INDEX).await?;
        let api = resp.status().is_success()
            && header(resp.headers(), "content-type")
                .map(|c| base_media_type(&c))
                .as_deref()
                == Some(OCI_INDEX);
        if api {
            return Ok(());
        }
        let tag = subject.digest.replacen(':', "-", 1);
        let url = format!("{}/manifests/{tag}", self.base(image)?);
        let resp = self.send(image, Method::GET, &url, MANIFEST_ACCEPT).await?;
        let mut manifests: Vec<serde_json::Value> = if resp.status() == StatusCode::NOT_FOUND {
            Vec::new()
        } else if resp.status().is_success() {
            let body = read_limited(resp, MAX_MANIFEST_BYTES, &tag, host).await?;
            let v: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                    host: host.into(),
                    what: format!("referrers tag {tag}"),
                    reason: e.to_string(),
                })?;
            v["manifests"].as_array().cloned().unwrap_or_default()
        } else {
            return Err(status_error(host, &tag, resp).await);
        };
        if manifests
            .iter()
            .any(|m| m["digest"] == referrer.digest.as_str())
        {
            return Ok(());
        }
        manifests.push(serde_json::to_value(referrer).unwrap_or_default());
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        }))
        .unwrap_or_default();
        self.push_manifest(image, OCI_INDEX, &index, Some(&tag))
            .await?;
        Ok(())
    }
}
