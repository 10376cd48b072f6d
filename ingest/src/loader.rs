//! Rebuilds one partition's [`PartitionState`] from the events topic. Runs when the sequencer
//! first sees a command from a partition, after `init_transactions` has fenced any earlier
//! writer, so the log it reads is final up to its end.

use confab_core::avro::EventCodec;
use confab_core::config::Config;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::state::PartitionState;
use crate::IngestError;

const LOAD_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn load_partition(cfg: &Config, events_topic: &str, partition: i32, codec: &EventCodec) -> Result<PartitionState, IngestError> {
    let err = |reason: String| IngestError::Load { partition, reason };
    let consumer: Arc<StreamConsumer> = Arc::new(
        confab_core::kafka::base_config(cfg)
            .set("group.id", confab_core::kafka::group(cfg, "ingest-loader"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()?,
    );
    let (low, high) = {
        let c = consumer.clone();
        let topic = events_topic.to_string();
        tokio::task::spawn_blocking(move || c.fetch_watermarks(&topic, partition, Duration::from_secs(30))).await??
    };
    let mut state = PartitionState::default();
    if high <= low {
        return Ok(state);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(events_topic, partition, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let started = Instant::now();
    let mut applied = 0u64;
    loop {
        if started.elapsed() > LOAD_TIMEOUT {
            return Err(err(format!("not at the end after {LOAD_TIMEOUT:?} ({applied} events read, end {high})")));
        }
        match tokio::time::timeout(Duration::from_millis(300), consumer.recv()).await {
            Ok(Ok(msg)) => {
                if let Some(payload) = msg.payload() {
                    match codec.decode(payload).await {
                        Ok(e) => {
                            state.apply(&e);
                            applied += 1;
                        }
                        Err(e) => tracing::warn!(partition, offset = msg.offset(), error = %e, "skipping undecodable event while loading"),
                    }
                }
                if msg.offset() + 1 >= high {
                    break;
                }
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => {
                // only control records (transaction markers) may be left: check the position
                let pos = consumer.position()?;
                let at = pos.find_partition(events_topic, partition).and_then(|p| match p.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
                if at.is_some_and(|o| o >= high) {
                    break;
                }
            }
        }
    }
    tracing::info!(partition, events = applied, channels = state.channels.len(), elapsed_ms = started.elapsed().as_millis() as u64, "partition state loaded");
    Ok(state)
}
