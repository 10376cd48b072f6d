//! A fake APNs: the provider API over HTTP/2 cleartext (h2c, prior knowledge).
//!
//! It checks what APNs checks: HTTP/2, `POST /3/device/<64 hex>`, a provider token
//! (ES256 JWT, `kid` = its key id, `iss` = its team, `iat` under an hour old) signed
//! by the key it generated, `apns-topic`, `apns-push-type`, `apns-priority`,
//! `apns-collapse-id` and a JSON payload with `aps` of at most 4096 bytes; and
//! answers like APNs: `200` with `apns-id`, or a status with `{"reason": ...}`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{request::Parts, Method, Version};
use axum::response::{IntoResponse, Response};
use axum::Router;
use p256::ecdsa::{SigningKey, VerifyingKey};
use serde_json::{json, Value};

use super::{header, json_response, read_request, Recording, RecordingFake, Server};
use crate::jwt::{unix_now, verify_es256};
use crate::keys::{ec_key_to_pem, generate_ec_key};
use crate::providers::apns::{ApnsConfig, MAX_COLLAPSE_ID, MAX_PAYLOAD};

/// How old a provider token may be before APNs calls it expired.
const TOKEN_MAX_AGE: u64 = 3600;

/// One request the fake APNs got.
#[derive(Debug, Clone)]
pub struct ApnsRequest {
    /// The client's address: one per connection.
    pub peer: SocketAddr,
    /// The device token from the path.
    pub device_token: String,
    pub version: Version,
    /// The provider token (JWT) from `authorization: bearer`.
    pub provider_token: Option<String>,
    pub topic: Option<String>,
    pub push_type: Option<String>,
    pub priority: Option<String>,
    pub collapse_id: Option<String>,
    pub expiration: Option<String>,
    /// The JSON payload (`Null` if it was not JSON).
    pub payload: Value,
    /// The status the fake answered.
    pub status: u16,
    pub received_at: Instant,
}

struct Refusal {
    status: u16,
    reason: String,
    retry_after: Option<Duration>,
}

fn refuse(status: u16, reason: &str) -> Refusal {
    Refusal { status, reason: reason.to_string(), retry_after: None }
}

struct Service {
    team_id: String,
    key_id: String,
    topic: String,
    verifying_key: VerifyingKey,
    unregistered: Mutex<HashMap<String, u64>>,
    expired_tokens: Mutex<HashSet<String>>,
    seen_tokens: Mutex<HashSet<String>>,
    recording: Recording<ApnsRequest>,
}

/// A running fake APNs; stops when dropped.
pub struct FakeApns {
    server: Server,
    url: String,
    key: SigningKey,
    state: Arc<Service>,
}

impl FakeApns {
    /// Starts one with a fresh signing key, team `TEAM000001`, key id `KEY0000001`
    /// and topic `chat.confab.ios`.
    pub async fn start() -> FakeApns {
        let (listener, url) = Server::bind().await.expect("bind fake APNs");
        let key = generate_ec_key();
        let state = Arc::new(Service {
            team_id: "TEAM000001".into(),
            key_id: "KEY0000001".into(),
            topic: "chat.confab.ios".into(),
            verifying_key: *key.verifying_key(),
            unregistered: Mutex::default(),
            expired_tokens: Mutex::default(),
            seen_tokens: Mutex::default(),
            recording: Recording::new(),
        });
        let router = Router::new().fallback(handle).with_state(state.clone());
        FakeApns { server: Server::serve(listener, router), url, key, state }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    pub fn team_id(&self) -> &str {
        &self.state.team_id
    }

    pub fn key_id(&self) -> &str {
        &self.state.key_id
    }

    pub fn topic(&self) -> &str {
        &self.state.topic
    }

    /// The signing key as Apple hands it out (`.p8`, PKCS#8 PEM).
    pub fn private_key_pem(&self) -> String {
        ec_key_to_pem(&self.key)
    }

    /// A client configuration pointed at this fake.
    pub fn config(&self) -> ApnsConfig {
        ApnsConfig::new(self.team_id(), self.key_id(), self.private_key_pem(), self.topic()).with_base_url(&self.url)
    }

    /// From now on `token` answers `410 Unregistered`.
    pub fn unregister(&self, token: &str) {
        self.state.unregistered.lock().expect("lock").insert(token.to_string(), unix_now() * 1000);
    }

    /// Every provider token seen so far answers `403 ExpiredProviderToken` from now on.
    pub fn expire_provider_tokens(&self) {
        let seen = self.state.seen_tokens.lock().expect("lock").clone();
        self.state.expired_tokens.lock().expect("lock").extend(seen);
    }
}

impl RecordingFake for FakeApns {
    type Request = ApnsRequest;

