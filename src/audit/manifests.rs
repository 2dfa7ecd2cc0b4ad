//! Images out of manifest files: multi-document YAML (the output of `helm template` or a
//! kustomize build), JSON, and `List` kinds. A document that cannot be parsed is reported with
//! its file and line, and the others are still read.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ImageUse, InputError, WorkloadRef};
use crate::admission::images_of;
use crate::files;
use crate::yaml::{self, Duplicates, Limits};

/// Largest manifest file read, and the most read from standard input.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Deepest directory level read below a directory given with `-f`.
pub const MAX_DEPTH: usize = 16;
/// Most manifest files read in one run.
pub const MAX_FILES: usize = 10_000;
/// Most directory entries looked at in one run.
pub const MAX_ENTRIES: usize = 100_000;

/// Read files and directories (recursively: `*.yaml`, `*.yml`, `*.json`); `-` is standard input.
/// A directory or file reached twice (through symlinks or hard links) is read once.
pub fn read_paths(paths: &[PathBuf]) -> (Vec<ImageUse>, Vec<InputError>) {
    let mut uses = Vec::new();
    let mut errors = Vec::new();
    let mut walk = Walk::default();
    for p in paths {
        if p.as_os_str() == "-" {
            match files::read_stdin(MAX_FILE_BYTES) {
                Ok(bytes) => read_bytes("<stdin>", bytes, &mut uses, &mut errors),
                Err(e) => errors.push(InputError {
                    source: e.path,
                    message: e.problem.to_string(),
                }),
            }
            continue;
        }
        let mut found = Vec::new();
        walk.collect(p, 0, &mut found, &mut errors);
        for f in found {
            match files::read(&f, MAX_FILE_BYTES) {
                Ok(bytes) => read_bytes(&f.display().to_string(), bytes, &mut uses, &mut errors),
                Err(e) => errors.push(InputError {
                    source: e.path,
                    message: e.problem.to_string(),
                }),
            }
        }
    }
    (uses, errors)
}

fn read_bytes(
    source: &str,
    bytes: Vec<u8>,
    uses: &mut Vec<ImageUse>,
    errors: &mut Vec<InputError>,
) {
    match String::from_utf8(bytes) {
        Ok(text) => read_text(source, &text, uses, errors),
        Err(_) => errors.push(InputError {
            source: source.to_string(),
            message: "is not UTF-8 text".into(),
        }),
    }
}

/// The directory walk's memory: what was seen (by device and inode, so a symlink loop or a
/// second link to a directory is walked once) and how much.
#[derive(Default)]
struct Walk {
    seen: HashSet<(u64, u64)>,
    files: usize,
    entries: usize,
}

impl Walk {
    fn collect(
        &mut self,
        p: &Path,
        depth: usize,
        out: &mut Vec<PathBuf>,
        errors: &mut Vec<InputError>,
    ) {
        let error = |errors: &mut Vec<InputError>, message: String| {
            errors.push(InputError {
                source: p.display().to_string(),
                message,
            })
        };
        // Follows symlinks: what a link names is what counts.
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return error(errors, "no such file or directory".into())
            }
            Err(e) => return error(errors, e.to_string()),
        };
        if !self.seen.insert((meta.dev(), meta.ino())) {
            return;
        }
        if !meta.is_dir() {
            // Given by name (or a manifest found below): reading it refuses what is not a
            // regular file.
            if self.files == MAX_FILES {
                return error(
                    errors,
                    format!("more than {MAX_FILES} manifest files; not read"),
                );
            }
            self.files += 1;
            return out.push(p.to_path_buf());
        }
        if depth > MAX_DEPTH {
            return error(
                errors,
                format!("more than {MAX_DEPTH} directory levels deep; not read"),
            );
        }
        let mut entries = Vec::new();
        let rd = match std::fs::read_dir(p) {
            Ok(rd) => rd,
            Err(e) => return error(errors, e.to_string()),
        };
        for e in rd {
            if self.entries == MAX_ENTRIES {
                return error(
                    errors,
                    format!("more than {MAX_ENTRIES} directory entries; the rest is not read"),
                );
            }
            self.entries += 1;
            match e {
                Ok(e) => entries.push(e.path()),
                Err(e) => error(errors, e.to_string()),
            }
        }
        entries.sort();
        for e in entries {
            let is_dir = std::fs::metadata(&e).is_ok_and(|m| m.is_dir());
            let is_manifest = e
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"));
            if is_dir || is_manifest {
                self.collect(&e, depth + 1, out, errors);
            }
        }
    }
}

