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

/// What kind of conversation a channel is. DMs and group DMs have fixed members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Public,
    Private,
    Dm,
    GroupDm,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Public => "public",
            ChannelKind::Private => "private",
            ChannelKind::Dm => "dm",
            ChannelKind::GroupDm => "group_dm",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "public" => ChannelKind::Public,
            "private" => ChannelKind::Private,
            "dm" => ChannelKind::Dm,
            "group_dm" => ChannelKind::GroupDm,
            _ => return None,
        })
    }
    /// Only public channels are visible to, and joinable by, non-members.
    pub fn is_private(self) -> bool {
        self != ChannelKind::Public
    }
    /// DMs and group DMs: members are fixed at creation.
    pub fn is_direct(self) -> bool {
        matches!(self, ChannelKind::Dm | ChannelKind::GroupDm)
    }
}

/// A thread's state after a reply: carried by the reply so projections can update the parent
/// idempotently.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ThreadState {
    pub reply_count: i32,
    /// Everyone who replied, in order of first reply.
    pub reply_users: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A new message; a thread reply when `thread_ts` is set (then `thread` is the parent's
    /// thread after it, and `also_in_channel` says it is shown in the channel too). It may
    /// carry files shared in the channel before it.
    MessagePosted {
        message_id: Uuid,
        client_msg_id: String,
        text: String,
        thread_ts: Option<Uuid>,
        also_in_channel: bool,
        thread: Option<ThreadState>,
        attachments: Vec<crate::files::Attachment>,
    },
    ChannelCreated {
        name: String,
        kind: ChannelKind,
        members: Vec<Uuid>,
    },
    /// `user_id` joined (actor = user_id) or was invited by the actor.
    MemberJoined {
        user_id: Uuid,
    },
    MessageEdited {
        message_id: Uuid,
        text: String,
    },
    /// A tombstone: the text is gone from every projection, and so are the files the message
    /// carried (`file_ids`).
    MessageDeleted {
        message_id: Uuid,
        file_ids: Vec<Uuid>,
    },
    /// `actor_id` added (or removed) `emoji`; `users` is everyone reacting with it afterwards.
    ReactionChanged {
        message_id: Uuid,
        emoji: String,
        added: bool,
        users: Vec<Uuid>,
    },
    /// `user_id` left (actor = user_id) or was removed by the actor.
    MemberLeft {
        user_id: Uuid,
    },
    ChannelRenamed {
        name: String,
    },
    /// Archived channels are read-only; `archived: false` restores one.
    ChannelArchived {
        archived: bool,
    },
    MessagePinned {
        message_id: Uuid,
        pinned: bool,
    },
    /// In the actor's own stream (`channel_id` = the user's id): they read `channel_id` up to `seq`.
    ReadMarked {
        channel_id: Uuid,
        seq: i64,
    },
    /// The actor uploaded a file into this channel (its bytes are in the object store).
    FileShared {
        file: crate::files::Attachment,
    },
    /// The uploader deleted the file: no more download URLs, and its bytes are removed.
    FileDeleted {
        file_id: Uuid,
    },
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
            Payload::MemberLeft { .. } => "member_left",
            Payload::ChannelRenamed { .. } => "channel_renamed",
            Payload::ChannelArchived { .. } => "channel_archived",
            Payload::MessagePinned { .. } => "message_pinned",
            Payload::ReadMarked { .. } => "read_marked",
            Payload::FileShared { .. } => "file_shared",
            Payload::FileDeleted { .. } => "file_deleted",
        }
    }
}

impl Event {
    pub fn key(&self) -> String {
        crate::command::channel_key(&self.workspace_id, &self.channel_id)
    }

    /// The message as clients first see it, for a `MessagePosted` event.
    pub fn posted_view(&self) -> Option<crate::protocol::MessageView> {
        let Payload::MessagePosted { message_id, client_msg_id, text, thread_ts, also_in_channel, attachments, .. } =
            &self.payload
        else {
            return None;
        };
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
            also_in_channel: *also_in_channel,
            thread: None,
            pinned: false,
            edited_at: None,
            deleted: false,
            reactions: Default::default(),
            attachments: attachments.clone(),
        })
    }
}
