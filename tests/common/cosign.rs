//! cosign signatures laid out in the fake registry as cosign lays them out: the vectors'
//! `dir:` images, their `sha256-<hex>.sig` manifests rebuilt from the `signature-N` files, and
//! Sigstore bundles attached as OCI referrers (`../shared/vectors/cosign/README.md`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{json, Value};

use super::fake_registry::FakeRegistry;
use super::Registry;

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
        let m = sig_manifest(layers, |b| s.put_blob(b));
        s.put_manifest(
            OCI_MANIFEST,
            &m,
            Some(&format!("{repo}:{}", sig_tag(image_digest))),
        );
    })
}

/// [`push_sig`] into a real docker-registry.
pub fn push_sig_to(reg: &Registry, repo: &str, image_digest: &str, layers: &[Layer]) {
    let base = reg.base();
    let m = sig_manifest(layers, |b| {
        let d = format!("sha256:{}", vouch::registry::sha256_hex(b));
        super::upload_blob(&base, repo, &d, b);
        d
    });
    super::put_manifest(&base, repo, &sig_tag(image_digest), OCI_MANIFEST, &m);
}

/// `sha256-<hex>.sig`.
fn sig_tag(image_digest: &str) -> String {
    format!("{}.sig", image_digest.replacen(':', "-", 1))
}

/// The `.sig` manifest of `layers` (payload blobs and the config stored by `put_blob`, which
/// returns the digest): an OCI image manifest whose config lists the layers' diff_ids.
fn sig_manifest(layers: &[Layer], mut put_blob: impl FnMut(&[u8]) -> String) -> Vec<u8> {
    let descs: Vec<Value> = layers
        .iter()
        .map(|l| {
            let d = put_blob(&l.payload);
            json!({"mediaType": l.media_type, "size": l.payload.len(), "digest": d, "annotations": l.annotations})
        })
        .collect();
    let diff_ids: Vec<Value> = descs.iter().map(|d| d["digest"].clone()).collect();
    let config = json!({"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":diff_ids}});
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = put_blob(&config);
    let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":config.len(),"digest":config_digest},
        "layers":descs});
    serde_json::to_vec(&m).unwrap()
}

/// cosign's simple-signing payload for the manifest `digest` of `docker_reference` (the
/// repository, no tag), as `cosign sign` writes it.
pub fn simple_signing_payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{docker_reference}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes()
}

/// An ECDSA P-256 signing key made by the test (`cosign generate-key-pair`'s kind), its PEM
/// public key written to `public`.
pub struct TestKey {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
    /// The PEM `PUBLIC KEY` file.
    pub public: PathBuf,
}

impl TestKey {
    /// A fresh key; its public key written to `public`.
    pub fn generate(public: &Path) -> TestKey {
        use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap();
        let pem = rcgen::KeyPair::try_from(pkcs8.as_ref())
            .unwrap()
            .public_key_pem();
        std::fs::write(public, pem).unwrap();
        TestKey {
            pair,
            public: public.to_path_buf(),
        }
    }

    /// An ASN.1 DER ECDSA signature over SHA-256 of `bytes`.
    pub fn sign(&self, bytes: &[u8]) -> Vec<u8> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair.sign(&rng, bytes).unwrap().as_ref().to_vec()
    }

    /// The `.sig` layer of `payload` signed by this key (no certificate, no Rekor entry).
    pub fn signed_layer(&self, payload: Vec<u8>) -> Layer {
        let signature = base64::engine::general_purpose::STANDARD.encode(self.sign(&payload));
        Layer {
            media_type: SIMPLE_SIGNING.into(),
            payload,
            annotations: [("dev.cosignproject.cosign/signature".to_string(), signature)].into(),
        }
    }

    /// A Sigstore bundle v0.3 of a DSSE in-toto statement (`cosign sign`'s predicate) over
    /// the manifest `digest`, signed by this key, with no log entry (no Rekor here).
    pub fn keyed_bundle(&self, digest: &str) -> Vec<u8> {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let (alg, hex) = digest.split_once(':').unwrap();
        let statement = json!({"_type":"https://in-toto.io/Statement/v1",
            "subject":[{"name":"image","digest":{alg: hex}}],
            "predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}})
        .to_string();
        let payload_type = "application/vnd.in-toto+json";
        let pae = format!(
            "DSSEv1 {} {payload_type} {} {statement}",
            payload_type.len(),
            statement.len()
        );
        let bundle = json!({"mediaType": BUNDLE,
            "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
            "dsseEnvelope": {"payload": b64(statement.as_bytes()), "payloadType": payload_type,
                "signatures": [{"sig": b64(&self.sign(pae.as_bytes())), "keyid": ""}]}});
        serde_json::to_vec(&bundle).unwrap()
    }
}

/// Attach `bundle` to `subject` in `host/repo` as cosign 3 does ([`attach_bundle`]), on a
/// registry without the referrers API: listed in the `sha256-<hex>` referrers tag index, as
/// notation signatures are ([`super::push_signature`]). Makes a runtime of its own.
pub fn attach_bundle_to(
    reg: &Registry,
    repo: &str,
    subject: &vouch::registry::Descriptor,
    bundle: &[u8],
    predicate_type: &str,
) {
    use vouch::reference::ImageReference;
    use vouch::registry::{RegistryClient, RegistryOptions};
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let image = ImageReference::parse(&format!("{}/{repo}@{}", reg.host, subject.digest))
            .expect("reference");
        let client = RegistryClient::new(RegistryOptions {
            insecure_registries: vec![reg.host.clone()],
            ..Default::default()
        })
        .expect("client");
        let empty = client.push_blob(&image, b"{}").await.expect("empty config");
        let layer = client.push_blob(&image, bundle).await.expect("bundle");
        let m = referrer_manifest(
            serde_json::to_value(subject).unwrap(),
            &empty.digest,
            &layer.digest,
            bundle.len(),
            predicate_type,
        );
        let mut referrer = client
            .push_manifest(&image, OCI_MANIFEST, &m, None)
            .await
            .expect("referrer manifest");
        referrer.artifact_type = Some(BUNDLE.into());
        client
            .index_referrer(&image, subject, &referrer)
            .await
            .expect("referrers tag");
    });
}

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// The referrer manifest cosign 3 writes for a bundle (`WriteAttestationNewBundleFormat`).
fn referrer_manifest(
    subject: Value,
    empty: &str,
    layer: &str,
    size: usize,
    predicate_type: &str,
) -> Vec<u8> {
    let m = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,"artifactType":BUNDLE,
        "config":{"mediaType":"application/vnd.oci.empty.v1+json","artifactType":BUNDLE,"digest":empty,"size":2},
        "layers":[{"mediaType":BUNDLE,"digest":layer,"size":size}],
        "subject":subject,
        "annotations":{"org.opencontainers.image.created":"2025-02-28T19:18:11Z",
            "dev.sigstore.bundle.content":"dsse-envelope","dev.sigstore.bundle.predicateType":predicate_type}});
    serde_json::to_vec(&m).unwrap()
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
    reg.with(|s| {
        let empty = s.put_blob(b"{}");
        let layer = s.put_blob(bundle);
        let m = referrer_manifest(subject, &empty, &layer, bundle.len(), predicate_type);
        s.put_manifest(OCI_MANIFEST, &m, None);
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
