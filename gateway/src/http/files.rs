//! File sharing over HTTP. Bytes never pass through the log or the message store:
//!
//! 1. `POST /api/files` `{channel_id, name, size, content_type}`: the workspace's limits are
//!    checked, and the answer holds a pre-signed upload URL (one object, this size and type,
//!    expiring) and an `upload_token` that remembers what was asked for.
//! 2. The client `PUT`s the bytes to that URL: the object store (S3), or this gateway's
//!    `/blobs/` in embedded mode (streamed to disk, never buffered). The bytes land under
//!    `incoming/`; an upload not completed within `files.complete_grace_secs` after its URL
//!    expired is deleted by [`sweep_incomplete_uploads`].
//! 3. `POST /api/files/{id}/complete` `{upload_token}`: the object must be there with the
//!    declared size (otherwise it is discarded); it moves to its shared place and counts
//!    against the workspace's storage quota (over it, it is discarded), then a `ShareFile`
//!    command puts `file:shared` in the channel's log. Messages attach shared files
//!    by id (`message:send` `file_ids`).
//! 4. `GET /api/files/{id}`: the file and a short-lived download URL, for members of the
//!    channel it was shared in only. `DELETE /api/files/{id}` (the uploader) revokes it, as
//!    does deleting the message carrying it: no more URLs, and the bytes are removed.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use confab_core::command::{CommandBody, Outcome};
use confab_core::files::{
    incoming_key, normalize_content_type, object_key, type_allowed, validate_file_name, Attachment, FileRecord,
    INCOMING_PREFIX,
};
use confab_core::ports::Workspace;
use confab_core::ports::{BlobStore, ByteStream, GatewayServedBlobs, LinkError, LinkGrant, PortError, PortErrorKind};
use confab_core::{Claims, ErrorCode};
use futures::{StreamExt, TryStreamExt};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use crate::http::{authenticate, command_outcome, uuid, ApiError, Body};
use crate::state::AppState;

/// Uploads never completed deleted per sweep, at most (the next sweep takes the rest).
const SWEEP_BATCH: usize = 1000;

fn blobs(st: &AppState) -> Result<&Arc<dyn BlobStore>, ApiError> {
    st.blobs.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "file sharing is not configured on this server",
        )
    })
}

fn blob_error(e: PortError) -> ApiError {
    ApiError::internal("file storage", e)
}

fn link_error(e: LinkError) -> ApiError {
    match e {
        LinkError::Expired => {
            ApiError::new(StatusCode::FORBIDDEN, ErrorCode::LinkExpired, "the link has expired; ask for a new one")
        }
        LinkError::BadSignature => {
            ApiError::new(StatusCode::FORBIDDEN, ErrorCode::InvalidSignature, "the link's signature does not match")
        }
    }
}

/// The URL clients reach this gateway at (for URLs it signs and serves itself).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let proto =
        headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).filter(|p| *p == "https").unwrap_or("http");
    format!("{proto}://{host}")
}

/// What an upload was granted for, signed by the gateway and handed back at completion.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Ticket {
    ws: Uuid,
    user: Uuid,
    channel: Uuid,
    exp: i64,
    #[serde(flatten)]
    file: Attachment,
}

type HmacSha256 = Hmac<Sha256>;

fn ticket_mac(secret: &str, payload: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(b"confab upload tickets v1\n");
    mac.update(payload.as_bytes());
    mac
}

fn sign_ticket(secret: &str, t: &Ticket) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = b64.encode(serde_json::to_vec(t).expect("ticket serializes"));
    let sig = b64.encode(ticket_mac(secret, &payload).finalize().into_bytes());
    format!("{payload}.{sig}")
}

fn open_ticket(secret: &str, token: &str, now: i64) -> Result<Ticket, ApiError> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bad = || {
        ApiError::new(StatusCode::FORBIDDEN, ErrorCode::InvalidSignature, "upload_token is not one this server issued")
    };
    let (payload, sig) = token.split_once('.').ok_or_else(bad)?;
    let sig = b64.decode(sig).map_err(|_| bad())?;
    ticket_mac(secret, payload).verify_slice(&sig).map_err(|_| bad())?;
    let t: Ticket = serde_json::from_slice(&b64.decode(payload).map_err(|_| bad())?).map_err(|_| bad())?;
    if now > t.exp {
        return Err(ApiError::new(StatusCode::FORBIDDEN, ErrorCode::LinkExpired, "the upload expired; start again"));
    }
    Ok(t)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    channel_id: Uuid,
    name: String,
    size: u64,
    content_type: String,
}

