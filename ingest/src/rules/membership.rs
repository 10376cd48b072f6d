//! Joining, leaving, inviting and kicking. A DM's members are fixed; only a channel's creator
//! kicks; a private channel answers strangers exactly like a missing one.

use confab_core::event::Payload;
use confab_core::ErrorCode;
use uuid::Uuid;

use super::{channel_not_found, member_channel, not_direct, reject, writable_channel, Decision, Request, Verdict};
use crate::state::PartitionState;

const FIXED: &str = "the members of a direct message are fixed";

pub(super) fn join(state: &PartitionState, req: &Request) -> Verdict {
    let ch = state.channels.get(&req.key).filter(|c| !c.user_stream).ok_or_else(channel_not_found)?;
    if ch.members.contains(&req.user) {
        return Ok(Decision::Nothing(ch.last_seq));
    }
    if ch.kind.is_private() {
        // private channels are invisible to non-members: same answer as a missing one
        return Err(channel_not_found());
    }
    if ch.archived {
        return Err(reject(ErrorCode::ChannelArchived, "the channel is archived"));
    }
    Ok(Decision::Append(Payload::MemberJoined { user_id: req.user }))
}

pub(super) fn leave(state: &PartitionState, req: &Request) -> Verdict {
    let ch = member_channel(state, req)?;
    not_direct(ch, FIXED)?;
    Ok(Decision::Append(Payload::MemberLeft { user_id: req.user }))
}

pub(super) fn invite(state: &PartitionState, req: &Request, user_id: Uuid) -> Verdict {
    let ch = writable_channel(state, req)?;
    not_direct(ch, FIXED)?;
    if ch.members.contains(&user_id) {
        return Ok(Decision::Nothing(ch.last_seq));
    }
    Ok(Decision::Append(Payload::MemberJoined { user_id }))
}

pub(super) fn kick(state: &PartitionState, req: &Request, user_id: Uuid) -> Verdict {
    let ch = writable_channel(state, req)?;
    not_direct(ch, FIXED)?;
    if ch.created_by != req.user {
        return Err(reject(ErrorCode::Forbidden, "only the channel's creator can remove people"));
    }
    if user_id == req.user {
        return Err(reject(ErrorCode::InvalidField, "to remove yourself, leave the channel"));
    }
    if !ch.members.contains(&user_id) {
        return Ok(Decision::Nothing(ch.last_seq));
    }
    Ok(Decision::Append(Payload::MemberLeft { user_id }))
}
