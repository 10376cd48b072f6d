//! The object store behind file sharing, and the pre-signed URLs clients upload and download
//! with. One interface, two backends (both from the `object_store` crate):
//!
//! - **S3** (distributed mode; MinIO in tests): URLs are SigV4 pre-signed by the S3 client;
//!   an upload URL binds the declared `content-type` (the signer cannot bind `content-length`,
//!   so the size is checked when the upload is completed, and a wrong one is discarded), a
//!   download URL the response's type and file name. The object store itself refuses expired
//!   or tampered URLs.
//! - **Local directory** (embedded mode): URLs point at the gateway (`/blobs/<key>`), carry an
//!   expiry and an HMAC over everything they allow, and the gateway checks them before it
//!   reads or writes a byte ([`BlobStore::verify_local`]).
//!
//! Keys are `<workspace_id>/<file_id>` ([`crate::files::object_key`]): a URL is scoped to one
//! object, and a URL of workspace A can never name a file of workspace B.

use base64::Engine;
use hmac::{Hmac, Mac};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("object store configuration: {0}")]
    Config(String),
    #[error("the link has expired")]
    Expired,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("creating bucket {bucket}: {message}")]
    Bucket { bucket: String, message: String },
}

/// Where the S3 backend is and who we are to it.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// `http://127.0.0.1:9000` for MinIO; empty for AWS itself.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

enum Signing {
    S3 {
        s3: Arc<AmazonS3>,
        settings: S3Settings,
    },
    /// The gateway signs and serves URLs itself, with this key.
    Local {
        key: Vec<u8>,
    },
}

pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    signing: Signing,
}

/// What a client needs to upload: `PUT url` with exactly these headers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UploadUrl {
    pub url: String,
    pub method: &'static str,
    pub headers: std::collections::BTreeMap<String, String>,
}

/// What a verified local URL allows.
#[derive(Debug, Clone, PartialEq)]
pub enum LocalGrant {
    Put { size: u64, content_type: String },
    Get { name: String, content_type: String },
}

type HmacSha256 = Hmac<Sha256>;

