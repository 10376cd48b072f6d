//! Unread and mention counts without reading messages: each channel keeps a compact summary of
//! its newest messages ([`RecentActivity`]), which the timeline projector updates once per batch
//! and `GET /api/channels` reads for all of a user's channels in one call.
//!
//! The summary holds two windows, each of at most [`UNREAD_WINDOW`] entries:
//! - `messages`: the newest messages shown in the channel (top-level and replies also sent to
//!   it), so an unread count is exact up to the window and "99+" past it;
//! - `mentions`: the newest messages that mention anyone, so a mention is still counted after
//!   a hundred ordinary messages buried it.
//!
//! Entries carry no text, only who wrote the message and whom it names; an entry remembers at
//! most [`MAX_COUNTED_MENTIONS`] named users (a message naming more counts for those first).

use crate::event::{Event, Payload};
use crate::mentions;
use uuid::Uuid;

/// How many entries each window keeps (clients show "99+" past it).
pub const UNREAD_WINDOW: usize = 100;
/// Users named in one message that its entry remembers.
pub const MAX_COUNTED_MENTIONS: usize = 32;

/// One message as the counts need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEntry {
    pub seq: i64,
    pub message_id: Uuid,
    pub author: Uuid,
    /// Unix milliseconds (entries past the workspace's retention do not count).
    pub at: i64,
    /// `@channel`, `@everyone` or `@here`: everyone in the channel is mentioned.
    pub everyone: bool,
    pub named: Vec<Uuid>,
    pub deleted: bool,
}

impl ActivityEntry {
    fn mentions_anyone(&self) -> bool {
        self.everyone || !self.named.is_empty()
    }

    fn mentions(&self, user: &Uuid) -> bool {
        self.everyone || self.named.contains(user)
    }

    /// Unread to `reader` after `read_seq`, and not older than `since` (Unix ms).
    fn unread_to(&self, reader: &Uuid, read_seq: i64, since: i64) -> bool {
        self.seq > read_seq && self.author != *reader && !self.deleted && self.at >= since
    }
}

/// A channel's summary: the two windows, each ordered by seq, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentActivity {
    pub messages: Vec<ActivityEntry>,
    pub mentions: Vec<ActivityEntry>,
}

/// What a reader has not read: messages and mentions, each at most [`UNREAD_WINDOW`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnreadCounts {
    pub unread: usize,
    pub mentions: usize,
    /// The message window does not reach back to the reader's marker: there are at least
    /// `unread` unread messages (clients show "n+").
    pub more_unread: bool,
}

impl RecentActivity {
    /// Whether `event` changes a channel's summary (the projector reads and writes a summary
    /// only for channels with such events).
    pub fn is_affected_by(event: &Event) -> bool {
        matches!(
            event.payload,
            Payload::MessagePosted { .. } | Payload::MessageEdited { .. } | Payload::MessageDeleted { .. }
        )
    }

    /// Applies one event of the channel; idempotent (a replayed post replaces its own entry).
    pub fn apply(&mut self, event: &Event) {
        match &event.payload {
            Payload::MessagePosted { message_id, text, thread_ts, also_in_channel, .. } => {
                if thread_ts.is_some() && !also_in_channel {
                    return; // thread-only replies are not shown in the channel
                }
                let entry = entry_of(event.seq, *message_id, event.actor_id, event.occurred_at, text);
                if entry.mentions_anyone() {
                    upsert(&mut self.mentions, entry.clone());
                }
                upsert(&mut self.messages, entry);
            }
            Payload::MessageEdited { message_id, text } => self.edit(*message_id, text),
            Payload::MessageDeleted { message_id, .. } => {
                for entry in self.messages.iter_mut().chain(self.mentions.iter_mut()) {
                    if entry.message_id == *message_id {
                        entry.deleted = true;
                    }
                }
            }
            _ => {}
        }
    }

    /// An edit can add or remove mentions; the message keeps its place.
    fn edit(&mut self, message_id: Uuid, text: &str) {
        let Some(known) =
            self.messages.iter().chain(self.mentions.iter()).find(|e| e.message_id == message_id).cloned()
        else {
            return; // older than both windows
        };
        let edited =
            ActivityEntry { deleted: known.deleted, ..entry_of(known.seq, message_id, known.author, known.at, text) };
        if let Some(e) = self.messages.iter_mut().find(|e| e.message_id == message_id) {
            *e = edited.clone();
        }
        self.mentions.retain(|e| e.message_id != message_id);
        if edited.mentions_anyone() {
            upsert(&mut self.mentions, edited);
        }
    }

