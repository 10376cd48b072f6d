//! The fanout stream keeps frames as they were published, so a `message:new` still carries the
//! text a user later edited or deleted. Before a resume replays a window, every message frame in
//! it is brought to the message's latest state within the window: a deleted message becomes a
//! tombstone (no text, no files, no reactions), an edited one carries only its newest text, and
//! files deleted later are dropped from the messages that carried them. The window always runs
//! to the stream's newest entry, so every later edit or delete of a replayed message is in it.

use confab_core::ports::FanoutEntry;
use confab_core::protocol::ServerFrame;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// What became of a message by the end of the window.
enum Latest {
    Deleted,
    Edited { text: String, edited_at: i64 },
}

/// Frame types that may carry text or files of a message that changed later.
fn may_need_redaction(frame_type: &str) -> bool {
    // entries written before frame types were recorded have an empty one
    matches!(frame_type, "message:new" | "message:edited" | "")
}

/// Rewrites superseded message frames in `entries` (oldest first), in place.
pub(super) fn redact_superseded(entries: &mut [FanoutEntry]) {
    let (latest, deleted_files) = final_states(entries);
    if latest.is_empty() && deleted_files.is_empty() {
        return;
    }
    for entry in entries.iter_mut().filter(|e| may_need_redaction(&e.frame_type)) {
        let Ok(frame) = serde_json::from_str::<ServerFrame>(&entry.frame_json) else { continue };
        if let Some(redacted) = redacted(frame, &latest, &deleted_files) {
            entry.frame_json = serde_json::to_string(&redacted).expect("frame serializes");
        }
    }
}

/// Each changed message's state at the end of the window, and the files deleted in it.
fn final_states(entries: &[FanoutEntry]) -> (HashMap<Uuid, Latest>, HashSet<Uuid>) {
    let mut latest = HashMap::new();
    let mut deleted_files = HashSet::new();
    for entry in entries.iter().rev() {
        if !matches!(entry.frame_type.as_str(), "message:edited" | "message:deleted" | "file:deleted" | "") {
            continue;
        }
        match serde_json::from_str::<ServerFrame>(&entry.frame_json) {
            Ok(ServerFrame::Deleted { message_id, file_ids, .. }) => {
                latest.insert(message_id, Latest::Deleted);
                deleted_files.extend(file_ids);
            }
            Ok(ServerFrame::Edited { message_id, text, edited_at, .. }) => {
                latest.entry(message_id).or_insert(Latest::Edited { text, edited_at });
            }
            Ok(ServerFrame::FileDeleted { file_id, .. }) => {
                deleted_files.insert(file_id);
            }
            _ => {}
        }
    }
    (latest, deleted_files)
}

