//! `confab schemas`: check a schema file against the released history and a registry's
//! registered versions, register it, or print the event catalogue.

use anyhow::Context;
use clap::Subcommand;
use confab_core::avro::{value_subject, EVENT_SCHEMA};
use confab_core::config::Config;
use confab_core::schemas::{catalogue, check_against_history, HISTORY};
use confab_core::Topics;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum SchemasCommand {
    /// Check a schema (default: the one this build writes) against every released version and,
    /// with `--registry`, against every version registered for the events subject.
    Check {
        #[arg(long)]
        file: Option<PathBuf>,
        /// Base URL of a Confluent-compatible registry (default: none, history only).
        #[arg(long)]
        registry: Option<String>,
    },
    /// Register a schema (default: the one this build writes) under `<ns>.events-value`.
    Register {
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Print the event catalogue (Markdown) generated from the schema.
    Catalogue,
}

fn load(file: &Option<PathBuf>) -> anyhow::Result<String> {
    match file {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())),
        None => Ok(EVENT_SCHEMA.to_string()),
    }
}

pub async fn run(cfg: &Config, cmd: SchemasCommand) -> anyhow::Result<()> {
    let subject = value_subject(&Topics::new(&cfg.namespace).events);
    match cmd {
        SchemasCommand::Catalogue => print!("{}", catalogue(EVENT_SCHEMA)),
        SchemasCommand::Check { file, registry } => {
            let text = load(&file)?;
            let warnings = check_against_history(&text, HISTORY).map_err(|e| anyhow::anyhow!(e))?;
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            let mut registered = 0;
            if let Some(url) = registry {
                let http = reqwest::Client::new();
                let base = url.trim_end_matches('/');
                let resp = http
                    .post(format!("{base}/compatibility/subjects/{subject}/versions/latest"))
                    .json(&serde_json::json!({"schema": text}))
                    .send()
                    .await
                    .with_context(|| format!("asking {base}"))?;
                let status = resp.status();
                let verdict: serde_json::Value = resp.json().await?;
                if status.as_u16() != 404 {
                    anyhow::ensure!(status.is_success(), "registry answered {status}: {verdict}");
                    anyhow::ensure!(
                        verdict["is_compatible"] == true,
                        "incompatible with the registered versions of {subject}: {}",
                        verdict["messages"]
                    );
                    registered = 1;
                }
            }
            println!(
                "{}",
                serde_json::json!({"compatible": true, "history_versions": HISTORY.len(), "checked_registry": registered == 1, "warnings": warnings})
            );
        }
        SchemasCommand::Register { file } => {
            let text = load(&file)?;
            check_against_history(&text, HISTORY).map_err(|e| anyhow::anyhow!(e))?;
            let source = confab_distributed::HttpSchemaSource::new(&cfg.registry.url, &cfg.registry.write_key)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let id = confab_core::ports::SchemaSource::register(&source, &subject, &text)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::json!({"subject": subject, "id": id}));
        }
    }
    Ok(())
}
