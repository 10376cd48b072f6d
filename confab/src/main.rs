//! `confab`: one binary, one subcommand per process.
//!
//! - `serve`: the whole system in one process. With no configuration it runs **embedded** (an
//!   on-disk log and store in `./confab-data`, no servers); given Kafka, Cassandra, Redis and a
//!   registry it runs the same components on them.
//! - Distributed processes, each on its own: `gateway`, `ingest`, `projector <timeline|fanout>`,
//!   `registry`; `setup` creates topics and schema once.
//! - `admin` bootstraps workspaces, users, tokens and channels through a gateway; `config`
//!   prints the effective configuration.

mod admin;
mod bounded_http;
mod distributed;
mod embedded;
mod events;
mod lag;
mod notifier;
mod platform;
mod replay;
mod schemas;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use confab_core::config::{Config, Mode};
use confab_core::telemetry::{self, Health};
use confab_core::Shutdown;
use std::path::PathBuf;
use std::sync::Arc;

use crate::distributed::DistributedPlatform;
use crate::platform::{Component, Shared};

#[derive(Parser)]
#[command(name = "confab", version, about = "Confab: team messaging on an event log")]
struct Cli {
    /// TOML configuration file; `CONFAB_<SECTION>__<KEY>` variables override it.
    #[arg(long, env = "CONFAB_CONFIG", global = true)]
    config: Option<String>,
    /// Development on one machine only: distributed processes accept empty secrets and use
    /// fixed, public ones instead. Never in production.
    #[arg(long, global = true)]
    insecure_dev: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: embedded with no configuration, distributed when servers are configured.
    Serve {
        /// Where clients connect (`gateway.listen`), e.g. `127.0.0.1:8080`.
        #[arg(long)]
        listen: Option<String>,
        /// Where the embedded mode keeps its data (`data_dir`).
        #[arg(long)]
        data_dir: Option<String>,
    },
    /// Create Kafka topics and the Cassandra schema, and register the event schema (idempotent).
    Setup,
    /// Run a gateway (WebSocket + HTTP API).
    Gateway,
    /// Run the ingest sequencer.
    Ingest,
    /// Run one read-side projector.
    Projector { name: ProjectorName },
    /// Run the notifier: pushes to offline recipients' devices (APNs, FCM, Web Push).
    Notifier,
    /// Run the Confluent-compatible schema registry.
    Registry {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: String,
        /// Where registered schemas are kept (a JSON file inside), for a single instance.
        #[arg(long, default_value = "./confab-data/registry")]
        data_dir: PathBuf,
        /// Keep schemas in Kafka (`<namespace>._schemas`, from the configuration's `kafka.*`)
        /// instead, so any number of instances serve the same state.
        #[arg(long)]
        shared: bool,
    },
    /// Rebuild a projection from the events log (progress on stderr, JSON summary on stdout).
    /// Resumes an interrupted replay unless `--from earliest`.
    Replay {
        #[arg(long)]
        projection: ProjectorName,
        /// `earliest` (start over), a timestamp (Unix ms or RFC 3339: the first event at or
        /// after it) or offsets `partition:offset,...`; omitted, a replay resumes where the
        /// last one stopped.
        #[arg(long)]
        from: Option<String>,
        /// Delete the projection's data first (timeline and search).
        #[arg(long)]
        truncate: bool,
        /// Search only: build a fresh index from the whole log while the live one keeps
        /// answering, then swap the alias to it and drop the old one (distributed mode; the
        /// embedded mode, whose `confab serve` is stopped for a replay, truncates instead).
        #[arg(long)]
        rebuild: bool,
        /// Throttle to this many events per second (spares a busy cluster).
        #[arg(long)]
        max_rate: Option<u64>,
    },
    /// Print the events log, one JSON line per event, texts opened with the keyring (a text
    /// whose key a delete, an edit or retention destroyed shows as `"redacted": ["text"]`).
    Events {
        /// Where to start: `earliest` (the default), a timestamp (Unix ms or RFC 3339) or
        /// offsets `partition:offset,...`.
        #[arg(long, default_value = "earliest")]
        from: String,
    },
    /// Consumer lag of ingest and each projector, as JSON.
    Lag,
    /// Event schema tools: compatibility check, registration, catalogue.
    #[command(subcommand)]
    Schemas(schemas::SchemasCommand),
    /// Bootstrap workspaces, users, tokens and channels (prints JSON).
    Admin(admin::AdminArgs),
    /// Exit 0 when `url` answers 2xx within `--timeout-ms`, 1 otherwise: a container health
    /// check that needs no curl in the image (`confab probe http://127.0.0.1:8080/readyz`).
    Probe {
        url: String,
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// Print the effective configuration as TOML; with `--for PROCESS`, first check that it
    /// lets that process start (its mode and secrets), naming what is missing.
    Config {
        #[arg(long = "for", value_enum)]
        process: Option<ProcessKind>,
    },
}

/// The processes `confab config --for` checks a configuration for.
#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum ProcessKind {
    Serve,
    Setup,
    Gateway,
    Ingest,
    Projector,
    Notifier,
    Registry,
}

