//! The rules ingest judges commands by, one file per command family. Each rule is a pure
//! function of the partition's state and the command: it accepts (the payload of the event to
//! append), finds nothing to do (already so), recognizes a retried send, or rejects with a
//! typed error code. Rules are authoritative: the gateway's checks are only a fast path.
//!
//! - [`channels`]: create (channels, DMs, group DMs), rename, archive.
//! - [`membership`]: join, leave, invite, kick.
//! - [`messages`]: send (dedup by `client_msg_id`, threads, attachments), edit, delete.
//! - [`reactions`]: reactions and pins on a message.
//! - [`files`]: share and delete files.
//! - [`read_markers`]: a user's read markers, in their own stream.
//! - [`audit`]: admin actions, in the workspace's own stream.

mod audit;
mod channels;
mod files;
mod membership;
mod messages;
mod reactions;
mod read_markers;
#[cfg(test)]
mod tests;

use confab_core::command::{Command, CommandBody};
use confab_core::event::Payload;
use confab_core::{ErrorCode, TimeUuidGen};
use uuid::Uuid;

use crate::state::{ChannelState, MessageState, PartitionState, Posted};

/// What a rule decided.
pub(crate) enum Decision {
    /// Already so: no event (the outcome carries the stream's current seq).
    Nothing(i64),
    /// A send retried with the same `client_msg_id`: the original message.
    Duplicate(Posted),
    Append(Payload),
}

/// Why a command is refused: the code and message the sender gets.
pub(crate) type Rejection = (ErrorCode, String);

pub(crate) type Verdict = Result<Decision, Rejection>;

/// A command as the rules see it: who acts, in which workspace, on which stream.
pub(crate) struct Request<'a> {
    pub cmd: &'a Command,
    pub user: Uuid,
    /// `(workspace, stream)`: where the state of the stream the command is sequenced in is kept.
    pub key: (Uuid, Uuid),
}

/// Judges one command against the state of its partition.
pub(crate) fn judge(state: &PartitionState, cmd: &Command, ids: &TimeUuidGen) -> Verdict {
    let req = Request { cmd, user: cmd.user_id, key: (cmd.workspace_id, cmd.stream_id()) };
    match &cmd.body {
        CommandBody::CreateChannel { name, channel_kind, members } => {
            channels::create(state, &req, name, *channel_kind, members)
        }
        CommandBody::RenameChannel { name } => channels::rename(state, &req, name),
        CommandBody::ArchiveChannel { archived } => channels::archive(state, &req, *archived),
        CommandBody::JoinChannel => membership::join(state, &req),
        CommandBody::LeaveChannel => membership::leave(state, &req),
        CommandBody::Invite { user_id } => membership::invite(state, &req, *user_id),
        CommandBody::Kick { user_id } => membership::kick(state, &req, *user_id),
        CommandBody::SendMessage { text, thread_ts, also_in_channel, file_ids } => {
            let send = messages::Send { text, thread_ts: *thread_ts, also_in_channel: *also_in_channel, file_ids };
            messages::send(state, &req, ids, send)
        }
        CommandBody::EditMessage { message_id, text } => messages::edit(state, &req, *message_id, text),
        CommandBody::DeleteMessage { message_id } => messages::delete(state, &req, *message_id),
        CommandBody::React { message_id, emoji, add } => reactions::react(state, &req, *message_id, emoji, *add),
        CommandBody::Pin { message_id, pinned } => reactions::pin(state, &req, *message_id, *pinned),
        CommandBody::ShareFile { file } => files::share(state, &req, file),
        CommandBody::DeleteFile { file_id } => files::delete(state, &req, *file_id),
        CommandBody::MarkRead { seq } => read_markers::mark(*seq),
        CommandBody::Audit { action, subject_id, details } => audit::record(&req, action, *subject_id, details),
    }
}

fn reject(code: ErrorCode, message: impl Into<String>) -> Rejection {
    (code, message.into())
}

/// A private channel a stranger asks about is reported exactly like a missing one, so its
/// existence does not leak.
fn channel_not_found() -> Rejection {
    reject(ErrorCode::ChannelNotFound, "no such channel in your workspace")
}

/// The channel, if it exists in the command's workspace and the sender is a member.
fn member_channel<'s>(state: &'s PartitionState, req: &Request) -> Result<&'s ChannelState, Rejection> {
    let ch = state
        .channels
        .get(&req.key)
        .filter(|c| !c.user_stream && c.created_by != Uuid::nil())
        .ok_or_else(channel_not_found)?;
    if ch.members.contains(&req.user) {
        Ok(ch)
    } else if ch.kind.is_private() {
        Err(channel_not_found())
    } else {
        Err(reject(ErrorCode::NotAMember, "join the channel first"))
    }
}

/// A member's channel that is not archived (anything that adds to it).
fn writable_channel<'s>(state: &'s PartitionState, req: &Request) -> Result<&'s ChannelState, Rejection> {
    let ch = member_channel(state, req)?;
    if ch.archived {
        return Err(reject(ErrorCode::ChannelArchived, "the channel is archived; unarchive it first"));
    }
    Ok(ch)
}

/// A message of a writable channel that is not deleted (what edits, reactions and pins need).
fn live_message<'s>(
    state: &'s PartitionState,
    req: &Request,
    message_id: Uuid,
) -> Result<(&'s ChannelState, &'s MessageState), Rejection> {
    let (ch, msg) = any_message(state, req, message_id)?;
    if msg.deleted {
        return Err(reject(ErrorCode::MessageDeleted, "the message was deleted"));
    }
    Ok((ch, msg))
}

/// A message of a writable channel, deleted or not.
fn any_message<'s>(
    state: &'s PartitionState,
    req: &Request,
    message_id: Uuid,
) -> Result<(&'s ChannelState, &'s MessageState), Rejection> {
    let ch = writable_channel(state, req)?;
    let msg = ch
        .messages
        .get(&message_id)
        .ok_or_else(|| reject(ErrorCode::MessageNotFound, "no such message in this channel"))?;
    Ok((ch, msg))
}

/// The direct messages' fixed membership refuses changes.
fn not_direct(ch: &ChannelState, what: &str) -> Result<(), Rejection> {
    if ch.kind.is_direct() {
        return Err(reject(ErrorCode::Forbidden, what));
    }
    Ok(())
}
