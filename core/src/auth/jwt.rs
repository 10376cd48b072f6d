//! Standard JWTs: HS256 with the configured token secret, or RS256 / EdDSA with a public key
//! from a JWKS (chosen by the header's `kid`, or the only key of that algorithm). Claims:
//! `sub` (user id), `ws` (workspace id), `exp` and `iat` (Unix seconds; both required, so a
//! lifetime can be bounded and revocation can compare issue times), and `iss` / `aud` when the
//! server is configured with them. `alg: none` and every other algorithm are refused.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::sync::RwLock;
use uuid::Uuid;

use super::{AuthError, Claims};

/// How far in the future an `iat` may be (clocks differ a little).
const CLOCK_SKEW_SECS: i64 = 60;

/// The public keys of a JWKS that this server can use.
#[derive(Clone, Default)]
pub struct JwtKeys {
    keys: Vec<(Option<String>, Algorithm, DecodingKey)>,
}

impl JwtKeys {
    /// Parses a JWKS document; keys of other types (or unusable ones) are left out, and a set
    /// with no usable key is an error.
    pub fn from_jwks(json: &[u8]) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let Some(alg) = algorithm_of(jwk.common.key_algorithm, &jwk.algorithm) else { continue };
            let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
            keys.push((jwk.common.key_id.clone(), alg, key));
        }
        if keys.is_empty() {
            return Err(format!("no RS256 or EdDSA key among the {} keys of the JWKS", set.keys.len()));
        }
        Ok(Self { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key named `kid`, or without a `kid` the only key of `alg`.
    fn find(&self, alg: Algorithm, kid: Option<&str>) -> Option<&DecodingKey> {
        let mut of_alg = self.keys.iter().filter(|(_, a, _)| *a == alg);
        match kid {
            Some(kid) => of_alg.find(|(k, _, _)| k.as_deref() == Some(kid)).map(|(_, _, key)| key),
            None => match (of_alg.next(), of_alg.next()) {
                (Some((_, _, key)), None) => Some(key),
                _ => None,
            },
        }
    }

    /// Whether a key named `kid` is known (a miss makes a URL-backed set refresh early).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|(k, _, _)| k.as_deref() == Some(kid))
    }
}

/// The algorithm a JWK is for: its `alg`, or RS256 for an RSA key and EdDSA for an Ed25519 key.
fn algorithm_of(declared: Option<KeyAlgorithm>, params: &AlgorithmParameters) -> Option<Algorithm> {
    match (declared, params) {
        (Some(KeyAlgorithm::RS256) | None, AlgorithmParameters::RSA(_)) => Some(Algorithm::RS256),
        (Some(KeyAlgorithm::EdDSA) | None, AlgorithmParameters::OctetKeyPair(p))
            if p.curve == EllipticCurve::Ed25519 =>
        {
            Some(Algorithm::EdDSA)
        }
        _ => None,
    }
}

/// What a JWT must satisfy here.
pub struct JwtRules {
    hs256: DecodingKey,
    keys: RwLock<JwtKeys>,
    issuer: Option<String>,
    audience: Option<String>,
}

#[derive(serde::Deserialize)]
struct JwtClaims {
    sub: String,
    ws: String,
    exp: i64,
    iat: Option<i64>,
}

impl JwtRules {
    /// HS256 tokens verify with `secret`; `issuer` and `audience`, when given, must match.
    pub fn new(secret: &str, keys: JwtKeys, issuer: Option<String>, audience: Option<String>) -> Self {
        Self { hs256: DecodingKey::from_secret(secret.as_bytes()), keys: RwLock::new(keys), issuer, audience }
    }

    /// Replaces the JWKS keys (after a refresh).
    pub fn set_keys(&self, keys: JwtKeys) {
        *self.keys.write().expect("jwt keys lock") = keys;
    }

    pub fn keys(&self) -> JwtKeys {
        self.keys.read().expect("jwt keys lock").clone()
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        // expiry is checked against the caller's clock below
        v.validate_exp = false;
        v.leeway = 0;
        // a configured issuer or audience must be present, not only right when present
        let mut required = vec!["exp", "sub"];
        required.extend(self.issuer.as_ref().map(|_| "iss"));
        required.extend(self.audience.as_ref().map(|_| "aud"));
        v.set_required_spec_claims(&required);
        match &self.audience {
            Some(aud) => v.set_audience(&[aud]),
            None => v.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
        }
        v
    }

    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let keys = self.keys.read().expect("jwt keys lock");
        let key = match header.alg {
            Algorithm::HS256 => &self.hs256,
            Algorithm::RS256 | Algorithm::EdDSA => {
                keys.find(header.alg, header.kid.as_deref()).ok_or(AuthError::UnknownKey)?
            }
            _ => return Err(AuthError::UnknownKey),
        };
        let data = jsonwebtoken::decode::<JwtClaims>(token, key, &self.validation(header.alg)).map_err(|e| match e
            .kind()
        {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => AuthError::UnknownKey,
            _ => AuthError::Malformed,
        })?;
        let c = data.claims;
        let (Ok(user_id), Ok(workspace_id)) = (c.sub.parse::<Uuid>(), c.ws.parse::<Uuid>()) else {
            return Err(AuthError::Malformed);
        };
        let iat = c.iat.ok_or(AuthError::Malformed)?;
        if iat > now_secs + CLOCK_SKEW_SECS {
            return Err(AuthError::Malformed);
        }
        if c.exp <= now_secs {
            return Err(AuthError::Expired);
        }
        Ok(Claims { workspace_id, user_id, exp: c.exp, iat })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    // test-only keys (tests/fixtures/jwt holds the same ones for the end-to-end tests)
    const ED_PRIVATE_PEM: &str = include_str!("../../../tests/fixtures/jwt/ed25519-private.pem");
    const RSA_PRIVATE_PEM: &str = include_str!("../../../tests/fixtures/jwt/rsa-private.pem");
    const JWKS: &str = include_str!("../../../tests/fixtures/jwt/jwks.json");

