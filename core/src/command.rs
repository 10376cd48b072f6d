//! Commands (gateway -> ingest, topic `<ns>.commands`) and replies (ingest -> gateway, topic
//! `<ns>.replies`). Both are internal JSON records, not part of the data teams' contract.
//!
//! A command's `workspace_id` and `user_id` come from the verified token, never from the client.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::ChannelKind;
use crate::files::Attachment;
use crate::ErrorCode;

/// Where the reply to a command goes: a gateway process and, for WebSocket sends, a connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplyTo {
    pub gateway_id: String,
    pub conn_id: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Command {
    pub command_id: Uuid,
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    /// The channel the command is about (for a read marker: the channel read).
    pub channel_id: Uuid,
    pub reply_to: ReplyTo,
    /// Unix milliseconds at the gateway.
    pub issued_at: i64,
    /// The client's correlation id, echoed in the reply. Required on sends, where it is the
    /// dedup key: a retried send with the same id yields the original message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    pub body: CommandBody,
    /// The body's sensitive fields (texts, file names) as the commands log holds them, each
    /// sealed under the command's own transit key (id: `command_id`); those fields of `body`
    /// are then blank. Ingest opens them and destroys the key once the command is sequenced
    /// (`keyring::SealingSink`, `keyring::SealingLog`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed: Vec<SealedCommandField>,
}

/// One sealed field of a command: `field` is its label (`text`, `file_name:<file_id>`),
/// `nonce` and `ciphertext` base64.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealedCommandField {
    pub field: String,
    pub nonce: String,
    pub ciphertext: String,
}

impl Command {
    /// The stream the command is sequenced in: the channel's own, except read markers, which
    /// go to the user's own stream (they are the user's events, in the user's order).
    pub fn stream_id(&self) -> Uuid {
        match self.body {
            CommandBody::MarkRead { .. } => self.user_id,
            _ => self.channel_id,
        }
    }

    /// The partitioning key shared by commands and events: one stream, one partition.
    pub fn key(&self) -> String {
        channel_key(&self.workspace_id, &self.stream_id())
    }
}

/// The id of the direct message between exactly these people (the opener included): the same
/// set always gives the same channel, so opening a DM twice finds the first one.
pub fn dm_channel_id(workspace_id: &Uuid, people: &[Uuid]) -> Uuid {
    let mut people = people.to_vec();
    people.sort();
    people.dedup();
    let name: Vec<String> = people.iter().map(Uuid::to_string).collect();
    Uuid::new_v5(workspace_id, name.join(",").as_bytes())
}

pub fn channel_key(workspace_id: &Uuid, channel_id: &Uuid) -> String {
    format!("{workspace_id}:{channel_id}")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommandBody {
    /// The command's `client_msg_id` is its dedup key.
    SendMessage {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread_ts: Option<Uuid>,
        #[serde(default)]
        also_in_channel: bool,
        /// Files shared in this channel that the message carries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        file_ids: Vec<Uuid>,
    },
    JoinChannel,
    CreateChannel {
        name: String,
        channel_kind: ChannelKind,
        members: Vec<Uuid>,
    },
    RenameChannel {
        name: String,
    },
    ArchiveChannel {
        archived: bool,
    },
    LeaveChannel,
    Invite {
        user_id: Uuid,
    },
    Kick {
        user_id: Uuid,
    },
    Pin {
        message_id: Uuid,
        pinned: bool,
    },
    /// The user read the command's channel up to `seq` (sequenced in the user's own stream).
    MarkRead {
        seq: i64,
    },
    EditMessage {
        message_id: Uuid,
        text: String,
    },
    DeleteMessage {
        message_id: Uuid,
    },
    React {
        message_id: Uuid,
        emoji: String,
        add: bool,
    },
    /// A finished upload (checked by the gateway against the object store) joins the channel.
    ShareFile {
        file: Attachment,
    },
    /// The uploader deletes a file.
    DeleteFile {
        file_id: Uuid,
    },
    /// An admin action to record in the workspace's audit stream (the command's `channel_id` is
    /// the workspace's id). Only the admin API sends it.
    Audit {
        action: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject_id: Option<Uuid>,
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        details: std::collections::BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reply {
    pub reply_to: ReplyTo,
    pub command_id: Uuid,
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The message is in the log (or already was: a deduplicated retry gets the original ids).
    Posted {
        message_id: Uuid,
        seq: i64,
        ts: i64,
        duplicate: bool,
    },
    /// A membership or channel change is in the log (or needed no event).
    Done {
        seq: i64,
    },
    Rejected {
        code: ErrorCode,
        message: String,
    },
}
