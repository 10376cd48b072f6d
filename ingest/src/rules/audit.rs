//! The audit log: admin actions, sequenced in the workspace's own stream (its id is the
//! stream's). Only the admin API sends them; the stream holds nothing else.

use confab_core::event::Payload;
use confab_core::ErrorCode;
use std::collections::BTreeMap;
use uuid::Uuid;

use super::{reject, Decision, Request, Verdict};

/// Characters in an action's name, and in each detail's key and value.
const MAX_FIELD: usize = 200;
/// Details one action carries.
const MAX_DETAILS: usize = 16;

pub(super) fn record(
    req: &Request,
    action: &str,
    subject_id: Option<Uuid>,
    details: &BTreeMap<String, String>,
) -> Verdict {
    let (workspace, stream) = req.key;
    if stream != workspace {
        return Err(reject(ErrorCode::InvalidField, "an audit record goes to the workspace's own stream"));
    }
    let too_long = |s: &str| s.is_empty() || s.chars().count() > MAX_FIELD;
    if too_long(action)
        || details.len() > MAX_DETAILS
        || details.iter().any(|(k, v)| too_long(k) || v.len() > MAX_FIELD)
    {
        return Err(reject(ErrorCode::InvalidField, "an audit record's action or details are empty or too long"));
    }
    Ok(Decision::Append(Payload::AdminActed { action: action.to_string(), subject_id, details: details.clone() }))
}
