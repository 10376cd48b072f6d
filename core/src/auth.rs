//! Workspace-bound bearer tokens: `cfb1.<base64url(json claims)>.<base64url(hmac-sha256)>`.
//!
//! A token names exactly one workspace and user and expires. Every API takes the workspace from
//! the verified token, never from the request.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    #[serde(rename = "ws")]
    pub workspace_id: Uuid,
    #[serde(rename = "sub")]
    pub user_id: Uuid,
    /// Unix seconds.
    pub exp: i64,
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
}

#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl TokenSigner {
    pub fn new(secret: &str) -> Self {
        Self { key: secret.as_bytes().to_vec() }
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac takes any key size");
        mac.update(body.as_bytes());
        mac
    }

    pub fn mint(&self, claims: &Claims) -> String {
        let body = format!("cfb1.{}", B64.encode(serde_json::to_vec(claims).expect("claims serialize")));
        let sig = B64.encode(self.mac(&body).finalize().into_bytes());
        format!("{body}.{sig}")
    }

    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Claims, AuthError> {
        let (body, sig) = token.rsplit_once('.').ok_or(AuthError::Malformed)?;
        let claims_b64 = body.strip_prefix("cfb1.").ok_or(AuthError::Malformed)?;
        let sig = B64.decode(sig).map_err(|_| AuthError::Malformed)?;
        self.mac(body).verify_slice(&sig).map_err(|_| AuthError::BadSignature)?;
        let claims: Claims = serde_json::from_slice(&B64.decode(claims_b64).map_err(|_| AuthError::Malformed)?)
            .map_err(|_| AuthError::Malformed)?;
        if claims.exp <= now_secs {
            return Err(AuthError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_expire_and_resist_tampering() {
        let s = TokenSigner::new("secret");
        let c = Claims { workspace_id: Uuid::new_v4(), user_id: Uuid::new_v4(), exp: 1000 };
        let t = s.mint(&c);
        assert_eq!(s.verify(&t, 999).unwrap(), c);
        assert_eq!(s.verify(&t, 1000).unwrap_err(), AuthError::Expired);
        assert_eq!(TokenSigner::new("other").verify(&t, 0).unwrap_err(), AuthError::BadSignature);
        let forged = Claims { workspace_id: Uuid::new_v4(), ..c };
        let forged_body = B64.encode(serde_json::to_vec(&forged).unwrap());
        let sig = t.rsplit_once('.').unwrap().1;
        assert_eq!(s.verify(&format!("cfb1.{forged_body}.{sig}"), 0).unwrap_err(), AuthError::BadSignature);
        assert_eq!(s.verify("garbage", 0).unwrap_err(), AuthError::Malformed);
    }
}
