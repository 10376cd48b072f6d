//! A fake FCM: Google's OAuth token endpoint and the HTTP v1 `messages:send` API.
//!
//! The token endpoint (`POST /token`) checks the JWT-bearer grant: an RS256
//! assertion signed by the service account key the fake generated, with its email
//! as `iss`, the endpoint as `aud`, the FCM scope and at most an hour of life; and
//! issues an access token. `POST /v1/projects/<project>/messages:send` checks the
//! bearer token and the message (token, string-valued data) and answers like FCM:
//! `{"name": ...}`, or a status with Google's error body and FCM's `errorCode`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::KeyPair;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use super::{header, json_response, read_request, Fault, Faults, Recorder, Recording, RecordingFake, Server};
use crate::jwt::{unix_now, verify_rs256};
use crate::keys::{generate_rsa_key, rsa_key_to_pem};
use crate::providers::fcm::FcmConfig;
use crate::providers::google_auth::{FCM_SCOPE, JWT_BEARER_GRANT};

/// One `messages:send` request the fake FCM got.
#[derive(Debug, Clone)]
pub struct FcmRequest {
    /// The client's address: one per connection.
    pub peer: SocketAddr,
    pub project: String,
    /// The access token from `Authorization: Bearer`.
    pub bearer: Option<String>,
    /// `message.token`.
    pub token: Option<String>,
    /// The whole `message` (`Null` if the body was not JSON).
    pub message: Value,
    pub status: u16,
    pub received_at: Instant,
}

/// One token-endpoint request the fake FCM got.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The assertion's claims, when its signature verified.
    pub claims: Option<Value>,
    /// The access token issued, if any.
    pub issued: Option<String>,
    pub status: u16,
    pub received_at: Instant,
}

struct Service {
    url: String,
    project_id: String,
    client_email: String,
    private_key_id: String,
    public_key: Vec<u8>,
    access_token_ttl: Mutex<Duration>,
    issued: Mutex<HashMap<String, Instant>>,
    minted: AtomicU64,
    unregistered: Mutex<HashSet<String>>,
    recording: Recording<FcmRequest>,
    token_faults: Faults,
    token_requests: Recorder<TokenRequest>,
}

/// A running fake FCM; stops when dropped.
pub struct FakeFcm {
    server: Server,
    private_key_pem: String,
    state: Arc<Service>,
}

impl FakeFcm {
    /// Starts one with a fresh RSA service-account key and project `confab-fake`.
    pub async fn start() -> FakeFcm {
        let (listener, url) = Server::bind().await.expect("bind fake FCM");
        let key = generate_rsa_key().expect("RSA key");
        let state = Arc::new(Service {
            project_id: "confab-fake".into(),
            client_email: "notifier@confab-fake.iam.gserviceaccount.com".into(),
            private_key_id: format!("{:032x}", rand::random::<u128>()),
            public_key: key.public_key().as_ref().to_vec(),
            access_token_ttl: Mutex::new(Duration::from_secs(3600)),
            issued: Mutex::default(),
            minted: AtomicU64::new(0),
            unregistered: Mutex::default(),
            recording: Recording::new(),
            token_faults: Faults::default(),
            token_requests: Recorder::new(),
            url,
        });
        let router = Router::new().fallback(handle).with_state(state.clone());
        FakeFcm {
            server: Server::serve(listener, router),
            private_key_pem: rsa_key_to_pem(&key).expect("RSA PEM"),
            state,
        }
    }

