//! YAML documents from outside (manifests, `--config`), read into JSON values the way kubectl
//! reads them, within limits that hold before the parser spends time or memory.
//!
//! - Limits first: a document's size, how deep its flow collections (`[...]`, `{...}`) nest and
//!   how many nodes it holds are checked by running libyaml's scanner (the tokenizer of the
//!   parser that reads the document next, so both see the same structure) and stopping at the
//!   first limit passed. Without this, nesting costs quadratic time in the scanner and every
//!   node about 100–200 bytes in the parser's event list before a value is built.
//! - Alias expansions count against the same node budget while the value is built, so a small
//!   document whose aliases repeat a large anchor many times is refused, not expanded.
//! - Merge keys (`<<: *base`) are applied as kubectl's reader (go-yaml v2) applies them: an
//!   explicit key after the merge overrides the merged one, of several merged mappings the
//!   first wins. go-yaml v2 also lets a merge override a key written *before* it, which YAML
//!   1.1 says it must not; documents that depend on that are refused rather than read one way
//!   when kubectl reads them the other.
//! - A key written twice keeps its last value, as kubectl does, unless the caller refuses
//!   duplicates (the configuration does).

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::mem::MaybeUninit;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use unsafe_libyaml as unsafe_sys;

/// What one document may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of flow collections.
    pub max_flow_depth: usize,
    /// Most nodes (scalars, collections, aliases), counting each alias expansion in full.
    pub max_nodes: usize,
}

impl Limits {
    /// Manifests: far above what the API server accepts for one object (3 MiB), enough for a
    /// `kind: List` dump of a few thousand workloads.
    pub const MANIFEST: Limits = Limits {
        max_bytes: 16 * 1024 * 1024,
        max_flow_depth: 64,
        max_nodes: 1_000_000,
    };
}

/// How keys are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    /// The last value of a key written twice wins (kubectl).
    LastWins,
    /// A key written twice is an error.
    Refuse,
}

/// A document that was not read.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// Larger than [`Limits::max_bytes`].
    #[error("document is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Flow collections nest deeper than [`Limits::max_flow_depth`].
    #[error("flow collections ([...] and {{...}}) nest deeper than {limit} levels at line {line}")]
    TooDeep {
        /// The limit.
        limit: usize,
        /// 1-based line within the document where the limit was passed.
        line: usize,
    },
    /// More nodes than [`Limits::max_nodes`] in the text.
    #[error("document has more than {limit} nodes (passed at line {line})")]
    TooManyNodes {
        /// The limit.
        limit: usize,
        /// 1-based line within the document where the limit was passed.
        line: usize,
    },
    /// Not valid YAML, or refused while building the value (aliases expanding past the node
    /// limit, a merge key kubectl would read differently, a duplicate key).
    #[error("{0}")]
    Invalid(serde_yaml_ng::Error),
}

impl YamlError {
    /// 1-based line within the document, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            YamlError::TooLarge { .. } => None,
            YamlError::TooDeep { line, .. } | YamlError::TooManyNodes { line, .. } => Some(*line),
            YamlError::Invalid(e) => e.location().map(|l| l.line()),
        }
    }
}

/// Read one YAML document into a JSON value: limits checked before parsing, merge keys applied,
/// keys as strings (`1: a` gives `{"1": "a"}`, as kubectl's YAML-to-JSON does).
pub fn to_json(text: &str, limits: &Limits, duplicates: Duplicates) -> Result<Value, YamlError> {
    check_limits(text, limits)?;
    let nodes = Cell::new(0);
    let seed = Node {
        nodes: &nodes,
        max_nodes: limits.max_nodes,
        duplicates,
        merge_keys: true,
    };
    seed.deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .map_err(YamlError::Invalid)
}

