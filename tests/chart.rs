//! The Helm chart (`charts/vouch`) and the example trust policies (`policy/`).
//!
//! The checks live in `tests/chart/check.py`, which drives a real Helm (the `helm-sdkpy` Python
//! package, installed by `tests/run.sh` together with `kubernetes-validate`): one test here per
//! concern. The last tests hand what the chart renders, and the example policies, to vouch's
//! own parsers, so "vouch would refuse this configuration" is decided by vouch itself, and serve
//! the chart's default configuration to see what a fresh install answers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::webhook;
use serde_json::Value;

use vouch::config::Config;
use vouch::notation::trust_policy::TrustPolicy;
use vouch::notation::trust_store::TrustStores;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `python3 tests/chart/check.py ARGS` and fail with its output unless it succeeds.
fn check_py(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("tests/chart/check.py")
        .args(args)
        .current_dir(root())
        .output()
        .expect("python3 could not be started");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tests/chart/check.py {} failed ({}); tests/run.sh installs its Python packages.\n\
         --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        args.join(" "),
        out.status
    );
    stdout
}

#[test]
fn chart_lints_strictly_for_every_values_file() {
    check_py(&["lint"]);
}

#[test]
fn chart_renders_objects_valid_for_kubernetes() {
    check_py(&["render"]);
}

#[test]
fn chart_is_safe_for_a_fail_closed_webhook() {
    check_py(&["safety"]);
}

#[test]
fn chart_keeps_its_ca_across_upgrades_and_restarts_only_for_config() {
    check_py(&["upgrade"]);
}

#[test]
fn chart_pins_with_a_mutating_webhook_in_step_with_the_validating_one() {
    check_py(&["mutating"]);
}

#[test]
fn chart_rejects_typos_and_unsafe_values() {
    check_py(&["values"]);
}

