//! OAuth 2.0 access tokens for a Google service account (RFC 7523 JWT bearer
//! grant), as FCM HTTP v1 requires.
//!
//! The service account signs an RS256 assertion (`iss` = its email, `scope`, `aud` =
//! the token endpoint, `iat`, `exp` one hour on), posts it to the token endpoint
//! with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, and gets an access
//! token, which is cached until shortly before it expires.

use std::time::{Duration, Instant};

use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use serde::Deserialize;
use serde_json::json;

use super::retry_after;
use crate::jwt::{sign_rs256, unix_now};
use crate::keys::rsa_key_from_pem;
use crate::PushError;

pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long an assertion is valid: Google takes at most one hour.
const ASSERTION_LIFETIME: u64 = 3600;

/// The parts of a service account key file (the JSON Google hands out) we use.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    #[serde(default)]
    pub private_key_id: String,
    /// PKCS#8 PEM.
    pub private_key: String,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

fn default_token_uri() -> String {
    GOOGLE_TOKEN_URI.to_string()
}

impl ServiceAccount {
    /// Reads a service account key file's JSON.
    pub fn from_json(text: &str) -> Result<Self, PushError> {
        serde_json::from_str(text).map_err(|e| PushError::Config(format!("service account JSON: {e}")))
    }
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("private_key", &"<redacted>")
            .field("token_uri", &self.token_uri)
            .finish()
    }
}

/// Why no access token could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub reason: String,
    /// The token endpoint's `Retry-After`, if it said.
    pub retry_after: Option<Duration>,
}

struct AccessToken {
    value: String,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default = "default_expires_in")]
    expires_in: u64,
}

fn default_expires_in() -> u64 {
    ASSERTION_LIFETIME
}

/// Mints and caches access tokens for one service account and scope. Concurrent
/// callers share one fetch.
pub struct AccessTokenSource {
    http: reqwest::Client,
    token_uri: String,
    client_email: String,
    private_key_id: String,
    key: RsaKeyPair,
    scope: String,
    cached: tokio::sync::Mutex<Option<AccessToken>>,
}

impl AccessTokenSource {
    pub fn new(account: &ServiceAccount, scope: &str, http: reqwest::Client) -> Result<Self, PushError> {
        Ok(AccessTokenSource {
            http,
            token_uri: account.token_uri.clone(),
            client_email: account.client_email.clone(),
            private_key_id: account.private_key_id.clone(),
            key: rsa_key_from_pem(&account.private_key)?,
            scope: scope.to_string(),
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid access token: the cached one, or a fresh one from the token endpoint.
    pub async fn token(&self) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let token = self.fetch().await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Forgets `token` if it is still the cached one (the API said it is no good).
    pub async fn discard(&self, token: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == token) {
            *cached = None;
        }
    }

    /// The signed assertion for the token endpoint.
    pub fn assertion(&self) -> Result<String, PushError> {
        let now = unix_now();
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if !self.private_key_id.is_empty() {
            header["kid"] = json!(self.private_key_id);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": self.scope,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        sign_rs256(&header, &claims, &self.key)
    }

    async fn fetch(&self) -> Result<AccessToken, TokenError> {
        let fail = |reason: String, retry_after| TokenError { reason, retry_after };
        let assertion = self.assertion().map_err(|e| fail(e.to_string(), None))?;
        let started = Instant::now();
        let response = self
            .http
            .post(&self.token_uri)
            .form(&[("grant_type", JWT_BEARER_GRANT), ("assertion", assertion.as_str())])
            .send()
            .await
            .map_err(|e| fail(format!("OAuth token endpoint: {e}"), None))?;
        let status = response.status();
        if !status.is_success() {
            let after = retry_after(response.headers());
            let body = response.text().await.unwrap_or_default();
            tracing::warn!(status = status.as_u16(), %body, "OAuth token endpoint refused the service account");
            return Err(fail(format!("OAuth token endpoint {}: {}", status.as_u16(), body.trim()), after));
        }
        let token: TokenResponse =
            response.json().await.map_err(|e| fail(format!("OAuth token endpoint answer: {e}"), None))?;
        // Refresh a minute early (or halfway through a short-lived token).
        let lifetime = Duration::from_secs(token.expires_in);
        let margin = Duration::from_secs(60).min(lifetime / 2);
        Ok(AccessToken { value: token.access_token, refresh_at: started + lifetime - margin })
    }
}
