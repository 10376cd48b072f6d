//! A fake Web Push service (RFC 8030), playing the browser's part too: it makes
//! subscriptions (a P-256 key pair and an auth secret per subscription, bound to
//! the application server key the "page" subscribed with), and on each push
//! checks VAPID (RFC 8292: signature by the subscription's application server key,
//! `aud` = this service's origin, `exp` within 24 h, `sub` a contact URI), the
//! `TTL`, `Content-Encoding`, `Urgency` and `Topic` headers, then DECRYPTS the
//! `aes128gcm` body (RFC 8291) and records the plaintext. Answers `201 Created`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{request::Parts, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use p256::ecdsa::VerifyingKey;
use p256::SecretKey;
use rand::RngCore;
use serde_json::Value;

use super::{header, read_request, Recording, RecordingFake, Server};
use crate::jwt::{unix_now, verify_es256};
use crate::keys::{b64url, b64url_decode};
use crate::providers::ece;
use crate::{DeviceAddress, PushError};

/// One push the fake service got.
#[derive(Debug, Clone)]
pub struct WebPushRequest {
    /// The client's address: one per connection.
    pub peer: SocketAddr,
    /// The subscription's endpoint the push was posted to.
    pub endpoint: String,
    /// The decrypted message, when it decrypted.
    pub plaintext: Option<Vec<u8>>,
    /// The VAPID token's claims, when its signature verified.
    pub vapid_claims: Option<Value>,
    pub ttl: Option<String>,
    pub urgency: Option<String>,
    pub topic: Option<String>,
    pub content_encoding: Option<String>,
    pub status: u16,
    pub received_at: Instant,
}

impl WebPushRequest {
    /// The plaintext as JSON (`Null` if absent or not JSON).
    pub fn json(&self) -> Value {
        self.plaintext.as_deref().and_then(|p| serde_json::from_slice(p).ok()).unwrap_or(Value::Null)
    }
}

struct Subscription {
    ua_secret: SecretKey,
    auth: [u8; 16],
    application_server_key: Vec<u8>,
    gone: bool,
}

struct Service {
    url: String,
    subscriptions: Mutex<HashMap<String, Subscription>>,
    seen_tokens: Mutex<HashSet<String>>,
    expired_tokens: Mutex<HashSet<String>>,
    recording: Recording<WebPushRequest>,
}

/// A running fake Web Push service; stops when dropped.
pub struct FakeWebPush {
    server: Server,
    state: Arc<Service>,
}

impl FakeWebPush {
    pub async fn start() -> FakeWebPush {
        let (listener, url) = Server::bind().await.expect("bind fake Web Push");
        let state = Arc::new(Service {
            url,
            subscriptions: Mutex::default(),
            seen_tokens: Mutex::default(),
            expired_tokens: Mutex::default(),
            recording: Recording::new(),
        });
        let router = Router::new().fallback(handle).with_state(state.clone());
        FakeWebPush { server: Server::serve(listener, router), state }
    }

    /// `http://127.0.0.1:<port>`: the push service's origin, VAPID's `aud`.
    pub fn url(&self) -> &str {
        &self.state.url
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// What `pushManager.subscribe({applicationServerKey})` gives a page: a new
    /// subscription bound to `application_server_key` (base64url uncompressed
    /// P-256 point, the VAPID public key).
    pub fn subscribe(&self, application_server_key: &str) -> Result<DeviceAddress, PushError> {
        let application_server_key = b64url_decode(application_server_key)?;
        VerifyingKey::from_sec1_bytes(&application_server_key)
            .map_err(|_| PushError::InvalidKey("applicationServerKey is not a P-256 public key".into()))?;
        let ua_secret = SecretKey::random(&mut rand::rngs::OsRng);
        let mut auth = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut auth);
        let id = format!("{:032x}", rand::random::<u128>());
        let endpoint = format!("{}/push/{id}", self.state.url);
        let address = DeviceAddress::WebPush {
            endpoint,
            p256dh: b64url(&crate::keys::ec_public_bytes(&VerifyingKey::from(ua_secret.public_key()))),
            auth: b64url(&auth),
        };
        let subscription = Subscription { ua_secret, auth, application_server_key, gone: false };
        self.state.subscriptions.lock().expect("lock").insert(id, subscription);
        Ok(address)
    }

    /// The subscription at `endpoint` is gone (the user unsubscribed or it
    /// expired): pushes to it answer `410 Gone`.
    pub fn unsubscribe(&self, endpoint: &str) {
        let id = endpoint.rsplit('/').next().unwrap_or_default();
        if let Some(subscription) = self.state.subscriptions.lock().expect("lock").get_mut(id) {
            subscription.gone = true;
        }
    }

    /// Every VAPID token seen so far is refused (`401`) from now on.
    pub fn expire_vapid_tokens(&self) {
        let seen = self.state.seen_tokens.lock().expect("lock").clone();
        self.state.expired_tokens.lock().expect("lock").extend(seen);
    }
}

impl RecordingFake for FakeWebPush {
    type Request = WebPushRequest;

    fn recording(&self) -> &Recording<WebPushRequest> {
        &self.state.recording
    }
}

