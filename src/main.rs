//! The `vouch` command line: parses arguments, merges them over the config file and calls the
//! library. No verification logic lives here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

// mimalloc returns freed memory to the system far better than glibc's malloc under tokio's
// many threads: resident memory with 100,000 cached verdicts drops from ~440 MiB to ~170 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use vouch::admission::Enforcement;
use vouch::config::{Config, EngineSettings};
use vouch::metrics::Metrics;
use vouch::reference::ImageReference;
use vouch::server::{ServeError, ServeSettings};
use vouch::verdict::exit_status;

/// `vouch --version`: the release and the git revision it was built from (`build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    include_str!(concat!(env!("OUT_DIR"), "/git-revision")),
    ")"
);

/// Keeps unproven container images out of Kubernetes clusters: verifies Notary Project
/// (Notation) signatures against a trust policy.
#[derive(Parser)]
#[command(name = "vouch", version = VERSION, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify images' Notation signatures (the CI gate). Exit 0 all verified, 1 some failed,
    /// 2 configuration error, 3 could not finish.
    Verify(VerifyArgs),
    /// Run the validating admission webhook (HTTPS).
    Serve(ServeArgs),
    /// Report what the admission gate would decide for a live cluster (kubeconfig or in-cluster)
    /// or for manifest files (-f). Exit 0 all allowed, 1 something would be denied, 2 input or
    /// configuration error, 3 could not finish.
    Audit(AuditArgs),
    /// See vouch work end to end on this machine: a local registry, signed and unsigned images,
    /// the webhook over TLS, and the answers it gives.
    Demo(vouch::demo::DemoArgs),
    /// Trust policy tools.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Quarantine status: read it, or set it (the promotion step a CI scanner runs).
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Certificates for the webhook.
    #[command(subcommand)]
    Certs(CertsCommand),
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write a CA (ca.crt, ca.key) and a serving certificate (tls.crt, tls.key) for the
    /// webhook's service names, e.g. --dns vouch.vouch.svc.
    Generate {
        /// DNS name or IP address of the webhook (repeatable); the first is the subject CN.
        #[arg(long = "dns", value_name = "NAME", required = true)]
        names: Vec<String>,
        /// Output directory.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Days the serving certificate is valid.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
}

#[derive(Subcommand)]
enum QuarantineCommand {
    /// Show an image's quarantine status from the source configured for its registry.
    Get(QuarantineGetArgs),
    /// Set an image's quarantine state: ACR's metadata API for ACR registries, else a status
    /// artifact attached as an OCI referrer (sign it with --sign-key/--sign-cert).
    Set(QuarantineSetArgs),
}

#[derive(Args)]
struct QuarantineGetArgs {
    /// The image.
    image: String,
    #[command(flatten)]
    engine: EngineArgs,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "text")]
    output: OutputFormat,
}

#[derive(Args)]
struct QuarantineSetArgs {
    /// Passed, Quarantined or Failed.
    state: String,
    /// The image.
    image: String,
    /// Details to record (JSON, or plain text).
    #[arg(long)]
    details: Option<String>,
    /// PKCS#8 PEM private key to sign the status artifact with (Notation COSE).
    #[arg(long, value_name = "FILE", requires = "sign_cert")]
    sign_key: Option<PathBuf>,
    /// PEM certificate chain (leaf first) of the signing key.
    #[arg(long, value_name = "FILE", requires = "sign_key")]
    sign_cert: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a trust policy and the trust stores it names; exit 2 when invalid.
    Check(EngineArgs),
}

