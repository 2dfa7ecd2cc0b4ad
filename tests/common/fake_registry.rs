//! The fake registry of the tests is the library's in-memory registry (`vouch::demo::registry`).
#![allow(dead_code)]
#[allow(unused_imports)]
pub use vouch::demo::registry::{MemoryRegistry as FakeRegistry, State};
use vouch::registry::Descriptor;

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
