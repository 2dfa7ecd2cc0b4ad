//! `vouch audit` over manifest files and over a live cluster (a fake API server serving
//! real-shaped lists with pagination), in every report format; the HTML report is opened in
//! headless Chromium.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::fake_registry::{FakeRegistry, State};
use common::kube_api::{pull_secret, Cluster, FakeApi};
use common::{outcome, vectors, vouch, Registry};
use serde_json::{json, Value};

const DIGEST: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
const POLICY: &str = r#"{"version":"1.0","trustPolicies":[
 {"name":"sandbox","registryScopes":["REG/sandbox/unsigned"],"signatureVerification":{"level":"audit"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]},
 {"name":"prod","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["*"]}]}"#;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        Registry::with_e2e_layouts(&[
            ("e2e-valid-signature", "shop/web"),
            ("e2e", "shop/unsigned"),
            ("e2e", "sandbox/unsigned"),
        ])
    })
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(extra_insecure: &[&str]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        common::e2e_trust_store(&dir.path().join("store"));
        std::fs::write(
            dir.path().join("policy.json"),
            POLICY.replace("REG", &registry().host),
        )
        .unwrap();
        let mut insecure = vec![format!("\"{}\"", registry().host)];
        insecure.extend(extra_insecure.iter().map(|h| format!("\"{h}\"")));
        std::fs::write(
            dir.path().join("config.yaml"),
            format!(
                "trustPolicy: {}\ntrustStore: {}\ninsecureRegistries: [{}]\n",
                dir.path().join("policy.json").display(),
                dir.path().join("store").display(),
                insecure.join(", ")
            ),
        )
        .unwrap();
        Env { dir }
    }

    fn audit(&self, args: &[&str]) -> (i32, String, String) {
        let c = self.dir.path().join("config.yaml");
        let mut all = vec!["audit", "--config", c.to_str().unwrap()];
        all.extend_from_slice(args);
        outcome(&vouch(&all))
    }
}

fn manifests(dir: &std::path::Path, broken: bool) -> PathBuf {
    let reg = &registry().host;
    let m = dir.join("manifests");
    std::fs::create_dir_all(m.join("nested")).unwrap();
    let mut yaml = format!(
        "# Source: shop/templates/all.yaml\n# a comment-only document\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\ndata: {{a: b}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  template:\n    spec:\n      initContainers:\n        - name: migrate\n          image: {reg}/shop/web@{DIGEST}\n      containers:\n        - name: web\n          image: {reg}/shop/web:v1\n        - name: sidecar\n          image: {reg}/shop/unsigned:v1\n---\napiVersion: v1\nkind: List\nitems:\n  - apiVersion: batch/v1\n    kind: CronJob\n    metadata: {{name: report, namespace: shop}}\n    spec:\n      schedule: '0 1 * * *'\n      jobTemplate:\n        spec:\n          template:\n            spec:\n              containers: [{{name: report, image: '{reg}/sandbox/unsigned:v1'}}]\n"
    );
    if broken {
        yaml.push_str("---\nkind: Pod\nmetadata: {name: oops\n  spec: [\n");
    }
    std::fs::write(m.join("all.yaml"), yaml).unwrap();
    std::fs::write(
        m.join("nested/pod.json"),
        json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"solo","namespace":"tools"},"spec":{"containers":[{"name":"c","image":format!("{reg}/shop/web:v1")}]}}).to_string(),
    ).unwrap();
    std::fs::write(m.join("README.md"), "not a manifest").unwrap();
    m
}

