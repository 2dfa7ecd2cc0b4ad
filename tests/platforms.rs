//! Multi-platform images (issue 15) against a real docker-registry: OCI indexes and a Docker
//! manifest list whose children are signed by notation itself (the e2e vector's manifest) and
//! by the tests' signer, judged under each `platforms` mode through `vouch verify` and the
//! webhook; attestation children, nested and oversized indexes, per-platform quarantine, the
//! level matrix per manifest, pinning of the index digest, and a burst of admissions costing the
//! registry what one admission costs.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{json, Value};
use vouch::registry::Descriptor;

use common::webhook::{message, metric, pod_review, start_with_store};
use common::{pki, Registry};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const REPO: &str = "app";

/// Strict for `app`, audit for `audited` (the same images pushed there too).
const POLICY: &str = r#"{"version":"1.0","trustPolicies":[
 {"name":"audited","registryScopes":["REG/audited"],"signatureVerification":{"level":"audit"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]},
 {"name":"prod","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#;

struct Layouts {
    registry: Registry,
    /// Trust store root: the notation e2e certificate and the tests' CA, both in `ca:e2e`.
    store: tempfile::TempDir,
    /// Digest of each tagged index.
    index: std::collections::HashMap<&'static str, String>,
    /// The notation-signed platform manifest (linux/amd64 in every index).
    notation_signed: String,
    /// The signed arm64 manifest.
    signed_arm64: String,
}

fn entry(d: &Descriptor, platform: Value) -> Value {
    json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size, "platform": platform})
}

fn amd64() -> Value {
    json!({"os": "linux", "architecture": "amd64"})
}

fn arm64() -> Value {
    json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
}

fn layouts() -> &'static Layouts {
    static L: OnceLock<Layouts> = OnceLock::new();
    // Pushing signatures runs a runtime of its own: not inside a test's runtime.
    L.get_or_init(|| std::thread::spawn(build_layouts).join().expect("layouts"))
}

