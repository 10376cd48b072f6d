//! Ingest: the sequencer between the commands log and the events log.
//!
//! Each commands partition has exactly one writer (this process's owner of it). For each
//! command it validates, authorizes (channel exists in the token's workspace, sender is a member),
//! deduplicates `client_msg_id`, assigns a TIMEUUID `message_id` and the stream's next `seq`, and
//! commits the event (to the same partition number of the events log), a reply for the sending
//! gateway and the consumed offsets atomically: a Kafka transaction in distributed mode, one
//! fjall write batch in embedded mode. A crash anywhere yields neither a lost nor a doubled event.
//!
//! - [`state`]: per-stream state (members, last seq, messages, files, dedup table), rebuilt from
//!   events by `apply`.
//! - `rules`: the pure rules each command is judged by, one file per command family; `decide`
//!   turns a verdict into the event and the sender's outcome.
//! - [`sequencer`]: the read -> decide -> commit loop over a
//!   [`SequencerLog`](confab_core::ports::SequencerLog).
//!
//! May import: `confab-core`. Imported by: the `confab` binary.

mod decide;
mod rules;
pub mod sequencer;
pub mod state;

pub use sequencer::run;
pub use state::PartitionState;
