//! Images out of manifest files: multi-document YAML (the output of `helm template` or a
//! kustomize build), JSON, and `List` kinds. A document that cannot be parsed is reported with
//! its file and line, and the others are still read.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ImageUse, InputError, WorkloadRef};
use crate::admission::images_of;

/// Largest manifest file read.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Read files and directories (recursively: `*.yaml`, `*.yml`, `*.json`); `-` is standard input.
pub fn read_paths(paths: &[PathBuf]) -> (Vec<ImageUse>, Vec<InputError>) {
    let mut uses = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut text = String::new();
            use std::io::Read;
            match std::io::stdin()
                .take(MAX_FILE_BYTES)
                .read_to_string(&mut text)
            {
                Ok(_) => read_text("<stdin>", &text, &mut uses, &mut errors),
                Err(e) => errors.push(InputError {
                    source: "<stdin>".into(),
                    message: e.to_string(),
                }),
            }
            continue;
        }
        let mut files = Vec::new();
        collect_files(p, &mut files, &mut errors, 0);
        for f in files {
            let shown = f.display().to_string();
            match std::fs::metadata(&f) {
                Ok(m) if m.len() > MAX_FILE_BYTES => errors.push(InputError {
                    source: shown,
                    message: format!("larger than {MAX_FILE_BYTES} bytes"),
                }),
                Ok(_) => match std::fs::read_to_string(&f) {
                    Ok(text) => read_text(&shown, &text, &mut uses, &mut errors),
                    Err(e) => errors.push(InputError {
                        source: shown,
                        message: e.to_string(),
                    }),
                },
                Err(e) => errors.push(InputError {
                    source: shown,
                    message: e.to_string(),
                }),
            }
        }
    }
    (uses, errors)
}

fn collect_files(p: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<InputError>, depth: usize) {
    if depth > 16 {
        return;
    }
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(p) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                errors.push(InputError {
                    source: p.display().to_string(),
                    message: e.to_string(),
                });
                return;
            }
        };
        entries.sort();
        for e in entries {
            if e.is_dir() {
                collect_files(&e, out, errors, depth + 1);
            } else if e
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"))
            {
                out.push(e);
            }
        }
    } else if p.exists() {
        out.push(p.to_path_buf());
    } else {
        errors.push(InputError {
            source: p.display().to_string(),
            message: "no such file or directory".into(),
        });
    }
}

/// Read one file's text: JSON, or YAML split on `---` lines so that one broken document does
/// not hide the others.
pub fn read_text(source: &str, text: &str, uses: &mut Vec<ImageUse>, errors: &mut Vec<InputError>) {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => add_document(&format!("{source}:1"), &v, uses, errors),
            Err(e) => errors.push(InputError {
                source: format!("{source}:{}:{}", e.line(), e.column()),
                message: format!("not valid JSON: {e}"),
            }),
        }
        return;
    }
    for (start_line, doc) in split_documents(text) {
        if doc.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#')
        }) {
            continue;
        }
        match serde_yaml_ng::from_str::<Value>(&doc) {
            Ok(v) => add_document(&format!("{source}:{start_line}"), &v, uses, errors),
            Err(e) => {
                let line = e
                    .location()
                    .map(|l| start_line + l.line() - 1)
                    .unwrap_or(start_line);
                errors.push(InputError {
                    source: format!("{source}:{line}"),
                    message: format!("not valid YAML: {e}"),
                });
            }
        }
    }
}

/// Split a YAML stream at `---` separator lines; yields (1-based first line, text).
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("---") && line[3..].trim().is_empty() || line.trim_end() == "..." {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.push((start, current));
    docs
}

fn add_document(source: &str, v: &Value, uses: &mut Vec<ImageUse>, errors: &mut Vec<InputError>) {
    match v {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                add_document(source, item, uses, errors);
            }
        }
        Value::Object(map) => {
            let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
            if kind.ends_with("List") {
                if let Some(items) = map.get("items").and_then(Value::as_array) {
                    for item in items {
                        add_document(source, item, uses, errors);
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
                        });
                    }
                }
                Err(e) => errors.push(InputError {
                    source: source.to_string(),
                    message: format!("{kind}/{name}: {e}"),
                }),
            }
        }
        _ => errors.push(InputError {
            source: source.to_string(),
            message: "a manifest document must be a mapping".into(),
        }),
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
}
