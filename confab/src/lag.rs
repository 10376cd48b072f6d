//! `confab lag`: how far each consumer is behind the end of its log, as JSON.
//! Distributed: committed offsets of each consumer group against the topics' high watermarks.
//! Embedded: the running `confab serve`'s `/metrics` on its admin listener (the data directory is
//! locked while it runs).

use anyhow::Context;
use confab_core::config::{Config, Mode};
use confab_core::Topics;
use confab_distributed::kafka;
use rdkafka::consumer::BaseConsumer;
use serde_json::{json, Map, Value};
use std::time::Duration;

fn group_lag(cfg: &Config, role: &str, topic: &str) -> anyhow::Result<i64> {
    let consumer: BaseConsumer =
        kafka::base_config(cfg).set("group.id", kafka::group(cfg, role)).set("enable.auto.commit", "false").create()?;
    Ok(kafka::committed_lag(&consumer, topic, Duration::from_secs(10))?)
}

pub async fn run(cfg: &Config) -> anyhow::Result<()> {
    let out = match cfg.mode {
        Mode::Distributed => {
            let cfg = cfg.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<Value> {
                let topics = Topics::new(&cfg.namespace);
                Ok(json!({
                    "ingest": group_lag(&cfg, "ingest", &topics.commands)?,
                    "timeline": group_lag(&cfg, "projector-timeline", &topics.events)?,
                    "fanout": group_lag(&cfg, "projector-fanout", &topics.events)?,
                    "search": group_lag(&cfg, "projector-search", &topics.events)?,
                    "erasure": group_lag(&cfg, "projector-erasure", &topics.events)?,
                    "notifier": group_lag(&cfg, "projector-notifier", &topics.events)?,
                }))
            })
            .await??
        }
        _ => {
            let url = format!("http://{}/metrics", cfg.gateway.admin_listen);
            let text = reqwest::get(&url)
                .await
                .with_context(|| format!("reading {url} (is confab serve running?)"))?
                .text()
                .await?;
            let mut m = Map::new();
            for line in text.lines().filter(|l| l.starts_with("confab_projector_lag{")) {
                let name = line.split("projector=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("?");
                let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(-1.0);
                m.insert(name.to_string(), json!(value as i64));
            }
            Value::Object(m)
        }
    };
    println!("{out}");
    Ok(())
}
