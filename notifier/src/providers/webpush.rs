//! Web Push: RFC 8030 delivery, RFC 8291 message encryption ([`super::ece`]) and
//! RFC 8292 VAPID.
//!
//! Each send is a `POST` to the subscription's endpoint (a URL at whichever push
//! service the browser uses) of the encrypted JSON payload, with `TTL`,
//! `Content-Encoding: aes128gcm`, `Urgency`, `Topic` (from the collapse key) and
//! `Authorization: vapid t=<ES256 JWT>, k=<our public key>`; the JWT's `aud` is the
//! endpoint's origin, its `exp` 12 hours on, its `sub` our contact URI. One token is
//! minted per push-service origin and reused for an hour.
//!
//! Endpoints come from clients, so every send checks them again
//! (`confab_core::push_endpoint`), resolves the host through [`PublicOnlyResolver`] (only
//! public addresses are connected to, whatever DNS says by then) and follows no redirect.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use p256::ecdsa::SigningKey;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{ece, http_client_builder, retry_after, transport_failure, Timeouts};
use crate::jwt::{sign_es256, unix_now};
use crate::keys::{b64url, b64url_decode, ec_key_from_str, ec_public_b64url};
use crate::{DeviceAddress, Notification, Platform, Priority, PushError, PushProvider, SendOutcome};
use confab_core::push_endpoint::{is_public_ip, validate_web_push_subscription, EndpointPolicy};

/// How long a VAPID token claims to be valid (`exp`); RFC 8292 allows up to 24 h.
const VAPID_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long one VAPID token is reused for an origin.
const VAPID_REUSE: Duration = Duration::from_secs(3600);
/// RFC 8030 `Topic`: at most 32 characters of the base64url alphabet.
const MAX_TOPIC: usize = 32;

/// What the Web Push provider needs.
#[derive(Clone)]
pub struct WebPushConfig {
    /// Our VAPID private key: a base64url P-256 scalar, or PEM. Its public half is
    /// the `applicationServerKey` the web client subscribes with.
    pub vapid_private_key: String,
    /// Contact for the push service's operators: `mailto:` or `https:` URI.
    pub subject: String,
    /// `TTL` when the notification names none.
    pub default_ttl: Duration,
    /// Allow `http://` endpoints. Real push services are all https; allowing plain
    /// http is for local test servers only.
    pub allow_http: bool,
    /// Allow endpoints on loopback, private and link-local addresses (local test servers only).
    pub allow_private_networks: bool,
    pub timeouts: Timeouts,
}

impl WebPushConfig {
    pub fn new(vapid_private_key: impl Into<String>, subject: impl Into<String>) -> Self {
        WebPushConfig {
            vapid_private_key: vapid_private_key.into(),
            subject: subject.into(),
            default_ttl: Duration::from_secs(24 * 3600),
            allow_http: false,
            allow_private_networks: false,
            timeouts: Timeouts::default(),
        }
    }

    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    pub fn allow_private_networks(mut self, allow: bool) -> Self {
        self.allow_private_networks = allow;
        self
    }

    fn policy(&self) -> EndpointPolicy {
        EndpointPolicy { allow_http: self.allow_http, allow_private_networks: self.allow_private_networks }
    }
}

impl std::fmt::Debug for WebPushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPushConfig")
            .field("vapid_private_key", &"<redacted>")
            .field("subject", &self.subject)
            .field("default_ttl", &self.default_ttl)
            .field("allow_http", &self.allow_http)
            .field("allow_private_networks", &self.allow_private_networks)
            .finish()
    }
}