fn build_layouts() -> Layouts {
    let registry = Registry::with_e2e_layouts(&[
        ("e2e-valid-signature", REPO),
        ("e2e-valid-signature", "audited"),
    ]);
    let store = tempfile::tempdir().expect("store");
    common::e2e_trust_store(store.path());
    let signer = pki::ca_issued("platform builder", &rcgen::PKCS_ECDSA_P256_SHA256);
    signer.write_store(store.path(), "e2e");
    let sign = |repo: &str, d: &Descriptor| {
        common::push_signature(&registry.host, repo, d, &signer.signer())
    };
    let mut index = std::collections::HashMap::new();
    let mut last = (String::new(), String::new());
    for repo in [REPO, "audited"] {
        let r = &registry;
        let notation = r.descriptor(repo, "v1");
        let signed_arm64 = r.push_image_as(repo, 1, OCI_MANIFEST);
        sign(repo, &signed_arm64);
        let unsigned_arm64 = r.push_image_as(repo, 2, OCI_MANIFEST);
        let unsigned_amd64 = r.push_image_as(repo, 3, OCI_MANIFEST);
        let mut put = |tag: &'static str, media: &str, entries: &[Value]| {
            let d = r.push_index(repo, tag, media, entries);
            if repo == REPO {
                index.insert(tag, d.digest.clone());
            }
            d
        };
        let signed_index = put(
            "index-signed",
            OCI_INDEX,
            &[
                entry(&unsigned_amd64, amd64()),
                entry(&unsigned_arm64, arm64()),
            ],
        );
        sign(repo, &signed_index);
        let platforms_signed = put(
            "platforms-signed",
            OCI_INDEX,
            &[entry(&notation, amd64()), entry(&signed_arm64, arm64())],
        );
        put(
            "one-unsigned",
            OCI_INDEX,
            &[entry(&notation, amd64()), entry(&unsigned_arm64, arm64())],
        );
        if repo != REPO {
            continue;
        }
        let docker_amd64 = r.push_image_as(repo, 4, DOCKER_MANIFEST);
        let docker_arm64 = r.push_image_as(repo, 5, DOCKER_MANIFEST);
        sign(repo, &docker_amd64);
        sign(repo, &docker_arm64);
        put(
            "docker-list",
            DOCKER_LIST,
            &[entry(&docker_amd64, amd64()), entry(&docker_arm64, arm64())],
        );
        // BuildKit's provenance: an unsigned manifest for platform unknown/unknown, marked as
        // an attestation of the amd64 manifest.
        let attestation = r.push_image_as(repo, 6, OCI_MANIFEST);
        let mut att = entry(
            &attestation,
            json!({"os": "unknown", "architecture": "unknown"}),
        );
        att["annotations"] = json!({
            "vnd.docker.reference.type": "attestation-manifest",
            "vnd.docker.reference.digest": notation.digest,
        });
        put(
            "with-attestation",
            OCI_INDEX,
            &[
                entry(&notation, amd64()),
                entry(&signed_arm64, arm64()),
                att,
            ],
        );
        // An unsigned manifest for linux/amd64 marked as an attestation and listed first: a
        // node of that platform pulls it (runtimes choose by platform), so it is judged.
        let mut disguised = entry(&unsigned_amd64, amd64());
        disguised["annotations"] = json!({
            "vnd.docker.reference.type": "attestation-manifest",
            "vnd.docker.reference.digest": notation.digest,
        });
        disguised["artifactType"] = json!("application/vnd.example.sbom");
        put(
            "disguised-attestation",
            OCI_INDEX,
            &[
                disguised,
                entry(&notation, amd64()),
                entry(&signed_arm64, arm64()),
            ],
        );
        let nested_entry =
            |d: &Descriptor| json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size});
        let nested = put("nested", OCI_INDEX, &[nested_entry(&platforms_signed)]);
        put("too-deep", OCI_INDEX, &[nested_entry(&nested)]);
        let many: Vec<Value> = (0..129).map(|_| entry(&notation, amd64())).collect();
        put("oversized", OCI_INDEX, &many);
        // Two images of one shape for the burst: every manifest signed.
        for (tag, n) in [("burst-a", 10), ("burst-b", 20)] {
            let a = r.push_image_as(repo, n, OCI_MANIFEST);
            let b = r.push_image_as(repo, n + 1, OCI_MANIFEST);
            sign(repo, &a);
            sign(repo, &b);
            put(tag, OCI_INDEX, &[entry(&a, amd64()), entry(&b, arm64())]);
        }
        last = (notation.digest.clone(), signed_arm64.digest.clone());
    }
    Layouts {
        registry,
        store,
        index,
        notation_signed: last.0,
        signed_arm64: last.1,
    }
}

fn image(tag: &str) -> String {
    format!("{}/{REPO}:{tag}", layouts().registry.host)
}

/// A config file whose `platforms:` entry for every scope is `mode` (none: notation's default),
/// with `extra` appended.
fn config(dir: &Path, mode: Option<&str>, extra: &str) -> PathBuf {
    let mut text = String::new();
    if let Some(mode) = mode {
        text.push_str(&format!(
            "platforms:\n  - registryScopes: [\"*\"]\n    mode: {mode}\n"
        ));
    }
    text.push_str(extra);
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).expect("config");
    path
}

/// `vouch verify` of `images` under `config` and the tests' policy and store, with `extra`.
fn run_verify(config: &Path, images: &[String], extra: &[&str]) -> std::process::Output {
    let l = layouts();
    let dir = tempfile::tempdir().expect("dir");
    let policy = common::policy_file(dir.path(), &POLICY.replace("REG", &l.registry.host));
    let config = config.display().to_string();
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    let mut args = vec!["--config", &config];
    args.extend_from_slice(extra);
    common::verify_output(
        &images,
        &policy,
        l.store.path(),
        &l.registry.host,
        &args,
        &[],
    )
}

