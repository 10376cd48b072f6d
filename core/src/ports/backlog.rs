//! What a resume replays, and the bounded scan both fanout adapters use to find it: a stream is
//! read newest first until every named topic reaches its position, or the scan's budget (the
//! entries it may return plus a fixed search beyond them) runs out, or the entries become older
//! than the workspace's retention. Whatever was not found is reported as a gap, which clients
//! fetch over HTTP history.

use std::collections::{HashMap, HashSet};
use uuid::Uuid;

use super::FanoutEntry;

/// What a resume replays: entries oldest first, and `(topic, from_seq, to_seq)` for missed
/// events it does not replay.
#[derive(Debug, Clone, Default)]
pub struct Backlog {
    pub entries: Vec<FanoutEntry>,
    pub gaps: Vec<(Uuid, i64, i64)>,
}

/// Bounds on the work of one resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacklogLimits {
    /// Entries one resume replays at most (newest kept); older missed ones become gaps.
    pub max_entries: usize,
    /// Entries of other topics a scan may pass over, beyond those it returns.
    pub extra_scan: usize,
    /// Entries that occurred before this (Unix milliseconds) are not replayed: the workspace's
    /// retention covers the resume window too.
    pub not_before_ms: i64,
}

impl Default for BacklogLimits {
    fn default() -> Self {
        BacklogLimits { max_entries: 5_000, extra_scan: 2_000, not_before_ms: i64::MIN }
    }
}

/// A scan of one workspace's stream, newest first: fed entries by an adapter through
/// [`BacklogScan::offer`] until it says stop, then turned into a [`Backlog`].
#[derive(Debug)]
pub struct BacklogScan {
    order: Vec<(Uuid, i64)>,
    after: HashMap<Uuid, i64>,
    now: HashMap<Uuid, i64>,
    limits: BacklogLimits,
    /// Entries the scan may read in all: the missed entries (up to `max_entries`) plus
    /// `extra_scan`.
    budget: usize,
    scanned: usize,
    kept: Vec<FanoutEntry>,
    /// The oldest seq kept per topic.
    lowest: HashMap<Uuid, i64>,
    /// Topics whose older entries are no longer taken (an entry past retention was met).
    cut: HashSet<Uuid>,
    stopped: bool,
}

impl BacklogScan {
    /// `after`: each topic's last seq the client has; `now`: each topic's newest published seq.
    pub fn new(after: &[(Uuid, i64)], now: HashMap<Uuid, i64>, limits: BacklogLimits) -> BacklogScan {
        let missed: i64 = after.iter().map(|(t, last)| (now.get(t).copied().unwrap_or(0) - last).max(0)).sum();
        let missed = usize::try_from(missed).unwrap_or(usize::MAX).min(limits.max_entries);
        BacklogScan {
            order: after.to_vec(),
            after: after.iter().copied().collect(),
            now,
            limits,
            budget: missed.saturating_add(limits.extra_scan),
            scanned: 0,
            kept: Vec::new(),
            lowest: HashMap::new(),
            cut: HashSet::new(),
            stopped: false,
        }
    }

    /// Entries the scan may still read (adapters size their pages with it); 0 once it is done.
    pub fn remaining(&self) -> usize {
        if self.done() {
            0
        } else {
            self.budget - self.scanned
        }
    }

    /// Whether the scan is over: every topic reached, the budget spent, or told to stop.
    pub fn done(&self) -> bool {
        self.stopped || self.scanned >= self.budget || self.covered()
    }

    fn covered(&self) -> bool {
        self.order.iter().all(|(t, last)| {
            self.now.get(t).copied().unwrap_or(0) <= *last
                || self.cut.contains(t)
                || self.lowest.get(t).is_some_and(|s| *s <= last + 1)
        })
    }

    /// Takes the next entry, newest first. Returns whether the scan wants more.
    pub fn offer(&mut self, entry: &FanoutEntry) -> bool {
        if self.done() {
            return false;
        }
        self.scanned += 1;
        if entry.ts < self.limits.not_before_ms {
            // the stream is in publish order: everything older is past retention too
            self.stopped = true;
            self.cut.extend(self.after.keys());
            return false;
        }
        let wanted = self.after.get(&entry.topic_id).is_some_and(|last| entry.seq > *last);
        if entry.ephemeral_from.is_none() && wanted && !self.cut.contains(&entry.topic_id) {
            self.lowest.insert(entry.topic_id, entry.seq);
            self.kept.push(entry.clone());
            if self.kept.len() >= self.limits.max_entries {
                self.stopped = true;
            }
        }
        !self.done()
    }