#[test]
fn example_policies_are_valid_and_in_step_with_the_chart_examples() {
    check_py(&["policies"]);
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("vouch-chart-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Load a trust policy and the trust stores it names below `store_root`, skipping the stores
/// listed in `external` (those come from ConfigMaps or Secrets that exist only in a cluster).
fn load_policy_and_stores(policy: &Path, store_root: &Path, external: &[String]) {
    let tp = TrustPolicy::load(policy)
        .unwrap_or_else(|e| panic!("{}: vouch refuses the trust policy: {e}", policy.display()));
    let refs: Vec<_> = tp
        .trust_store_refs()
        .filter(|r| !external.contains(&r.to_string()))
        .cloned()
        .collect();
    TrustStores::load(store_root, refs.iter()).unwrap_or_else(|e| {
        panic!(
            "{}: vouch refuses the trust stores under {}: {e}",
            policy.display(),
            store_root.display()
        )
    });
}

/// `check.py dump` into a fresh directory: it (removed on drop) and its scenario directories,
/// sorted.
fn dumped_scenarios(tag: &str) -> (TempDir, Vec<PathBuf>) {
    let tmp = TempDir::new(tag);
    check_py(&["dump", tmp.0.to_str().expect("utf-8 temp path")]);
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(&tmp.0)
        .expect("dump dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    scenarios.sort();
    (tmp, scenarios)
}

#[test]
fn rendered_configuration_loads_in_vouch() {
    let (_tmp, scenarios) = dumped_scenarios("dump");
    assert!(
        scenarios.len() >= 2,
        "expected the default and the ci/ scenarios, got {scenarios:?}"
    );
    let mut pinned_templates_seen = std::collections::BTreeSet::new();
    let mut platforms_seen = false;
    for dir in &scenarios {
        let name = dir.file_name().unwrap().to_string_lossy();
        let text = std::fs::read_to_string(dir.join("config.yaml")).expect("config.yaml");
        // Unknown keys are refused here, exactly as `vouch serve --config` would at start-up.
        let config = Config::from_yaml(&text)
            .unwrap_or_else(|e| panic!("{name}: vouch refuses the rendered config: {e}\n{text}"));
        assert_eq!(
            config.trust_policy.as_deref(),
            Some(Path::new("/etc/vouch/policy/trustpolicy.json")),
            "{name}"
        );
        assert_eq!(
            config.trust_store.as_deref(),
            Some(Path::new("/etc/vouch/truststore")),
            "{name}"
        );
        assert!(
            config.serve.tls_cert.is_some() && config.serve.tls_key.is_some(),
            "{name}"
        );
        // check.py compares it with the webhook's timeoutSeconds; here: vouch parses it.
        assert!(
            config.serve.deadline.is_some_and(|d| !d.is_zero()),
            "{name}: no deadline"
        );
        // webhook.mutating.templates, as vouch reads it: /mutate pins templates only when true.
        let want_templates = std::fs::read_to_string(dir.join("mutate-templates.txt"))
            .expect("mutate-templates.txt")
            .trim()
            == "true";
        assert_eq!(
            config.serve.mutate.templates, want_templates,
            "{name}: serve.mutate.templates does not follow webhook.mutating.templates\n{text}"
        );
        pinned_templates_seen.insert(want_templates);
        vouch::platforms::PlatformPolicy::new(&config.platforms).unwrap_or_else(|e| {
            panic!("{name}: vouch refuses the rendered platforms: {e}\n{text}")
        });
        platforms_seen |= !config.platforms.is_empty();
        let policy = dir.join("trustpolicy.json");
        if policy.exists() {
            let external: Vec<String> = std::fs::read_to_string(dir.join("external-stores.txt"))
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            load_policy_and_stores(&policy, &dir.join("truststore"), &external);
        }
    }
    assert_eq!(
        pinned_templates_seen.len(),
        2,
        "no scenario renders serve.mutate.templates both ways (true and false)"
    );
    assert!(platforms_seen, "no scenario renders a platforms entry");
}

/// Where a path of the pod lies in a dumped scenario (`fs/` holds what the chart's ConfigMaps
/// put in the pod).
fn in_pod(fs: &Path, path: &Path) -> PathBuf {
    fs.join(path.strip_prefix("/").unwrap_or(path))
}

/// What `check.py dump` wrote for one scenario: the files in the pod, and the mounts from
/// outside the chart (existing ConfigMaps and Secrets).
struct PodFiles {
    fs: PathBuf,
    external: Vec<PathBuf>,
}

impl PodFiles {
    fn read(dir: &Path) -> Self {
        let external = std::fs::read_to_string(dir.join("external-mounts.txt"))
            .expect("external-mounts.txt")
            .lines()
            .map(PathBuf::from)
            .collect();
        PodFiles {
            fs: dir.join("fs"),
            external,
        }
    }

    /// Whether `path` (a file or directory in the pod) comes from outside the chart.
    fn is_external(&self, path: &Path) -> bool {
        self.external
            .iter()
            .any(|m| path.starts_with(m) || m.starts_with(path) && !in_pod(&self.fs, path).exists())
    }

    /// `path` in the dump; fails unless the chart renders it or mounts it from outside.
    fn local(&self, scenario: &str, what: &str, path: &Path) -> Option<PathBuf> {
        let local = in_pod(&self.fs, path);
        if local.exists() {
            return Some(local);
        }
        assert!(
            self.is_external(path),
            "{scenario}: {what} {} is neither rendered by the chart nor mounted from an existing ConfigMap or Secret",
            path.display()
        );
        None
    }

    /// The "type:name" stores under `store_root` that come from outside the chart.
    fn external_stores(&self, store_root: &Path) -> Vec<String> {
        self.external
            .iter()
            .filter_map(|m| {
                let rest = m.strip_prefix(store_root.join("x509")).ok()?;
                let mut parts = rest.iter().map(|p| p.to_string_lossy().into_owned());
                Some(format!("{}:{}", parts.next()?, parts.next()?))
            })
            .collect()
    }
}

/// What the rendered configuration points at — each `namespaces:` mapping's trust policy and
/// stores, every cosign key and trusted root — loads in vouch: with everything rendered by the
/// chart, through `EngineSettings::gates`, the start-up validation of `vouch serve` itself (the
/// cluster policy, every mapping, cosign rules, platforms); otherwise piece by piece, skipping
/// only what comes from an existing ConfigMap or Secret.
#[tokio::test(flavor = "multi_thread")]
async fn rendered_trust_material_loads_in_vouch_as_serve_would() {
    let (tmp, scenarios) = dumped_scenarios("material");
    let mut fully_validated = Vec::new();
    let mut mappings_seen = 0;
    let mut cosign_seen = (false, false, false); // keyed, keyless, from an existing ConfigMap
    for dir in &scenarios {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(dir.join("config.yaml")).expect("config.yaml");
        let mut config = Config::from_yaml(&text)
            .unwrap_or_else(|e| panic!("{name}: vouch refuses the rendered config: {e}\n{text}"));
        let pod = PodFiles::read(dir);
        // A store from outside the chart leaves its policy loadable only in part.
        let mut complete = config
            .trust_store
            .as_deref()
            .is_some_and(|s| pod.external_stores(s).is_empty())
            && config
                .namespaces
                .iter()
                .all(|m| pod.external_stores(&m.trust_store).is_empty());
        let mut rebase = |what: &str, path: &mut PathBuf| match pod.local(&name, what, path) {
            Some(local) => *path = local,
            None => complete = false,
        };
        let mut policy = config.trust_policy.clone().expect("trustPolicy");
        let mut store = config.trust_store.clone().expect("trustStore");
        rebase("trustPolicy", &mut policy);
        rebase("trustStore", &mut store);
        for m in config.namespaces.iter_mut() {
            let (pod_policy, pod_store) = (m.trust_policy.clone(), m.trust_store.clone());
            rebase("a namespace mapping's trustPolicy", &mut m.trust_policy);
            rebase("a namespace mapping's trustStore", &mut m.trust_store);
            mappings_seen += 1;
            if m.trust_policy != pod_policy {
                let external = pod.external_stores(&pod_store);
                let root = if m.trust_store == pod_store {
                    tmp.0.join("no-such-store")
                } else {
                    m.trust_store.clone()
                };
                load_policy_and_stores(&m.trust_policy, &root, &external);
            }
        }
        let mut cosign_loadable = Vec::new();
        for rule in config.cosign.iter_mut() {
            let mut rule_complete = true;
            let mut rebase_rule =
                |what: &str, path: &mut PathBuf| match pod.local(&name, what, path) {
                    Some(local) => *path = local,
                    None => rule_complete = false,
                };
            for key in rule.keys.iter_mut() {
                rebase_rule("a cosign key", key);
            }
            if let Some(root) = rule.trusted_root.as_mut() {
                rebase_rule("a cosign trustedRoot", root);
            }
            cosign_seen.0 |= !rule.keys.is_empty() && rule_complete;
            cosign_seen.1 |= !rule.keyless.is_empty() && rule_complete;
            cosign_seen.2 |= !rule_complete;
            if rule_complete {
                cosign_loadable.push(rule.clone());
            } else {
                complete = false;
            }
        }
        vouch::cosign::CosignPolicy::load(&cosign_loadable)
            .unwrap_or_else(|e| panic!("{name}: vouch refuses the rendered cosign rules: {e}"));
        if !complete {
            continue;
        }
        // Everything is rendered by the chart: validate as `vouch serve` does at start-up.
        config.docker_config = None; // a Secret of the user's, not trust material
        let engine = vouch::config::EngineSettings::resolve(
            &config,
            Some(policy),
            Some(store),
            Vec::new(),
            None,
            None,
        )
        .unwrap_or_else(|e| panic!("{name}: vouch refuses the rendered settings: {e}"));
        let registry = engine.registry_client(None).expect("registry client");
        let cache =
            std::sync::Arc::new(vouch::cache::VerdictCache::new(engine.cache.clone(), None));
        let (gates, problems) = engine
            .gates(
                registry,
                std::time::Duration::from_secs(8),
                None,
                cache,
                engine.revocation_checker(None),
                None,
            )
            .unwrap_or_else(|e| panic!("{name}: vouch serve would refuse to start: {e}"));
        assert!(problems.is_empty(), "{name}: {problems:?}");
        assert_eq!(gates.namespaces.len(), config.namespaces.len(), "{name}");
        fully_validated.push(name);
    }
    assert!(
        fully_validated.iter().any(|n| n == "multi-tenant"),
        "the multi-tenant scenario was not validated as serve would: {fully_validated:?}"
    );
    assert!(
        mappings_seen >= 3,
        "namespace mappings rendered: {mappings_seen}"
    );
    assert_eq!(
        cosign_seen,
        (true, true, true),
        "no scenario renders a keyed rule, a keyless rule and one from existing ConfigMaps"
    );
}

#[test]
fn example_policies_load_in_vouch_with_the_example_trust_store() {
    let dir = root().join("policy");
    let mut policies: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("policy/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    policies.sort();
    assert!(policies.len() >= 3, "example policies: {policies:?}");
    for p in &policies {
        load_policy_and_stores(p, &dir.join("truststore"), &[]);
    }
}

/// A fresh install, as rendered: its config.yaml, trust policy and (placeholder) trust store,
/// served by `vouch serve` against a real registry. Every image is judged and none refused: an
/// unsigned image and one signed by a signer nobody trusts yet are both admitted with a
/// would-deny warning, listed at /report, and not pinned.
#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_install_admits_every_image_with_a_warning_and_reports_it() {
    let tmp = TempDir::new("first-install");
    check_py(&["dump", tmp.0.to_str().expect("utf-8 temp path")]);
    let rendered = tmp.0.join("default");
    let config = std::fs::read_to_string(rendered.join("config.yaml")).expect("config.yaml");
    let policy = std::fs::read_to_string(rendered.join("trustpolicy.json")).expect("policy");
    let registry = common::Registry::with_e2e_layouts(&[("e2e-valid-signature", "shop/web")]);
    let unsigned = registry.push_unsigned_image("shop/unsigned", 1);
    let hook = webhook::start_with_store(
        &[],
        &registry.host,
        &policy,
        &config,
        Some(&rendered.join("truststore")),
    )
    .await;
    let images = [
        format!("{}/shop/unsigned@{unsigned}", registry.host),
        format!("{}/shop/web:v1", registry.host),
    ];
    for (i, (image, why)) in images
        .iter()
        .zip(["no Notation signature found", "authenticity"])
        .enumerate()
    {
        let review = webhook::pod_review(&format!("first-{i}"), &[image]);
        let r = hook.review(&review).await;
        assert_eq!(r["allowed"], true, "a fresh install refused {image}: {r}");
        let warning = webhook::first_warning(&r);
        assert!(
            warning.starts_with("vouch (dry run) would deny") && warning.contains(why),
            "{image}: {r}"
        );
        let m = hook.review_at("/mutate", &review).await;
        assert_eq!(m["allowed"], true, "/mutate refused {image}: {m}");
        assert!(
            m.get("patch").is_none(),
            "a fresh install pinned {image}: {m}"
        );
    }
    let report = hook.report().await;
    let reported: Vec<&str> = report["wouldDeny"]
        .as_array()
        .expect("wouldDeny")
        .iter()
        .flat_map(|e| e["images"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    for image in &images {
        assert!(
            reported.contains(&image.as_str()),
            "{image} not in /report: {report}"
        );
    }
}
