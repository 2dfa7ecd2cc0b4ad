//! Audit reports: a table for people, JSON (the `verify` result objects plus workload
//! references), JUnit for CI systems, and a self-contained HTML page.
//!
//! Names from manifests and the cluster, image strings and messages are escaped
//! ([`crate::escape`]) in the table, JUnit and HTML: no control character reaches a terminal,
//! and none reaches XML, which forbids most of them.

use std::fmt::Write as _;

use serde_json::json;

use crate::audit::{AuditReport, AuditRow, RowClass};
use crate::escape::escape;

fn workload_name(r: &AuditRow) -> String {
    let w = &r.workload;
    let name = if w.namespace.is_empty() {
        format!("{}/{}", w.kind, w.name)
    } else {
        format!("{}/{}/{}", w.kind, w.namespace, w.name)
    };
    escape(&name).into_owned()
}

fn why(r: &AuditRow) -> String {
    let v = &r.verdict;
    let mut parts: Vec<&str> = v.reasons.iter().map(String::as_str).collect();
    parts.extend(v.warnings.iter().map(String::as_str));
    parts.join("; ")
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn class_name(c: RowClass) -> &'static str {
    match c {
        RowClass::Deny => "DENY",
        RowClass::Warn => "WARN",
        RowClass::Allow => "ALLOW",
    }
}

/// The table: grouped by verdict (deny first), one row per workload container.
pub fn table(report: &AuditReport) -> String {
    let mut out = String::new();
    let (allow, warn, deny) = report.counts();
    // A column as wide as its widest cell, within bounds.
    let width = |cell: &dyn Fn(&AuditRow) -> usize, min: usize, max: usize| {
        report
            .rows
            .iter()
            .map(cell)
            .max()
            .unwrap_or(min)
            .clamp(min, max)
    };
    let w_work = width(&|r| workload_name(r).len(), 8, usize::MAX);
    // Kubernetes container names are at most 63 characters.
    let w_cont = width(&|r| escape(&r.workload.container).len(), 12, 63);
    // Wide enough for an image pinned by digest (the digest alone is 71 characters), so the
    // PINNED column stays aligned; a longer, hostile string overflows rather than widening all.
    let w_img = width(&|r| escape(&r.verdict.image).len(), 5, 160);
    // Which trust policy judged: a column only when the config maps namespaces to policies.
    let mapped = report
        .rows
        .iter()
        .any(|r| r.verdict.policy_mapping.is_some());
    let w_map = width(
        &|r| escape(r.verdict.policy_mapping.as_deref().unwrap_or("")).len(),
        6,
        63,
    );
    let mut current = None;
    for r in &report.rows {
        let c = r.class();
        if current != Some(c) {
            current = Some(c);
            let _ = writeln!(
                out,
                "\n{}",
                match c {
                    RowClass::Deny => "Would be DENIED",
                    RowClass::Warn => "Allowed with WARNINGS",
                    RowClass::Allow => "Allowed",
                }
            );
            let _ = writeln!(
                out,
                "  {:<5}  {:<w_work$}  {:<w_cont$}  {:<w_img$}  PINNED  {}WHY",
                "",
                "WORKLOAD",
                "CONTAINER",
                "IMAGE",
                if mapped {
                    format!("{:<w_map$}  ", "POLICY")
                } else {
                    String::new()
                }
            );
        }
        let reason = why(r);
        let _ = writeln!(
            out,
            "  {:<5}  {:<w_work$}  {:<w_cont$}  {:<w_img$}  {:<6}  {}{}",
            class_name(c),
            workload_name(r),
            escape(&r.workload.container),
            escape(&r.verdict.image),
            yes_no(r.pinned_by_digest()),
            if mapped {
                let m = r.verdict.policy_mapping.as_deref().unwrap_or("");
                format!("{:<w_map$}  ", escape(m))
            } else {
                String::new()
            },
            if reason.is_empty() {
                "verified".into()
            } else {
                escape(&reason)
            }
        );
    }
    if !report.errors.is_empty() {
        let _ = writeln!(out, "\nCould not read");
        for e in &report.errors {
            let _ = writeln!(out, "  {}: {}", escape(&e.source), escape(&e.message));
        }
    }
    let _ = writeln!(
        out,
        "\n{} workload container(s): {allow} allowed, {warn} allowed with warnings, {deny} would be denied; {} input error(s)",
        report.rows.len(),
        report.errors.len()
    );
    let _ = writeln!(out, "{}", report.unpinned_summary());
    out
}

