//! The HTTP listeners of `confab registry` and of each process's telemetry, served with the
//! gateway's bounds: a cap on open connections, header and idle timeouts, a deadline per
//! request, and a panicking handler answering 500. No client can hold their sockets forever.

use axum::middleware::from_fn_with_state;
use axum::Router;
use confab_core::config::Config;
use confab_core::telemetry;
use confab_core::Shutdown;
use confab_gateway::listener::{self, HttpLimits};
use prometheus::{IntCounter, Opts};
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

/// Requests still open this long after shutdown are cut.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections these listeners closed at their cap.
static REFUSED: LazyLock<IntCounter> = LazyLock::new(|| {
    telemetry::register(
        IntCounter::with_opts(Opts::new(
            "confab_internal_http_refused_total",
            "connections to the registry or telemetry listener closed at the connection cap",
        ))
        .expect("metric definition"),
    )
});

/// Serves `app` on `listener` until `shutdown`, then drains.
pub async fn serve(
    cfg: &Config,
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    spawn(cfg, listener, app, shutdown).await?;
    Ok(())
}

/// Binds `listen` and serves `app` there in the background; returns the bound address.
pub async fn bind_and_spawn(
    cfg: &Config,
    listen: &str,
    app: Router,
    shutdown: Shutdown,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    spawn(cfg, listener, app, shutdown);
    Ok(addr)
}

fn spawn(
    cfg: &Config,
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    let gateway = &cfg.gateway;
    let limits = HttpLimits {
        max_connections: gateway.max_http_connections,
        header_timeout: Duration::from_millis(gateway.http_header_timeout_ms),
    };
    let request_timeout = Duration::from_millis(gateway.http_request_timeout_ms);
    let app = app.layer(from_fn_with_state(request_timeout, listener::deadline)).layer(listener::catch_panic());
    listener::serve(listener, app, limits, shutdown, REFUSED.clone(), DRAIN_TIMEOUT)
}