/// `POST /api/files`: checks the request against the workspace's limits and hands out an
/// upload URL and token. Nothing is recorded yet.
#[utoipa::path(post, path = "/api/files", tag = "files", request_body = NewUpload,
    responses(
        (status = 201, description = "where to upload the bytes, and the token that completes the upload", body = crate::http::bodies::UploadGrant),
        (status = 403, description = "`not_a_member`: join the channel first", body = crate::http::bodies::ErrorBody),
        (status = 404, description = "`channel_not_found`", body = crate::http::bodies::ErrorBody),
        (status = 409, description = "`channel_archived`", body = crate::http::bodies::ErrorBody),
        (status = 413, description = "`file_too_large` or `storage_quota_exceeded`", body = crate::http::bodies::ErrorBody),
        (status = 415, description = "`file_type_not_allowed`", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn create(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(b): Body<NewUpload>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let blobs = blobs(&st)?;
    take_from_send_buckets(&st, &claims).await?;
    validate_file_name(&b.name).map_err(ApiError::bad)?;
    let content_type = normalize_content_type(&b.content_type).map_err(ApiError::bad)?;
    let workspace = check_workspace_limits(&st, claims.workspace_id, b.size, &content_type).await?;
    check_storage_left(&st, claims.workspace_id, quota_of(&st, workspace.as_ref()), b.size).await?;
    check_channel_takes_files(&st, &claims, b.channel_id).await?;
    let file =
        Attachment { file_id: Uuid::new_v4(), name: b.name, size: b.size as i64, content_type: content_type.clone() };
    let ttl = Duration::from_secs(st.cfg.files.upload_url_ttl_secs);
    let key = incoming_key(&claims.workspace_id, &file.file_id);
    let upload = blobs.upload_url(&key, b.size, &content_type, ttl, &base_url(&headers)).await.map_err(blob_error)?;
    let expires = chrono::Utc::now().timestamp() + ttl.as_secs() as i64;
    let ticket = Ticket {
        ws: claims.workspace_id,
        user: claims.user_id,
        channel: b.channel_id,
        // an upload token stays valid a little after its URL expired, to complete a transfer
        // that finished just in time
        exp: expires + st.cfg.files.complete_grace_secs as i64,
        file: file.clone(),
    };
    let token = sign_ticket(&st.cfg.auth.token_secret, &ticket);
    st.metrics.files.with_label_values(&["upload_granted"]).inc();
    tracing::info!(workspace_id = %claims.workspace_id, file_id = %file.file_id, size = file.size, "upload granted");
    // Unix milliseconds, like every other time in the API
    let body = json!({"file_id": file.file_id, "upload": upload, "upload_token": token, "expires_at": expires * 1000});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// An upload grant takes from the user's and the workspace's command buckets, as a sent
/// message does: with the URL's lifetime, that bounds the uploads a user can have open at once.
async fn take_from_send_buckets(st: &AppState, claims: &Claims) -> Result<(), ApiError> {
    match st.take_command_token(claims.workspace_id, claims.user_id).await {
        None => Ok(()),
        Some(refused) => Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, refused)),
    }
}

/// The workspace's size and type limits (its own, or the configured defaults); returns the
/// workspace for its other limits.
async fn check_workspace_limits(
    st: &AppState,
    ws: Uuid,
    size: u64,
    content_type: &str,
) -> Result<Option<Workspace>, ApiError> {
    let workspace = st.store.workspace(ws).await.map_err(|e| ApiError::internal("directory", e))?;
    let (max, types) = match &workspace {
        Some(w) => (
            if w.max_file_bytes > 0 { w.max_file_bytes as u64 } else { st.cfg.files.max_bytes },
            if w.file_types.is_empty() { st.cfg.files.allowed_types.clone() } else { w.file_types.clone() },
        ),
        None => (st.cfg.files.max_bytes, st.cfg.files.allowed_types.clone()),
    };
    if size == 0 {
        return Err(ApiError::bad("size must be at least 1 byte"));
    }
    if size > max {
        let message = format!("{size} bytes is over this workspace's limit of {max}");
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::FileTooLarge, message));
    }
    if !type_allowed(content_type, &types) {
        let message = format!("{content_type} files are not accepted here; allowed: {}", types.join(", "));
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::FileTypeNotAllowed, message));
    }
    Ok(workspace)
}

