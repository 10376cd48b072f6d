//! Apple Push Notification service, provider API: HTTP/2, token-based auth.
//!
//! Each send is `POST {base}/3/device/{token}` with the `apns-*` headers and
//! `authorization: bearer <provider token>`, an ES256 JWT (`kid` = key id, `iss` =
//! team id, `iat`) signed with the `.p8` key from Apple's developer account. Apple
//! wants the token refreshed at most every 20 and at least every 60 minutes: we
//! mint one every 50 and reuse it for every request in between.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use p256::ecdsa::SigningKey;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{base_url, http_client, retry_after, transport_failure, Timeouts};
use crate::jwt::{sign_es256, unix_now};
use crate::keys::{b64url, ec_key_from_pem};
use crate::{DeviceAddress, Notification, Platform, Priority, PushError, PushProvider, SendOutcome};

pub const PRODUCTION_URL: &str = "https://api.push.apple.com";
pub const SANDBOX_URL: &str = "https://api.sandbox.push.apple.com";
/// The largest payload APNs takes for an alert (bytes of JSON).
pub const MAX_PAYLOAD: usize = 4096;
/// The longest `apns-collapse-id` APNs takes (bytes).
pub const MAX_COLLAPSE_ID: usize = 64;

/// What the APNs provider needs.
#[derive(Clone)]
pub struct ApnsConfig {
    /// `https://api.push.apple.com` (production), the sandbox, or a test server.
    pub base_url: String,
    /// The 10-character Team ID the key belongs to (the JWT's `iss`).
    pub team_id: String,
    /// The 10-character Key ID of the signing key (the JWT's `kid`).
    pub key_id: String,
    /// The `.p8` file's contents (PKCS#8 PEM, P-256).
    pub private_key_pem: String,
    /// The app's bundle ID (`apns-topic`).
    pub topic: String,
    /// How long one provider token is used before a new one is minted.
    pub token_refresh: Duration,
    pub timeouts: Timeouts,
}

impl ApnsConfig {
    pub fn new(
        team_id: impl Into<String>,
        key_id: impl Into<String>,
        private_key_pem: impl Into<String>,
        topic: impl Into<String>,
    ) -> Self {
        ApnsConfig {
            base_url: PRODUCTION_URL.to_string(),
            team_id: team_id.into(),
            key_id: key_id.into(),
            private_key_pem: private_key_pem.into(),
            topic: topic.into(),
            token_refresh: Duration::from_secs(50 * 60),
            timeouts: Timeouts::default(),
        }
    }

    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }
}

impl std::fmt::Debug for ApnsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsConfig")
            .field("base_url", &self.base_url)
            .field("team_id", &self.team_id)
            .field("key_id", &self.key_id)
            .field("private_key_pem", &"<redacted>")
            .field("topic", &self.topic)
            .field("token_refresh", &self.token_refresh)
            .finish()
    }
}

struct ProviderToken {
    jwt: String,
    minted: Instant,
}

/// The APNs client. Cheap to share (`Arc`); one HTTP/2 connection carries every
/// concurrent send.
pub struct ApnsProvider {
    http: reqwest::Client,
    base: String,
    team_id: String,
    key_id: String,
    key: SigningKey,
    topic: String,
    token_refresh: Duration,
    token: Mutex<Option<ProviderToken>>,
}

/// What an APNs answer means for us.
enum Answer {
    Done(SendOutcome),
    /// 403 ExpiredProviderToken: mint a new token and send again.
    Reauthenticate(String),
}

#[derive(Deserialize)]
struct ErrorBody {
    reason: Option<String>,
}

impl ApnsProvider {
    pub fn new(config: ApnsConfig) -> Result<Self, PushError> {
        if config.topic.is_empty() {
            return Err(PushError::Config("APNs topic (bundle id) is empty".into()));
        }
        Ok(ApnsProvider {
            http: http_client(true, config.timeouts)?,
            base: base_url(&config.base_url)?,
            key: ec_key_from_pem(&config.private_key_pem)?,
            team_id: config.team_id,
            key_id: config.key_id,
            topic: config.topic,
            token_refresh: config.token_refresh,
            token: Mutex::new(None),
        })
    }