/// Settings shared by every command that verifies.
#[derive(Args, Clone)]
struct EngineArgs {
    /// YAML config file holding every setting; flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Notation trust policy document. Default: notation's own
    /// ($NOTATION_CONFIG or ~/.config/notation)/trustpolicy.oci.json, else trustpolicy.json.
    #[arg(long, value_name = "FILE")]
    trust_policy: Option<PathBuf>,
    /// Directory holding x509/<type>/<name>/ (notation's layout). Default: notation's truststore.
    #[arg(long, value_name = "DIR")]
    trust_store: Option<PathBuf>,
    /// Talk plain HTTP to this registry host[:port] (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    insecure_registries: Vec<String>,
    /// Docker config.json with registry credentials (default: $DOCKER_CONFIG or ~/.docker).
    #[arg(long, value_name = "FILE")]
    docker_config: Option<PathBuf>,
    /// Most signatures evaluated per image (default 100).
    #[arg(long)]
    max_signatures: Option<usize>,
}

impl EngineArgs {
    fn resolve(&self) -> Result<(Config, EngineSettings), String> {
        let config = match &self.config {
            Some(p) => Config::load(p).map_err(|e| e.to_string())?,
            None => Config::default(),
        };
        let engine = EngineSettings::resolve(
            &config,
            self.trust_policy.clone(),
            self.trust_store.clone(),
            self.insecure_registries.clone(),
            self.docker_config.clone(),
            self.max_signatures,
        )
        .map_err(|e| e.to_string())?;
        Ok((config, engine))
    }
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
    engine: EngineArgs,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "text")]
    output: OutputFormat,
    /// Seconds allowed for each image.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// CRL cache shared with the notation CLI, in its layout. Default: `revocation.crlCacheDir`
    /// of --config, else notation's ($NOTATION_CACHE/crl, $XDG_CACHE_HOME/notation/crl or
    /// ~/.cache/notation/crl).
    #[arg(long, value_name = "DIR")]
    crl_cache_dir: Option<PathBuf>,
    /// Keep CRLs in memory only (no disk cache).
    #[arg(long, conflicts_with = "crl_cache_dir")]
    no_crl_cache: bool,
}

