//! The admin lifecycle of users and workspaces after they are created: deactivating and
//! reactivating a user, changing a workspace's retention, deleting a workspace. Each writes
//! the directory first (the state that survives restarts), then tells every gateway.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_core::ports::{Deactivation, TokenRevocation};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use super::{admin, audit, existing_user, retention_secs, workspace_exists};
use crate::http::{ApiError, Body};
use crate::state::AppState;
use confab_core::event::AdminAction;

/// `POST /admin/workspaces/{ws}/users/{user}/deactivate`: no token of the user works any more,
/// on any gateway (within `revocations::POLL_INTERVAL`; this one at once), their open sockets
/// close with 4003, no new token is minted for them, and their push devices are unregistered.
/// Their messages stay. Idempotent.
#[utoipa::path(post, path = "/admin/workspaces/{ws}/users/{user}/deactivate", tag = "admin", params(("ws" = Uuid, Path, description = "the workspace"), ("user" = Uuid, Path, description = "the user")),
    responses((status = 200, description = "deactivated", body = crate::admin::bodies::UserState), (status = 404, description = "`not_found`: no such workspace (or user in it)", body = crate::http::bodies::ErrorBody)))]
pub async fn deactivate_user(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((ws, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    set_user_deactivated(&st, &headers, &ws, &user, true).await
}

/// `POST /admin/workspaces/{ws}/users/{user}/reactivate`: the user may sign in again with a
/// token minted from now on; tokens from before stay revoked. Idempotent.
#[utoipa::path(post, path = "/admin/workspaces/{ws}/users/{user}/reactivate", tag = "admin", params(("ws" = Uuid, Path, description = "the workspace"), ("user" = Uuid, Path, description = "the user")),
    responses((status = 200, description = "reactivated", body = crate::admin::bodies::UserState), (status = 404, description = "`not_found`: no such workspace (or user in it)", body = crate::http::bodies::ErrorBody)))]
pub async fn reactivate_user(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((ws, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    set_user_deactivated(&st, &headers, &ws, &user, false).await
}

/// Deactivates or reactivates a user: the audit record, the directory, then every gateway.
async fn set_user_deactivated(
    st: &AppState,
    headers: &HeaderMap,
    ws: &str,
    user: &str,
    deactivated: bool,
) -> Result<Response, ApiError> {
    admin(st, headers)?;
    let (ws, user) = existing_user(st, ws, user).await?;
    let action = if deactivated { AdminAction::UserDeactivated } else { AdminAction::UserReactivated };
    audit(st, ws, action, Some(user), &[]).await?;
    let now = chrono::Utc::now();
    let deactivation =
        deactivated.then(|| Deactivation { workspace_id: ws, user_id: user, at_ms: now.timestamp_millis() });
    st.store.set_user_deactivated(ws, user, deactivation).await.map_err(|e| ApiError::internal("directory", e))?;
    announce(st, ws, user, now, deactivated).await?;
    if deactivated {
        // no more pushes to their phones (what is already queued with an address may still go)
        let devices = st.notify.devices(ws, user).await.map_err(|e| ApiError::internal("devices", e))?;
        for (device_id, _) in &devices {
            st.notify.remove_device(ws, user, *device_id).await.map_err(|e| ApiError::internal("devices", e))?;
        }
        tracing::info!(workspace_id = %ws, user_id = %user, devices = devices.len(), "user deactivated");
    } else {
        tracing::info!(workspace_id = %ws, user_id = %user, "user reactivated");
    }
    Ok(Json(json!({"workspace_id": ws, "user_id": user, "deactivated": deactivated})).into_response())
}

/// Records the change as a revocation of every token issued until now, which every gateway
/// follows, and applies it here at once.
async fn announce(
    st: &AppState,
    ws: uuid::Uuid,
    user: uuid::Uuid,
    now: chrono::DateTime<chrono::Utc>,
    deactivated: bool,
) -> Result<(), ApiError> {
    let revocation = TokenRevocation {
        workspace_id: ws,
        user_id: user,
        revoked_before: now.timestamp(),
        at_ms: now.timestamp_millis(),
        deactivated: Some(deactivated),
    };
    st.store
        .revoke_tokens(&revocation, st.cfg.auth.max_token_lifetime_secs)
        .await
        .map_err(|e| ApiError::internal("revocations", e))?;
    crate::revocations::enforce(st, &revocation);
    Ok(())
}

/// `DELETE /admin/workspaces/{ws}`: the workspace is gone. At once: no token of it works on any
/// gateway (`workspace_deleted`; this one at once, the others within the revocation poll) and its
/// sockets close with 4003; its users' push devices, its presence and its directory go. Then,
/// from the audit record in the log: each projection removes what it holds of it (timeline
/// rows and file bytes, search documents, fanout streams) and the erasure projector destroys
/// its key, which erases every text and file name of it from the log. 202: that part follows.
#[utoipa::path(delete, path = "/admin/workspaces/{ws}", tag = "admin", params(("ws" = Uuid, Path, description = "the workspace")),
    responses((status = 202, description = "deleted; the projections' part follows from the log", body = crate::admin::bodies::WorkspaceDeleted), (status = 404, description = "`not_found`: no such workspace (or user in it)", body = crate::http::bodies::ErrorBody)))]
