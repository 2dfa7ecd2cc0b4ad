//! `vouch demo`: the whole product working on this machine, with no cluster and no network.
//!
//! It starts an in-memory OCI registry on loopback, makes a signing PKI, pushes sample images —
//! signed by a trusted key, unsigned, signed by an untrusted key, with a tampered signature — and
//! signs them with Notation COSE envelopes; writes a trust policy and trust store; starts the
//! webhook over TLS; sends AdmissionReviews shaped as the API server sends them; and prints what
//! was admitted, what was denied, and why.

pub mod registry;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::{json, Value};

use crate::admission::Enforcement;
use crate::config::EngineSettings;
use crate::metrics::Metrics;
use crate::notation::signer::{Signer, SigningKey};
use crate::registry::{Descriptor, OCI_MANIFEST};
use crate::server::{self, ServeSettings};
use registry::{MemoryRegistry, State};

/// `vouch demo` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Leave the webhook and registry running and print a curl command to try them by hand.
    #[arg(long)]
    pub keep_running: bool,
    /// Directory for the generated policy, trust store, certificates and sample reviews
    /// (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// A demo step failed.
#[derive(Debug, thiserror::Error)]
#[error("demo: {0}")]
pub struct DemoError(String);

fn err(e: impl std::fmt::Display) -> DemoError {
    DemoError(e.to_string())
}

/// Run the demo; exit 0 when every answer was the expected one.
pub async fn run(args: DemoArgs) -> ExitCode {
    match run_inner(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("vouch {e}");
            ExitCode::from(3)
        }
    }
}

struct Sample {
    workload: &'static str,
    kind: &'static str,
    image: String,
    expect_allowed: bool,
}