    /// The current provider token, minted when there is none or it is due.
    fn provider_token(&self) -> String {
        let mut current = self.token.lock().expect("token lock");
        match current.as_ref() {
            Some(token) if token.minted.elapsed() < self.token_refresh => token.jwt.clone(),
            _ => {
                let header = json!({"alg": "ES256", "kid": self.key_id});
                let claims = json!({"iss": self.team_id, "iat": unix_now()});
                let jwt = sign_es256(&header, &claims, &self.key);
                *current = Some(ProviderToken { jwt: jwt.clone(), minted: Instant::now() });
                jwt
            }
        }
    }

    /// Forgets `jwt` if it is still the current token (concurrent sends that all saw
    /// it expire make one new token between them).
    fn discard_token(&self, jwt: &str) {
        let mut current = self.token.lock().expect("token lock");
        if current.as_ref().is_some_and(|t| t.jwt == jwt) {
            *current = None;
        }
    }

    async fn post(&self, token: &str, body: &[u8], n: &Notification, jwt: &str) -> Result<Answer, reqwest::Error> {
        let mut request = self
            .http
            .post(format!("{}/3/device/{token}", self.base))
            .bearer_auth(jwt)
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header(
                "apns-priority",
                match n.priority {
                    Priority::High => "10",
                    Priority::Normal => "5",
                },
            )
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(key) = &n.collapse_key {
            request = request.header("apns-collapse-id", collapse_id(key));
        }
        if let Some(ttl) = n.ttl {
            request = request.header("apns-expiration", (unix_now() + ttl.as_secs()).to_string());
        }
        let response = request.send().await?;
        let status = response.status();
        let after = retry_after(response.headers());
        let reason =
            if status.is_success() { None } else { response.json::<ErrorBody>().await.ok().and_then(|b| b.reason) };
        Ok(classify(status, reason, after))
    }
}

/// The JSON APNs delivers to the app: `aps` for the system, the data keys beside it.
pub fn payload(n: &Notification) -> Value {
    let mut aps = Map::new();
    aps.insert("alert".into(), json!({"title": n.title, "body": n.body}));
    aps.insert("sound".into(), json!("default"));
    if let Some(badge) = n.badge {
        aps.insert("badge".into(), json!(badge));
    }
    if let Some(thread) = &n.thread_id {
        aps.insert("thread-id".into(), json!(thread));
    }
    let mut root = Map::new();
    for (key, value) in &n.data {
        if key != "aps" {
            root.insert(key.clone(), json!(value));
        }
    }
    root.insert("aps".into(), Value::Object(aps));
    Value::Object(root)
}

/// `collapse_key` as APNs takes it: itself when it fits 64 bytes, else a digest.
pub fn collapse_id(key: &str) -> String {
    if key.len() <= MAX_COLLAPSE_ID {
        key.to_string()
    } else {
        b64url(&Sha256::digest(key.as_bytes()))
    }
}

fn classify(status: StatusCode, reason: Option<String>, after: Option<Duration>) -> Answer {
    let reason_text = reason.clone().unwrap_or_else(|| status.to_string());
    let described = format!("APNs {}: {reason_text}", status.as_u16());
    let outcome = match (status.as_u16(), reason.as_deref()) {
        (200..=299, _) => SendOutcome::Delivered,
        (410, _) => SendOutcome::invalid_token(described),
        (400, Some("BadDeviceToken" | "DeviceTokenNotForTopic" | "Unregistered")) => {
            SendOutcome::invalid_token(described)
        }
        (403, Some("ExpiredProviderToken")) => return Answer::Reauthenticate(described),
        // Our key, team or certificate is wrong: not this message's fault, and an
        // operator can fix it; the outbox's attempt limit bounds the retries.
        (403, _) => {
            tracing::warn!(status = 403, reason = %reason_text, "APNs refused the provider credentials");
            SendOutcome::Retry { after, reason: described }
        }
        (429 | 500..=599, _) => SendOutcome::Retry { after, reason: described },
        _ => SendOutcome::rejected(described),
    };
    Answer::Done(outcome)
}

