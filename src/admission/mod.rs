//! Kubernetes admission: images out of Pods and pod templates, and the AdmissionReview answer.
//!
//! Workload kinds that create pods are judged at `kubectl apply` time (a bad Deployment is
//! refused then, not later as a ReplicaSet that silently cannot create pods). The answer follows
//! the admission table of the design: strict/permissive failures deny with a message naming every
//! refused image and why; audit-level failures, logged failures and dry-run would-be denials
//! become `warnings` and `auditAnnotations`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::escape::{escape, Escaped};
use crate::verdict::{Admission, Outcome, Verdict};

pub mod pin;

/// Most containers read from one object; anything beyond is refused as unreasonable.
pub const MAX_CONTAINERS: usize = 2048;
/// Kubernetes shows warnings to users; keep each short and their number bounded.
const MAX_WARNING_LEN: usize = 240;
const MAX_WARNINGS: usize = 12;

/// Where an image was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageUse {
    /// The image string as written.
    pub image: String,
    /// Container name.
    pub container: String,
    /// `containers`, `initContainers` or `ephemeralContainers`.
    pub field: &'static str,
    /// Position in that list (containers without an image count too).
    pub index: usize,
}

/// Why an object's images could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageExtractionError {
    /// A container list or image is not of the expected JSON type.
    #[error("{path}: {reason}")]
    Shape {
        /// JSON path of the bad value (`spec.containers[0].image`).
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Too many containers.
    #[error("the object has more than {MAX_CONTAINERS} containers")]
    TooMany,
}

/// The path to the pod spec inside an object of `kind`, or `None` for kinds that do not make
/// pods.
pub fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&["spec"]),
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => Some(&["spec", "template", "spec"]),
        "PodTemplate" => Some(&["template", "spec"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

// Only the fields on the way to the containers are read; everything else in the object is
// skipped without being built, which keeps the webhook's hot path cheap. Every level must be a
// JSON object ([`Object`]): serde's derived structs would also read an array positionally, and
// an image read from `[["name", "image"]]` has no JSON pointer to be pinned at (nor would the
// API server accept such an object).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    init_containers: Option<Vec<Object<Container>>>,
    containers: Option<Vec<Object<Container>>>,
    ephemeral_containers: Option<Vec<Object<Container>>>,
}

#[derive(Deserialize)]
struct Container {
    name: Option<String>,
    /// `None` when absent or null: the API server rejects containers without an image, so
    /// there is nothing to judge.
    image: Option<String>,
}

#[derive(Deserialize)]
struct HasSpec<T> {
    spec: Option<Object<T>>,
}

#[derive(Deserialize)]
struct HasTemplate<T> {
    template: Option<Object<T>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HasJobTemplate<T> {
    job_template: Option<Object<T>>,
}

/// A `T` read only from a JSON object.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OnlyMaps<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for OnlyMaps<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(OnlyMaps(std::marker::PhantomData))
            .map(Object)
    }
}

type PodObject = HasSpec<PodSpec>;
type TemplateObject = HasSpec<HasTemplate<HasSpec<PodSpec>>>;
type PodTemplateObject = HasTemplate<HasSpec<PodSpec>>;
type CronJobObject = HasSpec<HasJobTemplate<HasSpec<HasTemplate<HasSpec<PodSpec>>>>>;

