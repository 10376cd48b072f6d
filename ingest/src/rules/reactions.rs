//! Reactions and pins on a live message. Both carry the resulting state, so a retry or a
//! double click records nothing.

use confab_core::event::Payload;
use confab_core::protocol::{validate_emoji, MAX_REACTIONS_PER_MESSAGE};
use confab_core::ErrorCode;
use uuid::Uuid;

use super::{live_message, reject, Decision, Request, Verdict};
use crate::state::PartitionState;

/// Adds or removes the sender's `emoji`; at most [`MAX_REACTIONS_PER_MESSAGE`] distinct emoji.
pub(super) fn react(state: &PartitionState, req: &Request, message_id: Uuid, emoji: &str, add: bool) -> Verdict {
    let (ch, msg) = live_message(state, req, message_id)?;
    validate_emoji(emoji).map_err(|m| reject(ErrorCode::InvalidField, m))?;
    let mut users = msg.reactions.get(emoji).cloned().unwrap_or_default();
    let changed = if add { users.insert(req.user) } else { users.remove(&req.user) };
    if !changed {
        // already so: nothing to record (a retry, or a double click)
        return Ok(Decision::Nothing(ch.last_seq));
    }
    if add && !msg.reactions.contains_key(emoji) && msg.reactions.len() >= MAX_REACTIONS_PER_MESSAGE {
        let message = format!("a message takes at most {MAX_REACTIONS_PER_MESSAGE} different emoji");
        return Err(reject(ErrorCode::TooManyReactions, message));
    }
    let users = users.into_iter().collect();
    Ok(Decision::Append(Payload::ReactionChanged { message_id, emoji: emoji.to_string(), added: add, users }))
}

pub(super) fn pin(state: &PartitionState, req: &Request, message_id: Uuid, pinned: bool) -> Verdict {
    let (ch, msg) = live_message(state, req, message_id)?;
    if msg.pinned == pinned {
        return Ok(Decision::Nothing(ch.last_seq));
    }
    Ok(Decision::Append(Payload::MessagePinned { message_id, pinned }))
}
