//! Replays what a reconnecting socket missed: for each named channel it is subscribed to, the
//! fanout entries after the given `seq`, then `resume:done`; live events of those channels are
//! held meanwhile and follow without duplicates (see `crate::writer`). Channels whose missed
//! events are no longer in the fanout stream are reported as gaps, to be fetched over HTTP
//! history.

use axum::extract::ws::Utf8Bytes;
use confab_core::protocol::{ResumeGap, ServerFrame};
use confab_core::ErrorCode;
use std::collections::BTreeMap;
use uuid::Uuid;

use super::encode;
use super::frames::Conn;
use crate::writer::{Out, Replay};

/// Channels one `resume` may name.
const MAX_RESUME_CHANNELS: usize = 2_000;

impl Conn {
    pub(super) async fn resume(&mut self, channels: BTreeMap<Uuid, i64>) -> Option<ServerFrame> {
        self.count("resume");
        if !self.limit.allow() {
            let _ = self.tx.send(Out::Release).await;
            return Some(self.rate_limited(None));
        }
        if channels.len() > MAX_RESUME_CHANNELS {
            let _ = self.tx.send(Out::Release).await;
            let message = format!("resume names at most {MAX_RESUME_CHANNELS} channels");
            return Some(self.error(ErrorCode::InvalidField, &message, None));
        }
        type Positions = Vec<(Uuid, i64)>;
        let (mine, not_members): (Positions, Positions) =
            channels.into_iter().partition(|(ch, _)| self.is_subscribed(*ch));
        let _ = self.tx.send(Out::Hold(Some(Box::new(mine.iter().map(|(c, _)| *c).collect())))).await;
        let backlog = match self.st.fanout.backlog(&self.claims.workspace_id, &mine).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the fanout backlog");
                self.st.metrics.resumes.with_label_values(&["unavailable"]).inc();
                let _ = self.tx.send(Out::Release).await;
                return Some(self.error(ErrorCode::Unavailable, "cannot resume now; fetch history over HTTP", None));
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
}
