//! Topic creation (`confab setup`): the three topics with their retention.

use confab_core::config::Config;
use confab_core::ports::PortResult;
use confab_core::Topics;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

use super::client::base_config;
use super::error::port_error;

/// Creates the topics if they do not exist (idempotent): commands, events, replies, and the
/// events' dead letters (kept forever, one partition: it is read by people, in order).
pub async fn ensure_topics(cfg: &Config) -> PortResult<Topics> {
    let topics = Topics::new(&cfg.namespace);
    let admin: AdminClient<DefaultClientContext> =
        base_config(cfg).create().map_err(|e| port_error("creating the admin client", e))?;
    let min_insync = cfg.kafka.min_insync_replicas.to_string();
    let (week, day, forever) = ("604800000", "86400000", "-1");
    let new = [
        new_topic(cfg, &topics.commands, cfg.kafka.partitions, week, &min_insync),
        new_topic(cfg, &topics.events, cfg.kafka.partitions, forever, &min_insync),
        new_topic(cfg, &topics.replies, cfg.kafka.partitions, day, &min_insync),
        new_topic(cfg, &topics.dead_letter, 1, forever, &min_insync),
    ];
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let created = admin.create_topics(new.iter(), &opts).await.map_err(|e| port_error("creating topics", e))?;
    for result in created {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                let e = rdkafka::error::KafkaError::AdminOp(code);
                return Err(port_error(&format!("creating topic {topic}"), e));
            }
        }
    }
    Ok(topics)
}

/// A topic with the configured replication: a write is acknowledged once `min_insync` replicas
/// have it, and a replica that missed writes never becomes leader.
fn new_topic<'a>(
    cfg: &Config,
    name: &'a str,
    partitions: i32,
    retention_ms: &'a str,
    min_insync: &'a str,
) -> NewTopic<'a> {
    NewTopic::new(name, partitions, TopicReplication::Fixed(cfg.kafka.replication_factor))
        .set("retention.ms", retention_ms)
        .set("min.insync.replicas", min_insync)
        .set("unclean.leader.election.enable", "false")
}
