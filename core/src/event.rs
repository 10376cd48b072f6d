//! Canonical events: facts in past tense, as written to `<ns>.events` in Avro
//! (`schemas/avro/event.avsc`). Projectors apply them idempotently.

use std::collections::BTreeMap;
use uuid::Uuid;

use crate::files::Attachment;
use crate::sealing::{SealedBox, SealedField};

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: Uuid,
    pub workspace_id: Uuid,
    /// The channel the event is about (for a read marker: the channel read).
    pub channel_id: Uuid,
    pub actor_id: Uuid,
    /// Unix milliseconds.
    pub occurred_at: i64,
    /// Per stream ([`Event::stream_id`]), gap-free, starting at 1 (a channel's creation).
    pub seq: i64,
    pub schema_version: i32,
    pub payload: Payload,
    /// How its sensitive fields are held (crypto-shredding, schema v5).
    pub sealing: Sealing,
}

/// An event's sensitive fields as the log holds them, and the keys it erases. Inside a process
/// (before sealing, after opening) `boxes` is empty and the fields are in the payload.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sealing {
    /// Fields sealed for the log: while a field's box is here, the field is blank in the payload.
    pub boxes: Vec<SealedBox>,
    /// Fields whose key was destroyed (the message was deleted or edited, or expired): they
    /// stay blank for good. Set when an event is opened, never written to the log.
    pub redacted: Vec<SealedField>,
    /// Data keys this event destroys once it is committed (an edit: the previous version's; a
    /// delete: the current version's). The erasure projector destroys them.
    pub destroys_keys: Vec<Uuid>,
}

impl Sealing {
    /// Whether `field` was erased (its key destroyed before the event was read).
    pub fn is_redacted(&self, field: SealedField) -> bool {
        self.redacted.contains(&field)
    }
}

/// What kind of conversation a channel is. DMs and group DMs have fixed members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
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
        attachments: Vec<Attachment>,
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
    /// The actor read the event's channel up to the channel's `read_seq`. Sequenced in the
    /// actor's own stream, whose id the log's record carries in its `channel_id` field.
    ReadMarked {
        read_seq: i64,
    },
    /// The actor uploaded a file into this channel (its bytes are in the object store).
    FileShared {
        file: Attachment,
    },
    /// The uploader deleted the file: no more download URLs, and its bytes are removed.
    FileDeleted {
        file_id: Uuid,
    },
    /// The audit log: an admin did `action` (see [`AdminAction`]) to `subject_id` (a user or a
    /// channel, when it names one). Sequenced in the workspace's own stream, whose id (the
    /// workspace's) the record carries as its `channel_id`; the actor is nil (the admin key).
    AdminActed {
        action: String,
        subject_id: Option<Uuid>,
        details: BTreeMap<String, String>,
    },
}

/// The admin actions the audit log records ([`Payload::AdminActed`]'s `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    WorkspaceCreated,
    UserCreated,
    TokenMinted,
    TokensRevoked,
    UserDeactivated,
    UserReactivated,
    RetentionChanged,
    ChannelCreated,
    /// The workspace is gone: every projection removes what it holds of it, and its key is
    /// destroyed (so every text and file name of it in the log is erased).
    WorkspaceDeleted,
}

impl AdminAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminAction::WorkspaceCreated => "workspace_created",
            AdminAction::UserCreated => "user_created",
            AdminAction::TokenMinted => "token_minted",
            AdminAction::TokensRevoked => "tokens_revoked",
            AdminAction::UserDeactivated => "user_deactivated",
            AdminAction::UserReactivated => "user_reactivated",
            AdminAction::RetentionChanged => "retention_changed",
            AdminAction::ChannelCreated => "channel_created",
            AdminAction::WorkspaceDeleted => "workspace_deleted",
        }
    }
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
            Payload::AdminActed { .. } => "admin_acted",
        }
    }
}

impl Event {
    /// The stream the event is sequenced in (`seq` counts per stream): the channel's, except
    /// for read markers, which are in the actor's own stream.
    pub fn stream_id(&self) -> Uuid {
        match self.payload {
            Payload::ReadMarked { .. } => self.actor_id,
            _ => self.channel_id,
        }
    }

    /// Whether the event is in a workspace's audit stream rather than a conversation (no
    /// projection of conversations applies it).
    pub fn is_audit(&self) -> bool {
        matches!(self.payload, Payload::AdminActed { .. })
    }

    /// The workspace this event deletes, if it records a workspace's deletion.
    pub fn deleted_workspace(&self) -> Option<Uuid> {
        match &self.payload {
            Payload::AdminActed { action, .. } if action == AdminAction::WorkspaceDeleted.as_str() => {
                Some(self.workspace_id)
            }
            _ => None,
        }
    }

    /// The partitioning key shared by commands and events: one stream, one partition.
    pub fn key(&self) -> String {
        crate::command::channel_key(&self.workspace_id, &self.stream_id())
    }
}
