//! What users read over HTTP (bearer token): their channels with unread and mention counts,
//! history in both directions and around a message, thread replies, pins.
//!
//! Visibility: a public channel is readable by everyone in its workspace; a private channel or
//! DM only by its members, and to anyone else it does not exist (404, like a missing one).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_core::auth::Claims;
use confab_core::ports::{ChannelInfo, HistoryPage};
use confab_core::protocol::{ErrorCode, MessageView};
use serde::Deserialize;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

use crate::http::{authenticate, ApiError};
use crate::server::AppState;

/// Unread counts stop at this many (clients show "99+"): counting reads at most one page.
pub const UNREAD_CAP: usize = 100;

type Q<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn query<T>(q: Q<T>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError::bad(e.body_text()))
}

fn uuid(s: &str, what: &str) -> Result<Uuid, ApiError> {
    s.parse().map_err(|_| ApiError::bad(format!("{what} must be a UUID")))
}

fn not_found() -> ApiError {
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
fn count_unread(page: &[MessageView], read_seq: i64, me: Uuid) -> (usize, usize) {
    let unread: Vec<&MessageView> = page.iter().filter(|m| m.seq > read_seq && m.user_id != me && !m.deleted).collect();
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    limit: Option<i32>,
    /// Older than this message (what `next_cursor` gives).
    cursor: Option<Uuid>,
    /// Newer than this message, oldest first.
    after: Option<Uuid>,
    /// This message with up to `limit / 2` on each side, oldest first.
    around: Option<Uuid>,
}

fn limit(l: Option<i32>) -> Result<i32, ApiError> {
    let limit = l.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad("limit must be between 1 and 200"));
    }
    Ok(limit)
}

/// `GET /api/channels/{id}/messages`: newest first (pass `next_cursor` back as `cursor` for
/// older ones); `after=<message_id>` pages forward, oldest first; `around=<message_id>` returns
/// the neighbourhood of a message (a search hit, a permalink), oldest first.
pub async fn history(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
    q: Q<HistoryQuery>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let q = query(q)?;
    let channel_id = uuid(&channel_id, "channel id")?;
    let limit = limit(q.limit)?;
    if [q.cursor.is_some(), q.after.is_some(), q.around.is_some()].iter().filter(|b| **b).count() > 1 {
        return Err(ApiError::bad("give at most one of cursor, after and around"));
    }
    readable(&st, &claims, channel_id).await?;
    let ws = claims.workspace_id;
    let read = |page, n| {
        let st = st.clone();
        async move { st.store.history(ws, channel_id, page, n).await.map_err(|e| ApiError::internal("history", e)) }
    };
    let body = if let Some(after) = q.after {
        let messages = read(HistoryPage::After(after), limit).await?;
        let next = (messages.len() == limit as usize).then(|| messages.last().map(|m| m.message_id)).flatten();
        json!({"messages": messages, "next_after": next})
    } else if let Some(around) = q.around {
        let Some(center) =
            st.store.message(ws, channel_id, around).await.map_err(|e| ApiError::internal("history", e))?
        else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::MessageNotFound,
                "no such message in this channel",
            ));
        };
        let half = (limit / 2).max(1);
        let mut messages = read(HistoryPage::Before(around), half).await?;
        messages.reverse();
        messages.push(center);
        messages.extend(read(HistoryPage::After(around), half).await?);
        json!({"messages": messages})
    } else {
        let page = q.cursor.map(HistoryPage::Before).unwrap_or(HistoryPage::Latest);
        let messages = read(page, limit).await?;
        let next = (messages.len() == limit as usize).then(|| messages.last().map(|m| m.message_id)).flatten();
        json!({"messages": messages, "next_cursor": next})
    };
    Ok(Json(mark_deleted_files(&st, ws, body).await?).into_response())
}

/// Marks attachments whose file was deleted since (by its uploader) with `"deleted": true`, so
/// clients show "file deleted" without asking for each one. Messages that were deleted carry no
/// attachments any more; files are rare, so this is one lookup per attachment on the page.
async fn mark_deleted_files(
    st: &AppState,
    ws: Uuid,
    mut body: serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    let mut attachments: Vec<&mut serde_json::Value> = Vec::new();
    for (key, v) in body.as_object_mut().into_iter().flatten() {
        let messages: Vec<&mut serde_json::Value> = match (key.as_str(), v) {
            ("messages" | "replies", serde_json::Value::Array(a)) => a.iter_mut().collect(),
            ("parent", m @ serde_json::Value::Object(_)) => vec![m],
            _ => continue,
        };
        for m in messages {
            if let Some(serde_json::Value::Array(a)) = m.get_mut("attachments") {
                attachments.extend(a.iter_mut());
            }
        }
    }
    for a in attachments {
        let Some(id) = a["file_id"].as_str().and_then(|s| s.parse::<Uuid>().ok()) else { continue };
        let f = st.store.file(ws, id).await.map_err(|e| ApiError::internal("files", e))?;
        if f.is_some_and(|f| f.deleted) {
            a["deleted"] = json!(true);
        }
    }
    Ok(body)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepliesQuery {
    limit: Option<i32>,
    /// Replies after this one (what `next_after` gives).
    after: Option<Uuid>,
}

/// `GET /api/channels/{id}/messages/{message_id}/replies`: the parent and its replies, oldest
/// first.
pub async fn replies(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((channel_id, message_id)): Path<(String, String)>,
    q: Q<RepliesQuery>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let q = query(q)?;
    let (channel_id, parent) = (uuid(&channel_id, "channel id")?, uuid(&message_id, "message id")?);
    let limit = limit(q.limit)?;
    readable(&st, &claims, channel_id).await?;
    let ws = claims.workspace_id;
    let Some(root) = st.store.message(ws, channel_id, parent).await.map_err(|e| ApiError::internal("history", e))?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::MessageNotFound,
            "no such message in this channel",
        ));
    };
    let replies =
        st.store.thread(ws, channel_id, parent, q.after, limit).await.map_err(|e| ApiError::internal("threads", e))?;
    let next = (replies.len() == limit as usize).then(|| replies.last().map(|m| m.message_id)).flatten();
    Ok(Json(mark_deleted_files(&st, ws, json!({"parent": root, "replies": replies, "next_after": next})).await?)
        .into_response())
}

/// `GET /api/channels/{id}/pins`: pinned messages, newest first.
pub async fn pins(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let channel_id = uuid(&channel_id, "channel id")?;
    readable(&st, &claims, channel_id).await?;
    let pins = st.store.pins(claims.workspace_id, channel_id).await.map_err(|e| ApiError::internal("pins", e))?;
    Ok(Json(mark_deleted_files(&st, claims.workspace_id, json!({ "messages": pins })).await?).into_response())
}