    fn recording(&self) -> &Recording<ApnsRequest> {
        &self.state.recording
    }
}

async fn handle(
    State(state): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (received_at, parts, body) = read_request(request, 64 * 1024).await;
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let provider_token = header(&parts.headers, "authorization")
        .and_then(|v| v.strip_prefix("bearer ").or_else(|| v.strip_prefix("Bearer ")).map(str::to_string));
    let device_token = parts.uri.path().strip_prefix("/3/device/").unwrap_or("").to_string();

    let verdict = state.judge(&parts, &device_token, provider_token.as_deref(), &body, &payload);
    let status = verdict.as_ref().map_or_else(|r| r.status, |_| 200);
    state.recording.record(ApnsRequest {
        device_token,
        version: parts.version,
        provider_token,
        topic: header(&parts.headers, "apns-topic"),
        push_type: header(&parts.headers, "apns-push-type"),
        priority: header(&parts.headers, "apns-priority"),
        collapse_id: header(&parts.headers, "apns-collapse-id"),
        expiration: header(&parts.headers, "apns-expiration"),
        payload,
        status,
        peer,
        received_at,
    });
    let apns_id = header(&parts.headers, "apns-id").unwrap_or_else(|| uuid::Uuid::new_v4().to_string().to_uppercase());
    match verdict {
        Ok(()) => ([("apns-id", apns_id)], Body::empty()).into_response(),
        Err(refusal) => {
            let mut body = json!({"reason": refusal.reason});
            if refusal.status == 410 {
                body["timestamp"] = json!(unix_now() * 1000);
            }
            let mut response = json_response(refusal.status, body, refusal.retry_after);
            response.headers_mut().insert("apns-id", apns_id.parse().expect("uuid header"));
            response
        }
    }
}

impl Service {
    fn judge(
        &self,
        parts: &Parts,
        device_token: &str,
        provider_token: Option<&str>,
        body: &[u8],
        payload: &Value,
    ) -> Result<(), Refusal> {
        if parts.version != Version::HTTP_2 {
            return Err(refuse(505, "HTTP2Required"));
        }
        if parts.method != Method::POST {
            return Err(refuse(405, "MethodNotAllowed"));
        }
        if !parts.uri.path().starts_with("/3/device/") {
            return Err(refuse(404, "BadPath"));
        }
        self.authenticate(provider_token)?;
        match header(&parts.headers, "apns-topic") {
            None => return Err(refuse(400, "MissingTopic")),
            Some(topic) if topic != self.topic => return Err(refuse(400, "TopicDisallowed")),
            Some(_) => {}
        }
        let push_types =
            ["alert", "background", "location", "voip", "complication", "fileprovider", "mdm", "liveactivity"];
        if !header(&parts.headers, "apns-push-type").is_some_and(|t| push_types.contains(&t.as_str())) {
            return Err(refuse(400, "InvalidPushType"));
        }
        if header(&parts.headers, "apns-priority").is_some_and(|p| !["1", "5", "10"].contains(&p.as_str())) {
            return Err(refuse(400, "BadPriority"));
        }
        if header(&parts.headers, "apns-collapse-id").is_some_and(|c| c.len() > MAX_COLLAPSE_ID) {
            return Err(refuse(400, "BadCollapseId"));
        }
        if header(&parts.headers, "apns-expiration").is_some_and(|e| e.parse::<u64>().is_err()) {
            return Err(refuse(400, "BadExpirationDate"));
        }
        if body.is_empty() {
            return Err(refuse(400, "PayloadEmpty"));
        }
        if body.len() > MAX_PAYLOAD {
            return Err(refuse(413, "PayloadTooLarge"));
        }
        if !payload.get("aps").is_some_and(Value::is_object) {
            return Err(refuse(400, "BadRequest"));
        }
        if device_token.len() != 64 || !device_token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(refuse(400, "BadDeviceToken"));
        }
        if self.unregistered.lock().expect("lock").contains_key(device_token) {
            return Err(refuse(410, "Unregistered"));
        }
        if let Some(fault) = self.recording.faults.next() {
            let reason = if fault.reason.is_empty() { default_reason(fault.status) } else { fault.reason };
            return Err(Refusal { status: fault.status, reason, retry_after: fault.retry_after });
        }
        Ok(())
    }

    fn authenticate(&self, provider_token: Option<&str>) -> Result<(), Refusal> {
        let Some(jwt) = provider_token else {
            return Err(refuse(403, "MissingProviderToken"));
        };
        self.seen_tokens.lock().expect("lock").insert(jwt.to_string());
        let verified = verify_es256(jwt, &self.verifying_key).map_err(|_| refuse(403, "InvalidProviderToken"))?;
        if verified.header["kid"] != self.key_id.as_str() || verified.claims["iss"] != self.team_id.as_str() {
            return Err(refuse(403, "InvalidProviderToken"));
        }
        let Some(iat) = verified.claims["iat"].as_u64() else {
            return Err(refuse(403, "InvalidProviderToken"));
        };
        let now = unix_now();
        if iat > now + 60 {
            return Err(refuse(403, "InvalidProviderToken"));
        }
        if now.saturating_sub(iat) > TOKEN_MAX_AGE || self.expired_tokens.lock().expect("lock").contains(jwt) {
            return Err(refuse(403, "ExpiredProviderToken"));
        }
        Ok(())
    }
}

fn default_reason(status: u16) -> String {
    match status {
        400 => "BadRequest",
        403 => "Forbidden",
        410 => "Unregistered",
        413 => "PayloadTooLarge",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        503 => "ServiceUnavailable",
        _ => "BadRequest",
    }
    .to_string()
}
