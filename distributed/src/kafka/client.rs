//! Client settings every Confab Kafka client shares, consumer groups, and committed lag.

use confab_core::config::Config;
use rdkafka::config::ClientConfig;
use std::time::Duration;

/// Settings every Confab client shares, then the operator's `kafka.properties` (which win).
pub fn base_config(cfg: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.kafka.brokers)
        .set("client.id", format!("confab-{}", std::process::id()))
        .set("socket.keepalive.enable", "true")
        .set("log_level", "4")
        .set("statistics.interval.ms", cfg.kafka.statistics_interval_ms.to_string());
    for (name, value) in &cfg.kafka.properties {
        c.set(name, value);
    }
    c
}

/// A consumer group name in this deployment's namespace.
pub fn group(cfg: &Config, role: &str) -> String {
    format!("{}-{role}", cfg.namespace)
}

/// Settings of a consumer in group `<ns>-<role>` with static membership.
pub fn consumer_config(cfg: &Config, role: &str) -> ClientConfig {
    let mut c = base_config(cfg);
    c.set("group.id", group(cfg, role))
        .set("group.instance.id", format!("{}-{role}-{}", cfg.namespace, cfg.kafka.instance_id))
        .set("session.timeout.ms", cfg.kafka.session_timeout_ms.to_string())
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", cfg.kafka.fetch_wait_max_ms.to_string())
        .set("auto.offset.reset", "earliest");
    c
}

/// How far the group of `consumer` (made with its `group.id`) is behind the end of `topic`:
/// its committed offsets against the high watermarks, summed over the partitions (a partition
/// with nothing committed counts from its low watermark). Blocking: call off the runtime.
/// `confab lag` and the throughput benchmark read lag this way.
pub fn committed_lag(
    consumer: &rdkafka::consumer::BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> rdkafka::error::KafkaResult<i64> {
    use rdkafka::consumer::Consumer;
    let md = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        tpl.add_partition(topic, p.id());
    }
    let mut total = 0;
    for e in consumer.committed_offsets(tpl, timeout)?.elements() {
        let (low, high) = consumer.fetch_watermarks(topic, e.partition(), timeout)?;
        let at = if let rdkafka::Offset::Offset(o) = e.offset() { o } else { low };
        total += (high - at).max(0);
    }
    Ok(total)
}

/// A Kafka consumer that is closed off the async runtime when dropped. A consumer's drop runs
/// librdkafka's close, which can wait without a bound when it meets a rebalance in flight (seen:
/// `rd_kafka_rebalance_protocol` waiting forever inside `BaseConsumer::drop`, when a projector
/// whose store refused it dropped its just-subscribed consumer); on an async worker that stalls
/// the whole process, and a process that should stop on a fatal error never does. On a thread
/// of its own, the close ends when librdkafka lets it, or with the process.
pub(crate) struct ClosedOffRuntime<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> ClosedOffRuntime<T> {
    pub(crate) fn new(consumer: T) -> Self {
        Self(Some(consumer))
    }
}

impl<T: Send + 'static> std::ops::Deref for ClosedOffRuntime<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("a consumer is there until it is dropped")
    }
}

impl<T: Send + 'static> Drop for ClosedOffRuntime<T> {
    fn drop(&mut self) {
        let Some(consumer) = self.0.take() else { return };
        let closing = std::thread::Builder::new().name("kafka-close".into()).spawn(move || drop(consumer));
        if let Err(e) = closing {
            tracing::warn!(error = %e, "no thread to close a kafka consumer on; it stays open until the process ends");
        }
    }
}

#[cfg(test)]
mod closing_tests {
    use super::ClosedOffRuntime;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// Blocks in its drop until told to go on, as librdkafka's close can.
    struct StuckClose {
        go_on: mpsc::Receiver<()>,
        closed: mpsc::Sender<()>,
    }

    impl Drop for StuckClose {
        fn drop(&mut self) {
            let _ = self.go_on.recv();
            let _ = self.closed.send(());
        }
    }

    #[test]
    fn a_close_that_does_not_end_never_blocks_the_one_who_drops_it() {
        let (go, go_on) = mpsc::channel();
        let (closed, was_closed) = mpsc::channel();
        let consumer = ClosedOffRuntime::new(StuckClose { go_on, closed });
        let started = Instant::now();
        drop(consumer);
        assert!(started.elapsed() < Duration::from_secs(1), "the drop returned at once");
        assert!(was_closed.try_recv().is_err(), "the close is still running, elsewhere");
        go.send(()).unwrap();
        was_closed.recv_timeout(Duration::from_secs(10)).expect("the close ends on its own thread");
    }
}