async fn run_inner(args: DemoArgs) -> Result<bool, DemoError> {
    let temp;
    let dir: PathBuf = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(err)?;
            d.clone()
        }
        None => {
            temp = tempfile_dir()?;
            temp.clone()
        }
    };
    println!("vouch demo — working in {}\n", dir.display());

    // 1. A registry with sample images.
    let reg = MemoryRegistry::start(State {
        referrers_api: true,
        ..Default::default()
    })
    .map_err(err)?;
    let host = reg.host.clone();
    let release = signing_identity("release", true)?;
    let stranger = signing_identity("stranger", false)?;
    let app = push_image(&reg, "demo/app", "1.0", b"app 1.0");
    push_image(&reg, "demo/app", "unsigned", b"app unsigned");
    let tool = push_image(&reg, "demo/tool", "1.0", b"tool 1.0");
    let tampered = push_image(&reg, "demo/app", "tampered", b"app tampered");
    push_image(&reg, "sandbox/experiment", "latest", b"sandbox");
    let sign = |signer: &Signer, d: &Descriptor, corrupt: bool| -> Result<(), DemoError> {
        let mut sig = signer.sign_artifact(d, None).map_err(err)?;
        if corrupt {
            // Flip a byte of the signature value at the end of the envelope.
            if let Some(b) = sig.envelope.last_mut() {
                *b ^= 0x01;
            }
            let fixed = crate::notation::signer::signature_manifest(
                d,
                sig.envelope,
                crate::notation::envelope::MEDIA_TYPE_COSE,
                time::OffsetDateTime::now_utc(),
            );
            sig = fixed;
        }
        reg.with(|s| s.put_signature(&sig));
        Ok(())
    };
    sign(&release.signer, &app, false)?;
    sign(&stranger.signer, &tool, false)?;
    sign(&release.signer, &tampered, true)?;
    println!("registry   http://{host} (in memory): demo/app:1.0 signed by release, demo/app:unsigned, demo/tool:1.0 signed by an untrusted key, demo/app:tampered, sandbox/experiment:latest");

    // 2. Trust policy and trust store, as notation lays them out.
    let store = dir.join("truststore");
    let ca_dir = store.join("x509/ca/release");
    std::fs::create_dir_all(&ca_dir).map_err(err)?;
    std::fs::write(ca_dir.join("release-root.pem"), &release.root_pem).map_err(err)?;
    let policy = dir.join("trustpolicy.json");
    std::fs::write(
        &policy,
        serde_json::to_string_pretty(&json!({
            "version": "1.0",
            "trustPolicies": [
                {
                    "name": "sandbox",
                    "registryScopes": [format!("{host}/sandbox/experiment")],
                    "signatureVerification": {"level": "audit"},
                    "trustStores": ["ca:release"],
                    "trustedIdentities": ["*"]
                },
                {
                    "name": "production",
                    "registryScopes": ["*"],
                    "signatureVerification": {"level": "strict"},
                    "trustStores": ["ca:release"],
                    "trustedIdentities": ["x509.subject: C=US, ST=WA, O=vouch demo"]
                }
            ]
        }))
        .map_err(err)?,
    )
    .map_err(err)?;
    println!(
        "policy     {} (strict for everything, audit for sandbox/experiment)",
        policy.display()
    );
    println!("truststore {}", store.display());

    // 3. The webhook over TLS.
    let tls = crate::certs::generate(
        &["localhost".to_string(), "127.0.0.1".to_string()],
        30,
        &dir.join("tls"),
    )
    .map_err(err)?;
    let engine = EngineSettings {
        trust_policy: policy.clone(),
        trust_store: store.clone(),
        insecure_registries: vec![host.clone()],
        docker_config: None,
        max_signatures: 100,
        cache: Default::default(),
        revocation: Default::default(),
        quarantine: Vec::new(),
        namespaces: Vec::new(),
        platforms: Default::default(),
        cosign: Vec::new(),
        signatures: Default::default(),
    };
    let running = server::start(
        engine,
        ServeSettings {
            listen: "127.0.0.1:0".parse().map_err(err)?,
            tls_cert: tls.tls_cert.clone(),
            tls_key: tls.tls_key.clone(),
            deadline: Duration::from_secs(8),
            enforcement: Enforcement::Enforce,
            ..ServeSettings::default()
        },
        Arc::new(Metrics::new()),
    )
    .await
    .map_err(err)?;
    let url = format!("https://localhost:{}/validate", running.addr.port());
    println!("webhook    {url} (TLS, CA {})\n", tls.ca_cert.display());

    // 4. Admission reviews, as the API server sends them.
    let samples = [
        Sample {
            workload: "Pod/web",
            kind: "Pod",
            image: format!("{host}/demo/app:1.0"),
            expect_allowed: true,
        },
        Sample {
            workload: "Deployment/api",
            kind: "Deployment",
            image: format!("{host}/demo/app:unsigned"),
            expect_allowed: false,
        },
        Sample {
            workload: "Pod/debug-tools",
            kind: "Pod",
            image: format!("{host}/demo/tool:1.0"),
            expect_allowed: false,
        },
        Sample {
            workload: "CronJob/nightly",
            kind: "CronJob",
            image: format!("{host}/demo/app:tampered"),
            expect_allowed: false,
        },
        Sample {
            workload: "Deployment/experiment",
            kind: "Deployment",
            image: format!("{host}/sandbox/experiment:latest"),
            expect_allowed: true,
        },
        Sample {
            workload: "Pod/typo",
            kind: "Pod",
            image: format!("{host}/demo/App:1.0"),
            expect_allowed: false,
        },
    ];
    let ca_pem = crate::files::read(&tls.ca_cert, 1024 * 1024).map_err(err)?;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca_pem).map_err(err)?])
        .build()
        .map_err(err)?;
    let mut rows = Vec::new();
    let mut all_as_expected = true;
    for (i, s) in samples.iter().enumerate() {
        let review = admission_review(&format!("demo-{i}"), s.kind, s.workload, &s.image);
        if i == 0 {
            std::fs::write(
                dir.join("review.json"),
                serde_json::to_vec_pretty(&review).map_err(err)?,
            )
            .map_err(err)?;
        }
        let resp: Value = client
            .post(&url)
            .json(&review)
            .send()
            .await
            .map_err(err)?
            .json()
            .await
            .map_err(err)?;
        let r = &resp["response"];
        let allowed = r["allowed"].as_bool().unwrap_or(false);
        all_as_expected &= allowed == s.expect_allowed;
        let why = if allowed {
            r["warnings"]
                .as_array()
                .and_then(|w| w.first())
                .and_then(Value::as_str)
                .unwrap_or("signature verified")
                .to_string()
        } else {
            r["status"]["message"].as_str().unwrap_or("").to_string()
        };
        let short = |t: &str| t.replace(&format!("{host}/"), "");
        rows.push((s.workload, short(&s.image), allowed, short(&why)));
    }
    print_table(&rows);
    println!(
        "\n{}",
        if all_as_expected {
            "Every answer was the expected one."
        } else {
            "Some answers were not the expected ones."
        }
    );
    if args.keep_running {
        println!("\nThe webhook and registry keep running. Try it by hand:\n");
        println!(
            "  curl --cacert {} -H 'Content-Type: application/json' --data @{} {url}\n",
            tls.ca_cert.display(),
            dir.join("review.json").display()
        );
        println!("  vouch verify {host}/demo/app:1.0 --insecure-registry {host} --trust-policy {} --trust-store {}\n", policy.display(), store.display());
        println!("Press Ctrl-C to stop.");
        running.run_until_signal().await;
    } else {
        running.shutdown(Duration::from_secs(2)).await;
    }
    drop(reg);
    Ok(all_as_expected)
}

