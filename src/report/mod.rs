//! Verdicts for people and machines: the text lines of `vouch verify` and its JSON document.
//!
//! Text is one line per image, one with the pinned reference of an image verified by tag, and
//! one per reason or warning; everything that came from outside (image strings, signer names,
//! registry messages) is escaped ([`crate::escape`]), so nothing can end a line early or draw
//! over one. The JSON document keeps data fields as given and
//! messages escaped, as the gate made them ([`crate::verdict::Verdict::escape_messages`]).

use std::fmt::Write as _;

use serde::Serialize;

use crate::escape::Escaped;
use crate::verdict::{Admission, Outcome, Verdict};

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

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Verified => "verified",
        Outcome::Skipped => "skipped",
        Outcome::Failed => "failed",
        Outcome::Error => "error",
    }
}

/// Render verdicts as text: one line per image with its verdict, then, for an image written by
/// tag that verified, the reference that pins it to the verified digest (what to run so a tag
/// swap cannot change it), then each reason and warning.
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
        // An image written with a digest is its own pin; repeating it says nothing.
        if let Some(pinned) = v.pinned.as_deref().filter(|p| *p != v.image) {
            let _ = writeln!(out, "  → pinned: {}", Escaped(pinned));
        }
        // An index judged by its platforms: one line each, what it concluded and who signed it.
        for p in &v.platforms {
            let signer = p
                .signatures
                .iter()
                .find(|s| s.verified)
                .and_then(|s| s.signer.as_deref())
                .map(|s| format!(", signed by {}", Escaped(s)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  ▸ {} {}: {}{signer}",
                Escaped(&p.platform),
                Escaped(&p.digest),
                outcome_name(p.outcome)
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

    fn verified(image: &str, pinned: Option<&str>) -> Verdict {
        Verdict {
            reference: Some(format!("registry.example/app@{D}")),
            digest: Some(D.into()),
            policy: Some("prod".into()),
            level: Some("strict".into()),
            outcome: Outcome::Verified,
            verified: true,
            admission: Admission::Allow,
            pinned: pinned.map(str::to_string),
            ..Verdict::new(image)
        }
    }

    #[test]
    fn text_shows_the_pin_of_an_image_verified_by_tag() {
        let pin = format!("registry.example/app:v1@{D}");
        let text = text(&[verified("registry.example/app:v1", Some(&pin))]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("VERIFIED "), "{text}");
        assert_eq!(lines[1], format!("  → pinned: {pin}"));
    }

    #[test]
    fn text_does_not_repeat_an_image_written_with_its_digest() {
        let image = format!("registry.example/app:v1@{D}");
        let text = text(&[verified(&image, Some(&image))]);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains("pinned"), "{text}");
        // Nothing verified, nothing pinned.
        let mut failed = verified("registry.example/app:v1", None);
        failed.outcome = Outcome::Failed;
        failed.admission = Admission::Deny;
        assert!(!super::text(&[failed]).contains("pinned"));
    }

    #[test]
    fn text_escapes_the_pinned_reference() {
        let text = text(&[verified("a:v1", Some("a:v1\u{1b}[2K\rVERIFIED x"))]);
        assert_eq!(text.lines().count(), 2, "{}", text.escape_debug());
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
        assert!(
            text.contains("  → pinned: a:v1\\u{1b}[2K\\rVERIFIED x"),
            "{text}"
        );
    }
}
