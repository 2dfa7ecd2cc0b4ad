//! The `vouch` command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use vouch::gate::{exit_status, Gate, GateOptions};
use vouch::notation::trust_policy::TrustPolicy;
use vouch::notation::trust_store::TrustStores;
use vouch::reference::ImageReference;
use vouch::registry::auth::CredentialSource;
use vouch::registry::{RegistryClient, RegistryOptions};

/// Keeps unproven container images out of Kubernetes clusters: verifies Notary Project
/// (Notation) signatures against a trust policy.
#[derive(Parser)]
#[command(name = "vouch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify images' Notation signatures (the CI gate). Exit 0 all verified, 1 some failed,
    /// 2 configuration error, 3 could not finish.
    Verify(VerifyArgs),
    /// Trust policy tools.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a trust policy and the trust stores it names; exit 2 when invalid.
    Check(PolicyArgs),
}

#[derive(Args, Clone)]
struct PolicyArgs {
    /// Notation trust policy document. Default: notation's own
    /// ($NOTATION_CONFIG or ~/.config/notation)/trustpolicy.oci.json, else trustpolicy.json.
    #[arg(long, value_name = "FILE")]
    trust_policy: Option<PathBuf>,
    /// Directory holding x509/<type>/<name>/ (notation's layout). Default: notation's truststore.
    #[arg(long, value_name = "DIR")]
    trust_store: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Args)]
struct VerifyArgs {
    /// Images to verify, as a Kubernetes `image:` field writes them.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Talk plain HTTP to this registry host[:port] (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    insecure_registries: Vec<String>,
    /// Docker config.json with registry credentials (default: $DOCKER_CONFIG or ~/.docker).
    #[arg(long, value_name = "FILE")]
    docker_config: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "text")]
    output: OutputFormat,
    /// Most signatures evaluated per image.
    #[arg(long, default_value_t = 100)]
    max_signatures: usize,
    /// Seconds allowed for each image.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

fn notation_config_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("NOTATION_CONFIG") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("notation"))
}

/// Load the policy and every store it names, or say why not (exit status 2).
fn load_policy(args: &PolicyArgs) -> Result<(Arc<TrustPolicy>, Arc<TrustStores>), String> {
    let policy_path = match &args.trust_policy {
        Some(p) => p.clone(),
        None => {
            let dir = notation_config_dir()
                .ok_or("no --trust-policy given and no notation configuration directory found")?;
            let oci = dir.join("trustpolicy.oci.json");
            if oci.exists() {
                oci
            } else {
                dir.join("trustpolicy.json")
            }
        }
    };
    let policy = TrustPolicy::load(&policy_path).map_err(|e| e.to_string())?;
    let store_root = match &args.trust_store {
        Some(d) => d.clone(),
        None => notation_config_dir()
            .ok_or("no --trust-store given and no notation configuration directory found")?
            .join("truststore"),
    };
    let stores =
        TrustStores::load(&store_root, policy.trust_store_refs()).map_err(|e| e.to_string())?;
    Ok((Arc::new(policy), Arc::new(stores)))
}

async fn verify(args: VerifyArgs) -> ExitCode {
    for image in &args.images {
        if let Err(e) = ImageReference::parse(image) {
            eprintln!("vouch: {e}");
            return ExitCode::from(2);
        }
    }
    let (policy, stores) = match load_policy(&args.policy) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("vouch: {e}");
            return ExitCode::from(2);
        }
    };
    let registry = match RegistryClient::new(RegistryOptions {
        insecure_registries: args.insecure_registries.clone(),
        credentials: CredentialSource {
            docker_config: args.docker_config.clone(),
            ..Default::default()
        },
        ..Default::default()
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vouch: {e}");
            return ExitCode::from(2);
        }
    };
    let gate = Gate::new(
        registry,
        policy,
        stores,
        GateOptions {
            max_signatures: args.max_signatures,
            deadline: Duration::from_secs(args.timeout.max(1)),
        },
    );
    let verdicts =
        futures::future::join_all(args.images.iter().map(|image| gate.judge(image))).await;
    match args.output {
        OutputFormat::Text => print!("{}", vouch::report::text(&verdicts)),
        OutputFormat::Json => println!("{}", vouch::report::json(&verdicts)),
    }
    ExitCode::from(exit_status(&verdicts))
}

fn policy_check(args: PolicyArgs) -> ExitCode {
    match load_policy(&args) {
        Ok((policy, stores)) => {
            println!(
                "trust policy is valid: {} statement(s), trust stores fingerprint {}",
                policy.statements().len(),
                &stores.fingerprint()[..16]
            );
            for s in policy.statements() {
                let scopes = if s.is_wildcard {
                    "*".to_string()
                } else {
                    s.registry_scopes.join(", ")
                };
                println!("  {:?}: {} for {scopes}", s.name, s.level.label());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vouch: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VOUCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vouch: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match cli.command {
        Command::Verify(args) => runtime.block_on(verify(args)),
        Command::Policy(PolicyCommand::Check(args)) => policy_check(args),
    }
}
