//! Firebase Cloud Messaging, HTTP v1 API.
//!
//! Each send is `POST {base}/v1/projects/{project}/messages:send` with a bearer
//! access token of the service account ([`super::google_auth`]) and
//! `{"message": {"token", "notification", "data", "android"}}`.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::google_auth::{AccessTokenSource, ServiceAccount, FCM_SCOPE};
use super::{base_url, http_client, retry_after, transport_failure, Timeouts};
use crate::{DeviceAddress, Notification, Platform, Priority, PushError, PushProvider, SendOutcome};

pub const FCM_URL: &str = "https://fcm.googleapis.com";

/// What the FCM provider needs.
#[derive(Debug, Clone)]
pub struct FcmConfig {
    pub service_account: ServiceAccount,
    /// `https://fcm.googleapis.com`, or a test server.
    pub base_url: String,
    /// Overrides the service account's `token_uri` (the OAuth token endpoint).
    pub token_uri: Option<String>,
    pub timeouts: Timeouts,
}

impl FcmConfig {
    pub fn new(service_account: ServiceAccount) -> Self {
        FcmConfig { service_account, base_url: FCM_URL.to_string(), token_uri: None, timeouts: Timeouts::default() }
    }

    /// From a service account key file's JSON.
    pub fn from_service_account_json(json: &str) -> Result<Self, PushError> {
        Ok(Self::new(ServiceAccount::from_json(json)?))
    }

    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    pub fn with_token_uri(mut self, url: impl Into<String>) -> Self {
        self.token_uri = Some(url.into());
        self
    }
}

/// The FCM client. Cheap to share (`Arc`).
pub struct FcmProvider {
    http: reqwest::Client,
    send_url: String,
    tokens: AccessTokenSource,
}

enum Answer {
    Done(SendOutcome),
    /// 401: the access token is no good; fetch another and send again.
    Reauthenticate(String),
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorInfo,
}

#[derive(Deserialize, Default)]
struct ErrorInfo {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<Value>,
}

impl ErrorInfo {
    /// FCM's own error code (`UNREGISTERED`, `INVALID_ARGUMENT`, ...), from the
    /// `google.firebase.fcm.v1.FcmError` detail.
    fn fcm_code(&self) -> Option<&str> {
        self.details.iter().find_map(|d| {
            let is_fcm = d.get("@type").and_then(Value::as_str).is_some_and(|t| t.ends_with("fcm.v1.FcmError"));
            if is_fcm {
                d.get("errorCode").and_then(Value::as_str)
            } else {
                None
            }
        })
    }

    /// Whether the request was bad because of the registration token.
    fn blames_token(&self) -> bool {
        let field_violation = self.details.iter().any(|d| {
            d.get("fieldViolations")
                .and_then(Value::as_array)
                .is_some_and(|v| v.iter().any(|f| f.get("field").and_then(Value::as_str) == Some("message.token")))
        });
        field_violation || self.message.to_ascii_lowercase().contains("registration token")
    }
}

impl FcmProvider {
    pub fn new(config: FcmConfig) -> Result<Self, PushError> {
        let http = http_client(false, config.timeouts)?;
        let mut account = config.service_account;
        if let Some(uri) = config.token_uri {
            account.token_uri = uri;
        }
        base_url(&account.token_uri)?;
        if account.project_id.is_empty() {
            return Err(PushError::Config("service account has no project_id".into()));
        }
        Ok(FcmProvider {
            send_url: format!("{}/v1/projects/{}/messages:send", base_url(&config.base_url)?, account.project_id),
            tokens: AccessTokenSource::new(&account, FCM_SCOPE, http.clone())?,
            http,
        })
    }

    async fn post(&self, body: &Value, access_token: &str) -> Result<Answer, reqwest::Error> {
        let response = self.http.post(&self.send_url).bearer_auth(access_token).json(body).send().await?;
        let status = response.status();
        let after = retry_after(response.headers());
        if status.is_success() {
            return Ok(Answer::Done(SendOutcome::Delivered));
        }
        let error = response.json::<ErrorBody>().await.map(|b| b.error).unwrap_or_default();
        Ok(classify(status, &error, after))
    }
}

/// The v1 `message` for one device.
pub fn message(token: &str, n: &Notification) -> Value {
    let mut android = Map::new();
    android.insert(
        "priority".into(),
        json!(match n.priority {
            Priority::High => "HIGH",
            Priority::Normal => "NORMAL",
        }),
    );
    if let Some(key) = &n.collapse_key {
        android.insert("collapse_key".into(), json!(key));
    }
    if let Some(ttl) = n.ttl {
        android.insert("ttl".into(), json!(format!("{}s", ttl.as_secs())));
    }
    let mut shown = Map::new();
    if let Some(thread) = &n.thread_id {
        shown.insert("tag".into(), json!(thread));
    }
    if let Some(badge) = n.badge {
        shown.insert("notification_count".into(), json!(badge));
    }
    if !shown.is_empty() {
        android.insert("notification".into(), Value::Object(shown));
    }
    json!({
        "message": {
            "token": token,
            "notification": {"title": n.title, "body": n.body},
            "data": n.data,
            "android": android,
        }
    })
}