/// Read one file's text: JSON, or YAML split on `---` lines so that one broken document does
/// not hide the others. Each document yields at most one error.
pub fn read_text(source: &str, text: &str, uses: &mut Vec<ImageUse>, errors: &mut Vec<InputError>) {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match yaml::json_to_value(text, Limits::MANIFEST.max_nodes) {
            Ok(v) => add_checked(&format!("{source}:1"), &v, uses, errors),
            Err(e) => errors.push(InputError {
                source: format!("{source}:{}:{}", e.line(), e.column()),
                message: format!("not valid JSON: {e}"),
            }),
        }
        return;
    }
    for (start_line, doc) in split_documents(text) {
        let doc = match doc {
            Ok(doc) => doc,
            Err(message) => {
                errors.push(InputError {
                    source: format!("{source}:{start_line}"),
                    message,
                });
                continue;
            }
        };
        if doc.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#')
        }) {
            continue;
        }
        match yaml::to_json(&doc, &Limits::MANIFEST, Duplicates::LastWins) {
            Ok(v) => add_checked(&format!("{source}:{start_line}"), &v, uses, errors),
            Err(e) => {
                let line = e.line().map_or(start_line, |l| start_line + l - 1);
                let message = match e {
                    yaml::YamlError::Invalid(e) => format!("not valid YAML: {e}"),
                    limit => format!("not read: {limit}"),
                };
                errors.push(InputError {
                    source: format!("{source}:{line}"),
                    message,
                });
            }
        }
    }
}

