//! The gateway: WebSocket and HTTP front door.
//!
//! - [`ws`]: authenticates a socket, says hello, turns client frames into commands, and writes
//!   frames back; bad input gets typed errors, never a dropped connection.
//! - [`writer`]: a socket's outgoing queue: each channel's events once and in order, and the
//!   hold/replay that makes a resume lossless.
//! - [`hub`]: this process's connections, indexed by channel and user, and batched local fanout.
//! - [`fanout_reader`]: reads each followed workspace's fanout stream once for all local sockets.
//! - [`presence`]: devices touch presence on connect and heartbeat; transitions batched into
//!   `presence:change`; a sweeper for expired devices; the lookup endpoint.
//! - [`replies`]: turns ingest's replies into `message:ack` / `error` frames or admin answers.
//! - [`api`]: what users read over HTTP: channels with unread counts, history (both ways and
//!   around a message), threads, pins, search.
//! - [`devices`]: push registration (devices) and notification preferences.
//! - [`files`]: file sharing: upload grants, completion, download URLs, deletion, and the
//!   embedded mode's signed `/blobs/` endpoint.
//! - [`search`]: `GET /api/search`: the query language, permissions as filters, the index.
//! - [`http`]: typed errors, authentication, and the admin API that bootstraps workspaces,
//!   users and channels.
//! - [`web`]: the web client's static bundle, embedded, served at `/`.
//! - [`server`]: wiring, connection cap and graceful shutdown.

pub mod api;
pub mod devices;
pub mod fanout_reader;
pub mod files;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod presence;
pub mod replies;
pub mod search;
pub mod server;
pub mod web;
pub mod writer;
pub mod ws;

pub use server::{new_gateway_id, Gateway, GatewayPorts};