async fn handle(
    State(state): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (received_at, parts, body) = read_request(request, 64 * 1024).await;
    let mut record = WebPushRequest {
        endpoint: format!("{}{}", state.url, parts.uri.path()),
        plaintext: None,
        vapid_claims: None,
        ttl: header(&parts.headers, "ttl"),
        urgency: header(&parts.headers, "urgency"),
        topic: header(&parts.headers, "topic"),
        content_encoding: header(&parts.headers, "content-encoding"),
        status: 201,
        peer,
        received_at,
    };
    let response = match state.judge(&parts, &body, &mut record) {
        Ok(()) => {
            let location = format!("{}/message/{}", state.url, uuid::Uuid::new_v4());
            (StatusCode::CREATED, [("location", location)], Body::empty()).into_response()
        }
        Err((status, why, after)) => {
            record.status = status;
            let mut response = (StatusCode::from_u16(status).expect("status"), why).into_response();
            if let Some(after) = after {
                response.headers_mut().insert("retry-after", after.as_secs().into());
            }
            response
        }
    };
    state.recording.record(record);
    response
}

type Refusal = (u16, String, Option<Duration>);

fn refuse(status: u16, why: &str) -> Refusal {
    (status, why.to_string(), None)
}

impl Service {
    fn judge(&self, parts: &Parts, body: &[u8], record: &mut WebPushRequest) -> Result<(), Refusal> {
        if parts.method != Method::POST {
            return Err(refuse(405, "push with POST"));
        }
        let Some(id) = parts.uri.path().strip_prefix("/push/") else {
            return Err(refuse(404, "no such subscription"));
        };
        let subscriptions = self.subscriptions.lock().expect("lock");
        let Some(subscription) = subscriptions.get(id) else {
            return Err(refuse(404, "no such subscription"));
        };
        if subscription.gone {
            return Err(refuse(410, "subscription expired or unsubscribed"));
        }
        record.vapid_claims = Some(self.authenticate(parts, &subscription.application_server_key)?);
        match record.ttl.as_deref().map(str::parse::<u64>) {
            Some(Ok(_)) => {}
            _ => return Err(refuse(400, "TTL header missing or not a number")),
        }
        if record.content_encoding.as_deref() != Some("aes128gcm") {
            return Err(refuse(415, "Content-Encoding must be aes128gcm"));
        }
        if record.urgency.as_deref().is_some_and(|u| !["very-low", "low", "normal", "high"].contains(&u)) {
            return Err(refuse(400, "bad Urgency"));
        }
        let bad_topic =
            |t: &str| t.len() > 32 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if record.topic.as_deref().is_some_and(bad_topic) {
            return Err(refuse(400, "Topic must be at most 32 base64url characters"));
        }
        if body.len() > ece::RECORD_SIZE as usize {
            return Err(refuse(413, "payload over 4096 bytes"));
        }
        let plaintext = ece::decrypt(body, &subscription.ua_secret, &subscription.auth)
            .map_err(|e| (400, format!("does not decrypt: {e}"), None))?;
        record.plaintext = Some(plaintext);
        if let Some(fault) = self.recording.faults.next() {
            return Err((fault.status, format!("injected {}", fault.reason), fault.retry_after));
        }
        Ok(())
    }

    /// Checks `Authorization: vapid t=<jwt>, k=<key>`; returns the token's claims.
    fn authenticate(&self, parts: &Parts, application_server_key: &[u8]) -> Result<Value, Refusal> {
        let unauthorized = |why: &str| refuse(401, why);
        let authorization = header(&parts.headers, "authorization").ok_or_else(|| unauthorized("no Authorization"))?;
        let params =
            authorization.strip_prefix("vapid ").ok_or_else(|| unauthorized("Authorization scheme is not vapid"))?;
        let mut token = None;
        let mut key = None;
        for param in params.split(',') {
            match param.trim().split_once('=') {
                Some(("t", value)) => token = Some(value.trim().to_string()),
                Some(("k", value)) => key = Some(value.trim().to_string()),
                _ => {}
            }
        }
        let (Some(token), Some(key)) = (token, key) else {
            return Err(unauthorized("vapid needs t and k"));
        };
        self.seen_tokens.lock().expect("lock").insert(token.clone());
        let key = b64url_decode(&key).map_err(|_| unauthorized("k is not base64url"))?;
        if key != application_server_key {
            return Err(refuse(403, "k is not the key this subscription was made with"));
        }
        let verifying_key = VerifyingKey::from_sec1_bytes(&key).map_err(|_| unauthorized("k is not a P-256 key"))?;
        let claims = verify_es256(&token, &verifying_key).map_err(|_| unauthorized("VAPID signature"))?.claims;
        if claims["aud"] != self.url.as_str() {
            return Err(unauthorized("aud is not this push service's origin"));
        }
        let now = unix_now();
        match claims["exp"].as_u64() {
            Some(exp) if exp > now && exp <= now + 24 * 3600 + 60 => {}
            _ => return Err(unauthorized("exp missing, past, or more than 24 hours on")),
        }
        let sub = claims["sub"].as_str().unwrap_or("");
        if !(sub.starts_with("mailto:") || sub.starts_with("https:")) {
            return Err(unauthorized("sub is not a mailto: or https: URI"));
        }
        if self.expired_tokens.lock().expect("lock").contains(&token) {
            return Err(unauthorized("VAPID token expired"));
        }
        Ok(claims)
    }
}
