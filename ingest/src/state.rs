//! The state ingest keeps per partition (each stream's members, last seq, messages, files and
//! dedup table), rebuilt from the log by [`PartitionState::apply`]. No I/O here; the decisions
//! are in `rules`.

use confab_core::event::{ChannelKind, Event, Payload, ThreadState};
use confab_core::files::Attachment;
use confab_core::timeuuid_millis;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Posted {
    pub message_id: Uuid,
    pub seq: i64,
    pub ts: i64,
}

/// What the sequencer must know of a message to judge edits, deletes, reactions, pins and
/// thread replies.
#[derive(Debug, Default, Clone)]
pub struct MessageState {
    pub author: Uuid,
    pub deleted: bool,
    pub pinned: bool,
    /// Set on thread replies: the parent.
    pub thread_ts: Option<Uuid>,
    /// On parents: the thread so far.
    pub thread: ThreadState,
    pub reactions: BTreeMap<String, BTreeSet<Uuid>>,
    /// The files it carries (deleted with it).
    pub files: Vec<Uuid>,
    /// The data key its current text is sealed under: the id of the event that wrote that
    /// version (destroyed when the text is replaced or the message deleted).
    pub text_key: Uuid,
}

/// A file shared in a channel, as far as attaching and deleting it goes.
#[derive(Debug, Clone)]
pub struct FileState {
    pub file: Attachment,
    pub uploader: Uuid,
    pub deleted: bool,
    /// The message carrying it: a file is attached once (deleting that message deletes it).
    pub message: Option<Uuid>,
}

#[derive(Debug, Clone)]
pub struct ChannelState {
    /// message_id -> state (unbounded for now, like the dedup table).
    pub messages: HashMap<Uuid, MessageState>,
    pub kind: ChannelKind,
    pub archived: bool,
    pub created_by: Uuid,
    pub members: HashSet<Uuid>,
    pub last_seq: i64,
    pub last_ms: i64,
    /// (sender, client_msg_id) -> the message it produced. Unbounded for now (see docs/architecture.md).
    pub sent: HashMap<(Uuid, String), Posted>,
    /// A user's own stream (read markers) or a workspace's audit stream: not a conversation.
    pub user_stream: bool,
    /// Files shared in the channel (unbounded for now, like messages).
    pub files: HashMap<Uuid, FileState>,
}

impl Default for ChannelState {
    fn default() -> Self {
        Self {
            messages: HashMap::new(),
            kind: ChannelKind::Public,
            archived: false,
            created_by: Uuid::nil(),
            members: HashSet::new(),
            last_seq: 0,
            last_ms: 0,
            sent: HashMap::new(),
            user_stream: false,
            files: HashMap::new(),
        }
    }
}

/// The state of every channel of one partition.
#[derive(Debug, Default)]
pub struct PartitionState {
    pub channels: HashMap<(Uuid, Uuid), ChannelState>,
}

impl PartitionState {
    /// Applies an event from the log (used when loading and after deciding).
    pub fn apply(&mut self, e: &Event) {
        let key = (e.workspace_id, e.stream_id());
        let ch = self.channels.entry(key).or_default();
        match &e.payload {
            Payload::ChannelCreated { kind, members, .. } => {
                ch.kind = *kind;
                ch.created_by = e.actor_id;
                ch.members.extend(members.iter().copied());
            }
            Payload::MemberJoined { user_id } => {
                ch.members.insert(*user_id);
            }
            Payload::MemberLeft { user_id } => {
                ch.members.remove(user_id);
            }
            Payload::ChannelRenamed { .. } => {}
            Payload::ChannelArchived { archived } => ch.archived = *archived,
            Payload::MessagePosted { message_id, client_msg_id, thread_ts, thread, attachments, .. } => {
                let ts = timeuuid_millis(message_id).unwrap_or(e.occurred_at);
                ch.sent.insert((e.actor_id, client_msg_id.clone()), Posted { message_id: *message_id, seq: e.seq, ts });
                let files: Vec<Uuid> = attachments.iter().map(|a| a.file_id).collect();
                for f in &files {
                    if let Some(f) = ch.files.get_mut(f) {
                        f.message = Some(*message_id);
                    }
                }
                ch.messages.insert(
                    *message_id,
                    MessageState {
                        author: e.actor_id,
                        thread_ts: *thread_ts,
                        files,
                        text_key: e.event_id,
                        ..Default::default()
                    },
                );
                if let (Some(parent), Some(t)) = (thread_ts, thread) {
                    if let Some(p) = ch.messages.get_mut(parent) {
                        p.thread = t.clone();
                    }
                }
            }
            Payload::MessageEdited { message_id, .. } => {
                if let Some(m) = ch.messages.get_mut(message_id) {
                    m.text_key = e.event_id;
                }
            }
            Payload::MessageDeleted { message_id, file_ids } => {
                if let Some(m) = ch.messages.get_mut(message_id) {
                    m.deleted = true;
                    m.pinned = false;
                    m.reactions.clear();
                }
                for f in file_ids {
                    if let Some(f) = ch.files.get_mut(f) {
                        f.deleted = true;
                    }
                }
            }
            Payload::FileShared { file } => {
                ch.files.entry(file.file_id).or_insert(FileState {
                    file: file.clone(),
                    uploader: e.actor_id,
                    deleted: false,
                    message: None,
                });
            }
            Payload::FileDeleted { file_id } => {
                if let Some(f) = ch.files.get_mut(file_id) {
                    f.deleted = true;
                }
            }
            Payload::ReactionChanged { message_id, emoji, users, .. } => {
                if let Some(m) = ch.messages.get_mut(message_id) {
                    if users.is_empty() {
                        m.reactions.remove(emoji);
                    } else {
                        m.reactions.insert(emoji.clone(), users.iter().copied().collect());
                    }
                }
            }
            Payload::MessagePinned { message_id, pinned } => {
                if let Some(m) = ch.messages.get_mut(message_id) {
                    m.pinned = *pinned;
                }
            }
            Payload::ReadMarked { .. } | Payload::AdminActed { .. } => ch.user_stream = true,
        }
        ch.last_seq = ch.last_seq.max(e.seq);
        ch.last_ms = ch.last_ms.max(e.occurred_at);
    }
}
