//! What a Cassandra driver error means for the caller: an unreachable, overloaded, booting or
//! slow cluster is transient (retry); a statement the server refuses as invalid, or rows of an
//! unexpected shape, are invalid; refused credentials, a missing keyspace and bad
//! configuration are fatal.

use confab_core::ports::{PortError, PortErrorKind};
use scylla::errors::{DbError, ExecutionError, NewSessionError, PrepareError, RequestAttemptError, UseKeyspaceError};

/// How a driver error is classified.
pub(crate) trait Classify: std::fmt::Display {
    fn kind(&self) -> PortErrorKind;
}

fn kind_of_db(e: &DbError) -> PortErrorKind {
    match e {
        DbError::SyntaxError | DbError::Invalid | DbError::FunctionFailure { .. } => PortErrorKind::Invalid,
        DbError::AlreadyExists { .. } => PortErrorKind::Conflict,
        DbError::AuthenticationError | DbError::Unauthorized | DbError::ConfigError => PortErrorKind::Fatal,
        _ => PortErrorKind::Transient,
    }
}

fn kind_of_attempt(e: &RequestAttemptError) -> PortErrorKind {
    match e {
        RequestAttemptError::DbError(db, _) => kind_of_db(db),
        RequestAttemptError::SerializationError(_) | RequestAttemptError::CqlRequestSerialization(_) => {
            PortErrorKind::Invalid
        }
        _ => PortErrorKind::Transient,
    }
}

impl Classify for ExecutionError {
    fn kind(&self) -> PortErrorKind {
        match self {
            ExecutionError::BadQuery(_) => PortErrorKind::Invalid,
            ExecutionError::PrepareError(p) => p.kind(),
            ExecutionError::LastAttemptError(a) => kind_of_attempt(a),
            ExecutionError::UseKeyspaceError(u) => kind_of_use_keyspace(u),
            _ => PortErrorKind::Transient,
        }
    }
}

impl Classify for PrepareError {
    fn kind(&self) -> PortErrorKind {
        match self {
            PrepareError::AllAttemptsFailed { first_attempt } => kind_of_attempt(first_attempt),
            _ => PortErrorKind::Transient,
        }
    }
}

fn kind_of_use_keyspace(e: &UseKeyspaceError) -> PortErrorKind {
    match e {
        UseKeyspaceError::BadKeyspaceName(_) => PortErrorKind::Fatal,
        UseKeyspaceError::RequestError(a) => kind_of_attempt(a),
        _ => PortErrorKind::Transient,
    }
}

impl Classify for NewSessionError {
    fn kind(&self) -> PortErrorKind {
        match self {
            NewSessionError::EmptyKnownNodesList | NewSessionError::IllegalConfig(_) => PortErrorKind::Fatal,
            NewSessionError::UseKeyspaceError(u) => kind_of_use_keyspace(u),
            _ if refused_at_setup(&self.to_string()) => PortErrorKind::Fatal,
            _ => PortErrorKind::Transient,
        }
    }
}

/// Credentials the cluster refused, or a node certificate this client does not trust: trying
/// again cannot help. The driver nests these inside its connection-pool errors (with no typed
/// path out), so the error's text is read for the driver's and rustls's own messages.
fn refused_at_setup(text: &str) -> bool {
    const REFUSALS: [&str; 4] = [
        "Authentication failed - bad credentials",
        "Authentication is required",
        "invalid peer certificate",
        "certificate verify failed",
    ];
    REFUSALS.iter().any(|refusal| text.contains(refusal))
}

/// Rows that do not have the shape the adapter expects: the schema is not the one `confab setup`
/// creates.
macro_rules! invalid_shape {
    ($($ty:ty),* $(,)?) => {
        $(impl Classify for $ty {
            fn kind(&self) -> PortErrorKind {
                PortErrorKind::Invalid
            }
        })*
    };
}

invalid_shape!(
    scylla::response::query_result::IntoRowsResultError,
    scylla::response::query_result::RowsError,
    scylla::response::query_result::MaybeFirstRowError,
    scylla::response::query_result::FirstRowError,
    scylla::deserialize::DeserializationError,
    scylla::errors::PagerExecutionError,
    scylla::errors::NextRowError,
    scylla::errors::TypeCheckError,
);

/// Nodes that did not agree on the schema in time: they may, later.
impl Classify for scylla::errors::SchemaAgreementError {
    fn kind(&self) -> PortErrorKind {
        PortErrorKind::Transient
    }
}

/// `result.or_port("what was being done")?` for driver results.
pub(crate) trait CqlResultExt<T> {
    fn or_port(self, what: &str) -> Result<T, PortError>;
}

impl<T, E: Classify> CqlResultExt<T> for Result<T, E> {
    fn or_port(self, what: &str) -> Result<T, PortError> {
        self.map_err(|e| PortError::new(e.kind(), format!("cassandra, {what}: {e}")))
    }
}