/// Every image an object of `kind` would run, in spec order (init containers, containers,
/// ephemeral containers). `object` is the object's JSON: a parsed `serde_json::Value`, or the
/// raw text of an admission request.
pub fn images_of<'de, D>(kind: &str, object: D) -> Result<Vec<ImageUse>, ImageExtractionError>
where
    D: serde::Deserializer<'de>,
{
    fn read<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
        object: D,
    ) -> Result<T, ImageExtractionError> {
        serde_path_to_error::deserialize(object).map_err(|e| ImageExtractionError::Shape {
            path: e.path().to_string(),
            reason: e.into_inner().to_string(),
        })
    }
    let spec = match kind {
        "Pod" => read::<Object<PodObject>, _>(object)?.0.spec,
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => read::<Object<TemplateObject>, _>(object)?
            .0
            .spec
            .and_then(|s| s.0.template)
            .and_then(|t| t.0.spec),
        "PodTemplate" => read::<Object<PodTemplateObject>, _>(object)?
            .0
            .template
            .and_then(|t| t.0.spec),
        "CronJob" => read::<Object<CronJobObject>, _>(object)?
            .0
            .spec
            .and_then(|s| s.0.job_template)
            .and_then(|j| j.0.spec)
            .and_then(|s| s.0.template)
            .and_then(|t| t.0.spec),
        _ => None,
    };
    let Some(Object(spec)) = spec else {
        return Ok(Vec::new());
    };
    let lists = [
        ("initContainers", spec.init_containers),
        ("containers", spec.containers),
        ("ephemeralContainers", spec.ephemeral_containers),
    ];
    let total: usize = lists
        .iter()
        .map(|(_, l)| l.as_ref().map_or(0, Vec::len))
        .sum();
    if total > MAX_CONTAINERS {
        return Err(ImageExtractionError::TooMany);
    }
    let mut out = Vec::with_capacity(total);
    for (field, list) in lists {
        for (index, Object(c)) in list.into_iter().flatten().enumerate() {
            let Some(image) = c.image else { continue };
            out.push(ImageUse {
                image,
                container: c.name.unwrap_or_default(),
                field,
                index,
            });
        }
    }
    Ok(out)
}

/// Whether the webhook refuses or only records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// Deny what the verdicts deny.
    #[default]
    Enforce,
    /// Never deny: would-be denials become warnings, annotations, metrics and log lines.
    Dryrun,
}

/// The answer for one admission request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Admit?
    pub allowed: bool,
    /// The denial message (empty when allowed).
    pub message: String,
    /// Short warnings shown by kubectl.
    pub warnings: Vec<String>,
    /// Audit annotations (keys are prefixed by the API server with the webhook name).
    pub audit_annotations: HashMap<String, String>,
    /// Images that were (or, in dry-run, would have been) denied.
    pub denied: Vec<String>,
}

/// Combine the verdicts of an object's distinct images into one answer.
pub fn decide(verdicts: &[Verdict], enforcement: Enforcement) -> Decision {
    let mut denials = Vec::new();
    let mut warnings = Vec::new();
    for v in verdicts {
        let shown = v.reference.as_deref().unwrap_or(&v.image);
        match v.admission {
            Admission::Deny => denials.push((v, explain(v))),
            Admission::Allow => {
                if v.outcome != Outcome::Verified && v.outcome != Outcome::Skipped {
                    // Audit level (or an unreachable registry under audit): allowed, but said.
                    warnings.push(format!(
                        "vouch: {} would not pass verification ({}): {}",
                        Escaped(&v.image),
                        v.level.as_deref().unwrap_or("audit"),
                        explain(v)
                    ));
                }
                for w in &v.warnings {
                    warnings.push(format!("vouch: {}: {}", Escaped(shown), Escaped(w)));
                }
            }
        }
    }
    let denied: Vec<String> = denials.iter().map(|(v, _)| v.image.clone()).collect();
    let mut audit_annotations = HashMap::new();
    /// One image in the `verdicts` audit annotation (fields in alphabetical order, as before).
    #[derive(Serialize)]
    struct Summary<'a> {
        admission: Admission,
        digest: &'a Option<String>,
        outcome: Outcome,
        policy: &'a Option<String>,
    }
    let summary: BTreeMap<&str, Summary> = verdicts
        .iter()
        .map(|v| {
            (
                v.image.as_str(),
                Summary {
                    admission: v.admission,
                    digest: &v.digest,
                    outcome: v.outcome,
                    policy: &v.policy,
                },
            )
        })
        .collect();
    if !summary.is_empty() {
        audit_annotations.insert(
            "verdicts".to_string(),
            serde_json::to_string(&summary).unwrap_or_default(),
        );
    }
    let mut message = String::new();
    if !denials.is_empty() {
        let parts: Vec<String> = denials
            .iter()
            .map(|(v, why)| format!("{}: {why}", Escaped(&v.image)))
            .collect();
        message = format!(
            "vouch denied {} image{}: {}",
            denials.len(),
            if denials.len() == 1 { "" } else { "s" },
            parts.join("; ")
        );
    }
    let allowed = denials.is_empty() || enforcement == Enforcement::Dryrun;
    if enforcement == Enforcement::Dryrun && !denials.is_empty() {
        warnings.insert(0, format!("vouch (dry run) would deny: {message}"));
        audit_annotations.insert("would-deny".to_string(), message.clone());
        message.clear();
    } else if !warnings.is_empty() {
        audit_annotations.insert("warnings".to_string(), warnings.join("\n"));
    }
    Decision {
        allowed,
        message,
        warnings: shorten(warnings),
        audit_annotations,
        denied,
    }
}

