//! The WebSocket protocol (documented in `docs/asyncapi.yaml`).
//!
//! Every frame is a JSON object with a `type`. Clients send [`ClientFrame`]s; the server sends
//! [`ServerFrame`]s. Bad input never closes the connection: it gets an `error` frame.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::error_code::ErrorCode;
use crate::event::ChannelKind;
use crate::files::Attachment;
use crate::presence::PresenceStatus;

/// Longest message text, in Unicode scalar values (Slack's own limit).
pub const MAX_TEXT_CHARS: usize = 40_000;
/// Largest frame the gateway reads; larger frames get `frame_too_large`.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;
/// Longest `client_msg_id`.
pub const MAX_CLIENT_MSG_ID: usize = 64;
/// Longest channel name.
pub const MAX_CHANNEL_NAME: usize = 80;
/// Distinct emoji on one message.
pub const MAX_REACTIONS_PER_MESSAGE: usize = 50;
/// Longest emoji name (`thumbsup`, `flag-fr`, or the character itself).
pub const MAX_EMOJI_LEN: usize = 64;
/// How long a typing indicator shows unless refreshed.
pub const TYPING_EXPIRES_MS: u64 = 6_000;
/// A connection's typing frames for one channel are coalesced to one per this interval.
pub const TYPING_MIN_INTERVAL_MS: u64 = 2_000;
/// Seconds between client pings the server expects.
pub const HEARTBEAT_INTERVAL_SECS: u64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ClientFrame {
    #[serde(rename = "ping")]
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<PingId>,
    },
    /// Post a message; with `thread_ts` (the parent's `message_id`) a thread reply, shown in
    /// the channel too when `also_send_to_channel`.
    #[serde(rename = "message:send")]
    Send {
        channel_id: Uuid,
        text: String,
        client_msg_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread_ts: Option<Uuid>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        also_send_to_channel: bool,
        /// Files shared in this channel (`POST /api/files`, then `.../complete`) to attach;
        /// with files, `text` may be empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        file_ids: Vec<Uuid>,
    },
    #[serde(rename = "channel:join")]
    Join {
        channel_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    /// Replace the text of your own message.
    #[serde(rename = "message:edit")]
    Edit {
        channel_id: Uuid,
        message_id: Uuid,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    /// Delete your own message: its text is gone from history and search.
    #[serde(rename = "message:delete")]
    Delete {
        channel_id: Uuid,
        message_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    #[serde(rename = "reaction:add")]
    ReactionAdd {
        channel_id: Uuid,
        message_id: Uuid,
        emoji: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    /// The user is typing in a channel; reaches the channel's other connected members and is
    /// never stored. Send it again every few seconds while typing.
    #[serde(rename = "typing:start")]
    Typing { channel_id: Uuid },
    #[serde(rename = "reaction:remove")]
    ReactionRemove {
        channel_id: Uuid,
        message_id: Uuid,
        emoji: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    /// Create a channel you will be a member of; `ok` carries its `channel_id`.
    #[serde(rename = "channel:create")]
    Create {
        name: String,
        #[serde(default)]
        is_private: bool,
        #[serde(default)]
        members: Vec<Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    /// Open (or find) the direct message with 1..=7 other users; `ok` carries its `channel_id`,
    /// the same every time for the same people.
    #[serde(rename = "dm:open")]
    DmOpen {
        user_ids: Vec<Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    #[serde(rename = "channel:rename")]
    Rename {
        channel_id: Uuid,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    /// Archive (`archived: true`, the default) or restore a channel; archived channels are read-only.
    #[serde(rename = "channel:archive")]
    Archive {
        channel_id: Uuid,
        #[serde(default = "yes")]
        archived: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    #[serde(rename = "channel:leave")]
    Leave {
        channel_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    #[serde(rename = "channel:invite")]
    Invite {
        channel_id: Uuid,
        user_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    /// Remove someone (the channel's creator only).
    #[serde(rename = "channel:kick")]
    Kick {
        channel_id: Uuid,
        user_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    #[serde(rename = "message:pin")]
    Pin {
        channel_id: Uuid,
        message_id: Uuid,
        #[serde(default = "yes")]
        pinned: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    /// After a reconnect: what the client last saw per channel (`seq`). The server replays what
    /// came after, then `resume:done`, then live events, each once and in order.
    #[serde(rename = "resume")]
    Resume { channels: std::collections::BTreeMap<Uuid, i64> },
    /// Say you are away (`away`) or back (`active`), on this device.
    #[serde(rename = "presence:set")]
    PresenceSet { status: PresenceStatus },
    /// You have read `channel_id` up to `seq` (a read marker; unread counts follow it).
    #[serde(rename = "channel:mark")]
    Mark {
        channel_id: Uuid,
        seq: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
}

fn yes() -> bool {
    true
}

/// Channels up to this size list their members in `channel:created`.
pub const MEMBERS_IN_FRAME: usize = 100;

/// Most people in a group DM, the opener included (Slack's limit).
pub const MAX_GROUP_DM: usize = 8;

/// Members a client may name in one `channel:create` (more join or are invited later).
pub const MAX_CREATE_MEMBERS: usize = 1_000;

/// Members one channel creation may carry at all (the admin API's bound, and ingest's): the
/// command must fit in one log record.
pub const MAX_CREATE_MEMBERS_ADMIN: usize = 10_000;

/// The frame types a client may send, for the `unknown_type` error.
pub const CLIENT_TYPES: &[&str] = &[
    "ping",
    "message:send",
    "channel:join",
    "message:edit",
    "message:delete",
    "reaction:add",
    "reaction:remove",
    "typing:start",
    "channel:create",
    "dm:open",
    "channel:rename",
    "channel:archive",
    "channel:leave",
    "channel:invite",
    "channel:kick",
    "message:pin",
    "channel:mark",
    "resume",
    "presence:set",
];

/// One user's presence, in `presence:change`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PresenceView {
    pub user_id: Uuid,
    pub status: PresenceStatus,
}

/// Missed events of a channel the server no longer has: fetch them over HTTP history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResumeGap {
    pub channel_id: Uuid,
    pub from_seq: i64,
    pub to_seq: i64,
}

/// A thread's summary, on its parent message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, utoipa::ToSchema)]
pub struct ThreadView {
    pub reply_count: i32,
    pub reply_users: Vec<Uuid>,
    /// Unix milliseconds of the newest reply.
    pub last_reply_at: i64,
}

/// A message as clients see it (in `message:new` and in history).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct MessageView {
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    pub message_id: Uuid,
    pub seq: i64,
    pub user_id: Uuid,
    pub text: String,
    /// Unix milliseconds.
    pub ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<Uuid>,
    /// A thread reply that is shown in the channel too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub also_in_channel: bool,
    /// On a thread's parent: its replies so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadView>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pinned: bool,
    /// Unix milliseconds of the last edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// A tombstone: the text is empty and the message can no longer be edited or reacted to.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Emoji -> users reacting with it.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub reactions: std::collections::BTreeMap<String, Vec<Uuid>>,
    /// Shared files the message carries (download URLs come from `GET /api/files/{id}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum ServerFrame {
    #[serde(rename = "hello")]
    Hello { conn_id: String, heartbeat_interval: u64, user_id: Uuid, workspace_id: Uuid },
    #[serde(rename = "pong")]
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<PingId>,
    },
    #[serde(rename = "message:ack")]
    Ack { client_msg_id: String, channel_id: Uuid, message_id: Uuid, seq: i64, ts: i64 },
    #[serde(rename = "message:new")]
    New {
        message: MessageView,
        /// On a thread reply: the parent's thread after it (reply count, repliers, last reply).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_thread: Option<ThreadView>,
    },
    #[serde(rename = "channel:joined")]
    Joined {
        workspace_id: Uuid,
        channel_id: Uuid,
        user_id: Uuid,
        seq: i64,
        /// Who added them, when invited.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Uuid>,
    },
    #[serde(rename = "message:edited")]
    Edited {
        workspace_id: Uuid,
        channel_id: Uuid,
        message_id: Uuid,
        text: String,
        edited_at: i64,
        seq: i64,
        user_id: Uuid,
    },
    #[serde(rename = "message:deleted")]
    Deleted {
        workspace_id: Uuid,
        channel_id: Uuid,
        message_id: Uuid,
        seq: i64,
        user_id: Uuid,
        /// The files it carried: deleted with it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        file_ids: Vec<Uuid>,
    },
    #[serde(rename = "reaction:added")]
    ReactionAdded {
        workspace_id: Uuid,
        channel_id: Uuid,
        message_id: Uuid,
        emoji: String,
        user_id: Uuid,
        users: Vec<Uuid>,
        seq: i64,
    },
    #[serde(rename = "reaction:removed")]
    ReactionRemoved {
        workspace_id: Uuid,
        channel_id: Uuid,
        message_id: Uuid,
        emoji: String,
        user_id: Uuid,
        users: Vec<Uuid>,
        seq: i64,
    },
    /// Someone is typing; show it for `expires_in_ms` unless another arrives.
    #[serde(rename = "typing")]
    Typing { workspace_id: Uuid, channel_id: Uuid, user_id: Uuid, expires_in_ms: u64 },
    #[serde(rename = "channel:created")]
    /// `members` lists everyone for channels of up to [`MEMBERS_IN_FRAME`] people (and DMs);
    /// for bigger ones it is empty and `member_count` says how many (the list is at
    /// `GET /api/channels/{id}`): a 10,000-member channel must not send 10,000 ids to 10,000 sockets.
    Created {
        workspace_id: Uuid,
        channel_id: Uuid,
        name: String,
        is_private: bool,
        kind: ChannelKind,
        members: Vec<Uuid>,
        member_count: usize,
        seq: i64,
    },
    /// `user_id` left, or was removed by `by`.
    #[serde(rename = "channel:left")]
    Left { workspace_id: Uuid, channel_id: Uuid, user_id: Uuid, by: Uuid, seq: i64 },
    #[serde(rename = "channel:renamed")]
    Renamed { workspace_id: Uuid, channel_id: Uuid, name: String, user_id: Uuid, seq: i64 },
    #[serde(rename = "channel:archived")]
    Archived { workspace_id: Uuid, channel_id: Uuid, archived: bool, user_id: Uuid, seq: i64 },
    #[serde(rename = "message:pinned")]
    Pinned { workspace_id: Uuid, channel_id: Uuid, message_id: Uuid, pinned: bool, user_id: Uuid, seq: i64 },
    /// A file was uploaded into the channel (messages attach it by `file_id`).
    #[serde(rename = "file:shared")]
    FileShared { workspace_id: Uuid, channel_id: Uuid, file: Attachment, user_id: Uuid, seq: i64 },
    /// A file was deleted (by its uploader, or with the message carrying it): its links stop working.
    #[serde(rename = "file:deleted")]
    FileDeleted { workspace_id: Uuid, channel_id: Uuid, file_id: Uuid, user_id: Uuid, seq: i64 },
    /// To your own connections: you read `channel_id` up to `seq` (on another device, maybe).
    #[serde(rename = "channel:marked")]
    Marked { workspace_id: Uuid, channel_id: Uuid, seq: i64 },
    /// The end of a resume's replay: each channel's `seq` now, gaps to fetch over HTTP, and
    /// named channels the user is not (or no longer) a member of.
    #[serde(rename = "resume:done")]
    ResumeDone {
        replayed: usize,
        channels: std::collections::BTreeMap<Uuid, i64>,
        gaps: Vec<ResumeGap>,
        not_members: Vec<Uuid>,
    },
    /// Users of the workspace whose presence changed (gathered over a short window).
    #[serde(rename = "presence:change")]
    PresenceChange { workspace_id: Uuid, users: Vec<PresenceView> },
    /// A command without a message of its own succeeded (sent when it had a `client_msg_id`).
    #[serde(rename = "ok")]
    Ok { client_msg_id: String, channel_id: Uuid, seq: i64 },
    #[serde(rename = "error")]
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
}

impl ServerFrame {
    /// The frame's `type`, as it is serialized.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerFrame::Hello { .. } => "hello",
            ServerFrame::Pong { .. } => "pong",
            ServerFrame::Ack { .. } => "message:ack",
            ServerFrame::New { .. } => "message:new",
            ServerFrame::Joined { .. } => "channel:joined",
            ServerFrame::Edited { .. } => "message:edited",
            ServerFrame::Deleted { .. } => "message:deleted",
            ServerFrame::ReactionAdded { .. } => "reaction:added",
            ServerFrame::ReactionRemoved { .. } => "reaction:removed",
            ServerFrame::Typing { .. } => "typing",
            ServerFrame::Created { .. } => "channel:created",
            ServerFrame::Left { .. } => "channel:left",
            ServerFrame::Renamed { .. } => "channel:renamed",
            ServerFrame::Archived { .. } => "channel:archived",
            ServerFrame::Pinned { .. } => "message:pinned",
            ServerFrame::FileShared { .. } => "file:shared",
            ServerFrame::FileDeleted { .. } => "file:deleted",
            ServerFrame::Marked { .. } => "channel:marked",
            ServerFrame::ResumeDone { .. } => "resume:done",
            ServerFrame::PresenceChange { .. } => "presence:change",
            ServerFrame::Ok { .. } => "ok",
            ServerFrame::Error { .. } => "error",
        }
    }
}

/// Why a frame could not be turned into a [`ClientFrame`], as an error frame.
#[derive(Debug, PartialEq)]
pub struct FrameError {
    pub code: ErrorCode,
    pub message: String,
    pub client_msg_id: Option<String>,
}

impl FrameError {
    pub fn into_frame(self) -> ServerFrame {
        ServerFrame::Error { code: self.code, message: self.message, client_msg_id: self.client_msg_id }
    }
}

/// Parses and validates one text frame. Validation here is a fast path for the user; ingest
/// validates again, authoritatively.
/// Bytes of a ping's text id.
pub const MAX_PING_ID_BYTES: usize = 128;

/// A ping's id, echoed exactly in its pong: an integer or a short text. A float could come
/// back other than it went (JSON parsers round them; the client-frame fuzzer found one), and
/// an object would be echoed at any size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PingId {
    Integer(i64),
    Text(String),
}

pub fn parse_client_frame(raw: &str) -> Result<ClientFrame, FrameError> {
    if raw.len() > MAX_FRAME_BYTES {
        return Err(FrameError {
            code: ErrorCode::FrameTooLarge,
            message: format!("frame is {} bytes; the limit is {MAX_FRAME_BYTES}", raw.len()),
            client_msg_id: None,
        });
    }
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| FrameError {
        code: ErrorCode::MalformedFrame,
        message: format!("frame is not valid JSON: {e}"),
        client_msg_id: None,
    })?;
    let client_msg_id = value.get("client_msg_id").and_then(|v| v.as_str()).map(str::to_owned);
    let err = |code, message: String| FrameError { code, message, client_msg_id: client_msg_id.clone() };
    let Some(obj) = value.as_object() else {
        return Err(err(ErrorCode::MalformedFrame, "frame must be a JSON object".into()));
    };
    let Some(ty) = obj.get("type").and_then(|t| t.as_str()).map(str::to_owned) else {
        return Err(err(ErrorCode::MalformedFrame, "frame has no string field `type`".into()));
    };
    if !CLIENT_TYPES.contains(&ty.as_str()) {
        return Err(err(
            ErrorCode::UnknownType,
            format!("unknown frame type `{ty}`; expected one of {}", CLIENT_TYPES.join(", ")),
        ));
    }
    let frame: ClientFrame = serde_json::from_value(value)
        .map_err(|e| err(ErrorCode::InvalidField, format!("invalid `{ty}` frame: {e}")))?;
    match &frame {
        ClientFrame::Send { text, client_msg_id, file_ids, .. } => {
            validate_client_msg_id(client_msg_id).map_err(|m| err(ErrorCode::InvalidField, m))?;
            validate_message(text, file_ids).map_err(|(c, m)| err(c, m))?;
        }
        ClientFrame::Edit { text, .. } => validate_text(text).map_err(|(c, m)| err(c, m))?,
        ClientFrame::Create { members, .. } if members.len() > MAX_CREATE_MEMBERS => {
            let message = format!("a new channel names at most {MAX_CREATE_MEMBERS} members; invite more later");
            return Err(err(ErrorCode::InvalidField, message));
        }
        ClientFrame::Create { name, .. } | ClientFrame::Rename { name, .. } => {
            validate_channel_name(name).map_err(|m| err(ErrorCode::InvalidField, m))?
        }
        ClientFrame::DmOpen { user_ids, .. } if user_ids.is_empty() || user_ids.len() >= MAX_GROUP_DM => {
            let message = format!("a direct message takes 1..={} other people", MAX_GROUP_DM - 1);
            return Err(err(ErrorCode::InvalidField, message));
        }
        ClientFrame::ReactionAdd { emoji, .. } | ClientFrame::ReactionRemove { emoji, .. } => {
            validate_emoji(emoji).map_err(|m| err(ErrorCode::InvalidField, m))?
        }
        ClientFrame::Ping { id: Some(PingId::Text(id)) } if id.len() > MAX_PING_ID_BYTES => {
            let message = format!("a ping's id is an integer or at most {MAX_PING_ID_BYTES} bytes of text");
            return Err(err(ErrorCode::InvalidField, message));
        }
        _ => {}
    }
    Ok(frame)
}

/// A new message's text and attachments: text as [`validate_text`], except that a message
/// with files may have none; at most [`crate::files::MAX_ATTACHMENTS`] distinct files.
pub fn validate_message(text: &str, file_ids: &[Uuid]) -> Result<(), (ErrorCode, String)> {
    if file_ids.len() > crate::files::MAX_ATTACHMENTS {
        return Err((
            ErrorCode::InvalidField,
            format!("a message carries at most {} files", crate::files::MAX_ATTACHMENTS),
        ));
    }
    let distinct: std::collections::HashSet<&Uuid> = file_ids.iter().collect();
    if distinct.len() != file_ids.len() {
        return Err((ErrorCode::InvalidField, "file_ids names a file twice".into()));
    }
    match validate_text(text) {
        Err((ErrorCode::EmptyText, _)) if !file_ids.is_empty() => Ok(()),
        other => other,
    }
}

pub fn validate_client_msg_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_CLIENT_MSG_ID {
        return Err(format!("client_msg_id must be 1..={MAX_CLIENT_MSG_ID} bytes"));
    }
    Ok(())
}

/// A channel name: see [`crate::names`].
pub fn validate_channel_name(name: &str) -> Result<(), String> {
    crate::names::validate_name("channel name", name, MAX_CHANNEL_NAME)
}

pub fn validate_emoji(emoji: &str) -> Result<(), String> {
    let hidden = |c: char| crate::names::is_hidden_or_control(c) && c != '\u{200D}'; // ZWJ joins emoji
    if emoji.is_empty()
        || emoji.len() > MAX_EMOJI_LEN
        || emoji.chars().any(|c| c.is_whitespace() || c == ':' || hidden(c))
    {
        return Err(format!(
            "emoji must be 1..={MAX_EMOJI_LEN} bytes without spaces or colons (`thumbsup`, not `:thumbsup:`)"
        ));
    }
    Ok(())
}

pub fn validate_text(text: &str) -> Result<(), (ErrorCode, String)> {
    if text.trim().is_empty() {
        return Err((ErrorCode::EmptyText, "text must not be empty".into()));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err((ErrorCode::TextTooLong, format!("text is {chars} characters; the limit is {MAX_TEXT_CHARS}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_send() {
        let ch = Uuid::new_v4();
        let f = parse_client_frame(&format!(
            r#"{{"type":"message:send","channel_id":"{ch}","text":"hi","client_msg_id":"c1"}}"#
        ))
        .unwrap();
        assert_eq!(
            f,
            ClientFrame::Send {
                channel_id: ch,
                text: "hi".into(),
                client_msg_id: "c1".into(),
                thread_ts: None,
                also_send_to_channel: false,
                file_ids: vec![]
            }
        );
    }

    #[test]
    fn rejects_bad_input_with_typed_codes() {
        assert_eq!(parse_client_frame("{nope").unwrap_err().code, ErrorCode::MalformedFrame);
        assert_eq!(parse_client_frame("[1]").unwrap_err().code, ErrorCode::MalformedFrame);
        let e = parse_client_frame(r#"{"type":"dance","client_msg_id":"x"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownType);
        assert_eq!(e.client_msg_id.as_deref(), Some("x"));
        let e = parse_client_frame(r#"{"type":"message:send","channel_id":"zz","text":"a","client_msg_id":"y"}"#)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidField);
        let long = "a".repeat(MAX_TEXT_CHARS + 1);
        let ch = Uuid::new_v4();
        let e = parse_client_frame(&format!(
            r#"{{"type":"message:send","channel_id":"{ch}","text":"{long}","client_msg_id":"z"}}"#
        ))
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::TextTooLong);
        assert_eq!(e.client_msg_id.as_deref(), Some("z"));
        let huge = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(MAX_FRAME_BYTES));
        assert_eq!(parse_client_frame(&huge).unwrap_err().code, ErrorCode::FrameTooLarge);
    }

    #[test]
    fn channel_creation_is_bounded_and_names_must_be_visible() {
        let create = |name: &str, members: usize| {
            let members: Vec<Uuid> = (0..members).map(|_| Uuid::new_v4()).collect();
            let frame = serde_json::json!({"type": "channel:create", "name": name, "members": members});
            parse_client_frame(&frame.to_string()).map(|_| ()).map_err(|e| e.code)
        };
        assert_eq!(create("team", MAX_CREATE_MEMBERS), Ok(()));
        assert_eq!(create("team", MAX_CREATE_MEMBERS + 1), Err(ErrorCode::InvalidField));
        assert_eq!(create("team\u{200B}", 0), Err(ErrorCode::InvalidField), "zero-width space");
        assert_eq!(create("\u{202E}maet", 0), Err(ErrorCode::InvalidField), "right-to-left override");
        let rename = serde_json::json!({"type": "channel:rename", "channel_id": Uuid::new_v4(), "name": "a\u{2066}b"});
        assert_eq!(parse_client_frame(&rename.to_string()).unwrap_err().code, ErrorCode::InvalidField);
        let react = serde_json::json!({"type": "reaction:add", "channel_id": Uuid::new_v4(), "message_id": Uuid::new_v4(), "emoji": "ok\u{200B}"});
        assert_eq!(parse_client_frame(&react.to_string()).unwrap_err().code, ErrorCode::InvalidField);
    }

    #[test]
    fn a_ping_id_is_an_integer_or_short_text_and_comes_back_exactly() {
        for (raw, id) in [
            (r#"{"type":"ping","id":42}"#, Some(PingId::Integer(42))),
            (r#"{"type":"ping","id":"beat-7"}"#, Some(PingId::Text("beat-7".into()))),
            (r#"{"type":"ping"}"#, None),
        ] {
            let frame = parse_client_frame(raw).unwrap();
            assert_eq!(frame, ClientFrame::Ping { id: id.clone() });
            let pong = serde_json::to_string(&ServerFrame::Pong { id: id.clone() }).unwrap();
            let back: serde_json::Value = serde_json::from_str(&pong).unwrap();
            let sent: serde_json::Value = serde_json::from_str(raw).unwrap();
            assert_eq!(back.get("id"), sent.get("id"), "echoed exactly: {pong}");
        }
        let long = format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(MAX_PING_ID_BYTES + 1));
        // the client-frame fuzzer's find: a float inside an object came back rounded
        let floats = r#"{"type":"ping","id":{"id":151555550001555001090753132}}"#;
        for raw in [r#"{"type":"ping","id":1.5}"#, floats, r#"{"type":"ping","id":[1]}"#, long.as_str()] {
            assert_eq!(parse_client_frame(raw).unwrap_err().code, ErrorCode::InvalidField, "{raw:.80}");
        }
    }

    #[test]
    fn error_codes_serialize_as_snake_case() {
        for code in [ErrorCode::NotAMember, ErrorCode::TokenExpired, ErrorCode::FrameTooLarge] {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(code.as_str()));
        }
    }

    #[test]
    fn type_name_is_the_serialized_type_of_every_frame() {
        let id = Uuid::new_v4();
        let message = MessageView {
            workspace_id: id,
            channel_id: id,
            message_id: id,
            seq: 1,
            user_id: id,
            text: "t".into(),
            ts: 0,
            client_msg_id: None,
            thread_ts: None,
            also_in_channel: false,
            thread: None,
            pinned: false,
            edited_at: None,
            deleted: false,
            reactions: Default::default(),
            attachments: vec![],
        };
        let file = Attachment { file_id: id, name: "a.txt".into(), size: 1, content_type: "text/plain".into() };
        let frames = vec![
            ServerFrame::Hello { conn_id: "c".into(), heartbeat_interval: 30, user_id: id, workspace_id: id },
            ServerFrame::Pong { id: None },
            ServerFrame::Ack { client_msg_id: "c".into(), channel_id: id, message_id: id, seq: 1, ts: 0 },
            ServerFrame::New { message, parent_thread: None },
            ServerFrame::Joined { workspace_id: id, channel_id: id, user_id: id, seq: 1, by: None },
            ServerFrame::Edited {
                workspace_id: id,
                channel_id: id,
                message_id: id,
                text: "t".into(),
                edited_at: 0,
                seq: 1,
                user_id: id,
            },
            ServerFrame::Deleted {
                workspace_id: id,
                channel_id: id,
                message_id: id,
                seq: 1,
                user_id: id,
                file_ids: vec![],
            },
            ServerFrame::ReactionAdded {
                workspace_id: id,
                channel_id: id,
                message_id: id,
                emoji: "e".into(),
                user_id: id,
                users: vec![],
                seq: 1,
            },
            ServerFrame::ReactionRemoved {
                workspace_id: id,
                channel_id: id,
                message_id: id,
                emoji: "e".into(),
                user_id: id,
                users: vec![],
                seq: 1,
            },
            ServerFrame::Typing { workspace_id: id, channel_id: id, user_id: id, expires_in_ms: 1 },
            ServerFrame::Created {
                workspace_id: id,
                channel_id: id,
                name: "n".into(),
                is_private: false,
                kind: ChannelKind::Public,
                members: vec![],
                member_count: 0,
                seq: 1,
            },
            ServerFrame::Left { workspace_id: id, channel_id: id, user_id: id, by: id, seq: 1 },
            ServerFrame::Renamed { workspace_id: id, channel_id: id, name: "n".into(), user_id: id, seq: 1 },
            ServerFrame::Archived { workspace_id: id, channel_id: id, archived: true, user_id: id, seq: 1 },
            ServerFrame::Pinned { workspace_id: id, channel_id: id, message_id: id, pinned: true, user_id: id, seq: 1 },
            ServerFrame::FileShared { workspace_id: id, channel_id: id, file, user_id: id, seq: 1 },
            ServerFrame::FileDeleted { workspace_id: id, channel_id: id, file_id: id, user_id: id, seq: 1 },
            ServerFrame::Marked { workspace_id: id, channel_id: id, seq: 1 },
            ServerFrame::ResumeDone { replayed: 0, channels: Default::default(), gaps: vec![], not_members: vec![] },
            ServerFrame::PresenceChange { workspace_id: id, users: vec![] },
            ServerFrame::Ok { client_msg_id: "c".into(), channel_id: id, seq: 1 },
            ServerFrame::Error { code: ErrorCode::Internal, message: "m".into(), client_msg_id: None },
        ];
        for frame in frames {
            let json = serde_json::to_value(&frame).unwrap();
            assert_eq!(json["type"], frame.type_name(), "{frame:?}");
        }
    }
}
