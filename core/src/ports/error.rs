//! The one error every port returns. Its [`PortErrorKind`] tells the caller what to do next:
//! retry (a server restarting, a timeout, a full disk), give up on this one item (it does not
//! exist, it clashes, it is malformed), or stop (bad configuration, refused credentials).
//! Adapters classify their clients' errors once, where they know them best (`kind_of` helpers in
//! each adapter); callers never parse messages.

use std::fmt;

/// What a caller can do about a failed port call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortErrorKind {
    /// The server, network or disk may recover by itself: retry with backoff.
    Transient,
    /// What was asked for does not exist.
    NotFound,
    /// The write clashes with what is stored (an id already taken, an incompatible schema).
    Conflict,
    /// The request or the record is malformed: the same call fails the same way every time.
    Invalid,
    /// The adapter cannot go on (bad configuration, refused credentials, a fenced writer):
    /// stop and report.
    Fatal,
}

impl PortErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PortErrorKind::Transient => "transient",
            PortErrorKind::NotFound => "not_found",
            PortErrorKind::Conflict => "conflict",
            PortErrorKind::Invalid => "invalid",
            PortErrorKind::Fatal => "fatal",
        }
    }
}

impl fmt::Display for PortErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call to the outside world. Its message is for logs and operators, never for
/// clients (the gateway maps kinds to typed client errors).
#[derive(Debug)]
pub struct PortError {
    kind: PortErrorKind,
    message: String,
}

pub type PortResult<T> = Result<T, PortError>;

impl PortError {
    pub fn new(kind: PortErrorKind, message: impl fmt::Display) -> Self {
        Self { kind, message: message.to_string() }
    }

    pub fn transient(message: impl fmt::Display) -> Self {
        Self::new(PortErrorKind::Transient, message)
    }

    pub fn not_found(message: impl fmt::Display) -> Self {
        Self::new(PortErrorKind::NotFound, message)
    }

    pub fn conflict(message: impl fmt::Display) -> Self {
        Self::new(PortErrorKind::Conflict, message)
    }

    pub fn invalid(message: impl fmt::Display) -> Self {
        Self::new(PortErrorKind::Invalid, message)
    }

    pub fn fatal(message: impl fmt::Display) -> Self {
        Self::new(PortErrorKind::Fatal, message)
    }

    pub fn kind(&self) -> PortErrorKind {
        self.kind
    }

    /// Whether the same call may succeed later (retry with backoff).
    pub fn is_transient(&self) -> bool {
        self.kind == PortErrorKind::Transient
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with what was being done in front: `"<context>: <message>"`.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Self { kind: self.kind, message: format!("{context}: {}", self.message) }
    }
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PortError {}

/// A task that panicked or was cancelled (`spawn_blocking` around a blocking client call): the
/// call may be tried again.
impl From<tokio::task::JoinError> for PortError {
    fn from(e: tokio::task::JoinError) -> Self {
        PortError::transient(format!("background task failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_survives_context_and_only_transient_errors_are_retryable() {
        let e = PortError::transient("broker down").context("reading commands");
        assert_eq!(e.kind(), PortErrorKind::Transient);
        assert!(e.is_transient());
        assert_eq!(e.to_string(), "reading commands: broker down");
        for e in [PortError::not_found("x"), PortError::conflict("x"), PortError::invalid("x"), PortError::fatal("x")] {
            assert!(!e.is_transient(), "{:?}", e.kind());
        }
    }
}
