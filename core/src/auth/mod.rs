//! Who a request is: bearer tokens, verified.
//!
//! Two formats are accepted, and both name exactly one workspace (`ws`) and user (`sub`):
//! - standard JWTs ([`jwt`]): HS256 signed with the configured token secret, or RS256 / EdDSA
//!   signed by an app's own backend whose public keys are in a JWKS (file or URL);
//! - Confab's own `cfb1` tokens ([`legacy`]), which the admin API mints; kept working until
//!   they are removed.
//!
//! Every token must expire, and no token may live longer than `auth.max_token_lifetime_secs`
//! (`exp - iat`). Revocation (a user's tokens issued at or before a time stop working) is
//! checked by the gateway against [`Claims::issued_at`]. Every API takes the workspace from the
//! verified token, never from the request.

pub mod command_signing;
pub mod jwt;
pub mod legacy;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use command_signing::CommandSigner;
pub use jwt::{JwtKeys, JwtRules};
pub use legacy::TokenSigner;

/// Whether `given` is the configured `key`, compared in time independent of where they differ;
/// an empty key admits nobody. For the admin key and the registry's write key.
pub fn key_matches(given: &str, key: &str) -> bool {
    let same = given.len() == key.len() && given.bytes().zip(key.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    same && !key.is_empty()
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    #[serde(rename = "ws")]
    pub workspace_id: Uuid,
    #[serde(rename = "sub")]
    pub user_id: Uuid,
    /// Unix seconds.
    pub exp: i64,
    /// Unix seconds; 0 for `cfb1` tokens minted before tokens carried it (any revocation of
    /// their user covers them).
    #[serde(default)]
    pub iat: i64,
}

impl Claims {
    /// Claims for a token issued now (`now_secs`) that lives `ttl_secs`.
    pub fn issued(workspace_id: Uuid, user_id: Uuid, now_secs: i64, ttl_secs: i64) -> Self {
        Self { workspace_id, user_id, exp: now_secs + ttl_secs, iat: now_secs }
    }

    pub fn issued_at(&self) -> i64 {
        self.iat
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    #[error("no bearer token given")]
    Missing,
    #[error("token is malformed")]
    Malformed,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token lives longer than this server accepts ({0} s at most)")]
    TooLong(i64),
    #[error("token is signed with an algorithm or key this server does not accept")]
    UnknownKey,
    #[error("token was revoked")]
    Revoked,
}

/// Verifies both formats with one set of rules.
pub struct TokenVerifier {
    legacy: TokenSigner,
    jwt: JwtRules,
    max_lifetime_secs: i64,
}

impl TokenVerifier {
    /// `secret` signs `cfb1` tokens and HS256 JWTs; `jwt` holds the rest of the JWT rules.
    pub fn new(secret: &str, jwt: JwtRules, max_lifetime_secs: i64) -> Self {
        Self { legacy: TokenSigner::new(secret), jwt, max_lifetime_secs }
    }

    /// The JWT rules (to swap the JWKS keys when they are refreshed).
    pub fn jwt(&self) -> &JwtRules {
        &self.jwt
    }

    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Claims, AuthError> {
        let claims = if token.starts_with("cfb1.") {
            self.legacy.verify(token, now_secs)?
        } else {
            self.jwt.verify(token, now_secs)?
        };
        // a cfb1 token without `iat` counts its lifetime from now
        let issued = if claims.iat > 0 { claims.iat } else { now_secs };
        if self.max_lifetime_secs > 0 && claims.exp - issued > self.max_lifetime_secs {
            return Err(AuthError::TooLong(self.max_lifetime_secs));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod key_tests {
    use super::key_matches;

    #[test]
    fn only_the_configured_key_matches_and_an_unset_one_admits_nobody() {
        assert!(key_matches("k3y-of-32-bytes-or-so", "k3y-of-32-bytes-or-so"));
        for given in ["", "k3y", "k3y-of-32-bytes-or-sO", "k3y-of-32-bytes-or-so-and-more"] {
            assert!(!key_matches(given, "k3y-of-32-bytes-or-so"), "{given:?}");
        }
        assert!(!key_matches("", ""), "an unset key admits nobody, even an empty bearer");
    }
}
