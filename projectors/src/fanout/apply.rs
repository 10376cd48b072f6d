use confab_core::event::{Event, Payload};
use confab_core::protocol::ServerFrame;
use confab_core::ports::{Fanout, FanoutItem};
use std::sync::Arc;

use crate::{Projection, ProjectorError};

pub struct FanoutProjection {
    fanout: Arc<dyn Fanout>,
}

impl FanoutProjection {
    pub fn new(fanout: Arc<dyn Fanout>) -> Self {
        Self { fanout }
    }
}

/// The frame connected members receive for an event, and who joins the channel with it.
pub fn frame_for(e: &Event) -> (ServerFrame, Vec<uuid::Uuid>) {
    match &e.payload {
        Payload::MessagePosted { .. } => (ServerFrame::New { message: e.posted_view().expect("a posted message") }, vec![]),
        Payload::MessageEdited { message_id, text } => (
            ServerFrame::Edited {
                workspace_id: e.workspace_id,
                channel_id: e.channel_id,
                message_id: *message_id,
                text: text.clone(),
                edited_at: e.occurred_at,
                seq: e.seq,
                user_id: e.actor_id,
            },
            vec![],
        ),
        Payload::MessageDeleted { message_id } => (
            ServerFrame::Deleted { workspace_id: e.workspace_id, channel_id: e.channel_id, message_id: *message_id, seq: e.seq, user_id: e.actor_id },
            vec![],
        ),
        Payload::ReactionChanged { message_id, emoji, added, users } => {
            let (workspace_id, channel_id, message_id, emoji, user_id, users, seq) =
                (e.workspace_id, e.channel_id, *message_id, emoji.clone(), e.actor_id, users.clone(), e.seq);
            let frame = if *added {
                ServerFrame::ReactionAdded { workspace_id, channel_id, message_id, emoji, user_id, users, seq }
            } else {
                ServerFrame::ReactionRemoved { workspace_id, channel_id, message_id, emoji, user_id, users, seq }
            };
            (frame, vec![])
        }
        Payload::ChannelCreated { name, is_private, members } => (
            ServerFrame::Created { workspace_id: e.workspace_id, channel_id: e.channel_id, name: name.clone(), is_private: *is_private, seq: e.seq },
            members.clone(),
        ),
        Payload::MemberJoined { user_id } => (
            ServerFrame::Joined { workspace_id: e.workspace_id, channel_id: e.channel_id, user_id: *user_id, seq: e.seq },
            vec![*user_id],
        ),
    }
}

impl Projection for FanoutProjection {
    fn name(&self) -> &'static str {
        "fanout"
    }

    async fn apply(&self, events: &[Event]) -> Result<(), ProjectorError> {
        let items: Vec<FanoutItem> = events
            .iter()
            .map(|e| {
                let (frame, add_members) = frame_for(e);
                FanoutItem {
                    workspace_id: e.workspace_id,
                    channel_id: e.channel_id,
                    seq: e.seq,
                    frame_json: serde_json::to_string(&frame).expect("frame serializes"),
                    add_members,
                    ts: e.occurred_at,
                }
            })
            .collect();
        Ok(self.fanout.publish(&items).await.map(|_| ())?)
    }

    async fn check(&self) -> Result<(), ProjectorError> {
        Ok(self.fanout.ping().await?)
    }
}