    /// `http://127.0.0.1:<port>`: the FCM API base.
    pub fn url(&self) -> &str {
        &self.state.url
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// The OAuth token endpoint.
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.state.url)
    }

    pub fn project_id(&self) -> &str {
        &self.state.project_id
    }

    /// A service account key file, as Google hands it out, for this fake.
    pub fn service_account_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": self.state.project_id,
            "private_key_id": self.state.private_key_id,
            "private_key": self.private_key_pem,
            "client_email": self.state.client_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri(),
        })
        .to_string()
    }

    /// A client configuration pointed at this fake.
    pub fn config(&self) -> FcmConfig {
        FcmConfig::from_service_account_json(&self.service_account_json())
            .expect("service account JSON")
            .with_base_url(self.url())
    }

    /// From now on `token` answers `404 UNREGISTERED`.
    pub fn unregister(&self, token: &str) {
        self.state.unregistered.lock().expect("lock").insert(token.to_string());
    }

    /// The next `times` token requests answer `fault`.
    pub fn fail_next_token_requests(&self, times: usize, fault: Fault) {
        self.state.token_faults.push(times, fault);
    }

    /// Every access token issued so far stops working (`401 UNAUTHENTICATED`).
    pub fn revoke_access_tokens(&self) {
        self.state.issued.lock().expect("lock").clear();
    }

    /// The `expires_in` of access tokens issued from now on.
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        *self.state.access_token_ttl.lock().expect("lock") = ttl;
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.token_requests.all()
    }
}

impl RecordingFake for FakeFcm {
    type Request = FcmRequest;

    fn recording(&self) -> &Recording<FcmRequest> {
        &self.state.recording
    }
}

async fn handle(
    State(state): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (received_at, parts, body) = read_request(request, 1024 * 1024).await;
    let path = parts.uri.path().to_string();
    if parts.method != Method::POST {
        return google_error(405, "METHOD_NOT_ALLOWED", "", "Method not allowed.", None);
    }
    if path == "/token" {
        return state.token(&body, received_at);
    }
    let project = path.strip_prefix("/v1/projects/").and_then(|rest| rest.strip_suffix("/messages:send"));
    match project {
        Some(project) => {
            let bearer = header(&parts.headers, "authorization")
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(str::to_string));
            state.send(project, bearer, &body, peer, received_at)
        }
        None => google_error(404, "NOT_FOUND", "", "Not found.", None),
    }
}

impl Service {
    fn token(&self, body: &[u8], received_at: Instant) -> Response {
        let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
        let mut record = TokenRequest { claims: None, issued: None, status: 200, received_at };
        let answer = self.grant(&form, &mut record);
        let response = match answer {
            Ok((token, ttl)) => {
                record.issued = Some(token.clone());
                json_response(200, json!({"access_token": token, "expires_in": ttl, "token_type": "Bearer"}), None)
            }
            Err((status, error, description, after)) => {
                record.status = status;
                json_response(status, json!({"error": error, "error_description": description}), after)
            }
        };
        self.token_requests.record(record);
        response
    }