impl BlobStore {
    /// An S3-compatible bucket (created by [`BlobStore::ensure_bucket`]).
    pub fn s3(settings: S3Settings) -> Result<Self, BlobError> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key)
            .with_secret_access_key(&settings.secret_key);
        if !settings.endpoint.is_empty() {
            b = b
                .with_endpoint(&settings.endpoint)
                .with_allow_http(settings.endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let s3 = Arc::new(b.build().map_err(|e| BlobError::Config(e.to_string()))?);
        Ok(Self { store: s3.clone(), signing: Signing::S3 { s3, settings } })
    }

    /// A local directory (created if missing); URLs are signed with a key derived from `secret`.
    pub fn local(dir: &std::path::Path, secret: &str) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir).map_err(|e| BlobError::Config(format!("{}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
        mac.update(b"confab blob urls v1");
        Ok(Self { store: Arc::new(fs), signing: Signing::Local { key: mac.finalize().into_bytes().to_vec() } })
    }

    /// Whether URLs point at the gateway (which must then serve `/blobs/`).
    pub fn is_local(&self) -> bool {
        matches!(self.signing, Signing::Local { .. })
    }

    /// Creates the bucket if it does not exist (S3); nothing to do for a directory.
    pub async fn ensure_bucket(&self) -> Result<(), BlobError> {
        let Signing::S3 { s3, settings } = &self.signing else { return Ok(()) };
        // object_store has no bucket API: a pre-signed `PUT /<bucket>/` is CreateBucket
        let url = s3.signed_url(http::Method::PUT, &Path::default(), Duration::from_secs(60)).await?;
        let bucket = settings.bucket.clone();
        let failed = |message: String| BlobError::Bucket { bucket: bucket.clone(), message };
        let mut body = String::new();
        if settings.region != "us-east-1" {
            body = format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                settings.region
            );
        }
        let r = reqwest::Client::new().put(url.as_str()).body(body).send().await.map_err(|e| failed(e.to_string()))?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if status.is_success() || text.contains("BucketAlreadyOwnedByYou") {
            return Ok(());
        }
        Err(failed(format!("HTTP {status}: {}", text.chars().take(300).collect::<String>())))
    }

    /// A URL that lets its holder upload `content_type` to `key` until `ttl` has passed: exactly
    /// `size` bytes through the gateway (local backend), any size to S3 (checked at completion).
    /// `base` is the gateway's own URL (local backend only).
    pub async fn upload_url(
        &self,
        key: &str,
        size: u64,
        content_type: &str,
        ttl: Duration,
        base: &str,
    ) -> Result<UploadUrl, BlobError> {
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("content-type".to_string(), content_type.to_string());
        let url = match &self.signing {
            Signing::S3 { s3, .. } => {
                let opts =
                    SignedUrlOptions::new().with_signed_header(http::header::CONTENT_TYPE, header(content_type)?);
                s3.signed_url_opts(http::Method::PUT, &Path::from(key), ttl, &opts).await?.to_string()
            }
            Signing::Local { .. } => {
                let exp = expiry(ttl);
                let sig = self.local_sig("put", key, exp, &size.to_string(), content_type, "");
                format!("{base}/blobs/{key}?op=put&exp={exp}&size={size}&ct={}&sig={sig}", enc(content_type))
            }
        };
        Ok(UploadUrl { url, method: "PUT", headers })
    }

    /// A URL that lets its holder read `key` until `ttl` has passed, served as `content_type`
    /// and offered under `name` (inline for types clients show, as a download otherwise).
    pub async fn download_url(
        &self,
        key: &str,
        name: &str,
        content_type: &str,
        ttl: Duration,
        base: &str,
    ) -> Result<String, BlobError> {
        match &self.signing {
            Signing::S3 { s3, .. } => {
                let opts = SignedUrlOptions::new().with_query([
                    ("response-content-type", content_type.to_string()),
                    ("response-content-disposition", disposition(name, content_type)),
                ]);
                Ok(s3.signed_url_opts(http::Method::GET, &Path::from(key), ttl, &opts).await?.to_string())
            }
            Signing::Local { .. } => {
                let exp = expiry(ttl);
                let sig = self.local_sig("get", key, exp, "", content_type, name);
                Ok(format!("{base}/blobs/{key}?op=get&exp={exp}&ct={}&name={}&sig={sig}", enc(content_type), enc(name)))
            }
        }
    }

    /// Checks a local URL's query (`op`, `exp`, `size`, `ct`, `name`, `sig`) for `key`.
    pub fn verify_local(
        &self,
        key: &str,
        query: &std::collections::HashMap<String, String>,
        now_secs: i64,
    ) -> Result<LocalGrant, BlobError> {
        let Signing::Local { .. } = &self.signing else { return Err(BlobError::BadSignature) };
        let get = |k: &str| query.get(k).cloned().unwrap_or_default();
        let (op, size, ct, name) = (get("op"), get("size"), get("ct"), get("name"));
        let exp: i64 = get("exp").parse().map_err(|_| BlobError::BadSignature)?;
        let sig =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(get("sig")).map_err(|_| BlobError::BadSignature)?;
        // verify_slice compares in constant time
        self.local_mac(&op, key, exp, &size, &ct, &name)
            .ok_or(BlobError::BadSignature)?
            .verify_slice(&sig)
            .map_err(|_| BlobError::BadSignature)?;
        if now_secs > exp {
            return Err(BlobError::Expired);
        }
        match op.as_str() {
            "put" => Ok(LocalGrant::Put { size: size.parse().map_err(|_| BlobError::BadSignature)?, content_type: ct }),
            "get" => Ok(LocalGrant::Get { name, content_type: ct }),
            _ => Err(BlobError::BadSignature),
        }
    }

    /// The object's size, or `None` if nothing was uploaded.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        match self.store.head(&Path::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the object; deleting a missing one is fine (projections replay).
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores bytes (the local backend's upload endpoint).
    pub async fn put(&self, key: &str, bytes: bytes::Bytes) -> Result<(), BlobError> {
        self.store.put(&Path::from(key), PutPayload::from_bytes(bytes)).await?;
        Ok(())
    }

    /// Reads an object whole (the local backend's download endpoint), `None` if missing.
    pub async fn get(&self, key: &str) -> Result<Option<bytes::Bytes>, BlobError> {
        match self.store.get(&Path::from(key)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn local_mac(&self, op: &str, key: &str, exp: i64, size: &str, ct: &str, name: &str) -> Option<HmacSha256> {
        let Signing::Local { key: secret } = &self.signing else { return None };
        let mut mac = HmacSha256::new_from_slice(secret).expect("any key length");
        // length-prefixed fields: no two different grants share a signed string
        for part in [op, key, &exp.to_string(), size, ct, name] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        Some(mac)
    }

    fn local_sig(&self, op: &str, key: &str, exp: i64, size: &str, ct: &str, name: &str) -> String {
        let mac = self
            .local_mac(op, key, exp, size, ct, name)
            .map(|m| m.finalize().into_bytes().to_vec())
            .unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
    }
}

/// `Content-Disposition` for a download: shown inline when clients can show the type safely,
/// an attachment otherwise; the name as RFC 6266 `filename*`.
pub fn disposition(name: &str, content_type: &str) -> String {
    let kind = if crate::files::is_inline(content_type) { "inline" } else { "attachment" };
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._- ".contains(c) { c } else { '_' }).collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}", enc(name))
}

fn header(v: &str) -> Result<http::HeaderValue, BlobError> {
    http::HeaderValue::from_str(v).map_err(|_| BlobError::Config(format!("{v:?} is not a valid header value")))
}

fn expiry(ttl: Duration) -> i64 {
    chrono::Utc::now().timestamp() + ttl.as_secs().max(1) as i64
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn query(url: &str) -> HashMap<String, String> {
        let u = url::Url::parse(url).unwrap();
        u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    #[tokio::test]
    async fn local_urls_grant_exactly_what_they_say_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::local(dir.path(), "secret").unwrap();
        let now = chrono::Utc::now().timestamp();
        let up = blobs.upload_url("w/f", 5, "text/plain", Duration::from_secs(60), "http://h").await.unwrap();
        let q = query(&up.url);
        assert_eq!(
            blobs.verify_local("w/f", &q, now).unwrap(),
            LocalGrant::Put { size: 5, content_type: "text/plain".into() }
        );
        // another object, a changed size, type or expiry, or a foreign key: refused
        assert!(matches!(blobs.verify_local("w/g", &q, now), Err(BlobError::BadSignature)));
        for (k, v) in [("size", "6"), ("ct", "text/html"), ("exp", &(now + 10_000).to_string()), ("op", "get")] {
            let mut t = q.clone();
            t.insert(k.into(), v.into());
            assert!(matches!(blobs.verify_local("w/f", &t, now), Err(BlobError::BadSignature)), "tampered {k}");
        }
        assert!(matches!(blobs.verify_local("w/f", &q, now + 61), Err(BlobError::Expired)));
        let other = BlobStore::local(dir.path(), "another secret").unwrap();
        assert!(matches!(other.verify_local("w/f", &q, now), Err(BlobError::BadSignature)));
        let down =
            blobs.download_url("w/f", "a b/ü.txt", "text/plain", Duration::from_secs(60), "http://h").await.unwrap();
        assert_eq!(
            blobs.verify_local("w/f", &query(&down), now).unwrap(),
            LocalGrant::Get { name: "a b/ü.txt".into(), content_type: "text/plain".into() }
        );
    }

    #[tokio::test]
    async fn local_objects_round_trip_and_delete_twice() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::local(dir.path(), "secret").unwrap();
        assert_eq!(blobs.size("w/f").await.unwrap(), None);
        blobs.put("w/f", bytes::Bytes::from_static(b"hello")).await.unwrap();
        assert_eq!(blobs.size("w/f").await.unwrap(), Some(5));
        assert_eq!(blobs.get("w/f").await.unwrap().unwrap(), bytes::Bytes::from_static(b"hello"));
        blobs.delete("w/f").await.unwrap();
        blobs.delete("w/f").await.unwrap();
        assert_eq!(blobs.get("w/f").await.unwrap(), None);
    }

    #[test]
    fn dispositions_quote_names_safely() {
        assert_eq!(disposition("a\"b.png", "image/png"), "inline; filename=\"a_b.png\"; filename*=UTF-8''a%22b.png");
        assert!(disposition("x.html", "text/html").starts_with("attachment;"));
    }
}
