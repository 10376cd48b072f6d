//! Commands (gateway -> ingest, topic `<ns>.commands`) and replies (ingest -> gateway, topic
//! `<ns>.replies`). Both are internal JSON records, not part of the data teams' contract.
//!
//! A command's `workspace_id` and `user_id` come from the verified token, never from the client.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::protocol::ErrorCode;

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
    pub channel_id: Uuid,
    pub reply_to: ReplyTo,
    /// Unix milliseconds at the gateway.
    pub issued_at: i64,
    /// The client's correlation id, echoed in the reply (and the dedup key of sends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    pub body: CommandBody,
}

impl Command {
    /// The partitioning key shared by commands and events: one channel, one partition.
    pub fn key(&self) -> String {
        channel_key(&self.workspace_id, &self.channel_id)
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
    SendMessage {
        text: String,
        client_msg_id: String,
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
        channel_kind: crate::event::ChannelKind,
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
    /// Keyed by the user's own stream (`channel_id` = the user's id).
    MarkRead {
        channel_id: Uuid,
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
        file: crate::files::Attachment,
    },
    /// The uploader deletes a file.
    DeleteFile {
        file_id: Uuid,
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