    fn claims(ws: Uuid, user: Uuid, iat: i64, exp: i64) -> serde_json::Value {
        json!({"sub": user, "ws": ws, "iat": iat, "exp": exp})
    }

    fn rules() -> JwtRules {
        JwtRules::new("a-secret-of-at-least-32-bytes-long!!", JwtKeys::from_jwks(JWKS.as_bytes()).unwrap(), None, None)
    }

    fn signed(alg: Algorithm, kid: Option<&str>, body: &serde_json::Value) -> String {
        let key = match alg {
            Algorithm::HS256 => EncodingKey::from_secret(b"a-secret-of-at-least-32-bytes-long!!"),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(ED_PRIVATE_PEM.as_bytes()).unwrap(),
            _ => EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap(),
        };
        let header = Header { kid: kid.map(String::from), ..Header::new(alg) };
        encode(&header, body, &key).unwrap()
    }

    #[test]
    fn hs256_rs256_and_eddsa_tokens_verify_with_their_keys() {
        let (ws, user) = (Uuid::new_v4(), Uuid::new_v4());
        let r = rules();
        for (alg, kid) in
            [(Algorithm::HS256, None), (Algorithm::RS256, Some("rsa-1")), (Algorithm::EdDSA, Some("ed-1"))]
        {
            let c = r.verify(&signed(alg, kid, &claims(ws, user, 100, 200)), 150).unwrap();
            assert_eq!((c.workspace_id, c.user_id, c.iat, c.exp), (ws, user, 100, 200), "{alg:?}");
        }
        // without a kid, the only key of the algorithm
        assert!(r.verify(&signed(Algorithm::EdDSA, None, &claims(ws, user, 100, 200)), 150).is_ok());
    }

    #[test]
    fn wrong_keys_algorithms_and_claims_are_refused() {
        let (ws, user) = (Uuid::new_v4(), Uuid::new_v4());
        let r = rules();
        let good = claims(ws, user, 100, 200);
        assert_eq!(r.verify(&signed(Algorithm::RS256, Some("nope"), &good), 150), Err(AuthError::UnknownKey));
        assert_eq!(r.verify(&signed(Algorithm::HS256, None, &good), 200), Err(AuthError::Expired));
        let other = JwtRules::new("another-secret-of-at-least-32-bytes", JwtKeys::default(), None, None);
        assert_eq!(other.verify(&signed(Algorithm::HS256, None, &good), 150), Err(AuthError::BadSignature));
        assert_eq!(
            other.verify(&signed(Algorithm::EdDSA, Some("ed-1"), &good), 150),
            Err(AuthError::UnknownKey),
            "no JWKS configured"
        );
        let no_iat = json!({"sub": user, "ws": ws, "exp": 200});
        assert_eq!(r.verify(&signed(Algorithm::HS256, None, &no_iat), 150), Err(AuthError::Malformed));
        let not_uuid = json!({"sub": "bob", "ws": ws, "iat": 100, "exp": 200});
        assert_eq!(r.verify(&signed(Algorithm::HS256, None, &not_uuid), 150), Err(AuthError::Malformed));
        let future = claims(ws, user, 10_000, 20_000);
        assert_eq!(r.verify(&signed(Algorithm::HS256, None, &future), 150), Err(AuthError::Malformed));
        // alg none: header {"alg":"none"}, no signature
        let none = format!("eyJhbGciOiJub25lIn0.{}.", base64_url(&good));
        assert!(r.verify(&none, 150).is_err());
        assert_eq!(r.verify("not a token", 150), Err(AuthError::Malformed));
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let (ws, user) = (Uuid::new_v4(), Uuid::new_v4());
        let secret = "a-secret-of-at-least-32-bytes-long!!";
        let r = JwtRules::new(secret, JwtKeys::default(), Some("https://app".into()), Some("confab".into()));
        let mut body = claims(ws, user, 100, 200);
        assert_eq!(r.verify(&signed(Algorithm::HS256, None, &body), 150), Err(AuthError::Malformed));
        body["iss"] = json!("https://app");
        body["aud"] = json!("confab");
        assert!(r.verify(&signed(Algorithm::HS256, None, &body), 150).is_ok());
        body["aud"] = json!("someone-else");
        assert_eq!(r.verify(&signed(Algorithm::HS256, None, &body), 150), Err(AuthError::Malformed));
    }

    #[test]
    fn a_jwks_without_usable_keys_is_an_error() {
        assert!(JwtKeys::from_jwks(br#"{"keys": []}"#).is_err());
        assert!(JwtKeys::from_jwks(b"nope").is_err());
        let keys = JwtKeys::from_jwks(JWKS.as_bytes()).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.has_kid("rsa-1") && !keys.has_kid("rsa-2"));
    }

    fn base64_url(v: &serde_json::Value) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }
}