/// `vouch verify -o json` of `images` under `config`: exit status and the verdicts.
fn verify(config: &Path, images: &[String]) -> (i32, Vec<Value>) {
    let (code, out, err) = common::outcome(&run_verify(config, images, &["-o", "json"]));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let verdicts = v["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(verdicts.len(), images.len(), "{out}{err}");
    (code, verdicts)
}

fn one(mode: Option<&str>, tag: &str) -> Value {
    let dir = tempfile::tempdir().expect("dir");
    let (_, mut v) = verify(&config(dir.path(), mode, ""), &[image(tag)]);
    v.remove(0)
}

fn platforms_of(v: &Value) -> Vec<(String, String)> {
    v["platforms"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["platform"].as_str().unwrap_or_default().to_string(),
                        p["outcome"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn reasons(v: &Value) -> String {
    v["reasons"].to_string()
}

#[test]
fn index_mode_is_notations_rule_the_index_signature_decides() {
    let signed = one(None, "index-signed");
    assert_eq!(signed["outcome"], "verified", "{signed}");
    assert!(signed.get("platforms").is_none(), "{signed}");
    assert_eq!(signed["digest"], layouts().index["index-signed"]);

    let per_platform = one(None, "platforms-signed");
    assert_eq!(per_platform["outcome"], "failed", "{per_platform}");
    assert!(
        per_platform["warnings"]
            .to_string()
            .contains("set platforms mode \\\"index-or-platforms\\\""),
        "a failed index says how to judge its platforms: {per_platform}"
    );
}

#[test]
fn index_or_platforms_takes_a_signed_index_or_every_platform_signed() {
    let signed = one(Some("index-or-platforms"), "index-signed");
    assert_eq!(signed["outcome"], "verified", "{signed}");
    assert!(
        signed.get("platforms").is_none(),
        "the index sufficed: {signed}"
    );

    let per_platform = one(Some("index-or-platforms"), "platforms-signed");
    assert_eq!(per_platform["outcome"], "verified", "{per_platform}");
    assert_eq!(
        platforms_of(&per_platform),
        [
            ("linux/amd64".to_string(), "verified".to_string()),
            ("linux/arm64/v8".to_string(), "verified".to_string())
        ]
    );
    assert_eq!(
        per_platform["platforms"][0]["digest"],
        layouts().notation_signed,
        "the notation-signed manifest is the amd64 child"
    );
    assert!(
        per_platform["platforms"][0]["signatures"][0]["verified"] == true,
        "{per_platform}"
    );
    assert!(
        per_platform["warnings"]
            .to_string()
            .contains("every platform manifest it lists did"),
        "{per_platform}"
    );

    let one_unsigned = one(Some("index-or-platforms"), "one-unsigned");
    assert_eq!(one_unsigned["outcome"], "failed", "{one_unsigned}");
    assert_eq!(one_unsigned["admission"], "deny");
    assert_eq!(
        platforms_of(&one_unsigned),
        [
            ("linux/amd64".to_string(), "verified".to_string()),
            ("linux/arm64/v8".to_string(), "failed".to_string())
        ]
    );
    let why = reasons(&one_unsigned);
    assert!(why.contains("platform linux/arm64/v8"), "{why}");
    assert!(!why.contains("platform linux/amd64"), "{why}");
    assert!(
        why.contains("index: "),
        "the index's own failure is shown: {why}"
    );
}

#[test]
fn platforms_mode_needs_every_platform_and_ignores_the_index_signature() {
    let signed_index = one(Some("platforms"), "index-signed");
    assert_eq!(signed_index["outcome"], "failed", "{signed_index}");
    let why = reasons(&signed_index);
    assert!(
        why.contains("platform linux/amd64") && why.contains("platform linux/arm64/v8"),
        "{why}"
    );

    let per_platform = one(Some("platforms"), "platforms-signed");
    assert_eq!(per_platform["outcome"], "verified", "{per_platform}");
    assert_eq!(
        per_platform["pinned"],
        format!(
            "{}@{}",
            image("platforms-signed"),
            layouts().index["platforms-signed"]
        )
    );

    let list = one(Some("platforms"), "docker-list");
    assert_eq!(list["outcome"], "verified", "{list}");
    assert_eq!(platforms_of(&list).len(), 2, "{list}");

    let with_attestation = one(Some("platforms"), "with-attestation");
    assert_eq!(
        with_attestation["outcome"], "verified",
        "{with_attestation}"
    );
    assert_eq!(
        platforms_of(&with_attestation).len(),
        2,
        "the attestation is not a platform: {with_attestation}"
    );

    let nested = one(Some("platforms"), "nested");
    assert_eq!(nested["outcome"], "verified", "{nested}");
    assert_eq!(platforms_of(&nested).len(), 2, "{nested}");
}

/// An attestation (or artifact) annotation does not keep a node from pulling an entry listed
/// for its platform: an unsigned linux/amd64 manifest so marked, ahead of the signed one, is
/// judged and refuses the image.
#[test]
fn an_entry_marked_as_an_attestation_but_listed_for_a_platform_is_judged() {
    for mode in ["platforms", "index-or-platforms"] {
        let v = one(Some(mode), "disguised-attestation");
        assert_eq!(v["outcome"], "failed", "{mode}: {v}");
        assert_eq!(v["admission"], "deny", "{mode}: {v}");
        assert_eq!(platforms_of(&v).len(), 3, "{mode}: {v}");
        assert_eq!(
            platforms_of(&v)[0],
            ("linux/amd64".to_string(), "failed".to_string()),
            "{mode}: {v}"
        );
    }
}

#[test]
fn text_output_has_a_line_per_platform() {
    let l = layouts();
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config(dir.path(), Some("index-or-platforms"), "");
    let (code, out, err) = common::outcome(&run_verify(&cfg, &[image("one-unsigned")], &[]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!(
            "  ▸ linux/amd64 {}: verified, signed by ",
            l.notation_signed
        )),
        "{out}"
    );
    assert!(out.contains("  ▸ linux/arm64/v8 sha256:"), "{out}");
    assert!(out.contains(": failed\n"), "{out}");
}

#[test]
fn a_platform_filter_requires_only_the_platforms_it_names() {
    let dir = tempfile::tempdir().expect("dir");
    let only_amd64 = config(
        dir.path(),
        None,
        "platforms:\n  - registryScopes: [\"*\"]\n    mode: platforms\n    only: [\"linux/amd64\"]\n",
    );
    let (code, v) = verify(&only_amd64, &[image("one-unsigned"), image("index-signed")]);
    assert_eq!(v[0]["outcome"], "verified", "{}", v[0]);
    assert_eq!(
        platforms_of(&v[0]),
        [("linux/amd64".to_string(), "verified".to_string())]
    );
    assert_eq!(v[1]["outcome"], "failed", "{}", v[1]);
    assert_eq!(code, 1);

    let dir = tempfile::tempdir().expect("dir");
    let only_s390x = config(
        dir.path(),
        None,
        "platforms:\n  - registryScopes: [\"*\"]\n    mode: platforms\n    only: [\"linux/s390x\"]\n",
    );
    let (_, v) = verify(&only_s390x, &[image("platforms-signed")]);
    assert_eq!(v[0]["outcome"], "failed", "{}", v[0]);
    assert!(
        reasons(&v[0]).contains(
            "lists no platform manifest to verify for the required platforms linux/s390x"
        ),
        "{}",
        v[0]
    );
}

#[test]
fn nested_too_deep_and_oversized_indexes_are_refused_with_the_limit() {
    let deep = one(Some("platforms"), "too-deep");
    assert_eq!(deep["outcome"], "failed", "{deep}");
    assert!(
        reasons(&deep).contains("nests indexes more than 2 levels deep"),
        "{deep}"
    );

    let big = one(Some("index-or-platforms"), "oversized");
    assert_eq!(big["outcome"], "failed", "{big}");
    assert!(
        reasons(&big).contains("lists more than 128 manifests"),
        "{big}"
    );
}

#[test]
fn the_level_matrix_applies_per_manifest() {
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config(dir.path(), Some("platforms"), "");
    let host = &layouts().registry.host;
    let audited = format!("{host}/audited:one-unsigned");
    let (code, v) = verify(&cfg, &[audited, image("one-unsigned")]);
    assert_eq!(v[0]["outcome"], "failed", "{}", v[0]);
    assert_eq!(v[0]["admission"], "allow", "audit logs: {}", v[0]);
    assert!(
        reasons(&v[0]).contains("platform linux/arm64/v8"),
        "{}",
        v[0]
    );
    assert_eq!(v[1]["admission"], "deny", "strict enforces: {}", v[1]);
    assert_eq!(code, 1);
}

#[test]
fn each_platform_manifests_quarantine_state_counts() {
    let l = layouts();
    let host = l.registry.host.clone();
    let (amd64, arm64) = (l.notation_signed.clone(), l.signed_arm64.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let client = vouch::registry::RegistryClient::new(vouch::registry::RegistryOptions {
                insecure_registries: vec![host.clone()],
                ..Default::default()
            })
            .expect("client");
            for (digest, state) in [(amd64, "Passed"), (arm64, "Quarantined")] {
                push_status(&client, &format!("{host}/{REPO}@{digest}"), state).await;
            }
        })
    })
    .join()
    .expect("statuses");
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config(
        dir.path(),
        Some("platforms"),
        &format!(
            "quarantine:\n  - registries: [\"{}\"]\n    source: referrer\n    requireSignature: false\n",
            l.registry.host
        ),
    );
    let (_, v) = verify(&cfg, &[image("platforms-signed")]);
    let v = &v[0];
    assert_eq!(v["admission"], "deny", "{v}");
    assert_eq!(
        platforms_of(v),
        [
            ("linux/amd64".to_string(), "verified".to_string()),
            ("linux/arm64/v8".to_string(), "failed".to_string())
        ],
        "{v}"
    );
    assert_eq!(
        v["platforms"][1]["quarantine"]["state"], "Quarantined",
        "{v}"
    );
    assert!(reasons(v).contains("platform linux/arm64/v8"), "{v}");
    assert!(
        v["warnings"]
            .to_string()
            .contains("index quarantine not decisive"),
        "the index carries no status of its own: {v}"
    );
}

/// Attach an unsigned quarantine status artifact of `state` to `image` (by digest).
async fn push_status(client: &vouch::registry::RegistryClient, image: &str, state: &str) {
    let image = vouch::reference::ImageReference::parse(image).expect("reference");
    let subject = client.resolve_digest(&image).await.expect("subject");
    let body = vouch::quarantine::referrer::StatusBody {
        state: state.into(),
        details: Some(json!("scanner says so")),
        updated: time::OffsetDateTime::now_utc(),
    };
    let status = vouch::quarantine::referrer::push(client, &image, &subject, &body)
        .await
        .expect("status");
    client
        .index_referrer(&image, &subject, &status)
        .await
        .expect("referrers tag");
}

async fn webhook(mode: &str) -> common::webhook::Webhook {
    let l = layouts();
    start_with_store(
        &[],
        &l.registry.host,
        POLICY,
        &format!(
            "serve:\n  reloadInterval: 200ms\nplatforms:\n  - registryScopes: [\"*\"]\n    mode: {mode}\n"
        ),
        Some(l.store.path()),
    )
    .await
}

#[tokio::test]
async fn the_webhook_names_the_failed_platform_and_pins_the_index_digest() {
    let w = webhook("index-or-platforms").await;
    let denied = w.review(&pod_review("u1", &[&image("one-unsigned")])).await;
    assert_eq!(denied["allowed"], false, "{denied}");
    let m = message(&denied);
    assert!(m.contains("platform linux/arm64/v8"), "{m}");

    let mutated = w
        .review_at("/mutate", &pod_review("u2", &[&image("platforms-signed")]))
        .await;
    assert_eq!(mutated["allowed"], true, "{mutated}");
    let patch = mutated["patch"].as_str().expect("a patch");
    use base64::Engine;
    let patch: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(patch)
            .expect("base64"),
    )
    .expect("json patch");
    let pinned = format!(
        "{}@{}",
        image("platforms-signed"),
        layouts().index["platforms-signed"]
    );
    assert!(
        patch
            .as_array()
            .expect("ops")
            .iter()
            .any(|op| op["op"] == "replace" && op["value"] == pinned.as_str()),
        "the index digest is pinned, so every node still pulls its own platform: {patch}"
    );
}

