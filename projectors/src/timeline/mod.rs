//! Timeline projector: owns the `messages` and `channels` tables in Cassandra.
//! Writes are upserts keyed by `message_id`, so replays rewrite the same rows. A workspace's
//! retention (`workspaces.retention_secs`) becomes the row TTL.

mod apply;

pub use apply::TimelineProjection;
