//! Verdicts for people and machines: the text lines of `vouch verify` and its JSON document.
//!
//! Text is one line per image and one per reason or warning; everything that came from outside
//! (image strings, signer names, registry messages) is escaped ([`crate::escape`]), so nothing
//! can end a line early or draw over one. The JSON document keeps data fields as given and
//! messages escaped, as the gate made them ([`crate::gate::Verdict::escape_messages`]).

use std::fmt::Write as _;

use serde::Serialize;

use crate::escape::Escaped;
use crate::gate::{Admission, Outcome, Verdict};

/// The JSON document `vouch verify --output json` prints.
#[derive(Serialize)]
pub struct VerifyReport<'a> {
    /// One result per image, in argument order.
    pub results: &'a [Verdict],
}

/// Render verdicts as the JSON contract of `vouch verify`.
pub fn json(verdicts: &[Verdict]) -> String {
    serde_json::to_string_pretty(&VerifyReport { results: verdicts })
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Render verdicts as text: one line per image with its verdict, then each reason and warning.
pub fn text(verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    for v in verdicts {
        let label = match v.outcome {
            Outcome::Verified => "VERIFIED",
            Outcome::Skipped => "SKIPPED ",
            Outcome::Failed => "FAILED  ",
            Outcome::Error => "ERROR   ",
        };
        let shown = v.reference.as_deref().unwrap_or(&v.image);
        let mut context = Vec::new();
        if let (Some(p), Some(l)) = (&v.policy, &v.level) {
            context.push(format!("policy {p:?}, {l}"));
        }
        let verified = v.signatures.iter().find(|s| s.verified);
        if let Some(signer) = verified.and_then(|s| s.signer.as_deref()) {
            context.push(format!("signed by {}", Escaped(signer)));
        }
        if let Some(ts) = verified.and_then(|s| s.timestamp.as_deref()) {
            let at = ts
                .time
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            context.push(format!("timestamped {at} by {}", Escaped(&ts.tsa)));
        }
        context.push(match v.admission {
            Admission::Allow => "admission: allow".into(),
            Admission::Deny => "admission: deny".into(),
        });
        let _ = writeln!(
            out,
            "{label} {} ({})",
            Escaped(shown),
            Escaped(&context.join("; "))
        );
        for r in &v.reasons {
            let _ = writeln!(out, "  ✗ {}", Escaped(r));
        }
        for w in &v.warnings {
            let _ = writeln!(out, "  ! {}", Escaped(w));
        }
    }
    out
}

pub mod audit;
