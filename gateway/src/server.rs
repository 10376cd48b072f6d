//! Wiring: shared state, background tasks, the HTTP server, the connection cap and the one
//! shutdown path (stop accepting, close sockets with 1001, exit).

use axum::routing::{get, post};
use axum::Router;
use confab_core::auth::TokenSigner;
use confab_core::cassandra::{self, CassandraStore};
use confab_core::command::{Command, Reply};
use confab_core::config::Config;
use confab_core::kafka::{self, Topics};
use confab_core::redis_fanout::RedisFanout;
use confab_core::shutdown::Shutdown;
use confab_core::telemetry::{self, Health};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};
use uuid::Uuid;

use crate::hub::Hub;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cassandra: {0}")]
    Store(#[from] confab_core::cassandra::StoreError),
    #[error("redis: {0}")]
    Redis(#[from] confab_core::redis_fanout::FanoutError),
    #[error("listening on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

pub struct AppState {
    pub cfg: Config,
    pub gateway_id: String,
    pub signer: TokenSigner,
    pub producer: FutureProducer,
    pub topics: Topics,
    pub store: CassandraStore,
    pub fanout: RedisFanout,
    pub hub: Arc<Hub>,
    pub pending: Mutex<HashMap<Uuid, oneshot::Sender<Reply>>>,
    pub conns: Arc<Semaphore>,
    pub next_conn: AtomicU64,
    pub metrics: Metrics,
    pub health: Health,
    pub shutdown: Shutdown,
}

impl AppState {
    /// Writes a command to `<ns>.commands`, keyed by workspace:channel.
    pub async fn produce(&self, cmd: &Command) -> Result<(), rdkafka::error::KafkaError> {
        let payload = serde_json::to_vec(cmd).expect("command serializes");
        let key = cmd.key();
        self.producer
            .send(FutureRecord::to(&self.topics.commands).key(&key).payload(&payload), Timeout::After(Duration::from_secs(10)))
            .await
            .map_err(|(e, _)| e)?;
        self.metrics.commands.inc();
        Ok(())
    }
}

pub struct Gateway {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    pub async fn start(cfg: Config, shutdown: Shutdown, health: Health) -> Result<Self, GatewayError> {
        let topics = Topics::new(&cfg.namespace);
        let producer: FutureProducer = kafka::base_config(&cfg)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create()?;
        let session = Arc::new(cassandra::connect(&cfg.cassandra_nodes()).await?);
        let store = CassandraStore::new(session, &cfg.cassandra.keyspace).await?;
        let fanout = RedisFanout::connect(&cfg.redis.url, &cfg.namespace, cfg.redis.stream_max_len).await?;
        let metrics = Metrics::new();
        let gateway_id = format!("gw-{}", Uuid::new_v4().simple());
        let state = Arc::new(AppState {
            signer: TokenSigner::new(&cfg.auth.token_secret),
            conns: Arc::new(Semaphore::new(cfg.gateway.max_connections)),
            hub: Hub::new(metrics.clone()),
            cfg,
            gateway_id,
            producer,
            topics,
            store,
            fanout,
            pending: Mutex::default(),
            next_conn: AtomicU64::new(1),
            metrics,
            health: health.clone(),
            shutdown: shutdown.clone(),
        });
        crate::replies::start(state.clone()).await?;
        tokio::spawn(crate::fanout_reader::run(state.clone()));
        health.set("kafka", Ok(()));
        health.set("redis", Ok(()));

        let listener = tokio::net::TcpListener::bind(&state.cfg.gateway.listen)
            .await
            .map_err(|source| GatewayError::Bind { addr: state.cfg.gateway.listen.clone(), source })?;
        let addr = listener.local_addr().map_err(|source| GatewayError::Bind { addr: state.cfg.gateway.listen.clone(), source })?;
        let app = router(state.clone()).merge(telemetry::router(health));
        let mut stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move { stop.wait().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "http server failed");
            }
        });
        tracing::info!(%addr, gateway_id = %state.gateway_id, "gateway listening");
        Ok(Self { addr, state, task })
    }

    /// Waits until the server has stopped (after shutdown).
    pub async fn join(self) -> Result<(), GatewayError> {
        self.task.await?;
        Ok(())
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ws", get(crate::ws::upgrade))
        .route("/api/me", get(crate::http::me))
        .route("/api/channels/{channel_id}/messages", get(crate::http::history))
        .route("/admin/workspaces", post(crate::http::create_workspace))
        .route("/admin/workspaces/{ws}/users", post(crate::http::create_user))
        .route("/admin/workspaces/{ws}/users/{user}/tokens", post(crate::http::mint_token))
        .route("/admin/workspaces/{ws}/channels", post(crate::http::create_channel))
        .with_state(state)
}

/// Runs a gateway until shutdown.
pub async fn run(cfg: Config, shutdown: Shutdown, health: Health) -> Result<(), GatewayError> {
    Gateway::start(cfg, shutdown, health).await?.join().await
}
