//! Shared files: what a message's attachment is, what the timeline records of a file, and the
//! rules every upload is checked against (names, sizes, content types).
//!
//! Blobs never pass through the log or the message store: clients upload and download with
//! pre-signed URLs ([`crate::blobs`]); the log only carries the file's metadata
//! (`FileShared`, `FileDeleted`, and `attachments` on `MessagePosted`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Attachments one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;
/// Longest file name, in bytes.
pub const MAX_FILE_NAME: usize = 255;
/// Longest content type, in bytes.
pub const MAX_CONTENT_TYPE: usize = 127;

/// A file as messages carry it (history, fanout, search).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attachment {
    pub file_id: Uuid,
    pub name: String,
    /// Bytes.
    pub size: i64,
    pub content_type: String,
}

/// A file as the timeline records it: shared in one channel by its uploader; `deleted` once
/// the file or the message carrying it is deleted, after which no URL is issued for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    pub uploader: Uuid,
    /// Unix milliseconds.
    pub created_at: i64,
    pub deleted: bool,
    #[serde(flatten)]
    pub file: Attachment,
}

/// Where a file's bytes live in the object store: under its workspace, named by its id only
/// (the user's file name never becomes part of a path).
pub fn object_key(workspace_id: &Uuid, file_id: &Uuid) -> String {
    format!("{workspace_id}/{file_id}")
}

/// Where an upload's bytes wait until it is completed: outside every workspace's shared files,
/// so an upload never completed is found (and deleted after `files.complete_grace_secs`) by
/// listing one prefix, and completion moves it to [`object_key`] in one step.
pub fn incoming_key(workspace_id: &Uuid, file_id: &Uuid) -> String {
    format!("{INCOMING_PREFIX}/{workspace_id}/{file_id}")
}

/// The prefix of every upload not completed yet.
pub const INCOMING_PREFIX: &str = "incoming";

/// A file name as users give it: shown and offered as the download's name, never used as a
/// path. Refused: empty, too long, control, invisible and direction characters (a
/// right-to-left override makes `invoice<U+202E>fdp.exe` show as `invoiceexe.pdf`), path
/// separators, `.` and `..`.
pub fn validate_file_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("name must not be empty".into());
    }
    if name.len() > MAX_FILE_NAME {
        return Err(format!("name must be at most {MAX_FILE_NAME} bytes"));
    }
    if name.chars().any(crate::names::is_hidden_or_control) {
        return Err("name must not contain control, invisible or direction characters".into());
    }
    if name.contains('/') || name.contains('\\') {
        return Err("name must not contain path separators".into());
    }
    if name == "." || name == ".." || name.trim_start().starts_with("..") {
        return Err("name must not be a relative path".into());
    }
    Ok(())
}

/// A MIME type `type/subtype` (parameters such as `; charset=utf-8` allowed), lowercased
/// without its parameters, or why not.
pub fn normalize_content_type(ct: &str) -> Result<String, String> {
    if ct.len() > MAX_CONTENT_TYPE {
        return Err(format!("content_type must be at most {MAX_CONTENT_TYPE} bytes"));
    }
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let token = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c));
    match essence.split_once('/') {
        Some((t, s)) if token(t) && token(s) => Ok(essence),
        _ => Err("content_type must be a MIME type such as image/png".into()),
    }
}

/// Whether `content_type` (normalized) matches one of `patterns` (`image/png`, `image/*`, `*/*`).
pub fn type_allowed(content_type: &str, patterns: &[String]) -> bool {
    let (t, _) = content_type.split_once('/').unwrap_or((content_type, ""));
    patterns.iter().any(|p| {
        let p = p.trim().to_ascii_lowercase();
        p == "*/*" || p == content_type || p.strip_suffix("/*").is_some_and(|pt| pt == t)
    })
}

/// Types shown inline by clients (everything else is offered as a download).
pub fn is_inline(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png"
            | "image/jpeg"
            | "image/gif"
            | "image/webp"
            | "text/plain"
            | "application/pdf"
            | "video/mp4"
            | "audio/mpeg"
    )
}

/// `Content-Disposition` for a download: shown inline when clients can show the type safely,
/// an attachment otherwise; the name as RFC 6266 `filename*`.
pub fn disposition(name: &str, content_type: &str) -> String {
    let kind = if is_inline(content_type) { "inline" } else { "attachment" };
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._- ".contains(c) { c } else { '_' }).collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}", percent_encode(name))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
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

    #[test]
    fn names_that_could_be_paths_are_refused() {
        for bad in ["", "  ", "a/b", "..\\x", "..", ".", "../etc/passwd", "a\u{0}b", "x\ny", &"n".repeat(256)] {
            assert!(validate_file_name(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["report.pdf", "photo 1.JPG", ".bashrc", "résumé.txt", "a..b"] {
            assert!(validate_file_name(good).is_ok(), "{good:?} should pass");
        }
    }

    #[test]
    fn content_types_are_normalized_and_matched() {
        assert_eq!(normalize_content_type("Text/Plain; charset=UTF-8").unwrap(), "text/plain");
        assert!(normalize_content_type("png").is_err());
        assert!(normalize_content_type("image/").is_err());
        assert!(normalize_content_type("image/png\r\nx: y").is_err());
        let allowed = vec!["image/*".to_string(), "application/pdf".to_string()];
        assert!(type_allowed("image/png", &allowed));
        assert!(type_allowed("application/pdf", &allowed));
        assert!(!type_allowed("application/x-msdownload", &allowed));
        assert!(!type_allowed("imagex/png", &allowed));
        assert!(type_allowed("anything/else", &["*/*".to_string()]));
    }

    #[test]
    fn object_keys_hold_no_user_text() {
        let (ws, f) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(object_key(&ws, &f), format!("{ws}/{f}"));
    }
}
