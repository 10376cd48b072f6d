use confab_core::event::{Event, Payload};
use confab_core::ports::Store;
use confab_core::protocol::MessageView;
use futures::stream::{self, TryStreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

use crate::{Projection, ProjectorError};

const CONCURRENCY: usize = 64;

pub struct TimelineProjection {
    store: Arc<dyn Store>,
    retention: Mutex<HashMap<Uuid, i32>>,
}

impl TimelineProjection {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, retention: Mutex::new(HashMap::new()) }
    }

    async fn ttl(&self, ws: Uuid) -> Result<i32, ProjectorError> {
        if let Some(t) = self.retention.lock().expect("retention lock").get(&ws) {
            return Ok(*t);
        }
        let t = self.store.workspace(ws).await?.map(|w| w.retention_secs).unwrap_or(0);
        self.retention.lock().expect("retention lock").insert(ws, t);
        Ok(t)
    }

    async fn apply_one(&self, e: &Event) -> Result<(), ProjectorError> {
        match &e.payload {
            Payload::MessagePosted { message_id, client_msg_id, text, thread_ts } => {
                let ttl = self.ttl(e.workspace_id).await?;
                let view = MessageView {
                    workspace_id: e.workspace_id,
                    channel_id: e.channel_id,
                    message_id: *message_id,
                    seq: e.seq,
                    user_id: e.actor_id,
                    text: text.clone(),
                    ts: e.occurred_at,
                    client_msg_id: Some(client_msg_id.clone()),
                    thread_ts: *thread_ts,
                };
                Ok(self.store.insert_message(&view, ttl).await?)
            }
            Payload::ChannelCreated { name, is_private, .. } => {
                Ok(self.store.insert_channel(e.workspace_id, e.channel_id, name, *is_private, e.occurred_at).await?)
            }
            Payload::MemberJoined { .. } => Ok(()),
        }
    }
}

impl Projection for TimelineProjection {
    fn name(&self) -> &'static str {
        "timeline"
    }

    async fn apply(&self, events: &[Event]) -> Result<(), ProjectorError> {
        // rows are independent upserts, so they may be written concurrently
        stream::iter(events.iter().map(Ok)).try_for_each_concurrent(CONCURRENCY, |e| self.apply_one(e)).await
    }

    async fn check(&self) -> Result<(), ProjectorError> {
        Ok(self.store.workspace(Uuid::nil()).await.map(|_| ())?)
    }
}

