//! Replays what a reconnecting socket missed: for each named channel it is a member of, the
//! fanout entries after the given `seq`, then `resume:done`; live events of those channels are
//! held meanwhile and follow without duplicates (see `crate::writer`). A resume's work is
//! bounded (`gateway.resume_max_entries` replayed, `gateway.resume_extra_scan` passed over);
//! missed events it does not replay (no longer in the stream, past those bounds, or older than
//! the workspace's retention) are reported as gaps, to be fetched over HTTP history. Replayed
//! frames carry no text that was edited away or deleted since (see `super::redact`).

use axum::extract::ws::Utf8Bytes;
use confab_core::ports::{Backlog, BacklogLimits, PortError};
use confab_core::protocol::{ResumeGap, ServerFrame};
use confab_core::ErrorCode;
use std::collections::BTreeMap;
use uuid::Uuid;

use super::encode;
use super::frames::Conn;
use super::redact::redact_superseded;
use crate::writer::{Out, Replay};

/// Channels one `resume` may name.
const MAX_RESUME_CHANNELS: usize = 2_000;

impl Conn {
    pub(super) async fn resume(&mut self, channels: BTreeMap<Uuid, i64>) -> Option<ServerFrame> {
        self.count("resume");
        if let Some(refusal) = self.refuse_resume(&channels) {
            let _ = self.tx.send(Out::Release).await;
            return Some(refusal);
        }
        type Positions = Vec<(Uuid, i64)>;
        let (mine, not_members): (Positions, Positions) =
            channels.into_iter().partition(|(ch, _)| self.is_channel_member(*ch));
        let _ = self.tx.send(Out::Hold(Some(Box::new(mine.iter().map(|(c, _)| *c).collect())))).await;
        let backlog = match self.backlog(&mine).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the fanout backlog");
                self.st.metrics.resumes.with_label_values(&["unavailable"]).inc();
                let _ = self.tx.send(Out::Release).await;
                let message = "cannot resume now; fetch history over HTTP";
                return Some(self.error(ErrorCode::ResumeUnavailable, message, None));
            }
        };
        let mut upto: BTreeMap<Uuid, i64> = mine.iter().copied().collect();
        let mut events = Vec::with_capacity(backlog.entries.len());
        for e in backlog.entries {
            upto.insert(e.topic_id, e.seq);
            events.push((e.topic_id, e.seq, Utf8Bytes::from(e.frame_json)));
        }
        let gaps: Vec<ResumeGap> = backlog
            .gaps
            .iter()
            .map(|&(channel_id, from_seq, to_seq)| ResumeGap { channel_id, from_seq, to_seq })
            .collect();
        self.st.metrics.resumes.with_label_values(&[if gaps.is_empty() { "complete" } else { "gaps" }]).inc();
        let not_members = not_members.into_iter().map(|(c, _)| c).collect();
        let done = ServerFrame::ResumeDone { replayed: events.len(), channels: upto, gaps, not_members };
        let _ = self.tx.send(Out::Replay(Box::new(Replay { events, done: encode(&done) }))).await;
        None
    }

    /// The error a `resume` gets before any work: over the rate, too many channels, or a
    /// position that is not a seq.
    fn refuse_resume(&mut self, channels: &BTreeMap<Uuid, i64>) -> Option<ServerFrame> {
        if !self.limit.allow() {
            return Some(self.rate_limited(None));
        }
        if channels.len() > MAX_RESUME_CHANNELS {
            let message = format!("resume names at most {MAX_RESUME_CHANNELS} channels");
            return Some(self.error(ErrorCode::InvalidField, &message, None));
        }
        if let Some((channel_id, seq)) = channels.iter().find(|(_, seq)| **seq < 0) {
            let message = format!("resume position {seq} for {channel_id}: a seq is 0 or more");
            return Some(self.error(ErrorCode::InvalidField, &message, None));
        }
        None
    }

    /// The missed entries of `channels`, bounded by the gateway's resume limits and the
    /// workspace's retention, with superseded text redacted.
    async fn backlog(&self, channels: &[(Uuid, i64)]) -> Result<Backlog, PortError> {
        let ws = self.claims.workspace_id;
        let retention_secs = self.st.store.workspace(ws).await?.map(|w| w.retention_secs).unwrap_or(0);
        let not_before_ms = match retention_secs {
            secs if secs > 0 => chrono::Utc::now().timestamp_millis() - i64::from(secs) * 1000,
            _ => i64::MIN,
        };
        let gateway = &self.st.cfg.gateway;
        let limits = BacklogLimits {
            max_entries: gateway.resume_max_entries,
            extra_scan: gateway.resume_extra_scan,
            not_before_ms,
        };
        let mut backlog = self.st.fanout.backlog(&ws, channels, limits).await?;
        redact_superseded(&mut backlog.entries);
        Ok(backlog)
    }
}
