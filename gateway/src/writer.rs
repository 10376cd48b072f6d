//! One socket's outgoing side: a queue of [`Out`] items and the loop that writes them.
//!
//! Channel events carry their channel and `seq`, and the writer delivers each channel's events
//! once and in order: an event at or below the last `seq` it wrote for that channel is a
//! duplicate and is dropped. That is what makes a resume lossless and duplicate-free: while
//! the backlog is fetched, live events of the resumed channels are held ([`Out::Hold`]); the
//! backlog is written, then the held events, each once ([`Out::Replay`]).

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::SinkExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

/// Live events held during a resume before the socket is closed as too slow to catch up.
pub const MAX_HELD: usize = 10_000;

pub enum Out {
    /// A frame outside any channel's sequence (hello, replies, errors, typing).
    Frame(Utf8Bytes),
    /// A channel event, shared by every socket it goes to.
    Event(Arc<ChannelEvent>),
    /// Hold live events of these channels (`None`: all) until the next `Replay` or `Release`.
    Hold(Option<Box<HashSet<Uuid>>>),
    /// The backlog in order, then `done`; then the held events, each once.
    Replay(Box<Replay>),
    /// Stop holding (a resume that never came).
    Release,
    /// Close the socket with this code and reason (the token expired or was revoked).
    Close(u16, &'static str),
}

// Every queue slot is the size of the largest variant, and each socket's queue starts with a
// block of 32 slots: the rare big variants are boxed so an idle socket costs less.
const _: () = assert!(std::mem::size_of::<Out>() <= 40);

/// A channel event at `seq`, as queued to each subscribed socket.
pub struct ChannelEvent {
    pub channel: Uuid,
    pub seq: i64,
    pub frame: Utf8Bytes,
}

/// A resume's backlog and its closing `resume:done` frame.
pub struct Replay {
    pub events: Vec<(Uuid, i64, Utf8Bytes)>,
    pub done: Utf8Bytes,
}

/// Per-channel order and the hold, apart from the socket so it can be tested alone.
#[derive(Default)]
pub struct Sequencer {
    last: HashMap<Uuid, i64>,
    hold: Option<Option<HashSet<Uuid>>>,
    held: Vec<(Uuid, i64, Utf8Bytes)>,
    pub duplicates: u64,
}

pub enum Step {
    Send(Vec<Utf8Bytes>),
    /// Too much held: close the socket.
    Overflow,
}

impl Sequencer {
    fn pass(&mut self, channel: Uuid, seq: i64, frame: Utf8Bytes, out: &mut Vec<Utf8Bytes>) {
        let last = self.last.entry(channel).or_insert(0);
        if seq <= *last {
            self.duplicates += 1;
            return;
        }
        *last = seq;
        out.push(frame);
    }

    fn holds(&self, channel: &Uuid) -> bool {
        match &self.hold {
            Some(None) => true,
            Some(Some(set)) => set.contains(channel),
            None => false,
        }
    }

    fn release(&mut self, out: &mut Vec<Utf8Bytes>) {
        self.hold = None;
        for (c, s, f) in std::mem::take(&mut self.held) {
            self.pass(c, s, f, out);
        }
    }