impl ProcessKind {
    /// The command that starts such a process (its arguments do not change what it needs).
    fn command(self) -> Command {
        match self {
            ProcessKind::Serve => Command::Serve { listen: None, data_dir: None },
            ProcessKind::Setup => Command::Setup,
            ProcessKind::Gateway => Command::Gateway,
            ProcessKind::Ingest => Command::Ingest,
            ProcessKind::Projector => Command::Projector { name: ProjectorName::Timeline },
            ProcessKind::Notifier => Command::Notifier,
            ProcessKind::Registry => {
                Command::Registry { listen: String::new(), data_dir: PathBuf::new(), shared: false }
            }
        }
    }
}

/// `confab config --for PROCESS`: the configuration lets `process` start. Every process but
/// `serve` runs in the distributed mode only.
fn check_config_for(cfg: &mut Config, process: ProcessKind, insecure_dev: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        process == ProcessKind::Serve || cfg.mode == Mode::Distributed,
        "this configuration is for the embedded mode; a separate process needs servers (`kafka.brokers`, ...)"
    );
    if process == ProcessKind::Registry {
        registry_write_access(cfg, insecure_dev)?;
    }
    let needed = needed_secrets(&process.command(), cfg.mode);
    if needed != NeededSecrets::default() {
        distributed_secrets(cfg, insecure_dev, needed)?;
    }
    Ok(())
}

/// The projections a `projector` process or a replay can run.
#[derive(Clone, Copy, ValueEnum)]
pub enum ProjectorName {
    Timeline,
    Fanout,
    Search,
    /// Destroys the data keys that deletes and edits list (crypto-shredding).
    Erasure,
}

impl ProjectorName {
    pub fn component(self) -> Component {
        match self {
            ProjectorName::Timeline => Component::Timeline,
            ProjectorName::Fanout => Component::Fanout,
            ProjectorName::Search => Component::Search,
            ProjectorName::Erasure => Component::Erasure,
        }
    }
}

/// Prints one JSON line on stdout so scripts and tests can find a process's address.
pub fn announce(event: &str, addr: std::net::SocketAddr) {
    println!("{}", serde_json::json!({"event": event, "addr": addr.to_string()}));
}

/// A gateway's line: where clients connect, and where its admin API is.
pub fn announce_gateway(addr: std::net::SocketAddr, admin: std::net::SocketAddr) {
    let line = serde_json::json!({"event": "listening", "addr": addr.to_string(), "admin_addr": admin.to_string()});
    println!("{line}");
}

