//! The gateway's HTTP connections, bounded: an accept loop with a cap on open connections
//! (past it a connection is closed as soon as it is accepted, and counted), hyper's header-read
//! timeout with a timer (axum's `serve` installs none: a client that trickles its headers, or
//! keeps a connection idle, held its file descriptor forever), TCP_NODELAY, and graceful
//! shutdown. Request deadlines and panics are layers on the router (`deadline`, `catch_panic`).

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use confab_core::{ErrorCode, Shutdown};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus::IntCounter;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::http::ApiError;

/// How a listener bounds its connections.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Open connections at once.
    pub max_connections: usize,
    /// To read a request's headers, and for a kept-alive connection to stay idle.
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` until shutdown, then lets open requests finish (at most
/// `drain`). `refused` counts connections closed at the cap.
pub fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    mut shutdown: Shutdown,
    refused: IntCounter,
    drain: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let graceful = GracefulShutdown::new();
        let builder = connection_builder(limits);
        loop {
            let accepted = tokio::select! {
                _ = shutdown.wait() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // out of file descriptors, most likely: let some close before trying again
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                refused.inc();
                drop(tcp);
                continue;
            };
            // the router as this connection's service, with the peer's address for handlers that ask
            let service = TowerToHyperService::new(app.clone().map_request(move |mut r: hyper::Request<Incoming>| {
                r.extensions_mut().insert(ConnectInfo(peer));
                r
            }));
            let builder = builder.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                // hyper's header timer starts at a request's first byte: a connection that never
                // sends one is closed here
                let mut first = [0u8; 1];
                if !matches!(tokio::time::timeout(limits.header_timeout, tcp.peek(&mut first)).await, Ok(Ok(n)) if n > 0)
                {
                    return;
                }
                let conn = builder.serve_connection_with_upgrades(io(tcp), service);
                let _ = watcher.watch(conn.into_owned()).await;
                drop(slot);
            });
        }
        if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
            tracing::warn!("http connections still open after the drain timeout");
        }
    })
}

fn connection_builder(limits: HttpLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(limits.header_timeout);
    builder
}

/// Frames are small and latency matters: no Nagle delay behind the peer's delayed ACK.
fn io(tcp: TcpStream) -> TokioIo<TcpStream> {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::warn!(error = %e, "cannot set TCP_NODELAY");
    }
    TokioIo::new(tcp)
}

/// Middleware: a request that takes longer than its deadline gets 503 (the connection stays).
pub async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let message = format!("the request took longer than {} s; try again", limit.as_secs_f64());
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, message).into_response()
        }
    }
}

/// A handler that panics answers 500 with the typed error body instead of resetting the
/// connection; the panic is logged.
pub fn catch_panic() -> tower_http::catch_panic::CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> Response> {
    tower_http::catch_panic::CatchPanicLayer::custom(panicked as fn(Box<dyn std::any::Any + Send>) -> Response)
}

fn panicked(panic: Box<dyn std::any::Any + Send>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    tracing::error!(panic = what, "request handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_the_typed_body() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app: Router = Router::new().route("/boom", get(boom)).layer(catch_panic());
        let request = axum::http::Request::get("/boom").body(axum::body::Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal");
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_answers_503() {
        async fn slow() -> &'static str {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        }
        let limit = Duration::from_millis(50);
        let app: Router =
            Router::new().route("/slow", get(slow)).route_layer(axum::middleware::from_fn_with_state(limit, deadline));
        let request = axum::http::Request::get("/slow").body(axum::body::Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
