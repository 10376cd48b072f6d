//! The one wiring of every Confab process: a [`Platform`] (the embedded or the distributed
//! adapter set) hands each [`Component`] exactly the ports it needs, and [`run`] starts the
//! components a process runs and waits for them. `confab serve` runs them all on either
//! platform; `confab gateway`, `ingest`, `projector <name>` and `notifier` run one each on the
//! distributed platform. A new component is added here, once.
//!
//! Each component's start function takes its typed ports, so a projection can only be built
//! on the store it projects into: pairing one with the wrong store does not compile.

use anyhow::Context;
use async_trait::async_trait;
use confab_core::config::Config;
use confab_core::keyring::{Keyring, OpeningSource, SealingLog};
use confab_core::ports::{
    BlobStore, EventSource, Fanout, NotifyStore, PortResult, Presence, ReplayFrom, SearchIndex, SequencerLog, Store,
};
use confab_core::telemetry::Health;
use confab_core::Shutdown;
use confab_gateway::{new_gateway_id, ExtraRoutes, Gateway, GatewayPorts};
use confab_projectors::erasure::ErasureProjection;
use confab_projectors::fanout::FanoutProjection;
use confab_projectors::runner;
use confab_projectors::search::SearchProjection;
use confab_projectors::timeline::TimelineProjection;
use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::Arc;

/// Opens ingest's view of the log for one session (ingest reopens it after a failure).
pub type SequencerOpener = Arc<dyn Fn() -> BoxFuture<'static, PortResult<Box<dyn SequencerLog>>> + Send + Sync>;

/// An adapter set: what a component may ask for. Implementations connect lazily and share one
/// connection per server within a process. `Ok(None)` means the process is shutting down
/// before the dependency became available.
#[async_trait]
pub trait Platform: Send + Sync {
    /// `embedded` or `distributed`, for logs.
    fn mode(&self) -> &'static str;
    /// The ports of a gateway with this id (its replies are keyed by it).
    async fn gateway_ports(&self, gateway_id: &str) -> anyhow::Result<GatewayPorts>;
    /// Routes the gateway serves besides its own (the embedded schema registry).
    fn gateway_routes(&self) -> ExtraRoutes;
    /// Ingest's log as the adapter writes it (unsealed: use [`Platform::sequencer`]); `None`
    /// if shutdown came first.
    async fn log_sequencer(&self) -> anyhow::Result<Option<SequencerOpener>>;
    /// Whether ingest's serial loop gets a thread of its own (see [`on_own_thread`]).
    fn ingest_on_own_thread(&self) -> bool;
    /// The events log as projector `name` consumes it (its own position), as the log holds
    /// them (sealed: use [`Platform::event_source`]); `None` if shutdown came first.
    async fn log_source(&self, name: &str) -> anyhow::Result<Option<Box<dyn EventSource>>>;
    /// The events log for a replay of projection `name`, from `from` (sealed, like `log_source`).
    async fn log_replay_source(&self, name: &str, from: ReplayFrom) -> anyhow::Result<Option<Box<dyn EventSource>>>;
    /// The keyring every event is sealed and opened with (one per process).
    async fn keyring(&self) -> anyhow::Result<Arc<Keyring>>;

