//! `POST /mutate` end to end over real TLS (issue 13): the JSON Patch that pins each admitted
//! image written by tag to the digest vouch verified, decoded and applied with `json-patch` to
//! the object sent, against a real docker-registry holding the notation e2e vectors — including
//! the race the webhook exists for: the tag moved to an unsigned image after admission.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use json_patch::{Patch, PatchOperation};
use serde_json::{json, Value};

use common::webhook::{
    debug_review, first_warning, message, metric, pod_review, pod_spec, review, start_with_config,
    Webhook, DEFAULT_CONFIG, WORKLOAD_KINDS,
};
use common::Registry;

/// The e2e image, signed in the `signed` repository (tags `v1` and `latest`), unsigned in the
/// others.
const DIGEST: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

/// `skipped/app` is skipped, `sandbox/unsigned` audited, everything else strict.
const POLICY: &str = r#"{"version":"1.0","trustPolicies":[
 {"name":"skipped","registryScopes":["REG/skipped/app"],"signatureVerification":{"level":"skip"}},
 {"name":"sandbox","registryScopes":["REG/sandbox/unsigned"],"signatureVerification":{"level":"audit"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]},
 {"name":"prod","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        let r = Registry::with_e2e_layouts(&[
            ("e2e-valid-signature", "signed"),
            ("e2e", "unsigned"),
            ("e2e", "sandbox/unsigned"),
        ]);
        r.tag("signed", "v1", "latest");
        r
    })
}

/// `REG/path`.
fn image(path: &str) -> String {
    format!("{}/{path}", registry().host)
}

async fn webhook(config: &str) -> Webhook {
    start_with_config(&[], &registry().host, POLICY, config).await
}

/// The patch of a `/mutate` answer, decoded (`None` when it has none); `patchType` is
/// `JSONPatch` exactly when there is one.
fn patch_of(response: &Value) -> Option<Patch> {
    let Some(encoded) = response.get("patch") else {
        assert!(response.get("patchType").is_none(), "{response}");
        return None;
    };
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_str().expect("patch is a string"))
        .expect("patch is base64");
    Some(serde_json::from_slice(&bytes).expect("patch is an RFC 6902 JSON Patch"))
}

/// The object `review` sent, with the answer's patch (if any) applied as the API server would.
fn patched(review: &Value, response: &Value) -> Value {
    let mut object = review["request"]["object"].clone();
    if let Some(patch) = patch_of(response) {
        json_patch::patch(&mut object, &patch).expect("the patch applies to the object sent");
    }
    object
}

/// The `(path, value)` of each operation of a patch, every one a `replace`.
/// The `verdicts` audit annotation of an answer, parsed: the images judged, by image.
fn verdicts_annotation(answer: &Value) -> Value {
    let text = answer["auditAnnotations"]["verdicts"]
        .as_str()
        .unwrap_or_else(|| panic!("no verdicts annotation: {answer}"));
    serde_json::from_str(text).expect("the verdicts annotation is JSON")
}

/// The patch's `replace` operations, each checked to follow a `test` of the same pointer.
fn replaces(patch: &Patch) -> Vec<(String, Value)> {
    patch
        .0
        .chunks(2)
        .map(|pair| match pair {
            [PatchOperation::Test(t), PatchOperation::Replace(r)] if t.path == r.path => {
                (r.path.to_string(), r.value.clone())
            }
            other => panic!("a test then a replace of one pointer are expected: {other:?}"),
        })
        .collect()
}

/// `review` to `/mutate`, then to `/validate` (the order the API server calls them in): both
/// answers, checked to be the same but for the patch.
async fn mutate_then_validate(w: &Webhook, review: &Value) -> (Value, Value) {
    let mutated = w.review_at("/mutate", review).await;
    let validated = w.review(review).await;
    let mut without_patch = mutated.clone();
    if let Some(m) = without_patch.as_object_mut() {
        m.remove("patch");
        m.remove("patchType");
    }
    assert_eq!(
        without_patch, validated,
        "/mutate answers as /validate does, but for the patch"
    );
    (mutated, validated)
}

fn pinning(metrics: &str, kind: &str) -> f64 {
    metric(metrics, &format!("vouch_pinning_total{{kind=\"{kind}\"}}"))
}

/// Every registry request the webhook sent, all hosts together.
fn registry_requests(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("vouch_registry_requests_total{"))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .expect("a metric value")
        })
        .sum()
}