    #[allow(clippy::type_complexity)]
    fn grant(
        &self,
        form: &HashMap<String, String>,
        record: &mut TokenRequest,
    ) -> Result<(String, u64), (u16, &'static str, String, Option<Duration>)> {
        let invalid = |what: &str| (400, "invalid_grant", what.to_string(), None);
        if let Some(fault) = self.token_faults.next() {
            return Err((fault.status, "temporarily_unavailable", fault.reason, fault.retry_after));
        }
        if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER_GRANT) {
            return Err((400, "unsupported_grant_type", "Invalid grant_type".into(), None));
        }
        let assertion = form.get("assertion").ok_or((400, "invalid_request", "Missing assertion".into(), None))?;
        let verified = verify_rs256(assertion, &self.public_key).map_err(|_| invalid("Invalid JWT Signature."))?;
        record.claims = Some(verified.claims.clone());
        let claims = &verified.claims;
        if verified.header.get("kid").is_some_and(|kid| kid != self.private_key_id.as_str()) {
            return Err(invalid("Invalid key id."));
        }
        if claims["iss"] != self.client_email.as_str() {
            return Err(invalid("Invalid issuer."));
        }
        if claims["aud"] != format!("{}/token", self.url).as_str() {
            return Err(invalid("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe."));
        }
        let scopes = claims["scope"].as_str().unwrap_or("");
        if !scopes.split_whitespace().any(|s| s == FCM_SCOPE) {
            return Err(invalid("Invalid scope."));
        }
        let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
            return Err(invalid("Invalid JWT: missing iat or exp."));
        };
        let now = unix_now();
        if iat > now + 60 || exp <= now || exp.saturating_sub(iat) > 3600 {
            return Err(invalid("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe."));
        }
        let n = self.minted.fetch_add(1, Ordering::Relaxed) + 1;
        let token = format!("ya29.fake-{n}-{:016x}", rand::random::<u64>());
        let ttl = *self.access_token_ttl.lock().expect("lock");
        self.issued.lock().expect("lock").insert(token.clone(), Instant::now() + ttl);
        Ok((token, ttl.as_secs()))
    }

    fn send(
        &self,
        project: &str,
        bearer: Option<String>,
        body: &[u8],
        peer: SocketAddr,
        received_at: Instant,
    ) -> Response {
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let message = parsed.get("message").cloned().unwrap_or(Value::Null);
        let token = message.get("token").and_then(Value::as_str).map(str::to_string);
        let response = self.judge(project, bearer.as_deref(), &message, token.as_deref());
        let status = response.status().as_u16();
        self.recording.record(FcmRequest {
            project: project.to_string(),
            bearer,
            token,
            message,
            status,
            peer,
            received_at,
        });
        response
    }

    fn judge(&self, project: &str, bearer: Option<&str>, message: &Value, token: Option<&str>) -> Response {
        let valid =
            bearer.is_some_and(|b| self.issued.lock().expect("lock").get(b).is_some_and(|exp| Instant::now() < *exp));
        if !valid {
            return google_error(
                401,
                "UNAUTHENTICATED",
                "",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                None,
            );
        }
        if project != self.project_id {
            return google_error(403, "PERMISSION_DENIED", "", "Permission denied on resource project.", None);
        }
        if !message.is_object() {
            return google_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received.", None);
        }
        let well_formed =
            token.is_some_and(|t| t.len() >= 20 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_:".contains(&b)));
        if !well_formed {
            return bad_field("message.token", "The registration token is not a valid FCM registration token");
        }
        if let Some(data) = message.get("data") {
            let strings = data.as_object().is_some_and(|m| m.values().all(Value::is_string));
            if !strings {
                return bad_field("message.data", "Invalid value: data values must be strings");
            }
        }
        if self.unregistered.lock().expect("lock").contains(token.unwrap_or_default()) {
            return google_error(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.", None);
        }
        if let Some(fault) = self.recording.faults.next() {
            let (status, code) = google_status(fault.status);
            let code = if fault.reason.is_empty() { code } else { fault.reason.as_str() };
            return google_error(fault.status, status, code, "Injected failure.", fault.retry_after);
        }
        let id = self.minted.fetch_add(1, Ordering::Relaxed);
        json_response(200, json!({"name": format!("projects/{}/messages/{id}", self.project_id)}), None)
    }
}

/// Google's canonical status and FCM's error code for an HTTP status.
fn google_status(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("INVALID_ARGUMENT", "INVALID_ARGUMENT"),
        401 => ("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
        403 => ("PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
        404 => ("NOT_FOUND", "UNREGISTERED"),
        429 => ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
        503 => ("UNAVAILABLE", "UNAVAILABLE"),
        _ => ("INTERNAL", "INTERNAL"),
    }
}

/// Google's error body; `fcm_code` goes in the `FcmError` detail when not empty.
fn google_error(status: u16, canonical: &str, fcm_code: &str, message: &str, after: Option<Duration>) -> Response {
    let mut details = Vec::new();
    if !fcm_code.is_empty() {
        details.push(json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}));
    }
    json_response(
        status,
        json!({"error": {"code": status, "message": message, "status": canonical, "details": details}}),
        after,
    )
}

fn bad_field(field: &str, description: &str) -> Response {
    json_response(
        400,
        json!({"error": {"code": 400, "message": description, "status": "INVALID_ARGUMENT", "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"},
            {"@type": "type.googleapis.com/google.rpc.BadRequest",
             "fieldViolations": [{"field": field, "description": description}]},
        ]}}),
        None,
    )
}
