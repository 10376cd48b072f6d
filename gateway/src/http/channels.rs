//! Who the caller is, the channels they can see (with unread and mention counts), one channel,
//! and the workspace's users.
//!
//! Visibility: a public channel is readable by everyone in its workspace; a private channel or
//! DM only by its members, and to anyone else it does not exist (404, like a missing one).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_core::unread::RecentActivity;
use serde::Deserialize;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

use crate::http::{authenticate, not_found, query, readable, uuid, ApiError, Q};
use crate::state::AppState;

/// `GET /api/me`: who the token is (id and name, and their workspace's name), and the channels
/// they belong to.
#[utoipa::path(get, path = "/api/me", tag = "channels",
    responses((status = 200, description = "who the token is, and their channels", body = crate::http::bodies::Me)))]
pub async fn me(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let channels = st
        .fanout
        .user_channels(&claims.workspace_id, &claims.user_id)
        .await
        .map_err(|e| ApiError::internal("membership", e))?;
    let name =
        st.store.user_name(claims.workspace_id, claims.user_id).await.map_err(|e| ApiError::internal("users", e))?;
    let workspace =
        st.store.workspace(claims.workspace_id).await.map_err(|e| ApiError::internal("directory", e))?.map(|w| w.name);
    Ok(Json(json!({"workspace_id": claims.workspace_id, "workspace_name": workspace, "user_id": claims.user_id, "name": name, "channels": channels})).into_response())
}

/// Channels a listing returns when the client names no `limit`, and the most it may ask for.
pub const DEFAULT_CHANNELS_PAGE: usize = 500;
pub const MAX_CHANNELS_PAGE: usize = 1000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChannelsQuery {
    /// Channels of the workspace to look at (500).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Go on after this channel (what `next_after` gives).
    after: Option<Uuid>,
}

/// `GET /api/channels`: the public channels of the workspace and every channel the caller is a
/// member of (private ones and DMs included), each with `is_member`, `last_read_seq`,
/// `unread_count`, `more_unread` (there are more than counted) and `mention_count` (for member
/// channels). Work per call is bounded: it looks at `limit` channels of the workspace (default
/// [`DEFAULT_CHANNELS_PAGE`]), in a stable order, and gives `next_after` to pass back as `after`
/// while there are more (a page holds those of them the caller may see, sorted by name). The
/// counts come from each channel's summary ([`RecentActivity`]), read in one batch: no message
/// is read, and each count stops at [`confab_core::unread::UNREAD_WINDOW`] (clients show "99+").
#[utoipa::path(get, path = "/api/channels", tag = "channels", params(ChannelsQuery),
    responses((status = 200, description = "a page of the channels the caller can see", body = crate::http::bodies::ChannelPage)))]
pub async fn channels(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Q<ChannelsQuery>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let q = query(q)?;
    let limit = q.limit.unwrap_or(DEFAULT_CHANNELS_PAGE);
    if !(1..=MAX_CHANNELS_PAGE).contains(&limit) {
        return Err(ApiError::bad(format!("limit must be between 1 and {MAX_CHANNELS_PAGE}")));
    }
    let (ws, me) = (claims.workspace_id, claims.user_id);
    let page = st.store.channels_page(ws, q.after, limit).await.map_err(|e| ApiError::internal("channels", e))?;
    let next_after = (page.len() == limit).then(|| page.last().map(|c| c.channel_id)).flatten();
    let mine: HashSet<Uuid> =
        st.fanout.user_channels(&ws, &me).await.map_err(|e| ApiError::internal("membership", e))?.into_iter().collect();
    let markers: HashMap<Uuid, i64> =
        st.store.read_markers(ws, me).await.map_err(|e| ApiError::internal("read markers", e))?.into_iter().collect();
    let member_channels: Vec<Uuid> = page.iter().map(|c| c.channel_id).filter(|c| mine.contains(c)).collect();
    let activity: HashMap<Uuid, RecentActivity> = st
        .store
        .recent_activity(ws, &member_channels)
        .await
        .map_err(|e| ApiError::internal("channel activity", e))?
        .into_iter()
        .collect();
    let since = retention_start(&st, ws).await?;
    let mut out = Vec::new();
    for c in page {
        let member = mine.contains(&c.channel_id);
        if !member && c.kind.is_private() {
            continue;
        }
        let mut v = json!({
            "channel_id": c.channel_id, "name": c.name, "kind": c.kind, "is_private": c.kind.is_private(),
            "archived": c.archived, "created_by": c.created_by, "created_at": c.created_at,
            "member_count": c.members.len(), "is_member": member, "last_seq": c.last_seq,
        });
        if member {
            let read = markers.get(&c.channel_id).copied().unwrap_or(0);
            let counts = activity.get(&c.channel_id).map(|a| a.counts(&me, read, since)).unwrap_or_default();
            v["last_read_seq"] = json!(read);
            v["unread_count"] = json!(counts.unread);
            v["mention_count"] = json!(counts.mentions);
            v["more_unread"] = json!(counts.more_unread);
            if c.kind.is_direct() {
                v["members"] = json!(c.members);
            }
        }
        out.push(v);
    }
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Json(json!({ "channels": out, "next_after": next_after })).into_response())
}

/// Unix ms before which messages have expired under the workspace's retention (0: kept forever).
/// Rows carry the expiry they were written with; a retention shortened since applies here.
pub(crate) async fn retention_start(st: &AppState, ws: Uuid) -> Result<i64, ApiError> {
    let workspace = st.store.workspace(ws).await.map_err(|e| ApiError::internal("directory", e))?;
    let retention_secs = workspace.map(|w| w.retention_secs).unwrap_or(0);
    if retention_secs <= 0 {
        return Ok(0);
    }
    Ok(chrono::Utc::now().timestamp_millis() - i64::from(retention_secs) * 1000)
}

/// `GET /api/channels/{id}`: the channel and its members.
#[utoipa::path(get, path = "/api/channels/{channel_id}", tag = "channels", params(("channel_id" = Uuid, Path, description = "the channel")),
    responses(
        (status = 200, description = "the channel and its members", body = crate::http::bodies::ChannelDetail),
        (status = 404, description = "`channel_not_found`: no such channel, or a private one the caller is not in", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn channel(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let channel_id = uuid(&channel_id, "channel id")?;
    let c = readable(&st, &claims, channel_id).await?.ok_or_else(not_found)?;
    Ok(Json(json!({
        "channel_id": c.channel_id, "name": c.name, "kind": c.kind, "is_private": c.kind.is_private(), "archived": c.archived,
        "created_by": c.created_by, "created_at": c.created_at, "members": c.members,
    }))
    .into_response())
}

/// `GET /api/users`: everyone in the caller's workspace (`user_id`, `name`), by name, so
/// clients can show names and complete mentions. Presence comes from `/api/presence`.
#[utoipa::path(get, path = "/api/users", tag = "channels",
    responses((status = 200, description = "everyone in the workspace, by name", body = crate::http::bodies::UserList)))]
pub async fn users(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let mut users = st.store.users(claims.workspace_id).await.map_err(|e| ApiError::internal("users", e))?;
    users.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    let users: Vec<_> = users.into_iter().map(|(id, name)| json!({"user_id": id, "name": name})).collect();
    Ok(Json(json!({"users": users})).into_response())
}
