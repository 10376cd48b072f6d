//! A projector's consumer of `<ns>.events`: group `<ns>-projector-<name>`, static membership,
//! `read_committed`. Offsets are stored only when acknowledged (after the projector's write) and
//! auto-committed every second, on revoke, and by `commit` on shutdown.

use async_trait::async_trait;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Message, Offset};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::avro::EventCodec;
use crate::config::Config;
use crate::ports::{EventRecord, EventSource, PortError, PortResult};

pub struct KafkaEventSource {
    consumer: Arc<StreamConsumer>,
    codec: EventCodec,
    topic: String,
    lag: Arc<AtomicI64>,
}

impl KafkaEventSource {
    pub fn start(cfg: &Config, projector: &str, codec: EventCodec) -> PortResult<Self> {
        let topic = super::Topics::new(&cfg.namespace).events;
        let consumer: Arc<StreamConsumer> = Arc::new(
            super::consumer_config(cfg, &format!("projector-{projector}"))
                .set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "1000")
                .set("enable.auto.offset.store", "false")
                .create()
                .map_err(PortError::of)?,
        );
        consumer.subscribe(&[&topic]).map_err(PortError::of)?;
        let lag = Arc::new(AtomicI64::new(0));
        tokio::spawn(measure_lag(Arc::downgrade(&consumer), topic.clone(), lag.clone()));
        Ok(Self { consumer, codec, topic, lag })
    }

    async fn record(&self, m: &rdkafka::message::BorrowedMessage<'_>) -> EventRecord {
        let event = match m.payload() {
            Some(p) => self.codec.decode(p).await.map_err(|e| e.to_string()),
            None => Err("event without payload".into()),
        };
        EventRecord { partition: m.partition(), offset: m.offset(), event }
    }
}

#[async_trait]
impl EventSource for KafkaEventSource {
    async fn next_batch(&mut self, max: usize) -> PortResult<Vec<EventRecord>> {
        let first = self.consumer.recv().await.map_err(PortError::of)?;
        let mut batch = vec![self.record(&first).await];
        drop(first);
        // one deadline for the whole batch: a steady trickle must not keep a batch open
        let deadline = tokio::time::Instant::now() + Duration::from_millis(2);
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(m) => {
                    let m = m.map_err(PortError::of)?;
                    batch.push(self.record(&m).await);
                }
                Err(_) => break,
            }
        }
        Ok(batch)
    }

    fn ack(&mut self, partition: i32, offset: i64) -> PortResult<()> {
        self.consumer.store_offset(&self.topic, partition, offset).map_err(PortError::of)
    }

    async fn commit(&mut self, wait: bool) -> PortResult<()> {
        if !wait {
            // stored offsets are auto-committed in the background too; this only hurries them
            return match self.consumer.commit_consumer_state(CommitMode::Async) {
                Ok(()) => Ok(()),
                Err(e) if e.to_string().contains("No offset stored") || e.to_string().contains("NoOffset") => Ok(()),
                Err(e) => Err(PortError::of(e)),
            };
        }
        let c = self.consumer.clone();
        match super::blocking(move || c.commit_consumer_state(CommitMode::Sync)).await {
            Ok(()) => Ok(()),
            // nothing stored since the last commit
            Err(e) if e.0.contains("No offset stored") || e.0.contains("NoOffset") => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn lag(&mut self) -> Option<i64> {
        Some(self.lag.load(Ordering::Relaxed))
    }
}

/// Every 5 s, off the projector's path: high watermark minus position, summed over the assigned
/// partitions. Stops when the consumer is dropped.
async fn measure_lag(consumer: std::sync::Weak<StreamConsumer>, topic: String, out: Arc<AtomicI64>) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let Some(c) = consumer.upgrade() else { return };
        let t = topic.clone();
        let lag = super::blocking(move || {
            let mut total = 0;
            for p in c.position()?.elements() {
                let (_, high) = c.fetch_watermarks(&t, p.partition(), Duration::from_secs(5))?;
                if let Offset::Offset(pos) = p.offset() {
                    total += (high - pos).max(0);
                }
            }
            Ok(total)
        })
        .await;
        if let Ok(lag) = lag {
            out.store(lag, Ordering::Relaxed);
        }
    }
}
