//! `vouch audit`: what the admission gate would decide for everything a cluster runs, or for
//! manifests before they are applied — so a policy can be rolled out audit → dryrun → enforce.
//!
//! Images are gathered from Pods and pod templates (the same extraction as the webhook), each
//! distinct image is judged once per (trust policy, credential) through the same gate and
//! cache, and every (workload, container) gets a row naming the image as written. A workload
//! from a live cluster is judged with its own pull credentials, as the kubelet would pull its
//! images ([`cluster`]), through a cache of that reader's own: a verdict read with one tenant's
//! credentials is never another's.

pub mod cluster;
pub mod kubeconfig;
pub mod manifests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;

use crate::config::Gates;
use crate::gate::Gate;
use crate::reference::ImageReference;
use crate::registry::auth::PullCredentials;
use crate::verdict::{Admission, Outcome, Verdict};

/// How many images are judged at once.
pub const CONCURRENCY: usize = 8;

/// A container of a workload.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct WorkloadRef {
    /// Kind (`Deployment`, `Pod`, …).
    pub kind: String,
    /// Namespace (empty for manifests that name none).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Container name.
    pub container: String,
    /// Where the manifest came from (`file:line`), for manifest audits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// An image as a workload uses it.
#[derive(Debug, Clone)]
pub struct ImageUse {
    /// The workload container.
    pub workload: WorkloadRef,
    /// The image as written.
    pub image: String,
    /// The workload's pull credentials (its pod's `imagePullSecrets`, then its ServiceAccount's),
    /// and whether vouch's own stand in for registries they do not name; `None`: vouch's own
    /// only (manifests, `--no-pull-secrets`).
    pub pull: Option<Arc<PullCredentials>>,
}

/// Input that could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct InputError {
    /// `file:line` (or the API resource).
    pub source: String,
    /// What was wrong.
    pub message: String,
}

/// Allow, warn or deny, as a row is grouped in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowClass {
    /// Would be denied.
    Deny,
    /// Allowed, with warnings (audit-level failures, logged checks, quarantine audit).
    Warn,
    /// Allowed.
    Allow,
}

/// One (workload, container) and its verdict.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// The workload container.
    pub workload: WorkloadRef,
    /// The verdict of its image (shared by every row of that image).
    pub verdict: Arc<Verdict>,
}

impl AuditRow {
    /// Deny, warn or allow.
    pub fn class(&self) -> RowClass {
        let v = &self.verdict;
        if v.admission == Admission::Deny {
            RowClass::Deny
        } else if !matches!(v.outcome, Outcome::Verified | Outcome::Skipped)
            || !v.warnings.is_empty()
        {
            RowClass::Warn
        } else {
            RowClass::Allow
        }
    }

    /// Whether the image runs by digest: written with `@<algorithm>:<hex>` (with or without a
    /// tag), so the runtime pulls exactly that manifest whoever moves the tag. Independent of
    /// the verdict. A string that is not a reference is not pinned.
    pub fn pinned_by_digest(&self) -> bool {
        ImageReference::parse(&self.verdict.image).is_ok_and(|r| r.digest().is_some())
    }
}

/// A finished audit.
#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    /// Rows, sorted by class then workload.
    pub rows: Vec<AuditRow>,
    /// Inputs that could not be read.
    pub errors: Vec<InputError>,
}

impl AuditReport {
    /// Counts of (allow, warn, deny).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for r in &self.rows {
            match r.class() {
                RowClass::Allow => c.0 += 1,
                RowClass::Warn => c.1 += 1,
                RowClass::Deny => c.2 += 1,
            }
        }
        c
    }

    /// How many rows run an image not pinned by digest ([`AuditRow::pinned_by_digest`]): what
    /// a tag swap could change.
    pub fn unpinned(&self) -> usize {
        self.rows.iter().filter(|r| !r.pinned_by_digest()).count()
    }

    /// The summary sentence of [`AuditReport::unpinned`], the same in every report format.
    pub fn unpinned_summary(&self) -> String {
        let n = self.unpinned();
        let mut s = format!(
            "{n} of {} workload container(s) run an image not pinned by digest",
            self.rows.len()
        );
        if n > 0 {
            s.push_str(": a tag swap could change what they run");
        }
        s
    }

    /// `vouch audit`'s exit status: 3 when an image could not be judged, 2 when input could
    /// not be read, 1 when something would be denied, else 0.
    pub fn exit_status(&self) -> u8 {
        if self
            .rows
            .iter()
            .any(|r| r.verdict.outcome == Outcome::Error && r.verdict.admission == Admission::Deny)
        {
            3
        } else if !self.errors.is_empty() {
            2
        } else if self.rows.iter().any(|r| r.class() == RowClass::Deny) {
            1
        } else {
            0
        }
    }
}

