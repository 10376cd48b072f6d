//! A channel's history over HTTP: newest first, forward from a message, or around one (a
//! search hit, a permalink); a thread's replies; pins. Rows are turned into the wire type
//! clients read, with attachments whose file was deleted since marked so.
//!
//! Visibility: a public channel is readable by everyone in its workspace; a private channel or
//! DM only by its members, and to anyone else it does not exist (404, like a missing one).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_core::ports::{HistoryPage, StoredMessage};
use confab_core::protocol::MessageView;
use confab_core::ErrorCode;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

use confab_core::views::message_view;

use crate::http::channels::retention_start;
use crate::http::{authenticate, message_id, query, readable, uuid, ApiError, Q};
use crate::state::AppState;

/// Rows as clients see them.
fn views(rows: Vec<StoredMessage>) -> Vec<MessageView> {
    rows.into_iter().map(message_view).collect()
}

/// The rows sent within the workspace's current retention window (`since`, Unix ms; 0: all).
/// Rows expire by themselves with the retention they were written under; this applies a
/// retention shortened since at once.
fn within(rows: Vec<StoredMessage>, since: i64) -> Vec<StoredMessage> {
    rows.into_iter().filter(|m| m.ts >= since).collect()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Messages per page (50). Give at most one of `cursor`, `after` and `around`.
    #[param(minimum = 1, maximum = 200)]
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
#[utoipa::path(get, path = "/api/channels/{channel_id}/messages", tag = "history", params(("channel_id" = Uuid, Path, description = "the channel"), HistoryQuery),
    responses(
        (status = 200, description = "a page of messages", body = crate::http::bodies::MessagePage),
        (status = 404, description = "`channel_not_found`, or `message_not_found` for `around`", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn history(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
    q: Q<HistoryQuery>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let mut q = query(q)?;
    let channel_id = uuid(&channel_id, "channel id")?;
    let limit = limit(q.limit)?;
    q.cursor = q.cursor.map(|id| message_id(id, "cursor")).transpose()?;
    q.after = q.after.map(|id| message_id(id, "after")).transpose()?;
    q.around = q.around.map(|id| message_id(id, "around")).transpose()?;
    if [q.cursor.is_some(), q.after.is_some(), q.around.is_some()].iter().filter(|b| **b).count() > 1 {
        return Err(ApiError::bad("give at most one of cursor, after and around"));
    }
    readable(&st, &claims, channel_id).await?;
    let ws = claims.workspace_id;
    let since = retention_start(&st, ws).await?;
    let read = |page, n| {
        let st = st.clone();
        async move { st.store.history(ws, channel_id, page, n).await.map_err(|e| ApiError::internal("history", e)) }
    };
    let body = if let Some(after) = q.after {
        let messages = read(HistoryPage::After(after), limit).await?;
        let next = (messages.len() == limit as usize).then(|| messages.last().map(|m| m.message_id)).flatten();
        json!({"messages": views(within(messages, since)), "next_after": next})
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
        if center.ts < since {
            return Err(ApiError::new(StatusCode::NOT_FOUND, ErrorCode::MessageNotFound, "the message has expired"));
        }
        let half = (limit / 2).max(1);
        let mut messages = read(HistoryPage::Before(around), half).await?;
        messages.reverse();
        messages.push(center);
        messages.extend(read(HistoryPage::After(around), half).await?);
        json!({"messages": views(within(messages, since))})
    } else {
        let page = q.cursor.map(HistoryPage::Before).unwrap_or(HistoryPage::Latest);
        let messages = within(read(page, limit).await?, since);
        // older pages are older still: a page cut by the window is the last one
        let next = (messages.len() == limit as usize).then(|| messages.last().map(|m| m.message_id)).flatten();
        json!({"messages": views(messages), "next_cursor": next})
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RepliesQuery {
    /// Replies per page (50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i32>,
    /// Replies after this one (what `next_after` gives).
    after: Option<Uuid>,
}

/// `GET /api/channels/{id}/messages/{message_id}/replies`: the parent and its replies, oldest
/// first.
#[utoipa::path(get, path = "/api/channels/{channel_id}/messages/{message_id}/replies", tag = "history",
    params(("channel_id" = Uuid, Path, description = "the channel"), ("message_id" = Uuid, Path, description = "the thread's parent"), RepliesQuery),
    responses(
        (status = 200, description = "the parent and a page of its replies, oldest first", body = crate::http::bodies::Thread),
        (status = 404, description = "`channel_not_found` or `message_not_found`", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn replies(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((channel_id, message_id)): Path<(String, String)>,
    q: Q<RepliesQuery>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let q = query(q)?;
    let channel_id = uuid(&channel_id, "channel id")?;
    let parent = self::message_id(uuid(&message_id, "message id")?, "message id")?;
    let after = q.after.map(|id| self::message_id(id, "after")).transpose()?;
    let limit = limit(q.limit)?;
    readable(&st, &claims, channel_id).await?;
    let ws = claims.workspace_id;
    let since = retention_start(&st, ws).await?;
    let root = st.store.message(ws, channel_id, parent).await.map_err(|e| ApiError::internal("history", e))?;
    let Some(root) = root.filter(|m| m.ts >= since) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::MessageNotFound,
            "no such message in this channel",
        ));
    };
    let replies =
        st.store.thread(ws, channel_id, parent, after, limit).await.map_err(|e| ApiError::internal("threads", e))?;
    let next = (replies.len() == limit as usize).then(|| replies.last().map(|m| m.message_id)).flatten();
    let replies = within(replies, since);
    Ok(Json(
        mark_deleted_files(
            &st,
            ws,
            json!({"parent": message_view(root), "replies": views(replies), "next_after": next}),
        )
        .await?,
    )
    .into_response())
}

/// `GET /api/channels/{id}/pins`: pinned messages, newest first.
#[utoipa::path(get, path = "/api/channels/{channel_id}/pins", tag = "history", params(("channel_id" = Uuid, Path, description = "the channel")),
    responses(
        (status = 200, description = "pinned messages, newest first (`messages` only)", body = crate::http::bodies::MessagePage),
        (status = 404, description = "`channel_not_found`", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn pins(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let channel_id = uuid(&channel_id, "channel id")?;
    readable(&st, &claims, channel_id).await?;
    let pins = st.store.pins(claims.workspace_id, channel_id).await.map_err(|e| ApiError::internal("pins", e))?;
    let pins = within(pins, retention_start(&st, claims.workspace_id).await?);
    Ok(Json(mark_deleted_files(&st, claims.workspace_id, json!({ "messages": views(pins) })).await?).into_response())
}