impl VerifyArgs {
    /// The CRL disk cache this run uses: the flag, the config file's, else notation's own (a CI
    /// machine then shares CRLs with `notation verify`); none with --no-crl-cache.
    fn crl_cache_dir(&self, configured: Option<PathBuf>) -> Option<PathBuf> {
        if self.no_crl_cache {
            return None;
        }
        self.crl_cache_dir
            .clone()
            .or(configured)
            .or_else(vouch::notation::revocation::disk_cache::notation_crl_dir)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum AuditFormat {
    Table,
    Json,
    Junit,
    Html,
}

#[derive(Args)]
struct AuditArgs {
    /// Manifest files or directories (YAML with several documents, JSON, List kinds); `-` reads
    /// standard input. Without -f the live cluster is audited.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Only this namespace (live cluster).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Label selector, e.g. app=web (live cluster).
    #[arg(long, short = 'l')]
    selector: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Do not read pods' image pull secrets.
    #[arg(long)]
    no_pull_secrets: bool,
    #[command(flatten)]
    engine: EngineArgs,
    /// Report format.
    #[arg(long, short, value_enum, default_value = "table")]
    output: AuditFormat,
    /// Write the report here instead of standard output.
    #[arg(long, value_name = "FILE")]
    output_file: Option<PathBuf>,
    /// Seconds allowed for each image.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// Listen address (default 0.0.0.0:8443).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// PEM certificate chain of the serving certificate.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the serving certificate.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Time allowed for one admission request, e.g. 8s (default; keep it below the API
    /// server's timeoutSeconds).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    deadline: Option<Duration>,
    /// `enforce` denies; `dryrun` only records would-be denials.
    #[arg(long, value_enum)]
    enforcement: Option<EnforcementArg>,
    /// Log format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Clone, Copy, ValueEnum)]
enum EnforcementArg {
    Enforce,
    Dryrun,
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOUCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only on a terminal: a log file or CI log gets no escape sequences of ours.
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    match format {
        // JSON escapes control characters itself; fields stay data.
        LogFormat::Json => builder.json().flatten_event(true).init(),
        // The text format writes `%display` fields raw: escape every field.
        LogFormat::Text => builder.fmt_fields(vouch::escape::log_fields()).init(),
    }
}

async fn verify(args: VerifyArgs) -> ExitCode {
    init_logging(LogFormat::Text, "warn");
    for image in &args.images {
        if let Err(e) = ImageReference::parse(image) {
            eprintln!("vouch: {e}");
            return ExitCode::from(2);
        }
    }
    let gate = args.engine.resolve().and_then(|(_, mut engine)| {
        engine.revocation.crl_cache_dir =
            args.crl_cache_dir(engine.revocation.crl_cache_dir.take());
        let registry = engine.registry_client(None).map_err(|e| e.to_string())?;
        engine
            .gate(registry, Duration::from_secs(args.timeout.max(1)), None)
            .map_err(|e| e.to_string())
    });
    let gate = match gate {
        Ok(g) => g,
        Err(e) => {
            eprintln!("vouch: {e}");
            return ExitCode::from(2);
        }
    };
    let verdicts =
        futures::future::join_all(args.images.iter().map(|image| gate.judge(image))).await;
    match args.output {
        OutputFormat::Text => print!("{}", vouch::report::text(&verdicts)),
        OutputFormat::Json => println!("{}", vouch::report::json(&verdicts)),
    }
    ExitCode::from(exit_status(&verdicts))
}

async fn serve(args: ServeArgs) -> ExitCode {
    let resolved = args.engine.resolve();
    let (config, engine) = match resolved {
        Ok(v) => v,
        Err(e) => {
            init_logging(LogFormat::Text, "info");
            eprintln!("vouch: {e}");
            return ExitCode::from(2);
        }
    };
    let log_format = args
        .log_format
        .unwrap_or(match config.serve.log_format.as_deref() {
            Some("json") => LogFormat::Json,
            _ => LogFormat::Text,
        });
    init_logging(log_format, "info");
    let defaults = ServeSettings::default();
    let settings = ServeSettings {
        listen: args
            .listen
            .or(config.serve.listen)
            .unwrap_or(defaults.listen),
        tls_cert: match args.tls_cert.or(config.serve.tls_cert.clone()) {
            Some(p) => p,
            None => {
                eprintln!("vouch: --tls-cert (or serve.tlsCert) is required: the webhook serves HTTPS only");
                return ExitCode::from(2);
            }
        },
        tls_key: match args.tls_key.or(config.serve.tls_key.clone()) {
            Some(p) => p,
            None => {
                eprintln!(
                    "vouch: --tls-key (or serve.tlsKey) is required: the webhook serves HTTPS only"
                );
                return ExitCode::from(2);
            }
        },
        deadline: args
            .deadline
            .or(config.serve.deadline)
            .unwrap_or(defaults.deadline),
        enforcement: match args.enforcement {
            Some(EnforcementArg::Enforce) => Enforcement::Enforce,
            Some(EnforcementArg::Dryrun) => Enforcement::Dryrun,
            None => config.serve.enforcement.unwrap_or_default(),
        },
        max_concurrency: config
            .serve
            .max_concurrency
            .unwrap_or(defaults.max_concurrency),
        max_pending: config.serve.max_pending.unwrap_or(defaults.max_pending),
        max_connections: config
            .serve
            .max_connections
            .unwrap_or(defaults.max_connections),
        read_timeout: config.serve.read_timeout.unwrap_or(defaults.read_timeout),
        idle_timeout: config.serve.idle_timeout.unwrap_or(defaults.idle_timeout),
        reload_interval: config
            .serve
            .reload_interval
            .unwrap_or(defaults.reload_interval),
        mutate: config.serve.mutate,
        pull_credentials: config.serve.pull_credentials.unwrap_or_default(),
    };
    match vouch::server::start(engine, settings, Arc::new(Metrics::new())).await {
        Ok(running) => {
            running.run_until_signal().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vouch: {e}");
            ExitCode::from(match e {
                ServeError::Listen { .. } => 3,
                _ => 2,
            })
        }
    }
}

async fn kube_client(kubeconfig: Option<&PathBuf>) -> Result<kube::Client, String> {
    // The kubeconfig and the files it names are read once, through `files::read`
    // (`audit::kubeconfig`); kube never opens them itself.
    let config = vouch::audit::kubeconfig::config(kubeconfig.map(PathBuf::as_path))
        .await
        .map_err(|e| e.to_string())?;
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

async fn audit(args: AuditArgs) -> ExitCode {
    init_logging(LogFormat::Text, "warn");
    let (config, engine) = match args.engine.resolve() {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("vouch: {e}");
            return ExitCode::from(2);
        }
    };
    // Each workload is read with its own pull credentials; vouch's own stand in for registries
    // they do not name, unless the webhook would not let them (`pod-only`).
    let pull_secrets = if args.no_pull_secrets {
        vouch::audit::cluster::PullSecrets::Ignored
    } else {
        vouch::audit::cluster::PullSecrets::Read {
            own_fallback: config.serve.pull_credentials
                != Some(vouch::tenancy::PullCredentialsMode::PodOnly),
        }
    };
    let mut namespace_labels = std::collections::HashMap::new();
    let (uses, errors) = if args.files.is_empty() {
        let client = match kube_client(args.kubeconfig.as_ref()).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("vouch: {e}");
                return ExitCode::from(2);
            }
        };
        let mut inv = vouch::audit::cluster::inventory(
            &client,
            args.namespace.as_deref(),
            args.selector.as_deref(),
            pull_secrets,
        )
        .await;
        if engine.namespaces.iter().any(|m| m.selector.is_some()) {
            match vouch::audit::cluster::namespace_labels(&client).await {
                Ok(l) => namespace_labels = l,
                Err(e) => inv.errors.push(e),
            }
        }
        (inv.uses, inv.errors)
    } else {
        // Manifest files carry no namespace labels: only `names` pick a mapping.
        vouch::audit::manifests::read_paths(&args.files)
    };
    let cache = Arc::new(vouch::cache::VerdictCache::new(engine.cache.clone(), None));
    let gates = engine
        .registry_client_with(None, Default::default())
        .and_then(|r| {
            engine.gates(
                r,
                Duration::from_secs(args.timeout.max(1)),
                None,
                cache,
                engine.revocation_checker(None),
                None,
            )
        });
    let gates = match gates {
        Ok((g, _)) => g,
        Err(e) => {
            eprintln!("vouch: {e}");
            return ExitCode::from(2);
        }
    };
    use std::io::IsTerminal;
    let progress = std::io::stderr().is_terminal().then(|| {
        let p = indicatif::ProgressBar::new(0);
        p.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} verifying images {pos}/{len} {wide_bar} {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        p
    });
    let report =
        vouch::audit::run_by_namespace(&gates, &namespace_labels, uses, errors, progress.as_ref())
            .await;
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    let text = match args.output {
        AuditFormat::Table => vouch::report::audit::table(&report),
        AuditFormat::Json => vouch::report::audit::json(&report),
        AuditFormat::Junit => vouch::report::audit::junit(&report),
        AuditFormat::Html => vouch::report::audit::html(&report),
    };
    match &args.output_file {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("vouch: {}: {e}", path.display());
                return ExitCode::from(3);
            }
        }
        None => print!("{text}"),
    }
    ExitCode::from(report.exit_status())
}

