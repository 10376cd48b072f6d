//! `GET /api/search?q=..`: Slack's query language over the search index. The query is parsed
//! (`confab_core::search_query`), names are resolved to ids (`in:#channel`, `from:@user`), and
//! the searcher's permissions become filters the index always applies: their workspace, and only
//! channels they can read (public channels and the ones they are a member of). A workspace's
//! retention hides older messages even before the purge removes them.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_core::ports::SearchQuery;
use serde::Deserialize;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

use crate::http::{authenticate, ApiError};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    q: String,
    limit: Option<usize>,
    offset: Option<usize>,
    /// The searcher's offset from UTC in minutes, for `before:`/`after:`/`on:` dates.
    tz: Option<i32>,
}

pub async fn search(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let Query(p) = q.map_err(|e| ApiError::bad(e.body_text()))?;
    let limit = p.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad("limit must be between 1 and 100"));
    }
    let offset = p.offset.unwrap_or(0);
    if offset + limit > 10_000 {
        return Err(ApiError::bad("offset + limit must not exceed 10000"));
    }
    let tz = p.tz.unwrap_or(0);
    if !(-14 * 60..=14 * 60).contains(&tz) {
        return Err(ApiError::bad("tz must be minutes from UTC, between -840 and 840"));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let parsed = confab_core::search_query::parse(&p.q, now, tz).map_err(ApiError::bad)?;
    let (ws, me) = (claims.workspace_id, claims.user_id);

    // what the searcher can read, by id and by name
    let mine: HashSet<Uuid> =
        st.fanout.user_channels(&ws, &me).await.map_err(|e| ApiError::internal("membership", e))?.into_iter().collect();
    let channels = st.store.channels(ws).await.map_err(|e| ApiError::internal("channels", e))?;
    let readable: Vec<_> =
        channels.into_iter().filter(|c| mine.contains(&c.channel_id) || !c.kind.is_private()).collect();
    let names: HashMap<Uuid, String> = readable.iter().map(|c| (c.channel_id, c.name.clone())).collect();
    let mut allowed: Vec<Uuid> = readable.iter().map(|c| c.channel_id).collect();
    if !parsed.in_channels.is_empty() {
        let wanted: HashSet<String> = parsed.in_channels.iter().map(|n| n.to_lowercase()).collect();
        allowed = readable.iter().filter(|c| wanted.contains(&c.name.to_lowercase())).map(|c| c.channel_id).collect();
    }
    let mut from_users = Vec::new();
    if !parsed.from_users.is_empty() {
        let users = st.store.users(ws).await.map_err(|e| ApiError::internal("directory", e))?;
        for name in &parsed.from_users {
            if name == "me" {
                from_users.push(me);
            } else {
                from_users.extend(users.iter().filter(|(_, n)| n.eq_ignore_ascii_case(name)).map(|(id, _)| *id));
            }
        }
        if from_users.is_empty() {
            // nobody by that name: nothing they wrote
            return Ok(Json(json!({"total": 0, "messages": [], "next_offset": null})).into_response());
        }
    }
    let mut after_ms = parsed.after_ms;
    let retention = st
        .store
        .workspace(ws)
        .await
        .map_err(|e| ApiError::internal("directory", e))?
        .map(|w| w.retention_secs)
        .unwrap_or(0);
    if retention > 0 {
        let horizon = now - retention as i64 * 1000;
        after_ms = Some(after_ms.map_or(horizon, |a| a.max(horizon)));
    }
    let query = SearchQuery {
        workspace_id: ws,
        channels: allowed,
        words: parsed.words,
        phrases: parsed.phrases,
        from_users,
        after_ms,
        before_ms: parsed.before_ms,
        has_link: parsed.has_link,
        has_file: parsed.has_file,
        is_thread: parsed.is_thread,
        limit,
        offset,
    };
    let started = std::time::Instant::now();
    let results = st.search.search(&query).await.map_err(|e| ApiError::internal("search", e))?;
    st.metrics.search_latency.observe(started.elapsed().as_secs_f64());
    let messages: Vec<_> = results
        .hits
        .iter()
        .map(|h| {
            json!({
                "message_id": h.message_id, "channel_id": h.channel_id, "channel_name": names.get(&h.channel_id),
                "user_id": h.user_id, "ts": h.ts, "text": h.text, "thread_ts": h.thread_ts,
                "score": h.score, "highlight": h.highlight,
            })
        })
        .collect();
    let next = (offset + messages.len() < results.total as usize && messages.len() == limit).then_some(offset + limit);
    Ok(Json(json!({"total": results.total, "messages": messages, "next_offset": next})).into_response())
}
