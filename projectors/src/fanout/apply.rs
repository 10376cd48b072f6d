use confab_core::event::{Event, Payload};
use confab_core::ports::{Fanout, FanoutItem};
use confab_core::protocol::{ServerFrame, ThreadView};
use std::sync::Arc;
use uuid::Uuid;

use crate::{Projection, ProjectorError};

pub struct FanoutProjection {
    fanout: Arc<dyn Fanout>,
}

impl FanoutProjection {
    pub fn new(fanout: Arc<dyn Fanout>) -> Self {
        Self { fanout }
    }
}

/// Who an event's frame reaches beyond the channel's current members.
#[derive(Debug, Default, PartialEq)]
pub struct Membership {
    /// Become members with this event (and receive it).
    pub add: Vec<Uuid>,
    /// Stop being members after receiving it.
    pub remove: Vec<Uuid>,
}

/// The frame connected members receive for an event, and the membership change it makes.
pub fn frame_for(e: &Event) -> (ServerFrame, Membership) {
    let (workspace_id, channel_id, seq, user_id) = (e.workspace_id, e.channel_id, e.seq, e.actor_id);
    let none = Membership::default;
    match &e.payload {
        Payload::MessagePosted { thread, .. } => {
            let parent_thread = thread.as_ref().map(|t| ThreadView {
                reply_count: t.reply_count,
                reply_users: t.reply_users.clone(),
                last_reply_at: e.occurred_at,
            });
            (ServerFrame::New { message: e.posted_view().expect("a posted message"), parent_thread }, none())
        }
        Payload::MessageEdited { message_id, text } => (
            ServerFrame::Edited {
                workspace_id,
                channel_id,
                message_id: *message_id,
                text: text.clone(),
                edited_at: e.occurred_at,
                seq,
                user_id,
            },
            none(),
        ),
        Payload::MessageDeleted { message_id, file_ids } => (
            ServerFrame::Deleted {
                workspace_id,
                channel_id,
                message_id: *message_id,
                seq,
                user_id,
                file_ids: file_ids.clone(),
            },
            none(),
        ),
        Payload::FileShared { file } => {
            (ServerFrame::FileShared { workspace_id, channel_id, file: file.clone(), user_id, seq }, none())
        }
        Payload::FileDeleted { file_id } => {
            (ServerFrame::FileDeleted { workspace_id, channel_id, file_id: *file_id, user_id, seq }, none())
        }
        Payload::ReactionChanged { message_id, emoji, added, users } => {
            let (message_id, emoji, users) = (*message_id, emoji.clone(), users.clone());
            let frame = if *added {
                ServerFrame::ReactionAdded { workspace_id, channel_id, message_id, emoji, user_id, users, seq }
            } else {
                ServerFrame::ReactionRemoved { workspace_id, channel_id, message_id, emoji, user_id, users, seq }
            };
            (frame, none())
        }
        Payload::ChannelCreated { name, kind, members } => (
            ServerFrame::Created {
                workspace_id,
                channel_id,
                name: name.clone(),
                is_private: kind.is_private(),
                kind: *kind,
                members: if members.len() <= confab_core::protocol::MEMBERS_IN_FRAME {
                    members.clone()
                } else {
                    vec![]
                },
                member_count: members.len(),
                seq,
            },
            Membership { add: members.clone(), remove: vec![] },
        ),
        Payload::MemberJoined { user_id: joined } => (
            ServerFrame::Joined {
                workspace_id,
                channel_id,
                user_id: *joined,
                seq,
                by: (*joined != user_id).then_some(user_id),
            },
            Membership { add: vec![*joined], remove: vec![] },
        ),
        Payload::MemberLeft { user_id: left } => (
            ServerFrame::Left { workspace_id, channel_id, user_id: *left, by: user_id, seq },
            Membership { add: vec![], remove: vec![*left] },
        ),
        Payload::ChannelRenamed { name } => {
            (ServerFrame::Renamed { workspace_id, channel_id, name: name.clone(), user_id, seq }, none())
        }
        Payload::ChannelArchived { archived } => {
            (ServerFrame::Archived { workspace_id, channel_id, archived: *archived, user_id, seq }, none())
        }
        Payload::MessagePinned { message_id, pinned } => (
            ServerFrame::Pinned { workspace_id, channel_id, message_id: *message_id, pinned: *pinned, user_id, seq },
            none(),
        ),
        // the user's own stream reaches only their connections (the gateways subscribe every
        // connection to its user's stream)
        Payload::ReadMarked { channel_id: read, seq: read_seq } => {
            (ServerFrame::Marked { workspace_id, channel_id: *read, seq: *read_seq }, none())
        }
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
                let (frame, membership) = frame_for(e);
                FanoutItem {
                    workspace_id: e.workspace_id,
                    channel_id: e.channel_id,
                    seq: e.seq,
                    frame_json: serde_json::to_string(&frame).expect("frame serializes"),
                    add_members: membership.add,
                    remove_members: membership.remove,
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