/// The bytes of shared files a workspace may hold: its own quota, or the configured one.
fn quota_of(st: &AppState, workspace: Option<&Workspace>) -> i64 {
    match workspace {
        Some(w) if w.storage_quota_bytes > 0 => w.storage_quota_bytes,
        _ => st.cfg.files.workspace_quota_bytes.min(i64::MAX as u64) as i64,
    }
}

fn quota_exceeded(used: i64, size: u64, quota: i64) -> ApiError {
    let message = format!(
        "this workspace's files take {used} of its {quota} bytes; {size} more do not fit (delete files to make room)"
    );
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::StorageQuotaExceeded, message)
}

/// Refuses an upload early when it cannot fit in what is left of the workspace's quota (the
/// binding check is the reservation at completion: uploads in flight are not counted yet).
async fn check_storage_left(st: &AppState, ws: Uuid, quota: i64, size: u64) -> Result<(), ApiError> {
    let used = st.store.storage_used(ws).await.map_err(|e| ApiError::internal("storage ledger", e))?;
    if used.saturating_add(size.min(i64::MAX as u64) as i64) > quota {
        return Err(quota_exceeded(used, size, quota));
    }
    Ok(())
}

/// Counts a completed upload against the workspace's quota, or discards it when it does not
/// fit any more (files completed meanwhile took the room).
async fn reserve_storage(st: &AppState, blobs: &dyn BlobStore, t: &Ticket, key: &str) -> Result<(), ApiError> {
    let workspace = st.store.workspace(t.ws).await.map_err(|e| ApiError::internal("directory", e))?;
    let quota = quota_of(st, workspace.as_ref());
    let ledger = |e| ApiError::internal("storage ledger", e);
    if st.store.reserve_storage(t.ws, t.file.file_id, t.file.size, quota).await.map_err(ledger)? {
        return Ok(());
    }
    blobs.delete(key).await.map_err(blob_error)?;
    st.metrics.files.with_label_values(&["over_quota"]).inc();
    let used = st.store.storage_used(t.ws).await.map_err(ledger)?;
    Err(quota_exceeded(used, t.file.size as u64, quota))
}

/// The channel must take files from this user now (ingest checks again at completion); a
/// private channel of others does not exist for them, as everywhere.
async fn check_channel_takes_files(st: &AppState, claims: &Claims, channel_id: Uuid) -> Result<(), ApiError> {
    let (ws, user) = (claims.workspace_id, claims.user_id);
    let member = st.fanout.is_member(&ws, &channel_id, &user).await.map_err(|e| ApiError::internal("membership", e))?;
    let channel = st.store.channel(ws, channel_id).await.map_err(|e| ApiError::internal("channels", e))?;
    match channel {
        Some(c) if member && c.archived => {
            Err(ApiError::new(StatusCode::CONFLICT, ErrorCode::ChannelArchived, "the channel is archived"))
        }
        Some(c) if !member && !c.kind.is_private() => {
            Err(ApiError::new(StatusCode::FORBIDDEN, ErrorCode::NotAMember, "join the channel first"))
        }
        _ if !member => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ChannelNotFound,
            "no such channel, or you are not a member",
        )),
        _ => Ok(()),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    /// What `POST /api/files` gave.
    upload_token: String,
}

