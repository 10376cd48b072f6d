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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Words, "phrases", and the modifiers `in:#channel`, `from:@name`, `before:`, `after:`,
    /// `on:` (dates), `has:link`, `has:file`, `is:thread`.
    q: String,
    /// Hits per page (20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// Hits to skip (what `next_offset` gives); `offset + limit` at most 10,000.
    #[param(maximum = 9999)]
    offset: Option<usize>,
    /// The searcher's offset from UTC in minutes, for `before:`/`after:`/`on:` dates (0).
    #[param(minimum = -840, maximum = 840)]
    tz: Option<i32>,
}

/// `GET /api/search`: the messages the caller may read that match `q`, best first.
#[utoipa::path(get, path = "/api/search", tag = "search", params(SearchParams),
    responses((status = 200, description = "a page of hits", body = crate::http::bodies::SearchResults)))]
pub async fn search(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let Query(p) = q.map_err(|e| ApiError::bad(e.body_text()))?;
    let (limit, offset, tz) = checked_params(&p)?;
    let now = chrono::Utc::now().timestamp_millis();
    let parsed = confab_core::search_query::parse(&p.q, now, tz).map_err(ApiError::bad)?;
    let (ws, me) = (claims.workspace_id, claims.user_id);
    let scope = Scope::of(&st, ws, me, &parsed.in_channels).await?;
    let Some(from_users) = authors(&st, ws, me, &parsed.from_users).await? else {
        // nobody by that name: nothing they wrote
        return Ok(Json(json!({"total": 0, "messages": [], "next_offset": null})).into_response());
    };
    let query = SearchQuery {
        workspace_id: ws,
        channels: scope.allowed,
        words: parsed.words,
        phrases: parsed.phrases,
        from_users,
        after_ms: within_retention(&st, ws, now, parsed.after_ms).await?,
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
    let messages: Vec<_> = results.hits.iter().map(|h| hit_json(h, &scope.names)).collect();
    let next = (offset + messages.len() < results.total as usize && messages.len() == limit).then_some(offset + limit);
    Ok(Json(json!({"total": results.total, "messages": messages, "next_offset": next})).into_response())
}

/// `limit`, `offset` and `tz`, each within its bounds.
fn checked_params(p: &SearchParams) -> Result<(usize, usize, i32), ApiError> {
    let limit = p.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad("limit must be between 1 and 100"));
    }
    let offset = p.offset.unwrap_or(0);
    if offset.saturating_add(limit) > 10_000 {
        return Err(ApiError::bad("offset + limit must not exceed 10000"));
    }
    let tz = p.tz.unwrap_or(0);
    if !(-14 * 60..=14 * 60).contains(&tz) {
        return Err(ApiError::bad("tz must be minutes from UTC, between -840 and 840"));
    }
    Ok((limit, offset, tz))
}

/// What the searcher may read: their channels and the workspace's public ones, narrowed to the
/// `in:` channels if any, and every readable channel's name.
struct Scope {
    allowed: Vec<Uuid>,
    names: HashMap<Uuid, String>,
}

impl Scope {
    async fn of(st: &AppState, ws: Uuid, me: Uuid, in_channels: &[String]) -> Result<Scope, ApiError> {
        let mine: HashSet<Uuid> = st
            .fanout
            .user_channels(&ws, &me)
            .await
            .map_err(|e| ApiError::internal("membership", e))?
            .into_iter()
            .collect();
        let channels = st.store.channels(ws).await.map_err(|e| ApiError::internal("channels", e))?;
        let readable: Vec<_> =
            channels.into_iter().filter(|c| mine.contains(&c.channel_id) || !c.kind.is_private()).collect();
        let names = readable.iter().map(|c| (c.channel_id, c.name.clone())).collect();
        let wanted: HashSet<String> = in_channels.iter().map(|n| n.to_lowercase()).collect();
        let allowed = readable
            .iter()
            .filter(|c| wanted.is_empty() || wanted.contains(&c.name.to_lowercase()))
            .map(|c| c.channel_id)
            .collect();
        Ok(Scope { allowed, names })
    }
}

/// The users `from:` names (`me` is the searcher); `None` when names were given and none
/// matches anybody.
async fn authors(st: &AppState, ws: Uuid, me: Uuid, names: &[String]) -> Result<Option<Vec<Uuid>>, ApiError> {
    if names.is_empty() {
        return Ok(Some(vec![]));
    }
    let users = st.store.users(ws).await.map_err(|e| ApiError::internal("directory", e))?;
    let mut found = Vec::new();
    for name in names {
        if name == "me" {
            found.push(me);
        } else {
            found.extend(users.iter().filter(|(_, n)| n.eq_ignore_ascii_case(name)).map(|(id, _)| *id));
        }
    }
    Ok((!found.is_empty()).then_some(found))
}

/// The lower time bound of a search: `after:` if given, never before the workspace's retention
/// horizon.
async fn within_retention(st: &AppState, ws: Uuid, now: i64, after_ms: Option<i64>) -> Result<Option<i64>, ApiError> {
    let workspace = st.store.workspace(ws).await.map_err(|e| ApiError::internal("directory", e))?;
    let retention = workspace.map(|w| w.retention_secs).unwrap_or(0);
    if retention <= 0 {
        return Ok(after_ms);
    }
    let horizon = now - retention as i64 * 1000;
    Ok(Some(after_ms.map_or(horizon, |a| a.max(horizon))))
}

fn hit_json(h: &confab_core::ports::SearchHit, names: &HashMap<Uuid, String>) -> serde_json::Value {
    json!({
        "message_id": h.message_id, "channel_id": h.channel_id, "channel_name": names.get(&h.channel_id),
        "user_id": h.user_id, "ts": h.ts, "text": h.text, "thread_ts": h.thread_ts,
        "score": h.score, "highlight": h.highlight,
    })
}
