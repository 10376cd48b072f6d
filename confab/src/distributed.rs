//! The distributed platform: every port on real servers (Kafka, Cassandra, Redis, OpenSearch,
//! a Confluent-compatible registry, S3), connected lazily, one connection per server shared by
//! the components of the process. Also `confab setup`, which creates what they need once.

use anyhow::Context;
use async_trait::async_trait;
use confab_core::avro::{value_subject, EventCodec};
use confab_core::config::Config;
use confab_core::keyring::{Keyring, SealingSink};
use confab_core::ports::{
    BlobStore, EventSource, Fanout, NotifyStore, PortErrorKind, Presence, ReplayFrom, SearchIndex, SequencerLog, Store,
};
use confab_core::sealing::LocalMasterKey;
use confab_core::telemetry::Health;
use confab_core::{Backoff, Shutdown, Topics};
use confab_distributed::cassandra::{self, CassandraKeys, CassandraStore};
use confab_distributed::kafka::{self, KafkaCommandSink, KafkaEventSource, KafkaReplySource, KafkaSequencerLog};
use confab_distributed::{
    CassandraDevices, DistributedNotify, HttpSchemaSource, RedisFanout, RedisNotify, RedisPresence, RedisSendLimits,
    S3Blobs, S3Settings,
};
use confab_gateway::{ExtraRoutes, GatewayPorts};
use futures::FutureExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

use crate::platform::{Platform, SequencerOpener};

pub struct DistributedPlatform {
    cfg: Config,
    shutdown: Shutdown,
    health: Health,
    codec: OnceCell<EventCodec>,
    store: OnceCell<Arc<CassandraStore>>,
    fanout: OnceCell<Arc<RedisFanout>>,
    presence: OnceCell<Arc<RedisPresence>>,
    notify: OnceCell<Arc<DistributedNotify>>,
    keyring: OnceCell<Arc<Keyring>>,
}

impl DistributedPlatform {
    pub fn new(cfg: Config, shutdown: Shutdown, health: Health) -> Self {
        Self {
            cfg,
            shutdown,
            health,
            codec: OnceCell::new(),
            store: OnceCell::new(),
            fanout: OnceCell::new(),
            presence: OnceCell::new(),
            notify: OnceCell::new(),
            keyring: OnceCell::new(),
        }
    }

    /// The event codec, its schema registered; retried while the registry is down. `None` if
    /// shutdown came first.
    async fn codec(&self) -> Option<EventCodec> {
        if let Some(c) = self.codec.get() {
            return Some(c.clone());
        }
        let source = match HttpSchemaSource::new(&self.cfg.registry.url, &self.cfg.registry.write_key) {
            Ok(source) => Arc::new(source),
            Err(e) => {
                tracing::error!(error = %e, "no schema registry client");
                self.health.set("registry", Err(e.to_string()));
                return None;
            }
        };
        let topic = Topics::new(&self.cfg.namespace).events;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            match EventCodec::register_with(source.clone(), &topic).await {
                Ok(c) => {
                    self.health.set("registry", Ok(()));
                    return Some(self.codec.get_or_init(|| async { c }).await.clone());
                }
                Err(e) => {
                    self.health.set("registry", Err(e.to_string()));
                    tracing::warn!(error = %e, "schema registry unavailable, retrying");
                    let mut s = self.shutdown.clone();
                    tokio::select! { _ = s.wait() => return None, _ = tokio::time::sleep(backoff.next_wait()) => {} }
                }
            }
        }
    }

    async fn cassandra(&self) -> anyhow::Result<Arc<CassandraStore>> {
        let store = self.store.get_or_try_init(|| connect_cassandra(&self.cfg)).await?;
        Ok(store.clone())
    }

    /// The Redis client every Redis adapter is made from (TLS and credentials included).
    fn redis(&self) -> anyhow::Result<redis::Client> {
        confab_distributed::redis::client(&self.cfg.redis).context("configuring the Redis client")
    }

    async fn redis_fanout(&self) -> anyhow::Result<Arc<RedisFanout>> {
        let (client, ns, len) = (self.redis()?, &self.cfg.namespace, self.cfg.redis.stream_max_len);
        let f = self
            .fanout
            .get_or_try_init(|| async { anyhow::Ok(Arc::new(RedisFanout::connect(&client, ns, len).await?)) })
            .await
            .context("connecting to Redis (fanout)")?;
        Ok(f.clone())
    }
}