/// mimalloc instead of glibc's malloc: in `perf`, glibc's malloc and free were about a quarter of
/// `confab serve`'s CPU at 8,000 msg/s (issue 6, scenario 2).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_logging();
    if let Command::Admin(args) = cli.command {
        return admin::run(args).await;
    }
    if let Command::Probe { url, timeout_ms } = &cli.command {
        return probe(url, std::time::Duration::from_millis(*timeout_ms)).await;
    }
    if let Command::Registry { listen, data_dir, shared } = cli.command {
        let cfg = Config::load(cli.config.as_deref(), std::env::vars()).context("loading configuration")?;
        let writes = registry_write_access(&cfg, cli.insecure_dev)?;
        let store = if shared {
            let log = confab_distributed::KafkaSchemaLog::open(&cfg).await.context("opening the schema log")?;
            confab_registry::SchemaStore::shared(Arc::new(log))
        } else {
            confab_registry::SchemaStore::open(Some(data_dir.join("registry.json")))
                .context("opening registry state")?
        };
        return run_registry(&cfg, &listen, store, writes).await;
    }
    let mut cfg = Config::load(cli.config.as_deref(), std::env::vars()).context("loading configuration")?;
    if let Command::Serve { listen, data_dir } = &cli.command {
        cfg.gateway.listen = listen.clone().unwrap_or(cfg.gateway.listen);
        cfg.data_dir = data_dir.clone().unwrap_or(cfg.data_dir);
    }
    let needed = needed_secrets(&cli.command, cfg.mode);
    if needed != NeededSecrets::default() {
        distributed_secrets(&mut cfg, cli.insecure_dev, needed)?;
    }
    let shutdown = Shutdown::on_signals();
    let health = Health::default();
    match cli.command {
        Command::Config { process } => {
            if let Some(process) = process {
                check_config_for(&mut cfg, process, cli.insecure_dev)?;
            }
            print!("{}", toml::to_string(&redacted_secrets(toml::Value::try_from(&cfg)?))?)
        }
        Command::Serve { .. } => match cfg.mode {
            Mode::Distributed => run_distributed(cfg, &Component::ALL, shutdown, health).await?,
            _ => embedded::serve(cfg, shutdown, health).await?,
        },
        Command::Setup => distributed::setup(&cfg).await?,
        Command::Gateway => run_distributed(cfg, &[Component::Gateway], shutdown, health).await?,
        Command::Ingest => run_process(cfg, Component::Ingest, shutdown, health).await?,
        Command::Projector { name } => run_process(cfg, name.component(), shutdown, health).await?,
        Command::Notifier => run_process(cfg, Component::Notifier, shutdown, health).await?,
        Command::Replay { projection, from, truncate, rebuild, max_rate } => {
            let from = match from.as_deref() {
                None => confab_core::ports::ReplayFrom::Resume,
                Some(f) => confab_core::ports::ReplayFrom::parse(f).map_err(|e| anyhow::anyhow!("--from {e}"))?,
            };
            let req = replay::ReplayRequest { projection: projection.component(), from, truncate, rebuild, max_rate };
            replay::run(cfg, req, shutdown).await?;
        }
        Command::Schemas(cmd) => schemas::run(&cfg, cmd).await?,
        Command::Events { from } => {
            let from = confab_core::ports::ReplayFrom::parse(&from).map_err(|e| anyhow::anyhow!("--from {e}"))?;
            events::run(cfg, from, shutdown).await?;
        }
        Command::Lag => lag::run(&cfg).await?,
        Command::Admin(_) | Command::Registry { .. } | Command::Probe { .. } => unreachable!("handled above"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// The configuration as `confab config` prints it: every secret (a key, password or secret by
/// its name, the password in a URL) replaced by how long it is, so the output can be pasted
/// into a ticket.
fn redacted_secrets(value: toml::Value) -> toml::Value {
    fn is_secret_name(name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        ["password", "secret", "_key", "token"].iter().any(|word| name.contains(word)) && !name.ends_with("_id")
    }
    fn without_url_password(text: &str) -> String {
        let Some((scheme, rest)) = text.split_once("://") else { return text.to_string() };
        let Some((userinfo, host)) = rest.split_once('@') else { return text.to_string() };
        match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
            None => text.to_string(),
        }
    }
    match value {
        toml::Value::Table(table) => toml::Value::Table(
            table
                .into_iter()
                .map(|(name, value)| {
                    let value = match value {
                        toml::Value::String(text) if is_secret_name(&name) && !text.is_empty() => {
                            toml::Value::String(format!("<redacted: {} bytes>", text.len()))
                        }
                        toml::Value::String(text) => toml::Value::String(without_url_password(&text)),
                        other => redacted_secrets(other),
                    };
                    (name, value)
                })
                .collect(),
        ),
        toml::Value::Array(items) => toml::Value::Array(items.into_iter().map(redacted_secrets).collect()),
        other => other,
    }
}

/// `confab probe`: a GET of `url` that must answer 2xx within `timeout`.
async fn probe(url: &str, timeout: std::time::Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(timeout).build().context("making the HTTP client")?;
    let response = client.get(url).send().await.with_context(|| format!("probing {url}"))?;
    anyhow::ensure!(response.status().is_success(), "{url} answered {}", response.status());
    Ok(())
}

/// Which secrets a distributed process needs.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct NeededSecrets {
    /// Gateways sign commands with a key derived from it, and ingest checks the signatures.
    token: bool,
    /// Gateways serve the admin API.
    admin: bool,
    /// Whatever writes or reads events or commands: gateways seal commands, ingest opens them
    /// and seals events, projectors and the notifier open events.
    master: bool,
}

fn needed_secrets(command: &Command, mode: Mode) -> NeededSecrets {
    let all = NeededSecrets { token: true, admin: true, master: true };
    match command {
        Command::Serve { .. } if mode == Mode::Distributed => all,
        Command::Gateway => all,
        Command::Ingest => NeededSecrets { token: true, admin: false, master: true },
        Command::Projector { .. } | Command::Notifier => NeededSecrets { master: true, ..NeededSecrets::default() },
        Command::Replay { .. } | Command::Events { .. } if mode == Mode::Distributed => {
            NeededSecrets { master: true, ..NeededSecrets::default() }
        }
        _ => NeededSecrets::default(),
    }
}

