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

#[test]
fn rendered_configuration_loads_in_vouch() {
    let tmp = TempDir::new("dump");
    check_py(&["dump", tmp.0.to_str().expect("utf-8 temp path")]);
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(&tmp.0)
        .expect("dump dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    scenarios.sort();
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
