//! Pinning what was verified: the JSON Patch (RFC 6902) the mutating webhook answers with, which
//! rewrites each admitted image written by tag to the reference vouch verified
//! (`name:tag@sha256:…`, [`Verdict::pinned`]), at the image's own JSON pointer. Without it, the
//! kubelet pulls the tag later, on every node, whenever the pod is (re)scheduled, and whoever can
//! push the tag can swap the image in between.
//!
//! The patch operations and pointers are `json-patch`'s types (pointer tokens are escaped as
//! RFC 6901 says); only which images to rewrite, and why the others are not, is decided here:
//! - an image already written with a digest stays as written (it was judged by that digest);
//! - an image that did not verify (refused, skipped by a `skip` statement, failed under audit)
//!   is not pinned: there is no verified digest to pin it to;
//! - pod templates of workloads are pinned only when `serve.mutate.templates` is on — a
//!   template the cluster rewrites drifts from what a GitOps tool applied; Pods always are;
//! - in dry-run enforcement nothing is ever rewritten.

use std::collections::HashMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation, ReplaceOperation, TestOperation};

use super::{pod_spec_path, ImageUse};
use crate::verdict::Verdict;

/// Why an image was not rewritten (the `vouch_pinning_total` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotPinned {
    /// Written with a digest already.
    AlreadyPinned,
    /// It did not verify: nothing to pin it to.
    NotVerified,
    /// A workload's pod template, and templates are not pinned.
    TemplatesOff,
    /// Dry-run enforcement: the webhook never changes objects.
    DryRun,
}

impl NotPinned {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::AlreadyPinned => "already_pinned",
            Self::NotVerified => "not_verified",
            Self::TemplatesOff => "templates_off",
            Self::DryRun => "dryrun",
        }
    }
}

/// What the mutating webhook may rewrite in this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinScope {
    /// Pin workloads' pod templates as well as Pods.
    pub templates: bool,
    /// Dry-run enforcement: rewrite nothing.
    pub dry_run: bool,
}

/// The outcome of pinning one object.
#[derive(Debug, Default)]
pub struct Pinning {
    /// The operations, in the object's container order: per image, a `test` of the image as
    /// written, then its `replace`.
    pub patch: Patch,
    /// Each image use not rewritten, and why.
    pub skipped: Vec<NotPinned>,
}

/// The JSON pointer of the image of `image_use` in an object of `kind`
/// (`/spec/template/spec/containers/2/image`), or `None` for kinds without a pod spec.
pub fn image_pointer(kind: &str, image_use: &ImageUse) -> Option<PointerBuf> {
    let mut pointer = PointerBuf::from_tokens(pod_spec_path(kind)?.iter().copied());
    pointer.push_back(image_use.field);
    pointer.push_back(image_use.index);
    pointer.push_back("image");
    Some(pointer)
}

