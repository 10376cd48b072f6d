//! Crypto-shredding's primitives: the sensitive fields of an event are sealed in the log under a
//! data key of their own, so destroying that key erases them from every copy of the log at once
//! (segments, replicas, backups, replays) without rewriting history.
//!
//! The key hierarchy (see "Decisions and why" in `docs/architecture.md`):
//! - the **master key** ([`KeyWrapper`]: a local file by default, a KMS where one is plugged in)
//!   wraps one **workspace key** per workspace;
//! - a workspace key wraps the **data keys** of that workspace: one per message text version
//!   (its key id is the id of the event that wrote that version);
//! - a data key seals the field into a [`SealedBox`] (XChaCha20-Poly1305, a random 192-bit
//!   nonce per box), bound to its workspace, key id and field, so a box cannot be moved.
//!
//! Destroying a data key erases one version of one message; destroying a workspace key erases
//! everything the workspace ever wrote. Pure functions and data only: the key store and the
//! caches are in [`crate::keyring`].

use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use uuid::Uuid;

/// Bytes in every key of the hierarchy.
pub const KEY_LEN: usize = 32;
/// Bytes in a box's nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes a sealed value grows by (the authentication tag).
pub const TAG_LEN: usize = 16;

/// A 256-bit key. Its bytes never reach a log or a `Debug` print.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// A fresh key from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The key in `bytes`, if there are exactly [`KEY_LEN`] of them.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }

    /// Derives a key from a secret's text (the master key file): HKDF-SHA256 with `purpose`.
    pub fn derive(secret: &str, purpose: &str) -> Self {
        let kdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"confab"), secret.as_bytes());
        let mut bytes = [0u8; KEY_LEN];
        kdf.expand(purpose.as_bytes(), &mut bytes).expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(bytes)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Which field of an event a box holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedField {
    /// A message's text (`MessagePosted.text`, `MessageEdited.text`), under the key of its
    /// version.
    Text,
    /// A shared file's name (`FileShared.file.name`, and the attachment's in `MessagePosted`),
    /// under the file's key (its id): deleting the file or its message erases it.
    FileName(Uuid),
}

impl SealedField {
    /// How the log names it: `text`, `file_name:<file_id>`.
    pub fn label(self) -> String {
        match self {
            SealedField::Text => "text".into(),
            SealedField::FileName(file_id) => format!("file_name:{file_id}"),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(':') {
            None if s == "text" => Some(SealedField::Text),
            Some(("file_name", id)) => id.parse().ok().map(SealedField::FileName),
            _ => None,
        }
    }
}

/// One sensitive field of an event as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBox {
    /// The data key it is sealed under (in the event's workspace).
    pub key_id: Uuid,
    pub field: SealedField,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key is not the one it was sealed under, or the bytes were altered: never a
    /// destroyed key (that is a missing key, reported as redacted, not as an error).
    #[error("the sealed value does not open with its key: altered bytes or the wrong key")]
    Forged,
    /// The unwrapped bytes are not a key (a wrapped key of the wrong length).
    #[error("a wrapped key holds {0} bytes, not {KEY_LEN}")]
    NotAKey(usize),
}

/// Encrypts `plaintext` under `key`, bound to `context` (authenticated, not secret): the
/// random nonce followed by the ciphertext and its tag.
pub fn seal(key: &SecretKey, context: &[u8], plaintext: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut nonce = vec![0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ciphertext = key
        .cipher()
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: context })
        .expect("XChaCha20-Poly1305 encrypts any length a message can have");
    (nonce, ciphertext)
}

/// Decrypts what [`seal`] made, if `key` and `context` are the ones it was sealed with.
pub fn open(key: &SecretKey, context: &[u8], nonce: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, SealError> {
    if nonce.len() != NONCE_LEN {
        return Err(SealError::Forged);
    }
    key.cipher()
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context })
        .map_err(|_| SealError::Forged)
}

/// Wraps `key` under `wrapping` for storage: nonce, then the sealed key.
pub fn wrap_key(wrapping: &SecretKey, context: &[u8], key: &SecretKey) -> Vec<u8> {
    let (mut out, ciphertext) = seal(wrapping, context, &key.0);
    out.extend_from_slice(&ciphertext);
    out
}

/// Unwraps what [`wrap_key`] made.
pub fn unwrap_key(wrapping: &SecretKey, context: &[u8], wrapped: &[u8]) -> Result<SecretKey, SealError> {
    if wrapped.len() < NONCE_LEN {
        return Err(SealError::Forged);
    }
    let (nonce, ciphertext) = wrapped.split_at(NONCE_LEN);
    let bytes = open(wrapping, context, nonce, ciphertext)?;
    SecretKey::from_slice(&bytes).ok_or(SealError::NotAKey(bytes.len()))
}

fn context(label: &str, ids: &[&Uuid], field: Option<SealedField>) -> Vec<u8> {
    let mut c = format!("confab/{label}/v1").into_bytes();
    for id in ids {
        c.extend_from_slice(id.as_bytes());
    }
    if let Some(field) = field {
        c.extend_from_slice(field.label().as_bytes());
    }
    c
}

/// What a box is bound to: its workspace, its data key and its field.
pub fn box_context(workspace_id: &Uuid, key_id: &Uuid, field: SealedField) -> Vec<u8> {
    context("box", &[workspace_id, key_id], Some(field))
}

