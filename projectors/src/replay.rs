//! Rebuilding a projection from the log: apply every event from the source's start position up
//! to the end of the log as it was when the replay began, acknowledging as it goes, so that a
//! replay interrupted at any point (even by `kill -9`) resumes where it stopped. Projections are
//! idempotent, so replaying over existing data, or replaying twice, changes nothing.

use confab_core::ports::{EventSource, PortResult};
use confab_core::Shutdown;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::Projection;

const MAX_BATCH: usize = 1000;

/// Where a replay stands. It reads `total` offsets; some of them are no events (Kafka's
/// transaction markers), so how far it is comes from the offsets read, how fast from the events.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Events applied.
    pub applied: u64,
    /// Offsets read, of `total`.
    pub read: u64,
    pub total: u64,
    pub elapsed: Duration,
}

impl Progress {
    /// Events applied per second.
    pub fn rate(&self) -> f64 {
        self.applied as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// Offsets left to read.
    pub fn remaining(&self) -> u64 {
        self.total.saturating_sub(self.read)
    }
    /// The share read, 0 to 1 (1 for an empty log).
    pub fn fraction_read(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            (self.read as f64 / self.total as f64).min(1.0)
        }
    }
    pub fn eta(&self) -> Option<Duration> {
        let offsets_per_second = self.read as f64 / self.elapsed.as_secs_f64().max(1e-9);
        (offsets_per_second > 0.0).then(|| Duration::from_secs_f64(self.remaining() as f64 / offsets_per_second))
    }
}

/// Offsets read from `starts` up to `ends` (positions past an end count up to it).
fn offsets_read(positions: &HashMap<i32, i64>, starts: &HashMap<i32, i64>, ends: &HashMap<i32, i64>) -> u64 {
    let read = |(partition, end): (&i32, &i64)| {
        let start = starts.get(partition).copied().unwrap_or(0);
        (positions.get(partition).copied().unwrap_or(start).min(*end) - start).max(0) as u64
    };
    ends.iter().map(read).sum()
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub projection: &'static str,
    /// Events this run applied.
    pub events: u64,
    /// Offsets between the start position and the end (may include Kafka transaction markers).
    pub offsets: u64,
    /// Records that can never be decoded, written to the dead letters and passed (also logged).
    pub undecodable: u64,
    /// Total offset the replay started from (0 for a fresh replay, more when resuming).
    pub resumed_from: i64,
    pub seconds: f64,
    pub events_per_sec: f64,
    /// False when stopped by a signal before the end.
    pub complete: bool,
}

/// Replays `source` into `projection`. `max_rate` (events/s) throttles the replay, to spare a
/// busy cluster.
pub async fn replay<P: Projection>(
    mut source: Box<dyn EventSource>,
    projection: &P,
    max_rate: Option<u64>,
    mut shutdown: Shutdown,
    mut on_progress: impl FnMut(Progress),
) -> PortResult<Summary> {
    let max_batch = max_rate.map(|r| (r as usize / 10).clamp(1, MAX_BATCH)).unwrap_or(MAX_BATCH);
    let started = Instant::now();
    let ends: HashMap<i32, i64> = source.end_offsets().await?.into_iter().collect();
    let starts: HashMap<i32, i64> = source.positions().await?.into_iter().collect();
    let resumed_from: i64 = starts.values().sum();
    let total: u64 = ends.iter().map(|(p, e)| (e - starts.get(p).copied().unwrap_or(0)).max(0) as u64).sum();
    let mut applied = 0u64;
    let mut undecodable = 0u64;
    let mut last_report = Instant::now();
    let mut complete = true;
    let mut read;
    loop {
        let pos: HashMap<i32, i64> = source.positions().await?.into_iter().collect();
        read = offsets_read(&pos, &starts, &ends);
        if ends.iter().all(|(p, e)| pos.get(p).copied().unwrap_or(0) >= *e) {
            break;
        }
        let batch = tokio::select! {
            _ = shutdown.wait() => { complete = false; break }
            b = source.next_batch(max_batch, Some(Duration::from_millis(300))) => b,
        };
        let batch = match batch {
            Ok(batch) => batch,
            // the log or the registry restarting: wait it out, the replay goes on where it was
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "reading events failed, retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if batch.is_empty() {
            continue;
        }
        let mut events = Vec::with_capacity(batch.len());
        for rec in batch {
            // count only what was below the end when the replay began
            if rec.offset < ends.get(&rec.partition).copied().unwrap_or(0) {
                applied += 1;
            }
            match rec.event {
                Ok(e) => events.push(e),
                Err(dead) => {
                    undecodable += 1;
                    while let Err(e) = source.dead_letter(rec.partition, rec.offset, &dead).await {
                        tracing::warn!(error = %e, "cannot write a dead letter, retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    tracing::error!(partition = rec.partition, offset = rec.offset, error = %dead.error, "event can never be decoded: moved to the dead letters");
                }
            }
        }
        let mut backoff = Duration::from_millis(100);
        while let Err(e) = projection.apply(&events).await {
            tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "apply failed, retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        source.ack_returned()?;
        if let Some(rate) = max_rate.filter(|r| *r > 0) {
            let due = Duration::from_secs_f64(applied as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            crate::flush_then_commit(projection, &mut source, false).await?;
            on_progress(Progress { applied, read, total, elapsed: started.elapsed() });
            last_report = Instant::now();
        }
    }
    if complete {
        // the position may have moved past trailing non-events since the last batch
        source.ack_returned()?;
    }
    crate::flush_then_commit(projection, &mut source, true).await?;
    let read = if complete { total } else { read };
    let progress = Progress { applied, read, total, elapsed: started.elapsed() };
    on_progress(progress);
    Ok(Summary {
        projection: projection.name(),
        events: applied,
        offsets: total,
        undecodable,
        resumed_from,
        seconds: started.elapsed().as_secs_f64(),
        events_per_sec: progress.rate(),
        complete,
    })
}
