//! `confab`: one binary, one subcommand per process.
//!
//! Distributed processes: `gateway`, `ingest`, `projector <timeline|fanout>`, `registry`.
//! `serve` runs gateway, ingest and both projectors in one process against the configured
//! servers. `setup` creates topics, the Cassandra schema and registers the event schema once.
//! `admin` bootstraps workspaces, users, tokens and channels through a gateway's admin API and
//! prints JSON.

mod admin;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use confab_core::config::Config;
use confab_core::shutdown::Shutdown;
use confab_core::telemetry::{self, Health};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "confab", version, about = "Confab: team messaging on an event log")]
struct Cli {
    /// TOML configuration file; `CONFAB_<SECTION>__<KEY>` variables override it.
    #[arg(long, env = "CONFAB_CONFIG", global = true)]
    config: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create Kafka topics and the Cassandra schema, and register the event schema (idempotent).
    Setup,
    /// Run a gateway (WebSocket + HTTP API).
    Gateway,
    /// Run the ingest sequencer.
    Ingest,
    /// Run one read-side projector.
    Projector { name: ProjectorName },
    /// Run gateway, ingest and every projector in this process.
    Serve,
    /// Run the Confluent-compatible schema registry.
    Registry {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: String,
        /// Where registered schemas are kept (a JSON file inside).
        #[arg(long, default_value = "./confab-data/registry")]
        data_dir: PathBuf,
    },
    /// Bootstrap workspaces, users, tokens and channels (prints JSON).
    Admin(admin::AdminArgs),
    /// Print the effective configuration as TOML.
    Config,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProjectorName {
    Timeline,
    Fanout,
}

/// Prints one JSON line on stdout so scripts and tests can find a process's address.
fn announce(event: &str, addr: std::net::SocketAddr) {
    println!("{}", serde_json::json!({"event": event, "addr": addr.to_string()}));
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_logging();
    if let Command::Admin(args) = cli.command {
        return admin::run(args).await;
    }
    if let Command::Registry { listen, data_dir } = cli.command {
        return run_registry(&listen, data_dir).await;
    }
    let cfg = Config::load(cli.config.as_deref(), std::env::vars()).context("loading configuration")?;
    if cfg.auth.token_secret == confab_core::config::DEV_SECRET {
        tracing::warn!("auth.token_secret is the development default; set CONFAB_AUTH__TOKEN_SECRET in production");
    }
    let shutdown = Shutdown::on_signals();
    let health = Health::default();
    match cli.command {
        Command::Config => print!("{}", toml::to_string(&cfg)?),
        Command::Setup => setup(&cfg).await?,
        Command::Gateway => {
            let gw = confab_gateway::Gateway::start(cfg, shutdown, health).await.context("starting gateway")?;
            announce("listening", gw.addr);
            gw.join().await?;
        }
        Command::Ingest => {
            announce("telemetry", telemetry::serve(&cfg.telemetry.listen, health.clone(), shutdown.clone()).await?);
            confab_ingest::run(cfg, shutdown, health).await?;
        }
        Command::Projector { name } => {
            announce("telemetry", telemetry::serve(&cfg.telemetry.listen, health.clone(), shutdown.clone()).await?);
            run_projector(cfg, name, shutdown, health).await?;
        }
        Command::Serve => serve(cfg, shutdown, health).await?,
        Command::Admin(_) | Command::Registry { .. } => unreachable!("handled above"),
    }
    tracing::info!("stopped");
    Ok(())
}

async fn setup(cfg: &Config) -> anyhow::Result<()> {
    let topics = confab_core::kafka::ensure_topics(cfg).await.context("creating Kafka topics")?;
    let session = confab_core::cassandra::connect(&cfg.cassandra_nodes()).await.context("connecting to Cassandra")?;
    confab_core::cassandra::migrate(&session, &cfg.cassandra.keyspace, cfg.cassandra.replication_factor).await.context("creating the Cassandra schema")?;
    let codec = confab_core::avro::EventCodec::register(&cfg.registry.url, &topics.events).await.context("registering the event schema")?;
    println!(
        "{}",
        serde_json::json!({
            "topics": [topics.commands, topics.events, topics.replies],
            "keyspace": cfg.cassandra.keyspace,
            "schema_subject": confab_core::avro::value_subject(&topics.events),
            "schema_id": codec.schema_id(),
        })
    );
    Ok(())
}

async fn run_projector(cfg: Config, name: ProjectorName, shutdown: Shutdown, health: Health) -> anyhow::Result<()> {
    match name {
        ProjectorName::Timeline => {
            let session = Arc::new(confab_core::cassandra::connect(&cfg.cassandra_nodes()).await.context("connecting to Cassandra")?);
            let store = confab_core::cassandra::CassandraStore::new(session, &cfg.cassandra.keyspace).await?;
            confab_projectors::runner::run(cfg, confab_projectors::timeline::TimelineProjection::new(store), shutdown, health).await?;
        }
        ProjectorName::Fanout => {
            let redis = confab_core::redis_fanout::RedisFanout::connect(&cfg.redis.url, &cfg.namespace, cfg.redis.stream_max_len).await.context("connecting to Redis")?;
            confab_projectors::runner::run(cfg, confab_projectors::fanout::FanoutProjection::new(redis), shutdown, health).await?;
        }
    }
    Ok(())
}

async fn serve(cfg: Config, shutdown: Shutdown, health: Health) -> anyhow::Result<()> {
    let gw = confab_gateway::Gateway::start(cfg.clone(), shutdown.clone(), health.clone()).await.context("starting gateway")?;
    announce("listening", gw.addr);
    let ingest = tokio::spawn(confab_ingest::run(cfg.clone(), shutdown.clone(), health.clone()));
    let timeline = tokio::spawn(run_projector(cfg.clone(), ProjectorName::Timeline, shutdown.clone(), health.clone()));
    let fanout = tokio::spawn(run_projector(cfg, ProjectorName::Fanout, shutdown, health));
    gw.join().await?;
    ingest.await??;
    timeline.await??;
    fanout.await??;
    Ok(())
}

async fn run_registry(listen: &str, data_dir: PathBuf) -> anyhow::Result<()> {
    let store = confab_registry::SchemaStore::open(Some(data_dir.join("registry.json"))).context("opening registry state")?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    announce("listening", addr);
    tracing::info!(%addr, "schema registry listening");
    let mut shutdown = Shutdown::on_signals();
    axum::serve(listener, confab_registry::router(Arc::new(store)).merge(telemetry::router(Health::default())))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await?;
    Ok(())
}
