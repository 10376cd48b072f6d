//! Canonical events: facts in past tense, as written to `<ns>.events` in Avro
//! (`schemas/avro/event.avsc`). Projectors apply them idempotently.

use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: Uuid,
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    pub actor_id: Uuid,
    /// Unix milliseconds.
    pub occurred_at: i64,
    /// Per-channel, gap-free, starting at 1 with the channel's creation.
    pub seq: i64,
    pub schema_version: i32,
    pub payload: Payload,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    MessagePosted { message_id: Uuid, client_msg_id: String, text: String, thread_ts: Option<Uuid> },
    ChannelCreated { name: String, is_private: bool, members: Vec<Uuid> },
    MemberJoined { user_id: Uuid },
    MessageEdited { message_id: Uuid, text: String },
    /// A tombstone: the text is gone from every projection.
    MessageDeleted { message_id: Uuid },
    /// `actor_id` added (or removed) `emoji`; `users` is everyone reacting with it afterwards.
    ReactionChanged { message_id: Uuid, emoji: String, added: bool, users: Vec<Uuid> },
}

impl Payload {
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::MessagePosted { .. } => "message_posted",
            Payload::ChannelCreated { .. } => "channel_created",
            Payload::MemberJoined { .. } => "member_joined",
            Payload::MessageEdited { .. } => "message_edited",
            Payload::MessageDeleted { .. } => "message_deleted",
            Payload::ReactionChanged { .. } => "reaction_changed",
        }
    }
}

impl Event {
    pub fn key(&self) -> String {
        crate::command::channel_key(&self.workspace_id, &self.channel_id)
    }

    /// The message as clients first see it, for a `MessagePosted` event.
    pub fn posted_view(&self) -> Option<crate::protocol::MessageView> {
        let Payload::MessagePosted { message_id, client_msg_id, text, thread_ts } = &self.payload else { return None };
        Some(crate::protocol::MessageView {
            workspace_id: self.workspace_id,
            channel_id: self.channel_id,
            message_id: *message_id,
            seq: self.seq,
            user_id: self.actor_id,
            text: text.clone(),
            ts: self.occurred_at,
            client_msg_id: Some(client_msg_id.clone()),
            thread_ts: *thread_ts,
            edited_at: None,
            deleted: false,
            reactions: Default::default(),
        })
    }
}