/// The patch pinning every image of `uses` (an object of `kind`) whose verdict verified, by the
/// verdicts judged for this request (keyed by image as written). Uses without a verdict (images
/// the old object already ran, on UPDATE) are left alone and not counted.
pub fn pin(
    kind: &str,
    uses: &[ImageUse],
    verdicts: &HashMap<&str, &Verdict>,
    scope: PinScope,
) -> Pinning {
    let mut out = Pinning::default();
    for u in uses {
        let Some(verdict) = verdicts.get(u.image.as_str()) else {
            continue;
        };
        let why_not = match &verdict.pinned {
            None => Some(NotPinned::NotVerified),
            Some(p) if *p == u.image => Some(NotPinned::AlreadyPinned),
            Some(_) if scope.dry_run => Some(NotPinned::DryRun),
            Some(_) if kind != "Pod" && !scope.templates => Some(NotPinned::TemplatesOff),
            Some(_) => None,
        };
        match (why_not, &verdict.pinned, image_pointer(kind, u)) {
            (None, Some(pinned), Some(path)) => {
                // Each rewrite first tests that the pointer holds the image judged: were a
                // pointer ever wrong, the API server refuses the whole patch (and the request)
                // rather than run one container's image in another.
                out.patch.0.push(PatchOperation::Test(TestOperation {
                    path: path.clone(),
                    value: serde_json::Value::String(u.image.clone()),
                }));
                out.patch.0.push(PatchOperation::Replace(ReplaceOperation {
                    path,
                    value: serde_json::Value::String(pinned.clone()),
                }));
            }
            (Some(reason), _, _) => out.skipped.push(reason),
            // No pointer: a kind with no pod spec has no images to begin with.
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::images_of;
    use crate::verdict::{Admission, Outcome};
    use serde_json::{json, Value};

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn verdict(image: &str, pinned: Option<String>) -> Verdict {
        let ok = pinned.is_some();
        Verdict {
            digest: Some(DIGEST.into()),
            policy: Some("p".into()),
            level: Some("strict".into()),
            outcome: if ok {
                Outcome::Verified
            } else {
                Outcome::Failed
            },
            verified: ok,
            admission: if ok {
                Admission::Allow
            } else {
                Admission::Deny
            },
            pinned,
            ..Verdict::new(image)
        }
    }

    /// Pin every image of `object` that `verified` says verified; apply the patch with
    /// json-patch and return the object and the reasons for the rest.
    fn pinned(
        kind: &str,
        object: &Value,
        failing: &[&str],
        scope: PinScope,
    ) -> (Value, Vec<NotPinned>) {
        let uses = images_of(kind, object).expect("images");
        let verdicts: Vec<Verdict> = uses
            .iter()
            .map(|u| {
                let ok = !failing.contains(&u.image.as_str());
                let pin = if u.image.contains('@') {
                    u.image.clone()
                } else {
                    format!("{}@{DIGEST}", u.image)
                };
                verdict(&u.image, ok.then_some(pin))
            })
            .collect();
        let by_image: HashMap<&str, &Verdict> =
            verdicts.iter().map(|v| (v.image.as_str(), v)).collect();
        let p = pin(kind, &uses, &by_image, scope);
        let mut doc = object.clone();
        json_patch::patch(&mut doc, &p.patch).expect("the patch applies");
        (doc, p.skipped)
    }

    const POD_SCOPE: PinScope = PinScope {
        templates: false,
        dry_run: false,
    };

    #[test]
    fn every_container_list_of_a_pod_is_pinned_at_its_own_index() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "init", "image": "registry.local:5000/team/init:1.0"}],
                "containers": [
                    {"name": "app", "image": "nginx"},
                    {"name": "noimage"},
                    {"name": "side", "image": "ghcr.io/acme/side:latest"},
                    {"name": "pinned", "image": "ghcr.io/acme/db:16@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
                    {"name": "bad", "image": "docker.io/evil/unsigned:1"}
                ],
                "ephemeralContainers": [{"name": "debug", "image": "busybox:1.36"}]
            }
        });
        let (doc, skipped) = pinned("Pod", &pod, &["docker.io/evil/unsigned:1"], POD_SCOPE);
        let spec = &doc["spec"];
        assert_eq!(
            spec["initContainers"][0]["image"],
            format!("registry.local:5000/team/init:1.0@{DIGEST}")
        );
        assert_eq!(spec["containers"][0]["image"], format!("nginx@{DIGEST}"));
        assert!(spec["containers"][1].get("image").is_none());
        assert_eq!(
            spec["containers"][2]["image"],
            format!("ghcr.io/acme/side:latest@{DIGEST}")
        );
        assert_eq!(
            spec["containers"][3]["image"],
            pod["spec"]["containers"][3]["image"]
        );
        assert_eq!(spec["containers"][4]["image"], "docker.io/evil/unsigned:1");
        assert_eq!(
            spec["ephemeralContainers"][0]["image"],
            format!("busybox:1.36@{DIGEST}")
        );
        assert_eq!(doc["metadata"], pod["metadata"]);
        assert_eq!(
            skipped,
            vec![NotPinned::AlreadyPinned, NotPinned::NotVerified]
        );
    }

    #[test]
    fn templates_are_pinned_only_when_asked_and_dry_run_never() {
        let deployment = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx:1.25"}]}}}});
        let (doc, skipped) = pinned("Deployment", &deployment, &[], POD_SCOPE);
        assert_eq!(doc, deployment);
        assert_eq!(skipped, vec![NotPinned::TemplatesOff]);
        let scope = PinScope {
            templates: true,
            dry_run: false,
        };
        let (doc, _) = pinned("Deployment", &deployment, &[], scope);
        assert_eq!(
            doc["spec"]["template"]["spec"]["containers"][0]["image"],
            format!("nginx:1.25@{DIGEST}")
        );
        let cron = json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx:1.25"}]}}}}}});
        let (doc, _) = pinned("CronJob", &cron, &[], scope);
        assert_eq!(
            doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
            format!("nginx:1.25@{DIGEST}")
        );
        let pod =
            json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "nginx:1.25"}]}});
        let (doc, skipped) = pinned(
            "Pod",
            &pod,
            &[],
            PinScope {
                templates: true,
                dry_run: true,
            },
        );
        assert_eq!(doc, pod);
        assert_eq!(skipped, vec![NotPinned::DryRun]);
    }

    #[test]
    fn pointers_are_rfc6901_and_the_patch_is_rfc6902() {
        let u = ImageUse {
            image: "x".into(),
            container: "c".into(),
            field: "containers",
            index: 12,
        };
        assert_eq!(
            image_pointer("CronJob", &u).unwrap().as_str(),
            "/spec/jobTemplate/spec/template/spec/containers/12/image"
        );
        assert!(image_pointer("ConfigMap", &u).is_none());
        let mut p = PointerBuf::root();
        p.push_back("a/b~c");
        assert_eq!(p.as_str(), "/a~1b~0c", "tokens are escaped");
        let pod = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "nginx"}]}});
        let uses = images_of("Pod", &pod).unwrap();
        let v = verdict("nginx", Some(format!("nginx@{DIGEST}")));
        let p = pin("Pod", &uses, &HashMap::from([("nginx", &v)]), POD_SCOPE);
        assert_eq!(
            serde_json::to_value(&p.patch).unwrap(),
            json!([
                {"op": "test", "path": "/spec/containers/0/image", "value": "nginx"},
                {"op": "replace", "path": "/spec/containers/0/image", "value": format!("nginx@{DIGEST}")}
            ])
        );
        // Only verified allows carry `pinned`; an allow under audit that failed does not.
        let mut audit = verdict("nginx", None);
        audit.admission = Admission::Allow;
        audit.outcome = Outcome::Failed;
        let p = pin("Pod", &uses, &HashMap::from([("nginx", &audit)]), POD_SCOPE);
        assert!(p.patch.0.is_empty());
        // A patch whose pointer holds another image than the one judged does not apply.
        let other =
            json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "evil"}]}});
        let p = pin("Pod", &uses, &HashMap::from([("nginx", &v)]), POD_SCOPE);
        let mut doc = other.clone();
        assert!(json_patch::patch(&mut doc, &p.patch).is_err());
    }
}
