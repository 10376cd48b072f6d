//! Push registration over HTTP: a user's devices (`POST/GET /api/devices`,
//! `DELETE /api/devices/{id}`) and notification preferences (`GET/PUT /api/notifications`).
//! The notifier (`confab-notifier`) reads both.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use confab_core::push::{DeviceAddress, Prefs};
use confab_core::push_endpoint::{validate_web_push_subscription, EndpointPolicy};
use confab_core::ErrorCode;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

use crate::http::{authenticate, ApiError, Body};
use crate::state::AppState;

/// Devices one user may register.
pub const MAX_DEVICES: usize = 20;

/// `POST /api/devices` with the address the app got from its platform (`{"platform":"apns",
/// "token":..}`, `{"platform":"fcm","token":..}` or a browser subscription `{"platform":
/// "web_push","endpoint":..,"p256dh":..,"auth":..}`). Registering the same address again
/// returns the same `device_id`.
#[utoipa::path(post, path = "/api/devices", tag = "push", request_body = DeviceAddress,
    responses(
        (status = 201, description = "registered (the same address again: the same device)", body = crate::http::bodies::Device),
        (status = 409, description = "`conflict`: the user has the most devices already", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn register(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(address): Body<DeviceAddress>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    if address.key().is_empty() || address.key().len() > 2048 {
        return Err(ApiError::bad("the device token or endpoint must be 1..=2048 bytes"));
    }
    if let DeviceAddress::WebPush { endpoint, p256dh, auth } = &address {
        // checked again at every send, with the host resolved to public addresses only
        let notifier = &st.cfg.notifier;
        let policy = EndpointPolicy {
            allow_http: notifier.webpush_allow_http,
            allow_private_networks: notifier.webpush_allow_private_networks,
        };
        validate_web_push_subscription(endpoint, p256dh, auth, policy)
            .map_err(|why| ApiError::bad(format!("web push subscription: {why}")))?;
    }
    let (ws, user) = (claims.workspace_id, claims.user_id);
    let device_id = Uuid::new_v5(&user, address.key().as_bytes());
    let existing = st.notify.devices(ws, user).await.map_err(|e| ApiError::internal("devices", e))?;
    if existing.len() >= MAX_DEVICES && !existing.iter().any(|(d, _)| *d == device_id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            format!("at most {MAX_DEVICES} devices; remove one first"),
        ));
    }
    let json = serde_json::to_string(&address).expect("address serializes");
    st.notify.put_device(ws, user, device_id, &json).await.map_err(|e| ApiError::internal("devices", e))?;
    Ok((StatusCode::CREATED, Json(json!({"device_id": device_id, "platform": address.platform()}))).into_response())
}

/// `GET /api/devices`: the caller's devices.
#[utoipa::path(get, path = "/api/devices", tag = "push",
    responses((status = 200, description = "the caller's devices", body = crate::http::bodies::DeviceList)))]
pub async fn list(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let devices =
        st.notify.devices(claims.workspace_id, claims.user_id).await.map_err(|e| ApiError::internal("devices", e))?;
    let out: Vec<_> = devices
        .into_iter()
        .filter_map(|(id, a)| {
            serde_json::from_str::<DeviceAddress>(&a).ok().map(|a| json!({"device_id": id, "platform": a.platform()}))
        })
        .collect();
    Ok(Json(json!({ "devices": out })).into_response())
}

/// `DELETE /api/devices/{id}`.
#[utoipa::path(delete, path = "/api/devices/{device_id}", tag = "push",
    params(("device_id" = Uuid, Path, description = "the device")),
    responses(
        (status = 204, description = "removed"),
        (status = 404, description = "`not_found`: no such device of the caller's", body = crate::http::bodies::ErrorBody),
    ))]
pub async fn remove(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let id: Uuid = id.parse().map_err(|_| ApiError::bad("device id must be a UUID"))?;
    match st
        .notify
        .remove_device(claims.workspace_id, claims.user_id, id)
        .await
        .map_err(|e| ApiError::internal("devices", e))?
    {
        true => Ok(StatusCode::NO_CONTENT.into_response()),
        false => Err(ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such device")),
    }
}

/// `GET /api/notifications`: `{"level":"all"|"mentions"|"nothing","muted_channels":[..]}`.
#[utoipa::path(get, path = "/api/notifications", tag = "push",
    responses((status = 200, description = "the caller's notification preferences", body = Prefs)))]
pub async fn prefs(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    let p: Prefs = st
        .notify
        .prefs(claims.workspace_id, claims.user_id)
        .await
        .map_err(|e| ApiError::internal("preferences", e))?
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default();
    Ok(Json(p).into_response())
}

/// `PUT /api/notifications` with the whole preferences object.
#[utoipa::path(put, path = "/api/notifications", tag = "push", request_body = Prefs,
    responses((status = 200, description = "the preferences as stored", body = Prefs)))]
pub async fn set_prefs(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(p): Body<Prefs>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&st, &headers, None)?;
    if p.muted_channels.len() > 10_000 {
        return Err(ApiError::bad("at most 10000 muted channels"));
    }
    let json = serde_json::to_string(&p).expect("prefs serialize");
    st.notify
        .put_prefs(claims.workspace_id, claims.user_id, &json)
        .await
        .map_err(|e| ApiError::internal("preferences", e))?;
    Ok(Json(p).into_response())
}