#[tokio::test]
async fn a_burst_of_admissions_costs_the_registry_what_one_admission_costs() {
    let w = webhook("platforms").await;
    let requests = |m: &str| -> f64 {
        m.lines()
            .filter(|l| l.starts_with("vouch_registry_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let before = requests(&w.metrics().await);
    let single = w.review(&pod_review("one", &[&image("burst-b")])).await;
    assert_eq!(single["allowed"], true, "{single}");
    let one_admission = requests(&w.metrics().await) - before;
    assert!(one_admission > 0.0);

    let before = requests(&w.metrics().await);
    let burst: Vec<_> = (0..200)
        .map(|i| {
            let review = pod_review(&format!("b{i}"), &[&image("burst-a")]);
            let w = &w;
            async move { w.review(&review).await }
        })
        .collect();
    let answers = futures::future::join_all(burst).await;
    for a in &answers {
        assert_eq!(a["allowed"], true, "{a}");
    }
    let burst_cost = requests(&w.metrics().await) - before;
    assert_eq!(
        burst_cost, one_admission,
        "200 concurrent admissions of a new multi-platform image cost the registry one verification of each manifest"
    );
    let m = w.metrics().await;
    assert!(metric(&m, "vouch_verifications_total{kind=\"verified\"}") >= 201.0);
}

/// Indexes no registry that checks its input would store, from a registry that does not: an
/// entry whose digest is not a digest, and an index of ten thousand entries within the 4 MiB a
/// manifest may have. Each is refused, naming what was wrong, before any entry is fetched.
#[test]
fn hostile_indexes_are_refused_with_what_was_wrong() {
    use common::fake_registry::{FakeRegistry, State};
    let reg = FakeRegistry::start(State::default()).expect("fake registry");
    let child = common::fake_registry::put_image(&reg, "app", "child", b"child");
    let entry = |digest: &str| {
        json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": child.size,
            "platform": {"os": "linux", "architecture": "amd64"}})
    };
    let put_index = |tag: &str, entries: Vec<Value>| {
        let bytes = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
        )
        .expect("index");
        reg.with(|s| s.put_manifest(OCI_INDEX, &bytes, Some(&format!("app:{tag}"))));
    };
    put_index(
        "traversal",
        vec![
            entry(&child.digest),
            entry("sha256:../../../v2/other/manifests/x"),
        ],
    );
    put_index("huge", (0..10_000).map(|_| entry(&child.digest)).collect());
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config(dir.path(), Some("platforms"), "");
    let store = tempfile::tempdir().expect("store");
    common::e2e_trust_store(store.path());
    let policy = common::policy_file(dir.path(), &POLICY.replace("REG", &reg.host));
    let cfg = cfg.display().to_string();
    let (traversal, huge) = (
        format!("{}/app:traversal", reg.host),
        format!("{}/app:huge", reg.host),
    );
    let (code, v, _) = common::verify_json(
        &[&traversal, &huge],
        &policy,
        store.path(),
        &reg.host,
        &["--config", &cfg],
        &[],
    );
    let (t, h) = (&v["results"][0], &v["results"][1]);
    assert_eq!(t["outcome"], "failed", "{t}");
    assert!(
        reasons(t).contains("is malformed") && reasons(t).contains("digest"),
        "{t}"
    );
    assert_eq!(h["outcome"], "failed", "{h}");
    assert!(reasons(h).contains("lists more than 128 manifests"), "{h}");
    assert_eq!(code, 1);
    assert!(
        !reg.requests().iter().any(|r| r.contains("/v2/other/")),
        "no request follows the hostile digest: {:?}",
        reg.requests()
    );
}

