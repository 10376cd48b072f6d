//! Shared files' bytes in a local directory (`<data_dir>/files`), behind the blob port. Links
//! point at the gateway (`/blobs/<key>`) and carry an expiry and an HMAC over everything they
//! allow; the gateway checks them ([`GatewayServedBlobs::verify`]) before it reads or writes a
//! byte. Uploads stream to a temporary file that is synced and then renamed only when the body
//! has exactly the granted size, so a reader never sees half an upload; downloads stream from
//! the file. Neither holds more than one chunk in memory.

use async_trait::async_trait;
use base64::Engine;
use confab_core::files::percent_encode;
use confab_core::ports::{
    BlobStore, ByteStream, GatewayServedBlobs, LinkError, LinkGrant, PortError, PortResult, UploadUrl,
};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes read from a file per chunk of a download.
const READ_CHUNK: usize = 64 * 1024;

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

/// Writes `body` to `path` through a synced temporary file beside it, renamed into place only
/// when the body is exactly `size` bytes. Returns the bytes read (at most `size + 1`).
async fn write_stream(path: &Path, size: u64, mut body: ByteStream) -> std::io::Result<u64> {
    let dir = path.parent().expect("object paths have a parent");
    tokio::fs::create_dir_all(dir).await?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let written = async {
        let mut file = tokio::fs::File::create(&tmp).await?;
        let mut read = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            let room = (size + 1).saturating_sub(read) as usize;
            let take = chunk.len().min(room);
            file.write_all(&chunk[..take]).await?;
            read += take as u64;
            if read > size {
                break;
            }
        }
        if read == size {
            file.sync_all().await?;
            tokio::fs::rename(&tmp, path).await?;
            let dir = dir.to_path_buf();
            tokio::task::spawn_blocking(move || sync_dir(&dir)).await.map_err(std::io::Error::other)??;
        }
        Ok::<u64, std::io::Error>(read)
    }
    .await;
    if !matches!(written, Ok(n) if n == size) {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    written
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A file's bytes as a stream of chunks.
fn read_stream(file: tokio::fs::File) -> ByteStream {
    futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = bytes::BytesMut::with_capacity(READ_CHUNK);
        match file.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buf.freeze()), Some(file))),
            Err(e) => Some((Err(e), None)),
        }
    })
    .boxed()
}

/// Files under `dir` (recursively) last modified before `before`, at most `max`, as paths
/// relative to `root`.
fn files_written_before(root: &Path, dir: &Path, before: SystemTime, max: usize) -> std::io::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.modified()? < before {
                let relative = entry.path().strip_prefix(root).expect("under the root").to_path_buf();
                found.push(relative.to_string_lossy().into_owned());
                if found.len() >= max {
                    return Ok(found);
                }
            }
        }
    }
    Ok(found)
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

    async fn promote(&self, from: &str, to: &str) -> PortResult<()> {
        let (from_path, to_path) = (self.path_of(from)?, self.path_of(to)?);
        let dir = to_path.parent().expect("object paths have a parent").to_path_buf();
        tokio::fs::create_dir_all(&dir).await.map_err(|e| io_error("creating the directory of", to, e))?;
        match tokio::fs::rename(&from_path, &to_path).await {
            Ok(()) => tokio::task::spawn_blocking(move || sync_dir(&dir))
                .await?
                .map_err(|e| io_error("syncing the directory of", to, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(PortError::not_found(format!("no object {from}")))
            }
            Err(e) => Err(io_error("moving", from, e)),
        }
    }

    async fn written_before(&self, prefix: &str, before: SystemTime, max: usize) -> PortResult<Vec<String>> {
        let (root, dir) = (self.dir.clone(), self.path_of(prefix)?);
        tokio::task::spawn_blocking(move || files_written_before(&root, &dir, before, max))
            .await?
            .map_err(|e| io_error("listing", prefix, e))
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

    async fn put_stream(&self, key: &str, size: u64, body: ByteStream) -> PortResult<u64> {
        write_stream(&self.path_of(key)?, size, body).await.map_err(|e| io_error("writing", key, e))
    }

    async fn open(&self, key: &str) -> PortResult<Option<(u64, ByteStream)>> {
        let file = match tokio::fs::File::open(self.path_of(key)?).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("opening", key, e)),
        };
        let len = file.metadata().await.map_err(|e| io_error("reading the size of", key, e))?.len();
        Ok(Some((len, read_stream(file))))
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

    fn body(chunks: &[&'static [u8]]) -> ByteStream {
        futures::stream::iter(chunks.iter().map(|c| Ok(bytes::Bytes::from_static(c))).collect::<Vec<_>>()).boxed()
    }

    async fn read_all(blobs: &LocalBlobs, key: &str) -> Option<Vec<u8>> {
        let (len, mut stream) = blobs.open(key).await.unwrap()?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(len, out.len() as u64);
        Some(out)
    }

    #[tokio::test]
    async fn objects_stream_in_and_out_and_delete_twice() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path(), "secret").unwrap();
        assert_eq!(blobs.size("w/f").await.unwrap(), None);
        assert_eq!(blobs.put_stream("w/f", 5, body(&[b"he", b"llo"])).await.unwrap(), 5);
        assert_eq!(blobs.size("w/f").await.unwrap(), Some(5));
        assert_eq!(read_all(&blobs, "w/f").await.unwrap(), b"hello");
        blobs.delete("w/f").await.unwrap();
        blobs.delete("w/f").await.unwrap();
        assert!(blobs.open("w/f").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_body_of_another_size_is_never_stored() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path(), "secret").unwrap();
        // longer: reading stops one byte past the size, whatever follows
        let endless = futures::stream::repeat_with(|| Ok(bytes::Bytes::from_static(&[7u8; 1000]))).boxed();
        assert_eq!(blobs.put_stream("w/f", 4096, endless).await.unwrap(), 4097);
        assert_eq!(blobs.put_stream("w/g", 5, body(&[b"hel"])).await.unwrap(), 3, "shorter");
        assert_eq!(blobs.size("w/f").await.unwrap(), None);
        assert_eq!(blobs.size("w/g").await.unwrap(), None);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("w")).unwrap().collect();
        assert!(left.is_empty(), "no temporary file is left behind: {left:?}");
    }

    #[tokio::test]
    async fn promoted_uploads_move_and_old_ones_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path(), "secret").unwrap();
        blobs.put_stream("incoming/w/f", 2, body(&[b"ok"])).await.unwrap();
        blobs.put_stream("incoming/w/g", 2, body(&[b"no"])).await.unwrap();
        let later = SystemTime::now() + Duration::from_secs(1);
        assert!(blobs.written_before("incoming", SystemTime::UNIX_EPOCH, 10).await.unwrap().is_empty());
        blobs.promote("incoming/w/f", "w/f").await.unwrap();
        assert_eq!(blobs.written_before("incoming", later, 10).await.unwrap(), ["incoming/w/g"]);
        assert_eq!(read_all(&blobs, "w/f").await.unwrap(), b"ok");
        let again = blobs.promote("incoming/w/f", "w/f").await.unwrap_err();
        assert_eq!(again.kind(), confab_core::ports::PortErrorKind::NotFound);
    }

    #[tokio::test]
    async fn keys_cannot_leave_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(&dir.path().join("files"), "secret").unwrap();
        for key in ["../escape", "w/../../x", "/abs", "w//f", "w/f g", ""] {
            let e = blobs.put_stream(key, 1, body(&[b"x"])).await.unwrap_err();
            assert_eq!(e.kind(), confab_core::ports::PortErrorKind::Invalid, "{key}");
        }
        assert!(!dir.path().join("escape").exists());
    }
}
