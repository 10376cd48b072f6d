//! Compact JWS (RFC 7515) signed tokens: ES256 for APNs provider tokens and VAPID,
//! RS256 for Google service-account assertions; and their verification, which the
//! fake push services use.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256};
use p256::ecdsa::signature::{RandomizedSigner, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::Value;

use crate::keys::{b64url, b64url_decode};
use crate::PushError;

/// Seconds since the Unix epoch (JWT `iat` / `exp`).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()))
}

/// Signs with ECDSA P-256 / SHA-256 (`alg` ES256; the signature is `r || s`, 64
/// bytes). The nonce is randomized (hedged), so two tokens with the same claims
/// differ.
pub fn sign_es256(header: &Value, claims: &Value, key: &SigningKey) -> String {
    let input = signing_input(header, claims);
    let signature: Signature = key.sign_with_rng(&mut rand::rngs::OsRng, input.as_bytes());
    format!("{input}.{}", b64url(&signature.to_bytes()))
}

/// Signs with RSASSA-PKCS1-v1_5 / SHA-256 (`alg` RS256).
pub fn sign_rs256(header: &Value, claims: &Value, key: &RsaKeyPair) -> Result<String, PushError> {
    let input = signing_input(header, claims);
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), input.as_bytes(), &mut signature)
        .map_err(|_| PushError::Jwt("RS256 signing failed".into()))?;
    Ok(format!("{input}.{}", b64url(&signature)))
}

/// A token whose signature verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub header: Value,
    pub claims: Value,
}

struct Parts<'a> {
    input: &'a str,
    header: Value,
    claims: Value,
    signature: Vec<u8>,
}

fn split<'a>(token: &'a str, alg: &str) -> Result<Parts<'a>, PushError> {
    let bad = |what: &str| PushError::Jwt(what.to_string());
    let (input, signature) = token.rsplit_once('.').ok_or_else(|| bad("not a compact JWS"))?;
    let (header, claims) = input.split_once('.').ok_or_else(|| bad("not a compact JWS"))?;
    let json = |part: &str| -> Result<Value, PushError> {
        let bytes = b64url_decode(part).map_err(|_| bad("segment is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| bad("segment is not JSON"))
    };
    let header = json(header)?;
    if header.get("alg").and_then(Value::as_str) != Some(alg) {
        return Err(PushError::Jwt(format!("alg is not {alg}")));
    }
    let claims = json(claims)?;
    let signature = b64url_decode(signature).map_err(|_| bad("signature is not base64url"))?;
    Ok(Parts { input, header, claims, signature })
}

/// Verifies an ES256 token against `key`; returns its header and claims. Checks
/// no claim: that is the caller's job.
pub fn verify_es256(token: &str, key: &VerifyingKey) -> Result<Verified, PushError> {
    let parts = split(token, "ES256")?;
    let signature =
        Signature::from_slice(&parts.signature).map_err(|_| PushError::Jwt("bad ES256 signature".into()))?;
    key.verify(parts.input.as_bytes(), &signature)
        .map_err(|_| PushError::Jwt("ES256 signature does not verify".into()))?;
    Ok(Verified { header: parts.header, claims: parts.claims })
}

/// Verifies an RS256 token against an RSA public key (DER, PKCS#1 `RSAPublicKey`
/// or X.509 `SubjectPublicKeyInfo`); returns its header and claims.
pub fn verify_rs256(token: &str, public_key_der: &[u8]) -> Result<Verified, PushError> {
    let parts = split(token, "RS256")?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key_der)
        .verify(parts.input.as_bytes(), &parts.signature)
        .map_err(|_| PushError::Jwt("RS256 signature does not verify".into()))?;
    Ok(Verified { header: parts.header, claims: parts.claims })
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::KeyPair;
    use serde_json::json;

    use super::*;
    use crate::keys::{generate_ec_key, generate_rsa_key};

    #[test]
    fn es256_signs_and_verifies_and_is_randomized() {
        let key = generate_ec_key();
        let header = json!({"alg": "ES256", "kid": "K"});
        let claims = json!({"iss": "T", "iat": 1});
        let a = sign_es256(&header, &claims, &key);
        let b = sign_es256(&header, &claims, &key);
        assert_ne!(a, b, "hedged signatures differ");
        let verified = verify_es256(&a, key.verifying_key()).unwrap();
        assert_eq!(verified.claims, claims);
        assert!(verify_es256(&a, generate_ec_key().verifying_key()).is_err());
        let tampered = a.replacen(".", ".e30", 1);
        assert!(verify_es256(&tampered, key.verifying_key()).is_err());
    }

    #[test]
    fn rs256_signs_and_verifies() {
        let key = generate_rsa_key().unwrap();
        let token = sign_rs256(&json!({"alg": "RS256"}), &json!({"iss": "me"}), &key).unwrap();
        let verified = verify_rs256(&token, key.public_key().as_ref()).unwrap();
        assert_eq!(verified.claims["iss"], "me");
        assert!(verify_es256(&token, generate_ec_key().verifying_key()).is_err(), "alg is checked");
        let other = generate_rsa_key().unwrap();
        assert!(verify_rs256(&token, other.public_key().as_ref()).is_err());
    }
}
