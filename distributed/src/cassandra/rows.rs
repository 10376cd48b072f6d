//! Rows as the driver reads them, and their mapping to the port's types.

use confab_core::event::ChannelKind;
use confab_core::files::Attachment;
use confab_core::ports::{ChannelInfo, StoredMessage, ThreadSummary};
use scylla::value::{CqlTimestamp, CqlTimeuuid};
use std::collections::HashMap;
use uuid::Uuid;

pub(super) type MessageRow = (
    CqlTimeuuid,
    Option<i64>,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<CqlTimeuuid>,
    Option<CqlTimestamp>,
    Option<bool>,
    Option<HashMap<String, Vec<Uuid>>>,
    Option<bool>,
    Option<bool>,
    Option<i32>,
    Option<Vec<Uuid>>,
    Option<CqlTimestamp>,
    Option<Vec<HashMap<String, String>>>,
);

pub(super) const CHANNEL_COLUMNS: &str =
    "channel_id, name, is_private, kind, archived, created_by, created_at, members, last_seq";

pub(super) type ChannelRow = (
    Uuid,
    Option<String>,
    Option<bool>,
    Option<String>,
    Option<bool>,
    Option<Uuid>,
    Option<CqlTimestamp>,
    Option<Vec<Uuid>>,
    Option<i64>,
);

pub(super) fn channel_of(ws: Uuid, r: ChannelRow) -> ChannelInfo {
    let (channel_id, name, is_private, kind, archived, created_by, created_at, members, last_seq) = r;
    let kind = kind.as_deref().and_then(ChannelKind::parse).unwrap_or(if is_private.unwrap_or(false) {
        ChannelKind::Private
    } else {
        ChannelKind::Public
    });
    let mut members = members.unwrap_or_default();
    members.sort();
    ChannelInfo {
        workspace_id: ws,
        channel_id,
        name: name.unwrap_or_default(),
        kind,
        archived: archived.unwrap_or(false),
        created_by: created_by.unwrap_or_default(),
        created_at: created_at.map(|t| t.0).unwrap_or(0),
        members,
        last_seq: last_seq.unwrap_or(0),
    }
}

pub(super) fn message_of(ws: Uuid, ch: Uuid, row: MessageRow) -> StoredMessage {
    let (
        id,
        seq,
        user_id,
        text,
        client_msg_id,
        thread_ts,
        edited_at,
        deleted,
        reactions,
        also,
        pinned,
        reply_count,
        reply_users,
        last_reply_at,
        attachments,
    ) = row;
    let message_id: Uuid = id.into();
    StoredMessage {
        workspace_id: ws,
        channel_id: ch,
        ts: confab_core::timeuuid_millis(&message_id).unwrap_or(0),
        message_id,
        seq: seq.unwrap_or(0),
        user_id: user_id.unwrap_or_default(),
        text: text.unwrap_or_default(),
        client_msg_id,
        thread_ts: thread_ts.map(Into::into),
        also_in_channel: also.unwrap_or(false),
        thread: reply_count.filter(|n| *n > 0).map(|reply_count| ThreadSummary {
            reply_count,
            reply_users: reply_users.unwrap_or_default(),
            last_reply_at: last_reply_at.map(|t| t.0).unwrap_or(0),
        }),
        pinned: pinned.unwrap_or(false),
        edited_at: edited_at.map(|t| t.0),
        deleted: deleted.unwrap_or(false),
        reactions: reactions
            .unwrap_or_default()
            .into_iter()
            .map(|(k, mut v)| {
                v.sort();
                (k, v)
            })
            .collect(),
        attachments: attachments.unwrap_or_default().iter().filter_map(attachment_of).collect(),
    }
}

/// An attachment as the seed's `attachments list<frozen<map<text, text>>>` holds it.
pub(super) fn attachment_map(a: &Attachment) -> HashMap<String, String> {
    [
        ("file_id", a.file_id.to_string()),
        ("name", a.name.clone()),
        ("size", a.size.to_string()),
        ("content_type", a.content_type.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub(super) fn attachment_of(m: &HashMap<String, String>) -> Option<Attachment> {
    Some(Attachment {
        file_id: m.get("file_id")?.parse().ok()?,
        name: m.get("name")?.clone(),
        size: m.get("size")?.parse().ok()?,
        content_type: m.get("content_type")?.clone(),
    })
}