#[test]
fn manifest_audit_reports_every_workload_container_in_json() {
    let env = Env::new(&[]);
    let m = manifests(env.dir.path(), false);
    let (code, out, err) = env.audit(&["-f", m.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 1, "the unsigned sidecar would be denied: {out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{out}");
    let find = |container: &str| {
        rows.iter()
            .find(|r| r["workload"]["container"] == container)
            .unwrap_or_else(|| panic!("{container} in {out}"))
    };
    assert_eq!(find("sidecar")["admission"], "deny");
    assert_eq!(find("sidecar")["class"], "deny");
    assert_eq!(find("sidecar")["workload"]["kind"], "Deployment");
    assert_eq!(find("sidecar")["workload"]["namespace"], "shop");
    assert!(
        find("sidecar")["image"]
            .as_str()
            .unwrap()
            .ends_with("/shop/unsigned:v1"),
        "image as written"
    );
    assert_eq!(find("web")["verified"], true);
    assert_eq!(find("migrate")["verified"], true);
    assert_eq!(
        find("report")["class"],
        "warn",
        "audit-level failure is allowed with warnings"
    );
    assert_eq!(find("report")["workload"]["kind"], "CronJob");
    assert_eq!(find("c")["workload"]["name"], "solo");
    // Pinned is about what runs: only the init container is written with a digest, whatever
    // the verdicts of the others.
    for r in rows {
        let pinned = r["workload"]["container"] == "migrate";
        assert_eq!(r["pinnedByDigest"], pinned, "{r}");
    }
    assert_eq!(
        find("web")["pinned"],
        format!("{}/shop/web:v1@{DIGEST}", registry().host),
        "verify's pinned reference, for the image verified by tag"
    );
    assert_eq!(
        v["summary"],
        json!({"allow": 3, "warn": 1, "deny": 1, "unpinned": 4})
    );
    assert!(
        find("web")["workload"]["source"]
            .as_str()
            .unwrap()
            .ends_with("all.yaml:11"),
        "{out}"
    );
}

#[test]
fn broken_documents_are_reported_and_the_rest_still_audited() {
    let env = Env::new(&[]);
    let m = manifests(env.dir.path(), true);
    let (code, out, _) = env.audit(&["-f", m.join("all.yaml").to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("Would be DENIED") && out.contains("Allowed with WARNINGS"),
        "{out}"
    );
    assert!(
        out.contains("Could not read") && out.contains("all.yaml:44: not valid YAML"),
        "file and line of the error: {out}"
    );
    assert!(out.contains("4 workload container(s)"), "{out}");
    assert!(
        out.contains("\n3 of 4 workload container(s) run an image not pinned by digest: a tag swap could change what they run\n"),
        "{out}"
    );
    let pinned_column = |container: &str| {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some(container))
            .unwrap_or_else(|| panic!("{container} in {out}"));
        line.split_whitespace()
            .nth(4)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(pinned_column("migrate"), "yes", "{out}");
    for c in ["web", "sidecar", "report"] {
        assert_eq!(pinned_column(c), "no", "{out}");
    }
}

#[test]
fn stdin_and_exit_zero_when_everything_is_allowed() {
    let env = Env::new(&[]);
    let c = env.dir.path().join("config.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["audit", "--config", c.to_str().unwrap(), "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let doc = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers: [{{name: c, image: '{}/shop/web:v1'}}]\n", registry().host);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn junit_has_one_case_per_workload_container() {
    let env = Env::new(&[]);
    let m = manifests(env.dir.path(), true);
    let (_, out, _) = env.audit(&["-f", m.to_str().unwrap(), "-o", "junit"]);
    assert!(out.starts_with("<?xml"), "{out}");
    assert_eq!(
        out.matches("<testcase ").count(),
        6,
        "5 containers + 1 unreadable document: {out}"
    );
    assert!(
        out.contains("failures=\"1\"") && out.contains("errors=\"1\""),
        "{out}"
    );
    assert!(
        out.contains("classname=\"shop.Deployment/web\" name=\"sidecar: "),
        "{out}"
    );
    assert!(
        out.contains("<failure message=\"would be denied\">"),
        "{out}"
    );
    assert_eq!(
        out.matches("<property name=\"pinnedByDigest\" value=\"true\"/>")
            .count(),
        1,
        "the init container written with a digest: {out}"
    );
    assert_eq!(
        out.matches("<property name=\"pinnedByDigest\" value=\"false\"/>")
            .count(),
        4,
        "{out}"
    );
    assert!(
        out.contains("<property name=\"unpinned\" value=\"4\"/>")
            && out.contains(
                "<system-out>4 of 5 workload container(s) run an image not pinned by digest"
            ),
        "{out}"
    );
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn html_report_renders_its_table_and_chart_in_headless_chromium() {
    let env = Env::new(&[]);
    let m = manifests(env.dir.path(), false);
    let html = env.dir.path().join("report.html");
    let (code, _, err) = env.audit(&[
        "-f",
        m.to_str().unwrap(),
        "-o",
        "html",
        "--output-file",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("http://") || !page.contains("<script src"),
        "self-contained"
    );
    assert!(!page.contains("<link "), "no external stylesheets");
    let chromium =
        chromium().expect("chromium is not installed: tests/run.sh installs Debian's chromium");
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        dom.contains("data-ready=\"true\""),
        "the page script ran: {dom}\n{log}"
    );
    assert!(!log.contains("Uncaught"), "no script errors: {log}");
    assert_eq!(dom.matches("<tr class=").count(), 5, "{dom}");
    assert!(
        dom.contains("class=\"bar deny\"")
            && dom.contains("class=\"bar allow\"")
            && dom.contains("class=\"bar warn\""),
        "{dom}"
    );
    assert!(dom.contains("id=\"count-deny\">1<"), "{dom}");
    assert!(dom.contains("id=\"count-unpinned\">4<"), "{dom}");
    assert_eq!(
        dom.matches("<td class=\"pinned\">yes</td>").count(),
        1,
        "{dom}"
    );
    assert_eq!(
        dom.matches("<td class=\"pinned\">no</td>").count(),
        4,
        "{dom}"
    );
}

fn pod(ns: &str, name: &str, image: &str, owner: Option<&str>, pull_secret: Option<&str>) -> Value {
    let mut p = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":name,"namespace":ns,"uid":format!("uid-{name}"),"labels":{"app":name}},
        "spec":{"containers":[{"name":"main","image":image}]}, "status":{"phase":"Running"}});
    if let Some(o) = owner {
        p["metadata"]["ownerReferences"] = json!([{"apiVersion":"apps/v1","kind":"ReplicaSet","name":o,"uid":"rs-uid","controller":true}]);
    }
    if let Some(s) = pull_secret {
        p["spec"]["imagePullSecrets"] = json!([{"name": s}]);
    }
    p
}

#[test]
fn live_cluster_audit_with_pagination_owners_and_pull_secrets() {
    // A private registry that needs the pull secret's credentials.
    let mut st = State {
        referrers_api: true,
        require_basic: Some(("puller".into(), "pw".into())),
        ..Default::default()
    };
    st.load_layout(&vectors().join("notation-e2e/layouts/e2e-valid-signature"))
        .unwrap();
    let private = FakeRegistry::start(st).unwrap();
    let reg = registry().host.clone();
    let mut cluster = Cluster::default();
    let deploy = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop","uid":"d1"},
        "spec":{"template":{"spec":{"containers":[{"name":"web","image":format!("{reg}/shop/web:v1")},{"name":"sidecar","image":format!("{reg}/shop/unsigned:v1")}]}}}});
    cluster.objects.push(("deployments".into(), deploy));
    let rs = json!({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"web-1","namespace":"shop","uid":"rs-uid","ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web","uid":"d1","controller":true}]},
        "spec":{"template":{"spec":{"containers":[{"name":"web","image":format!("{reg}/shop/web:v1")}]}}}});
    cluster.objects.push(("replicasets".into(), rs));
    for i in 0..7 {
        cluster.objects.push((
            "pods".into(),
            pod(
                "shop",
                &format!("web-1-{i}"),
                &format!("{reg}/shop/web:v1"),
                Some("web-1"),
                None,
            ),
        ));
    }
    for i in 0..5 {
        cluster.objects.push((
            "pods".into(),
            pod(
                "tools",
                &format!("debug-{i}"),
                &format!("{reg}/shop/web@{DIGEST}"),
                None,
                None,
            ),
        ));
    }
    cluster.objects.push((
        "pods".into(),
        pod(
            "private",
            "app",
            &format!("{}/secret/app:v1", private.host),
            None,
            Some("regcred"),
        ),
    ));
    cluster.objects.push((
        "secrets".into(),
        pull_secret("private", "regcred", &[(&private.host, "puller", "pw")]),
    ));
    cluster.objects.push(("serviceaccounts".into(), json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default","namespace":"private"}})));
    let api = FakeApi::start(cluster);
    let env = Env::new(&[&private.host]);
    let kubeconfig = api.kubeconfig(env.dir.path());
    let (code, out, err) = env.audit(&["--kubeconfig", kubeconfig.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let rows = v["results"].as_array().unwrap();
    let names: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}/{}/{}",
                r["workload"]["kind"].as_str().unwrap(),
                r["workload"]["name"].as_str().unwrap(),
                r["workload"]["container"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(rows.len(), 8, "deployment (2) + 5 standalone pods + private app; owned pods and replicasets folded: {names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("Pod/web-1-") || n.starts_with("ReplicaSet/")),
        "{names:?}"
    );
    let private_row = rows
        .iter()
        .find(|r| r["workload"]["namespace"] == "private")
        .unwrap();
    assert_eq!(
        private_row["verified"], true,
        "pulled with the pod's pull secret: {private_row}"
    );
    let sidecar = rows
        .iter()
        .find(|r| r["workload"]["container"] == "sidecar")
        .unwrap();
    assert_eq!(sidecar["admission"], "deny");
    for r in rows {
        let pinned = r["workload"]["namespace"] == "tools";
        assert_eq!(
            r["pinnedByDigest"], pinned,
            "the debug pods run by digest: {r}"
        );
    }
    assert_eq!(v["summary"]["unpinned"], 3, "{}", v["summary"]);
    let lists = api
        .requests()
        .iter()
        .filter(|l| l.starts_with("list pods"))
        .count();
    assert!(lists >= 1);
    // Namespace and selector narrow the listing.
    let (code, out, _) = env.audit(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "-n",
        "tools",
        "-l",
        "app=debug-3",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 1, "{out}");
}

#[test]
fn each_workload_is_judged_by_the_policy_its_namespace_selects_and_the_report_names_it() {
    let reg = &registry().host;
    let image = format!("{reg}/shop/web@{DIGEST}");
    let mut cluster = Cluster::default();
    for ns in ["team-a", "team-b", "other"] {
        cluster
            .objects
            .push(("pods".into(), pod(ns, "web", &image, None, None)));
    }
    cluster.objects.push(("namespaces".into(), json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-b","labels":{"tenant":"b"}}})));
    cluster.objects.push(("namespaces".into(), json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"other","labels":{"tenant":"none"}}})));
    let api = FakeApi::start(cluster);
    let env = Env::new(&[]);
    let dir = env.dir.path();
    // Team B trusts only its own release identity, which did not sign the image.
    std::fs::write(dir.join("b.json"), r#"{"version":"1.0","trustPolicies":[{"name":"team-b","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:e2e"],"trustedIdentities":["x509.subject: CN=team-b,O=Example,ST=WA,C=US"]}]}"#).unwrap();
    let store = dir.join("store");
    let mut config = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    config.push_str(&format!(
        "namespaces:\n  - names: [team-a]\n    trustPolicy: {p}\n    trustStore: {s}\n  - name: tenant-b\n    selector: {{matchLabels: {{tenant: b}}}}\n    trustPolicy: {b}\n    trustStore: {s}\n",
        p = dir.join("policy.json").display(),
        s = store.display(),
        b = dir.join("b.json").display()
    ));
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let kubeconfig = api.kubeconfig(dir);
    let (code, out, err) = env.audit(&["--kubeconfig", kubeconfig.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let by_ns = |ns: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["workload"]["namespace"] == ns)
            .unwrap()
            .clone()
    };
    let (a, b, o) = (by_ns("team-a"), by_ns("team-b"), by_ns("other"));
    assert_eq!(
        (&a["admission"], &a["policyMapping"]),
        (&json!("allow"), &json!("namespaces[0]")),
        "{a}"
    );
    assert_eq!(
        (&b["admission"], &b["policyMapping"]),
        (&json!("deny"), &json!("tenant-b")),
        "{b}"
    );
    assert_eq!(
        (&o["admission"], &o["policyMapping"]),
        (&json!("allow"), &json!("cluster")),
        "{o}"
    );
    // The table says which policy judged each row.
    let (_, table, _) = env.audit(&["--kubeconfig", kubeconfig.to_str().unwrap()]);
    assert!(
        table.contains("POLICY") && table.contains("tenant-b"),
        "{table}"
    );
}

/// A registry behind htpasswd (alice) holding the signed image as `team-a/app` and
/// `team-b/app`, and the open registry its storage is pushed through.
fn private_registry() -> &'static (Registry, Registry) {
    static R: OnceLock<(Registry, Registry)> = OnceLock::new();
    R.get_or_init(|| {
        let open = Registry::with_e2e_layouts(&[
            ("e2e-valid-signature", "team-a/app"),
            ("e2e-valid-signature", "team-b/app"),
        ]);
        let private = open.with_htpasswd(&[("alice", "alice-pw")]);
        (open, private)
    })
}

/// Each workload is judged with its own pull credentials, as its kubelet would pull: tenant A's
/// secret never reads tenant B's images (B's rows are errors, not verified, and show nothing A
/// read), B's own secret for the same registry is the one used, and a credential for a
/// repository prefix does not read another repository. `--no-pull-secrets` reads with none.
#[test]
fn each_workload_is_read_with_its_own_pull_credentials() {
    let host = private_registry().1.host.clone();
    let tag_a = format!("{host}/team-a/app:v1");
    let by_digest = format!("{host}/team-a/app@{DIGEST}");
    let tag_b = format!("{host}/team-b/app:v1");
    let mut cluster = Cluster::default();
    let mut add = |plural: &str, v: Value| cluster.objects.push((plural.into(), v));
    // Team A: a valid secret for the whole registry.
    add(
        "secrets",
        pull_secret("team-a", "regcred", &[(&host, "alice", "alice-pw")]),
    );
    add("pods", pod("team-a", "web", &tag_a, None, Some("regcred")));
    add(
        "pods",
        pod("team-a", "pinned", &by_digest, None, Some("regcred")),
    );
    // Team B: no secret, the same images.
    add("pods", pod("team-b", "web", &tag_a, None, None));
    add("pods", pod("team-b", "pinned", &by_digest, None, None));
    // Team D: its own (wrong) secret for the same registry.
    add(
        "secrets",
        pull_secret("team-d", "regcred", &[(&host, "alice", "wrong")]),
    );
    add("pods", pod("team-d", "web", &tag_a, None, Some("regcred")));
    // Team C: a valid credential for the `team-a` repositories only.
    add(
        "secrets",
        pull_secret(
            "team-c",
            "scoped",
            &[(&format!("{host}/team-a"), "alice", "alice-pw")],
        ),
    );
    add(
        "pods",
        pod("team-c", "own-repo", &tag_a, None, Some("scoped")),
    );
    add(
        "pods",
        pod("team-c", "other-repo", &tag_b, None, Some("scoped")),
    );
    let api = FakeApi::start(cluster);
    let env = Env::new(&[&host]);
    let kubeconfig = api.kubeconfig(env.dir.path());
    let (code, out, err) = env.audit(&["--kubeconfig", kubeconfig.to_str().unwrap(), "-o", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let row = |ns: &str, name: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["workload"]["namespace"] == ns && r["workload"]["name"] == name)
            .unwrap_or_else(|| panic!("no row {ns}/{name}: {out}"))
            .clone()
    };
    for (ns, name) in [
        ("team-a", "web"),
        ("team-a", "pinned"),
        ("team-c", "own-repo"),
    ] {
        let r = row(ns, name);
        assert_eq!(
            (&r["verified"], &r["admission"]),
            (&json!(true), &json!("allow")),
            "{ns}/{name} reads with its own secret: {r}"
        );
    }
    for (ns, name) in [
        ("team-b", "web"),
        ("team-b", "pinned"),
        ("team-d", "web"),
        ("team-c", "other-repo"),
    ] {
        let r = row(ns, name);
        assert_eq!(
            (&r["verified"], &r["admission"], &r["outcome"]),
            (&json!(false), &json!("deny"), &json!("error")),
            "{ns}/{name} cannot read the image: {r}"
        );
        assert!(
            r["signatures"].as_array().is_none_or(|s| s.is_empty()),
            "{r}"
        );
    }
    // Nothing another tenant's credentials resolved is shown for a tag B cannot read.
    assert!(
        row("team-b", "web")["digest"].is_null(),
        "{}",
        row("team-b", "web")
    );
    assert_eq!(code, 3, "images that could not be judged: {out}{err}");

    // Without pull secrets nobody reads the private registry, and no Secret is fetched.
    let before = api.count(|l| l.starts_with("get secrets"));
    let (code, out, _) = env.audit(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--no-pull-secrets",
        "-o",
        "json",
    ]);
    assert_eq!(code, 3, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    for r in v["results"].as_array().unwrap() {
        assert_eq!(r["verified"], false, "{r}");
    }
    assert_eq!(api.count(|l| l.starts_with("get secrets")), before);
}