/// `POST /api/files/{id}/complete`: the upload is there with its declared size, so the file
/// is shared in its channel (`file:shared`). A wrong size discards the upload.
#[utoipa::path(post, path = "/api/files/{file_id}/complete", tag = "files", params(("file_id" = Uuid, Path, description = "the file")), request_body = Completion,
    responses(
        (status = 201, description = "the file is shared in its channel (`file:shared`)", body = crate::http::bodies::FileShared),
        (status = 403, description = "`invalid_signature`, `link_expired` or `forbidden`: not this caller's upload", body = crate::http::bodies::ErrorBody),
        (status = 404, description = "`channel_not_found`", body = crate::http::bodies::ErrorBody),
        (status = 409, description = "`conflict` (already shared) or `upload_incomplete` (the bytes are missing or of another size)", body = crate::http::bodies::ErrorBody),
        (status = 410, description = "`file_deleted`", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn complete(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(file_id): Path<String>,
    Body(b): Body<Completion>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let blobs = blobs(&st)?;
    let file_id: Uuid = file_id.parse().map_err(|_| ApiError::bad("file id must be a UUID"))?;
    let t = open_ticket(&st.cfg.auth.token_secret, &b.upload_token, chrono::Utc::now().timestamp())?;
    if t.ws != claims.workspace_id || t.user != claims.user_id || t.file.file_id != file_id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "this upload_token belongs to another upload",
        ));
    }
    if st.store.file(t.ws, file_id).await.map_err(|e| ApiError::internal("files", e))?.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, "this file is already shared"));
    }
    let key = object_key(&t.ws, &file_id);
    move_upload_in_place(&st, blobs.as_ref(), &t, &key).await?;
    reserve_storage(&st, blobs.as_ref(), &t, &key).await?;
    let cmd = st.http_command(t.ws, t.user, t.channel, CommandBody::ShareFile { file: t.file.clone() });
    match command_outcome(&st, &cmd).await? {
        Outcome::Done { seq } => {
            st.metrics.files.with_label_values(&["shared"]).inc();
            tracing::info!(workspace_id = %t.ws, channel_id = %t.channel, file_id = %file_id, seq, "file shared");
            Ok((StatusCode::CREATED, Json(json!({"file": t.file, "channel_id": t.channel, "seq": seq})))
                .into_response())
        }
        Outcome::Rejected { code, message } => {
            // refused (no longer a member, archived channel): keep nothing
            blobs.delete(&key).await.map_err(blob_error)?;
            st.store.release_storage(t.ws, file_id).await.map_err(|e| ApiError::internal("storage ledger", e))?;
            Err(rejected(code, message))
        }
        Outcome::Posted { .. } => {
            Err(ApiError::internal("message log", PortError::invalid("a message reply to a file share")))
        }
    }
}

/// Moves a completed upload from `incoming/` to `key` once it has its declared size (a wrong
/// size discards it). An earlier try may have moved it already and failed after.
async fn move_upload_in_place(st: &AppState, blobs: &dyn BlobStore, t: &Ticket, key: &str) -> Result<(), ApiError> {
    let incoming = incoming_key(&t.ws, &t.file.file_id);
    let (from, uploaded) = match blobs.size(&incoming).await.map_err(blob_error)? {
        Some(n) => (incoming.as_str(), Some(n)),
        None => (key, blobs.size(key).await.map_err(blob_error)?),
    };
    match uploaded {
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::UploadIncomplete,
            "nothing was uploaded for this file yet",
        )),
        Some(n) if n != t.file.size as u64 => {
            blobs.delete(from).await.map_err(blob_error)?;
            st.metrics.files.with_label_values(&["size_mismatch"]).inc();
            let m = format!("{n} bytes were uploaded but {} were declared; the upload was discarded", t.file.size);
            Err(ApiError::new(StatusCode::CONFLICT, ErrorCode::UploadIncomplete, m))
        }
        Some(_) if from == key => Ok(()),
        Some(_) => blobs.promote(&incoming, key).await.map_err(|e| match e.kind() {
            // another completion of the same upload moved it first
            PortErrorKind::NotFound => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, "completed twice at once")
            }
            _ => blob_error(e),
        }),
    }
}

/// Seconds an upload is kept past its ticket's expiry before the sweep may delete it.
const SWEEP_MARGIN_SECS: u64 = 2;