    /// The entries kept, oldest first, and the gaps: for each topic, the missed seqs older
    /// than the oldest entry kept.
    pub fn finish(mut self) -> Backlog {
        self.kept.reverse();
        let mut gaps = Vec::new();
        for (topic, last) in &self.order {
            let now = self.now.get(topic).copied().unwrap_or(0);
            if now <= *last {
                continue;
            }
            let first_kept = self.lowest.get(topic).copied().unwrap_or(now + 1);
            let from = (last + 1).max(1);
            if first_kept > from {
                gaps.push((*topic, from, first_kept - 1));
            }
        }
        Backlog { entries: self.kept, gaps }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(topic: Uuid, seq: i64, ts: i64) -> FanoutEntry {
        FanoutEntry {
            workspace_id: Uuid::nil(),
            position: String::new(),
            topic_id: topic,
            seq,
            frame_type: "message:new".into(),
            frame_json: format!("{seq}"),
            add_members: vec![],
            remove_members: vec![],
            ts,
            ephemeral_from: None,
        }
    }

    /// Feeds `stream` (oldest first) to a scan newest first; returns the backlog and how many
    /// entries the scan read.
    fn scan(stream: &[FanoutEntry], after: &[(Uuid, i64)], limits: BacklogLimits) -> (Backlog, usize) {
        let mut now = HashMap::new();
        for e in stream {
            let n = now.entry(e.topic_id).or_insert(0);
            *n = e.seq.max(*n);
        }
        let mut scan = BacklogScan::new(after, now, limits);
        let mut read = 0;
        for e in stream.iter().rev() {
            if scan.done() {
                break;
            }
            read += 1;
            if !scan.offer(e) {
                break;
            }
        }
        (scan.finish(), read)
    }

    fn seqs(b: &Backlog) -> Vec<i64> {
        b.entries.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn a_scan_stops_once_every_topic_reaches_its_position() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let stream: Vec<_> = (1..=100).map(|i| entry(if i % 2 == 0 { a } else { b }, (i + 1) / 2, i)).collect();
        let (backlog, read) = scan(&stream, &[(a, 45)], BacklogLimits::default());
        assert_eq!(seqs(&backlog), [46, 47, 48, 49, 50]);
        assert!(backlog.gaps.is_empty());
        assert_eq!(read, 9, "reads back to a's seq 46 (entry 92 of 100) and no further");
    }

    #[test]
    fn a_quiet_topic_behind_a_busy_one_costs_only_the_extra_scan() {
        // the attack from the issue: a position far behind (or for a topic with nothing in the
        // stream) used to walk the whole stream under the lock
        let (quiet, busy) = (Uuid::new_v4(), Uuid::new_v4());
        let mut stream = vec![entry(quiet, 1, 0)];
        stream.extend((1..=10_000).map(|i| entry(busy, i, i)));
        let limits = BacklogLimits { extra_scan: 100, ..BacklogLimits::default() };
        let (backlog, read) = scan(&stream, &[(quiet, 0)], limits);
        assert_eq!(read, 101, "1 missed entry + 100 of search");
        assert!(backlog.entries.is_empty());
        assert_eq!(backlog.gaps, [(quiet, 1, 1)], "what was not found is a gap, fetched over HTTP");
    }

    #[test]
    fn a_negative_or_huge_gap_never_lifts_the_budget_past_max_entries() {
        let t = Uuid::new_v4();
        let stream: Vec<_> = (1..=1_000).map(|i| entry(t, i, i)).collect();
        let limits = BacklogLimits { max_entries: 10, extra_scan: 5, not_before_ms: i64::MIN };
        let (backlog, read) = scan(&stream, &[(t, -1_000_000)], limits);
        assert_eq!(seqs(&backlog), (991..=1_000).collect::<Vec<_>>(), "the newest 10");
        assert_eq!(backlog.gaps, [(t, 1, 990)], "seqs start at 1");
        assert_eq!(read, 10);
    }

    #[test]
    fn entries_older_than_the_retention_are_gaps_not_replays() {
        let t = Uuid::new_v4();
        let stream: Vec<_> = (1..=10).map(|i| entry(t, i, i * 1_000)).collect();
        let limits = BacklogLimits { not_before_ms: 6_000, ..BacklogLimits::default() };
        let (backlog, read) = scan(&stream, &[(t, 2)], limits);
        assert_eq!(seqs(&backlog), [6, 7, 8, 9, 10]);
        assert_eq!(backlog.gaps, [(t, 3, 5)]);
        assert_eq!(read, 6, "stops at the first entry past retention");
    }

    #[test]
    fn ephemeral_entries_and_other_topics_are_never_replayed() {
        let (t, other) = (Uuid::new_v4(), Uuid::new_v4());
        let mut typing = entry(t, 0, 5);
        typing.ephemeral_from = Some(Uuid::new_v4());
        let stream = vec![entry(t, 1, 1), entry(other, 1, 2), typing, entry(t, 2, 6)];
        let (backlog, _) = scan(&stream, &[(t, 0)], BacklogLimits::default());
        assert_eq!(seqs(&backlog), [1, 2]);
        assert!(backlog.entries.iter().all(|e| e.topic_id == t));
    }

    #[test]
    fn a_topic_already_current_costs_nothing() {
        let t = Uuid::new_v4();
        let stream: Vec<_> = (1..=50).map(|i| entry(t, i, i)).collect();
        let (backlog, read) = scan(&stream, &[(t, 50)], BacklogLimits::default());
        assert!(backlog.entries.is_empty() && backlog.gaps.is_empty());
        assert_eq!(read, 0);
    }
}
