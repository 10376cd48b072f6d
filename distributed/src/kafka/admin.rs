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
    let retention_forever = [("retention.ms", "-1"), ("min.insync.replicas", "1")];
    let replies_retention = [("retention.ms", "86400000")];
    let new = [
        NewTopic::new(&topics.commands, cfg.kafka.partitions, TopicReplication::Fixed(cfg.kafka.replication_factor))
            .set("retention.ms", "604800000"),
        retention_forever.iter().fold(
            NewTopic::new(&topics.events, cfg.kafka.partitions, TopicReplication::Fixed(cfg.kafka.replication_factor)),
            |t, (k, v)| t.set(k, v),
        ),
        replies_retention.iter().fold(
            NewTopic::new(&topics.replies, cfg.kafka.partitions, TopicReplication::Fixed(cfg.kafka.replication_factor)),
            |t, (k, v)| t.set(k, v),
        ),
        retention_forever.iter().fold(
            NewTopic::new(&topics.dead_letter, 1, TopicReplication::Fixed(cfg.kafka.replication_factor)),
            |t, (k, v)| t.set(k, v),
        ),
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