/// Deletes the bytes of uploads never completed, every `files.incomplete_sweep_secs`, until
/// shutdown. An upload is abandoned once its token expired: its URL's lifetime and
/// `files.complete_grace_secs` after it was granted, so only bytes written before that long ago
/// (and [`SWEEP_MARGIN_SECS`] more) go. Every gateway sweeps (deleting twice is harmless).
pub async fn sweep_incomplete_uploads(st: Arc<AppState>) {
    let Some(blobs) = st.blobs.clone() else { return };
    let files = &st.cfg.files;
    // object stores keep modification times to the second, and a ticket's expiry is in whole
    // seconds too: the margin keeps the sweep from taking an upload whose ticket still holds
    let abandoned_after =
        Duration::from_secs(files.upload_url_ttl_secs + files.complete_grace_secs + SWEEP_MARGIN_SECS);
    let every = Duration::from_secs(files.incomplete_sweep_secs);
    let mut shutdown = st.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let before = std::time::SystemTime::now() - abandoned_after;
        let keys = match blobs.written_before(INCOMING_PREFIX, before, SWEEP_BATCH).await {
            Ok(keys) => keys,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list uploads never completed; trying again later");
                continue;
            }
        };
        for key in keys {
            match blobs.delete(&key).await {
                Ok(()) => {
                    st.metrics.files.with_label_values(&["incomplete_deleted"]).inc();
                    tracing::info!(key, "deleted an upload never completed");
                }
                Err(e) => tracing::warn!(key, error = %e, "cannot delete an upload never completed"),
            }
        }
    }
}

/// HTTP status for an ingest refusal.
pub fn rejected(code: ErrorCode, message: String) -> ApiError {
    let status = match code {
        ErrorCode::ChannelNotFound | ErrorCode::FileNotFound | ErrorCode::MessageNotFound => StatusCode::NOT_FOUND,
        ErrorCode::NotAMember | ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::ChannelArchived | ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::FileDeleted => StatusCode::GONE,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, code, message)
}

/// The file if the caller may have it: recorded, in their workspace, shared in a channel they
/// are a member of. Anything else is "not found" (a file's existence does not leak).
async fn visible(st: &AppState, ws: Uuid, user: Uuid, file_id: &str) -> Result<FileRecord, ApiError> {
    let missing = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::FileNotFound,
            "no such file, or not shared in a channel you are in",
        )
    };
    let file_id: Uuid = file_id.parse().map_err(|_| ApiError::bad("file id must be a UUID"))?;
    let f = st.store.file(ws, file_id).await.map_err(|e| ApiError::internal("files", e))?.ok_or_else(missing)?;
    let member =
        st.fanout.is_member(&ws, &f.channel_id, &user).await.map_err(|e| ApiError::internal("membership", e))?;
    if !member {
        return Err(missing());
    }
    if f.deleted {
        return Err(ApiError::new(StatusCode::GONE, ErrorCode::FileDeleted, "the file was deleted"));
    }
    Ok(f)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DownloadQuery {
    /// Seconds the URL should live (at most `files.download_url_ttl_secs`, its default).
    #[param(minimum = 1)]
    expires_in: Option<u64>,
}

