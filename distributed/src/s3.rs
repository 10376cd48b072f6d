//! Shared files' bytes in an S3-compatible bucket (MinIO in tests), behind the blob port. Links
//! are SigV4 pre-signed by the S3 client: an upload link binds the declared `content-type` (the
//! signer cannot bind `content-length`, so the size is checked when the upload is completed, and
//! a wrong one is discarded), a download link the response's type and file name. The bucket
//! itself refuses expired or tampered links.

use async_trait::async_trait;
use confab_core::files::disposition;
use confab_core::ports::{BlobStore, PortError, PortErrorKind, PortResult, UploadUrl};
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Where the bucket is and who we are to it.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// `http://127.0.0.1:9000` for MinIO; empty for AWS itself.
    pub endpoint: String,
    /// Where clients reach the bucket, for the links they get; empty: `endpoint`.
    pub public_endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

pub struct S3Blobs {
    s3: AmazonS3,
    /// Signs the links clients get: SigV4 signs the host, so links for another endpoint need a
    /// client of their own (signing is local: it never connects).
    signer: AmazonS3,
    settings: S3Settings,
}

/// What a failed object store call means for the caller.
fn kind_of(e: &object_store::Error) -> PortErrorKind {
    match e {
        object_store::Error::NotFound { .. } => PortErrorKind::NotFound,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => PortErrorKind::Conflict,
        object_store::Error::InvalidPath { .. } | object_store::Error::NotSupported { .. } => PortErrorKind::Invalid,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            PortErrorKind::Fatal
        }
        _ => PortErrorKind::Transient,
    }
}

fn port_error(what: &str, e: object_store::Error) -> PortError {
    PortError::new(kind_of(&e), format!("object store, {what}: {e}"))
}

impl S3Blobs {
    /// A client for the bucket (created by [`BlobStore::ensure_bucket`]).
    pub fn new(settings: S3Settings) -> PortResult<Self> {
        let s3 = client(&settings, &settings.endpoint)?;
        let signer = match settings.public_endpoint.as_str() {
            "" => s3.clone(),
            public => client(&settings, public)?,
        };
        Ok(Self { s3, signer, settings })
    }

    /// The body of a CreateBucket request (empty in the default region).
    fn create_bucket_body(&self) -> String {
        if self.settings.region == "us-east-1" {
            return String::new();
        }
        format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
            self.settings.region
        )
    }
}

/// A client of the bucket at `endpoint` (empty: AWS's own).
fn client(settings: &S3Settings, endpoint: &str) -> PortResult<AmazonS3> {
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(&settings.bucket)
        .with_region(&settings.region)
        .with_access_key_id(&settings.access_key)
        .with_secret_access_key(&settings.secret_key);
    if !endpoint.is_empty() {
        b = b
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    b.build().map_err(|e| PortError::fatal(format!("object store configuration for {endpoint:?}: {e}")))
}

fn header(v: &str) -> PortResult<http::HeaderValue> {
    http::HeaderValue::from_str(v).map_err(|_| PortError::invalid(format!("{v:?} is not a valid header value")))
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn ensure_bucket(&self) -> PortResult<()> {
        // object_store has no bucket API: a pre-signed `PUT /<bucket>/` is CreateBucket
        let url = self
            .s3
            .signed_url(http::Method::PUT, &Path::default(), Duration::from_secs(60))
            .await
            .map_err(|e| port_error("signing CreateBucket", e))?;
        let bucket = &self.settings.bucket;
        let r = reqwest::Client::new()
            .put(url.as_str())
            .body(self.create_bucket_body())
            .send()
            .await
            .map_err(|e| PortError::transient(format!("creating bucket {bucket}: {e}")))?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if status.is_success() || text.contains("BucketAlreadyOwnedByYou") {
            return Ok(());
        }
        let kind = if status.is_server_error() { PortErrorKind::Transient } else { PortErrorKind::Fatal };
        let excerpt: String = text.chars().take(300).collect();
        Err(PortError::new(kind, format!("creating bucket {bucket}: HTTP {status}: {excerpt}")))
    }

    async fn upload_url(
        &self,
        key: &str,
        _size: u64,
        content_type: &str,
        ttl: Duration,
        _gateway_base: &str,
    ) -> PortResult<UploadUrl> {
        let opts = SignedUrlOptions::new().with_signed_header(http::header::CONTENT_TYPE, header(content_type)?);
        let url = self
            .signer
            .signed_url_opts(http::Method::PUT, &Path::from(key), ttl, &opts)
            .await
            .map_err(|e| port_error("signing an upload", e))?;
        let headers = BTreeMap::from([("content-type".to_string(), content_type.to_string())]);
        Ok(UploadUrl { url: url.to_string(), method: "PUT", headers })
    }

    async fn download_url(
        &self,
        key: &str,
        name: &str,
        content_type: &str,
        ttl: Duration,
        _gateway_base: &str,
    ) -> PortResult<String> {
        let opts = SignedUrlOptions::new().with_query([
            ("response-content-type", content_type.to_string()),
            ("response-content-disposition", disposition(name, content_type)),
        ]);
        let url = self
            .signer
            .signed_url_opts(http::Method::GET, &Path::from(key), ttl, &opts)
            .await
            .map_err(|e| port_error("signing a download", e))?;
        Ok(url.to_string())
    }

    async fn size(&self, key: &str) -> PortResult<Option<u64>> {
        match self.s3.head(&Path::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(port_error("reading an object's size", e)),
        }
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        match self.s3.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(port_error("deleting an object", e)),
        }
    }

    /// A server-side copy, then the source deleted (S3 has no rename).
    async fn promote(&self, from: &str, to: &str) -> PortResult<()> {
        self.s3.copy(&Path::from(from), &Path::from(to)).await.map_err(|e| port_error("copying an upload", e))?;
        self.delete(from).await
    }

    async fn written_before(&self, prefix: &str, before: SystemTime, max: usize) -> PortResult<Vec<String>> {
        let before: chrono::DateTime<chrono::Utc> = before.into();
        let prefix = Path::from(prefix);
        let mut listing = self.s3.list(Some(&prefix));
        let mut found = Vec::new();
        while let Some(meta) = listing.try_next().await.map_err(|e| port_error("listing objects", e))? {
            if meta.last_modified < before {
                found.push(meta.location.to_string());
                if found.len() >= max {
                    break;
                }
            }
        }
        Ok(found)
    }
}
