//! Fanout projector: owns the per-workspace streams gateways read and the membership index, in
//! the [`Fanout`](confab_core::ports::Fanout). Publishing is idempotent per `(topic, seq)`.

mod apply;

pub use apply::{frame_for, FanoutProjection};