    pub fn step(&mut self, item: Out) -> Step {
        let mut out = Vec::new();
        match item {
            Out::Frame(f) => out.push(f),
            Out::Event(e) => {
                let (channel, seq, frame) = (e.channel, e.seq, e.frame.clone());
                if self.holds(&channel) {
                    if self.held.len() >= MAX_HELD {
                        return Step::Overflow;
                    }
                    self.held.push((channel, seq, frame));
                } else {
                    self.pass(channel, seq, frame, &mut out);
                }
            }
            Out::Hold(channels) => {
                self.hold = match (self.hold.take(), channels.map(|c| *c)) {
                    (Some(None), _) | (_, None) => Some(None),
                    (Some(Some(mut a)), Some(b)) => {
                        a.extend(b);
                        Some(Some(a))
                    }
                    (None, Some(b)) => Some(Some(b)),
                };
            }
            Out::Replay(r) => {
                let Replay { events, done } = *r;
                for (c, s, f) in events {
                    self.pass(c, s, f, &mut out);
                }
                out.push(done);
                self.release(&mut out);
            }
            Out::Release => self.release(&mut out),
            // the write loop closes the socket itself; while draining at shutdown, 1001 wins
            Out::Close(..) => {}
        }
        Step::Send(out)
    }
}

pub async fn write_loop(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Out>,
    kill: Arc<Notify>,
    mut shutdown: confab_core::Shutdown,
    metrics: crate::metrics::Metrics,
) {
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))
    };
    let mut seq = Sequencer::default();
    loop {
        let item = tokio::select! {
            biased;
            _ = kill.notified() => {
                let _ = sink.send(close(1008, "slow consumer: outgoing queue full")).await;
                return;
            }
            _ = shutdown.wait() => {
                // drain what is already queued, then say goodbye
                while let Ok(item) = rx.try_recv() {
                    if let Step::Send(frames) = seq.step(item) {
                        for f in frames {
                            if sink.send(Message::Text(f)).await.is_err() { return; }
                        }
                    }
                }
                let _ = sink.send(close(1001, "server shutting down")).await;
                return;
            }
            item = rx.recv() => match item {
                Some(item) => item,
                None => {
                    let _ = sink.send(close(1000, "closed")).await;
                    return;
                }
            }
        };
        if let Out::Close(code, reason) = item {
            let _ = sink.send(close(code, reason)).await;
            return;
        }
        let before = seq.duplicates;
        match seq.step(item) {
            Step::Send(frames) => {
                for f in frames {
                    if sink.send(Message::Text(f)).await.is_err() {
                        return;
                    }
                }
            }
            Step::Overflow => {
                metrics.slow_disconnects.inc();
                let _ = sink.send(close(1008, "slow consumer: too many events held while resuming")).await;
                return;
            }
        }
        metrics.duplicates_dropped.inc_by(seq.duplicates - before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(c: Uuid, s: i64) -> Out {
        Out::Event(Arc::new(ChannelEvent { channel: c, seq: s, frame: Utf8Bytes::from(format!("{c}:{s}")) }))
    }

    fn sent(step: Step) -> Vec<String> {
        match step {
            Step::Send(f) => f.iter().map(|b| b.as_str().to_string()).collect(),
            Step::Overflow => panic!("overflow"),
        }
    }

    #[test]
    fn a_resume_delivers_the_gap_then_live_events_once_and_in_order() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut s = Sequencer::default();
        assert!(sent(s.step(Out::Hold(None))).is_empty());
        // live events arrive while the backlog is fetched: held (b too, as everything is)
        assert!(sent(s.step(ev(a, 5))).is_empty());
        assert!(sent(s.step(ev(a, 6))).is_empty());
        assert!(sent(s.step(ev(b, 2))).is_empty());
        let backlog = vec![
            (a, 3, Utf8Bytes::from(format!("{a}:3"))),
            (a, 4, Utf8Bytes::from(format!("{a}:4"))),
            (a, 5, Utf8Bytes::from(format!("{a}:5"))),
        ];
        let out = sent(s.step(Out::Replay(Box::new(Replay { events: backlog, done: Utf8Bytes::from("done") }))));
        assert_eq!(
            out,
            vec![
                format!("{a}:3"),
                format!("{a}:4"),
                format!("{a}:5"),
                "done".into(),
                format!("{a}:6"),
                format!("{b}:2")
            ]
        );
        assert_eq!(s.duplicates, 1, "a:5 came both ways");
        // afterwards: live, duplicates dropped
        assert_eq!(sent(s.step(ev(a, 6))), Vec::<String>::new());
        assert_eq!(sent(s.step(ev(a, 7))), vec![format!("{a}:7")]);
        assert_eq!(sent(s.step(Out::Frame(Utf8Bytes::from("typing")))), vec!["typing".to_string()]);
    }

    #[test]
    fn holding_some_channels_lets_the_others_through_and_release_ends_it() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut s = Sequencer::default();
        s.step(Out::Hold(Some(Box::new(HashSet::from([a])))));
        assert!(sent(s.step(ev(a, 1))).is_empty());
        assert_eq!(sent(s.step(ev(b, 1))), vec![format!("{b}:1")]);
        assert_eq!(sent(s.step(Out::Release)), vec![format!("{a}:1")]);
        assert_eq!(sent(s.step(ev(a, 2))), vec![format!("{a}:2")]);
        // overflow when a resume never completes and events pile up
        s.step(Out::Hold(None));
        for i in 0..MAX_HELD as i64 {
            s.step(ev(a, 10 + i));
        }
        assert!(matches!(s.step(ev(a, 1_000_000)), Step::Overflow));
    }
}
