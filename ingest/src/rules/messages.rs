//! Sending, editing and deleting messages. A send is deduplicated by the sender's
//! `client_msg_id` in its channel, so a retry yields the original message; a reply to a reply
//! joins the root's thread; a message carries files shared in its channel, each once.

use confab_core::event::{Payload, ThreadState};
use confab_core::files::Attachment;
use confab_core::protocol::{validate_client_msg_id, validate_message, validate_text};
use confab_core::{ErrorCode, TimeUuidGen};
use uuid::Uuid;

use super::{any_message, live_message, reject, writable_channel, Decision, Rejection, Request, Verdict};
use crate::state::{ChannelState, PartitionState};

/// What a send asks for.
pub(super) struct Send<'a> {
    pub text: &'a str,
    pub thread_ts: Option<Uuid>,
    pub also_in_channel: bool,
    pub file_ids: &'a [Uuid],
}

pub(super) fn send(state: &PartitionState, req: &Request, ids: &TimeUuidGen, send: Send) -> Verdict {
    let ch = writable_channel(state, req)?;
    let client_msg_id = req
        .cmd
        .client_msg_id
        .as_deref()
        .ok_or_else(|| reject(ErrorCode::InvalidField, "a message needs a client_msg_id"))?;
    if let Some(p) = ch.sent.get(&(req.user, client_msg_id.to_string())) {
        return Ok(Decision::Duplicate(*p));
    }
    validate_client_msg_id(client_msg_id).map_err(|m| reject(ErrorCode::InvalidField, m))?;
    validate_message(send.text, send.file_ids)?;
    let attachments = attachments(ch, send.file_ids)?;
    let (thread_ts, thread) = match send.thread_ts {
        None => (None, None),
        Some(parent) => thread_after_reply(ch, parent, req.user)?,
    };
    Ok(Decision::Append(Payload::MessagePosted {
        message_id: ids.next(ch.last_ms),
        client_msg_id: client_msg_id.to_string(),
        text: send.text.to_string(),
        thread_ts,
        also_in_channel: thread_ts.is_some() && send.also_in_channel,
        thread,
        attachments,
    }))
}

/// The files a message carries: shared in this channel, not deleted, not attached elsewhere.
fn attachments(ch: &ChannelState, file_ids: &[Uuid]) -> Result<Vec<Attachment>, Rejection> {
    let mut attachments = Vec::with_capacity(file_ids.len());
    for id in file_ids {
        match ch.files.get(id) {
            Some(f) if f.deleted => return Err(reject(ErrorCode::FileDeleted, format!("file {id} was deleted"))),
            Some(f) if f.message.is_some() => {
                return Err(reject(ErrorCode::Conflict, format!("file {id} is already attached to a message")))
            }
            Some(f) => attachments.push(f.file.clone()),
            None => return Err(reject(ErrorCode::FileNotFound, format!("file {id} is not shared in this channel"))),
        }
    }
    Ok(attachments)
}

/// The thread a reply to `parent` joins (the root's, as Slack does) and its state after it.
fn thread_after_reply(
    ch: &ChannelState,
    parent: Uuid,
    user: Uuid,
) -> Result<(Option<Uuid>, Option<ThreadState>), Rejection> {
    let missing = || reject(ErrorCode::MessageNotFound, "no such parent message in this channel");
    let p = ch.messages.get(&parent).ok_or_else(missing)?;
    let root = p.thread_ts.unwrap_or(parent);
    let r = ch.messages.get(&root).ok_or_else(missing)?;
    if r.deleted {
        return Err(reject(ErrorCode::MessageDeleted, "the thread's parent was deleted"));
    }
    let mut thread = r.thread.clone();
    thread.reply_count += 1;
    if !thread.reply_users.contains(&user) {
        thread.reply_users.push(user);
    }
    Ok((Some(root), Some(thread)))
}

/// Replaces the text of one's own live message.
pub(super) fn edit(state: &PartitionState, req: &Request, message_id: Uuid, text: &str) -> Verdict {
    let (_, msg) = live_message(state, req, message_id)?;
    if msg.author != req.user {
        return Err(reject(ErrorCode::Forbidden, "you can only change your own messages"));
    }
    validate_text(text)?;
    Ok(Decision::Append(Payload::MessageEdited { message_id, text: text.to_string() }))
}

/// Deletes one's own message and the files it carries; deleting it again changes nothing.
pub(super) fn delete(state: &PartitionState, req: &Request, message_id: Uuid) -> Verdict {
    let (ch, msg) = any_message(state, req, message_id)?;
    if msg.deleted {
        return Ok(Decision::Nothing(ch.last_seq));
    }
    if msg.author != req.user {
        return Err(reject(ErrorCode::Forbidden, "you can only change your own messages"));
    }
    let live = |f: &&Uuid| ch.files.get(*f).is_some_and(|s| !s.deleted);
    let file_ids = msg.files.iter().filter(live).copied().collect();
    Ok(Decision::Append(Payload::MessageDeleted { message_id, file_ids }))
}
