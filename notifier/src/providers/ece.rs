//! Web Push message encryption (RFC 8291): the `aes128gcm` content coding of
//! RFC 8188, keyed by ECDH on P-256 between a fresh application-server key and the
//! browser's subscription key, mixed with the subscription's authentication
//! secret through HKDF-SHA256.
//!
//! One message is one record (RFC 8291 §4): header `salt(16) || rs(4) || idlen(1)
//! || keyid(65 = the application server's public key)`, then
//! `AES-128-GCM(plaintext || 0x02)`.

use aes_gcm::aead::Aead;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand::RngCore;
use sha2::Sha256;

use crate::PushError;

/// The record size written in the header: the most RFC 8291 allows a push service
/// to be asked to carry (4096 octets of payload).
pub const RECORD_SIZE: u32 = 4096;
const HEADER_LEN: usize = 16 + 4 + 1 + 65;
const TAG_LEN: usize = 16;
/// The largest plaintext that fits one 4096-octet message: 4096 - 86 (header) - 16
/// (tag) - 1 (padding delimiter).
pub const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - HEADER_LEN - TAG_LEN - 1;

fn err(what: &str) -> PushError {
    PushError::Encryption(what.to_string())
}

/// The content-encryption key and nonce for one message (RFC 8291 §3.4, RFC 8188 §2.2-2.3).
struct Keys {
    cek: [u8; 16],
    nonce: [u8; 12],
}

/// `ecdh_secret` is ECDH(as, ua); `ua_public` and `as_public` are uncompressed points.
fn derive(ecdh_secret: &[u8], auth_secret: &[u8], ua_public: &[u8], as_public: &[u8], salt: &[u8]) -> Keys {
    // PRK_key = HMAC-SHA-256(auth_secret, ecdh_secret);
    // IKM = HMAC-SHA-256(PRK_key, "WebPush: info" || 0x00 || ua_public || as_public || 0x01)
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth_secret), ecdh_secret)
        .expand(&key_info, &mut ikm)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    // PRK = HMAC-SHA-256(salt, IKM); CEK and NONCE expand from it.
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut keys = Keys { cek: [0; 16], nonce: [0; 12] };
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut keys.cek).expect("valid length");
    prk.expand(b"Content-Encoding: nonce\0", &mut keys.nonce).expect("valid length");
    keys
}

fn ecdh(secret: &SecretKey, public: &PublicKey) -> Vec<u8> {
    p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine()).raw_secret_bytes().to_vec()
}

fn subscription_key(p256dh: &[u8]) -> Result<PublicKey, PushError> {
    if p256dh.len() != 65 || p256dh[0] != 0x04 {
        return Err(err("p256dh is not an uncompressed P-256 point"));
    }
    PublicKey::from_sec1_bytes(p256dh).map_err(|_| err("p256dh is not a point on P-256"))
}

/// Encrypts `plaintext` for the subscription whose public key is `p256dh` (65
/// bytes, uncompressed) and authentication secret is `auth` (16 bytes), with a
/// fresh application-server key and salt.
pub fn encrypt(plaintext: &[u8], p256dh: &[u8], auth: &[u8]) -> Result<Vec<u8>, PushError> {
    let as_secret = SecretKey::random(&mut rand::rngs::OsRng);
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    encrypt_with(plaintext, p256dh, auth, &as_secret, &salt)
}

/// [`encrypt`] with a given application-server key and salt (the RFC's example
/// fixes both). Never reuse either for two messages.
pub fn encrypt_with(
    plaintext: &[u8],
    p256dh: &[u8],
    auth: &[u8],
    as_secret: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, PushError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(err("plaintext does not fit one 4096-octet push message"));
    }
    if auth.len() != 16 {
        return Err(err("auth secret is not 16 bytes"));
    }
    let ua_public = subscription_key(p256dh)?;
    let as_public = as_secret.public_key().to_encoded_point(false);
    let keys = derive(&ecdh(as_secret, &ua_public), auth, p256dh, as_public.as_bytes(), salt);

    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(0x02); // last (and only) record, no padding
    let sealed = Aes128Gcm::new_from_slice(&keys.cek)
        .expect("16-byte key")
        .encrypt(Nonce::from_slice(&keys.nonce), record.as_slice())
        .map_err(|_| err("AES-GCM encryption failed"))?;

    let mut message = Vec::with_capacity(HEADER_LEN + sealed.len());
    message.extend_from_slice(salt);
    message.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    message.push(65);
    message.extend_from_slice(as_public.as_bytes());
    message.extend_from_slice(&sealed);
    Ok(message)
}

