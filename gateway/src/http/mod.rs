//! The user-facing HTTP API (bearer user token) and its plumbing: typed errors, JSON bodies,
//! authentication, and waiting for ingest's answer to a command. Errors are
//! `{"error": {"code": .., "message": ..}}` and never carry internals.
//!
//! - [`channels`]: who I am, the channels I can see with unread counts, a channel, users.
//! - [`history`]: history in both directions and around a message, thread replies, pins.
//! - [`search`]: `GET /api/search`.
//! - [`files`]: uploads, downloads, deletion, and the embedded mode's `/blobs/`.
//! - [`devices`]: push registration and notification preferences.
//! - [`presence`]: `GET /api/presence`.

pub mod bodies;
pub mod channels;
pub mod devices;
pub mod files;
pub mod history;
pub mod presence;
pub mod search;

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_core::command::{Command, Outcome};
use confab_core::ports::{ChannelInfo, PortError, PortErrorKind};
use confab_core::{AuthError, Claims, ErrorCode};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

use crate::revocations::Refusal;
use crate::state::AppState;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
    /// A failed dependency: logged with its details, answered without them (503 for what may
    /// pass, 500 for what will not).
    pub fn internal(what: &str, e: PortError) -> Self {
        tracing::error!(error = %e, kind = %e.kind(), what, "request failed");
        match e.kind() {
            PortErrorKind::Transient => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                format!("{what} is unavailable, try again"),
            ),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, format!("{what} failed")),
        }
    }
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidField, message)
    }
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

/// Writes a command to the log and waits for ingest's answer (at most 30 s).
pub async fn command_outcome(st: &AppState, cmd: &Command) -> Result<Outcome, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    st.pending.lock().expect("pending lock").insert(cmd.command_id, tx);
    if let Err(e) = st.produce(cmd).await {
        st.pending.lock().expect("pending lock").remove(&cmd.command_id);
        return Err(ApiError::internal("message log", e));
    }
    match tokio::time::timeout(Duration::from_secs(30), rx).await {
        Ok(Ok(r)) => Ok(r.outcome),
        _ => {
            st.pending.lock().expect("pending lock").remove(&cmd.command_id);
            Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                ErrorCode::Unavailable,
                "ingest did not answer in time; the change may still happen",
            ))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": {"code": self.code, "message": self.message}}))).into_response()
    }
}

/// A JSON body whose rejection (malformed JSON, a wrong or unknown field, a wrong content type)
/// is a typed `invalid_field` error like every other bad input, not axum's plain text.
pub struct Body<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(ApiError::bad(e.body_text())),
        }
    }
}

/// The token of an `Authorization: Bearer` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// The token a browser's WebSocket offers as a subprotocol: `Sec-WebSocket-Protocol: confab,
/// bearer.<token>` (the server answers with `confab`), which keeps it out of URLs and logs.
pub(crate) fn subprotocol_token(headers: &HeaderMap) -> Option<&str> {
    let offered = headers.get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    offered.split(',').map(str::trim).find_map(|p| p.strip_prefix("bearer."))
}

/// Verifies a user token from the `Authorization` header, a WebSocket subprotocol, or (for
/// compatibility, discouraged: URLs end up in logs) `?token=`; a revoked token is refused.
pub fn authenticate(st: &AppState, headers: &HeaderMap, query_token: Option<&str>) -> Result<Claims, ApiError> {
    let token = bearer(headers).or_else(|| subprotocol_token(headers)).or(query_token).ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, AuthError::Missing.to_string())
    })?;
    let claims = st.verifier.verify(token, chrono::Utc::now().timestamp()).map_err(|e| match e {
        AuthError::Expired => {
            ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::TokenExpired, "token expired; get a new one")
        }
        AuthError::UnknownKey => {
            // perhaps a key the app's backend rotated in since the JWKS was read
            st.jwks_refresh.notify_one();
            ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, AuthError::UnknownKey.to_string())
        }
        other => ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, other.to_string()),
    })?;
    match st.revocations.refusal(&claims) {
        None => Ok(claims),
        Some(Refusal::Revoked) => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::TokenRevoked, "token revoked; get a new one"))
        }
        Some(Refusal::Deactivated) => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::UserDeactivated, "this account is deactivated"))
        }
        Some(Refusal::WorkspaceDeleted) => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::WorkspaceDeleted, "this workspace was deleted"))
        }
        Some(Refusal::NotReady) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "the gateway cannot check tokens yet (its store is unreachable); retry shortly",
        )),
    }
}

/// A query string, or why it could not be read.
pub(crate) type Q<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

/// The query's value, or a typed `invalid_field` error.
pub(crate) fn query<T>(q: Q<T>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError::bad(e.body_text()))
}

/// A message id a client names: a TIMEUUID (version 1), as every message id is. Any other UUID
/// names no message, and is refused here before it reaches a store whose columns are typed so
/// (Cassandra answers such a value with an error, which was a 500).
pub(crate) fn message_id(id: Uuid, what: &str) -> Result<Uuid, ApiError> {
    match id.get_version_num() {
        1 => Ok(id),
        _ => Err(ApiError::bad(format!("{what} must be a message id (a time-based UUID)"))),
    }
}

/// A path segment as a UUID, or a typed `invalid_field` error naming `what`.
pub(crate) fn uuid(s: &str, what: &str) -> Result<Uuid, ApiError> {
    s.parse().map_err(|_| ApiError::bad(format!("{what} must be a UUID")))
}

pub(crate) fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::ChannelNotFound, "no such channel, or you are not a member")
}

/// The channel if the caller may read it: a member, or anyone in the workspace for a public
/// channel. Membership comes from the fanout index (what the gateways deliver by), the channel's
/// kind from the timeline.
pub async fn readable(st: &AppState, claims: &Claims, channel_id: Uuid) -> Result<Option<ChannelInfo>, ApiError> {
    let member = st
        .fanout
        .is_member(&claims.workspace_id, &channel_id, &claims.user_id)
        .await
        .map_err(|e| ApiError::internal("membership", e))?;
    let info =
        st.store.channel(claims.workspace_id, channel_id).await.map_err(|e| ApiError::internal("channels", e))?;
    match info {
        Some(c) if member || !c.kind.is_private() => Ok(Some(c)),
        None if member => Ok(None),
        _ => Err(not_found()),
    }
}