/// Judge every distinct image once and build the report.
pub async fn run(
    gate: &Gate,
    uses: Vec<ImageUse>,
    errors: Vec<InputError>,
    progress: Option<&indicatif::ProgressBar>,
) -> AuditReport {
    let gates = Gates {
        cluster: Arc::new(gate.clone()),
        namespaces: Vec::new(),
    };
    run_by_namespace(&gates, &HashMap::new(), uses, errors, progress).await
}

/// Who reads an image: `own` (vouch's credentials) or the workload's chosen credential
/// ([`crate::registry::auth::Credential::identity`]), as the registry client will choose it.
fn reader_identity(pull: Option<&PullCredentials>, image: &str) -> String {
    match (pull, ImageReference::parse(image)) {
        (Some(pull), Ok(r)) => pull.choose(r.registry(), r.repository()).identity(),
        // Not a reference: judged as an error, read by nobody.
        _ => "own".into(),
    }
}

/// Judge every distinct image once per trust policy and reader that applies to it: each
/// workload by the `namespaces:` mapping its namespace selects (by name, or by its labels in
/// `namespace_labels`; a namespace without labels there is picked by name only), else by the
/// cluster-wide policy, read with its own pull credentials ([`ImageUse::pull`]). A verdict is
/// reused only for workloads of the same policy whose credentials for the image are the same.
/// With mappings, every verdict names its policy ([`Verdict::policy_mapping`]).
pub async fn run_by_namespace(
    gates: &Gates,
    namespace_labels: &HashMap<String, BTreeMap<String, String>>,
    uses: Vec<ImageUse>,
    errors: Vec<InputError>,
    progress: Option<&indicatif::ProgressBar>,
) -> AuditReport {
    let mut errors = errors;
    // Parser messages quote the input; they are messages, escaped as verdicts' are.
    for e in &mut errors {
        crate::escape::escape_in_place(&mut e.message);
    }
    let pick = |namespace: &str| -> Option<usize> {
        let labels = namespace_labels.get(namespace);
        gates
            .namespaces
            .iter()
            .position(|(m, _)| m.picks(namespace, labels))
    };
    // (policy mapping, reader identity, image), and one use's credentials to read it with.
    type Key = (Option<usize>, String, String);
    let key_of = |u: &ImageUse| -> Key {
        (
            pick(&u.workload.namespace),
            reader_identity(u.pull.as_deref(), &u.image),
            u.image.clone(),
        )
    };
    let mut distinct: BTreeMap<Key, Option<Arc<PullCredentials>>> = BTreeMap::new();
    for u in &uses {
        distinct.entry(key_of(u)).or_insert_with(|| u.pull.clone());
    }
    if let Some(p) = progress {
        p.set_length(distinct.len() as u64);
    }
    let named = !gates.namespaces.is_empty();
    let verdicts: HashMap<Key, Arc<Verdict>> = futures::stream::iter(distinct)
        .map(|(key, pull)| async move {
            let (gate, mapping) = gates.get(key.0);
            let mut v = match pull {
                None => gate.judge(&key.2).await,
                // The gate keys what it resolves and judges by the reading credential: what
                // one workload's credentials read is never another's.
                Some(pull) => {
                    let registry = gate.registry().with_pull_credentials((*pull).clone());
                    gate.with_registry(registry).judge(&key.2).await
                }
            };
            if named {
                v.policy_mapping = Some(mapping.to_string());
            }
            (key, Arc::new(v))
        })
        .buffer_unordered(CONCURRENCY)
        .inspect(|_| {
            if let Some(p) = progress {
                p.inc(1);
            }
        })
        .collect()
        .await;
    let mut rows: Vec<AuditRow> = uses
        .into_iter()
        .filter_map(|u| {
            verdicts.get(&key_of(&u)).map(|v| AuditRow {
                workload: u.workload,
                verdict: v.clone(),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.class(), &a.workload, &a.verdict.image).cmp(&(b.class(), &b.workload, &b.verdict.image))
    });
    AuditReport { rows, errors }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::auth::{Credential, PullCredential};

    #[test]
    fn readers_are_told_apart_by_the_credential_chosen_for_the_image() {
        let alice = Credential::Basic {
            username: "alice".into(),
            password: "pw".into(),
        };
        let scoped = |own_fallback| PullCredentials {
            entries: vec![PullCredential {
                host: "registry.example".into(),
                path: Some("team-a".into()),
                credential: alice.clone(),
            }],
            own_fallback,
        };
        let a = "registry.example/team-a/app:v1";
        let b = "registry.example/team-b/app:v1";
        let with = scoped(true);
        assert_eq!(
            reader_identity(Some(&with), a),
            format!("pod:{}", alice.identity())
        );
        assert_eq!(reader_identity(Some(&with), b), "own", "not for team-b");
        assert_eq!(reader_identity(None, a), "own");
        let pod_only = scoped(false);
        assert_eq!(
            reader_identity(Some(&pod_only), b),
            format!("pod:{}", Credential::Anonymous.identity())
        );
    }
}
