//! Sharing a finished upload into a channel, and deleting it (its uploader only).

use confab_core::event::Payload;
use confab_core::files::Attachment;
use confab_core::ErrorCode;
use uuid::Uuid;

use super::{member_channel, reject, writable_channel, Decision, Request, Verdict};
use crate::state::PartitionState;

pub(super) fn share(state: &PartitionState, req: &Request, file: &Attachment) -> Verdict {
    let ch = writable_channel(state, req)?;
    match ch.files.get(&file.file_id) {
        // a retried completion
        Some(f) if f.uploader == req.user && f.file == *file => Ok(Decision::Nothing(ch.last_seq)),
        Some(_) => Err(reject(ErrorCode::Conflict, "a file with this id already exists")),
        None => Ok(Decision::Append(Payload::FileShared { file: file.clone() })),
    }
}

pub(super) fn delete(state: &PartitionState, req: &Request, file_id: Uuid) -> Verdict {
    let ch = member_channel(state, req)?;
    let f = ch.files.get(&file_id).ok_or_else(|| reject(ErrorCode::FileNotFound, "no such file in this channel"))?;
    if f.uploader != req.user {
        return Err(reject(ErrorCode::Forbidden, "only the uploader can delete a file"));
    }
    if f.deleted {
        return Ok(Decision::Nothing(ch.last_seq));
    }
    Ok(Decision::Append(Payload::FileDeleted { file_id }))
}
