//! `GET /api/presence?user_ids=a,b,..`: a batch lookup of presence, and the workspace's online
//! count.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

use crate::http::{authenticate, ApiError};
use crate::presence::now_ms;
use crate::state::AppState;

/// Users one lookup may name.
pub const MAX_LOOKUP: usize = 500;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    /// Comma-separated user ids.
    user_ids: Option<String>,
}

/// `GET /api/presence?user_ids=a,b`: `{"users":{"a":"active",..},"online_count":n}`.
#[utoipa::path(get, path = "/api/presence", tag = "presence", params(LookupQuery),
    responses((status = 200, description = "each user's presence, and the workspace's online count", body = crate::http::bodies::PresenceLookup)))]
pub async fn lookup(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<LookupQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let Query(q) = q.map_err(|e| ApiError::bad(e.body_text()))?;
    let mut users = Vec::new();
    for part in q.user_ids.as_deref().unwrap_or("").split(',').filter(|p| !p.is_empty()) {
        users.push(part.trim().parse::<Uuid>().map_err(|_| ApiError::bad(format!("`{part}` is not a user id")))?);
    }
    if users.len() > MAX_LOOKUP {
        return Err(ApiError::bad(format!("at most {MAX_LOOKUP} user ids per lookup")));
    }
    let now = now_ms();
    let statuses =
        st.presence.lookup(claims.workspace_id, &users, now).await.map_err(|e| ApiError::internal("presence", e))?;
    let count =
        st.presence.online_count(claims.workspace_id, now).await.map_err(|e| ApiError::internal("presence", e))?;
    let map: serde_json::Map<String, serde_json::Value> =
        users.iter().zip(statuses).map(|(u, s)| (u.to_string(), json!(s))).collect();
    Ok(Json(json!({"users": map, "online_count": count})).into_response())
}
