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
        .set("log_level", "4");
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
