//! Secrets kept in a data directory (the embedded mode's token secret and admin key): generated
//! on first run, written atomically (a temporary file synced, renamed, the directory synced),
//! readable by the owner only (file 0600, directory 0700). A secret file that exists but is
//! empty or short stops the process with an error naming it: nothing ever signs with an empty
//! or guessable key.

use base64::Engine;
use rand::RngCore;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Shortest secret accepted, in bytes (of its text).
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret file {path} is {problem}; delete it to generate a new one, or write a secret of at least {MIN_SECRET_LEN} bytes into it")]
    Unusable { path: PathBuf, problem: &'static str },
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
}

fn io<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> SecretError + 'p {
    move |source| SecretError::Io { what, path: path.to_path_buf(), source }
}

/// Creates `dir` (and its parents) if missing, readable by the owner only; an existing one that
/// others may read (a data directory made by an older version, or by hand) is restricted too.
pub fn private_dir(dir: &Path) -> Result<(), SecretError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io("creating", dir))?;
        // made here, under the umask: restricted without a word
        return fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io("restricting", dir));
    }
    owner_only(dir, 0o700)
}

/// Restricts `path` to `mode` if group or others have any access to it, and says so.
fn owner_only(path: &Path, mode: u32) -> Result<(), SecretError> {
    let was = fs::metadata(path).map_err(io("reading the mode of", path))?.permissions().mode() & 0o777;
    if was & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io("restricting", path))?;
        tracing::warn!(path = %path.display(), was = format!("{was:o}"), now = format!("{mode:o}"), "others could read this; restricted to its owner");
    }
    Ok(())
}

/// The secret in `dir/name`, generated (256 random bits, base64url) if the file is missing.
pub fn load_or_create(dir: &Path, name: &str) -> Result<String, SecretError> {
    let path = dir.join(name);
    match fs::read_to_string(&path) {
        Ok(text) => {
            owner_only(&path, 0o600)?;
            check(&path, text.trim())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            write_atomically(&path, secret.as_bytes())?;
            Ok(secret)
        }
        Err(e) => Err(io("reading", &path)(e)),
    }
}

fn check(path: &Path, secret: &str) -> Result<String, SecretError> {
    let problem = if secret.is_empty() {
        "empty"
    } else if secret.len() < MIN_SECRET_LEN {
        "shorter than 32 bytes"
    } else {
        return Ok(secret.to_string());
    };
    Err(SecretError::Unusable { path: path.to_path_buf(), problem })
}

/// Writes `bytes` to `path` (mode 0600) through a synced temporary file, a rename and a synced
/// directory, so a crash leaves either no file or the whole one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SecretError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp =
        dir.join(format!(".{}.tmp-{}", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("creating", &tmp))?;
    file.write_all(bytes).map_err(io("writing", &tmp))?;
    file.sync_all().map_err(io("syncing", &tmp))?;
    fs::rename(&tmp, path).map_err(io("renaming", path))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("syncing", dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_and_secret_that_others_could_read_are_restricted() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir(&data).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
        let secret = data.join("token_secret");
        fs::write(&secret, "s".repeat(MIN_SECRET_LEN)).unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
        private_dir(&data).unwrap();
        assert_eq!(load_or_create(&data, "token_secret").unwrap(), "s".repeat(MIN_SECRET_LEN));
        assert_eq!(fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_secret_is_generated_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        private_dir(&data).unwrap();
        assert_eq!(fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
        let first = load_or_create(&data, "token_secret").unwrap();
        assert!(first.len() >= MIN_SECRET_LEN, "{first}");
        let mode = fs::metadata(data.join("token_secret")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create(&data, "token_secret").unwrap(), first);
        assert_ne!(load_or_create(&data, "admin_key").unwrap(), first, "each secret is its own");
        assert!(fs::read_dir(&data).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp")));
    }

    #[test]
    fn an_empty_or_short_secret_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for (content, problem) in [("", "empty"), ("\n", "empty"), ("short", "shorter")] {
            fs::write(dir.path().join("admin_key"), content).unwrap();
            let e = load_or_create(dir.path(), "admin_key").unwrap_err().to_string();
            assert!(e.contains("admin_key") && e.contains(problem), "{e}");
        }
    }
}