/// A Cassandra session and the prepared statements; a node that was just started may refuse
/// for a moment, so this retries for up to 30 s.
async fn connect_cassandra(cfg: &Config) -> anyhow::Result<Arc<CassandraStore>> {
    let mut attempt = 0;
    let started = std::time::Instant::now();
    loop {
        attempt += 1;
        let connected = async {
            let session = Arc::new(cassandra::connect(&cfg.cassandra).await?);
            CassandraStore::new(session, &cfg.cassandra.keyspace).await
        }
        .await;
        match connected {
            Ok(s) => {
                let elapsed_ms = started.elapsed().as_millis() as u64;
                tracing::info!(elapsed_ms, attempt, "cassandra connected, statements prepared");
                return Ok(Arc::new(s));
            }
            Err(e) if e.kind() != PortErrorKind::Fatal && attempt < 30 => {
                tracing::warn!(error = %e, attempt, "cassandra not ready, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).context("connecting to Cassandra"),
        }
    }
}

/// The search index: an alias over a concrete OpenSearch index.
fn opensearch(cfg: &Config) -> anyhow::Result<confab_search::OpenSearchIndex> {
    let index = cfg.search.index_name(&cfg.namespace);
    let ca = match cfg.search.ca_file.as_str() {
        "" => None,
        path => Some(std::fs::read(path).with_context(|| format!("reading search.ca_file {path}"))?),
    };
    confab_search::OpenSearchIndex::with_ca(&cfg.search.url, &index, ca.as_deref()).context("configuring OpenSearch")
}

/// The S3 bucket for shared files, if configured (`files.access_key`).
fn s3(cfg: &Config) -> anyhow::Result<Option<S3Blobs>> {
    let f = &cfg.files;
    if f.access_key.is_empty() {
        return Ok(None);
    }
    let settings = S3Settings {
        endpoint: f.s3_endpoint.clone(),
        public_endpoint: f.s3_public_endpoint.clone(),
        bucket: f.bucket_name(&cfg.namespace),
        region: f.region.clone(),
        access_key: f.access_key.clone(),
        secret_key: f.secret_key.clone(),
    };
    Ok(Some(S3Blobs::new(settings).context("configuring the S3 bucket")?))
}

#[async_trait]
impl Platform for DistributedPlatform {
    fn mode(&self) -> &'static str {
        "distributed"
    }

    async fn gateway_ports(&self, gateway_id: &str) -> anyhow::Result<GatewayPorts> {
        let cfg = &self.cfg;
        // commands are sealed on their way to the log (transit keys), so a gateway needs the
        // key store and the master key; data teams' `POST /admin/keys/open` uses them too
        let keyring = self.keyring().await?;
        let kafka = Arc::new(KafkaCommandSink::new(cfg).context("creating the Kafka producer")?);
        Ok(GatewayPorts {
            commands: Arc::new(SealingSink::new(kafka, keyring.clone())),
            replies: Box::new(KafkaReplySource::start(cfg, gateway_id).await.context("subscribing to replies")?),
            store: self.store().await?,
            fanout: self.fanout().await?,
            search: self.search().await?,
            presence: self.presence().await?,
            notify: self.notify().await?,
            blobs: self.blobs()?,
            keyring: Some(keyring),
            send_limits: Arc::new(
                RedisSendLimits::connect(
                    &self.redis()?,
                    &cfg.namespace,
                    cfg.gateway.user_send_bucket(),
                    cfg.gateway.workspace_send_bucket(),
                )
                .await
                .context("connecting to Redis (send limits)")?,
            ),
        })
    }

    fn gateway_routes(&self) -> ExtraRoutes {
        ExtraRoutes::default()
    }

    async fn log_sequencer(&self) -> anyhow::Result<Option<SequencerOpener>> {
        let Some(codec) = self.codec().await else { return Ok(None) };
        let cfg = self.cfg.clone();
        Ok(Some(Arc::new(move || {
            let (cfg, codec) = (cfg.clone(), codec.clone());
            async move { Ok(Box::new(KafkaSequencerLog::start(&cfg, codec).await?) as Box<dyn SequencerLog>) }.boxed()
        })))
    }

    fn ingest_on_own_thread(&self) -> bool {
        false
    }

    async fn log_source(&self, name: &str) -> anyhow::Result<Option<Box<dyn EventSource>>> {
        let Some(codec) = self.codec().await else { return Ok(None) };
        Ok(Some(Box::new(KafkaEventSource::start(&self.cfg, name, codec)?)))
    }

    async fn log_replay_source(&self, name: &str, from: ReplayFrom) -> anyhow::Result<Option<Box<dyn EventSource>>> {
        let Some(codec) = self.codec().await else { return Ok(None) };
        let source =
            KafkaEventSource::replay(&self.cfg, name, codec, from).await.context("assigning the events topic")?;
        Ok(Some(Box::new(source)))
    }

    /// Keys in Cassandra (the store's session), wrapped under `keys.master_key`.
    async fn keyring(&self) -> anyhow::Result<Arc<Keyring>> {
        let keyring = self
            .keyring
            .get_or_try_init(|| async {
                let store = self.cassandra().await?;
                let keys = CassandraKeys::new(store.session().clone(), &self.cfg.cassandra.keyspace)
                    .await
                    .context("preparing the key store's statements")?;
                let master = LocalMasterKey::from_secret(&self.cfg.keys.master_key);
                anyhow::Ok(Arc::new(Keyring::new(Arc::new(keys), Arc::new(master))))
            })
            .await?;
        Ok(keyring.clone())
    }

    async fn store(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(self.cassandra().await?)
    }

    async fn fanout(&self) -> anyhow::Result<Arc<dyn Fanout>> {
        Ok(self.redis_fanout().await?)
    }

    async fn search(&self) -> anyhow::Result<Arc<dyn SearchIndex>> {
        Ok(Arc::new(opensearch(&self.cfg)?))
    }

    async fn presence(&self) -> anyhow::Result<Arc<dyn Presence>> {
        let (client, ns) = (self.redis()?, &self.cfg.namespace);
        let p = self
            .presence
            .get_or_try_init(|| async { anyhow::Ok(Arc::new(RedisPresence::connect(&client, ns).await?)) })
            .await
            .context("connecting to Redis (presence)")?;
        Ok(p.clone())
    }

    /// Push registrations in Cassandra (durable), the outbox in Redis.
    async fn notify(&self) -> anyhow::Result<Arc<dyn NotifyStore>> {
        let (client, ns) = (self.redis()?, &self.cfg.namespace);
        let n = self
            .notify
            .get_or_try_init(|| async {
                let session = self.cassandra().await?.session().clone();
                let registrations = CassandraDevices::new(session, &self.cfg.cassandra.keyspace)
                    .await
                    .context("preparing the push registration statements")?;
                let outbox = RedisNotify::connect(&client, ns).await.context("connecting to Redis (push outbox)")?;
                anyhow::Ok(Arc::new(DistributedNotify::new(Arc::new(registrations), outbox)))
            })
            .await?;
        Ok(n.clone())
    }

    fn blobs(&self) -> anyhow::Result<Option<Arc<dyn BlobStore>>> {
        Ok(s3(&self.cfg)?.map(|b| Arc::new(b) as Arc<dyn BlobStore>))
    }
}

/// `confab setup`: topics, Cassandra schema, event schema registration, search index, bucket.
pub async fn setup(cfg: &Config) -> anyhow::Result<()> {
    let topics = kafka::ensure_topics(cfg).await.context("creating Kafka topics")?;
    let session = cassandra::connect(&cfg.cassandra).await.context("connecting to Cassandra")?;
    cassandra::migrate(&session, &cfg.cassandra.keyspace, cfg.cassandra.replication_factor)
        .await
        .context("creating the Cassandra schema")?;
    let source = Arc::new(HttpSchemaSource::new(&cfg.registry.url, &cfg.registry.write_key)?);
    let codec = EventCodec::register_with(source, &topics.events).await.context("registering the event schema")?;
    opensearch(cfg)?.ensure().await.context("creating the search index")?;
    match s3(cfg)? {
        Some(b) => b.ensure_bucket().await.context("creating the files bucket")?,
        None => tracing::warn!("files.access_key is not set: file sharing is off"),
    }
    println!(
        "{}",
        serde_json::json!({
            "topics": [topics.commands, topics.events, topics.replies],
            "keyspace": cfg.cassandra.keyspace,
            "schema_subject": value_subject(&topics.events),
            "schema_id": codec.schema_id(),
            "search_index": cfg.search.index_name(&cfg.namespace),
        })
    );
    Ok(())
}

/// The search index as a concrete OpenSearch index (for a rebuild, which swaps the alias).
pub fn opensearch_index(cfg: &Config) -> anyhow::Result<confab_search::OpenSearchIndex> {
    opensearch(cfg)
}
