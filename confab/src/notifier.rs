//! `confab notifier` (and the embedded mode's notifier): the notify projection over the events
//! log, and the sender draining the outbox through the configured push providers.

use anyhow::Context;
use confab_core::config::Config;
use confab_core::ports::{EventSource, NotifyStore, Presence, Store};
use confab_core::telemetry::Health;
use confab_core::Shutdown;
use confab_notifier::pipeline::{providers, sender, NotifyProjection, SenderLimits};
use std::sync::Arc;

static PUSH_LATENCY: std::sync::LazyLock<prometheus::Histogram> = std::sync::LazyLock::new(|| {
    confab_core::telemetry::register(
        prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new(
                "confab_push_latency_seconds",
                "event to the provider's acceptance of its push",
            )
            .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )
        .expect("histogram"),
    )
});

pub async fn run(
    cfg: Config,
    source: Box<dyn EventSource>,
    store: Arc<dyn Store>,
    presence: Arc<dyn Presence>,
    notify: Arc<dyn NotifyStore>,
    shutdown: Shutdown,
    health: Health,
) -> anyhow::Result<()> {
    let set = Arc::new(providers(&cfg.notifier).context("configuring push providers")?);
    let limits = SenderLimits {
        max_attempts: cfg.notifier.max_attempts.max(1),
        lease_ms: cfg.notifier.outbox_lease_ms.min(i64::MAX as u64) as i64,
    };
    let send = tokio::spawn(sender(notify.clone(), set, limits, shutdown.clone(), |ms| {
        PUSH_LATENCY.observe(ms.max(0) as f64 / 1000.0)
    }));
    confab_projectors::runner::run(source, NotifyProjection::new(store, presence, notify), shutdown, health).await?;
    send.await?;
    Ok(())
}