/// Split a YAML stream at `---` lines (a comment may follow, as kubectl allows) and `...`
/// lines; yields (1-based first line, text), or an error for a `---` line with content after
/// it, which kubectl refuses.
fn split_documents(text: &str) -> Vec<(usize, Result<String, String>)> {
    let mut docs = Vec::new();
    let mut current = Ok(String::new());
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let separator = line.strip_prefix("---").map(str::trim);
        if separator.is_some() || line.trim_end() == "..." {
            docs.push((start, std::mem::replace(&mut current, Ok(String::new()))));
            start = i + 2;
            if let Some(rest) = separator.filter(|r| !r.is_empty() && !r.starts_with('#')) {
                current = Err(format!(
                    "content after the document separator `---` ({rest:?}); kubectl refuses it"
                ));
                start = i + 1;
            }
        } else if let Ok(doc) = current.as_mut() {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.push((start, current));
    docs
}

/// Add one document's workloads; its problems become one error.
fn add_checked(source: &str, v: &Value, uses: &mut Vec<ImageUse>, errors: &mut Vec<InputError>) {
    let mut problems = Vec::new();
    add_document(source, v, uses, &mut problems);
    if let Some(first) = problems.first() {
        let message = match problems.len() {
            1 => first.clone(),
            n => format!("{first} (and {} more problems in this document)", n - 1),
        };
        errors.push(InputError {
            source: source.to_string(),
            message,
        });
    }
}

fn add_document(source: &str, v: &Value, uses: &mut Vec<ImageUse>, problems: &mut Vec<String>) {
    match v {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                add_document(source, item, uses, problems);
            }
        }
        Value::Object(map) => {
            let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
            if kind.ends_with("List") {
                if let Some(items) = map.get("items").and_then(Value::as_array) {
                    for item in items {
                        add_document(source, item, uses, problems);
                    }
                }
                return;
            }
            let meta = map.get("metadata");
            let name = meta
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let namespace = meta
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            match images_of(kind, v) {
                Ok(found) => {
                    for u in found {
                        uses.push(ImageUse {
                            workload: WorkloadRef {
                                kind: kind.to_string(),
                                namespace: namespace.clone(),
                                name: name.clone(),
                                container: u.container,
                                source: Some(source.to_string()),
                            },
                            image: u.image,
                            pull: None,
                        });
                    }
                }
                Err(e) => problems.push(format!("{kind}/{name}: {e}")),
            }
        }
        _ => problems.push("a manifest document must be a mapping".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_with_comments_lists_and_broken_documents() {
        let text = "# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.example/shop/web:1\n---\nkind: Pod\nmetadata: {name: broken\nspec: {}\n---\napiVersion: v1\nkind: List\nitems:\n  - kind: Pod\n    metadata: {name: p}\n    spec:\n      initContainers: [{name: i, image: busybox}]\n";
        let (mut uses, mut errors) = (Vec::new(), Vec::new());
        read_text("all.yaml", text, &mut uses, &mut errors);
        let images: Vec<(&str, &str)> = uses
            .iter()
            .map(|u| (u.workload.name.as_str(), u.image.as_str()))
            .collect();
        assert_eq!(
            images,
            [("web", "registry.example/shop/web:1"), ("p", "busybox")]
        );
        assert_eq!(uses[0].workload.namespace, "shop");
        assert_eq!(uses[0].workload.source.as_deref(), Some("all.yaml:7"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].source.starts_with("all.yaml:2"), "{errors:?}");
        assert!(errors[0].message.contains("not valid YAML"));
    }

    #[test]
    fn json_documents_and_bad_shapes() {
        let (mut uses, mut errors) = (Vec::new(), Vec::new());
        read_text(
            "x.json",
            r#"{"kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}"#,
            &mut uses,
            &mut errors,
        );
        read_text(
            "y.json",
            r#"{"kind":"Pod","spec":{"containers":"nope"}}"#,
            &mut uses,
            &mut errors,
        );
        read_text("z.json", "{not json", &mut uses, &mut errors);
        assert_eq!(uses.len(), 1);
        assert_eq!(errors.len(), 2);
        assert!(errors[1].source.starts_with("z.json:1:"), "{errors:?}");
    }

    #[test]
    fn containers_from_a_merge_key_are_audited() {
        let text = "x-pod: &pod\n  containers:\n    - name: app\n      image: registry.example/evil:1\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      <<: *pod\n";
        // An anchor does not cross documents; in one document it does.
        let one = text.replace("---\n", "");
        let (mut uses, mut errors) = (Vec::new(), Vec::new());
        read_text("m.yaml", &one, &mut uses, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(uses.len(), 1);
        assert_eq!(uses[0].image, "registry.example/evil:1");
        let (mut uses, mut errors) = (Vec::new(), Vec::new());
        read_text("m.yaml", text, &mut uses, &mut errors);
        assert!(uses.is_empty());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("unknown anchor"), "{errors:?}");
    }

    #[test]
    fn one_error_per_document_and_separators_with_comments() {
        let many = format!("[{}]\n", vec!["1"; 10_000].join(", "));
        let text = format!("--- # first\n{many}---\nkind: Pod\nspec: {{containers: [{{name: a, image: b}}]}}\n--- {{kind: Pod}}\n");
        let (mut uses, mut errors) = (Vec::new(), Vec::new());
        read_text("s.yaml", &text, &mut uses, &mut errors);
        assert_eq!(uses.len(), 1, "{errors:?}");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].source, "s.yaml:2");
        assert!(
            errors[0].message.contains("and 9999 more problems"),
            "{errors:?}"
        );
        assert_eq!(errors[1].source, "s.yaml:6");
        assert!(
            errors[1].message.contains("kubectl refuses it"),
            "{errors:?}"
        );
    }

    #[test]
    fn symlink_loops_and_repeated_links_are_walked_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join("pod.yaml"),
            "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx}]}\n",
        )
        .unwrap();
        for l in ["l1", "l2", "l3"] {
            std::os::unix::fs::symlink(".", root.join(l)).unwrap();
        }
        std::os::unix::fs::symlink("pod.yaml", root.join("again.yaml")).unwrap();
        let started = std::time::Instant::now();
        let (uses, errors) = read_paths(&[root.to_path_buf()]);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(uses.len(), 1);
    }

    #[test]
    fn too_deep_directories_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut deep = dir.path().to_path_buf();
        for i in 0..=MAX_DEPTH {
            deep.push(format!("d{i}"));
        }
        std::fs::create_dir_all(&deep).unwrap();
        let (_, errors) = read_paths(&[dir.path().to_path_buf()]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].message.contains("directory levels deep"),
            "{errors:?}"
        );
    }
}
