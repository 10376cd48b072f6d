use confab_core::event::{Event, Payload};
use confab_core::ports::{MessageUpdate, Store};
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
            Payload::MessagePosted { .. } => {
                let ttl = self.ttl(e.workspace_id).await?;
                Ok(self.store.insert_message(&e.posted_view().expect("a posted message"), ttl).await?)
            }
            Payload::MessageEdited { message_id, text } => {
                let update = MessageUpdate::Edit { text: text.clone(), edited_at: e.occurred_at };
                Ok(self.store.update_message(e.workspace_id, e.channel_id, *message_id, &update, self.ttl(e.workspace_id).await?).await?)
            }
            Payload::MessageDeleted { message_id } => {
                Ok(self.store.update_message(e.workspace_id, e.channel_id, *message_id, &MessageUpdate::Delete, self.ttl(e.workspace_id).await?).await?)
            }
            Payload::ReactionChanged { message_id, emoji, users, .. } => {
                let update = MessageUpdate::Reactions { emoji: emoji.clone(), users: users.clone() };
                Ok(self.store.update_message(e.workspace_id, e.channel_id, *message_id, &update, self.ttl(e.workspace_id).await?).await?)
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
        // new messages are independent upserts and may be written concurrently; changes to a
        // message must land after its insert and in order, so they wait for the posts before
        // them and go one at a time
        let mut i = 0;
        while i < events.len() {
            let j = events[i..].iter().position(|e| !matches!(e.payload, Payload::MessagePosted { .. } | Payload::ChannelCreated { .. } | Payload::MemberJoined { .. })).map(|k| i + k).unwrap_or(events.len());
            stream::iter(events[i..j].iter().map(Ok)).try_for_each_concurrent(CONCURRENCY, |e| self.apply_one(e)).await?;
            if j < events.len() {
                self.apply_one(&events[j]).await?;
            }
            i = j + 1;
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), ProjectorError> {
        Ok(self.store.workspace(Uuid::nil()).await.map(|_| ())?)
    }
}

