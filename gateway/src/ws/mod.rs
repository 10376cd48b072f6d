//! The WebSocket side of a gateway: one connection per socket, from upgrade to close.
//!
//! - `connection`: a socket's life: authenticate (at upgrade), hello, register with the hub,
//!   subscribe, read frames, then leave; reading and writing are separate tasks joined by a
//!   bounded queue (`crate::writer`), which the hub writes fanout frames into too.
//! - `frames`: one client frame: parsed, checked, rate-limited, turned into a command or
//!   answered here (ping, typing, presence, resume). Bad frames get typed `error` frames and
//!   the socket stays open.
//! - `resume`: replaying what a reconnecting client missed, losslessly.
//! - `typing`: ephemeral typing indicators.
//! - `rate_limit`: the per-connection token bucket.

mod connection;
mod frames;
mod rate_limit;
mod redact;
mod resume;
mod typing;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Utf8Bytes, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use confab_core::protocol::{ServerFrame, HEARTBEAT_INTERVAL_SECS, MAX_FRAME_BYTES};
use confab_core::ErrorCode;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

use crate::http::{authenticate, ApiError};
use crate::state::AppState;

/// Frames up to this size are read and answered with `frame_too_large` when over
/// [`MAX_FRAME_BYTES`]; larger ones close the socket (1009), as the socket cannot skip them.
const HARD_FRAME_LIMIT: usize = 4 * MAX_FRAME_BYTES;
/// A socket that sends nothing (not even a ping) for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(HEARTBEAT_INTERVAL_SECS * 2 + 10);
/// How long `?resume=1` holds live events waiting for the client's `resume` frame.
const RESUME_WAIT: Duration = Duration::from_secs(10);
/// Per-socket read buffer (grows for larger frames, up to the frame limit).
const READ_BUFFER: usize = 1024;
/// Bytes gathered before a write to the socket (flushes write everything at once anyway).
const WRITE_BUFFER: usize = 8 * 1024;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// The user token, for clients that can set neither a header nor a subprotocol
    /// (discouraged: URLs end up in logs).
    token: Option<String>,
    /// `1`/`true`: the client will send `resume`; hold live events until it does.
    resume: Option<String>,
}

/// `GET /ws`: authenticates, takes a connection slot, and upgrades. What is wrong with a request
/// that is no WebSocket handshake is told as a typed error like any other.
#[utoipa::path(get, path = "/ws", tag = "websocket", params(WsQuery),
    description = "The WebSocket: offer the subprotocols `confab` and `bearer.<token>` (or send the \
        token as a bearer header). The frames are in docs/asyncapi.yaml.",
    responses(
        (status = 101, description = "switched to the WebSocket protocol"),
        (status = 400, description = "`invalid_field`: not a WebSocket handshake", body = crate::http::bodies::ErrorBody),
        (status = 426, description = "`invalid_field`: a WebSocket version this server does not speak", body = crate::http::bodies::ErrorBody),
        (status = 429, description = "`too_many_connections`: the user's connection cap", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn upgrade(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: crate::http::Q<WsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let q = match crate::http::query(q) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let claims = match authenticate(&st, &headers, q.token.as_deref()) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            let message = format!("a WebSocket handshake is expected here: {}", rejection.body_text());
            return ApiError::new(rejection.status(), ErrorCode::InvalidField, message).into_response();
        }
    };
    let resume = matches!(q.resume.as_deref(), Some("1") | Some("true"));
    let per_user = st.cfg.gateway.max_connections_per_user;
    let Some(user_slot) = st.hub.take_user_slot(claims.workspace_id, claims.user_id, per_user) else {
        let status = axum::http::StatusCode::TOO_MANY_REQUESTS;
        let message = format!("at most {per_user} connections per user; close one first");
        return ApiError::new(status, ErrorCode::TooManyConnections, message).into_response();
    };
    let Ok(permit) = st.conns.clone().try_acquire_owned() else {
        let status = axum::http::StatusCode::SERVICE_UNAVAILABLE;
        return ApiError::new(status, ErrorCode::Unavailable, "connection limit reached").into_response();
    };
    // small buffers: tungstenite's default 128 KiB read and write buffers per socket would be
    // most of an idle connection's memory (frames are small; the writer batches on its own)
    // a client that offers `confab, bearer.<token>` as subprotocols gets `confab` back
    ws.protocols(["confab"])
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| connection::serve(st, socket, claims, resume, (permit, user_slot)))
}

fn encode(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(frame).expect("frame serializes"))
}

/// An `error` frame, counted by code.
fn error_frame(st: &AppState, code: ErrorCode, message: &str, client_msg_id: Option<String>) -> ServerFrame {
    st.metrics.errors.with_label_values(&[code.as_str()]).inc();
    ServerFrame::Error { code, message: message.to_string(), client_msg_id }
}
