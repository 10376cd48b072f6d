//! A running gateway: its background tasks, the HTTP server with its connection cap and TCP
//! settings, dependency probes for `/healthz`, and the one shutdown path (stop accepting, close
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

use crate::state::{AppState, GatewayPorts};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Port(#[from] PortError),
    #[error("listening on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// How long shutdown waits for sockets to flush and close.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

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
        let (state, presence_rx, replies) = AppState::new(cfg, gateway_id, ports, shutdown.clone(), health.clone());
        tokio::spawn(crate::replies::route(state.clone(), replies));
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
        let mut app = crate::router::public(state.clone())
            .merge(crate::router::admin(state.clone()))
            .merge(telemetry::router(health));
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