/// The browser's side: decrypts a one-record `aes128gcm` push message with the
/// subscription's private key and authentication secret. The fake Web Push service
/// uses it to check what the provider sent.
pub fn decrypt(message: &[u8], ua_secret: &SecretKey, auth: &[u8]) -> Result<Vec<u8>, PushError> {
    if message.len() < HEADER_LEN + TAG_LEN + 1 {
        return Err(err("message shorter than its header and one record"));
    }
    let salt = &message[..16];
    let rs = u32::from_be_bytes(message[16..20].try_into().expect("4 bytes")) as usize;
    let idlen = message[20] as usize;
    if idlen != 65 {
        return Err(err("keyid is not a 65-octet P-256 public key"));
    }
    let as_public_bytes = &message[21..21 + idlen];
    let record = &message[21 + idlen..];
    if rs < TAG_LEN + 2 || record.len() > rs {
        return Err(err("more than one record, or a record size too small"));
    }
    let as_public = subscription_key(as_public_bytes)?;
    let ua_public = ua_secret.public_key().to_encoded_point(false);
    let keys = derive(&ecdh(ua_secret, &as_public), auth, ua_public.as_bytes(), as_public_bytes, salt);
    let mut padded = Aes128Gcm::new_from_slice(&keys.cek)
        .expect("16-byte key")
        .decrypt(Nonce::from_slice(&keys.nonce), record)
        .map_err(|_| err("AES-GCM authentication failed"))?;
    // Strip the padding: zeros after the delimiter, which must be 0x02 (last record).
    let end = padded.iter().rposition(|&b| b != 0).ok_or_else(|| err("record has no delimiter"))?;
    if padded[end] != 0x02 {
        return Err(err("record delimiter is not 0x02 (last record)"));
    }
    padded.truncate(end);
    Ok(padded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::b64url_decode;

    fn d(text: &str) -> Vec<u8> {
        b64url_decode(text).unwrap()
    }

    // RFC 8291 Appendix A.
    const PLAINTEXT: &str = "V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24";
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const AS_PUBLIC: &str = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const UA_PUBLIC: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const ECDH_SECRET: &str = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs";
    const CEK: &str = "oIhVW04MRdy2XN9CiKLxTg";
    const NONCE: &str = "4h_95klXJ5E_qnoN";
    const MESSAGE: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

    #[test]
    fn rfc8291_appendix_a_key_derivation() {
        let as_secret = SecretKey::from_slice(&d(AS_PRIVATE)).unwrap();
        assert_eq!(as_secret.public_key().to_encoded_point(false).as_bytes(), d(AS_PUBLIC).as_slice());
        let ua_public = subscription_key(&d(UA_PUBLIC)).unwrap();
        let secret = ecdh(&as_secret, &ua_public);
        assert_eq!(secret, d(ECDH_SECRET));
        let keys = derive(&secret, &d(AUTH), &d(UA_PUBLIC), &d(AS_PUBLIC), &d(SALT));
        assert_eq!(keys.cek.to_vec(), d(CEK));
        assert_eq!(keys.nonce.to_vec(), d(NONCE));
    }

    #[test]
    fn rfc8291_appendix_a_message() {
        let as_secret = SecretKey::from_slice(&d(AS_PRIVATE)).unwrap();
        let salt: [u8; 16] = d(SALT).try_into().unwrap();
        let message = encrypt_with(&d(PLAINTEXT), &d(UA_PUBLIC), &d(AUTH), &as_secret, &salt).unwrap();
        assert_eq!(message, d(MESSAGE));

        let ua_secret = SecretKey::from_slice(&d(UA_PRIVATE)).unwrap();
        let plaintext = decrypt(&d(MESSAGE), &ua_secret, &d(AUTH)).unwrap();
        assert_eq!(plaintext, b"When I grow up, I want to be a watermelon");
    }

    #[test]
    fn round_trip_with_fresh_keys_and_the_largest_plaintext() {
        let ua_secret = SecretKey::random(&mut rand::rngs::OsRng);
        let p256dh = ua_secret.public_key().to_encoded_point(false).as_bytes().to_vec();
        let auth = [7u8; 16];
        let plaintext = vec![b'x'; MAX_PLAINTEXT];
        let message = encrypt(&plaintext, &p256dh, &auth).unwrap();
        assert_eq!(message.len(), RECORD_SIZE as usize);
        assert_eq!(decrypt(&message, &ua_secret, &auth).unwrap(), plaintext);
        assert!(encrypt(&[0; MAX_PLAINTEXT + 1], &p256dh, &auth).is_err());

        let mut tampered = message.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(decrypt(&tampered, &ua_secret, &auth).is_err());
        assert!(decrypt(&message, &ua_secret, &[8u8; 16]).is_err(), "wrong auth secret");
    }

    #[test]
    fn rejects_bad_subscription_keys() {
        assert!(encrypt(b"hi", &[4u8; 65], &[0; 16]).is_err(), "not on the curve");
        assert!(encrypt(b"hi", &d(UA_PUBLIC)[..33], &[0; 16]).is_err(), "compressed/short");
        assert!(encrypt(b"hi", &d(UA_PUBLIC), &[0; 15]).is_err(), "auth secret length");
    }
}