/// What a sealed field of a command is bound to: its workspace, its command (whose transit key
/// it is under) and its field; never interchangeable with an event's box.
pub fn command_box_context(workspace_id: &Uuid, command_id: &Uuid, field: SealedField) -> Vec<u8> {
    context("command-box", &[workspace_id, command_id], Some(field))
}

/// What a wrapped data key is bound to.
pub fn data_key_context(workspace_id: &Uuid, key_id: &Uuid) -> Vec<u8> {
    context("data-key", &[workspace_id, key_id], None)
}

/// What a wrapped workspace key is bound to.
pub fn workspace_key_context(workspace_id: &Uuid) -> Vec<u8> {
    context("workspace-key", &[workspace_id], None)
}

/// The root of the hierarchy: wraps and unwraps workspace keys. [`LocalMasterKey`] keeps the
/// master key in a file; a KMS implements this with its encrypt and decrypt calls (the master
/// key then never leaves it), see `docs/operators.md`.
#[async_trait]
pub trait KeyWrapper: Send + Sync {
    async fn wrap(&self, context: &[u8], key: &SecretKey) -> Result<Vec<u8>, SealError>;
    async fn unwrap(&self, context: &[u8], wrapped: &[u8]) -> Result<SecretKey, SealError>;
}

/// A master key held by this process, derived from a secret file's text.
pub struct LocalMasterKey(SecretKey);

impl LocalMasterKey {
    pub fn from_secret(secret: &str) -> Self {
        Self(SecretKey::derive(secret, "confab master key v1"))
    }
}

#[async_trait]
impl KeyWrapper for LocalMasterKey {
    async fn wrap(&self, context: &[u8], key: &SecretKey) -> Result<Vec<u8>, SealError> {
        Ok(wrap_key(&self.0, context, key))
    }
    async fn unwrap(&self, context: &[u8], wrapped: &[u8]) -> Result<SecretKey, SealError> {
        unwrap_key(&self.0, context, wrapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_opens_with_its_key_and_context_only() {
        let (key, other) = (SecretKey::generate(), SecretKey::generate());
        let (ws, id) = (Uuid::new_v4(), Uuid::new_v4());
        let ctx = box_context(&ws, &id, SealedField::Text);
        let (nonce, ct) = seal(&key, &ctx, b"the quarterly numbers");
        assert!(!ct.windows(9).any(|w| w == b"quarterly"), "the text is not in the ciphertext");
        assert_eq!(open(&key, &ctx, &nonce, &ct).unwrap(), b"the quarterly numbers");
        assert_eq!(open(&other, &ctx, &nonce, &ct), Err(SealError::Forged));
        // moved to another message or workspace, it does not open
        assert_eq!(
            open(&key, &box_context(&ws, &Uuid::new_v4(), SealedField::Text), &nonce, &ct),
            Err(SealError::Forged)
        );
        assert_eq!(
            open(&key, &box_context(&Uuid::new_v4(), &id, SealedField::Text), &nonce, &ct),
            Err(SealError::Forged)
        );
        let mut altered = ct.clone();
        altered[0] ^= 1;
        assert_eq!(open(&key, &ctx, &nonce, &altered), Err(SealError::Forged));
        assert_eq!(open(&key, &ctx, &nonce[..8], &ct), Err(SealError::Forged));
    }

    #[test]
    fn fields_are_named_in_the_log_and_parsed_back() {
        let file = Uuid::new_v4();
        for field in [SealedField::Text, SealedField::FileName(file)] {
            assert_eq!(SealedField::parse(&field.label()), Some(field));
        }
        assert_eq!(SealedField::FileName(file).label(), format!("file_name:{file}"));
        for bad in ["", "Text", "file_name", "file_name:nope", "text:1"] {
            assert_eq!(SealedField::parse(bad), None, "{bad}");
        }
        // a file's name sealed for one file does not open as another's
        let key = SecretKey::generate();
        let ws = Uuid::new_v4();
        let (n, c) = seal(&key, &box_context(&ws, &file, SealedField::FileName(file)), b"plan.pdf");
        let other = SealedField::FileName(Uuid::new_v4());
        assert_eq!(open(&key, &box_context(&ws, &file, other), &n, &c), Err(SealError::Forged));
    }

    #[test]
    fn two_seals_of_the_same_text_differ() {
        let key = SecretKey::generate();
        let (n1, c1) = seal(&key, b"c", b"same");
        let (n2, c2) = seal(&key, b"c", b"same");
        assert_ne!((n1, c1), (n2, c2));
    }

    #[tokio::test]
    async fn a_wrapped_key_unwraps_under_the_same_master_and_context_only() {
        let master = LocalMasterKey::from_secret("a master secret of at least thirty-two bytes");
        let ws = Uuid::new_v4();
        let key = SecretKey::generate();
        let wrapped = master.wrap(&workspace_key_context(&ws), &key).await.unwrap();
        assert_eq!(wrapped.len(), NONCE_LEN + KEY_LEN + TAG_LEN);
        assert_eq!(master.unwrap(&workspace_key_context(&ws), &wrapped).await.unwrap(), key);
        assert!(master.unwrap(&workspace_key_context(&Uuid::new_v4()), &wrapped).await.is_err());
        let other = LocalMasterKey::from_secret("another master secret, also thirty-two bytes");
        assert_eq!(other.unwrap(&workspace_key_context(&ws), &wrapped).await, Err(SealError::Forged));
        assert!(format!("{key:?}").contains(".."), "no key bytes in debug output");
    }
}