    /// Ingest's log: every event it commits is sealed first.
    async fn sequencer(&self) -> anyhow::Result<Option<SequencerOpener>> {
        let Some(open) = self.log_sequencer().await? else { return Ok(None) };
        let keyring = self.keyring().await?;
        let sealing: SequencerOpener = Arc::new(move || {
            let (open, keyring) = (open.clone(), keyring.clone());
            async move { Ok(Box::new(SealingLog::new(open().await?, keyring)) as Box<dyn SequencerLog>) }.boxed()
        });
        Ok(Some(sealing))
    }
    /// The events log as projector `name` consumes it, every event opened.
    async fn event_source(&self, name: &str) -> anyhow::Result<Option<Box<dyn EventSource>>> {
        let Some(source) = self.log_source(name).await? else { return Ok(None) };
        Ok(Some(Box::new(OpeningSource::new(source, self.keyring().await?))))
    }
    /// The events log for a replay of projection `name`, from `from`, every event opened.
    async fn replay_source(&self, name: &str, from: ReplayFrom) -> anyhow::Result<Option<Box<dyn EventSource>>> {
        let Some(source) = self.log_replay_source(name, from).await? else { return Ok(None) };
        Ok(Some(Box::new(OpeningSource::new(source, self.keyring().await?))))
    }
    async fn store(&self) -> anyhow::Result<Arc<dyn Store>>;
    async fn fanout(&self) -> anyhow::Result<Arc<dyn Fanout>>;
    async fn search(&self) -> anyhow::Result<Arc<dyn SearchIndex>>;
    async fn presence(&self) -> anyhow::Result<Arc<dyn Presence>>;
    async fn notify(&self) -> anyhow::Result<Arc<dyn NotifyStore>>;
    /// Shared files' bytes; `None` when file sharing is not configured.
    fn blobs(&self) -> anyhow::Result<Option<Arc<dyn BlobStore>>>;
}

/// Everything a Confab process can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Gateway,
    Ingest,
    /// The timeline projector (messages and channels into the store).
    Timeline,
    /// The fanout projector (frames into the per-workspace streams gateways read).
    Fanout,
    /// The search projector (messages into the index).
    Search,
    /// Pushes to offline recipients' devices.
    Notifier,
    /// The erasure projector (destroys the data keys deletes and edits list).
    Erasure,
}

impl Component {
    /// Everything, as `confab serve` runs it.
    pub const ALL: [Component; 7] = [
        Component::Gateway,
        Component::Ingest,
        Component::Timeline,
        Component::Fanout,
        Component::Search,
        Component::Notifier,
        Component::Erasure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Component::Gateway => "gateway",
            Component::Ingest => "ingest",
            Component::Timeline => "timeline",
            Component::Fanout => "fanout",
            Component::Search => "search",
            Component::Notifier => "notifier",
            Component::Erasure => "erasure",
        }
    }
}

/// What every component is started with.
#[derive(Clone)]
pub struct Shared {
    pub cfg: Config,
    pub shutdown: Shutdown,
    pub health: Health,
}

/// Components started and running.
pub struct Running {
    /// Where the gateway listens (clients, admin), if this process runs one.
    pub gateway: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    tasks: tokio::task::JoinSet<(Component, anyhow::Result<()>)>,
}

/// Starts `components` on `platform`, in order; a gateway is listening when this returns.
pub async fn start(platform: Arc<dyn Platform>, components: &[Component], cx: Shared) -> anyhow::Result<Running> {
    let names: Vec<&str> = components.iter().map(|c| c.as_str()).collect();
    tracing::info!(mode = platform.mode(), components = names.join(","), "starting");
    let mut running = Running { gateway: None, tasks: tokio::task::JoinSet::new() };
    for &component in components {
        if component == Component::Gateway {
            let gw = start_gateway(&*platform, cx.clone()).await?;
            running.gateway = Some((gw.addr, gw.admin_addr));
            running.tasks.spawn(async move { (component, gw.join().await.map_err(anyhow::Error::from)) });
            continue;
        }
        let (platform, cx) = (platform.clone(), cx.clone());
        running.tasks.spawn(async move { (component, start_one(component, platform, cx).await) });
    }
    Ok(running)
}