#[tokio::test]
async fn tag_written_signed_images_are_pinned_at_their_own_pointers_and_nothing_else_changes() {
    let w = webhook(DEFAULT_CONFIG).await;
    let reg = registry();
    // The digest the registry serves for each tag (the bare name means `latest`).
    let (for_v1, _, _) = reg.manifest("signed", "v1");
    let (for_latest, _, _) = reg.manifest("signed", "latest");
    assert_eq!((for_v1.as_str(), for_latest.as_str()), (DIGEST, DIGEST));
    let (tag, bare, latest) = (image("signed:v1"), image("signed"), image("signed:latest"));
    let (by_digest, tag_and_digest) = (
        image(&format!("signed@{DIGEST}")),
        image(&format!("signed:v1@{DIGEST}")),
    );
    let audited = image("sandbox/unsigned:v1");
    let spec = json!({
        "initContainers": [
            {"name": "init", "image": tag, "command": ["sh", "-c", "true"]},
            {"name": "init-pinned", "image": by_digest},
        ],
        "containers": [
            {"name": "app", "image": tag, "ports": [{"containerPort": 8080}], "env": [{"name": "IMAGE", "value": tag}]},
            {"name": "bare", "image": bare, "imagePullPolicy": "Always"},
            {"name": "latest", "image": latest, "resources": {"limits": {"cpu": "1"}}},
            {"name": "audited", "image": audited},
            {"name": "pinned", "image": tag_and_digest},
        ],
        "ephemeralContainers": [{"name": "debugger", "image": latest, "stdin": true}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
    });
    let sent = review("pin-1", "Pod", "CREATE", spec, None, None, false);
    let (mutated, validated) = mutate_then_validate(&w, &sent).await;
    assert_eq!(mutated["allowed"], true, "{mutated}");
    // The audited image is admitted with its warning, on both webhooks alike.
    assert!(
        first_warning(&validated).contains("would not pass verification (audit)"),
        "{validated}"
    );
    assert!(validated["auditAnnotations"]["verdicts"].is_string());

    let patch = patch_of(&mutated).expect("a patch");
    let pin = |written: &str| Value::String(format!("{written}@{for_v1}"));
    assert_eq!(
        replaces(&patch),
        vec![
            ("/spec/initContainers/0/image".into(), pin(&tag)),
            ("/spec/containers/0/image".into(), pin(&tag)),
            ("/spec/containers/1/image".into(), pin(&bare)),
            ("/spec/containers/2/image".into(), pin(&latest)),
            ("/spec/ephemeralContainers/0/image".into(), pin(&latest)),
        ],
        "exactly the tag-written signed images, each at its own pointer"
    );
    let mut expected = sent["request"]["object"].clone();
    let spec = &mut expected["spec"];
    spec["initContainers"][0]["image"] = pin(&tag);
    spec["containers"][0]["image"] = pin(&tag);
    spec["containers"][1]["image"] = pin(&bare);
    spec["containers"][2]["image"] = pin(&latest);
    spec["ephemeralContainers"][0]["image"] = pin(&latest);
    assert_eq!(
        patched(&sent, &mutated),
        expected,
        "only the pinned images change (the env value naming the tag does not)"
    );

    let metrics = w.metrics().await;
    assert_eq!(pinning(&metrics, "pinned"), 5.0, "{metrics}");
    assert_eq!(pinning(&metrics, "already_pinned"), 2.0, "{metrics}");
    assert_eq!(pinning(&metrics, "not_verified"), 1.0, "{metrics}");

    // Reinvoked with the object as patched (reinvocationPolicy: IfNeeded), nothing more to do.
    let mut again = sent.clone();
    again["request"]["object"] = expected;
    let (mutated, _) = mutate_then_validate(&w, &again).await;
    assert_eq!(mutated["allowed"], true, "{mutated}");
    assert!(patch_of(&mutated).is_none(), "{mutated}");
}

#[tokio::test]
async fn after_the_tag_moves_to_an_unsigned_image_the_pinned_reference_still_admits() {
    // A repository of this test's own: its tag moves.
    let reg = registry();
    reg.push_e2e_layout("e2e-valid-signature", "swap");
    let unsigned = reg.push_unsigned_image("swap", 13);
    assert_ne!(unsigned, DIGEST);
    // Tag resolutions are remembered for a second only, so the move is seen soon.
    let w = webhook("serve:\n  reloadInterval: 200ms\ncache:\n  digestTtl: 1s\n").await;
    let tag = image("swap:v1");

    // Admitted by tag: pinned to the digest verified, the one the tag names now.
    let by_tag = pod_review("swap-1", &[&tag]);
    let (mutated, _) = mutate_then_validate(&w, &by_tag).await;
    assert_eq!(mutated["allowed"], true, "{mutated}");
    let pinned_ref = patched(&by_tag, &mutated)["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(pinned_ref, format!("{tag}@{DIGEST}"));
    assert_eq!(reg.manifest("swap", "v1").0, DIGEST);

    // The tag with the unsigned digest is judged by the digest, though the tag still names the
    // signed image (in the registry, and as vouch just resolved it).
    let tag_at_unsigned = format!("{tag}@{unsigned}");
    let (refused, _) = mutate_then_validate(&w, &pod_review("swap-2", &[&tag_at_unsigned])).await;
    assert_eq!(refused["allowed"], false, "{refused}");
    assert!(patch_of(&refused).is_none());
    assert!(
        message(&refused).contains("no Notation signature found"),
        "{refused}"
    );

    // Someone who can push the tag moves it to the unsigned image.
    reg.tag("swap", &unsigned, "v1");
    assert_eq!(reg.manifest("swap", "v1").0, unsigned);

    // The pinned reference still admits (judged by its digest), and /mutate leaves it alone.
    let (pinned, _) = mutate_then_validate(&w, &pod_review("swap-3", &[&pinned_ref])).await;
    assert_eq!(pinned["allowed"], true, "{pinned}");
    assert!(patch_of(&pinned).is_none(), "{pinned}");
    // The tag with the unsigned digest is refused.
    let (refused, _) = mutate_then_validate(&w, &pod_review("swap-4", &[&tag_at_unsigned])).await;
    assert_eq!(refused["allowed"], false, "{refused}");
    assert!(patch_of(&refused).is_none());

    // Once the tag's resolution expires, the bare tag is refused: it names the unsigned image.
    let started = Instant::now();
    let refused = loop {
        let r = w.review(&pod_review("swap-5", &[&tag])).await;
        if r["allowed"] == false {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the bare tag was still admitted 30 s after it moved (digestTtl 1s): {r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(message(&refused).contains(&unsigned), "{refused}");
    let (refused, _) = mutate_then_validate(&w, &pod_review("swap-6", &[&tag])).await;
    assert_eq!(refused["allowed"], false, "{refused}");
    assert!(patch_of(&refused).is_none());
    // And the pinned reference still admits.
    let (pinned, _) = mutate_then_validate(&w, &pod_review("swap-7", &[&pinned_ref])).await;
    assert_eq!(pinned["allowed"], true, "{pinned}");
    assert!(patch_of(&pinned).is_none());

    // Not by the grace of a cache: a fresh server judges alike.
    let fresh = webhook(DEFAULT_CONFIG).await;
    let (pinned, _) = mutate_then_validate(&fresh, &pod_review("swap-8", &[&pinned_ref])).await;
    assert_eq!(pinned["allowed"], true, "{pinned}");
    assert!(patch_of(&pinned).is_none());
    for (uid, refused) in [("swap-9", &tag), ("swap-10", &tag_at_unsigned)] {
        let (r, _) = mutate_then_validate(&fresh, &pod_review(uid, &[refused])).await;
        assert_eq!(r["allowed"], false, "{r}");
        assert!(message(&r).contains(&unsigned), "{r}");
        assert!(patch_of(&r).is_none());
    }
}

#[tokio::test]
async fn the_validating_call_after_a_mutation_is_a_cache_hit() {
    let w = webhook(DEFAULT_CONFIG).await;
    let sent = pod_review("one-1", &[&image("signed:v1")]);
    let before = registry_requests(&w.metrics().await);
    assert_eq!(before, 0.0);
    let mutated = w.review_at("/mutate", &sent).await;
    assert_eq!(mutated["allowed"], true, "{mutated}");
    let after_mutate = registry_requests(&w.metrics().await);
    assert!(
        after_mutate > before,
        "verifying the image asked the registry"
    );
    // The API server sends the validating webhook the object as mutated.
    let mut pinned = sent.clone();
    pinned["request"]["object"] = patched(&sent, &mutated);
    assert_eq!(
        pinned["request"]["object"]["spec"]["containers"][0]["image"],
        format!("{}@{DIGEST}", image("signed:v1"))
    );
    let validated = w.review(&pinned).await;
    assert_eq!(validated["allowed"], true, "{validated}");
    // The tag as written is a cache hit too (its resolution is remembered).
    let validated = w.review(&sent).await;
    assert_eq!(validated["allowed"], true, "{validated}");
    let metrics = w.metrics().await;
    assert_eq!(
        registry_requests(&metrics),
        after_mutate,
        "the validating calls asked the registry nothing: {metrics}"
    );
}

#[tokio::test]
async fn an_unsigned_image_is_denied_by_mutate_exactly_as_by_validate_and_not_patched() {
    let w = webhook(DEFAULT_CONFIG).await;
    let unsigned = image("unsigned:v1");
    let sent = pod_review("deny-1", &[&image("signed:v1"), &unsigned]);
    let (mutated, validated) = mutate_then_validate(&w, &sent).await;
    assert_eq!(mutated["allowed"], false, "{mutated}");
    assert_eq!(mutated["status"], validated["status"]);
    assert_eq!(mutated["status"]["code"], 403);
    let msg = message(&mutated);
    assert!(
        msg.starts_with("vouch denied 1 image:")
            && msg.contains(&unsigned)
            && msg.contains("no Notation signature found for"),
        "{msg}"
    );
    assert!(patch_of(&mutated).is_none(), "{mutated}");
    let metrics = w.metrics().await;
    assert_eq!(pinning(&metrics, "pinned"), 0.0, "{metrics}");

    // What is not an AdmissionReview gets the same HTTP error from both.
    for body in [
        &b"{not json"[..],
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
    ] {
        let validated = w.post_to("/validate", body.to_vec()).await;
        assert_eq!(w.post_to("/mutate", body.to_vec()).await, validated);
        assert_eq!(validated.0, 400);
    }
    // A deletion is allowed, with nothing to patch.
    let deleted = review(
        "del-1",
        "Pod",
        "DELETE",
        pod_spec(&[&unsigned]),
        None,
        None,
        false,
    );
    let (mutated, _) = mutate_then_validate(&w, &deleted).await;
    assert_eq!(mutated["allowed"], true, "{mutated}");
    assert!(patch_of(&mutated).is_none(), "{mutated}");
}

#[tokio::test]
async fn dryrun_enforcement_never_patches_and_counts_what_it_would_pin() {
    let w = webhook("serve:\n  reloadInterval: 200ms\n  enforcement: dryrun\n").await;
    let signed = pod_review("dry-1", &[&image("signed:v1")]);
    let (mutated, _) = mutate_then_validate(&w, &signed).await;
    assert_eq!(mutated["allowed"], true, "{mutated}");
    assert!(patch_of(&mutated).is_none(), "{mutated}");
    // A would-be denial is allowed, and not patched either.
    let mixed = pod_review("dry-2", &[&image("signed:latest"), &image("unsigned:v1")]);
    let (mutated, _) = mutate_then_validate(&w, &mixed).await;
    assert_eq!(mutated["allowed"], true, "{mutated}");
    assert!(
        first_warning(&mutated).starts_with("vouch (dry run) would deny"),
        "{mutated}"
    );
    assert!(patch_of(&mutated).is_none(), "{mutated}");
    let metrics = w.metrics().await;
    assert_eq!(pinning(&metrics, "dryrun"), 2.0, "{metrics}");
    assert_eq!(pinning(&metrics, "pinned"), 0.0, "{metrics}");
}

/// The pointer to the first container's image in an object of `kind`.
fn first_image_pointer(kind: &str) -> &'static str {
    match kind {
        "CronJob" => "/spec/jobTemplate/spec/template/spec/containers/0/image",
        _ => "/spec/template/spec/containers/0/image",
    }
}

#[tokio::test]
async fn workload_templates_are_pinned_only_when_the_config_says_so() {
    let tag = image("signed:v1");
    let w = webhook(DEFAULT_CONFIG).await;
    for kind in ["Deployment", "CronJob"] {
        let sent = review(kind, kind, "CREATE", pod_spec(&[&tag]), None, None, false);
        let (mutated, _) = mutate_then_validate(&w, &sent).await;
        assert_eq!(mutated["allowed"], true, "{kind}: {mutated}");
        assert!(patch_of(&mutated).is_none(), "{kind}: {mutated}");
    }
    let metrics = w.metrics().await;
    assert_eq!(pinning(&metrics, "templates_off"), 2.0, "{metrics}");
    assert_eq!(pinning(&metrics, "pinned"), 0.0, "{metrics}");
    // Pods are pinned all the same.
    let pod = pod_review("pod", &[&tag]);
    let mutated = w.review_at("/mutate", &pod).await;
    assert!(patch_of(&mutated).is_some(), "{mutated}");

    let w = webhook("serve:\n  reloadInterval: 200ms\n  mutate:\n    templates: true\n").await;
    for kind in WORKLOAD_KINDS {
        let sent = review(kind, kind, "CREATE", pod_spec(&[&tag]), None, None, false);
        let (mutated, _) = mutate_then_validate(&w, &sent).await;
        assert_eq!(mutated["allowed"], true, "{kind}: {mutated}");
        let patch = patch_of(&mutated).unwrap_or_else(|| panic!("{kind}: no patch: {mutated}"));
        let pinned = Value::String(format!("{tag}@{DIGEST}"));
        assert_eq!(
            replaces(&patch),
            vec![(first_image_pointer(kind).to_string(), pinned.clone())],
            "{kind}"
        );
        let mut expected = sent["request"]["object"].clone();
        *expected
            .pointer_mut(first_image_pointer(kind))
            .expect("the pointer names the image") = pinned;
        assert_eq!(patched(&sent, &mutated), expected, "{kind}");
    }
    let metrics = w.metrics().await;
    assert_eq!(pinning(&metrics, "pinned"), 7.0, "{metrics}");
    assert_eq!(pinning(&metrics, "templates_off"), 0.0, "{metrics}");
}

#[tokio::test]
async fn kubectl_debug_pins_only_the_new_ephemeral_container() {
    let w = webhook(DEFAULT_CONFIG).await;
    let (tag, bare, latest) = (image("signed:v1"), image("signed"), image("signed:latest"));
    let old = pod_spec(&[&tag, &bare]);
    let new = json!({
        "containers": [{"name": "c0", "image": tag}, {"name": "c1", "image": bare}],
        "ephemeralContainers": [{"name": "debugger", "image": latest, "targetContainerName": "c0"}],
    });
    let sent = debug_review("debug-1", old, new);
    let (mutated, validated) = mutate_then_validate(&w, &sent).await;
    assert_eq!(mutated["allowed"], true, "{mutated}");
    // Only the new image was judged.
    let verdicts = verdicts_annotation(&validated);
    assert_eq!(
        verdicts.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec![&latest]
    );
    let patch = patch_of(&mutated).expect("a patch");
    let pinned = Value::String(format!("{latest}@{DIGEST}"));
    assert_eq!(
        replaces(&patch),
        vec![("/spec/ephemeralContainers/0/image".into(), pinned.clone())]
    );
    let mut expected = sent["request"]["object"].clone();
    expected["spec"]["ephemeralContainers"][0]["image"] = pinned;
    assert_eq!(patched(&sent, &mutated), expected);

    // A debug container running an image an existing container already runs is a new
    // container all the same (the kubelet pulls its image anew): judged and pinned, while the
    // existing container is left as it runs.
    let old = pod_spec(&[&tag, &bare]);
    let new = json!({
        "containers": [{"name": "c0", "image": tag}, {"name": "c1", "image": bare}],
        "ephemeralContainers": [{"name": "debugger", "image": tag, "targetContainerName": "c0"}],
    });
    let sent = debug_review("debug-2", old, new);
    let (mutated, validated) = mutate_then_validate(&w, &sent).await;
    assert_eq!(mutated["allowed"], true, "{mutated}");
    let verdicts = verdicts_annotation(&validated);
    assert_eq!(
        verdicts.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec![&tag]
    );
    let patch = patch_of(&mutated).expect("a patch");
    assert_eq!(
        replaces(&patch),
        vec![(
            "/spec/ephemeralContainers/0/image".into(),
            Value::String(format!("{tag}@{DIGEST}"))
        )]
    );
}

#[tokio::test]
async fn skip_statements_ask_the_registry_nothing_and_are_not_pinned() {
    let w = webhook(DEFAULT_CONFIG).await;
    let skipped = image("skipped/app:v1");
    let skipped_latest = image("skipped/app");
    let sent = pod_review("skip-1", &[&skipped, &skipped_latest]);
    let (mutated, validated) = mutate_then_validate(&w, &sent).await;
    assert_eq!(mutated["allowed"], true, "{mutated}");
    assert!(patch_of(&mutated).is_none(), "{mutated}");
    let verdicts = verdicts_annotation(&validated);
    assert_eq!(verdicts[&skipped]["outcome"], "skipped", "{verdicts}");
    let metrics = w.metrics().await;
    assert_eq!(
        registry_requests(&metrics),
        0.0,
        "no registry request for a skipped image: {metrics}"
    );
    assert_eq!(pinning(&metrics, "pinned"), 0.0, "{metrics}");
}
