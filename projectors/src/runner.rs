//! The at-least-once projector loop shared by every projection: receive a batch, apply it
//! (retrying with backoff, never skipping), and only then acknowledge its offsets.

use confab_core::ports::{EventSource, PortResult};
use confab_core::shutdown::Shutdown;
use confab_core::telemetry::{register, Health};
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use std::time::{Duration, Instant};

use crate::Projection;

const MAX_BATCH: usize = 500;
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// One set per process: several projectors (or sequencers) in one process share it, labelled.
static METRICS: std::sync::LazyLock<Metrics> = std::sync::LazyLock::new(Metrics::new);

struct Metrics {
    events: IntCounterVec,
    undecodable: IntCounterVec,
    failures: IntCounterVec,
    lag: IntGaugeVec,
}

impl Metrics {
    fn new() -> Self {
        Self {
            events: register(
                IntCounterVec::new(Opts::new("confab_projector_events_total", "events applied"), &["projector"])
                    .unwrap(),
            ),
            undecodable: register(
                IntCounterVec::new(
                    Opts::new("confab_projector_undecodable_total", "events skipped because they could not be decoded"),
                    &["projector"],
                )
                .unwrap(),
            ),
            failures: register(
                IntCounterVec::new(
                    Opts::new("confab_projector_apply_failures_total", "failed batch applications (retried)"),
                    &["projector"],
                )
                .unwrap(),
            ),
            lag: register(
                IntGaugeVec::new(
                    Opts::new("confab_projector_lag", "events not yet applied, summed over assigned partitions"),
                    &["projector"],
                )
                .unwrap(),
            ),
        }
    }
}

/// Runs `projection` over `source` until shutdown, then commits the acknowledged positions.
pub async fn run<P: Projection>(
    mut source: Box<dyn EventSource>,
    projection: P,
    mut shutdown: Shutdown,
    health: Health,
) -> PortResult<()> {
    let name = projection.name();
    let metrics: &Metrics = &METRICS;
    let mut last_commit = Instant::now();
    if let Some(lag) = source.lag().await {
        metrics.lag.with_label_values(&[name]).set(lag);
    }
    tracing::info!(projector = name, "projector started");
    loop {
        let batch = tokio::select! {
            _ = shutdown.wait() => break,
            // wake at least every second when idle, to commit and refresh the lag gauge
            b = source.next_batch(MAX_BATCH, Some(COMMIT_EVERY)) => b?,
        };
        if batch.is_empty() {
            if last_commit.elapsed() >= COMMIT_EVERY {
                crate::flush_then_commit(&projection, &mut source, false).await?;
                if let Some(lag) = source.lag().await {
                    metrics.lag.with_label_values(&[name]).set(lag);
                }
                last_commit = Instant::now();
            }
            continue;
        }
        let mut events = Vec::with_capacity(batch.len());
        for rec in batch {
            match rec.event {
                Ok(e) => events.push(e),
                Err(e) => {
                    metrics.undecodable.with_label_values(&[name]).inc();
                    tracing::error!(projector = name, partition = rec.partition, offset = rec.offset, error = %e, "undecodable event skipped");
                }
            }
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match projection.apply(&events).await {
                Ok(()) => {
                    health.set("store", Ok(()));
                    break;
                }
                Err(e) => {
                    metrics.failures.with_label_values(&[name]).inc();
                    health.set("store", Err(e.to_string()));
                    tracing::warn!(projector = name, error = %e, retry_in_ms = backoff.as_millis() as u64, "apply failed, retrying");
                    tokio::select! {
                        _ = shutdown.wait() => return crate::flush_then_commit(&projection, &mut source, true).await,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        metrics.events.with_label_values(&[name]).inc_by(events.len() as u64);
        source.ack_returned()?;
        if last_commit.elapsed() >= COMMIT_EVERY {
            crate::flush_then_commit(&projection, &mut source, false).await?;
            if let Some(lag) = source.lag().await {
                metrics.lag.with_label_values(&[name]).set(lag);
            }
            last_commit = Instant::now();
        }
    }
    crate::flush_then_commit(&projection, &mut source, true).await?;
    tracing::info!(projector = name, "projector stopped, positions committed");
    Ok(())
}
