//! `POST /admin/keys/open`: data teams reading the events topic with a stock Avro client see
//! texts and file names as sealed boxes; they send a workspace's boxes here (bearer
//! `keys.reader_key`) and get each field's text back, or `redacted` when its key was destroyed
//! (a delete, an edit, retention, a deleted workspace). The gateway must hold the master key.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{extract::State, Json};
use base64::Engine;
use confab_core::sealing::{SealedBox, SealedField};
use confab_core::ErrorCode;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

use crate::http::{bearer, ApiError, Body};
use crate::state::AppState;

/// Boxes one request may open.
pub const MAX_BOXES: usize = 1_000;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    workspace_id: Uuid,
    #[schema(max_items = 1000)]
    boxes: Vec<BoxJson>,
}

/// A `SealedBox` of the Avro record, its bytes in base64.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BoxJson {
    key_id: Uuid,
    field: String,
    nonce: String,
    ciphertext: String,
}

impl BoxJson {
    fn sealed_box(&self) -> Result<SealedBox, ApiError> {
        let field = SealedField::parse(&self.field)
            .ok_or_else(|| ApiError::bad(format!("`{}` is not a sealed field (text, file_name:<id>)", self.field)))?;
        let bytes = |what: &str, b64: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| ApiError::bad(format!("`{what}` must be base64")))
        };
        Ok(SealedBox {
            key_id: self.key_id,
            field,
            nonce: bytes("nonce", &self.nonce)?,
            ciphertext: bytes("ciphertext", &self.ciphertext)?,
        })
    }
}

/// `POST /admin/keys/open` (bearer `keys.reader_key`, not the admin key).
#[utoipa::path(post, path = "/admin/keys/open", tag = "data teams", request_body = OpenRequest,
    responses(
        (status = 200, description = "each field opened, or redacted", body = crate::admin::bodies::OpenedFields),
        (status = 404, description = "`not_found`: no `keys.reader_key` is set on this gateway", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn open(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(req): Body<OpenRequest>,
) -> Result<Response, ApiError> {
    let reader_key = &st.cfg.keys.reader_key;
    let Some(offered) = bearer(&headers) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, "reader key missing"));
    };
    if reader_key.is_empty() {
        let message = "opening sealed fields is off: set `keys.reader_key`";
        return Err(ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message));
    }
    if !confab_core::auth::key_matches(offered, reader_key) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, "reader key missing or wrong"));
    }
    let Some(keyring) = &st.keyring else {
        let message = "this gateway has no `keys.master_key`: it cannot open sealed fields";
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, message));
    };
    if req.boxes.len() > MAX_BOXES {
        return Err(ApiError::bad(format!("at most {MAX_BOXES} boxes per request")));
    }
    let boxes = req.boxes.iter().map(BoxJson::sealed_box).collect::<Result<Vec<_>, _>>()?;
    let opened = keyring.open_fields(req.workspace_id, &boxes).await.map_err(|e| ApiError::internal("keys", e))?;
    let fields: Vec<_> = boxes
        .iter()
        .zip(opened)
        .map(|(b, opened)| {
            let (key_id, field) = (b.key_id, b.field.label());
            match opened {
                Ok(Some(text)) => json!({"key_id": key_id, "field": field, "text": text}),
                Ok(None) => json!({"key_id": key_id, "field": field, "redacted": true}),
                Err(e) => json!({"key_id": key_id, "field": field, "error": e.to_string()}),
            }
        })
        .collect();
    Ok(Json(json!({"workspace_id": req.workspace_id, "fields": fields})).into_response())
}
