//! What a Redis client error means for the caller: a connection that dropped, was refused or
//! timed out, and a server that is loading, busy or read-only (a replica during failover) are
//! transient; refused credentials are fatal; a reply of an unexpected type is invalid.

use confab_core::ports::{PortError, PortErrorKind};
use redis::{ErrorKind, RedisError, ServerErrorKind};

pub(crate) fn kind_of(e: &RedisError) -> PortErrorKind {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        return PortErrorKind::Transient;
    }
    match e.kind() {
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig => PortErrorKind::Fatal,
        ErrorKind::UnexpectedReturnType | ErrorKind::Parse => PortErrorKind::Invalid,
        ErrorKind::Server(ServerErrorKind::NoScript) => PortErrorKind::Transient,
        ErrorKind::Server(ServerErrorKind::ResponseError) => PortErrorKind::Invalid,
        _ => PortErrorKind::Transient,
    }
}

/// A Redis error as a port error.
pub(crate) fn port(e: RedisError) -> PortError {
    PortError::new(kind_of(&e), format!("redis: {e}"))
}

/// A connection manager of `client` (it reconnects by itself after a failure).
pub(crate) async fn connection(client: &redis::Client) -> Result<redis::aio::ConnectionManager, PortError> {
    redis::aio::ConnectionManager::new(client.clone()).await.map_err(port)
}