    /// What `reader`, having read up to `read_seq`, has not read of what was posted since
    /// `since` (Unix ms; 0 for no retention).
    pub fn counts(&self, reader: &Uuid, read_seq: i64, since: i64) -> UnreadCounts {
        let unread = self.messages.iter().filter(|e| e.unread_to(reader, read_seq, since)).count();
        let mentions =
            self.mentions.iter().filter(|e| e.unread_to(reader, read_seq, since) && e.mentions(reader)).count();
        let window_full = self.messages.len() >= UNREAD_WINDOW;
        let more_unread = window_full && self.messages.first().is_some_and(|oldest| oldest.seq > read_seq + 1);
        UnreadCounts { unread, mentions, more_unread }
    }

    /// The summary as stored: a version byte, then each window as a count and its entries.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![CODEC_VERSION];
        for window in [&self.messages, &self.mentions] {
            out.extend_from_slice(&(window.len() as u16).to_be_bytes());
            for e in window {
                out.extend_from_slice(&e.seq.to_be_bytes());
                out.extend_from_slice(e.message_id.as_bytes());
                out.extend_from_slice(e.author.as_bytes());
                out.extend_from_slice(&e.at.to_be_bytes());
                out.push(u8::from(e.everyone) | (u8::from(e.deleted) << 1));
                out.push(e.named.len() as u8);
                for u in &e.named {
                    out.extend_from_slice(u.as_bytes());
                }
            }
        }
        out
    }

    /// Reads what [`encode`](Self::encode) wrote; `None` if the bytes are not such a summary.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.take(1)?[0] != CODEC_VERSION {
            return None;
        }
        let messages = r.window()?;
        let mentions = r.window()?;
        r.0.is_empty().then_some(Self { messages, mentions })
    }
}

const CODEC_VERSION: u8 = 1;

fn entry_of(seq: i64, message_id: Uuid, author: Uuid, at: i64, text: &str) -> ActivityEntry {
    let parsed = mentions::parse(text);
    let mut named = parsed.users;
    named.truncate(MAX_COUNTED_MENTIONS);
    ActivityEntry { seq, message_id, author, at, everyone: parsed.channel || parsed.here, named, deleted: false }
}

