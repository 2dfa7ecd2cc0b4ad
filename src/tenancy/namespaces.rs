//! Trust chosen per namespace: the config file's `namespaces:` list, each entry mapping the
//! namespaces it names and those its label selector matches to a trust policy document and
//! its trust store. Mappings are tried in order before the policy's scopes; the first that
//! matches judges the namespace's images; a namespace matching none is judged by the
//! cluster-wide policy.
//!
//! The selector is Kubernetes' own `LabelSelector` (k8s-openapi's type, `matchLabels` and
//! `matchExpressions`), evaluated by kube-rs's `Selector` on the namespace's labels from the
//! watch-backed Namespace cache ([`super::Tenancy::namespace_labels`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use serde::Deserialize;

/// One `namespaces:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceTrustConfig {
    /// What verdicts, logs and reports call this mapping; default `namespaces[<index>]`.
    #[serde(default)]
    pub name: Option<String>,
    /// Namespaces by name.
    #[serde(default)]
    pub names: Vec<String>,
    /// Namespaces by label.
    #[serde(default)]
    pub selector: Option<LabelSelector>,
    /// The notation trust policy document for these namespaces.
    pub trust_policy: PathBuf,
    /// Its trust store root (holding `x509/`).
    pub trust_store: PathBuf,
}

/// A validated mapping's way of picking namespaces.
#[derive(Debug, Clone)]
pub struct NamespaceMatcher {
    /// The mapping's name.
    pub name: String,
    names: Vec<String>,
    selector: Option<Selector>,
}

/// What a namespace needs for a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Names alone decide.
    Names,
    /// A selector must see the namespace's labels.
    Labels,
}

impl NamespaceMatcher {
    /// Validate entry `index` of `namespaces:` (a name is required, selectors must parse).
    pub fn new(index: usize, config: &NamespaceTrustConfig) -> Result<Self, String> {
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| format!("namespaces[{index}]"));
        if config.names.is_empty() && config.selector.is_none() {
            return Err(format!(
                "{name}: names no namespace (give names, a selector, or both)"
            ));
        }
        let selector = config
            .selector
            .clone()
            .map(Selector::try_from)
            .transpose()
            .map_err(|e| format!("{name}: selector: {e}"))?;
        Ok(Self {
            name,
            names: config.names.clone(),
            selector,
        })
    }

    /// Whether deciding needs labels.
    pub fn needs(&self) -> Needs {
        if self.selector.is_some() {
            Needs::Labels
        } else {
            Needs::Names
        }
    }

    /// Whether this mapping picks `namespace` (with `labels`, when known).
    pub fn picks(&self, namespace: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.names.iter().any(|n| n == namespace)
            || match (&self.selector, labels) {
                (Some(s), Some(l)) => s.matches(l),
                _ => false,
            }
    }
}

/// The first of `matchers` that picks `namespace`; labels are asked for (once) only when a
/// selector is reached before a match. `Err` when they were needed and could not be read:
/// then no policy is chosen (the cluster-wide one may be the wrong one).
pub async fn choose<'a, F, Fut>(
    matchers: impl IntoIterator<Item = &'a NamespaceMatcher>,
    namespace: &str,
    labels: F,
) -> Result<Option<usize>, String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Option<BTreeMap<String, String>>, String>>,
{
    let mut labels = Some(labels);
    let mut known: Option<Option<BTreeMap<String, String>>> = None;
    for (i, m) in matchers.into_iter().enumerate() {
        if m.picks(namespace, None) {
            return Ok(Some(i));
        }
        if m.needs() == Needs::Labels {
            if known.is_none() {
                let fetch = labels.take().ok_or("labels asked twice")?;
                known = Some(fetch().await.map_err(|e| {
                    format!("the labels of namespace {namespace} could not be read: {e}")
                })?);
            }
            if m.picks(namespace, known.as_ref().and_then(Option::as_ref)) {
                return Ok(Some(i));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(yaml: &str) -> NamespaceMatcher {
        let c: NamespaceTrustConfig = serde_yaml_ng::from_str(yaml).unwrap();
        NamespaceMatcher::new(0, &c).unwrap()
    }

    #[tokio::test]
    async fn first_match_wins_and_labels_are_read_only_when_needed() {
        let ms = [
            matcher("names: [team-a]\ntrustPolicy: /a\ntrustStore: /a"),
            matcher("selector: {matchLabels: {tenant: b}, matchExpressions: [{key: tier, operator: In, values: [prod]}]}\ntrustPolicy: /b\ntrustStore: /b"),
        ];
        let no_labels =
            || async { Err::<Option<BTreeMap<String, String>>, _>("not asked".to_string()) };
        assert_eq!(choose(&ms, "team-a", no_labels).await, Ok(Some(0)));
        let b = || async {
            Ok(Some(BTreeMap::from([
                ("tenant".to_string(), "b".to_string()),
                ("tier".to_string(), "prod".to_string()),
            ])))
        };
        assert_eq!(choose(&ms, "team-b", b).await, Ok(Some(1)));
        let other = || async {
            Ok(Some(BTreeMap::from([(
                "tenant".to_string(),
                "b".to_string(),
            )])))
        };
        assert_eq!(choose(&ms, "team-c", other).await, Ok(None));
        // Labels needed but unreadable: no policy is chosen.
        assert!(choose(&ms, "team-c", no_labels).await.is_err());
    }

    #[test]
    fn mappings_must_name_namespaces_and_selectors_must_parse() {
        let c: NamespaceTrustConfig =
            serde_yaml_ng::from_str("trustPolicy: /a\ntrustStore: /a").unwrap();
        assert!(NamespaceMatcher::new(3, &c)
            .unwrap_err()
            .contains("namespaces[3]"));
        let c: NamespaceTrustConfig = serde_yaml_ng::from_str(
            "selector: {matchExpressions: [{key: k, operator: Near}]}\ntrustPolicy: /a\ntrustStore: /a",
        )
        .unwrap();
        assert!(NamespaceMatcher::new(0, &c).is_err());
        assert!(serde_yaml_ng::from_str::<NamespaceTrustConfig>(
            "names: [a]\ntrustPolicy: /a\ntrustStore: /a\ntrustPolcy: x"
        )
        .is_err());
    }
}