/// Under `index-or-platforms`, an index whose own signatures could not be read (here a
/// signature manifest with two envelopes) may still be admitted by its platforms: its own
/// quarantine state is read all the same, and a `Quarantined` index is refused.
#[test]
fn an_index_whose_signatures_could_not_be_read_keeps_its_quarantine_state() {
    use vouch::registry::{RegistryClient, RegistryOptions};
    const REPO: &str = "audited";
    let l = layouts();
    let host = l.registry.host.clone();
    let (amd64_digest, arm64_digest) = (l.notation_signed.clone(), l.signed_arm64.clone());
    let index = std::thread::spawn(move || {
        let l = layouts();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let client = RegistryClient::new(RegistryOptions {
                insecure_registries: vec![host.clone()],
                ..Default::default()
            })
            .expect("client");
            let at = |digest: &str| {
                vouch::reference::ImageReference::parse(&format!("{host}/{REPO}@{digest}"))
                    .expect("reference")
            };
            let mut entries = Vec::new();
            for digest in [&arm64_digest, &amd64_digest] {
                let d = client.resolve_digest(&at(digest)).await.expect("child");
                entries.push(entry(
                    &d,
                    if *digest == arm64_digest {
                        arm64()
                    } else {
                        amd64()
                    },
                ));
            }
            let index =
                l.registry
                    .push_index(REPO, "index-signature-unreadable", OCI_INDEX, &entries);
            let image = at(&index.digest);
            // A Notation signature manifest with two envelopes: not verifiable, an error.
            let empty = vouch::notation::signer::EMPTY_CONFIG;
            client.push_blob(&image, empty).await.expect("blob");
            let blob = json!({"mediaType": "application/jose+json",
                "digest": format!("sha256:{}", vouch::registry::sha256_hex(empty)),
                "size": empty.len()});
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "artifactType": vouch::notation::ARTIFACT_TYPE_SIGNATURE,
                "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": blob["digest"], "size": empty.len()},
                "layers": [blob, blob],
                "subject": {"mediaType": OCI_INDEX, "digest": index.digest, "size": index.size}
            }))
            .expect("manifest");
            client
                .push_manifest(&image, OCI_MANIFEST, &manifest, None)
                .await
                .expect("signature manifest");
            let signature = Descriptor {
                media_type: OCI_MANIFEST.into(),
                digest: format!("sha256:{}", vouch::registry::sha256_hex(&manifest)),
                size: manifest.len() as u64,
                artifact_type: Some(vouch::notation::ARTIFACT_TYPE_SIGNATURE.into()),
                annotations: None,
            };
            client
                .index_referrer(&image, &index, &signature)
                .await
                .expect("referrers tag");
            for (digest, state) in [
                (&index.digest, "Quarantined"),
                (&amd64_digest, "Passed"),
                (&arm64_digest, "Passed"),
            ] {
                push_status(&client, &format!("{host}/{REPO}@{digest}"), state).await;
            }
            index
        })
    })
    .join()
    .expect("layout");
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config(
        dir.path(),
        Some("index-or-platforms"),
        &format!(
            "quarantine:\n  - registries: [\"{}\"]\n    source: referrer\n    requireSignature: false\n",
            l.registry.host
        ),
    );
    let (_, v) = verify(
        &cfg,
        &[format!("{}/{REPO}@{}", l.registry.host, index.digest)],
    );
    let v = &v[0];
    assert!(
        reasons(v).contains("signature envelope blob")
            || v["warnings"]
                .to_string()
                .contains("signature envelope blob"),
        "the index's signature could not be read: {v}"
    );
    assert_eq!(v["quarantine"]["state"], "Quarantined", "{v}");
    assert_eq!(v["admission"], "deny", "{v}");
}
