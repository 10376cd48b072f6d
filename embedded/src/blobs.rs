//! Shared files' bytes in a local directory (`<data_dir>/files`), behind the blob port. Links
//! point at the gateway (`/blobs/<key>`) and carry an expiry and an HMAC over everything they
//! allow; the gateway checks them ([`GatewayServedBlobs::verify`]) before it reads or writes a
//! byte. Writes go to a temporary file that is synced and then renamed, so a reader never sees
//! half an upload.

use async_trait::async_trait;
use base64::Engine;
use confab_core::files::percent_encode;
use confab_core::ports::{BlobStore, GatewayServedBlobs, LinkError, LinkGrant, PortError, PortResult, UploadUrl};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

type HmacSha256 = Hmac<Sha256>;

/// A directory of objects named by `<workspace_id>/<file_id>` keys.
pub struct LocalBlobs {
    dir: PathBuf,
    /// Signs links; derived from the token secret.
    link_key: Vec<u8>,
}

impl LocalBlobs {
    /// Opens (creates) `dir`; links are signed with a key derived from `secret`.
    pub fn open(dir: &Path, secret: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
        mac.update(b"confab blob urls v1");
        Ok(Self { dir: dir.to_path_buf(), link_key: mac.finalize().into_bytes().to_vec() })
    }

    /// The file of `key`; keys are `/`-separated names of `[A-Za-z0-9._-]`, never `.` or `..`.
    fn path_of(&self, key: &str) -> PortResult<PathBuf> {
        let valid_part = |p: &str| {
            !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        };
        if !key.split('/').all(valid_part) {
            return Err(PortError::invalid(format!("`{key}` is not a valid object key")));
        }
        Ok(self.dir.join(key))
    }

    fn mac(&self, op: &str, key: &str, exp: i64, size: &str, ct: &str, name: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.link_key).expect("any key length");
        // length-prefixed fields: no two different grants share a signed string
        for part in [op, key, &exp.to_string(), size, ct, name] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    fn signature(&self, op: &str, key: &str, exp: i64, size: &str, ct: &str, name: &str) -> String {
        let mac = self.mac(op, key, exp, size, ct, name).finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
    }
}

fn io_error(what: &str, key: &str, e: std::io::Error) -> PortError {
    PortError::transient(format!("{what} {key}: {e}"))
}

fn expiry(ttl: Duration) -> i64 {
    chrono::Utc::now().timestamp() + ttl.as_secs().max(1) as i64
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("object paths have a parent");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[async_trait]
impl BlobStore for LocalBlobs {
    async fn ensure_bucket(&self) -> PortResult<()> {
        Ok(())
    }

    async fn upload_url(
        &self,
        key: &str,
        size: u64,
        content_type: &str,
        ttl: Duration,
        gateway_base: &str,
    ) -> PortResult<UploadUrl> {
        self.path_of(key)?;
        let exp = expiry(ttl);
        let sig = self.signature("put", key, exp, &size.to_string(), content_type, "");
        let ct = percent_encode(content_type);
        let url = format!("{gateway_base}/blobs/{key}?op=put&exp={exp}&size={size}&ct={ct}&sig={sig}");
        let headers = BTreeMap::from([("content-type".to_string(), content_type.to_string())]);
        Ok(UploadUrl { url, method: "PUT", headers })
    }

    async fn download_url(
        &self,
        key: &str,
        name: &str,
        content_type: &str,
        ttl: Duration,
        gateway_base: &str,
    ) -> PortResult<String> {
        self.path_of(key)?;
        let exp = expiry(ttl);
        let sig = self.signature("get", key, exp, "", content_type, name);
        let (ct, name) = (percent_encode(content_type), percent_encode(name));
        Ok(format!("{gateway_base}/blobs/{key}?op=get&exp={exp}&ct={ct}&name={name}&sig={sig}"))
    }

    async fn size(&self, key: &str) -> PortResult<Option<u64>> {
        match tokio::fs::metadata(self.path_of(key)?).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("reading the size of", key, e)),
        }
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        match tokio::fs::remove_file(self.path_of(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("deleting", key, e)),
        }
    }

    fn gateway_served(&self) -> Option<&dyn GatewayServedBlobs> {
        Some(self)
    }
}