/// The reasons of a verdict in one sentence a developer can act on (escaped: it quotes
/// registries and images, and is shown by kubectl and in logs).
pub fn explain(v: &Verdict) -> String {
    if v.reasons.is_empty() {
        return "verification did not pass".into();
    }
    escape(&v.reasons.join("; ")).into_owned()
}

fn shorten(warnings: Vec<String>) -> Vec<String> {
    let total = warnings.len();
    let mut out: Vec<String> = warnings
        .into_iter()
        .take(MAX_WARNINGS)
        .map(|w| {
            if w.len() <= MAX_WARNING_LEN {
                w
            } else {
                // ASCII ellipsis: the API server passes warnings through HTTP headers.
                let mut end = MAX_WARNING_LEN - 3;
                while !w.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}...", &w[..end])
            }
        })
        .collect();
    if total > MAX_WARNINGS {
        out.push(format!(
            "vouch: {} more warnings in the audit annotations",
            total - MAX_WARNINGS
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn images_from_every_workload_kind() {
        let spec = json!({"initContainers":[{"name":"i","image":"init:1"}],"containers":[{"name":"c","image":"app:1"}],"ephemeralContainers":[{"name":"e","image":"debug:1"}]});
        let pod = json!({"spec": spec});
        let tmpl = json!({"spec": {"template": {"spec": spec}}});
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}});
        for (kind, obj) in [
            ("Pod", &pod),
            ("Deployment", &tmpl),
            ("ReplicaSet", &tmpl),
            ("StatefulSet", &tmpl),
            ("DaemonSet", &tmpl),
            ("Job", &tmpl),
            ("ReplicationController", &tmpl),
            ("CronJob", &cron),
        ] {
            let imgs: Vec<String> = images_of(kind, obj)
                .unwrap()
                .into_iter()
                .map(|u| u.image)
                .collect();
            assert_eq!(imgs, ["init:1", "app:1", "debug:1"], "{kind}");
        }
        assert!(images_of("ConfigMap", json!({"data": {}}))
            .unwrap()
            .is_empty());
        assert!(images_of("Deployment", json!({"spec": {}}))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn images_are_read_at_every_pod_spec_path() {
        // images_of reads through typed structs; audit walks pod_spec_path. Both must agree.
        for kind in [
            "Pod",
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "ReplicationController",
            "PodTemplate",
            "CronJob",
        ] {
            let path = pod_spec_path(kind).expect("a pod-making kind");
            let mut object = json!({"containers": [{"name": "c", "image": "app:1"}]});
            for key in path.iter().rev() {
                object = json!({ *key: object });
            }
            let found: Vec<String> = images_of(kind, &object)
                .unwrap()
                .into_iter()
                .map(|u| u.image)
                .collect();
            assert_eq!(found, ["app:1"], "{kind} at {}", path.join("."));
        }
    }

    #[test]
    fn malformed_container_lists_are_errors() {
        let bad = json!({"spec": {"containers": {"image": "x"}}});
        let err = images_of("Pod", &bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.containers: invalid type: map, expected a sequence"
        );
        let bad = json!({"spec": {"containers": [{"image": 5}]}});
        let err = images_of("Pod", &bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.containers[0].image: invalid type: integer `5`, expected a string"
        );
        let bad = json!({"spec": {"template": {"spec": {"initContainers": [{"name": "i", "image": ["x"]}]}}}});
        let err = images_of("Deployment", &bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.template.spec.initContainers[0].image: invalid type: sequence, expected a string"
        );
    }
}