/// The frame as it must be replayed, or `None` if it may be replayed as it is.
fn redacted(frame: ServerFrame, latest: &HashMap<Uuid, Latest>, deleted_files: &HashSet<Uuid>) -> Option<ServerFrame> {
    match frame {
        ServerFrame::New { mut message, parent_thread } => {
            let files_before = message.attachments.len();
            message.attachments.retain(|a| !deleted_files.contains(&a.file_id));
            let mut changed = message.attachments.len() != files_before;
            match latest.get(&message.message_id) {
                Some(Latest::Deleted) => {
                    message.text.clear();
                    message.attachments.clear();
                    message.reactions.clear();
                    message.deleted = true;
                    changed = true;
                }
                Some(Latest::Edited { text, edited_at }) if *text != message.text => {
                    message.text = text.clone();
                    message.edited_at = Some(*edited_at);
                    changed = true;
                }
                _ => {}
            }
            changed.then_some(ServerFrame::New { message, parent_thread })
        }
        ServerFrame::Edited { workspace_id, channel_id, message_id, text, edited_at, seq, user_id } => {
            let text = match latest.get(&message_id) {
                Some(Latest::Deleted) => String::new(),
                Some(Latest::Edited { text: newest, .. }) if *newest != text => newest.clone(),
                _ => return None,
            };
            Some(ServerFrame::Edited { workspace_id, channel_id, message_id, text, edited_at, seq, user_id })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_core::files::Attachment;
    use confab_core::protocol::MessageView;

    const WS: Uuid = Uuid::from_u128(1);
    const CH: Uuid = Uuid::from_u128(2);
    const USER: Uuid = Uuid::from_u128(3);

    fn entry(seq: i64, frame: ServerFrame) -> FanoutEntry {
        FanoutEntry {
            workspace_id: WS,
            position: String::new(),
            topic_id: CH,
            seq,
            frame_type: frame.type_name().to_string(),
            frame_json: serde_json::to_string(&frame).unwrap(),
            add_members: vec![],
            remove_members: vec![],
            ts: seq,
            ephemeral_from: None,
        }
    }

    fn new_message(seq: i64, id: u128, text: &str, files: &[u128]) -> FanoutEntry {
        let mut message: MessageView = serde_json::from_value(serde_json::json!({
            "workspace_id": WS, "channel_id": CH, "message_id": Uuid::from_u128(id), "seq": seq,
            "user_id": USER, "text": text, "ts": seq,
        }))
        .unwrap();
        message.reactions.insert("wave".into(), vec![USER]);
        message.attachments = files
            .iter()
            .map(|f| Attachment {
                file_id: Uuid::from_u128(*f),
                name: "n".into(),
                size: 1,
                content_type: "text/plain".into(),
            })
            .collect();
        entry(seq, ServerFrame::New { message, parent_thread: None })
    }

    fn edit(seq: i64, id: u128, text: &str) -> FanoutEntry {
        let frame = ServerFrame::Edited {
            workspace_id: WS,
            channel_id: CH,
            message_id: Uuid::from_u128(id),
            text: text.into(),
            edited_at: seq * 10,
            seq,
            user_id: USER,
        };
        entry(seq, frame)
    }

    fn delete(seq: i64, id: u128) -> FanoutEntry {
        let frame = ServerFrame::Deleted {
            workspace_id: WS,
            channel_id: CH,
            message_id: Uuid::from_u128(id),
            seq,
            user_id: USER,
            file_ids: vec![],
        };
        entry(seq, frame)
    }

    fn message(e: &FanoutEntry) -> MessageView {
        match serde_json::from_str(&e.frame_json).unwrap() {
            ServerFrame::New { message, .. } => message,
            other => panic!("not a message:new: {other:?}"),
        }
    }

    #[test]
    fn a_deleted_message_is_replayed_as_a_tombstone_and_its_edits_lose_their_text() {
        let mut entries =
            vec![new_message(1, 10, "my password is hunter2", &[7]), edit(2, 10, "oops, also hunter2"), delete(3, 10)];
        redact_superseded(&mut entries);
        let m = message(&entries[0]);
        assert!(m.deleted);
        assert!(m.text.is_empty() && m.attachments.is_empty() && m.reactions.is_empty());
        assert!(!entries.iter().any(|e| e.frame_json.contains("hunter2")), "{entries:?}");
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3], "seqs stay gap-free");
    }

    #[test]
    fn an_edited_message_is_replayed_with_its_newest_text_only() {
        let mut entries =
            vec![new_message(1, 10, "first draft", &[]), edit(2, 10, "second draft"), edit(3, 10, "final")];
        redact_superseded(&mut entries);
        let m = message(&entries[0]);
        assert_eq!((m.text.as_str(), m.edited_at), ("final", Some(30)));
        assert!(!entries.iter().any(|e| e.frame_json.contains("draft")));
    }

    #[test]
    fn a_file_deleted_later_is_dropped_from_the_message_that_carried_it() {
        let gone = ServerFrame::FileDeleted {
            workspace_id: WS,
            channel_id: CH,
            file_id: Uuid::from_u128(7),
            user_id: USER,
            seq: 2,
        };
        let mut entries = vec![new_message(1, 10, "two files", &[7, 8]), entry(2, gone)];
        redact_superseded(&mut entries);
        let kept: Vec<_> = message(&entries[0]).attachments.iter().map(|a| a.file_id).collect();
        assert_eq!(kept, [Uuid::from_u128(8)]);
    }

    #[test]
    fn untouched_messages_are_replayed_byte_for_byte() {
        let mut entries = vec![new_message(1, 10, "stays", &[]), new_message(2, 11, "goes", &[]), delete(3, 11)];
        let before = entries[0].frame_json.clone();
        redact_superseded(&mut entries);
        assert_eq!(entries[0].frame_json, before);
        assert!(message(&entries[1]).deleted);
    }
}