impl Running {
    /// Waits until every component has stopped (after shutdown); the first failure is returned.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(done) = self.tasks.join_next().await {
            let (component, result) = done.context("a component task panicked")?;
            if let Err(e) = result {
                tracing::error!(component = component.as_str(), error = format!("{e:#}"), "component failed");
                first_error.get_or_insert(e.context(format!("{} failed", component.as_str())));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Starts `components` on `platform` and waits for them.
pub async fn run(platform: Arc<dyn Platform>, components: &[Component], cx: Shared) -> anyhow::Result<()> {
    start(platform, components, cx).await?.wait().await
}

async fn start_one(component: Component, platform: Arc<dyn Platform>, cx: Shared) -> anyhow::Result<()> {
    match component {
        Component::Gateway => {
            let gw = start_gateway(&*platform, cx).await?;
            Ok(gw.join().await?)
        }
        Component::Ingest => ingest(&*platform, cx).await,
        Component::Timeline => {
            let Some(source) = platform.event_source("timeline").await? else { return Ok(()) };
            timeline(source, platform.store().await?, platform.blobs()?, cx).await
        }
        Component::Fanout => {
            let Some(source) = platform.event_source("fanout").await? else { return Ok(()) };
            fanout(source, platform.fanout().await?, cx).await
        }
        Component::Search => {
            let Some(source) = platform.event_source("search").await? else { return Ok(()) };
            // the index first: a search server that refuses us stops the start before the
            // store's statements are prepared (dozens of round trips on a busy cluster)
            let index = platform.search().await?;
            index.ensure().await.context("creating the search index")?;
            search(source, index, platform.store().await?, cx).await
        }
        Component::Notifier => {
            let Some(source) = platform.event_source("notifier").await? else { return Ok(()) };
            let (store, presence, notify) =
                (platform.store().await?, platform.presence().await?, platform.notify().await?);
            crate::notifier::run(cx.cfg, source, store, presence, notify, cx.shutdown, cx.health).await
        }
        Component::Erasure => {
            // it needs only the keys events list, so it reads them as the log holds them
            let Some(source) = platform.log_source("erasure").await? else { return Ok(()) };
            let projection = ErasureProjection::new(platform.keyring().await?);
            Ok(runner::run(source, projection, cx.shutdown, cx.health).await?)
        }
    }
}

/// The VAPID public key, as `GET /api/push/vapid` answers it.
#[derive(utoipa::ToSchema)]
struct VapidKey {
    /// The application server key to subscribe with (base64url, an uncompressed P-256 point).
    #[allow(dead_code)] // documents the JSON the handler builds
    public_key: String,
}

/// `GET /api/push/vapid`: the VAPID public key web clients subscribe with, or 404 `not_found`
/// when Web Push is not configured (`notifier.webpush_vapid_key`).
#[utoipa::path(get, path = "/api/push/vapid", tag = "push",
    responses(
        (status = 200, description = "the key", body = VapidKey),
        (status = 404, description = "`not_found`: Web Push is not configured", body = confab_gateway::http::bodies::ErrorBody),
    ))]
