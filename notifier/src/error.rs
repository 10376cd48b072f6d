//! Errors of building a provider (keys, configuration) and of the message crypto.
//!
//! Sending never fails with one of these: every answer of a push service, and every
//! transport failure, is a [`crate::SendOutcome`].

/// Why a provider, a key or an encrypted message could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A private or public key that does not parse (wrong PEM, wrong curve, bad length).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A configuration value that cannot work (bad URL, missing field).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A device address this provider cannot use (wrong platform, bad subscription keys).
    #[error("invalid device address: {0}")]
    InvalidAddress(String),
    /// RFC 8291 encryption or decryption failed.
    #[error("message encryption: {0}")]
    Encryption(String),
    /// A signed token (JWT) that does not verify or does not parse.
    #[error("invalid token: {0}")]
    Jwt(String),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
}
