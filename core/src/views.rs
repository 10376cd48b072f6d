//! Where the store's rows meet the wire types clients read. The two are separate types, so either
//! can change without the other; this module imports both, and neither imports it.

use crate::event::{Event, Payload};
use crate::ports::{StoredMessage, ThreadSummary};
use crate::protocol::{MessageView, ThreadView};

/// A stored message as clients see it (history, threads, pins).
pub fn message_view(m: StoredMessage) -> MessageView {
    MessageView {
        workspace_id: m.workspace_id,
        channel_id: m.channel_id,
        message_id: m.message_id,
        seq: m.seq,
        user_id: m.user_id,
        text: m.text,
        ts: m.ts,
        client_msg_id: m.client_msg_id,
        thread_ts: m.thread_ts,
        also_in_channel: m.also_in_channel,
        thread: m.thread.map(thread_view),
        pinned: m.pinned,
        edited_at: m.edited_at,
        deleted: m.deleted,
        reactions: m.reactions,
        attachments: m.attachments,
    }
}

/// A thread's summary as clients see it.
pub fn thread_view(t: ThreadSummary) -> ThreadView {
    ThreadView { reply_count: t.reply_count, reply_users: t.reply_users, last_reply_at: t.last_reply_at }
}

/// The row of a posted message as first written (later events update it), for a
/// `MessagePosted` event.
pub fn posted_row(e: &Event) -> Option<StoredMessage> {
    let Payload::MessagePosted { message_id, client_msg_id, text, thread_ts, also_in_channel, attachments, .. } =
        &e.payload
    else {
        return None;
    };
    Some(StoredMessage {
        workspace_id: e.workspace_id,
        channel_id: e.channel_id,
        message_id: *message_id,
        seq: e.seq,
        user_id: e.actor_id,
        text: text.clone(),
        ts: e.occurred_at,
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
