//! Loading (and, for tools and tests, making) the private keys the providers sign
//! with, and the base64url that every provider's wire format uses.
//!
//! * APNs signs with a P-256 key downloaded from Apple as a `.p8` file (PKCS#8 PEM).
//! * VAPID signs with a P-256 key, by convention kept as a base64url 32-byte scalar
//!   (PKCS#8 or SEC1 PEM are accepted too).
//! * FCM signs with the RSA key of a Google service account (PKCS#8 PEM).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::der::pem;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};

use crate::PushError;

/// base64url without padding (RFC 7515 §2, RFC 8291, RFC 8292).
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url, padded or not; also takes the standard alphabet, which some
/// clients send subscription keys in.
pub fn b64url_decode(text: &str) -> Result<Vec<u8>, PushError> {
    let normalized: String = text
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(normalized).map_err(|e| PushError::InvalidKey(format!("not base64url: {e}")))
}

/// A P-256 signing key from PEM: PKCS#8 (`BEGIN PRIVATE KEY`, Apple's `.p8`) or
/// SEC1 (`BEGIN EC PRIVATE KEY`).
pub fn ec_key_from_pem(text: &str) -> Result<SigningKey, PushError> {
    let text = text.trim();
    if text.contains("BEGIN EC PRIVATE KEY") {
        let secret =
            p256::SecretKey::from_sec1_pem(text).map_err(|e| PushError::InvalidKey(format!("SEC1 P-256 key: {e}")))?;
        return Ok(SigningKey::from(secret));
    }
    SigningKey::from_pkcs8_pem(text).map_err(|e| PushError::InvalidKey(format!("PKCS#8 P-256 key: {e}")))
}

/// A P-256 signing key from its base64url 32-byte private scalar.
pub fn ec_key_from_b64url(text: &str) -> Result<SigningKey, PushError> {
    let bytes = b64url_decode(text)?;
    SigningKey::from_slice(&bytes).map_err(|_| PushError::InvalidKey("not a P-256 private scalar".into()))
}

/// A P-256 key from either form: PEM when it looks like PEM, base64url otherwise.
pub fn ec_key_from_str(text: &str) -> Result<SigningKey, PushError> {
    if text.contains("-----BEGIN") {
        ec_key_from_pem(text)
    } else {
        ec_key_from_b64url(text)
    }
}

/// A fresh random P-256 key.
pub fn generate_ec_key() -> SigningKey {
    SigningKey::random(&mut rand::rngs::OsRng)
}

/// The key as PKCS#8 PEM, the form of Apple's `.p8` files.
pub fn ec_key_to_pem(key: &SigningKey) -> String {
    key.to_pkcs8_pem(LineEnding::LF).expect("a P-256 key encodes as PKCS#8").to_string()
}

/// The key's private scalar, base64url (the usual form of a VAPID private key).
pub fn ec_key_to_b64url(key: &SigningKey) -> String {
    b64url(&key.to_bytes())
}

/// The uncompressed SEC1 point (65 bytes, `0x04 || x || y`).
pub fn ec_public_bytes(key: &VerifyingKey) -> Vec<u8> {
    key.to_encoded_point(false).as_bytes().to_vec()
}

/// The uncompressed SEC1 point, base64url (VAPID's `k`, the browser's `applicationServerKey`).
pub fn ec_public_b64url(key: &VerifyingKey) -> String {
    b64url(&ec_public_bytes(key))
}

/// The VAPID public key (base64url, uncompressed) of a private one as configured
/// (`notifier.webpush_vapid_key`): what web clients pass to `pushManager.subscribe`.
pub fn vapid_public_key(private_key: &str) -> Result<String, PushError> {
    Ok(ec_public_b64url(ec_key_from_str(private_key)?.verifying_key()))
}

/// An RSA key from PEM: PKCS#8 (`BEGIN PRIVATE KEY`, what Google service accounts
/// hold) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
pub fn rsa_key_from_pem(text: &str) -> Result<RsaKeyPair, PushError> {
    let (label, der) =
        pem::decode_vec(text.trim().as_bytes()).map_err(|e| PushError::InvalidKey(format!("RSA key PEM: {e}")))?;
    let parsed = match label {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
        other => return Err(PushError::InvalidKey(format!("expected an RSA private key, got PEM {other:?}"))),
    };
    parsed.map_err(|e| PushError::InvalidKey(format!("RSA key: {e}")))
}

/// A fresh 2048-bit RSA key.
pub fn generate_rsa_key() -> Result<RsaKeyPair, PushError> {
    RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| PushError::InvalidKey("RSA key generation failed".into()))
}

/// The key as PKCS#8 PEM, the form of a service account's `private_key`.
pub fn rsa_key_to_pem(key: &RsaKeyPair) -> Result<String, PushError> {
    let der = key.as_der().map_err(|_| PushError::InvalidKey("RSA key does not encode".into()))?;
    pem::encode_string("PRIVATE KEY", LineEnding::LF, der.as_ref())
        .map_err(|e| PushError::InvalidKey(format!("RSA key PEM: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_key_round_trips_through_pem_and_b64url() {
        let key = generate_ec_key();
        let from_pem = ec_key_from_str(&ec_key_to_pem(&key)).unwrap();
        let from_b64 = ec_key_from_str(&ec_key_to_b64url(&key)).unwrap();
        assert_eq!(from_pem.to_bytes(), key.to_bytes());
        assert_eq!(from_b64.to_bytes(), key.to_bytes());
        assert_eq!(ec_public_bytes(key.verifying_key()).len(), 65);
    }

    #[test]
    fn rsa_key_round_trips_through_pem() {
        let key = generate_rsa_key().unwrap();
        let pem = rsa_key_to_pem(&key).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = rsa_key_from_pem(&pem).unwrap();
        assert_eq!(back.public_modulus_len(), 256);
    }

    #[test]
    fn b64url_decode_accepts_padding_and_the_standard_alphabet() {
        assert_eq!(b64url_decode("-_8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(b64url_decode("+/8").unwrap(), vec![0xfb, 0xff]);
        assert!(b64url_decode("not base64!").is_err());
    }
}
