//! Who the caller is, the channels they can see (with unread and mention counts), one channel,
//! and the workspace's users.
//!
//! Visibility: a public channel is readable by everyone in its workspace; a private channel or
//! DM only by its members, and to anyone else it does not exist (404, like a missing one).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_core::ports::{HistoryPage, StoredMessage};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

use crate::http::{authenticate, not_found, readable, uuid, ApiError};
use crate::state::AppState;

/// Unread counts stop at this many (clients show "99+"): counting reads at most one page.
pub const UNREAD_CAP: usize = 100;

/// `GET /api/me`: who the token is (id and name, and their workspace's name), and the channels
/// they belong to.
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

/// Unread messages (others', not deleted, shown in the channel) after `read_seq`, and how many
/// of them mention `me`, both capped at [`UNREAD_CAP`].
fn count_unread(page: &[StoredMessage], read_seq: i64, me: Uuid) -> (usize, usize) {
    let unread: Vec<&StoredMessage> =
        page.iter().filter(|m| m.seq > read_seq && m.user_id != me && !m.deleted).collect();
    let mentions = unread.iter().filter(|m| confab_core::mentions::parse(&m.text).includes(&me)).count();
    (unread.len(), mentions)
}

/// `GET /api/channels`: the public channels of the workspace and every channel the caller is a
/// member of (private ones and DMs included), each with `is_member`, `last_read_seq`,
/// `unread_count` and `mention_count` (for member channels).
pub async fn channels(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let (ws, me) = (claims.workspace_id, claims.user_id);
    let mine: HashSet<Uuid> =
        st.fanout.user_channels(&ws, &me).await.map_err(|e| ApiError::internal("membership", e))?.into_iter().collect();
    let markers: HashMap<Uuid, i64> =
        st.store.read_markers(ws, me).await.map_err(|e| ApiError::internal("read markers", e))?.into_iter().collect();
    let all = st.store.channels(ws).await.map_err(|e| ApiError::internal("channels", e))?;
    let mut out = Vec::new();
    for c in all {
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
            let page = st
                .store
                .history(ws, c.channel_id, HistoryPage::Latest, UNREAD_CAP as i32)
                .await
                .map_err(|e| ApiError::internal("history", e))?;
            let (unread, mentions) = count_unread(&page, read, me);
            v["last_read_seq"] = json!(read);
            v["unread_count"] = json!(unread);
            v["mention_count"] = json!(mentions);
            if c.kind.is_direct() {
                v["members"] = json!(c.members);
            }
        }
        out.push(v);
    }
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Json(json!({ "channels": out })).into_response())
}

/// `GET /api/channels/{id}`: the channel and its members.
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
pub async fn users(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let mut users = st.store.users(claims.workspace_id).await.map_err(|e| ApiError::internal("users", e))?;
    users.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    let users: Vec<_> = users.into_iter().map(|(id, name)| json!({"user_id": id, "name": name})).collect();
    Ok(Json(json!({"users": users})).into_response())
}
