//! Wiring of the distributed adapters (Kafka, Cassandra, Redis, an HTTP schema registry) into
//! each process.

use anyhow::Context;
use confab_core::avro::EventCodec;
use confab_core::cassandra::{self, CassandraStore};
use confab_core::config::Config;
use confab_core::kafka::{KafkaCommandSink, KafkaEventSource, KafkaReplySource, KafkaSequencerLog, Topics};
use confab_core::ports::{EventSource, Fanout, PortError, SequencerLog, Store};
use confab_core::redis_fanout::RedisFanout;
use confab_core::shutdown::Shutdown;
use confab_core::telemetry::Health;
use confab_gateway::{new_gateway_id, Gateway, GatewayPorts};
use std::sync::Arc;
use std::time::Duration;

use crate::ProjectorName;

/// Registers the event schema, retrying while the registry is down. `None` on shutdown.
pub async fn codec(cfg: &Config, shutdown: &Shutdown, health: &Health) -> Option<EventCodec> {
    let topic = Topics::new(&cfg.namespace).events;
    loop {
        match EventCodec::register(&cfg.registry.url, &topic).await {
            Ok(c) => {
                health.set("registry", Ok(()));
                return Some(c);
            }
            Err(e) => {
                health.set("registry", Err(e.to_string()));
                tracing::warn!(error = %e, "schema registry unavailable, retrying");
                let mut s = shutdown.clone();
                tokio::select! { _ = s.wait() => return None, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
            }
        }
    }
}

async fn store(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    // a node that was just started may refuse for a moment: retry for up to 30 s
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = async {
            let session =
                Arc::new(cassandra::connect(&cfg.cassandra_nodes()).await.context("connecting to Cassandra")?);
            anyhow::Ok(
                CassandraStore::new(session, &cfg.cassandra.keyspace)
                    .await
                    .context("preparing Cassandra statements")?,
            )
        }
        .await;
        match r {
            Ok(s) => return Ok(Arc::new(s)),
            Err(e) if attempt < 30 => {
                tracing::warn!(error = format!("{e:#}"), attempt, "cassandra not ready, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn fanout(cfg: &Config) -> anyhow::Result<Arc<dyn Fanout>> {
    Ok(Arc::new(
        RedisFanout::connect(&cfg.redis.url, &cfg.namespace, cfg.redis.stream_max_len)
            .await
            .context("connecting to Redis")?,
    ))
}

fn search(cfg: &Config) -> anyhow::Result<Arc<dyn confab_core::search::SearchIndex>> {
    let index = cfg.search.index_name(&cfg.namespace);
    Ok(Arc::new(confab_search::OpenSearchIndex::new(&cfg.search.url, &index).context("configuring OpenSearch")?))
}

/// The S3 bucket for shared files, if configured (`files.access_key`); file sharing is off
/// otherwise.
pub fn blobs(cfg: &Config) -> anyhow::Result<Option<Arc<confab_core::blobs::BlobStore>>> {
    let f = &cfg.files;
    if f.access_key.is_empty() {
        return Ok(None);
    }
    let settings = confab_core::blobs::S3Settings {
        endpoint: f.s3_endpoint.clone(),
        bucket: f.bucket_name(&cfg.namespace),
        region: f.region.clone(),
        access_key: f.access_key.clone(),
        secret_key: f.secret_key.clone(),
    };
    Ok(Some(Arc::new(confab_core::blobs::BlobStore::s3(settings).context("configuring the S3 bucket")?)))
}

pub async fn start_gateway(cfg: Config, shutdown: Shutdown, health: Health) -> anyhow::Result<Gateway> {
    let gateway_id = new_gateway_id();
    let ports = GatewayPorts {
        commands: Arc::new(KafkaCommandSink::new(&cfg).context("creating the Kafka producer")?),
        replies: Box::new(KafkaReplySource::start(&cfg, &gateway_id).await.context("subscribing to replies")?),
        store: store(&cfg).await?,
        fanout: fanout(&cfg).await?,
        search: search(&cfg)?,
        presence: Arc::new(
            confab_core::redis_presence::RedisPresence::connect(&cfg.redis.url, &cfg.namespace)
                .await
                .context("connecting to Redis (presence)")?,
        ),
        notify: Arc::new(
            confab_core::redis_notify::RedisNotify::connect(&cfg.redis.url, &cfg.namespace)
                .await
                .context("connecting to Redis (notifier)")?,
        ),
        blobs: blobs(&cfg)?,
    };
    Ok(Gateway::start(cfg, gateway_id, ports, None, shutdown, health).await.context("serving")?)
}

pub async fn run_ingest(cfg: Config, shutdown: Shutdown, health: Health) -> anyhow::Result<()> {
    let Some(codec) = codec(&cfg, &shutdown, &health).await else { return Ok(()) };
    let open = || {
        let (cfg, codec) = (cfg.clone(), codec.clone());
        async move { Ok::<Box<dyn SequencerLog>, PortError>(Box::new(KafkaSequencerLog::start(&cfg, codec).await?)) }
    };
    Ok(confab_ingest::run(open, shutdown, health).await?)
}

pub async fn run_projector(cfg: Config, name: ProjectorName, shutdown: Shutdown, health: Health) -> anyhow::Result<()> {
    let Some(codec) = codec(&cfg, &shutdown, &health).await else { return Ok(()) };
    let source: Box<dyn EventSource> = Box::new(KafkaEventSource::start(&cfg, name.as_str(), codec)?);
    crate::projector(name, source, store_or_fanout(&cfg, name).await?, shutdown, health).await
}

pub async fn run_notifier(cfg: Config, shutdown: Shutdown, health: Health) -> anyhow::Result<()> {
    let Some(codec) = codec(&cfg, &shutdown, &health).await else { return Ok(()) };
    let source: Box<dyn EventSource> = Box::new(KafkaEventSource::start(&cfg, "notifier", codec)?);
    let presence = Arc::new(
        confab_core::redis_presence::RedisPresence::connect(&cfg.redis.url, &cfg.namespace)
            .await
            .context("connecting to Redis (presence)")?,
    );
    let notify = Arc::new(
        confab_core::redis_notify::RedisNotify::connect(&cfg.redis.url, &cfg.namespace)
            .await
            .context("connecting to Redis (notifier)")?,
    );
    crate::notifier::run(cfg.clone(), source, store(&cfg).await?, presence, notify, shutdown, health).await
}

pub async fn store_or_fanout(cfg: &Config, name: ProjectorName) -> anyhow::Result<crate::Target> {
    Ok(match name {
        ProjectorName::Timeline => crate::Target::Store(store(cfg).await?, blobs(cfg)?),
        ProjectorName::Fanout => crate::Target::Fanout(fanout(cfg).await?),
        ProjectorName::Search => crate::Target::Search(search(cfg)?, store(cfg).await?),
    })
}

/// Gateway, ingest and every projector in this process, on the distributed adapters.
pub async fn serve(cfg: Config, shutdown: Shutdown, health: Health) -> anyhow::Result<()> {
    let gw = start_gateway(cfg.clone(), shutdown.clone(), health.clone()).await.context("starting gateway")?;
    crate::announce("listening", gw.addr);
    let ingest = tokio::spawn(run_ingest(cfg.clone(), shutdown.clone(), health.clone()));
    let timeline = tokio::spawn(run_projector(cfg.clone(), ProjectorName::Timeline, shutdown.clone(), health.clone()));
    let fanout = tokio::spawn(run_projector(cfg.clone(), ProjectorName::Fanout, shutdown.clone(), health.clone()));
    let search = tokio::spawn(run_projector(cfg.clone(), ProjectorName::Search, shutdown.clone(), health.clone()));
    let notifier = tokio::spawn(run_notifier(cfg, shutdown, health));
    gw.join().await?;
    ingest.await??;
    timeline.await??;
    fanout.await??;
    search.await??;
    notifier.await??;
    Ok(())
}

/// `confab setup`: topics, Cassandra schema, event schema registration.
pub async fn setup(cfg: &Config) -> anyhow::Result<()> {
    let topics = confab_core::kafka::ensure_topics(cfg).await.context("creating Kafka topics")?;
    let session = cassandra::connect(&cfg.cassandra_nodes()).await.context("connecting to Cassandra")?;
    cassandra::migrate(&session, &cfg.cassandra.keyspace, cfg.cassandra.replication_factor)
        .await
        .context("creating the Cassandra schema")?;
    let codec =
        EventCodec::register(&cfg.registry.url, &topics.events).await.context("registering the event schema")?;
    search(cfg)?.ensure().await.context("creating the search index")?;
    match blobs(cfg)? {
        Some(b) => b.ensure_bucket().await.context("creating the files bucket")?,
        None => tracing::warn!("files.access_key is not set: file sharing is off"),
    }
    println!(
        "{}",
        serde_json::json!({
            "topics": [topics.commands, topics.events, topics.replies],
            "keyspace": cfg.cassandra.keyspace,
            "schema_subject": confab_core::avro::value_subject(&topics.events),
            "schema_id": codec.schema_id(),
            "search_index": cfg.search.index_name(&cfg.namespace),
        })
    );
    Ok(())
}
