//! The Redis adapters. Every key of a workspace shares the hash tag `{<workspace_id>}`, so a
//! workspace lives in one cluster slot.
//!
//! - [`RedisFanout`]: the fanout port (a stream per workspace, the membership index, and an
//!   idempotent publish script); [`FanoutReader`] is a gateway's blocking reader.
//! - [`RedisPresence`]: the presence port (Lua scripts over sorted sets and hashes).
//! - [`RedisNotify`]: the notifier's devices, preferences and outbox.
//! - [`RedisSendLimits`]: per-user and per-workspace send limits shared by every gateway.
//! - [`client`]: the one client every adapter is made from (TLS, ACL user, CA).

mod error;
mod fanout;
mod limits;
mod notify;
mod presence;
mod server;

pub use fanout::{FanoutReader, RedisFanout};
pub use limits::RedisSendLimits;
pub use notify::RedisNotify;
pub use presence::RedisPresence;
pub use server::client;
