//! Events to key destructions: the keys an event lists, grouped per workspace.

use confab_core::event::Event;
use confab_core::keyring::Keyring;
use confab_core::ports::PortError;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

use crate::Projection;

pub struct ErasureProjection {
    keyring: Arc<Keyring>,
}

impl ErasureProjection {
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Self { keyring }
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
        Ok(())
    }

    async fn check(&self) -> Result<(), PortError> {
        self.keyring.check().await
    }
}
