//! Stored rows as the wire types clients read. The store's row and the client contract are
//! separate types, so either can change without the other; this is where they meet.

use confab_core::ports::{StoredMessage, ThreadSummary};
use confab_core::protocol::{MessageView, ThreadView};

pub(crate) fn message_view(m: StoredMessage) -> MessageView {
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

fn thread_view(t: ThreadSummary) -> ThreadView {
    ThreadView { reply_count: t.reply_count, reply_users: t.reply_users, last_reply_at: t.last_reply_at }
}
