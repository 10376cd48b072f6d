//! Reads `<ns>.replies` (read_committed, so a reply is visible only once its event is committed
//! to the log) and routes this gateway's replies: to a socket as `message:ack` / `error`, or to
//! an admin request waiting on its command id.

use axum::extract::ws::Utf8Bytes;
use confab_core::command::{Outcome, Reply};
use confab_core::protocol::ServerFrame;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::Duration;

use crate::server::{AppState, GatewayError};

/// Assigns every replies partition at its current end (explicit offsets, so no reply to a
/// command sent after this returns can be missed), then routes replies in the background.
pub async fn start(st: Arc<AppState>) -> Result<(), GatewayError> {
    let consumer: Arc<StreamConsumer> = Arc::new(
        confab_core::kafka::base_config(&st.cfg)
            .set("group.id", format!("{}-gateway-{}", st.cfg.namespace, st.gateway_id))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", st.cfg.kafka.fetch_wait_max_ms.to_string())
            .create()?,
    );
    let topic = st.topics.replies.clone();
    let tpl = {
        let c = consumer.clone();
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || -> Result<TopicPartitionList, rdkafka::error::KafkaError> {
            let md = c.fetch_metadata(Some(&topic), Duration::from_secs(30))?;
            let mut tpl = TopicPartitionList::new();
            for t in md.topics() {
                for p in t.partitions() {
                    let (_, high) = c.fetch_watermarks(&topic, p.id(), Duration::from_secs(30))?;
                    tpl.add_partition_offset(&topic, p.id(), Offset::Offset(high))?;
                }
            }
            Ok(tpl)
        })
        .await??
    };
    if tpl.count() == 0 {
        tracing::warn!(topic = %topic, "replies topic has no partitions: was `confab setup` run?");
    }
    consumer.assign(&tpl)?;
    tokio::spawn(route(st, consumer));
    Ok(())
}

async fn route(st: Arc<AppState>, consumer: Arc<StreamConsumer>) {
    let mut shutdown = st.shutdown.clone();
    loop {
        let msg = tokio::select! {
            _ = shutdown.wait() => return,
            m = consumer.recv() => m,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                st.health.set("kafka", Err(e.to_string()));
                tracing::warn!(error = %e, "replies consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        st.health.set("kafka", Ok(()));
        if msg.key() != Some(st.gateway_id.as_bytes()) {
            continue;
        }
        let Some(reply) = msg.payload().and_then(|p| serde_json::from_slice::<Reply>(p).ok()) else {
            tracing::warn!(offset = msg.offset(), "undecodable reply skipped");
            continue;
        };
        if let Some(waiter) = st.pending.lock().expect("pending lock").remove(&reply.command_id) {
            let _ = waiter.send(reply);
            continue;
        }
        let frame = match reply.outcome {
            Outcome::Posted { message_id, seq, ts, .. } => ServerFrame::Ack {
                client_msg_id: reply.client_msg_id.unwrap_or_default(),
                channel_id: reply.channel_id,
                message_id,
                seq,
                ts,
            },
            Outcome::Rejected { code, message } => {
                st.metrics.errors.with_label_values(&[code.as_str()]).inc();
                ServerFrame::Error { code, message, client_msg_id: reply.client_msg_id }
            }
            Outcome::Done { .. } => continue,
        };
        let json = serde_json::to_string(&frame).expect("frame serializes");
        st.hub.send_to(reply.reply_to.conn_id, Utf8Bytes::from(json));
    }
}