fn policy_check(args: EngineArgs) -> ExitCode {
    let loaded = args
        .resolve()
        .and_then(|(_, engine)| engine.load_trust().map_err(|e| e.to_string()));
    match loaded {
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

async fn quarantine_get(args: QuarantineGetArgs) -> ExitCode {
    init_logging(LogFormat::Text, "warn");
    let gate = args.engine.resolve().and_then(|(_, engine)| {
        let registry = engine.registry_client(None).map_err(|e| e.to_string())?;
        engine
            .gate(registry, Duration::from_secs(60), None)
            .map_err(|e| e.to_string())
    });
    let gate = match gate {
        Ok(g) => g,
        Err(e) => {
            eprintln!("vouch: {e}");
            return ExitCode::from(2);
        }
    };
    let v = gate.judge(&args.image).await;
    let q = &v.quarantine;
    match args.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"image": v.image, "digest": v.digest, "quarantine": q})
            )
            .unwrap_or_default()
        ),
        OutputFormat::Text => {
            println!(
                "{} ({})",
                v.reference.as_deref().unwrap_or(&v.image),
                q.source
            );
            println!("  state: {}", q.state);
            if let Some(d) = &q.details {
                println!("  details: {d}");
            }
            if let Some(r) = &q.reason {
                println!("  not admitted: {r}");
            }
        }
    }
    match q.state.as_ref() {
        "Passed" | "notApplicable" => ExitCode::SUCCESS,
        "unknown" => ExitCode::from(3),
        _ => ExitCode::from(1),
    }
}

