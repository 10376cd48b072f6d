//! librdkafka's statistics as Prometheus metrics. Every Kafka client Confab makes carries a
//! [`Metered`] context naming its role (`gateway-commands`, `ingest`, `projector-timeline`, ...);
//! librdkafka hands it a statistics report every `kafka.statistics_interval_ms`, and
//! [`record`] turns the parts an operator acts on into metrics labelled with that role:
//!
//! - `confab_kafka_broker_up{client, broker}`: 1 while the connection to a broker is `UP`;
//! - `confab_kafka_broker_rtt_seconds{client, broker, quantile}`: request round trips (p50, p99);
//! - `confab_kafka_queued_messages{client}`: messages a producer holds, not yet acknowledged;
//! - `confab_kafka_consumer_lag{client, topic, partition}`: what a consumer has still to read;
//! - `confab_kafka_transmitted_bytes_total`, `confab_kafka_received_bytes_total`,
//!   `confab_kafka_request_timeouts_total` `{client}`: counters summed over the role's clients.
//!
//! Every label is bounded: roles are a fixed list, brokers and partitions are the cluster's.
//! librdkafka's own totals restart with each client; the counters add what grew since the
//! client's previous report, so they never go backwards when a consumer is made again.

use confab_core::telemetry::register;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};
use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::statistics::Statistics;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// A client that has not reported for this long is gone (a consumer made again after being
/// fenced, a replay that ended): its totals are forgotten, so the map holds live clients only.
const FORGET_CLIENT_AFTER: Duration = Duration::from_secs(600);

/// A client context that reports librdkafka's statistics as metrics under `role`.
#[derive(Clone, Debug)]
pub struct Metered {
    role: Arc<str>,
}

impl Metered {
    /// `role` names the client in the metrics' `client` label: one of a fixed set of names.
    pub fn new(role: impl Into<Arc<str>>) -> Self {
        Self { role: role.into() }
    }
}

impl ClientContext for Metered {
    fn stats(&self, statistics: Statistics) {
        record(&self.role, &statistics);
    }
}

impl ConsumerContext for Metered {}

struct KafkaMetrics {
    broker_up: IntGaugeVec,
    broker_rtt: GaugeVec,
    queued_messages: IntGaugeVec,
    consumer_lag: IntGaugeVec,
    transmitted_bytes: IntCounterVec,
    received_bytes: IntCounterVec,
    request_timeouts: IntCounterVec,
    /// Each client's (librdkafka `name`) totals at its previous report, and when that was.
    previous_totals: Mutex<HashMap<String, (ClientTotals, Instant)>>,
}

#[derive(Clone, Copy, Default)]
struct ClientTotals {
    transmitted_bytes: u64,
    received_bytes: u64,
    request_timeouts: u64,
}

fn int_gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge"))
}

fn counter(name: &str, help: &str) -> IntCounterVec {
    register(IntCounterVec::new(Opts::new(name, help), &["client"]).expect("a valid counter"))
}

static METRICS: LazyLock<KafkaMetrics> = LazyLock::new(|| KafkaMetrics {
    broker_up: int_gauge(
        "confab_kafka_broker_up",
        "1 while a client's connection to a broker is up",
        &["client", "broker"],
    ),
    broker_rtt: register(
        GaugeVec::new(
            Opts::new("confab_kafka_broker_rtt_seconds", "round trip of a client's requests to a broker"),
            &["client", "broker", "quantile"],
        )
        .expect("a valid gauge"),
    ),
    queued_messages: int_gauge(
        "confab_kafka_queued_messages",
        "messages a producer holds, not yet acknowledged",
        &["client"],
    ),
    consumer_lag: int_gauge(
        "confab_kafka_consumer_lag",
        "messages a consumer has still to read in a partition",
        &["client", "topic", "partition"],
    ),
    transmitted_bytes: counter("confab_kafka_transmitted_bytes_total", "bytes sent to brokers"),
    received_bytes: counter("confab_kafka_received_bytes_total", "bytes received from brokers"),
    request_timeouts: counter("confab_kafka_request_timeouts_total", "requests to brokers that timed out"),
    previous_totals: Mutex::new(HashMap::new()),
});

/// Records one statistics report of a client in role `role`.
pub fn record(role: &str, statistics: &Statistics) {
    let metrics = &*METRICS;
    let mut totals = ClientTotals::default();
    for broker in statistics.brokers.values().filter(|broker| broker.nodeid >= 0) {
        let name = broker.nodename.as_str();
        metrics.broker_up.with_label_values(&[role, name]).set(i64::from(broker.state == "UP"));
        if let Some(rtt) = &broker.rtt {
            for (quantile, micros) in [("0.5", rtt.p50), ("0.99", rtt.p99)] {
                metrics.broker_rtt.with_label_values(&[role, name, quantile]).set(micros as f64 / 1e6);
            }
        }
        totals.transmitted_bytes += broker.txbytes;
        totals.received_bytes += broker.rxbytes;
        totals.request_timeouts += broker.req_timeouts;
    }
    if statistics.client_type == "producer" {
        metrics.queued_messages.with_label_values(&[role]).set(statistics.msg_cnt as i64);
    }
    for (topic, partitions) in &statistics.topics {
        for partition in partitions.partitions.values().filter(|p| p.partition >= 0 && p.consumer_lag >= 0) {
            let id = partition.partition.to_string();
            metrics.consumer_lag.with_label_values(&[role, topic, &id]).set(partition.consumer_lag);
        }
    }
    add_growth(metrics, role, &statistics.name, totals);
}

