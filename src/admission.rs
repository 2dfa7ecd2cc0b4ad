//! Kubernetes admission: images out of Pods and pod templates, and the AdmissionReview answer.
//!
//! Workload kinds that create pods are judged at `kubectl apply` time (a bad Deployment is
//! refused then, not later as a ReplicaSet that silently cannot create pods). The answer follows
//! the admission table of the design: strict/permissive failures deny with a message naming every
//! refused image and why; audit-level failures, logged failures and dry-run would-be denials
//! become `warnings` and `auditAnnotations`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use crate::gate::{Admission, Outcome, Verdict};

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
}

/// Why an object's images could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageExtractionError {
    /// A container list or image is not of the expected JSON type.
    #[error("{path} is not {expected}")]
    Shape {
        /// JSON path of the bad value.
        path: String,
        /// What it should be.
        expected: &'static str,
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

/// Every image an object of `kind` would run, in spec order.
pub fn images_of(kind: &str, object: &Value) -> Result<Vec<ImageUse>, ImageExtractionError> {
    let Some(path) = pod_spec_path(kind) else {
        return Ok(Vec::new());
    };
    let mut spec = object;
    for key in path {
        match spec.get(key) {
            Some(v) => spec = v,
            None => return Ok(Vec::new()),
        }
    }
    let mut out = Vec::new();
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        let list = match spec.get(field) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(list)) => list,
            Some(_) => {
                return Err(ImageExtractionError::Shape {
                    path: format!("{}.{field}", path.join(".")),
                    expected: "a list",
                })
            }
        };
        for (i, c) in list.iter().enumerate() {
            if out.len() >= MAX_CONTAINERS {
                return Err(ImageExtractionError::TooMany);
            }
            let image = match c.get("image") {
                Some(Value::String(s)) => s.clone(),
                // The API server rejects containers without an image; nothing to judge here.
                None | Some(Value::Null) => continue,
                Some(_) => {
                    return Err(ImageExtractionError::Shape {
                        path: format!("{}.{field}[{i}].image", path.join(".")),
                        expected: "a string",
                    })
                }
            };
            let container = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            out.push(ImageUse {
                image,
                container,
                field: match field {
                    "initContainers" => "initContainers",
                    "containers" => "containers",
                    _ => "ephemeralContainers",
                },
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
                        v.image,
                        v.level.as_deref().unwrap_or("audit"),
                        explain(v)
                    ));
                }
                for w in &v.warnings {
                    warnings.push(format!("vouch: {shown}: {w}"));
                }
            }
        }
    }
    let denied: Vec<String> = denials.iter().map(|(v, _)| v.image.clone()).collect();
    let mut audit_annotations = HashMap::new();
    let summary: BTreeMap<&str, serde_json::Value> = verdicts
        .iter()
        .map(|v| {
            (
                v.image.as_str(),
                serde_json::json!({
                    "digest": v.digest,
                    "outcome": v.outcome,
                    "admission": v.admission,
                    "policy": v.policy,
                }),
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
            .map(|(v, why)| format!("{}: {why}", v.image))
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

/// The reasons of a verdict in one sentence a developer can act on.
pub fn explain(v: &Verdict) -> String {
    if v.reasons.is_empty() {
        return "verification did not pass".into();
    }
    v.reasons.join("; ")
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
        assert!(images_of("ConfigMap", &json!({"data": {}}))
            .unwrap()
            .is_empty());
        assert!(images_of("Deployment", &json!({"spec": {}}))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn malformed_container_lists_are_errors() {
        let bad = json!({"spec": {"containers": {"image": "x"}}});
        assert!(images_of("Pod", &bad).is_err());
        let bad = json!({"spec": {"containers": [{"image": 5}]}});
        let err = images_of("Pod", &bad).unwrap_err();
        assert_eq!(err.to_string(), "spec.containers[0].image is not a string");
    }
}