#[async_trait]
impl GatewayServedBlobs for LocalBlobs {
    fn verify(&self, key: &str, query: &HashMap<String, String>, now_secs: i64) -> Result<LinkGrant, LinkError> {
        let get = |k: &str| query.get(k).cloned().unwrap_or_default();
        let (op, size, ct, name) = (get("op"), get("size"), get("ct"), get("name"));
        let exp: i64 = get("exp").parse().map_err(|_| LinkError::BadSignature)?;
        let sig =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(get("sig")).map_err(|_| LinkError::BadSignature)?;
        // verify_slice compares in constant time
        self.mac(&op, key, exp, &size, &ct, &name).verify_slice(&sig).map_err(|_| LinkError::BadSignature)?;
        if now_secs > exp {
            return Err(LinkError::Expired);
        }
        match op.as_str() {
            "put" => Ok(LinkGrant::Put { size: size.parse().map_err(|_| LinkError::BadSignature)?, content_type: ct }),
            "get" => Ok(LinkGrant::Get { name, content_type: ct }),
            _ => Err(LinkError::BadSignature),
        }
    }

    async fn put(&self, key: &str, bytes: bytes::Bytes) -> PortResult<()> {
        let path = self.path_of(key)?;
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await?
            .map_err(|e| io_error("writing", key, e))
    }

    async fn get(&self, key: &str) -> PortResult<Option<bytes::Bytes>> {
        match tokio::fs::read(self.path_of(key)?).await {
            Ok(b) => Ok(Some(b.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("reading", key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str) -> HashMap<String, String> {
        let u = url::Url::parse(url).unwrap();
        u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    #[tokio::test]
    async fn links_grant_exactly_what_they_say_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path(), "secret").unwrap();
        let now = chrono::Utc::now().timestamp();
        let up = blobs.upload_url("w/f", 5, "text/plain", Duration::from_secs(60), "http://h").await.unwrap();
        let q = query(&up.url);
        assert_eq!(
            blobs.verify("w/f", &q, now).unwrap(),
            LinkGrant::Put { size: 5, content_type: "text/plain".into() }
        );
        // another object, a changed size, type or expiry, or a foreign key: refused
        assert_eq!(blobs.verify("w/g", &q, now), Err(LinkError::BadSignature));
        for (k, v) in [("size", "6"), ("ct", "text/html"), ("exp", &(now + 10_000).to_string()), ("op", "get")] {
            let mut t = q.clone();
            t.insert(k.into(), v.into());
            assert_eq!(blobs.verify("w/f", &t, now), Err(LinkError::BadSignature), "tampered {k}");
        }
        assert_eq!(blobs.verify("w/f", &q, now + 61), Err(LinkError::Expired));
        let other = LocalBlobs::open(dir.path(), "another secret").unwrap();
        assert_eq!(other.verify("w/f", &q, now), Err(LinkError::BadSignature));
        let down =
            blobs.download_url("w/f", "a b/ü.txt", "text/plain", Duration::from_secs(60), "http://h").await.unwrap();
        assert_eq!(
            blobs.verify("w/f", &query(&down), now).unwrap(),
            LinkGrant::Get { name: "a b/ü.txt".into(), content_type: "text/plain".into() }
        );
    }

    #[tokio::test]
    async fn objects_round_trip_and_delete_twice() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path(), "secret").unwrap();
        assert_eq!(blobs.size("w/f").await.unwrap(), None);
        blobs.put("w/f", bytes::Bytes::from_static(b"hello")).await.unwrap();
        assert_eq!(blobs.size("w/f").await.unwrap(), Some(5));
        assert_eq!(blobs.get("w/f").await.unwrap().unwrap(), bytes::Bytes::from_static(b"hello"));
        blobs.delete("w/f").await.unwrap();
        blobs.delete("w/f").await.unwrap();
        assert_eq!(blobs.get("w/f").await.unwrap(), None);
    }

    #[tokio::test]
    async fn keys_cannot_leave_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(&dir.path().join("files"), "secret").unwrap();
        for key in ["../escape", "w/../../x", "/abs", "w//f", "w/f g", ""] {
            let e = blobs.put(key, bytes::Bytes::from_static(b"x")).await.unwrap_err();
            assert_eq!(e.kind(), confab_core::ports::PortErrorKind::Invalid, "{key}");
        }
        assert!(!dir.path().join("escape").exists());
    }
}
