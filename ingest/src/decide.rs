//! The one decision per command: judge it by the rules, then turn the verdict into the event to
//! append (already applied to the state) and the outcome for the sender. Pure: the sequencer
//! does the I/O.

use confab_core::avro::SCHEMA_VERSION;
use confab_core::command::{Command, Outcome};
use confab_core::event::{Event, Payload, Sealing};
use confab_core::{timeuuid_millis, TimeUuidGen};
use uuid::Uuid;

use crate::rules::{judge, Decision};
use crate::state::PartitionState;

impl PartitionState {
    /// Decides a command: the event to append (if any) and the outcome for the sender. The
    /// event, if any, is already applied to the state.
    pub fn decide(&mut self, cmd: &Command, ids: &TimeUuidGen, now_ms: i64) -> (Option<Event>, Outcome) {
        match judge(self, cmd, ids) {
            Err((code, message)) => (None, Outcome::Rejected { code, message }),
            Ok(Decision::Nothing(seq)) => (None, Outcome::Done { seq }),
            Ok(Decision::Duplicate(p)) => {
                (None, Outcome::Posted { message_id: p.message_id, seq: p.seq, ts: p.ts, duplicate: true })
            }
            Ok(Decision::Append(payload)) => {
                let event = self.next_event(cmd, payload, now_ms);
                self.apply(&event);
                let outcome = match &event.payload {
                    Payload::MessagePosted { message_id, .. } => Outcome::Posted {
                        message_id: *message_id,
                        seq: event.seq,
                        ts: event.occurred_at,
                        duplicate: false,
                    },
                    _ => Outcome::Done { seq: event.seq },
                };
                (Some(event), outcome)
            }
        }
    }

    /// The event for an accepted command: the stream's next seq, and a time that never goes
    /// back within the stream (a message's is its TIMEUUID's).
    fn next_event(&self, cmd: &Command, payload: Payload, now_ms: i64) -> Event {
        let stream = self.channels.get(&(cmd.workspace_id, cmd.stream_id()));
        let occurred_at = match &payload {
            Payload::MessagePosted { message_id, .. } => timeuuid_millis(message_id).unwrap_or(now_ms),
            _ => now_ms.max(stream.map(|c| c.last_ms).unwrap_or(0)),
        };
        // the keys of what this event erases go once it is committed: the text an edit replaces,
        // a deleted message's text and files, a deleted file (its name)
        let text_key = |message_id: &Uuid| stream.and_then(|c| c.messages.get(message_id)).map(|m| m.text_key);
        let destroys_keys = match &payload {
            Payload::MessageEdited { message_id, .. } => text_key(message_id).into_iter().collect(),
            Payload::MessageDeleted { message_id, file_ids } => {
                text_key(message_id).into_iter().chain(file_ids.iter().copied()).collect()
            }
            Payload::FileDeleted { file_id } => vec![*file_id],
            _ => Vec::new(),
        };
        Event {
            event_id: Uuid::new_v4(),
            workspace_id: cmd.workspace_id,
            channel_id: cmd.channel_id,
            actor_id: cmd.user_id,
            occurred_at,
            seq: stream.map(|c| c.last_seq).unwrap_or(0) + 1,
            schema_version: SCHEMA_VERSION,
            payload,
            sealing: Sealing { destroys_keys, ..Sealing::default() },
        }
    }
}
