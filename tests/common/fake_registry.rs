//! The fake registry of the tests is the library's in-memory registry (`vouch::demo::registry`),
//! with helpers to push a small image into it and to run `vouch verify` against it.
#![allow(dead_code)]

use std::path::Path;

#[allow(unused_imports)]
pub use vouch::demo::registry::{MemoryRegistry as FakeRegistry, State};
use vouch::registry::Descriptor;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Push an image manifest (no layers, a config unique to `n`) tagged `tag`; its descriptor.
pub fn push_image(reg: &FakeRegistry, tag: &str, n: usize) -> Descriptor {
    reg.with(|s| {
        let config_bytes = format!("{{\"n\":{n}}}");
        let config = s.put_blob(config_bytes.as_bytes());
        let m = serde_json::json!({"schemaVersion":2,"mediaType":MANIFEST,
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":config,"size":config_bytes.len()},
            "layers":[]});
        let bytes = serde_json::to_vec(&m).expect("manifest");
        let digest = s.put_manifest(MANIFEST, &bytes, Some(tag));
        Descriptor {
            media_type: MANIFEST.into(),
            digest,
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        }
    })
}

/// `vouch verify -o json` of `images` in `reg` with the trust policy text `policy` (written
/// into `dir`) and the trust store `store`, plus `extra` arguments: exit code, the JSON
/// document, stderr.
pub fn verify_json(
    reg: &FakeRegistry,
    dir: &Path,
    images: &[String],
    policy: &str,
    store: &Path,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let p = super::policy_file(dir, policy);
    let (p, store) = (p.display().to_string(), store.display().to_string());
    let mut args = vec!["verify"];
    args.extend(images.iter().map(String::as_str));
    args.extend([
        "--trust-policy",
        &p,
        "--trust-store",
        &store,
        "--insecure-registry",
        &reg.host,
        "-o",
        "json",
    ]);
    args.extend_from_slice(extra);
    let (code, out, err) = super::outcome(&super::vouch_env(&args, &[]));
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, v, err)
}

/// Store a one-layer image holding `content` in `reg`, tagged `repo:tag`; its descriptor.
pub fn put_image(reg: &FakeRegistry, repo: &str, tag: &str, content: &[u8]) -> Descriptor {
    reg.with(|s| {
        let config = s.put_blob(b"{}");
        let layer = s.put_blob(content);
        let m = serde_json::json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":config,"size":2},
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":layer,"size":content.len()}]});
        let bytes = serde_json::to_vec(&m).expect("manifest");
        let digest = s.put_manifest("application/vnd.oci.image.manifest.v1+json", &bytes, None);
        s.tags.insert(format!("{repo}:{tag}"), digest.clone());
        Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest,
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        }
    })
}

/// [`put_image`] signed by `signer` (the signature stored as a referrer); the image's
/// descriptor and the signature.
pub fn put_signed_image(
    reg: &FakeRegistry,
    repo: &str,
    tag: &str,
    content: &[u8],
    signer: &vouch::notation::signer::Signer,
) -> (Descriptor, vouch::notation::signer::SignatureArtifact) {
    let subject = put_image(reg, repo, tag, content);
    let sig = signer.sign_artifact(&subject, None).expect("sign");
    reg.with(|s| s.put_signature(&sig));
    (subject, sig)
}
