//! Events to key destructions: the keys an event lists, grouped per workspace; and the sweep of
//! keys past their workspace's retention.

use confab_core::event::Event;
use confab_core::keyring::Keyring;
use confab_core::ports::PortError;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::Projection;

/// How often expired keys' bytes are swept (where the key store does not expire them itself).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

pub struct ErasureProjection {
    keyring: Arc<Keyring>,
    last_sweep: Mutex<Instant>,
}

impl ErasureProjection {
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Self { keyring, last_sweep: Mutex::new(Instant::now() - SWEEP_EVERY) }
    }
}

impl Projection for ErasureProjection {
    fn name(&self) -> &'static str {
        "erasure"
    }

    async fn apply(&self, events: &[Event]) -> Result<(), PortError> {
        let mut per_workspace: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        for event in events.iter().filter(|e| !e.sealing.destroys_keys.is_empty()) {
            per_workspace.entry(event.workspace_id).or_default().extend(&event.sealing.destroys_keys);
        }
        for (workspace_id, keys) in per_workspace {
            self.keyring.destroy(workspace_id, &keys).await?;
            tracing::debug!(%workspace_id, keys = keys.len(), "data keys destroyed");
        }
        for workspace_id in events.iter().filter_map(Event::deleted_workspace) {
            self.keyring.destroy_workspace(workspace_id).await?;
            tracing::info!(%workspace_id, "workspace key destroyed");
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), PortError> {
        self.keyring.check().await
    }

    /// Called about once a second by the runner: sweeps expired keys every [`SWEEP_EVERY`].
    async fn flush(&self) -> Result<(), PortError> {
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.elapsed() < SWEEP_EVERY {
                return Ok(());
            }
            *last = Instant::now();
        }
        let swept = self.keyring.sweep_expired().await?;
        if swept > 0 {
            tracing::info!(keys = swept, "expired data keys swept");
        }
        Ok(())
    }
}