async fn vapid_public_key(axum::extract::State(key): axum::extract::State<Option<String>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match key {
        Some(key) => axum::Json(serde_json::json!({"public_key": key})).into_response(),
        None => {
            let error = serde_json::json!({"error": {"code": "not_found", "message": "Web Push is not configured"}});
            (axum::http::StatusCode::NOT_FOUND, axum::Json(error)).into_response()
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(vapid_public_key))]
struct PushApi;

/// The push routes a gateway adds (`GET /api/push/vapid`) and their part of the OpenAPI document.
fn push_routes(cfg: &Config) -> anyhow::Result<(axum::Router, utoipa::openapi::OpenApi)> {
    use utoipa::OpenApi;
    let key = match cfg.notifier.webpush_vapid_key.as_str() {
        "" => None,
        private => Some(
            confab_notifier::keys::vapid_public_key(private)
                .map_err(|e| anyhow::anyhow!("`notifier.webpush_vapid_key`: {e}"))?,
        ),
    };
    let routes = axum::Router::new().route("/api/push/vapid", axum::routing::get(vapid_public_key)).with_state(key);
    Ok((routes, PushApi::openapi()))
}

async fn start_gateway(platform: &dyn Platform, cx: Shared) -> anyhow::Result<Gateway> {
    let gateway_id = new_gateway_id();
    let ports = platform.gateway_ports(&gateway_id).await?;
    let mut routes = platform.gateway_routes();
    let (push, push_api) = push_routes(&cx.cfg)?;
    routes.public = routes.public.merge(push);
    routes.public_api.merge(push_api);
    let gw = Gateway::start(cx.cfg, gateway_id, ports, routes, cx.shutdown, cx.health)
        .await
        .context("starting the gateway")?;
    crate::announce_gateway(gw.addr, gw.admin_addr);
    Ok(gw)
}

/// How often ingest checks that the key store answers, and how long it waits for it.
const KEY_STORE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const KEY_STORE_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

async fn ingest(platform: &dyn Platform, cx: Shared) -> anyhow::Result<()> {
    let Some(open) = platform.sequencer().await? else { return Ok(()) };
    // ingest seals every event under a key it stores first, and gateways seal every command
    // the same way: without the key store nothing is sequenced, even while no command comes
    tokio::spawn(watch_key_store(platform.keyring().await?, cx.health.clone(), cx.shutdown.clone()));
    let task = confab_ingest::run(move || open(), cx.shutdown, cx.health);
    if platform.ingest_on_own_thread() {
        on_own_thread("confab-ingest", task)?.await.context("the ingest thread ended without a result")??;
    } else {
        task.await?;
    }
    Ok(())
}

/// Keeps ingest's `key store` readiness check current until shutdown.
async fn watch_key_store(keyring: Arc<Keyring>, health: Health, mut shutdown: Shutdown) {
    loop {
        let state = match tokio::time::timeout(KEY_STORE_CHECK_TIMEOUT, keyring.check()).await {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(_) => Err(format!("the key store did not answer within {KEY_STORE_CHECK_TIMEOUT:?}")),
        };
        health.set("key store", state);
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(KEY_STORE_CHECK_EVERY) => {}
        }
    }
}

/// The timeline projection; it also removes deleted files' bytes from `blobs` when given.
pub async fn timeline(
    source: Box<dyn EventSource>,
    store: Arc<dyn Store>,
    blobs: Option<Arc<dyn BlobStore>>,
    cx: Shared,
) -> anyhow::Result<()> {
    Ok(runner::run(source, timeline_projection(store, blobs), cx.shutdown, cx.health).await?)
}

pub fn timeline_projection(store: Arc<dyn Store>, blobs: Option<Arc<dyn BlobStore>>) -> TimelineProjection {
    let projection = TimelineProjection::new(store);
    match blobs {
        Some(b) => projection.with_blobs(b),
        None => projection,
    }
}

async fn fanout(source: Box<dyn EventSource>, fanout: Arc<dyn Fanout>, cx: Shared) -> anyhow::Result<()> {
    Ok(runner::run(source, FanoutProjection::new(fanout), cx.shutdown, cx.health).await?)
}

/// The search projection (its index made by the caller). The store gives workspaces' retention.
async fn search(
    source: Box<dyn EventSource>,
    index: Arc<dyn SearchIndex>,
    store: Arc<dyn Store>,
    cx: Shared,
) -> anyhow::Result<()> {
    Ok(runner::run(source, SearchProjection::new(index, store), cx.shutdown, cx.health).await?)
}

/// Runs `task` to completion on a thread with a runtime of its own; the receiver gets its output.
///
/// For ingest: its loop is serial (read commands, decide, commit), so every wake-up that waited
/// behind the gateway's tasks on the two shared workers was time the whole pipeline lost. At
/// 12,000 msg/s it spent 0.26 s of every second reading and 0.69 s committing batches of 36
/// commands on average, whose fsync alone takes about 0.1 ms (`load-tests/RESULTS.md`,
/// 2026-11-28, "what limits embedded throughput").
fn on_own_thread<T: Send + 'static>(
    name: &str,
    task: impl std::future::Future<Output = T> + Send + 'static,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<T>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .with_context(|| format!("building the {name} runtime"))?;
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = done.send(rt.block_on(task));
        })
        .with_context(|| format!("starting the {name} thread"))?;
    Ok(result)
}