fn classify(status: StatusCode, error: &ErrorInfo, after: Option<Duration>) -> Answer {
    let code = error.fcm_code();
    let described = format!(
        "FCM {} {}: {}",
        status.as_u16(),
        code.unwrap_or(&error.status),
        if error.message.is_empty() { status.canonical_reason().unwrap_or("") } else { &error.message }
    );
    let outcome = match (status.as_u16(), code) {
        (_, Some("UNREGISTERED" | "SENDER_ID_MISMATCH")) => SendOutcome::invalid_token(described),
        (400, _) if error.blames_token() => SendOutcome::invalid_token(described),
        (401, Some("THIRD_PARTY_AUTH_ERROR")) | (403, _) => {
            // Our credentials or permissions are wrong: an operator can fix it.
            tracing::warn!(reason = %described, "FCM refused the service account");
            SendOutcome::Retry { after, reason: described }
        }
        (401, _) => return Answer::Reauthenticate(described),
        (429 | 500..=599, _) => SendOutcome::Retry { after, reason: described },
        _ => SendOutcome::rejected(described),
    };
    Answer::Done(outcome)
}

#[async_trait]
impl PushProvider for FcmProvider {
    fn platform(&self) -> Platform {
        Platform::Fcm
    }

    async fn send(&self, device: &DeviceAddress, n: &Notification) -> SendOutcome {
        let DeviceAddress::Fcm { token } = device else {
            return SendOutcome::rejected(format!("FCM cannot send to a {} device", device.platform()));
        };
        if token.is_empty() {
            return SendOutcome::invalid_token("FCM registration token is empty");
        }
        let body = message(token, n);
        // At most two tries: the second only after FCM refused the access token.
        let mut last = String::new();
        for _ in 0..2 {
            let access_token = match self.tokens.token().await {
                Ok(token) => token,
                Err(e) => return SendOutcome::Retry { after: e.retry_after, reason: e.reason },
            };
            match self.post(&body, &access_token).await {
                Ok(Answer::Done(outcome)) => return outcome,
                Ok(Answer::Reauthenticate(reason)) => {
                    self.tokens.discard(&access_token).await;
                    last = reason;
                }
                Err(error) => return transport_failure("FCM", &error),
            }
        }
        SendOutcome::retry(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: Value) -> ErrorInfo {
        serde_json::from_value::<ErrorBody>(json).unwrap().error
    }

    fn kind(status: u16, e: &ErrorInfo) -> &'static str {
        match classify(StatusCode::from_u16(status).unwrap(), e, None) {
            Answer::Done(outcome) => outcome.kind(),
            Answer::Reauthenticate(_) => "reauthenticate",
        }
    }

    #[test]
    fn message_maps_the_notification() {
        let n = Notification::new("t", "b")
            .with_data("channel_id", "C1")
            .with_collapse_key("C1")
            .with_thread_id("C1")
            .with_badge(2)
            .with_ttl(Duration::from_secs(60));
        let m = message("tok", &n);
        assert_eq!(m["message"]["token"], "tok");
        assert_eq!(m["message"]["notification"], json!({"title": "t", "body": "b"}));
        assert_eq!(m["message"]["data"], json!({"channel_id": "C1"}));
        assert_eq!(m["message"]["android"]["collapse_key"], "C1");
        assert_eq!(m["message"]["android"]["ttl"], "60s");
        assert_eq!(m["message"]["android"]["priority"], "HIGH");
        assert_eq!(m["message"]["android"]["notification"], json!({"tag": "C1", "notification_count": 2}));
    }

    #[test]
    fn answers_map_to_outcomes() {
        let fcm = |code: &str, status: &str, message: &str| {
            error(json!({"error": {"code": 0, "message": message, "status": status, "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}}))
        };
        assert_eq!(kind(404, &fcm("UNREGISTERED", "NOT_FOUND", "Requested entity was not found.")), "invalid_token");
        assert_eq!(kind(403, &fcm("SENDER_ID_MISMATCH", "PERMISSION_DENIED", "")), "invalid_token");
        let bad_token = error(json!({"error": {"code": 400, "message": "Invalid value", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]}]}}));
        assert_eq!(kind(400, &bad_token), "invalid_token");
        assert_eq!(kind(400, &fcm("INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload")), "rejected");
        assert_eq!(kind(401, &fcm("UNAUTHENTICATED", "UNAUTHENTICATED", "")), "reauthenticate");
        assert_eq!(kind(401, &fcm("THIRD_PARTY_AUTH_ERROR", "UNAUTHENTICATED", "")), "retry");
        assert_eq!(kind(403, &fcm("PERMISSION_DENIED", "PERMISSION_DENIED", "")), "retry");
        assert_eq!(kind(429, &fcm("QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED", "")), "retry");
        assert_eq!(kind(503, &ErrorInfo::default()), "retry");
        assert_eq!(kind(500, &ErrorInfo::default()), "retry");
        assert_eq!(kind(413, &ErrorInfo::default()), "rejected");
    }
}
