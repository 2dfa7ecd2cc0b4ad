//! `vouch audit`: what the admission gate would decide for everything a cluster runs, or for
//! manifests before they are applied — so a policy can be rolled out audit → dryrun → enforce.
//!
//! Images are gathered from Pods and pod templates (the same extraction as the webhook), each
//! distinct image is judged once through the same gate and cache, and every (workload, container)
//! gets a row naming the image as written.

pub mod cluster;
pub mod kubeconfig;
pub mod manifests;

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;

use crate::gate::Gate;
use crate::reference::ImageReference;
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
    let mut errors = errors;
    // Parser messages quote the input; they are messages, escaped as verdicts' are.
    for e in &mut errors {
        crate::escape::escape_in_place(&mut e.message);
    }
    let mut distinct: Vec<String> = uses.iter().map(|u| u.image.clone()).collect();
    distinct.sort();
    distinct.dedup();
    if let Some(p) = progress {
        p.set_length(distinct.len() as u64);
    }
    let verdicts: HashMap<String, Arc<Verdict>> = futures::stream::iter(distinct)
        .map(|image| async move {
            let v = gate.judge(&image).await;
            (image, Arc::new(v))
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
            verdicts.get(&u.image).map(|v| AuditRow {
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
