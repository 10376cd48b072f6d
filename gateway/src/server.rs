//! Wiring: shared state, background tasks, the HTTP server, the connection cap and the one
//! shutdown path (stop accepting, close sockets with 1001, exit).

use axum::routing::{get, post};
use axum::Router;
use confab_core::auth::TokenSigner;
use confab_core::command::{Command, Reply};
use confab_core::config::Config;
use confab_core::ports::{CommandSink, Fanout, PortError, ReplySource, Store};
use confab_core::shutdown::Shutdown;
use confab_core::telemetry::{self, Health};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, Semaphore};
use uuid::Uuid;

use crate::hub::Hub;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Port(#[from] PortError),
    #[error("listening on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What a gateway needs from the outside world.
pub struct GatewayPorts {
    pub commands: Arc<dyn CommandSink>,
    pub replies: Box<dyn ReplySource>,
    pub store: Arc<dyn Store>,
    pub fanout: Arc<dyn Fanout>,
    pub search: Arc<dyn confab_core::search::SearchIndex>,
    pub presence: Arc<dyn confab_core::presence::Presence>,
    pub notify: Arc<dyn confab_core::notify::NotifyStore>,
    /// Shared files' bytes (none: file sharing is off).
    pub blobs: Option<Arc<confab_core::blobs::BlobStore>>,
}

pub struct AppState {
    pub cfg: Config,
    pub gateway_id: String,
    pub signer: TokenSigner,
    pub commands: Arc<dyn CommandSink>,
    pub store: Arc<dyn Store>,
    pub fanout: Arc<dyn Fanout>,
    pub search: Arc<dyn confab_core::search::SearchIndex>,
    pub presence: Arc<dyn confab_core::presence::Presence>,
    pub notify: Arc<dyn confab_core::notify::NotifyStore>,
    pub blobs: Option<Arc<confab_core::blobs::BlobStore>>,
    /// Presence transitions, to the batcher (`presence::batcher`).
    pub presence_changes: tokio::sync::mpsc::UnboundedSender<(Uuid, Uuid, confab_core::presence::PresenceStatus)>,
    pub hub: Arc<Hub>,
    pub pending: Mutex<HashMap<Uuid, oneshot::Sender<Reply>>>,
    pub conns: Arc<Semaphore>,
    pub next_conn: AtomicU64,
    pub metrics: Metrics,
    pub health: Health,
    pub shutdown: Shutdown,
}

impl AppState {
    /// Writes a command to the commands log, keyed by workspace:channel.
    pub async fn produce(&self, cmd: &Command) -> Result<(), PortError> {
        self.commands.send(cmd).await?;
        self.metrics.commands.inc();
        Ok(())
    }
}

/// How long shutdown waits for sockets to flush and close.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A new gateway id (the key its replies carry).
pub fn new_gateway_id() -> String {
    format!("gw-{}", Uuid::new_v4().simple())
}

pub struct Gateway {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Starts serving on `cfg.gateway.listen`. `extra` routes are merged in (the embedded mode
    /// serves its schema registry this way).
    pub async fn start(
        cfg: Config,
        gateway_id: String,
        ports: GatewayPorts,
        extra: Option<Router>,
        shutdown: Shutdown,
        health: Health,
    ) -> Result<Self, GatewayError> {
        let metrics = Metrics::new();
        let (presence_changes, presence_rx) = tokio::sync::mpsc::unbounded_channel();
        let state = Arc::new(AppState {
            signer: TokenSigner::new(&cfg.auth.token_secret),
            conns: Arc::new(Semaphore::new(cfg.gateway.max_connections)),
            hub: Hub::new(metrics.clone()),
            cfg,
            gateway_id,
            commands: ports.commands,
            store: ports.store,
            fanout: ports.fanout,
            search: ports.search,
            presence: ports.presence,
            notify: ports.notify,
            blobs: ports.blobs,
            presence_changes,
            pending: Mutex::default(),
            next_conn: AtomicU64::new(1),
            metrics,
            health: health.clone(),
            shutdown: shutdown.clone(),
        });
        tokio::spawn(crate::replies::route(state.clone(), ports.replies));
        tokio::spawn(crate::fanout_reader::run(state.clone()));
        tokio::spawn(probe(state.clone()));
        tokio::spawn(crate::presence::batcher(state.clone(), presence_rx));
        tokio::spawn(crate::presence::sweeper(state.clone()));
        health.set("log", Ok(()));
        health.set("fanout", Ok(()));

        let listen = state.cfg.gateway.listen.clone();
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|source| GatewayError::Bind { addr: listen.clone(), source })?;
        let addr = listener.local_addr().map_err(|source| GatewayError::Bind { addr: listen.clone(), source })?;
        // frames are small and latency matters: no Nagle delay behind the peer's delayed ACK
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let mut app = router(state.clone()).merge(telemetry::router(health));
        if let Some(extra) = extra {
            app = app.merge(extra);
        }
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

    /// Waits until the server has stopped (after shutdown) and every socket has been closed
    /// (each writer flushes its queue and sends close 1001), at most [`DRAIN_TIMEOUT`].
    /// Upgraded sockets are not tracked by the HTTP server, so this wait is ours.
    pub async fn join(self) -> Result<(), GatewayError> {
        self.task.await?;
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        while self.state.hub.len() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let left = self.state.hub.len();
        if left > 0 {
            tracing::warn!(sockets = left, "sockets still open after the drain timeout");
        } else {
            tracing::info!("all sockets closed");
        }
        Ok(())
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ws", get(crate::ws::upgrade))
        .route("/api/me", get(crate::api::me))
        .route("/api/channels", get(crate::api::channels))
        .route("/api/channels/{channel_id}", get(crate::api::channel))
        .route("/api/channels/{channel_id}/messages", get(crate::api::history))
        .route("/api/channels/{channel_id}/messages/{message_id}/replies", get(crate::api::replies))
        .route("/api/channels/{channel_id}/pins", get(crate::api::pins))
        .route("/api/search", get(crate::search::search))
        .route("/api/presence", get(crate::presence::lookup))
        .route("/api/devices", get(crate::devices::list).post(crate::devices::register))
        .route("/api/devices/{device_id}", axum::routing::delete(crate::devices::remove))
        .route("/api/notifications", get(crate::devices::prefs).put(crate::devices::set_prefs))
        .route("/admin/workspaces", post(crate::http::create_workspace))
        .route("/admin/workspaces/{ws}/users", post(crate::http::create_user))
        .route("/admin/workspaces/{ws}/users/{user}/tokens", post(crate::http::mint_token))
        .route("/admin/workspaces/{ws}/channels", post(crate::http::create_channel))
        .route("/api/users", get(crate::api::users))
        .route("/api/files", post(crate::files::create))
        .route("/api/files/{file_id}", get(crate::files::get).delete(crate::files::delete))
        .route("/api/files/{file_id}/complete", post(crate::files::complete))
        .route("/blobs/{ws}/{file}", get(crate::files::blob_get).put(crate::files::blob_put))
        .fallback(crate::web::fallback)
        .with_state(state)
}

/// Every 2 s, checks each dependency and records the result for `/healthz`, so the gateway
/// reports unhealthy while one is down and healthy again by itself when it is back.
async fn probe(st: Arc<AppState>) {
    let mut shutdown = st.shutdown.clone();
    loop {
        let timeout = std::time::Duration::from_secs(2);
        let log = tokio::time::timeout(timeout, st.commands.ping()).await;
        st.health.set("log", flatten(log));
        let store = tokio::time::timeout(timeout, st.store.workspace(Uuid::nil())).await.map(|r| r.map(|_| ()));
        st.health.set("store", flatten(store));
        let fanout = tokio::time::timeout(timeout, st.fanout.ping()).await;
        st.health.set("fanout", flatten(fanout));
        tokio::select! { _ = shutdown.wait() => return, _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {} }
    }
}

fn flatten(r: Result<Result<(), PortError>, tokio::time::error::Elapsed>) -> Result<(), String> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 2 s".into()),
    }
}
