//! The at-least-once projector loop shared by every projection.

use confab_core::avro::EventCodec;
use confab_core::config::Config;
use confab_core::kafka::{self, Topics};
use confab_core::shutdown::Shutdown;
use confab_core::telemetry::{register, Health};
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::{Projection, ProjectorError};

const MAX_BATCH: usize = 500;

struct Metrics {
    events: IntCounterVec,
    undecodable: IntCounterVec,
    failures: IntCounterVec,
    lag: IntGaugeVec,
}

impl Metrics {
    fn new() -> Self {
        Self {
            events: register(IntCounterVec::new(Opts::new("confab_projector_events_total", "events applied"), &["projector"]).unwrap()),
            undecodable: register(
                IntCounterVec::new(Opts::new("confab_projector_undecodable_total", "events skipped because they could not be decoded"), &["projector"]).unwrap(),
            ),
            failures: register(IntCounterVec::new(Opts::new("confab_projector_apply_failures_total", "failed batch applications (retried)"), &["projector"]).unwrap()),
            lag: register(IntGaugeVec::new(Opts::new("confab_projector_lag", "events not yet applied, summed over assigned partitions"), &["projector"]).unwrap()),
        }
    }
}

/// Runs `projection` until shutdown.
pub async fn run<P: Projection>(cfg: Config, projection: P, mut shutdown: Shutdown, health: Health) -> Result<(), ProjectorError> {
    let name = projection.name();
    let topics = Topics::new(&cfg.namespace);
    let codec = loop {
        match EventCodec::register(&cfg.registry.url, &topics.events).await {
            Ok(c) => break c,
            Err(e) => {
                health.set("registry", Err(e.to_string()));
                tracing::warn!(projector = name, error = %e, "schema registry unavailable, retrying");
                tokio::select! { _ = shutdown.wait() => return Ok(()), _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
            }
        }
    };
    health.set("registry", Ok(()));
    let metrics = Metrics::new();
    let consumer: Arc<StreamConsumer> = Arc::new(
        kafka::consumer_config(&cfg, &format!("projector-{name}"))
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .create()?,
    );
    consumer.subscribe(&[&topics.events])?;
    health.set("kafka", Ok(()));
    tokio::spawn(report_lag(consumer.clone(), topics.events.clone(), name, metrics.lag.clone(), shutdown.clone()));
    tracing::info!(projector = name, topic = %topics.events, "projector started");

    loop {
        let first = tokio::select! {
            _ = shutdown.wait() => break,
            m = consumer.recv() => m?.detach(),
        };
        let mut batch: Vec<OwnedMessage> = vec![first];
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout(Duration::from_millis(2), consumer.recv()).await {
                Ok(m) => batch.push(m?.detach()),
                Err(_) => break,
            }
        }
        let mut events = Vec::with_capacity(batch.len());
        for m in &batch {
            match m.payload() {
                Some(p) => match codec.decode(p).await {
                    Ok(e) => events.push(e),
                    Err(e) => {
                        metrics.undecodable.with_label_values(&[name]).inc();
                        tracing::error!(projector = name, partition = m.partition(), offset = m.offset(), error = %e, "undecodable event skipped");
                    }
                },
                None => tracing::error!(projector = name, partition = m.partition(), offset = m.offset(), "event without payload skipped"),
            }
        }
        // apply until it succeeds: skipping would lose data, and the offsets stay unstored meanwhile
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
                        _ = shutdown.wait() => return commit(&consumer, name).await,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        metrics.events.with_label_values(&[name]).inc_by(events.len() as u64);
        let mut last: HashMap<i32, i64> = HashMap::new();
        for m in &batch {
            last.insert(m.partition(), m.offset());
        }
        for (partition, offset) in last {
            consumer.store_offset(&topics.events, partition, offset)?;
        }
    }
    commit(&consumer, name).await
}

async fn commit(consumer: &Arc<StreamConsumer>, name: &'static str) -> Result<(), ProjectorError> {
    let c = consumer.clone();
    let r = tokio::task::spawn_blocking(move || c.commit_consumer_state(CommitMode::Sync)).await?;
    match r {
        Ok(()) => tracing::info!(projector = name, "offsets committed on shutdown"),
        // nothing stored since the last commit
        Err(rdkafka::error::KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

async fn report_lag(consumer: Arc<StreamConsumer>, topic: String, name: &'static str, gauge: IntGaugeVec, mut shutdown: Shutdown) {
    loop {
        tokio::select! { _ = shutdown.wait() => return, _ = tokio::time::sleep(Duration::from_secs(5)) => {} }
        let c = consumer.clone();
        let t = topic.clone();
        let lag = tokio::task::spawn_blocking(move || -> Result<i64, rdkafka::error::KafkaError> {
            let mut total = 0;
            for p in c.position()?.elements() {
                let (_, high) = c.fetch_watermarks(&t, p.partition(), Duration::from_secs(5))?;
                let pos = match p.offset() {
                    Offset::Offset(o) => o,
                    _ => continue,
                };
                total += (high - pos).max(0);
            }
            Ok(total)
        })
        .await;
        if let Ok(Ok(lag)) = lag {
            gauge.with_label_values(&[name]).set(lag);
        }
    }
}
