//! Timeline projector: owns the timeline (`messages`, `channels`) in the [`Store`](confab_core::ports::Store).
//! Writes are upserts keyed by `message_id`, so replays rewrite the same rows; edits, deletes
//! (the text is erased: a tombstone) and reaction changes carry their resulting state. A workspace's
//! retention (`workspaces.retention_secs`) becomes the row TTL.

mod apply;

pub use apply::TimelineProjection;
