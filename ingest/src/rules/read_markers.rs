//! Read markers: the sender read the command's channel up to `seq`. They are sequenced in the
//! sender's own stream (so every device of theirs hears of them in order). The channel is not
//! checked here: markers of channels one cannot read are never shown.

use confab_core::event::Payload;
use confab_core::ErrorCode;

use super::{reject, Decision, Verdict};

pub(super) fn mark(seq: i64) -> Verdict {
    if seq < 0 {
        return Err(reject(ErrorCode::InvalidField, "seq must not be negative"));
    }
    Ok(Decision::Append(Payload::ReadMarked { read_seq: seq }))
}