pub async fn delete_workspace(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(ws): Path<String>,
) -> Result<Response, ApiError> {
    admin(&st, &headers)?;
    let ws = workspace_exists(&st, &ws).await?;
    audit(&st, ws, AdminAction::WorkspaceDeleted, None, &[]).await?;
    let now = chrono::Utc::now();
    let marker = Deactivation { workspace_id: ws, user_id: uuid::Uuid::nil(), at_ms: now.timestamp_millis() };
    st.store
        .set_user_deactivated(ws, uuid::Uuid::nil(), Some(marker))
        .await
        .map_err(|e| ApiError::internal("directory", e))?;
    announce(&st, ws, uuid::Uuid::nil(), now, true).await?;
    // what is not a projection of the log goes here
    let users = st.store.users(ws).await.map_err(|e| ApiError::internal("directory", e))?;
    for (user, _) in &users {
        for (device_id, _) in st.notify.devices(ws, *user).await.map_err(|e| ApiError::internal("devices", e))? {
            st.notify.remove_device(ws, *user, device_id).await.map_err(|e| ApiError::internal("devices", e))?;
        }
    }
    st.presence.sweep(ws, i64::MAX).await.map_err(|e| ApiError::internal("presence", e))?;
    st.store.delete_directory(ws).await.map_err(|e| ApiError::internal("directory", e))?;
    tracing::info!(workspace_id = %ws, users = users.len(), "workspace deleted");
    let body = json!({"workspace_id": ws, "deleted": true, "users": users.len()});
    Ok((axum::http::StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionChange {
    /// Days to keep messages (at most 20 years); 0 keeps them forever.
    #[serde(default)]
    #[schema(maximum = 7300)]
    retention_days: Option<u32>,
    /// Finer grained; wins over `retention_days`. 0 keeps messages forever.
    #[serde(default)]
    #[schema(maximum = 630_720_000)]
    retention_secs: Option<u32>,
}

/// `PUT /admin/workspaces/{ws}/retention`: history, search and resume apply the new window at
/// once. A shorter window also erases what falls out of it from the log (the erasure
/// projector's sweep destroys those keys); a longer one applies to messages sent from now on
/// (older ones keep the expiry they were written with).
#[utoipa::path(put, path = "/admin/workspaces/{ws}/retention", tag = "admin", params(("ws" = Uuid, Path, description = "the workspace")), request_body = RetentionChange,
    responses((status = 200, description = "changed", body = crate::admin::bodies::RetentionChanged), (status = 404, description = "`not_found`: no such workspace (or user in it)", body = crate::http::bodies::ErrorBody)))]
pub async fn change_retention(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(ws): Path<String>,
    Body(b): Body<RetentionChange>,
) -> Result<Response, ApiError> {
    admin(&st, &headers)?;
    let ws = workspace_exists(&st, &ws).await?;
    if b.retention_secs.is_none() && b.retention_days.is_none() {
        return Err(ApiError::bad("give `retention_secs` or `retention_days` (0: forever)"));
    }
    let secs = retention_secs(b.retention_secs, b.retention_days)?;
    let before = st.store.workspace(ws).await.map_err(|e| ApiError::internal("directory", e))?;
    let previous = before.map(|w| w.retention_secs).unwrap_or(0);
    let details = [("retention_secs", secs.to_string()), ("previous_retention_secs", previous.to_string())];
    audit(&st, ws, AdminAction::RetentionChanged, None, &details).await?;
    st.store.set_workspace_retention(ws, secs).await.map_err(|e| ApiError::internal("directory", e))?;
    tracing::info!(workspace_id = %ws, previous, retention_secs = secs, "workspace retention changed");
    Ok(Json(json!({"workspace_id": ws, "retention_secs": secs, "previous_retention_secs": previous})).into_response())
}
