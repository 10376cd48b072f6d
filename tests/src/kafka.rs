//! Reading a test stack's Kafka topics directly, as an attacker or an operator would.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

use crate::Stack;

/// The first record of `<namespace>.<topic>` (every partition, from the beginning) that
/// `wanted` accepts, within `within`; panics naming `what` otherwise.
pub fn first_record(
    stack: &Stack,
    topic: &str,
    within: Duration,
    what: &str,
    wanted: impl Fn(&OwnedMessage) -> bool,
) -> OwnedMessage {
    let topic = format!("{}.{topic}", stack.namespace);
    let brokers = stack.services.as_ref().expect("a distributed stack").kafka.clone();
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{}-probe", stack.namespace))
        .set("enable.auto.commit", "false")
        .create()
        .expect("a probe consumer");
    let md = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10)).expect("topic metadata");
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(&topic, p.id(), Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let m = m.detach();
            if wanted(&m) {
                return m;
            }
        }
    }
    panic!("no record of {topic} with {what} within {within:?}");
}