/// A distributed process's secrets must be configured: every process of a deployment shares
/// them, so none can generate its own. The public development ones only with `--insecure-dev`.
fn distributed_secrets(cfg: &mut Config, insecure_dev: bool, needed: NeededSecrets) -> anyhow::Result<()> {
    use confab_core::config::{INSECURE_DEV_ADMIN_KEY, INSECURE_DEV_MASTER_KEY, INSECURE_DEV_TOKEN_SECRET};
    let (auth, keys) = (&mut cfg.auth, &mut cfg.keys);
    let mut secrets = Vec::new();
    if needed.token {
        secrets.push(("auth.token_secret", &mut auth.token_secret, INSECURE_DEV_TOKEN_SECRET));
    }
    if needed.admin {
        secrets.push(("auth.admin_key", &mut auth.admin_key, INSECURE_DEV_ADMIN_KEY));
    }
    if needed.master {
        secrets.push(("keys.master_key", &mut keys.master_key, INSECURE_DEV_MASTER_KEY));
    }
    for (name, value, dev) in secrets {
        if insecure_dev {
            if value.is_empty() {
                *value = dev.to_string();
            }
            tracing::warn!(setting = name, "--insecure-dev: public development secrets accepted; never in production");
            continue;
        }
        anyhow::ensure!(
            !value.is_empty(),
            "`{name}` is not set: every process of a deployment needs the same secret of at least {} bytes \
             (CONFAB_{}; `openssl rand -base64 32` makes one), or pass --insecure-dev on a development machine",
            confab_core::secrets::MIN_SECRET_LEN,
            name.to_ascii_uppercase().replace('.', "__")
        );
        anyhow::ensure!(*value != dev, "`{name}` is the public development secret; set a real one");
    }
    Ok(())
}

/// `components` on the distributed platform, in this process.
async fn run_distributed(
    cfg: Config,
    components: &[Component],
    shutdown: Shutdown,
    health: Health,
) -> anyhow::Result<()> {
    // refused credentials stop the start here, rather than leaving the process waiting forever
    confab_distributed::kafka::preflight(&cfg).await.context("checking Kafka")?;
    let platform = Arc::new(DistributedPlatform::new(cfg.clone(), shutdown.clone(), health.clone()));
    platform::run(platform, components, Shared { cfg, shutdown, health }).await
}

/// One component as its own process: it serves `/healthz` and `/metrics` on `telemetry.listen`.
async fn run_process(cfg: Config, component: Component, shutdown: Shutdown, health: Health) -> anyhow::Result<()> {
    let telemetry_routes = telemetry::router(health.clone());
    let addr = bounded_http::bind_and_spawn(&cfg, &cfg.telemetry.listen, telemetry_routes, shutdown.clone()).await?;
    tracing::info!(%addr, "telemetry listening");
    announce("telemetry", addr);
    run_distributed(cfg, &[component], shutdown, health).await
}

/// Who may write to `confab registry`: holders of `registry.write_key`; anyone only with
/// `--insecure-dev`.
fn registry_write_access(cfg: &Config, insecure_dev: bool) -> anyhow::Result<confab_registry::WriteAccess> {
    let key = &cfg.registry.write_key;
    if key.is_empty() && insecure_dev {
        tracing::warn!("--insecure-dev: anyone who reaches the registry may register schemas; never in production");
        return Ok(confab_registry::WriteAccess::Open);
    }
    anyhow::ensure!(
        key.len() >= confab_core::secrets::MIN_SECRET_LEN,
        "`registry.write_key` must be set, at least {} bytes (CONFAB_REGISTRY__WRITE_KEY; `openssl rand -base64 32` \
         makes one): registering schemas and changing compatibility need it; or pass --insecure-dev on a \
         development machine",
        confab_core::secrets::MIN_SECRET_LEN
    );
    Ok(confab_registry::WriteAccess::Key(key.clone()))
}

/// `confab registry`: the registry's API and its telemetry on one bounded listener (connection
/// cap, header and idle timeouts, as the gateway's).
async fn run_registry(
    cfg: &Config,
    listen: &str,
    store: confab_registry::SchemaStore,
    writes: confab_registry::WriteAccess,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    announce("listening", addr);
    tracing::info!(%addr, "schema registry listening");
    let app = confab_registry::router(Arc::new(store), writes).merge(telemetry::router(Health::default()));
    bounded_http::serve(cfg, listener, app, Shutdown::on_signals()).await?;
    Ok(())
}
