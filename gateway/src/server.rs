//! A running gateway: its background tasks, two HTTP listeners (the public one for clients, with
//! its `Host` check; the admin one, on a private address, for the admin API, `/metrics` and the
//! detailed `/healthz`), dependency probes, and the one shutdown path (stop accepting, close
//! sockets with 1001, exit).

use axum::Router;
use confab_core::config::Config;
use confab_core::ports::PortError;
use confab_core::telemetry::{self, Health};
use confab_core::Shutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use crate::hosts::AllowedHosts;
use crate::listener::{self, HttpLimits};
use crate::state::{AppState, GatewayPorts};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Port(#[from] PortError),
    #[error("listening on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("task: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("auth.jwks: {0}")]
    Jwks(String),
}

/// How long shutdown waits for sockets to flush and close.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Routes a platform adds to the gateway's own (the embedded schema registry, the VAPID key): on
/// the public listener, and on the admin one; `public_api` documents those of `public` that
/// belong in the OpenAPI document (`/api/openapi.json`).
#[derive(Default)]
pub struct ExtraRoutes {
    pub public: Router,
    pub admin: Router,
    pub public_api: utoipa::openapi::OpenApi,
}

pub struct Gateway {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Where the admin API, `/metrics` and the detailed `/healthz` are.
    pub admin_addr: SocketAddr,
    pub state: Arc<AppState>,
    task: tokio::task::JoinHandle<()>,
    admin_task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Starts serving on `cfg.gateway.listen` and `cfg.gateway.admin_listen`.
    pub async fn start(
        cfg: Config,
        gateway_id: String,
        ports: GatewayPorts,
        extra: ExtraRoutes,
        shutdown: Shutdown,
        health: Health,
    ) -> Result<Self, GatewayError> {
        // a JWKS that cannot be read at start is a configuration error: refuse to start
        let jwks = match cfg.auth.jwks.as_str() {
            "" => None,
            source => Some(crate::jwks::load(source).await.map_err(GatewayError::Jwks)?),
        };
        let (state, presence_rx, replies) = AppState::new(cfg, gateway_id, ports, shutdown.clone(), health.clone());
        if let Some(keys) = jwks {
            tracing::info!(keys = keys.len(), source = %state.cfg.auth.jwks, "jwks loaded");
            state.verifier.jwt().set_keys(keys);
            tokio::spawn(crate::jwks::refresh(state.clone()));
        }
        crate::revocations::load_at_start(&state).await;
        tokio::spawn(crate::revocations::follow(state.clone()));
        tokio::spawn(crate::http::files::sweep_incomplete_uploads(state.clone()));
        tokio::spawn(crate::replies::route(state.clone(), replies));
        tokio::spawn(crate::fanout_reader::run(state.clone()));
        tokio::spawn(probe(state.clone()));
        tokio::spawn(crate::presence::batcher(state.clone(), presence_rx));
        tokio::spawn(crate::presence::sweeper(state.clone()));
        health.set("log", Ok(()));
        health.set("fanout", Ok(()));
        health.set("fanout_reader", Ok(()));

        let gw = &state.cfg.gateway;
        let limits = HttpLimits {
            max_connections: gw.max_http_connections,
            header_timeout: Duration::from_millis(gw.http_header_timeout_ms),
        };
        let refused = state.metrics.http_refused.clone();
        let listener = bind(&gw.listen).await?;
        let addr = listener.local_addr().map_err(|source| bind_error(&gw.listen, source))?;
        let allowed = Arc::new(AllowedHosts::for_listener(&state.cfg, addr));
        let public_document = crate::openapi::public_document(extra.public_api);
        let public = crate::router::public(state.clone())
            .merge(telemetry::public_router(health.clone()))
            .merge(crate::openapi::public_router(&public_document))
            .merge(extra.public)
            .layer(axum::middleware::from_fn_with_state(allowed, crate::hosts::check));
        let task = listener::serve(listener, public, limits, shutdown.clone(), refused.clone(), DRAIN_TIMEOUT);

        let admin_listener = bind(&gw.admin_listen).await?;
        let admin_addr = admin_listener.local_addr().map_err(|source| bind_error(&gw.admin_listen, source))?;
        let admin_allowed = Arc::new(AllowedHosts::for_admin_listener(&state.cfg));
        let admin = crate::router::admin(state.clone())
            .merge(telemetry::router(health))
            .merge(crate::openapi::admin_router(&crate::openapi::admin_document()))
            .merge(extra.admin)
            .layer(axum::middleware::from_fn_with_state(admin_allowed, crate::hosts::check));
        let admin_task = listener::serve(admin_listener, admin, limits, shutdown, refused, DRAIN_TIMEOUT);
        tracing::info!(%addr, %admin_addr, gateway_id = %state.gateway_id, "gateway listening");
        Ok(Self { addr, admin_addr, state, task, admin_task })
    }

    /// Waits until the server has stopped (after shutdown) and every socket has been closed
    /// (each writer flushes its queue and sends close 1001), at most [`DRAIN_TIMEOUT`].
    /// Upgraded sockets are not tracked by the HTTP server, so this wait is ours.
    pub async fn join(self) -> Result<(), GatewayError> {
        self.task.await?;
        self.admin_task.await?;
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        while !self.state.hub.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
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

fn bind_error(addr: &str, source: std::io::Error) -> GatewayError {
    GatewayError::Bind { addr: addr.to_string(), source }
}

async fn bind(addr: &str) -> Result<tokio::net::TcpListener, GatewayError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|source| bind_error(addr, source))
}

/// Every 2 s, checks each dependency and records the result for `/healthz`, so the gateway
/// reports unhealthy while one is down and healthy again by itself when it is back.
async fn probe(st: Arc<AppState>) {
    let mut shutdown = st.shutdown.clone();
    loop {
        let timeout = Duration::from_secs(2);
        let log = tokio::time::timeout(timeout, st.commands.ping()).await;
        st.health.set("log", flatten(log));
        let store = tokio::time::timeout(timeout, st.store.workspace(Uuid::nil())).await.map(|r| r.map(|_| ()));
        st.health.set("store", flatten(store));
        let fanout = tokio::time::timeout(timeout, st.fanout.ping()).await;
        st.health.set("fanout", flatten(fanout));
        tokio::select! { _ = shutdown.wait() => return, _ = tokio::time::sleep(Duration::from_secs(2)) => {} }
    }
}

fn flatten(r: Result<Result<(), PortError>, tokio::time::error::Elapsed>) -> Result<(), String> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 2 s".into()),
    }
}
