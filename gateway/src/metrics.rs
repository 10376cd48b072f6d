//! The gateway's Prometheus metrics (low-cardinality labels only).

use confab_core::telemetry::register;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

#[derive(Clone)]
pub struct Metrics {
    pub connections: IntGauge,
    pub frames_in: IntCounterVec,
    pub errors: IntCounterVec,
    pub commands: IntCounter,
    pub delivered: IntCounter,
    pub slow_disconnects: IntCounter,
    pub duplicates_dropped: IntCounter,
    pub presence_changes: IntCounter,
    pub resumes: IntCounterVec,
    pub delivery_latency: Histogram,
    pub search_latency: Histogram,
    pub files: IntCounterVec,
    /// HTTP connections closed at `gateway.max_http_connections`.
    pub http_refused: IntCounter,
    /// File transfers refused at `files.max_concurrent_transfers`.
    pub transfers_refused: IntCounter,
}

/// One set per process (registering twice would leave the second set unexported).
static METRICS: std::sync::LazyLock<Metrics> = std::sync::LazyLock::new(Metrics::build);

impl Metrics {
    /// The process-wide gateway metrics.
    pub fn new() -> Self {
        METRICS.clone()
    }

    fn build() -> Self {
        Self {
            connections: register(IntGauge::new("confab_gateway_connections", "open WebSocket connections").unwrap()),
            frames_in: register(
                IntCounterVec::new(Opts::new("confab_gateway_frames_in_total", "client frames, by type"), &["type"])
                    .unwrap(),
            ),
            files: register(
                IntCounterVec::new(
                    Opts::new(
                        "confab_gateway_files_total",
                        "file sharing steps (upload_granted, shared, size_mismatch, download_granted, incomplete_deleted)",
                    ),
                    &["step"],
                )
                .unwrap(),
            ),
            errors: register(
                IntCounterVec::new(Opts::new("confab_gateway_rejected_total", "error frames sent, by code"), &["code"])
                    .unwrap(),
            ),
            commands: register(IntCounter::new("confab_gateway_commands_total", "commands written to Kafka").unwrap()),
            http_refused: register(
                IntCounter::new(
                    "confab_gateway_http_refused_total",
                    "HTTP connections closed at once because gateway.max_http_connections were open",
                )
                .unwrap(),
            ),
            transfers_refused: register(
                IntCounter::new(
                    "confab_gateway_transfers_refused_total",
                    "file transfers refused because files.max_concurrent_transfers were running",
                )
                .unwrap(),
            ),
            delivered: register(
                IntCounter::new("confab_gateway_delivered_frames_total", "frames queued to local sockets").unwrap(),
            ),
            slow_disconnects: register(
                IntCounter::new("confab_gateway_slow_consumer_disconnects_total", "sockets closed for not reading")
                    .unwrap(),
            ),
            duplicates_dropped: register(
                IntCounter::new(
                    "confab_gateway_duplicate_events_dropped_total",
                    "channel events a socket already had (resume overlap)",
                )
                .unwrap(),
            ),
            presence_changes: register(
                IntCounter::new("confab_gateway_presence_changes_total", "presence transitions published").unwrap(),
            ),
            resumes: register(
                IntCounterVec::new(
                    Opts::new("confab_gateway_resumes_total", "resume requests, by result"),
                    &["result"],
                )
                .unwrap(),
            ),
            delivery_latency: register(
                Histogram::with_opts(
                    HistogramOpts::new("confab_delivery_latency_seconds", "event occurred_at to local fanout")
                        .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
                )
                .unwrap(),
            ),
            search_latency: register(
                Histogram::with_opts(
                    HistogramOpts::new("confab_search_latency_seconds", "search queries, index time")
                        .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
                )
                .unwrap(),
            ),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