/// Puts `entry` in `window` by seq (replacing an entry of the same message) and drops the
/// oldest past [`UNREAD_WINDOW`].
fn upsert(window: &mut Vec<ActivityEntry>, entry: ActivityEntry) {
    if let Some(existing) = window.iter_mut().find(|e| e.message_id == entry.message_id) {
        let deleted = existing.deleted;
        *existing = ActivityEntry { deleted, ..entry };
        return;
    }
    let at = window.partition_point(|e| e.seq < entry.seq);
    window.insert(at, entry);
    if window.len() > UNREAD_WINDOW {
        window.drain(..window.len() - UNREAD_WINDOW);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn uuid(&mut self) -> Option<Uuid> {
        Uuid::from_slice(self.take(16)?).ok()
    }

    fn window(&mut self) -> Option<Vec<ActivityEntry>> {
        let count = u16::from_be_bytes(self.take(2)?.try_into().ok()?) as usize;
        if count > UNREAD_WINDOW {
            return None;
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let (seq, message_id, author, at) = (self.i64()?, self.uuid()?, self.uuid()?, self.i64()?);
            let flags = self.take(1)?[0];
            let named_count = self.take(1)?[0] as usize;
            let named = (0..named_count).map(|_| self.uuid()).collect::<Option<Vec<_>>>()?;
            entries.push(ActivityEntry {
                seq,
                message_id,
                author,
                at,
                everyone: flags & 1 != 0,
                named,
                deleted: flags & 2 != 0,
            });
        }
        Some(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Payload;

    fn event(seq: i64, author: Uuid, payload: Payload) -> Event {
        Event {
            event_id: Uuid::new_v4(),
            workspace_id: Uuid::nil(),
            channel_id: Uuid::nil(),
            actor_id: author,
            occurred_at: 1_000 + seq,
            seq,
            schema_version: 4,
            payload,
            sealing: Default::default(),
        }
    }

    fn counts(unread: usize, mentions: usize) -> UnreadCounts {
        UnreadCounts { unread, mentions, more_unread: false }
    }

    fn post(seq: i64, author: Uuid, id: Uuid, text: &str) -> Event {
        event(
            seq,
            author,
            Payload::MessagePosted {
                message_id: id,
                client_msg_id: format!("c{seq}"),
                text: text.into(),
                thread_ts: None,
                also_in_channel: false,
                thread: None,
                attachments: vec![],
            },
        )
    }

    #[test]
    fn counts_others_messages_after_the_marker_and_mentions_of_the_reader() {
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let mut a = RecentActivity::default();
        a.apply(&post(1, alice, Uuid::new_v4(), "hello"));
        a.apply(&post(2, alice, Uuid::new_v4(), &format!("<@{bob}> look")));
        a.apply(&post(3, bob, Uuid::new_v4(), "mine"));
        a.apply(&post(4, alice, Uuid::new_v4(), "@here standup"));
        assert_eq!(a.counts(&bob, 1, 0), counts(2, 2));
        assert_eq!(a.counts(&alice, 0, 0), counts(1, 0));
        assert_eq!(a.counts(&bob, 4, 0), UnreadCounts::default());
        assert_eq!(a.counts(&bob, 0, 1_004), counts(1, 1), "older ones expired");
    }

    #[test]
    fn replays_deletes_and_edits() {
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let (m1, m2) = (Uuid::new_v4(), Uuid::new_v4());
        let mut a = RecentActivity::default();
        let first = post(1, alice, m1, "plain");
        a.apply(&first);
        a.apply(&post(2, alice, m2, &format!("<@{bob}>")));
        let before = a.clone();
        a.apply(&first);
        assert_eq!(a, before, "a replayed post changes nothing");
        a.apply(&event(3, alice, Payload::MessageEdited { message_id: m1, text: format!("now <@{bob}>") }));
        assert_eq!(a.counts(&bob, 0, 0), counts(2, 2), "an edit adds a mention");
        a.apply(&event(4, alice, Payload::MessageDeleted { message_id: m2, file_ids: vec![] }));
        assert_eq!(a.counts(&bob, 0, 0), counts(1, 1));
        a.apply(&event(5, alice, Payload::MessageEdited { message_id: m1, text: "never mind".into() }));
        assert_eq!(a.counts(&bob, 0, 0), counts(1, 0), "an edit removes it");
        assert_eq!(a.mentions.len(), 1, "only the deleted mention is left in the mention window");
    }

    #[test]
    fn windows_are_bounded_and_a_mention_outlives_a_flood() {
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let mut a = RecentActivity::default();
        a.apply(&post(1, alice, Uuid::new_v4(), &format!("<@{bob}> first")));
        for seq in 2..300 {
            a.apply(&post(seq, alice, Uuid::new_v4(), "noise"));
        }
        assert_eq!(a.messages.len(), UNREAD_WINDOW);
        assert_eq!(a.messages[0].seq, 200, "the oldest dropped first");
        assert_eq!(a.counts(&bob, 0, 0), UnreadCounts { more_unread: true, ..counts(UNREAD_WINDOW, 1) });
        assert_eq!(a.counts(&bob, 199, 0), counts(UNREAD_WINDOW, 0), "the window reaches the marker");
        for seq in 300..450 {
            a.apply(&post(seq, alice, Uuid::new_v4(), "@channel"));
        }
        assert_eq!(a.mentions.len(), UNREAD_WINDOW);
    }

    #[test]
    fn thread_only_replies_do_not_count() {
        let (alice, bob, parent) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut reply = post(2, alice, Uuid::new_v4(), &format!("<@{bob}>"));
        if let Payload::MessagePosted { thread_ts, .. } = &mut reply.payload {
            *thread_ts = Some(parent);
        }
        let mut a = RecentActivity::default();
        a.apply(&reply);
        assert_eq!(a, RecentActivity::default());
    }

    #[test]
    fn round_trips_and_refuses_garbage() {
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let mut a = RecentActivity::default();
        for seq in 1..150 {
            a.apply(&post(seq, alice, Uuid::new_v4(), &format!("<@{bob}> <@{}> {seq}", Uuid::new_v4())));
        }
        a.apply(&event(150, alice, Payload::MessageDeleted { message_id: a.messages[3].message_id, file_ids: vec![] }));
        let bytes = a.encode();
        assert_eq!(RecentActivity::decode(&bytes), Some(a));
        assert_eq!(RecentActivity::decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(RecentActivity::decode(&[]), None);
        assert_eq!(RecentActivity::decode(&[9, 0, 0, 0, 0]), None);
        assert_eq!(RecentActivity::decode(&[CODEC_VERSION, 0xff, 0xff]), None, "more entries than a window holds");
    }
}