/// `GET /api/files/{id}`: the file and a download URL for it.
#[utoipa::path(get, path = "/api/files/{file_id}", tag = "files", params(("file_id" = Uuid, Path, description = "the file"), DownloadQuery),
    responses(
        (status = 200, description = "the file and a download URL", body = crate::http::bodies::FileDownload),
        (status = 404, description = "`file_not_found`: no such file, or in a channel the caller cannot read", body = crate::http::bodies::ErrorBody),
        (status = 410, description = "`file_deleted`", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn get(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(file_id): Path<String>,
    q: Result<Query<DownloadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let Query(q) = q.map_err(|e| ApiError::bad(e.body_text()))?;
    let blobs = blobs(&st)?;
    let f = visible(&st, claims.workspace_id, claims.user_id, &file_id).await?;
    let max = st.cfg.files.download_url_ttl_secs;
    let ttl = q.expires_in.unwrap_or(max);
    if ttl == 0 || ttl > max {
        return Err(ApiError::bad(format!("expires_in must be 1..={max} seconds")));
    }
    let key = object_key(&claims.workspace_id, &f.file.file_id);
    let url = blobs
        .download_url(&key, &f.file.name, &f.file.content_type, Duration::from_secs(ttl), &base_url(&headers))
        .await
        .map_err(blob_error)?;
    st.metrics.files.with_label_values(&["download_granted"]).inc();
    let a = &f.file;
    Ok(Json(json!({
        "file_id": a.file_id, "name": a.name, "size": a.size, "content_type": a.content_type,
        "channel_id": f.channel_id, "uploader": f.uploader, "created_at": f.created_at,
        "url": url, "expires_at": (chrono::Utc::now().timestamp() + ttl as i64) * 1000,
    }))
    .into_response())
}

/// `DELETE /api/files/{id}`: the uploader deletes the file (`file:deleted`); its URLs stop
/// working and its bytes are removed.
#[utoipa::path(delete, path = "/api/files/{file_id}", tag = "files", params(("file_id" = Uuid, Path, description = "the file")),
    responses(
        (status = 200, description = "deleted (`file:deleted`), or deleted already", body = crate::http::bodies::FileDeleted),
        (status = 403, description = "`forbidden`: only the uploader deletes a file", body = crate::http::bodies::ErrorBody),
        (status = 404, description = "`file_not_found`", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn delete(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(file_id): Path<String>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let f = match visible(&st, claims.workspace_id, claims.user_id, &file_id).await {
        Err(e) if e.code() == ErrorCode::FileDeleted => return Ok(Json(json!({"deleted": true})).into_response()),
        other => other?,
    };
    let cmd = st.http_command(
        claims.workspace_id,
        claims.user_id,
        f.channel_id,
        CommandBody::DeleteFile { file_id: f.file.file_id },
    );
    match command_outcome(&st, &cmd).await? {
        Outcome::Done { seq } => Ok(Json(json!({"deleted": true, "seq": seq})).into_response()),
        Outcome::Rejected { code, message } => Err(rejected(code, message)),
        Outcome::Posted { .. } => {
            Err(ApiError::internal("message log", PortError::invalid("a message reply to a file deletion")))
        }
    }
}

/// `PUT /blobs/incoming/{ws}/{file}` (embedded mode): an upload through a URL this gateway
/// signed, streamed to disk. The body must be exactly the granted size and type; a recorded
/// file is never overwritten.
#[utoipa::path(put, path = "/blobs/incoming/{ws}/{file}", tag = "files",
    params(("ws" = Uuid, Path, description = "the workspace"), ("file" = Uuid, Path, description = "the file"), ("op" = String, Query, description = "what the link allows (`put` or `get`), signed"),
        ("exp" = i64, Query, description = "when the link expires, Unix seconds, signed"),
        ("sig" = String, Query, description = "the gateway's signature (base64url)"),
        ("size" = Option<u64>, Query, description = "the upload's size, signed"),
        ("ct" = Option<String>, Query, description = "the content type, signed"),
        ("name" = Option<String>, Query, description = "the download's file name, signed")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "exactly the granted bytes, with the granted Content-Type"),
    responses(
        (status = 200, description = "stored"),
        (status = 403, description = "`invalid_signature` or `link_expired`", body = crate::http::bodies::ErrorBody),
        (status = 404, description = "`not_found`: files are not served by this gateway (distributed mode: S3 serves them)", body = crate::http::bodies::ErrorBody),
        (status = 409, description = "`conflict`: the file is shared already", body = crate::http::bodies::ErrorBody),
        (status = 413, description = "`upload_incomplete`: more bytes than granted", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn blob_put(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((ws, file)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let (ws, file) = (uuid(&ws, "workspace id")?, uuid(&file, "file id")?);
    let blobs = local(&st)?;
    let _slot = transfer_slot(&st)?;
    let key = incoming_key(&ws, &file);
    let LinkGrant::Put { size, content_type } =
        blobs.verify(&key, &q, chrono::Utc::now().timestamp()).map_err(link_error)?
    else {
        return Err(ApiError::new(StatusCode::FORBIDDEN, ErrorCode::InvalidSignature, "this link is for downloading"));
    };
    let sent =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| normalize_content_type(v).ok());
    if sent.as_deref() != Some(content_type.as_str()) {
        return Err(ApiError::bad(format!("Content-Type must be {content_type}, as declared")));
    }
    if st.store.file(ws, file).await.map_err(|e| ApiError::internal("files", e))?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            "this file is already shared; upload a new one",
        ));
    }
    let body: ByteStream = body.into_data_stream().map_err(std::io::Error::other).boxed();
    let read = blobs.put_stream(&key, size, body).await.map_err(blob_error)?;
    if read > size {
        let m = format!("the body is larger than the {size} bytes this link allows");
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::UploadIncomplete, m));
    }
    if read < size {
        let m = format!("the body is {read} bytes; this link allows exactly {size}");
        return Err(ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::UploadIncomplete, m));
    }
    Ok(StatusCode::OK.into_response())
}