/// The Web Push client. Cheap to share (`Arc`).
pub struct WebPushProvider {
    http: reqwest::Client,
    key: SigningKey,
    public_key: String,
    subject: String,
    default_ttl: Duration,
    policy: EndpointPolicy,
    /// VAPID token per push-service origin, with when it was minted.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

enum Answer {
    Done(SendOutcome),
    /// 401: the push service did not take our VAPID token; mint another, send again.
    Reauthenticate(String),
}

impl WebPushProvider {
    pub fn new(config: WebPushConfig) -> Result<Self, PushError> {
        if !(config.subject.starts_with("mailto:") || config.subject.starts_with("https:")) {
            return Err(PushError::Config("VAPID subject must be a mailto: or https: URI".into()));
        }
        let key = ec_key_from_str(&config.vapid_private_key)?;
        let policy = config.policy();
        let resolver = PublicOnlyResolver { allow_private_networks: policy.allow_private_networks };
        let http = http_client_builder(false, config.timeouts)
            .dns_resolver(Arc::new(resolver))
            .build()
            .map_err(|e| PushError::Config(format!("Web Push HTTP client: {e}")))?;
        Ok(WebPushProvider {
            http,
            public_key: ec_public_b64url(key.verifying_key()),
            key,
            subject: config.subject,
            default_ttl: config.default_ttl,
            policy,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Our VAPID public key (base64url, uncompressed): the `applicationServerKey`
    /// web clients pass to `pushManager.subscribe`.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    fn vapid_token(&self, origin: &str) -> String {
        let mut tokens = self.tokens.lock().expect("vapid lock");
        if let Some((jwt, minted)) = tokens.get(origin) {
            if minted.elapsed() < VAPID_REUSE {
                return jwt.clone();
            }
        }
        let claims = json!({
            "aud": origin,
            "exp": unix_now() + VAPID_LIFETIME.as_secs(),
            "sub": self.subject,
        });
        let jwt = sign_es256(&json!({"typ": "JWT", "alg": "ES256"}), &claims, &self.key);
        tokens.insert(origin.to_string(), (jwt.clone(), Instant::now()));
        jwt
    }

    fn discard_token(&self, origin: &str, jwt: &str) {
        let mut tokens = self.tokens.lock().expect("vapid lock");
        if tokens.get(origin).is_some_and(|(current, _)| current == jwt) {
            tokens.remove(origin);
        }
    }

    async fn post(&self, endpoint: &str, body: &[u8], n: &Notification, jwt: &str) -> Result<Answer, reqwest::Error> {
        let ttl = n.ttl.unwrap_or(self.default_ttl).as_secs();
        let mut request = self
            .http
            .post(endpoint)
            .header("authorization", format!("vapid t={jwt}, k={}", self.public_key))
            .header("ttl", ttl.to_string())
            .header("content-encoding", "aes128gcm")
            .header("content-type", "application/octet-stream")
            .header(
                "urgency",
                match n.priority {
                    Priority::High => "high",
                    Priority::Normal => "normal",
                },
            )
            .body(body.to_vec());
        if let Some(key) = &n.collapse_key {
            request = request.header("topic", topic(key));
        }
        let response = request.send().await?;
        let status = response.status();
        let after = retry_after(response.headers());
        let detail = if status.is_success() { String::new() } else { response.text().await.unwrap_or_default() };
        Ok(classify(status, detail.trim(), after))
    }
}

/// Resolves push service host names and keeps only public addresses, so a name that resolves
/// (or is re-pointed) to an address inside the network is never connected to.
struct PublicOnlyResolver {
    allow_private_networks: bool,
}

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private_networks;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> = all.into_iter().filter(|a| allow_private || is_public_ip(a.ip())).collect();
            if usable.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves to no public address").into();
                return Err(refused);
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The JSON the service worker gets in its `push` event.
pub fn payload(n: &Notification) -> Value {
    let mut p = json!({"title": n.title, "body": n.body, "data": n.data});
    if let Some(tag) = n.thread_id.as_ref().or(n.collapse_key.as_ref()) {
        p["tag"] = json!(tag);
    }
    if let Some(badge) = n.badge {
        p["badge"] = json!(badge);
    }
    p
}

/// `collapse_key` as an RFC 8030 `Topic`: itself when it is at most 32 base64url
/// characters, else a digest that is.
pub fn topic(key: &str) -> String {
    let fits = !key.is_empty()
        && key.len() <= MAX_TOPIC
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fits {
        key.to_string()
    } else {
        b64url(&Sha256::digest(key.as_bytes()))[..MAX_TOPIC].to_string()
    }
}

fn classify(status: StatusCode, detail: &str, after: Option<Duration>) -> Answer {
    let described = if detail.is_empty() {
        format!("Web Push {status}")
    } else {
        format!("Web Push {status}: {}", detail.chars().take(200).collect::<String>())
    };
    let outcome = match status.as_u16() {
        200..=299 => SendOutcome::Delivered,
        // The subscription expired or was unsubscribed.
        404 | 410 => SendOutcome::invalid_token(described),
        401 => return Answer::Reauthenticate(described),
        429 | 500..=599 => SendOutcome::Retry { after, reason: described },
        // 400, 403 (our key is not the subscription's), 413 and the rest.
        _ => SendOutcome::rejected(described),
    };
    Answer::Done(outcome)
}

#[async_trait]
impl PushProvider for WebPushProvider {
    fn platform(&self) -> Platform {
        Platform::WebPush
    }

    async fn send(&self, device: &DeviceAddress, n: &Notification) -> SendOutcome {
        let DeviceAddress::WebPush { endpoint, p256dh, auth } = device else {
            return SendOutcome::rejected(format!("Web Push cannot send to a {} device", device.platform()));
        };
        let url = match validate_web_push_subscription(endpoint, p256dh, auth, self.policy) {
            Ok(url) => url,
            Err(why) => return SendOutcome::invalid_token(format!("Web Push subscription: {why}")),
        };
        let origin = url.origin().ascii_serialization();
        let (Ok(p256dh), Ok(auth)) = (b64url_decode(p256dh), b64url_decode(auth)) else {
            return SendOutcome::invalid_token("Web Push subscription keys are not base64url");
        };
        let plaintext = payload(n).to_string().into_bytes();
        if plaintext.len() > ece::MAX_PLAINTEXT {
            return SendOutcome::rejected(format!(
                "Web Push payload is {} bytes, over {}",
                plaintext.len(),
                ece::MAX_PLAINTEXT
            ));
        }
        let body = match ece::encrypt(&plaintext, &p256dh, &auth) {
            Ok(body) => body,
            Err(e) => return SendOutcome::invalid_token(format!("Web Push subscription keys: {e}")),
        };
        // At most two tries: the second only after the push service refused the token.
        let mut last = String::new();
        for _ in 0..2 {
            let jwt = self.vapid_token(&origin);
            match self.post(endpoint, &body, n, &jwt).await {
                Ok(Answer::Done(outcome)) => return outcome,
                Ok(Answer::Reauthenticate(reason)) => {
                    self.discard_token(&origin, &jwt);
                    last = reason;
                }
                Err(error) => return transport_failure("Web Push", &error),
            }
        }
        SendOutcome::retry(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{ec_key_to_b64url, generate_ec_key};

    #[tokio::test]
    async fn the_resolver_keeps_only_public_addresses() {
        use reqwest::dns::Resolve;
        let name = |host: &str| host.parse::<reqwest::dns::Name>().unwrap();
        let strict = PublicOnlyResolver { allow_private_networks: false };
        let refused = strict.resolve(name("localhost")).await.err().expect("localhost refused");
        assert!(refused.to_string().contains("no public address"), "{refused}");
        let local = PublicOnlyResolver { allow_private_networks: true };
        let addrs: Vec<SocketAddr> = local.resolve(name("localhost")).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }

    #[test]
    fn topics_fit_rfc8030() {
        assert_eq!(topic("C123_abc-"), "C123_abc-");
        for key in ["channel:C1", &"x".repeat(33), ""] {
            let t = topic(key);
            assert_eq!(t.len(), MAX_TOPIC);
            assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }

    #[test]
    fn answers_map_to_outcomes() {
        let kind = |status: u16| match classify(StatusCode::from_u16(status).unwrap(), "", None) {
            Answer::Done(outcome) => outcome.kind(),
            Answer::Reauthenticate(_) => "reauthenticate",
        };
        assert_eq!(kind(201), "delivered");
        assert_eq!(kind(202), "delivered");
        assert_eq!(kind(404), "invalid_token");
        assert_eq!(kind(410), "invalid_token");
        assert_eq!(kind(401), "reauthenticate");
        assert_eq!(kind(429), "retry");
        assert_eq!(kind(503), "retry");
        assert_eq!(kind(400), "rejected");
        assert_eq!(kind(403), "rejected");
        assert_eq!(kind(413), "rejected");
    }

    #[test]
    fn vapid_tokens_are_per_origin_and_verify() {
        let key = generate_ec_key();
        let provider =
            WebPushProvider::new(WebPushConfig::new(ec_key_to_b64url(&key), "mailto:ops@example.com")).unwrap();
        let a = provider.vapid_token("https://push.example.net");
        assert_eq!(provider.vapid_token("https://push.example.net"), a);
        let b = provider.vapid_token("https://updates.push.services.mozilla.com");
        assert_ne!(a, b);
        let verified = crate::jwt::verify_es256(&a, key.verifying_key()).unwrap();
        assert_eq!(verified.claims["aud"], "https://push.example.net");
        assert_eq!(verified.claims["sub"], "mailto:ops@example.com");
        let exp = verified.claims["exp"].as_u64().unwrap();
        assert!(exp > unix_now() && exp <= unix_now() + 24 * 3600);
        assert_eq!(provider.public_key(), ec_public_b64url(key.verifying_key()));
    }

    #[test]
    fn the_subject_must_be_a_contact_uri() {
        let key = ec_key_to_b64url(&generate_ec_key());
        assert!(WebPushProvider::new(WebPushConfig::new(key, "ops@example.com")).is_err());
    }
}