/// A device token is hex; anything else can never be delivered to.
fn well_formed(token: &str) -> bool {
    !token.is_empty() && token.len() <= 200 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

#[async_trait]
impl PushProvider for ApnsProvider {
    fn platform(&self) -> Platform {
        Platform::Apns
    }

    async fn send(&self, device: &DeviceAddress, n: &Notification) -> SendOutcome {
        let DeviceAddress::Apns { token } = device else {
            return SendOutcome::rejected(format!("APNs cannot send to a {} device", device.platform()));
        };
        if !well_formed(token) {
            return SendOutcome::invalid_token("APNs device token is not hex");
        }
        let body = payload(n).to_string().into_bytes();
        if body.len() > MAX_PAYLOAD {
            return SendOutcome::rejected(format!("APNs payload is {} bytes, over {MAX_PAYLOAD}", body.len()));
        }
        // At most two tries: the second only after APNs said the token expired.
        let mut last = String::new();
        for _ in 0..2 {
            let jwt = self.provider_token();
            match self.post(token, &body, n, &jwt).await {
                Ok(Answer::Done(outcome)) => return outcome,
                Ok(Answer::Reauthenticate(reason)) => {
                    self.discard_token(&jwt);
                    last = reason;
                }
                Err(error) => return transport_failure("APNs", &error),
            }
        }
        SendOutcome::retry(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_puts_the_alert_in_aps_and_data_beside_it() {
        let n = Notification::new("#general", "hi")
            .with_data("channel_id", "C1")
            .with_data("aps", "ignored")
            .with_badge(3)
            .with_thread_id("C1");
        let p = payload(&n);
        assert_eq!(p["aps"]["alert"], json!({"title": "#general", "body": "hi"}));
        assert_eq!(p["aps"]["badge"], 3);
        assert_eq!(p["aps"]["thread-id"], "C1");
        assert_eq!(p["channel_id"], "C1");
        assert!(p["aps"].get("aps").is_none());
    }

    #[test]
    fn answers_map_to_outcomes() {
        let done = |status: u16, reason: Option<&str>| match classify(
            StatusCode::from_u16(status).unwrap(),
            reason.map(str::to_string),
            Some(Duration::from_secs(5)),
        ) {
            Answer::Done(outcome) => outcome.kind(),
            Answer::Reauthenticate(_) => "reauthenticate",
        };
        assert_eq!(done(200, None), "delivered");
        assert_eq!(done(410, Some("Unregistered")), "invalid_token");
        assert_eq!(done(400, Some("BadDeviceToken")), "invalid_token");
        assert_eq!(done(400, Some("DeviceTokenNotForTopic")), "invalid_token");
        assert_eq!(done(400, Some("BadCollapseId")), "rejected");
        assert_eq!(done(413, Some("PayloadTooLarge")), "rejected");
        assert_eq!(done(403, Some("ExpiredProviderToken")), "reauthenticate");
        assert_eq!(done(403, Some("InvalidProviderToken")), "retry");
        assert_eq!(done(429, Some("TooManyRequests")), "retry");
        assert_eq!(done(500, None), "retry");
        assert_eq!(done(503, Some("ServiceUnavailable")), "retry");
    }

    #[test]
    fn long_collapse_keys_are_digested() {
        assert_eq!(collapse_id("C1"), "C1");
        let long = "x".repeat(100);
        assert!(collapse_id(&long).len() <= MAX_COLLAPSE_ID);
        assert_ne!(collapse_id(&long), collapse_id(&"y".repeat(100)));
    }

    #[test]
    fn provider_tokens_are_cached_and_discarded() {
        let key = crate::keys::generate_ec_key();
        let config = ApnsConfig::new("TEAM", "KEY", crate::keys::ec_key_to_pem(&key), "com.example.app");
        let apns = ApnsProvider::new(config).unwrap();
        let first = apns.provider_token();
        assert_eq!(apns.provider_token(), first, "reused until due");
        apns.discard_token("some other token");
        assert_eq!(apns.provider_token(), first, "only the current token is discarded");
        apns.discard_token(&first);
        assert_ne!(apns.provider_token(), first);
        let verified = crate::jwt::verify_es256(&first, key.verifying_key()).unwrap();
        assert_eq!(verified.header["kid"], "KEY");
        assert_eq!(verified.claims["iss"], "TEAM");
    }

    #[test]
    fn provider_tokens_are_refreshed_when_due() {
        let key = crate::keys::generate_ec_key();
        let mut config = ApnsConfig::new("TEAM", "KEY", crate::keys::ec_key_to_pem(&key), "com.example.app");
        config.token_refresh = Duration::ZERO;
        let apns = ApnsProvider::new(config).unwrap();
        assert_ne!(apns.provider_token(), apns.provider_token());
    }
}
