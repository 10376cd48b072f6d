//! The file-bytes port: where shared files' bytes live, and the links clients move them with.
//! An S3-compatible bucket (`confab-distributed`: links are SigV4 pre-signed, the bucket checks
//! them) or a local directory (`confab-embedded`: links point at the gateway's `/blobs/`, which
//! checks them through [`GatewayServedBlobs`] before it reads or writes a byte).
//!
//! Keys are `<workspace_id>/<file_id>` (`crate::files::object_key`): a link is scoped to one
//! object, and a link of workspace A can never name a file of workspace B. Uploads land under
//! `incoming/<workspace_id>/<file_id>` (`crate::files::incoming_key`) and completion
//! [promotes](BlobStore::promote) them; what stays under `incoming/` past its grace was never
//! completed and is deleted.

use async_trait::async_trait;
use futures::stream::BoxStream;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use super::PortResult;

/// What a client needs to upload: `PUT url` with exactly these headers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UploadUrl {
    pub url: String,
    pub method: &'static str,
    pub headers: BTreeMap<String, String>,
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Creates the bucket if it does not exist (nothing to do for a directory).
    async fn ensure_bucket(&self) -> PortResult<()>;
    /// A link that lets its holder upload `content_type` to `key` until `ttl` has passed.
    /// `gateway_base` is the gateway's own URL (for links the gateway serves).
    async fn upload_url(
        &self,
        key: &str,
        size: u64,
        content_type: &str,
        ttl: Duration,
        gateway_base: &str,
    ) -> PortResult<UploadUrl>;
    /// A link that lets its holder read `key` until `ttl` has passed, served as `content_type`
    /// and offered under `name` (inline for types clients show, as a download otherwise).
    async fn download_url(
        &self,
        key: &str,
        name: &str,
        content_type: &str,
        ttl: Duration,
        gateway_base: &str,
    ) -> PortResult<String>;
    /// The object's size, or `None` if nothing was uploaded.
    async fn size(&self, key: &str) -> PortResult<Option<u64>>;
    /// Deletes the object; deleting a missing one is fine (projections replay).
    async fn delete(&self, key: &str) -> PortResult<()>;
    /// Moves an object to another key (an upload to its shared place); the source is gone after.
    async fn promote(&self, from: &str, to: &str) -> PortResult<()>;
    /// Up to `max` keys under `prefix` last written before `before` (oldest first not promised).
    async fn written_before(&self, prefix: &str, before: SystemTime, max: usize) -> PortResult<Vec<String>>;
    /// The gateway-served side of a store whose links point at the gateway (`/blobs/`); `None`
    /// when clients talk to the store directly.
    fn gateway_served(&self) -> Option<&dyn GatewayServedBlobs> {
        None
    }
}

/// What a verified gateway link allows.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkGrant {
    Put { size: u64, content_type: String },
    Get { name: String, content_type: String },
}

/// Why a gateway link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link has expired")]
    Expired,
    #[error("the link's signature does not match")]
    BadSignature,
}

/// The bytes behind links the gateway serves itself.
#[async_trait]
pub trait GatewayServedBlobs: Send + Sync {
    /// Checks a link's query (`op`, `exp`, `size`, `ct`, `name`, `sig`) for `key`.
    fn verify(&self, key: &str, query: &HashMap<String, String>, now_secs: i64) -> Result<LinkGrant, LinkError>;
    /// Stores an upload's bytes as they arrive, never holding more than a chunk in memory. The
    /// object is written only when the body is exactly `size` bytes; reading stops one byte
    /// past it. Returns how many bytes were read (`size` when stored).
    async fn put_stream(&self, key: &str, size: u64, body: ByteStream) -> PortResult<u64>;
    /// An object's length and its bytes as a stream, `None` if missing.
    async fn open(&self, key: &str) -> PortResult<Option<(u64, ByteStream)>>;
}

/// Bytes as they arrive or leave, chunk by chunk.
pub type ByteStream = BoxStream<'static, std::io::Result<bytes::Bytes>>;