/// `GET /blobs/{ws}/{file}` (embedded mode): a download through a URL this gateway signed.
#[utoipa::path(get, path = "/blobs/{ws}/{file}", tag = "files",
    params(("ws" = Uuid, Path, description = "the workspace"), ("file" = Uuid, Path, description = "the file"), ("op" = String, Query, description = "what the link allows (`put` or `get`), signed"),
        ("exp" = i64, Query, description = "when the link expires, Unix seconds, signed"),
        ("sig" = String, Query, description = "the gateway's signature (base64url)"),
        ("size" = Option<u64>, Query, description = "the upload's size, signed"),
        ("ct" = Option<String>, Query, description = "the content type, signed"),
        ("name" = Option<String>, Query, description = "the download's file name, signed")),
    responses(
        (status = 200, description = "the file's bytes, with its content type", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 403, description = "`invalid_signature` or `link_expired`", body = crate::http::bodies::ErrorBody),
        (status = 404, description = "`file_not_found`, or `not_found` when files are not served by this gateway", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn blob_get(
    State(st): State<Arc<AppState>>,
    Path((ws, file)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (ws, file) = (uuid(&ws, "workspace id")?, uuid(&file, "file id")?);
    let blobs = local(&st)?;
    let slot = transfer_slot(&st)?;
    let key = object_key(&ws, &file);
    let LinkGrant::Get { name, content_type } =
        blobs.verify(&key, &q, chrono::Utc::now().timestamp()).map_err(link_error)?
    else {
        return Err(ApiError::new(StatusCode::FORBIDDEN, ErrorCode::InvalidSignature, "this link is for uploading"));
    };
    let Some((len, bytes)) = blobs.open(&key).await.map_err(blob_error)? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, ErrorCode::FileNotFound, "the file is gone"));
    };
    // the transfer slot is held until the last byte is sent, the client goes away, or the
    // transfer's time is up (a client that reads too slowly gets a cut-off body)
    let deadline = tokio::time::sleep(Duration::from_secs(st.cfg.files.transfer_timeout_secs));
    let bytes = bytes.take_until(deadline).map(move |chunk| {
        let _held = &slot;
        chunk
    });
    let mut r = axum::body::Body::from_stream(bytes).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let value = |v: &str| HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, value(&content_type));
    h.insert(header::CONTENT_DISPOSITION, value(&confab_core::files::disposition(&name, &content_type)));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    // served from the app's own origin: never let a file run script there
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; img-src 'self'; media-src 'self'; sandbox"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=60"));
    Ok(r)
}

/// A slot for one transfer through the gateway; 503 when `files.max_concurrent_transfers` run.
fn transfer_slot(st: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    st.transfers.clone().try_acquire_owned().map_err(|_| {
        st.metrics.transfers_refused.inc();
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, "too many file transfers at once; retry")
    })
}

/// The store behind the links this gateway serves itself (embedded mode).
fn local(st: &AppState) -> Result<&dyn GatewayServedBlobs, ApiError> {
    match st.blobs.as_ref().and_then(|b| b.gateway_served()) {
        Some(b) => Ok(b),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "files are not served by this gateway")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_open_only_untouched_and_in_time() {
        let t = Ticket {
            ws: Uuid::new_v4(),
            user: Uuid::new_v4(),
            channel: Uuid::new_v4(),
            exp: 1000,
            file: Attachment {
                file_id: Uuid::new_v4(),
                name: "a.txt".into(),
                size: 3,
                content_type: "text/plain".into(),
            },
        };
        let token = sign_ticket("k", &t);
        assert_eq!(open_ticket("k", &token, 999).unwrap(), t);
        assert_eq!(open_ticket("k", &token, 1001).unwrap_err().code(), ErrorCode::LinkExpired);
        assert_eq!(open_ticket("other", &token, 999).unwrap_err().code(), ErrorCode::InvalidSignature);
        // a different size under the same signature
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (_, sig) = token.split_once('.').unwrap();
        let forged = Ticket { file: Attachment { size: 3_000_000, ..t.file.clone() }, ..t };
        let forged = format!("{}.{sig}", b64.encode(serde_json::to_vec(&forged).unwrap()));
        assert_eq!(open_ticket("k", &forged, 999).unwrap_err().code(), ErrorCode::InvalidSignature);
        assert_eq!(open_ticket("k", "garbage", 999).unwrap_err().code(), ErrorCode::InvalidSignature);
    }
}
