//! cosign signatures laid out in the fake registry as cosign lays them out: the vectors'
//! `dir:` images, their `sha256-<hex>.sig` manifests rebuilt from the `signature-N` files, and
//! Sigstore bundles attached as OCI referrers (`../shared/vectors/cosign/README.md`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{json, Value};

use super::fake_registry::FakeRegistry;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// `../shared/vectors/cosign/<rel>`.
pub fn vector(rel: &str) -> PathBuf {
    super::vectors().join("cosign").join(rel)
}

/// One `signature-N` file: media type, payload, annotations.
pub struct Layer {
    pub media_type: String,
    pub payload: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

/// The `signature-N` files of a containers-image `dir:` directory, in order.
pub fn signatures(dir: &Path) -> Vec<Layer> {
    (1..)
        .map(|n| dir.join(format!("signature-{n}")))
        .take_while(|p| p.exists())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let json: Value = serde_json::from_slice(&bytes[15..]).unwrap();
            Layer {
                media_type: json["mimeType"].as_str().unwrap().into(),
                payload: base64::engine::general_purpose::STANDARD
                    .decode(json["payload"].as_str().unwrap())
                    .unwrap(),
                annotations: serde_json::from_value(json["annotations"].clone()).unwrap(),
            }
        })
        .collect()
}

/// Store the vector image of `dir` (its `manifest.json`, as is) tagged `repo:latest`; its
/// digest. The manifest's blobs are not in the vectors; the fake registry does not ask.
pub fn push_image(reg: &FakeRegistry, repo: &str, dir: &Path) -> String {
    let bytes = std::fs::read(dir.join("manifest.json")).unwrap();
    let m: Value = serde_json::from_slice(&bytes).unwrap();
    let media_type = m["mediaType"].as_str().unwrap_or(OCI_MANIFEST).to_string();
    reg.with(|s| s.put_manifest(&media_type, &bytes, Some(&format!("{repo}:latest"))))
}

/// Store `layers` as the image's `.sig` manifest in `repo`, as cosign writes it.
pub fn push_sig(reg: &FakeRegistry, repo: &str, image_digest: &str, layers: &[Layer]) {
    reg.with(|s| {
        let descs: Vec<Value> = layers
            .iter()
            .map(|l| {
                let d = s.put_blob(&l.payload);
                json!({"mediaType": l.media_type, "size": l.payload.len(), "digest": d, "annotations": l.annotations})
            })
            .collect();
        let diff_ids: Vec<Value> = descs.iter().map(|d| d["digest"].clone()).collect();
        let config = json!({"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":diff_ids}});
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = s.put_blob(&config);
        let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":config.len(),"digest":config_digest},
            "layers":descs});
        let tag = format!("{repo}:{}.sig", image_digest.replacen(':', "-", 1));
        s.put_manifest(OCI_MANIFEST, &serde_json::to_vec(&m).unwrap(), Some(&tag));
    })
}

/// [`push_image`] and [`push_sig`] of the vector directory `dir` (under
/// `containers-image/`), each layer passed through `edit` first; the image reference.
pub fn push_signed(reg: &FakeRegistry, repo: &str, dir: &str, edit: impl Fn(&mut Layer)) -> String {
    let dir = vector(&format!("containers-image/{dir}"));
    let digest = push_image(reg, repo, &dir);
    let mut layers = signatures(&dir);
    layers.iter_mut().for_each(edit);
    push_sig(reg, repo, &digest, &layers);
    format!("{}/{repo}:latest", reg.host)
}

/// Attach `bundle` to the manifest `subject` (media type, digest, size) as cosign 3 does: an
/// OCI manifest with artifact type and one layer of the bundle media type.
pub fn attach_bundle(reg: &FakeRegistry, subject: Value, bundle: &[u8], predicate_type: &str) {
    const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
    reg.with(|s| {
        let empty = s.put_blob(b"{}");
        let layer = s.put_blob(bundle);
        let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,"artifactType":BUNDLE,
            "config":{"mediaType":"application/vnd.oci.empty.v1+json","artifactType":BUNDLE,"digest":empty,"size":2},
            "layers":[{"mediaType":BUNDLE,"digest":layer,"size":bundle.len()}],
            "subject":subject,
            "annotations":{"org.opencontainers.image.created":"2025-02-28T19:18:11Z",
                "dev.sigstore.bundle.content":"dsse-envelope","dev.sigstore.bundle.predicateType":predicate_type}});
        s.put_manifest(OCI_MANIFEST, &serde_json::to_vec(&m).unwrap(), None);
    })
}

/// go-containerregistry's `empty.Image` (the subject of `cosign/oci-attestation.sigstore.json`),
/// tagged `repo:latest`; its descriptor as JSON.
pub fn push_empty_image(reg: &FakeRegistry, repo: &str) -> Value {
    const CONFIG: &str = r#"{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers","diff_ids":null},"config":{}}"#;
    const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":115,"digest":"sha256:5b943e2b943f6c81dbbd4e2eca5121f4fcc39139e3d1219d6d89bd925b77d9fe"},"layers":[]}"#;
    let mt = "application/vnd.docker.distribution.manifest.v2+json";
    let digest = reg.with(|s| {
        s.put_blob(CONFIG.as_bytes());
        s.put_manifest(mt, MANIFEST.as_bytes(), Some(&format!("{repo}:latest")))
    });
    json!({"mediaType": mt, "digest": digest, "size": MANIFEST.len()})
}

/// `trusted_root.json` of the public-good instance (`sigstore-rs/sigstore_trusted_root.json`).
pub fn public_good_root() -> PathBuf {
    vector("sigstore-rs/sigstore_trusted_root.json")
}
