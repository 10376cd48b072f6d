//! What a failure of the embedded stores means for the caller: an I/O error (a full disk, a
//! failing write) is transient and is retried; a database that fjall declares poisoned, locked
//! or unrecoverable is fatal; bytes that do not decode as what this build wrote are invalid.

use confab_core::ports::{PortError, PortErrorKind};

/// Anything the embedded adapters fail with, as a port error of the right kind.
pub(crate) trait IntoPortError: std::fmt::Display {
    fn kind(&self) -> PortErrorKind;
}

fn has_io_source(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<std::io::Error>() {
            return true;
        }
        cur = e.source();
    }
    false
}

impl IntoPortError for fjall::Error {
    fn kind(&self) -> PortErrorKind {
        match self {
            fjall::Error::Io(_) => PortErrorKind::Transient,
            fjall::Error::Storage(s) if has_io_source(s) => PortErrorKind::Transient,
            fjall::Error::KeyspaceDeleted => PortErrorKind::NotFound,
            _ => PortErrorKind::Fatal,
        }
    }
}

impl IntoPortError for std::io::Error {
    fn kind(&self) -> PortErrorKind {
        PortErrorKind::Transient
    }
}

/// Stored bytes that are not what this build wrote.
macro_rules! corrupt {
    ($($ty:ty),* $(,)?) => {
        $(impl IntoPortError for $ty {
            fn kind(&self) -> PortErrorKind {
                PortErrorKind::Invalid
            }
        })*
    };
}

corrupt!(serde_json::Error, uuid::Error, std::array::TryFromSliceError, confab_core::avro::AvroError);

impl IntoPortError for PortError {
    fn kind(&self) -> PortErrorKind {
        PortError::kind(self)
    }
}

/// `.map_err(port)` for anything the embedded adapters fail with.
pub(crate) fn port<E: IntoPortError>(e: E) -> PortError {
    PortError::new(e.kind(), format!("embedded storage: {e}"))
}

/// Bytes that are not what this build wrote.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> PortError {
    PortError::invalid(format!("embedded storage: corrupt {what}"))
}

/// Makes every write so far durable (journal fsynced) before the caller answers: for the
/// directory and push registrations, which an API has acknowledged once this returns.
pub(crate) async fn persist(db: &fjall::Database) -> confab_core::ports::PortResult<()> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || db.persist(fjall::PersistMode::SyncAll)).await?.map_err(port)
}
