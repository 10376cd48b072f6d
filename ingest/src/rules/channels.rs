//! Creating channels, DMs and group DMs, renaming and archiving them.

use confab_core::command::dm_channel_id;
use confab_core::event::{ChannelKind, Payload};
use confab_core::protocol::{validate_channel_name, MAX_CREATE_MEMBERS_ADMIN, MAX_GROUP_DM};
use confab_core::ErrorCode;
use uuid::Uuid;

use super::{member_channel, not_direct, reject, writable_channel, Decision, Request, Verdict};
use crate::state::PartitionState;

/// A new channel (its creator a member), or, for a DM opened again, the existing one.
pub(super) fn create(
    state: &PartitionState,
    req: &Request,
    name: &str,
    kind: ChannelKind,
    members: &[Uuid],
) -> Verdict {
    let mut members: Vec<Uuid> = members.to_vec();
    members.push(req.user);
    members.sort();
    members.dedup();
    if let Some(existing) = state.channels.get(&req.key) {
        // opening the same DM again finds it
        if kind.is_direct() && existing.kind == kind && existing.members.contains(&req.user) {
            return Ok(Decision::Nothing(existing.last_seq));
        }
        return Err(reject(ErrorCode::Conflict, "a channel with this id already exists"));
    }
    validate_channel_name(name).map_err(|m| reject(ErrorCode::InvalidField, m))?;
    if members.len() > MAX_CREATE_MEMBERS_ADMIN {
        let message = format!("a new channel has at most {MAX_CREATE_MEMBERS_ADMIN} members");
        return Err(reject(ErrorCode::InvalidField, message));
    }
    if kind.is_direct() {
        check_direct(req, kind, &members)?;
    }
    Ok(Decision::Append(Payload::ChannelCreated { name: name.to_string(), kind, members }))
}

/// A DM is two people, a group DM up to [`MAX_GROUP_DM`], and its id derives from them.
fn check_direct(req: &Request, kind: ChannelKind, members: &[Uuid]) -> Result<(), super::Rejection> {
    let want = if members.len() == 2 { ChannelKind::Dm } else { ChannelKind::GroupDm };
    if members.len() < 2 || members.len() > MAX_GROUP_DM || want != kind {
        let message = format!("a direct message is 2..={MAX_GROUP_DM} people, you included");
        return Err(reject(ErrorCode::InvalidField, message));
    }
    if req.cmd.channel_id != dm_channel_id(&req.cmd.workspace_id, members) {
        return Err(reject(ErrorCode::InvalidField, "a direct message's id is derived from its members"));
    }
    Ok(())
}

pub(super) fn rename(state: &PartitionState, req: &Request, name: &str) -> Verdict {
    let ch = writable_channel(state, req)?;
    not_direct(ch, "direct messages have no name to change")?;
    validate_channel_name(name).map_err(|m| reject(ErrorCode::InvalidField, m))?;
    Ok(Decision::Append(Payload::ChannelRenamed { name: name.to_string() }))
}

/// Archived channels are read-only; `archived: false` restores one.
pub(super) fn archive(state: &PartitionState, req: &Request, archived: bool) -> Verdict {
    let ch = member_channel(state, req)?;
    not_direct(ch, "direct messages cannot be archived")?;
    if ch.archived == archived {
        return Ok(Decision::Nothing(ch.last_seq));
    }
    Ok(Decision::Append(Payload::ChannelArchived { archived }))
}