fn tempfile_dir() -> Result<PathBuf, DemoError> {
    let base = std::env::temp_dir().join(format!("vouch-demo-{}", std::process::id()));
    std::fs::create_dir_all(&base).map_err(err)?;
    Ok(base)
}

fn print_table(rows: &[(&str, String, bool, String)]) {
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(8).max(8);
    println!("ANSWER  {:<w0$}  IMAGE", "WORKLOAD");
    for (workload, image, allowed, why) in rows {
        let answer = if *allowed { "ALLOW" } else { "DENY" };
        println!("{answer:<6}  {workload:<w0$}  {image}");
        let why = why.replace("vouch denied 1 image: ", "");
        let mut line = String::new();
        for word in why.split(' ') {
            if line.len() + word.len() > 96 {
                println!("        └ {line}");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            println!("        └ {line}");
        }
    }
}

struct SigningIdentity {
    signer: Signer,
    root_pem: String,
}

fn subject(cn: &str, org: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::StateOrProvinceName, "WA");
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, cn);
    dn
}

/// A root CA and a code-signing leaf under it.
fn signing_identity(name: &str, trusted: bool) -> Result<SigningIdentity, DemoError> {
    let org = if trusted {
        "vouch demo"
    } else {
        "somebody else"
    };
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.distinguished_name = subject(&format!("{name} root"), org);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = CertifiedIssuer::self_signed(ca, ca_key).map_err(err)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    leaf.distinguished_name = subject(name, org);
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    let cert = leaf.signed_by(&key, &issuer).map_err(err)?;
    let signer = Signer::new(
        SigningKey::from_pkcs8(&key.serialize_der()).map_err(err)?,
        vec![cert.der().to_vec(), issuer.der().to_vec()],
    )
    .map_err(err)?;
    Ok(SigningIdentity {
        signer,
        root_pem: issuer.pem(),
    })
}

/// Push a one-layer image; returns its manifest descriptor.
fn push_image(reg: &MemoryRegistry, repo: &str, tag: &str, content: &[u8]) -> Descriptor {
    reg.with(|s| {
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config_digest = s.put_blob(config);
        let layer_digest = s.put_blob(content);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": content.len()}],
        });
        let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
        // One store serves every repository, so tags are repository-qualified.
        let digest = s.put_manifest(OCI_MANIFEST, &bytes, None);
        s.tags.insert(format!("{repo}:{tag}"), digest.clone());
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest,
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        }
    })
}

/// An AdmissionReview as kube-apiserver sends it for a CREATE of `kind`.
pub fn admission_review(uid: &str, kind: &str, workload: &str, image: &str) -> Value {
    let name = workload.split('/').nth(1).unwrap_or("demo");
    let container = json!({"name": "main", "image": image});
    let pod_spec = json!({"containers": [container]});
    let (group, version, resource, object) = match kind {
        "Pod" => (
            "",
            "v1",
            "pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": pod_spec}),
        ),
        "CronJob" => (
            "batch",
            "v1",
            "cronjobs",
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "default"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": pod_spec}}}}}),
        ),
        other => (
            "apps",
            "v1",
            "deployments",
            json!({"apiVersion": "apps/v1", "kind": other, "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}}}),
        ),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": name,
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "demo-user", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}
