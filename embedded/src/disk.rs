//! The free-space watermark of the data directory. fjall poisons its database for good when a
//! journal write fails (a full disk included), so the embedded log refuses new commands
//! *before* the disk is full: below `embedded.min_free_disk_mb` sends get `unavailable`, and
//! they are accepted again by themselves once space returns. Projections keep writing what was
//! already accepted: the watermark is their headroom.

use confab_core::ports::{PortError, PortResult};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Instant;

/// How often free space is measured (one `statvfs`), at most.
const CHECK_EVERY_MS: i64 = 250;

pub struct DiskWatermark {
    dir: PathBuf,
    min_free_bytes: u64,
    started: Instant,
    /// Milliseconds since `started` of the last measurement (-1: never).
    checked_at_ms: AtomicI64,
    low: AtomicBool,
}

impl DiskWatermark {
    /// Watches the file system of `dir`; `min_free_bytes` 0 turns the check off.
    pub fn new(dir: PathBuf, min_free_bytes: u64) -> Self {
        Self {
            dir,
            min_free_bytes,
            started: Instant::now(),
            checked_at_ms: AtomicI64::new(-1),
            low: AtomicBool::new(false),
        }
    }

    /// `Err` (transient: the caller answers `unavailable`) while free space is under the mark.
    pub fn check(&self) -> PortResult<()> {
        if self.min_free_bytes == 0 {
            return Ok(());
        }
        let now = self.started.elapsed().as_millis() as i64;
        let last = self.checked_at_ms.load(Ordering::Relaxed);
        if last < 0 || now - last >= CHECK_EVERY_MS {
            self.checked_at_ms.store(now, Ordering::Relaxed);
            self.measure();
        }
        if self.low.load(Ordering::Relaxed) {
            return Err(PortError::transient(format!(
                "the data directory's disk has less than {} MiB free (embedded.min_free_disk_mb)",
                self.min_free_bytes >> 20
            )));
        }
        Ok(())
    }

    fn measure(&self) {
        let free = match fs4::available_space(&self.dir) {
            Ok(free) => free,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot measure free disk space");
                return;
            }
        };
        let low = free < self.min_free_bytes;
        if self.low.swap(low, Ordering::Relaxed) != low {
            if low {
                tracing::error!(
                    free_mib = free >> 20,
                    min_free_mib = self.min_free_bytes >> 20,
                    "disk nearly full: refusing new messages"
                );
            } else {
                tracing::info!(free_mib = free >> 20, "disk space back: accepting messages again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_under_the_mark_and_never_when_off() {
        let dir = std::env::temp_dir();
        let free = fs4::available_space(&dir).unwrap();
        assert!(DiskWatermark::new(dir.clone(), free + (1 << 40)).check().is_err(), "a mark above what is free");
        assert!(DiskWatermark::new(dir.clone(), 1).check().is_ok());
        assert!(DiskWatermark::new(dir, 0).check().is_ok());
    }
}
