//! The gateway: WebSocket and HTTP front door.
//!
//! # Crate map
//!
//! - [`state`]: what every handler and task shares ([`AppState`](state::AppState)) and the
//!   ports a gateway is given ([`GatewayPorts`]).
//! - [`router`]: every route, the user-facing ones and, apart, the admin API's.
//! - [`listener`]: HTTP connections, bounded (a cap, header and request timeouts, panics
//!   answered as 500).
//! - [`server`]: a running [`Gateway`]: background tasks, the HTTP server, health probes,
//!   graceful shutdown.
//! - [`ws`]: one WebSocket connection: upgrade, hello, frames in (`ws::frames`: each client
//!   frame checked and turned into a command or answered), resume, typing, rate limits.
//! - [`writer`]: a socket's outgoing queue: each channel's events once and in order, and the
//!   hold/replay that makes a resume lossless.
//! - [`hosts`]: the `Host` names the public listener answers (against DNS rebinding).
//! - [`hub`]: this process's connections, indexed by channel and user, and batched local fanout.
//! - [`fanout_reader`]: reads each followed workspace's fanout stream once for all local sockets.
//! - [`replies`]: turns ingest's replies into `message:ack` / `error` frames or admin answers.
//! - [`presence`]: devices touch presence on connect and heartbeat; transitions batched into
//!   `presence:change`; a sweeper for expired devices.
//! - [`http`]: the user API over HTTP (channels, history, search, files, devices, presence)
//!   and its plumbing (typed errors, authentication); `http::bodies` the JSON it answers with.
//! - [`openapi`]: the HTTP API's OpenAPI documents, generated from the handlers, at
//!   `/api/openapi.json` (public listener) and `/admin/openapi.json` (admin listener).
//! - [`admin`]: the admin API that bootstraps workspaces, users, tokens and channels, and
//!   revokes a user's tokens.
//! - [`jwks`]: the public keys of RS256 / EdDSA JWTs, read at start and refreshed;
//!   [`revocations`]: revoked tokens, followed from the store, refused, their sockets closed.
//! - [`web`]: the web client's static bundle, embedded, served at `/`.
//! - [`metrics`]: the gateway's Prometheus metrics.
//!
//! May import: `confab-core`. Imported by: the `confab` binary.

pub mod admin;
pub mod fanout_reader;
pub mod hosts;
pub mod http;
pub mod hub;
pub mod jwks;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod presence;
pub mod replies;
pub mod revocations;
pub mod router;
pub mod server;
pub mod state;
pub mod web;
pub mod writer;
pub mod ws;

pub use server::{ExtraRoutes, Gateway};
pub use state::{new_gateway_id, AppState, GatewayPorts};
