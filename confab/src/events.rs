//! `confab events`: prints the events log as operators and tests read it, one JSON line per
//! event, opened with the keyring: a message's text where its key still exists, and
//! `"redacted": ["text"]` (or `file_name:<id>`) where a delete, an edit or retention destroyed it. It reads through a
//! replay source of its own (`replay-events`), from the beginning unless `--from` says
//! otherwise, and stops at the end the log had when it started. The embedded mode's
//! `confab serve` must be stopped first (the data directory is locked while it runs).

use confab_core::config::{Config, Mode};
use confab_core::event::{Event, Payload};
use confab_core::ports::{PortError, ReplayFrom};
use confab_core::telemetry::Health;
use confab_core::Shutdown;
use confab_projectors::replay::replay;
use confab_projectors::Projection;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;

use crate::distributed::DistributedPlatform;
use crate::embedded::EmbeddedPlatform;
use crate::platform::Platform;

/// One event as a JSON line: the envelope, its kind, and for messages their id and text.
pub fn event_json(e: &Event) -> Value {
    let mut line = json!({
        "event_id": e.event_id,
        "workspace_id": e.workspace_id,
        "channel_id": e.channel_id,
        "actor_id": e.actor_id,
        "seq": e.seq,
        "occurred_at": e.occurred_at,
        "kind": e.payload.kind(),
    });
    let files = |files: &[&confab_core::files::Attachment]| -> Value {
        files.iter().map(|a| json!({"file_id": a.file_id, "name": a.name})).collect()
    };
    match &e.payload {
        Payload::MessagePosted { message_id, text, attachments, .. } => {
            line["message_id"] = json!(message_id);
            line["text"] = json!(text);
            line["files"] = files(&attachments.iter().collect::<Vec<_>>());
        }
        Payload::MessageEdited { message_id, text } => {
            line["message_id"] = json!(message_id);
            line["text"] = json!(text);
        }
        Payload::MessageDeleted { message_id, .. } => line["message_id"] = json!(message_id),
        Payload::FileShared { file } => line["files"] = files(&[file]),
        Payload::FileDeleted { file_id } => line["files"] = json!([{"file_id": file_id}]),
        Payload::AdminActed { action, subject_id, details } => {
            line["action"] = json!(action);
            line["subject_id"] = json!(subject_id);
            line["details"] = json!(details);
        }
        _ => {}
    }
    if !e.sealing.redacted.is_empty() {
        line["redacted"] = json!(e.sealing.redacted.iter().map(|f| f.label()).collect::<Vec<_>>());
    }
    if !e.sealing.destroys_keys.is_empty() {
        line["destroys_keys"] = json!(e.sealing.destroys_keys);
    }
    line
}

/// Prints each event it is given.
struct PrintEvents;

impl Projection for PrintEvents {
    fn name(&self) -> &'static str {
        "events"
    }
    async fn apply(&self, events: &[Event]) -> Result<(), PortError> {
        let mut out = std::io::stdout().lock();
        for e in events {
            writeln!(out, "{}", event_json(e)).map_err(|e| PortError::fatal(format!("writing to stdout: {e}")))?;
        }
        Ok(())
    }
    async fn check(&self) -> Result<(), PortError> {
        Ok(())
    }
}

pub async fn run(cfg: Config, from: ReplayFrom, shutdown: Shutdown) -> anyhow::Result<()> {
    let platform: Arc<dyn Platform> = match cfg.mode {
        Mode::Distributed => Arc::new(DistributedPlatform::new(cfg.clone(), shutdown.clone(), Health::default())),
        _ => Arc::new(EmbeddedPlatform::open(&crate::embedded::prepare(cfg.clone())?).await?),
    };
    let Some(source) = platform.replay_source("events", from).await? else { return Ok(()) };
    let summary = replay(source, &PrintEvents, None, shutdown, |_| {}).await?;
    anyhow::ensure!(summary.complete, "interrupted before the end of the log");
    Ok(())
}
