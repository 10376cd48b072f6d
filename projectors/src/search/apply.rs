use confab_core::event::{Event, Payload};
use confab_core::ports::Store;
use confab_core::ports::{file_name_terms, PortError, SearchDoc, SearchIndex};
use confab_core::timeuuid_millis;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::deleted::DeletedWorkspaces;
use crate::Projection;

/// How often workspaces with a retention have their expired documents purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);

pub struct SearchProjection {
    index: Arc<dyn SearchIndex>,
    store: Arc<dyn Store>,
    /// Workspace -> retention in seconds (0: forever), as seen in the directory.
    retention: Mutex<HashMap<Uuid, i32>>,
    last_purge: Mutex<Instant>,
    /// Deleted workspaces, whose late or replayed events are skipped.
    deleted: DeletedWorkspaces,
}

/// Whether a message links somewhere (`has:link`).
pub fn has_link(text: &str) -> bool {
    text.contains("http://") || text.contains("https://")
}

fn doc(e: &Event) -> Option<SearchDoc> {
    let Payload::MessagePosted { message_id, text, thread_ts, attachments, .. } = &e.payload else { return None };
    Some(SearchDoc {
        workspace_id: e.workspace_id,
        channel_id: e.channel_id,
        message_id: *message_id,
        user_id: e.actor_id,
        text: text.clone(),
        ts: timeuuid_millis(message_id).unwrap_or(e.occurred_at),
        thread_ts: *thread_ts,
        has_link: has_link(text),
        has_file: !attachments.is_empty(),
        reactions_count: 0,
        file_names: attachments.iter().map(|a| file_name_terms(&a.name)).collect(),
    })
}

impl SearchProjection {
    pub fn new(index: Arc<dyn SearchIndex>, store: Arc<dyn Store>) -> Self {
        let deleted = DeletedWorkspaces::new(store.clone());
        Self { index, store, retention: Mutex::new(HashMap::new()), last_purge: Mutex::new(Instant::now()), deleted }
    }

    async fn note_workspace(&self, ws: Uuid) -> Result<(), PortError> {
        if self.retention.lock().expect("retention lock").contains_key(&ws) {
            return Ok(());
        }
        let t = self.store.workspace(ws).await?.map(|w| w.retention_secs).unwrap_or(0);
        self.retention.lock().expect("retention lock").insert(ws, t);
        Ok(())
    }

    /// Drops documents past their workspace's retention, at most every [`PURGE_EVERY`].
    async fn purge_if_due(&self) -> Result<(), PortError> {
        {
            let mut last = self.last_purge.lock().expect("purge lock");
            if last.elapsed() < PURGE_EVERY {
                return Ok(());
            }
            *last = Instant::now();
        }
        // a workspace's retention may have changed since it was noted: read it again
        let known: Vec<Uuid> = self.retention.lock().expect("retention lock").keys().copied().collect();
        for ws in known {
            let t = self.store.workspace(ws).await?.map(|w| w.retention_secs).unwrap_or(0);
            self.retention.lock().expect("retention lock").insert(ws, t);
        }
        let due: Vec<(Uuid, i32)> = self
            .retention
            .lock()
            .expect("retention lock")
            .iter()
            .filter(|(_, t)| **t > 0)
            .map(|(w, t)| (*w, *t))
            .collect();
        let now = chrono::Utc::now().timestamp_millis();
        for (ws, secs) in due {
            let n = self.index.expire(ws, now - secs as i64 * 1000).await?;
            if n > 0 {
                tracing::info!(workspace_id = %ws, removed = n, "expired messages removed from search");
            }
        }
        Ok(())
    }

    async fn write_docs(&self, docs: &mut Vec<SearchDoc>) -> Result<(), PortError> {
        if !docs.is_empty() {
            self.index.upsert(docs).await?;
            docs.clear();
        }
        Ok(())
    }
}

impl Projection for SearchProjection {
    fn name(&self) -> &'static str {
        "search"
    }

    async fn apply(&self, events: &[Event]) -> Result<(), PortError> {
        let events = self.deleted.live(events).await?;
        // posts go in one bulk write; an edit or delete first flushes the posts before it,
        // so each document sees its changes in log order
        let mut docs = Vec::new();
        for e in events.iter() {
            match &e.payload {
                Payload::MessagePosted { .. } => {
                    self.note_workspace(e.workspace_id).await?;
                    docs.extend(doc(e));
                }
                Payload::MessageEdited { message_id, text } => {
                    self.write_docs(&mut docs).await?;
                    if let Some(mut d) = self.index.get(e.workspace_id, *message_id).await? {
                        d.text = text.clone();
                        d.has_link = has_link(text);
                        self.index.upsert(&[d]).await?;
                    }
                }
                Payload::MessageDeleted { message_id, .. } => {
                    self.write_docs(&mut docs).await?;
                    self.index.delete(e.workspace_id, &[*message_id]).await?;
                }
                Payload::ReactionChanged { .. }
                | Payload::ChannelCreated { .. }
                | Payload::MemberJoined { .. }
                | Payload::MemberLeft { .. }
                | Payload::ChannelRenamed { .. }
                | Payload::ChannelArchived { .. }
                | Payload::MessagePinned { .. }
                | Payload::ReadMarked { .. }
                | Payload::FileShared { .. }
                | Payload::FileDeleted { .. } => {}
                Payload::AdminActed { .. } => {
                    if let Some(ws) = e.deleted_workspace() {
                        self.write_docs(&mut docs).await?;
                        let removed = self.index.expire(ws, i64::MAX).await?;
                        self.retention.lock().expect("retention lock").remove(&ws);
                        tracing::info!(workspace_id = %ws, removed, "deleted workspace removed from search");
                    }
                }
            }
        }
        self.write_docs(&mut docs).await?;
        // durability comes with `Projection::flush`, before the runner commits its position;
        // tantivy makes these searchable within its commit interval meanwhile
        self.purge_if_due().await
    }

    async fn flush(&self) -> Result<(), PortError> {
        self.index.flush().await
    }

    async fn check(&self) -> Result<(), PortError> {
        self.index.ping().await
    }
}