async fn quarantine_set(args: QuarantineSetArgs) -> ExitCode {
    init_logging(LogFormat::Text, "warn");
    let prepared = args.engine.resolve().and_then(|(_, engine)| {
        let registry = engine.registry_client(None).map_err(|e| e.to_string())?;
        let signer = match (&args.sign_key, &args.sign_cert) {
            (Some(k), Some(c)) => {
                let read = |p: &std::path::Path| {
                    vouch::files::read(p, 1024 * 1024).map_err(|e| e.to_string())
                };
                let (key, chain) = (read(k)?, read(c)?);
                let chain = vouch::notation::trust_store::parse_certificate_file(&chain)
                    .map_err(|e| format!("{}: {e}", c.display()))?
                    .iter()
                    .map(|c| c.der().to_vec())
                    .collect();
                let key = vouch::notation::signer::SigningKey::from_pem(&key)
                    .map_err(|e| format!("{}: {e}", k.display()))?;
                Some(vouch::notation::signer::Signer::new(key, chain)?)
            }
            _ => None,
        };
        Ok((engine, registry, signer))
    });
    let (engine, registry, signer) = match prepared {
        Ok(v) => v,
        Err(e) => {
            eprintln!("vouch: {e}");
            return ExitCode::from(2);
        }
    };
    let config = vouch::quarantine::QuarantineConfig::new(engine.quarantine.clone());
    match vouch::quarantine::set_state(
        &registry,
        &config,
        &args.image,
        &args.state,
        args.details.as_deref(),
        signer.as_ref(),
    )
    .await
    {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(vouch::quarantine::SetError::Usage(e)) => {
            eprintln!("vouch: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("vouch: {e}");
            ExitCode::from(3)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let code = match cli.command {
        Command::Verify(args) => runtime.block_on(verify(args)),
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Audit(args) => runtime.block_on(audit(args)),
        Command::Demo(args) => {
            init_logging(LogFormat::Text, "warn");
            runtime.block_on(vouch::demo::run(args))
        }
        Command::Policy(PolicyCommand::Check(args)) => policy_check(args),
        Command::Certs(CertsCommand::Generate { names, out, days }) => {
            match vouch::certs::generate(&names, days, &out) {
                Ok(g) => {
                    println!(
                        "wrote {}, {}, {}, {}\ncaBundle for the ValidatingWebhookConfiguration: base64 -w0 {}",
                        g.ca_cert.display(),
                        g.ca_key.display(),
                        g.tls_cert.display(),
                        g.tls_key.display(),
                        g.ca_cert.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("vouch: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Quarantine(QuarantineCommand::Get(args)) => runtime.block_on(quarantine_get(args)),
        Command::Quarantine(QuarantineCommand::Set(args)) => runtime.block_on(quarantine_set(args)),
    };
    // The answer is in: do not wait for blocking work still running (a name lookup for an
    // OCSP responder that timed out can take the resolver's 5 s), as dropping the runtime would.
    runtime.shutdown_background();
    code
}