/// Read a JSON document under the same node budget. JSON has no merge keys (kubectl reads JSON
/// as JSON: a `"<<"` key is just a key) and its parser's depth limit (128) and linear time need
/// no scan first.
pub fn json_to_value(text: &str, max_nodes: usize) -> Result<Value, serde_json::Error> {
    let nodes = Cell::new(0);
    let seed = Node {
        nodes: &nodes,
        max_nodes,
        duplicates: Duplicates::LastWins,
        merge_keys: false,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let v = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Size, flow depth and node count, from libyaml's token stream; stops at the first limit
/// passed. A syntax error ends the check: the parse that follows reports it, with its place.
fn check_limits(text: &str, limits: &Limits) -> Result<(), YamlError> {
    if text.len() > limits.max_bytes {
        return Err(YamlError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let mut parser = Box::new(MaybeUninit::<unsafe_sys::yaml_parser_t>::uninit());
    let p = parser.as_mut_ptr();
    // SAFETY: the parser is initialised before use and deleted once, after the last token; it
    // lives on the heap, so it does not move while libyaml holds pointers into it, and reads
    // `text`, which outlives it. Every token is deleted after its type and mark are copied.
    unsafe {
        if unsafe_sys::yaml_parser_initialize(p).fail {
            // Out of memory for libyaml's first buffers: the parse would fail the same way.
            return Ok(());
        }
        unsafe_sys::yaml_parser_set_encoding(p, unsafe_sys::YAML_UTF8_ENCODING);
        unsafe_sys::yaml_parser_set_input_string(p, text.as_ptr(), text.len() as u64);
        let mut depth = 0usize;
        let mut nodes = 0usize;
        let mut result = Ok(());
        loop {
            let mut token = MaybeUninit::<unsafe_sys::yaml_token_t>::uninit();
            let t = token.as_mut_ptr();
            if unsafe_sys::yaml_parser_scan(p, t).fail {
                break;
            }
            let kind = (*t).type_;
            let line = usize::try_from((*t).start_mark.line)
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            unsafe_sys::yaml_token_delete(t);
            use unsafe_sys::yaml_token_type_t as T;
            match kind {
                T::YAML_STREAM_END_TOKEN | T::YAML_NO_TOKEN => break,
                T::YAML_FLOW_SEQUENCE_START_TOKEN | T::YAML_FLOW_MAPPING_START_TOKEN => {
                    depth += 1;
                    nodes += 1;
                    if depth > limits.max_flow_depth {
                        result = Err(YamlError::TooDeep {
                            limit: limits.max_flow_depth,
                            line,
                        });
                        break;
                    }
                }
                T::YAML_FLOW_SEQUENCE_END_TOKEN | T::YAML_FLOW_MAPPING_END_TOKEN => {
                    depth = depth.saturating_sub(1);
                }
                T::YAML_BLOCK_SEQUENCE_START_TOKEN
                | T::YAML_BLOCK_MAPPING_START_TOKEN
                | T::YAML_SCALAR_TOKEN
                | T::YAML_ALIAS_TOKEN => nodes += 1,
                _ => {}
            }
            if nodes > limits.max_nodes {
                result = Err(YamlError::TooManyNodes {
                    limit: limits.max_nodes,
                    line,
                });
                break;
            }
        }
        unsafe_sys::yaml_parser_delete(p);
        result
    }
}

/// Builds a value from any node, counting nodes (alias expansions included) and applying merge
/// keys when asked.
#[derive(Clone, Copy)]
struct Node<'a> {
    nodes: &'a Cell<usize>,
    max_nodes: usize,
    duplicates: Duplicates,
    merge_keys: bool,
}

impl Node<'_> {
    fn count<E: de::Error>(&self) -> Result<(), E> {
        let n = self.nodes.get() + 1;
        if n > self.max_nodes {
            return Err(E::custom(format!(
                "document expands to more than {} nodes (aliases repeating large anchors?)",
                self.max_nodes
            )));
        }
        self.nodes.set(n);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML node")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.count()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.count()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.count()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        self.visit_f64(v as f64)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        self.visit_f64(v as f64)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.count()?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.visit_string(v.to_string())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.count()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.count()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.count()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.count()?;
        let mut out = Map::new();
        let mut written = (self.duplicates == Duplicates::Refuse).then(HashSet::new);
        while let Some(key) = map.next_key_seed(Key(self))? {
            let value = map.next_value_seed(self)?;
            if self.merge_keys && key == "<<" {
                merge(&mut out, value).map_err(de::Error::custom)?;
                continue;
            }
            if let Some(written) = written.as_mut() {
                if !written.insert(key.clone()) {
                    return Err(de::Error::custom(format!("duplicate key {key:?}")));
                }
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }

    /// A node with a tag serde_yaml_ng does not resolve (`!thing {a: 1}`): its content, as
    /// go-yaml v2 reads it.
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use de::VariantAccess;
        let (_tag, content) = data.variant::<String>()?;
        content.newtype_variant_seed(self)
    }
}

/// Apply one merge key's value to the mapping built so far.
fn merge(out: &mut Map<String, Value>, value: Value) -> Result<(), String> {
    let sources = match value {
        Value::Object(m) => vec![m],
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::Object(m) => Ok(m),
                _ => Err("the merge key `<<` takes a mapping or a list of mappings".to_string()),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err("the merge key `<<` takes a mapping or a list of mappings".into()),
    };
    let mut merged = Map::new();
    for m in sources {
        for (k, v) in m {
            // Of several merged mappings, the first that has a key gives it.
            merged.entry(k).or_insert(v);
        }
    }
    for (k, v) in merged {
        if out.contains_key(&k) {
            return Err(format!(
                "key {k:?} is written before the merge key `<<` and comes from it too: YAML readers \
                 disagree on which wins (kubectl takes the merged one); write it after the `<<` line \
                 or only once"
            ));
        }
        out.insert(k, v);
    }
    Ok(())
}

/// A mapping key as the string kubectl's YAML-to-JSON makes of it.
struct Key<'a>(Node<'a>);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number or boolean as a mapping key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        self.visit_string(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        self.visit_string(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        self.visit_string(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        self.visit_string(v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.visit_string(v.to_string())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        self.0.count()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, Instant};

    fn read(text: &str) -> Result<Value, YamlError> {
        to_json(text, &Limits::MANIFEST, Duplicates::LastWins)
    }

    #[test]
    fn merge_keys_are_applied_as_kubectl_applies_them() {
        let v = read(
            "base: &base {image: a, name: x}\nmore: &more {name: m, ports: [80]}\nc:\n  <<: [*base, *more]\n  name: y\n",
        )
        .unwrap();
        assert_eq!(v["c"], json!({"image": "a", "name": "y", "ports": [80]}));
        // A merged mapping's own merge keys are applied too.
        let v = read("a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b}\n").unwrap();
        assert_eq!(v["c"], json!({"x": 1, "y": 2}));
    }

    #[test]
    fn a_merge_that_would_override_an_earlier_key_is_refused() {
        let err = read("a: &a {image: evil}\nc:\n  image: good\n  <<: *a\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"image\" is written before the merge key"),
            "{err}"
        );
        let err = read("c: {<<: 3}\n").unwrap_err().to_string();
        assert!(err.contains("takes a mapping"), "{err}");
    }

    #[test]
    fn keys_become_strings_and_the_last_duplicate_wins_unless_refused() {
        let v = read("1: a\ntrue: b\nk: 1\nk: 2\n").unwrap();
        assert_eq!(v, json!({"1": "a", "true": "b", "k": 2}));
        let err = to_json("k: 1\nk: 2\n", &Limits::MANIFEST, Duplicates::Refuse)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate key \"k\""), "{err}");
        assert!(read("[a]: b\n").is_err());
    }

    #[test]
    fn deep_flow_nesting_is_refused_before_parsing() {
        let text = "{a: ".repeat(50_000) + &"}".repeat(50_000);
        let started = Instant::now();
        let err = read(&text).unwrap_err();
        assert!(
            matches!(err, YamlError::TooDeep { limit: 64, line: 1 }),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let ok = "[".repeat(64) + &"]".repeat(64);
        assert!(read(&ok).is_ok());
    }

    #[test]
    fn node_budgets_hold_for_text_and_for_alias_expansion() {
        let limits = Limits {
            max_nodes: 1000,
            ..Limits::MANIFEST
        };
        let text = format!("[{}]", "[],".repeat(2000));
        let err = to_json(&text, &limits, Duplicates::LastWins).unwrap_err();
        assert!(
            matches!(err, YamlError::TooManyNodes { limit: 1000, .. }),
            "{err}"
        );
        // 85 nodes of text that expand to more than 40 * 40.
        let bomb = format!(
            "a: &a [{}]\nb: [{}]\n",
            vec!["x"; 40].join(","),
            vec!["*a"; 40].join(",")
        );
        let err = match to_json(&bomb, &limits, Duplicates::LastWins) {
            Ok(_) => panic!("the aliases were expanded past the budget"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("expands to more than 1000 nodes"), "{err}");
        let err = to_json(
            "a: b\n",
            &Limits {
                max_bytes: 3,
                ..limits
            },
            Duplicates::LastWins,
        )
        .unwrap_err();
        assert!(matches!(err, YamlError::TooLarge { limit: 3 }));
    }

    #[test]
    fn json_has_the_node_budget_and_no_merge_keys() {
        let v = json_to_value(r#"{"<<": {"a": 1}, "b": [1, 2]}"#, 10).unwrap();
        assert_eq!(v, json!({"<<": {"a": 1}, "b": [1, 2]}));
        let err = json_to_value(&format!("[{}0]", "0,".repeat(20)), 10).unwrap_err();
        assert!(err.to_string().contains("more than 10 nodes"), "{err}");
        assert!(json_to_value("{} x", 10).is_err());
    }

    #[test]
    fn errors_keep_their_line() {
        let err = read("a: 1\nb: [1, 2\n").unwrap_err();
        assert_eq!(err.line(), Some(3), "{err}");
        let err = read("a: 1\nb:\n  c: [[[[x]]]]\n").map(|_| ());
        assert!(err.is_ok());
    }
}