/// JSON: every row is a `verify` result object plus its workload, its class and
/// `pinnedByDigest` (whether the image as written carries a digest; `pinned`, as in `verify`,
/// is the reference to run instead, for an image that verified). The summary counts the rows
/// `unpinned`.
pub fn json(report: &AuditReport) -> String {
    let (allow, warn, deny) = report.counts();
    let results: Vec<serde_json::Value> = report
        .rows
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r.verdict.as_ref()).unwrap_or_default();
            v["workload"] = serde_json::to_value(&r.workload).unwrap_or_default();
            v["class"] = serde_json::to_value(r.class()).unwrap_or_default();
            v["pinnedByDigest"] = r.pinned_by_digest().into();
            v
        })
        .collect();
    serde_json::to_string_pretty(&json!({
        "results": results,
        "errors": report.errors,
        "summary": {
            "allow": allow,
            "warn": warn,
            "deny": deny,
            "unpinned": report.unpinned(),
        },
    }))
    .unwrap_or_default()
}

/// Text as XML character data or attribute value: escaped first, so no character XML 1.0
/// forbids (C0 controls, U+FFFE/U+FFFF) or that would reorder the page (bidi controls) is left.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in escape(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one test case per workload container; denials are failures, images that could
/// not be judged are errors, warnings go to system-out. Whether an image is pinned by digest
/// is a property of its case (`pinnedByDigest`, as pytest writes case properties); the count
/// of unpinned ones is a property of the suite (`unpinned`) and the suite's system-out
/// sentence, since an unpinned image is no failure.
pub fn junit(report: &AuditReport) -> String {
    let failures = report
        .rows
        .iter()
        .filter(|r| {
            r.class() == RowClass::Deny && r.verdict.outcome != crate::verdict::Outcome::Error
        })
        .count();
    let errors = report
        .rows
        .iter()
        .filter(|r| {
            r.class() == RowClass::Deny && r.verdict.outcome == crate::verdict::Outcome::Error
        })
        .count()
        + report.errors.len();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"vouch audit\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        report.rows.len() + report.errors.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"vouch audit\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        report.rows.len() + report.errors.len()
    );
    let _ = writeln!(
        out,
        "    <properties>\n      <property name=\"unpinned\" value=\"{}\"/>\n    </properties>",
        report.unpinned()
    );
    for r in &report.rows {
        let w = &r.workload;
        let classname = if w.namespace.is_empty() {
            format!("{}/{}", w.kind, w.name)
        } else {
            format!("{}.{}/{}", w.namespace, w.kind, w.name)
        };
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}: {}\"",
            xml(&classname),
            xml(&w.container),
            xml(&r.verdict.image)
        );
        let _ = writeln!(
            out,
            ">\n      <properties>\n        <property name=\"pinnedByDigest\" value=\"{}\"/>\n      </properties>",
            r.pinned_by_digest()
        );
        let reason = xml(&why(r));
        match r.class() {
            RowClass::Deny if r.verdict.outcome == crate::verdict::Outcome::Error => {
                let _ = writeln!(
                    out,
                    "      <error message=\"could not be judged\">{reason}</error>"
                );
            }
            RowClass::Deny => {
                let _ = writeln!(
                    out,
                    "      <failure message=\"would be denied\">{reason}</failure>"
                );
            }
            RowClass::Warn => {
                let _ = writeln!(out, "      <system-out>{reason}</system-out>");
            }
            RowClass::Allow => {}
        }
        out.push_str("    </testcase>\n");
    }
    for e in &report.errors {
        let _ = writeln!(
            out,
            "    <testcase classname=\"input\" name=\"{}\">\n      <error message=\"could not be read\">{}</error>\n    </testcase>",
            xml(&e.source),
            xml(&e.message)
        );
    }
    let _ = writeln!(
        out,
        "    <system-out>{}</system-out>",
        xml(&report.unpinned_summary())
    );
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// A single self-contained HTML page: summary counts, a bar chart of allow/warn/deny per
/// namespace (inline SVG), a sortable table, and each denial's reasons. No external assets.
/// A card and a `Pinned` column show which images run by tag alone.
pub fn html(report: &AuditReport) -> String {
    let (allow, warn, deny) = report.counts();
    let mut per_ns: std::collections::BTreeMap<String, [usize; 3]> = Default::default();
    for r in &report.rows {
        let ns = if r.workload.namespace.is_empty() {
            "(none)".to_string()
        } else {
            r.workload.namespace.clone()
        };
        let e = per_ns.entry(ns).or_default();
        match r.class() {
            RowClass::Allow => e[0] += 1,
            RowClass::Warn => e[1] += 1,
            RowClass::Deny => e[2] += 1,
        }
    }
    let max = per_ns
        .values()
        .map(|c| c.iter().sum::<usize>())
        .max()
        .unwrap_or(1)
        .max(1);
    let bar_h = 26;
    let mut svg = format!(
        "<svg id=\"chart\" role=\"img\" aria-label=\"allow, warn and deny per namespace\" width=\"720\" height=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        per_ns.len() * bar_h + 10
    );
    for (i, (ns, c)) in per_ns.iter().enumerate() {
        let y = i * bar_h + 5;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" class=\"ns\">{}</text>",
            y + 16,
            xml(ns)
        );
        let mut x = 180.0;
        for (j, class) in ["allow", "warn", "deny"].iter().enumerate() {
            let w = 520.0 * c[j] as f64 / max as f64;
            if c[j] > 0 {
                let _ = write!(svg, "<rect class=\"bar {class}\" x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"20\"><title>{ns}: {} {class}</title></rect>", c[j], ns = xml(ns));
            }
            x += w;
        }
    }
    svg.push_str("</svg>");
    let mut rows = String::new();
    for r in &report.rows {
        let c = r.class();
        let _ = write!(
            rows,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"pinned\">{}</td><td>{}</td></tr>",
            class_name(c).to_lowercase(),
            class_name(c),
            xml(&r.workload.namespace),
            xml(&format!("{}/{}", r.workload.kind, r.workload.name)),
            xml(&r.workload.container),
            xml(r.verdict.policy.as_deref().unwrap_or("")),
            xml(&r.verdict.image),
            yes_no(r.pinned_by_digest()),
            xml(&why(r)),
        );
    }
    let mut errors = String::new();
    for e in &report.errors {
        let _ = write!(
            errors,
            "<li><code>{}</code>: {}</li>",
            xml(&e.source),
            xml(&e.message)
        );
    }
    let errors_block = if errors.is_empty() {
        String::new()
    } else {
        format!("<h2>Could not read</h2><ul id=\"errors\">{errors}</ul>")
    };
    let unpinned = report.unpinned();
    let unpinned_summary = xml(&report.unpinned_summary());
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vouch audit</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1b1f24; }}
.cards {{ display: flex; gap: 1em; margin: 1em 0; }}
.card {{ padding: .8em 1.2em; border-radius: 6px; background: #f3f4f6; min-width: 8em; }}
.card b {{ display: block; font-size: 1.8em; }}
.bar.allow, .card.allow {{ fill: #2da44e; border-left: 6px solid #2da44e; }}
.bar.warn, .card.warn {{ fill: #d4a72c; border-left: 6px solid #d4a72c; }}
.bar.deny, .card.deny {{ fill: #cf222e; border-left: 6px solid #cf222e; }}
.card.unpinned {{ border-left: 6px solid #8250df; }}
.ns {{ font-size: 12px; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 1em; }}
th, td {{ text-align: left; padding: .35em .6em; border-bottom: 1px solid #e5e7eb; vertical-align: top; }}
th {{ cursor: pointer; background: #f9fafb; user-select: none; }}
tr.deny td:first-child {{ color: #cf222e; font-weight: 600; }}
tr.warn td:first-child {{ color: #9a6700; font-weight: 600; }}
tr.allow td:first-child {{ color: #1a7f37; }}
code {{ font-size: 12px; }}
</style></head>
<body>
<h1>vouch audit</h1>
<div class="cards">
<div class="card allow"><b id="count-allow">{allow}</b>allowed</div>
<div class="card warn"><b id="count-warn">{warn}</b>allowed with warnings</div>
<div class="card deny"><b id="count-deny">{deny}</b>would be denied</div>
<div class="card unpinned"><b id="count-unpinned">{unpinned}</b>not pinned by digest</div>
</div>
<p id="unpinned-summary">{unpinned_summary}</p>
<h2>Per namespace</h2>
{svg}
<h2>Workloads</h2>
<table id="results"><thead><tr><th>Verdict</th><th>Namespace</th><th>Workload</th><th>Container</th><th>Policy</th><th>Image</th><th>Pinned</th><th>Why</th></tr></thead>
<tbody>{rows}</tbody></table>
{errors_block}
<script>
(function () {{
  var table = document.getElementById("results");
  var order = {{}};
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {{
    th.addEventListener("click", function () {{
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      order[i] = !order[i];
      rows.sort(function (a, b) {{
        var x = a.cells[i].textContent, y = b.cells[i].textContent;
        return order[i] ? x.localeCompare(y) : y.localeCompare(x);
      }});
      rows.forEach(function (r) {{ body.appendChild(r); }});
    }});
  }});
  document.body.setAttribute("data-ready", "true");
}})();
</script>
</body></html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{InputError, WorkloadRef};
    use crate::verdict::{Admission, Outcome, Verdict};
    use std::sync::Arc;

    /// A denied row whose names and reason carry what a hostile manifest or registry would.
    fn hostile_report() -> AuditReport {
        let evil = "x\u{1b}[2K\r\u{b}VERIFIED\u{fffe}\u{85}\u{202e}";
        let verdict = Verdict {
            policy: Some("prod".into()),
            level: Some("strict".into()),
            outcome: Outcome::Failed,
            reasons: vec![format!("registry said {evil}")],
            ..Verdict::new(format!("registry.example/app:v1{evil}"))
        };
        AuditReport {
            rows: vec![AuditRow {
                workload: WorkloadRef {
                    kind: "Deployment".into(),
                    namespace: format!("ns{evil}"),
                    name: format!("web{evil}"),
                    container: format!("c{evil}"),
                    source: None,
                },
                verdict: Arc::new(verdict),
            }],
            errors: vec![InputError {
                source: format!("deploy{evil}.yaml:1"),
                message: format!("not valid YAML: {evil}"),
            }],
        }
    }

    #[test]
    fn xml_reports_hold_no_character_xml_forbids() {
        let report = hostile_report();
        for (name, text) in [("junit", junit(&report)), ("html", html(&report))] {
            // XML 1.0 Char: TAB, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD, U+10000 and up; C1 and
            // bidi controls are allowed there but would reorder or hide what is shown.
            let bad: Vec<char> = text
                .chars()
                .filter(|c| {
                    (c.is_control() && *c != '\n')
                        || matches!(*c, '\u{fffe}' | '\u{ffff}' | '\u{202a}'..='\u{202e}')
                })
                .collect();
            assert!(bad.is_empty(), "{name} holds {bad:?}");
            assert!(text.contains("\\u{1b}[2K\\r\\u{b}VERIFIED"), "{name}");
        }
    }

    #[test]
    fn the_table_shows_hostile_names_escaped_on_their_own_lines() {
        let table = table(&hostile_report());
        assert!(
            !table.chars().any(|c| c.is_control() && c != '\n'),
            "{}",
            table.escape_debug()
        );
        assert!(!table
            .lines()
            .any(|l| l.trim_start().starts_with("VERIFIED")));
        assert!(
            table.contains("registry said x\\u{1b}[2K\\r\\u{b}VERIFIED"),
            "{table}"
        );
    }

    const D: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

    fn row(container: &str, image: &str, admission: Admission) -> AuditRow {
        let verified = admission == Admission::Allow;
        AuditRow {
            workload: WorkloadRef {
                kind: "Deployment".into(),
                namespace: "shop".into(),
                name: "web".into(),
                container: container.into(),
                source: None,
            },
            verdict: Arc::new(Verdict {
                digest: verified.then(|| D.to_string()),
                policy: Some("prod".into()),
                level: Some("strict".into()),
                outcome: if verified {
                    Outcome::Verified
                } else {
                    Outcome::Failed
                },
                verified,
                admission,
                reasons: if verified {
                    Vec::new()
                } else {
                    vec!["no Notation signature found".into()]
                },
                pinned: verified.then(|| {
                    if image.contains('@') {
                        image.to_string()
                    } else {
                        format!("{image}@{D}")
                    }
                }),
                ..Verdict::new(image)
            }),
        }
    }

    /// Containers named for whether their image is pinned by digest (`pin-*`) or not
    /// (`tag-*`), allowed and denied alike: pinning is about what runs, not what verified.
    fn mixed_report() -> AuditReport {
        AuditReport {
            rows: vec![
                row("tag-denied", "registry.example/app:v1", Admission::Deny),
                row(
                    "pin-denied",
                    &format!("registry.example/app@{D}"),
                    Admission::Deny,
                ),
                row(
                    "pin-digest",
                    &format!("registry.example/app@{D}"),
                    Admission::Allow,
                ),
                row(
                    "pin-tag-and-digest",
                    &format!("localhost:5000/a/b:v2@{D}"),
                    Admission::Allow,
                ),
                row("tag-v1", "registry.example/app:v1", Admission::Allow),
                row("tag-none", "nginx", Admission::Allow),
                row("tag-port", "localhost:5000/a/b:v2", Admission::Allow),
            ],
            errors: Vec::new(),
        }
    }

    const UNPINNED: &str =
        "4 of 7 workload container(s) run an image not pinned by digest: a tag swap could change what they run";

    fn expect_pinned(container: &str) -> bool {
        container.starts_with("pin-")
    }

    #[test]
    fn pinned_by_digest_is_read_from_the_image_as_written() {
        for r in mixed_report().rows {
            assert_eq!(
                r.pinned_by_digest(),
                expect_pinned(&r.workload.container),
                "{}",
                r.verdict.image
            );
        }
        let not_a_reference = row("x", "Registry.example/App@sha256:zz", Admission::Deny);
        assert!(!not_a_reference.pinned_by_digest());
        let mut none = mixed_report();
        none.rows.retain(|r| r.pinned_by_digest());
        assert_eq!(
            none.unpinned_summary(),
            "0 of 3 workload container(s) run an image not pinned by digest"
        );
    }

    #[test]
    fn the_table_has_a_pinned_column_and_counts_the_unpinned() {
        let table = table(&mixed_report());
        let headers: Vec<&str> = table.lines().filter(|l| l.contains("WORKLOAD")).collect();
        assert_eq!(headers.len(), 2, "deny and allow groups: {table}");
        for h in &headers {
            let cols: Vec<&str> = h.split_whitespace().collect();
            assert_eq!(
                cols,
                ["WORKLOAD", "CONTAINER", "IMAGE", "PINNED", "WHY"],
                "{h}"
            );
        }
        let mut seen = 0;
        for line in table.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 6 || !["ALLOW", "DENY"].contains(&cols[0]) {
                continue;
            }
            seen += 1;
            // verdict, workload, container, image, pinned, why…
            let want = if expect_pinned(cols[2]) { "yes" } else { "no" };
            assert_eq!(cols[4], want, "{line}");
            // The column starts where its header does.
            let at = headers[0].find("PINNED").unwrap();
            assert_eq!(&line[at..at + want.len()], want, "{line}");
        }
        assert_eq!(seen, 7, "{table}");
        assert!(table.trim_end().ends_with(UNPINNED), "{table}");
    }

    #[test]
    fn json_rows_say_pinned_by_digest_and_the_summary_counts_the_unpinned() {
        let v: serde_json::Value = serde_json::from_str(&json(&mixed_report())).unwrap();
        let rows = v["results"].as_array().unwrap();
        assert_eq!(rows.len(), 7);
        for r in rows {
            let c = r["workload"]["container"].as_str().unwrap();
            assert_eq!(r["pinnedByDigest"], expect_pinned(c), "{r}");
        }
        // `pinned` keeps its `verify` meaning: what to run instead, for what verified.
        let tag = rows
            .iter()
            .find(|r| r["workload"]["container"] == "tag-v1")
            .unwrap();
        assert_eq!(tag["pinned"], format!("registry.example/app:v1@{D}"));
        let denied = rows
            .iter()
            .find(|r| r["workload"]["container"] == "tag-denied")
            .unwrap();
        assert!(denied.get("pinned").is_none(), "{denied}");
        assert_eq!(
            v["summary"],
            json!({"allow": 5, "warn": 0, "deny": 2, "unpinned": 4})
        );
    }

    #[test]
    fn junit_cases_carry_pinned_by_digest_and_the_suite_the_count() {
        let xml = junit(&mixed_report());
        let cases: Vec<&str> = xml.split("<testcase ").skip(1).collect();
        assert_eq!(cases.len(), 7, "{xml}");
        for case in &cases {
            let case = &case[..case.find("</testcase>").expect("every case is closed")];
            let container = case
                .split(" name=\"")
                .nth(1)
                .and_then(|n| n.split(':').next())
                .unwrap();
            let want = format!(
                "<property name=\"pinnedByDigest\" value=\"{}\"/>",
                expect_pinned(container)
            );
            assert!(case.contains(&want), "{container}: {case}");
        }
        assert!(
            xml.contains("<properties>\n      <property name=\"unpinned\" value=\"4\"/>\n    </properties>\n    <testcase "),
            "suite properties come before the cases: {xml}"
        );
        assert!(
            xml.contains(&format!(
                "    <system-out>{UNPINNED}</system-out>\n  </testsuite>"
            )),
            "{xml}"
        );
        assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
        assert!(xml.contains("failures=\"2\" errors=\"0\""), "{xml}");
    }

    #[test]
    fn html_has_a_pinned_column_and_an_unpinned_card() {
        let page = html(&mixed_report());
        assert!(
            page.contains("<th>Image</th><th>Pinned</th><th>Why</th>"),
            "{page}"
        );
        let rows: Vec<&str> = page.split("<tr class=").skip(1).collect();
        assert_eq!(rows.len(), 7);
        for r in rows {
            let want = if r.contains("<td>pin-") { "yes" } else { "no" };
            assert!(
                r.contains(&format!("</code></td><td class=\"pinned\">{want}</td>")),
                "{r}"
            );
        }
        assert!(page.contains("id=\"count-unpinned\">4<"), "{page}");
        assert!(page.contains(&format!("<p id=\"unpinned-summary\">{UNPINNED}</p>")));
    }
}