/// Adds to the counters what a client's totals grew by since its previous report.
fn add_growth(metrics: &KafkaMetrics, role: &str, client_name: &str, now: ClientTotals) {
    let mut previous_totals = metrics.previous_totals.lock().expect("kafka totals lock");
    let reported_at = Instant::now();
    let before = match previous_totals.insert(client_name.to_owned(), (now, reported_at)) {
        Some((before, _)) => before,
        None => {
            previous_totals.retain(|_, (_, at)| reported_at.duration_since(*at) < FORGET_CLIENT_AFTER);
            ClientTotals::default()
        }
    };
    let grown = |now: u64, before: u64| now.saturating_sub(before);
    metrics.transmitted_bytes.with_label_values(&[role]).inc_by(grown(now.transmitted_bytes, before.transmitted_bytes));
    metrics.received_bytes.with_label_values(&[role]).inc_by(grown(now.received_bytes, before.received_bytes));
    metrics.request_timeouts.with_label_values(&[role]).inc_by(grown(now.request_timeouts, before.request_timeouts));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::statistics::{Broker, Partition, Topic, Window};

    /// A consumer's report: one broker (plus librdkafka's bootstrap entry, nodeid -1) and one
    /// partition (plus its internal partition -1).
    fn report(client_name: &str, transmitted_bytes: u64, consumer_lag: i64) -> Statistics {
        let broker = |nodeid: i32, txbytes: u64| Broker {
            nodeid,
            nodename: "127.0.0.1:9092".into(),
            state: "UP".into(),
            txbytes,
            rtt: Some(Window { p50: 2_000, p99: 9_000, ..Default::default() }),
            ..Default::default()
        };
        let partition = |partition: i32, consumer_lag: i64| Partition { partition, consumer_lag, ..Default::default() };
        let topic = Topic {
            topic: "t.events".into(),
            partitions: HashMap::from([(0, partition(0, consumer_lag)), (-1, partition(-1, 7))]),
            ..Default::default()
        };
        Statistics {
            name: client_name.into(),
            client_type: "consumer".into(),
            brokers: HashMap::from([
                ("127.0.0.1:9092/1".into(), broker(1, transmitted_bytes)),
                ("127.0.0.1:9092/bootstrap".into(), broker(-1, 1_000_000)),
            ]),
            topics: HashMap::from([("t.events".into(), topic)]),
            ..Default::default()
        }
    }

    fn lag_partitions(role: &str) -> Vec<String> {
        use prometheus::core::Collector;
        let families = METRICS.consumer_lag.collect();
        let samples = families.iter().flat_map(|family| family.get_metric());
        let of_role = samples.filter(|m| m.get_label().iter().any(|l| l.name() == "client" && l.value() == role));
        let partition = |m: &prometheus::proto::Metric| {
            m.get_label().iter().find(|l| l.name() == "partition").map(|l| l.value().to_owned())
        };
        of_role.filter_map(partition).collect()
    }

    #[test]
    fn a_report_sets_broker_and_lag_metrics_and_counters_only_grow() {
        let role = "test-role";
        let m = &*METRICS;
        record(role, &report("c#consumer-1", 100, 42));
        assert_eq!(m.broker_up.with_label_values(&[role, "127.0.0.1:9092"]).get(), 1);
        assert_eq!(m.broker_rtt.with_label_values(&[role, "127.0.0.1:9092", "0.99"]).get(), 0.009);
        assert_eq!(m.consumer_lag.with_label_values(&[role, "t.events", "0"]).get(), 42);
        assert_eq!(m.transmitted_bytes.with_label_values(&[role]).get(), 100, "the bootstrap entry is not counted");
        assert_eq!(lag_partitions(role), ["0"], "librdkafka's internal partition -1 is never reported");

        record(role, &report("c#consumer-1", 150, 0));
        assert_eq!(m.transmitted_bytes.with_label_values(&[role]).get(), 150, "the growth since the last report");
        assert_eq!(m.consumer_lag.with_label_values(&[role, "t.events", "0"]).get(), 0);

        // the role's client made again: its totals start over, the counter does not go back
        record(role, &report("c#consumer-2", 30, 0));
        assert_eq!(m.transmitted_bytes.with_label_values(&[role]).get(), 180);
    }
}
