//! Who wrote a command: gateways sign every command they put on `<ns>.commands`, and ingest
//! sequences only commands whose signature verifies.
//!
//! A command names its sender (`user_id`) and workspace; the gateway took both from a verified
//! token. Without a signature, anyone able to write the commands topic could post as anyone.
//! The signature is an HMAC-SHA256 over the record key and payload, carried in the Kafka header
//! [`SIGNATURE_HEADER`], under a key derived from `auth.token_secret` (which every gateway
//! already holds to mint tokens, so the signature grants no one a power they lack). Topic ACLs
//! (the distributed-mode issue) keep the topic writable only by gateways as a second wall; the
//! signature holds where ACLs are not set up, and says which records were forged.
//!
//! A signature proves origin, not freshness: a signed record written again is the same command,
//! which ingest's `client_msg_id` deduplication and idempotent edits and deletes absorb.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The Kafka header that carries a command's signature (32 raw bytes).
pub const SIGNATURE_HEADER: &str = "confab-sig-v1";

/// Separates this use of the token secret from every other (token MACs).
const KEY_DERIVATION_LABEL: &[u8] = b"confab/command-signing/v1";

/// Signs and verifies commands with a key derived from the token secret.
#[derive(Clone)]
pub struct CommandSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for CommandSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandSigner(..)")
    }
}

impl CommandSigner {
    pub fn from_token_secret(token_secret: &str) -> Self {
        let mut derive = new_mac(token_secret.as_bytes());
        derive.update(KEY_DERIVATION_LABEL);
        Self { key: derive.finalize().into_bytes().into() }
    }

    /// The signature of a record with this key and payload.
    pub fn sign(&self, record_key: &[u8], payload: &[u8]) -> [u8; 32] {
        self.mac(record_key, payload).finalize().into_bytes().into()
    }

    /// True when `signature` is this signer's signature of the record (constant-time compare).
    pub fn verifies(&self, record_key: &[u8], payload: &[u8], signature: &[u8]) -> bool {
        self.mac(record_key, payload).verify_slice(signature).is_ok()
    }

    fn mac(&self, record_key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = new_mac(&self.key);
        // the key's length first, so no key/payload split can be shifted into another
        mac.update(&(record_key.len() as u64).to_be_bytes());
        mac.update(record_key);
        mac.update(payload);
        mac
    }
}

fn new_mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("hmac takes any key size")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_own_record_and_key() {
        let signer = CommandSigner::from_token_secret("a-long-enough-token-secret-for-tests");
        let signature = signer.sign(b"ws/ch", b"{\"type\":\"send\"}");
        assert!(signer.verifies(b"ws/ch", b"{\"type\":\"send\"}", &signature));
        assert!(!signer.verifies(b"ws/ch", b"{\"type\":\"edit\"}", &signature), "payload changed");
        assert!(!signer.verifies(b"ws/other", b"{\"type\":\"send\"}", &signature), "key changed");
        assert!(!signer.verifies(b"ws/c", b"h{\"type\":\"send\"}", &signature), "boundary shifted");
        assert!(!signer.verifies(b"ws/ch", b"{\"type\":\"send\"}", &signature[..31]), "truncated");
        let other = CommandSigner::from_token_secret("another-long-enough-token-secret!!");
        assert!(!other.verifies(b"ws/ch", b"{\"type\":\"send\"}", &signature), "other secret");
    }

    #[test]
    fn the_signing_key_is_not_the_token_secret_itself() {
        let secret = "a-long-enough-token-secret-for-tests";
        let signer = CommandSigner::from_token_secret(secret);
        let mut direct = new_mac(secret.as_bytes());
        direct.update(&5u64.to_be_bytes());
        direct.update(b"ws/ch");
        direct.update(b"{}");
        let direct: [u8; 32] = direct.finalize().into_bytes().into();
        assert_ne!(signer.sign(b"ws/ch", b"{}"), direct);
    }
}
