//! Every route of a gateway: the user-facing ones (WebSocket, the HTTP API, the embedded
//! mode's `/blobs/`, the web client) and, separately, the admin API.

use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

use crate::http::{channels, devices, files, history, presence, search};
use crate::listener;
use crate::state::AppState;

/// The user-facing routes: each request within `gateway.http_request_timeout_ms` (file
/// transfers within `files.transfer_timeout_secs`), and a panicking handler answers 500.
pub fn public(state: Arc<AppState>) -> Router {
    let request_timeout = Duration::from_millis(state.cfg.gateway.http_request_timeout_ms);
    let transfer_timeout = Duration::from_secs(state.cfg.files.transfer_timeout_secs);
    let transfers = Router::new()
        .route("/blobs/{ws}/{file}", get(files::blob_get))
        .route("/blobs/incoming/{ws}/{file}", put(files::blob_put))
        .route_layer(from_fn_with_state(transfer_timeout, listener::deadline));
    Router::new()
        .route("/ws", get(crate::ws::upgrade))
        .route("/api/me", get(channels::me))
        .route("/api/channels", get(channels::channels))
        .route("/api/channels/{channel_id}", get(channels::channel))
        .route("/api/channels/{channel_id}/messages", get(history::history))
        .route("/api/channels/{channel_id}/messages/{message_id}/replies", get(history::replies))
        .route("/api/channels/{channel_id}/pins", get(history::pins))
        .route("/api/search", get(search::search))
        .route("/api/presence", get(presence::lookup))
        .route("/api/devices", get(devices::list).post(devices::register))
        .route("/api/devices/{device_id}", delete(devices::remove))
        .route("/api/notifications", get(devices::prefs).put(devices::set_prefs))
        .route("/api/users", get(channels::users))
        .route("/api/files", post(files::create))
        .route("/api/files/{file_id}", get(files::get).delete(files::delete))
        .route("/api/files/{file_id}/complete", post(files::complete))
        .route_layer(from_fn_with_state(request_timeout, listener::deadline))
        .merge(transfers)
        .fallback(crate::web::fallback)
        .with_state(state)
        .layer(listener::catch_panic())
        .layer(from_fn_with_state("public", confab_core::telemetry::track_http))
}

/// The admin API's routes (bearer `auth.admin_key`).
pub fn admin(state: Arc<AppState>) -> Router {
    crate::admin::router(state)
        .layer(listener::catch_panic())
        .layer(from_fn_with_state("admin", confab_core::telemetry::track_http))
}
