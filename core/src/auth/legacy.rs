//! Confab's own tokens: `cfb1.<base64url(json claims)>.<base64url(hmac-sha256)>`, minted by
//! the admin API and verified with the same secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{AuthError, Claims};

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
    use uuid::Uuid;

    #[test]
    fn tokens_verify_expire_and_resist_tampering() {
        let s = TokenSigner::new("secret");
        let c = Claims { workspace_id: Uuid::new_v4(), user_id: Uuid::new_v4(), exp: 1000, iat: 10 };
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

#[cfg(test)]
mod compatibility {
    use super::*;

    #[test]
    fn a_token_minted_before_iat_still_verifies() {
        let s = TokenSigner::new("secret");
        let (ws, user) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let body = format!("cfb1.{}", B64.encode(format!(r#"{{"ws":"{ws}","sub":"{user}","exp":1000}}"#)));
        let sig = B64.encode(s.mac(&body).finalize().into_bytes());
        let c = s.verify(&format!("{body}.{sig}"), 10).unwrap();
        assert_eq!((c.workspace_id, c.user_id, c.exp, c.iat), (ws, user, 1000, 0));
    }
}
