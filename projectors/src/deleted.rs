//! Which workspaces were deleted, for the projections that must not bring one back: after a
//! deletion, events of the workspace still on their way (from other partitions, or replayed
//! from the log) are skipped. A deleted workspace is marked in the directory for good (the
//! workspace-wide deactivation that also refuses its tokens).

use confab_core::event::Event;
use confab_core::ports::{PortResult, Store};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long "not deleted" is believed (a deletion is for ever, so "deleted" is not re-read).
const LIVE_FOR: Duration = Duration::from_secs(10);
/// Workspaces remembered, at most (then the cache starts over).
const MAX_KNOWN: usize = 100_000;

pub struct DeletedWorkspaces {
    store: Arc<dyn Store>,
    known: Mutex<HashMap<Uuid, (Instant, bool)>>,
}

impl DeletedWorkspaces {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, known: Mutex::new(HashMap::new()) }
    }

    async fn is_deleted(&self, ws: Uuid) -> PortResult<bool> {
        if let Some((at, deleted)) = self.known.lock().unwrap_or_else(PoisonError::into_inner).get(&ws) {
            if *deleted || at.elapsed() < LIVE_FOR {
                return Ok(*deleted);
            }
        }
        let deleted = self.store.user_deactivated(ws, Uuid::nil()).await?;
        self.remember(ws, deleted);
        Ok(deleted)
    }

    fn remember(&self, ws: Uuid, deleted: bool) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(ws, (Instant::now(), deleted));
    }

    /// The events to apply: all but those of deleted workspaces, except each deletion itself
    /// (which the projection applies by removing what it holds of the workspace).
    pub async fn live<'a>(&self, events: &'a [Event]) -> PortResult<Cow<'a, [Event]>> {
        let mut deleted = Vec::new();
        let mut seen = Vec::new();
        for e in events {
            if !seen.contains(&e.workspace_id) {
                seen.push(e.workspace_id);
                if self.is_deleted(e.workspace_id).await? {
                    deleted.push(e.workspace_id);
                }
            }
            if let Some(ws) = e.deleted_workspace() {
                self.remember(ws, true);
            }
        }
        if deleted.is_empty() {
            return Ok(Cow::Borrowed(events));
        }
        let keep = |e: &&Event| !deleted.contains(&e.workspace_id) || e.deleted_workspace().is_some();
        Ok(Cow::Owned(events.iter().filter(keep).cloned().collect()))
    }
}
