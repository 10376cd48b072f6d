//! Logging (tracing, lowercase structured events), Prometheus metrics, liveness and readiness.
//! `/livez` is 200 whenever the process answers at all: a server being away never makes it
//! fail, so an orchestrator does not restart every process during a Kafka outage they would
//! ride out by themselves. `/readyz` (and its older name `/healthz`) is 200 only while every
//! dependency check passes, to take the process out of load balancing meanwhile. The public
//! readiness says which checks fail, never why (error texts name servers and addresses); the
//! detailed one and `/metrics` are served on private listeners only.

mod http;
mod process;

pub use http::track_http;
pub use process::ProcessMetrics;

use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Router};
use prometheus::{Encoder, TextEncoder};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Confab's own events from `info`, its dependencies' (fjall's `lsm_tree`, tantivy, the
/// drivers) from `warn`: a first start reads as what Confab did.
pub const DEFAULT_LOG_FILTER: &str = "warn,confab=info";

/// Sets up `tracing` from `CONFAB_LOG` (an env-filter, default [`DEFAULT_LOG_FILTER`]);
/// `CONFAB_LOG_FORMAT=json` switches to JSON lines.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONFAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let json = std::env::var("CONFAB_LOG_FORMAT").map(|v| v == "json").unwrap_or(false);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// Named dependency checks; `/healthz` is 200 only when all pass.
#[derive(Clone, Default)]
pub struct Health {
    checks: Arc<Mutex<BTreeMap<&'static str, Result<(), String>>>>,
}

impl Health {
    pub fn set(&self, name: &'static str, state: Result<(), String>) {
        self.checks.lock().expect("health lock").insert(name, state);
    }

    /// Whether every check passes, and the report: each check `ok` or, `detailed`, its error
    /// (otherwise just `failing`).
    pub fn report(&self, detailed: bool) -> (bool, serde_json::Value) {
        let checks = self.checks.lock().expect("health lock");
        let ok = checks.values().all(|c| c.is_ok());
        let state = |v: &Result<(), String>| match v {
            Ok(()) => serde_json::json!("ok"),
            Err(e) if detailed => serde_json::json!(e),
            Err(_) => serde_json::json!("failing"),
        };
        let checks: serde_json::Map<String, serde_json::Value> =
            checks.iter().map(|(k, v)| (k.to_string(), state(v))).collect();
        (ok, serde_json::json!({"status": if ok {"ok"} else {"unhealthy"}, "checks": checks}))
    }
}

fn health_response(health: &Health, detailed: bool) -> impl IntoResponse {
    let (ok, body) = health.report(detailed);
    (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, axum::Json(body))
}

/// A health report, as `/readyz` and `/healthz` answer it (OpenAPI schema).
#[derive(utoipa::ToSchema)]
pub struct HealthReport {
    /// `ok`, or `unhealthy` when a check fails (the answer is then 503).
    pub status: String,
    /// Each dependency check: `ok`, or `failing` (the detailed report on a private listener
    /// says why).
    pub checks: BTreeMap<String, String>,
}

/// `GET /readyz` on a public listener: whether the process can serve (an orchestrator stops
/// sending it traffic meanwhile); no details.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "ready", body = HealthReport),
        (status = 503, description = "a dependency check fails", body = HealthReport),
    ))]
pub async fn public_readyz(State(health): State<Health>) -> impl IntoResponse {
    health_response(&health, false)
}

/// `GET /healthz` on a public listener: the same as `/readyz`.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses(
        (status = 200, description = "ready", body = HealthReport),
        (status = 503, description = "a dependency check fails", body = HealthReport),
    ))]
pub async fn public_healthz(State(health): State<Health>) -> impl IntoResponse {
    health_response(&health, false)
}

async fn detailed_healthz(State(health): State<Health>) -> impl IntoResponse {
    health_response(&health, true)
}

/// Liveness: the process answers. Never depends on a server being reachable, so an outage
/// does not make an orchestrator restart every process.
#[utoipa::path(get, path = "/livez", tag = "health",
    responses((status = 200, description = "alive: `{\"status\": \"alive\"}`", body = Object)))]
pub async fn livez() -> impl IntoResponse {
    (StatusCode::OK, axum::Json(serde_json::json!({"status": "alive"})))
}

/// The process metrics and `confab_build_info`, registered once per process.
static PROCESS: std::sync::LazyLock<()> = std::sync::LazyLock::new(|| {
    register(process::build_info());
    if let Err(e) = prometheus::register(Box::new(ProcessMetrics::new())) {
        tracing::error!(error = %e, "process metrics registered twice; not exported");
    }
});

async fn metrics() -> impl IntoResponse {
    std::sync::LazyLock::force(&PROCESS);
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&prometheus::gather(), &mut buf);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], buf)
}

/// The public `/livez`, `/readyz` and `/healthz` (which checks fail, not why), for a
/// user-facing listener.
pub fn public_router(health: Health) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(public_readyz))
        .route("/healthz", get(public_healthz))
        .with_state(health)
}

/// `/livez`, the detailed `/readyz` and `/healthz`, and `/metrics`, for a private listener.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(detailed_healthz))
        .route("/healthz", get(detailed_healthz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

/// Registers a metric with the default registry. Call it once per metric per process (keep
/// metric sets in a `static`): a second registration of the same name fails, and that copy
/// would not be exported, which is logged here.
pub fn register<M: prometheus::core::Collector + Clone + 'static>(m: M) -> M {
    if let Err(e) = prometheus::register(Box::new(m.clone())) {
        tracing::error!(error = %e, "metric registered twice; this copy is not exported");
    }
    m
}
