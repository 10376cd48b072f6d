//! Fanout projector: owns the per-workspace Redis streams gateways read, and the membership
//! index (`mem:<channel>`, `uch:<user>` sets). Publishing is idempotent per `(channel, seq)`.

mod apply;

pub use apply::{frame_for, FanoutProjection};
