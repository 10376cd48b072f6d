//! Channel state owned by the sequencer, and the decision for each command. No I/O here.

use confab_core::avro::SCHEMA_VERSION;
use confab_core::command::{dm_channel_id, Command, CommandBody, Outcome};
use confab_core::event::{ChannelKind, Event, Payload, ThreadState};
use confab_core::files::Attachment;
use confab_core::ids::{timeuuid_millis, TimeUuidGen};
use confab_core::protocol::{
    validate_channel_name, validate_client_msg_id, validate_emoji, validate_message, validate_text, ErrorCode,
    MAX_GROUP_DM, MAX_REACTIONS_PER_MESSAGE,
};
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
    /// A user's own stream (read markers), not a conversation.
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

const NOT_FOUND: (ErrorCode, &str) = (ErrorCode::ChannelNotFound, "no such channel in your workspace");

impl PartitionState {
    /// Applies an event from the log (used when loading and after deciding).
    pub fn apply(&mut self, e: &Event) {
        let key = (e.workspace_id, e.channel_id);
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
                    MessageState { author: e.actor_id, thread_ts: *thread_ts, files, ..Default::default() },
                );
                if let (Some(parent), Some(t)) = (thread_ts, thread) {
                    if let Some(p) = ch.messages.get_mut(parent) {
                        p.thread = t.clone();
                    }
                }
            }
            Payload::MessageEdited { .. } => {}
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
            Payload::ReadMarked { .. } => ch.user_stream = true,
        }
        ch.last_seq = ch.last_seq.max(e.seq);
        ch.last_ms = ch.last_ms.max(e.occurred_at);
    }

    /// The channel, if it exists in the command's workspace and `user` is a member. A private
    /// channel a stranger asks about is reported as missing, so its existence does not leak.
    fn member_channel(&self, key: &(Uuid, Uuid), user: &Uuid) -> Result<&ChannelState, (ErrorCode, &'static str)> {
        let ch = self.channels.get(key).filter(|c| !c.user_stream && c.created_by != Uuid::nil()).ok_or(NOT_FOUND)?;
        if ch.members.contains(user) {
            Ok(ch)
        } else if ch.kind.is_private() {
            Err(NOT_FOUND)
        } else {
            Err((ErrorCode::NotAMember, "join the channel first"))
        }
    }

    /// A member's channel that is not archived (anything that adds to it).
    fn writable_channel(&self, key: &(Uuid, Uuid), user: &Uuid) -> Result<&ChannelState, (ErrorCode, &'static str)> {
        let ch = self.member_channel(key, user)?;
        if ch.archived {
            return Err((ErrorCode::ChannelArchived, "the channel is archived; unarchive it first"));
        }
        Ok(ch)
    }

    /// Decides a command: the event to append (if any) and the outcome for the sender. The
    /// event, if any, is already applied to the state.
    pub fn decide(&mut self, cmd: &Command, ids: &TimeUuidGen, now_ms: i64) -> (Option<Event>, Outcome) {
        match self.judge(cmd, ids, now_ms) {
            Err((code, message)) => (None, Outcome::Rejected { code, message }),
            Ok(Decision::Nothing(seq)) => (None, Outcome::Done { seq }),
            Ok(Decision::Duplicate(p)) => {
                (None, Outcome::Posted { message_id: p.message_id, seq: p.seq, ts: p.ts, duplicate: true })
            }
            Ok(Decision::Append(payload)) => {
                let key = (cmd.workspace_id, cmd.channel_id);
                let ch = self.channels.get(&key);
                let seq = ch.map(|c| c.last_seq).unwrap_or(0) + 1;
                let occurred_at = match &payload {
                    Payload::MessagePosted { message_id, .. } => timeuuid_millis(message_id).unwrap_or(now_ms),
                    _ => now_ms.max(ch.map(|c| c.last_ms).unwrap_or(0)),
                };
                let e = Event {
                    event_id: Uuid::new_v4(),
                    workspace_id: cmd.workspace_id,
                    channel_id: cmd.channel_id,
                    actor_id: cmd.user_id,
                    occurred_at,
                    seq,
                    schema_version: SCHEMA_VERSION,
                    payload,
                };
                self.apply(&e);
                let outcome = match &e.payload {
                    Payload::MessagePosted { message_id, .. } => {
                        Outcome::Posted { message_id: *message_id, seq, ts: occurred_at, duplicate: false }
                    }
                    _ => Outcome::Done { seq },
                };
                (Some(e), outcome)
            }
        }
    }

    fn judge(&self, cmd: &Command, ids: &TimeUuidGen, _now_ms: i64) -> Result<Decision, (ErrorCode, String)> {
        let key = (cmd.workspace_id, cmd.channel_id);
        let err = |(code, m): (ErrorCode, &str)| (code, m.to_string());
        let user = cmd.user_id;
        match &cmd.body {
            CommandBody::CreateChannel { name, channel_kind, members } => {
                let mut members: Vec<Uuid> = members.clone();
                members.push(user);
                members.sort();
                members.dedup();
                if let Some(existing) = self.channels.get(&key) {
                    // opening the same DM again finds it
                    if channel_kind.is_direct() && existing.kind == *channel_kind && existing.members.contains(&user) {
                        return Ok(Decision::Nothing(existing.last_seq));
                    }
                    return Err((ErrorCode::Conflict, "a channel with this id already exists".into()));
                }
                validate_channel_name(name).map_err(|m| (ErrorCode::InvalidField, m))?;
                if channel_kind.is_direct() {
                    let want = if members.len() == 2 { ChannelKind::Dm } else { ChannelKind::GroupDm };
                    if members.len() < 2 || members.len() > MAX_GROUP_DM || want != *channel_kind {
                        return Err((
                            ErrorCode::InvalidField,
                            format!("a direct message is 2..={MAX_GROUP_DM} people, you included"),
                        ));
                    }
                    if cmd.channel_id != dm_channel_id(&cmd.workspace_id, &members) {
                        return Err((
                            ErrorCode::InvalidField,
                            "a direct message's id is derived from its members".into(),
                        ));
                    }
                }
                Ok(Decision::Append(Payload::ChannelCreated { name: name.clone(), kind: *channel_kind, members }))
            }
            CommandBody::JoinChannel => {
                let ch = self.channels.get(&key).filter(|c| !c.user_stream).ok_or_else(|| err(NOT_FOUND))?;
                if ch.members.contains(&user) {
                    return Ok(Decision::Nothing(ch.last_seq));
                }
                if ch.kind.is_private() {
                    // private channels are invisible to non-members: same answer as a missing one
                    return Err(err(NOT_FOUND));
                }
                if ch.archived {
                    return Err((ErrorCode::ChannelArchived, "the channel is archived".into()));
                }
                Ok(Decision::Append(Payload::MemberJoined { user_id: user }))
            }
            CommandBody::LeaveChannel => {
                let ch = self.member_channel(&key, &user).map_err(err)?;
                if ch.kind.is_direct() {
                    return Err((ErrorCode::Forbidden, "the members of a direct message are fixed".into()));
                }
                Ok(Decision::Append(Payload::MemberLeft { user_id: user }))
            }
            CommandBody::Invite { user_id } | CommandBody::Kick { user_id } => {
                let ch = self.writable_channel(&key, &user).map_err(err)?;
                if ch.kind.is_direct() {
                    return Err((ErrorCode::Forbidden, "the members of a direct message are fixed".into()));
                }
                if matches!(cmd.body, CommandBody::Invite { .. }) {
                    if ch.members.contains(user_id) {
                        return Ok(Decision::Nothing(ch.last_seq));
                    }
                    return Ok(Decision::Append(Payload::MemberJoined { user_id: *user_id }));
                }
                if ch.created_by != user {
                    return Err((ErrorCode::Forbidden, "only the channel's creator can remove people".into()));
                }
                if *user_id == user {
                    return Err((ErrorCode::InvalidField, "to remove yourself, leave the channel".into()));
                }
                if !ch.members.contains(user_id) {
                    return Ok(Decision::Nothing(ch.last_seq));
                }
                Ok(Decision::Append(Payload::MemberLeft { user_id: *user_id }))
            }
            CommandBody::RenameChannel { name } => {
                let ch = self.writable_channel(&key, &user).map_err(err)?;
                if ch.kind.is_direct() {
                    return Err((ErrorCode::Forbidden, "direct messages have no name to change".into()));
                }
                validate_channel_name(name).map_err(|m| (ErrorCode::InvalidField, m))?;
                Ok(Decision::Append(Payload::ChannelRenamed { name: name.clone() }))
            }
            CommandBody::ArchiveChannel { archived } => {
                let ch = self.member_channel(&key, &user).map_err(err)?;
                if ch.kind.is_direct() {
                    return Err((ErrorCode::Forbidden, "direct messages cannot be archived".into()));
                }
                if ch.archived == *archived {
                    return Ok(Decision::Nothing(ch.last_seq));
                }
                Ok(Decision::Append(Payload::ChannelArchived { archived: *archived }))
            }
            CommandBody::MarkRead { channel_id, seq } => {
                // the user's own stream: key (workspace, user); the target need not be checked
                // here (markers of channels one cannot read are never shown)
                if cmd.channel_id != user {
                    return Err((ErrorCode::InvalidField, "read markers go to the user's own stream".into()));
                }
                if *seq < 0 {
                    return Err((ErrorCode::InvalidField, "seq must not be negative".into()));
                }
                Ok(Decision::Append(Payload::ReadMarked { channel_id: *channel_id, seq: *seq }))
            }
            CommandBody::EditMessage { message_id, .. }
            | CommandBody::DeleteMessage { message_id }
            | CommandBody::React { message_id, .. }
            | CommandBody::Pin { message_id, .. } => {
                let ch = self.writable_channel(&key, &user).map_err(err)?;
                let msg = ch
                    .messages
                    .get(message_id)
                    .ok_or((ErrorCode::MessageNotFound, "no such message in this channel".to_string()))?;
                match &cmd.body {
                    CommandBody::DeleteMessage { .. } if msg.deleted => Ok(Decision::Nothing(ch.last_seq)),
                    _ if msg.deleted => Err((ErrorCode::MessageDeleted, "the message was deleted".into())),
                    CommandBody::EditMessage { .. } | CommandBody::DeleteMessage { .. } if msg.author != user => {
                        Err((ErrorCode::Forbidden, "you can only change your own messages".into()))
                    }
                    CommandBody::EditMessage { text, .. } => {
                        validate_text(text)?;
                        Ok(Decision::Append(Payload::MessageEdited { message_id: *message_id, text: text.clone() }))
                    }
                    CommandBody::DeleteMessage { .. } => {
                        // the files it carries go with it (unless already deleted)
                        let file_ids =
                            msg.files.iter().filter(|f| ch.files.get(f).is_some_and(|s| !s.deleted)).copied().collect();
                        Ok(Decision::Append(Payload::MessageDeleted { message_id: *message_id, file_ids }))
                    }
                    CommandBody::Pin { pinned, .. } => {
                        if msg.pinned == *pinned {
                            return Ok(Decision::Nothing(ch.last_seq));
                        }
                        Ok(Decision::Append(Payload::MessagePinned { message_id: *message_id, pinned: *pinned }))
                    }
                    CommandBody::React { emoji, add, .. } => {
                        validate_emoji(emoji).map_err(|m| (ErrorCode::InvalidField, m))?;
                        let mut users = msg.reactions.get(emoji).cloned().unwrap_or_default();
                        let changed = if *add { users.insert(user) } else { users.remove(&user) };
                        if !changed {
                            // already so: nothing to record (a retry, or a double click)
                            return Ok(Decision::Nothing(ch.last_seq));
                        }
                        if *add
                            && !msg.reactions.contains_key(emoji)
                            && msg.reactions.len() >= MAX_REACTIONS_PER_MESSAGE
                        {
                            return Err((
                                ErrorCode::TooManyReactions,
                                format!("a message takes at most {MAX_REACTIONS_PER_MESSAGE} different emoji"),
                            ));
                        }
                        Ok(Decision::Append(Payload::ReactionChanged {
                            message_id: *message_id,
                            emoji: emoji.clone(),
                            added: *add,
                            users: users.into_iter().collect(),
                        }))
                    }
                    _ => unreachable!("matched above"),
                }
            }
            CommandBody::ShareFile { file } => {
                let ch = self.writable_channel(&key, &user).map_err(err)?;
                match ch.files.get(&file.file_id) {
                    // a retried completion
                    Some(f) if f.uploader == user && f.file == *file => Ok(Decision::Nothing(ch.last_seq)),
                    Some(_) => Err((ErrorCode::Conflict, "a file with this id already exists".into())),
                    None => Ok(Decision::Append(Payload::FileShared { file: file.clone() })),
                }
            }
            CommandBody::DeleteFile { file_id } => {
                let ch = self.member_channel(&key, &user).map_err(err)?;
                let f = ch
                    .files
                    .get(file_id)
                    .ok_or((ErrorCode::FileNotFound, "no such file in this channel".to_string()))?;
                if f.uploader != user {
                    return Err((ErrorCode::Forbidden, "only the uploader can delete a file".into()));
                }
                if f.deleted {
                    return Ok(Decision::Nothing(ch.last_seq));
                }
                Ok(Decision::Append(Payload::FileDeleted { file_id: *file_id }))
            }
            CommandBody::SendMessage { text, client_msg_id, thread_ts, also_in_channel, file_ids } => {
                let ch = self.writable_channel(&key, &user).map_err(err)?;
                if let Some(p) = ch.sent.get(&(user, client_msg_id.clone())) {
                    return Ok(Decision::Duplicate(*p));
                }
                validate_client_msg_id(client_msg_id).map_err(|m| (ErrorCode::InvalidField, m))?;
                validate_message(text, file_ids)?;
                let mut attachments = Vec::with_capacity(file_ids.len());
                for id in file_ids {
                    match ch.files.get(id) {
                        Some(f) if f.deleted => return Err((ErrorCode::FileDeleted, format!("file {id} was deleted"))),
                        Some(f) if f.message.is_some() => {
                            return Err((ErrorCode::Conflict, format!("file {id} is already attached to a message")))
                        }
                        Some(f) => attachments.push(f.file.clone()),
                        None => {
                            return Err((ErrorCode::FileNotFound, format!("file {id} is not shared in this channel")))
                        }
                    }
                }
                let message_id = ids.next(ch.last_ms);
                let (thread_ts, thread) = match thread_ts {
                    None => (None, None),
                    Some(parent) => {
                        let p = ch.messages.get(parent).ok_or((
                            ErrorCode::MessageNotFound,
                            "no such parent message in this channel".to_string(),
                        ))?;
                        // a reply to a reply joins the root's thread, as Slack does
                        let root = p.thread_ts.unwrap_or(*parent);
                        let r = ch.messages.get(&root).ok_or((
                            ErrorCode::MessageNotFound,
                            "no such parent message in this channel".to_string(),
                        ))?;
                        if r.deleted {
                            return Err((ErrorCode::MessageDeleted, "the thread's parent was deleted".into()));
                        }
                        let mut t = r.thread.clone();
                        t.reply_count += 1;
                        if !t.reply_users.contains(&user) {
                            t.reply_users.push(user);
                        }
                        (Some(root), Some(t))
                    }
                };
                let also_in_channel = thread_ts.is_some() && *also_in_channel;
                Ok(Decision::Append(Payload::MessagePosted {
                    message_id,
                    client_msg_id: client_msg_id.clone(),
                    text: text.clone(),
                    thread_ts,
                    also_in_channel,
                    thread,
                    attachments,
                }))
            }
        }
    }
}

enum Decision {
    /// Already so: no event (the outcome carries the channel's current seq).
    Nothing(i64),
    Duplicate(Posted),
    Append(Payload),
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_core::command::ReplyTo;

    fn cmd(ws: Uuid, ch: Uuid, user: Uuid, body: CommandBody) -> Command {
        Command {
            command_id: Uuid::new_v4(),
            workspace_id: ws,
            user_id: user,
            channel_id: ch,
            reply_to: ReplyTo { gateway_id: "g".into(), conn_id: 1 },
            issued_at: 0,
            client_msg_id: None,
            body,
        }
    }

    fn send(text: &str, id: &str) -> CommandBody {
        CommandBody::SendMessage {
            text: text.into(),
            client_msg_id: id.into(),
            thread_ts: None,
            also_in_channel: false,
            file_ids: vec![],
        }
    }

    #[test]
    fn files_are_shared_attached_and_revoked_in_their_channel() {
        let (ws, ch, other, alice, bob) =
            (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ids = TimeUuidGen::new();
        let mut st = PartitionState::default();
        for c in [ch, other] {
            let create =
                CommandBody::CreateChannel { name: "c".into(), channel_kind: ChannelKind::Public, members: vec![bob] };
            st.decide(&cmd(ws, c, alice, create), &ids, 1);
        }
        let file =
            Attachment { file_id: Uuid::new_v4(), name: "a.png".into(), size: 3, content_type: "image/png".into() };
        let share = CommandBody::ShareFile { file: file.clone() };
        let (e, _) = st.decide(&cmd(ws, ch, alice, share.clone()), &ids, 2);
        assert_eq!(e.unwrap().payload, Payload::FileShared { file: file.clone() });
        // a retried completion records nothing; the same id for another file is a conflict
        let (e, o) = st.decide(&cmd(ws, ch, alice, share), &ids, 3);
        assert!(e.is_none() && matches!(o, Outcome::Done { .. }));
        let clash = CommandBody::ShareFile { file: Attachment { name: "b.png".into(), ..file.clone() } };
        assert!(matches!(
            st.decide(&cmd(ws, ch, alice, clash), &ids, 3).1,
            Outcome::Rejected { code: ErrorCode::Conflict, .. }
        ));
        let with = |f: Vec<Uuid>, id: &str| CommandBody::SendMessage {
            text: String::new(),
            client_msg_id: id.into(),
            thread_ts: None,
            also_in_channel: false,
            file_ids: f,
        };
        // only files shared in the same channel attach
        let (e, o) = st.decide(&cmd(ws, other, alice, with(vec![file.file_id], "x")), &ids, 4);
        assert!(e.is_none() && matches!(o, Outcome::Rejected { code: ErrorCode::FileNotFound, .. }));
        let (e, _) = st.decide(&cmd(ws, ch, bob, with(vec![file.file_id], "m")), &ids, 5);
        let Some(Event { payload: Payload::MessagePosted { message_id, attachments, .. }, .. }) = e else {
            panic!("posted")
        };
        assert_eq!(attachments, vec![file.clone()]);
        // a file is attached once: deleting its message deletes it
        let (e, o) = st.decide(&cmd(ws, ch, alice, with(vec![file.file_id], "again")), &ids, 5);
        assert!(e.is_none() && matches!(o, Outcome::Rejected { code: ErrorCode::Conflict, .. }), "{o:?}");
        // deleting the message takes its files along; they no longer attach
        let (e, _) = st.decide(&cmd(ws, ch, bob, CommandBody::DeleteMessage { message_id }), &ids, 6);
        assert_eq!(e.unwrap().payload, Payload::MessageDeleted { message_id, file_ids: vec![file.file_id] });
        let (_, o) = st.decide(&cmd(ws, ch, alice, with(vec![file.file_id], "y")), &ids, 7);
        assert!(matches!(o, Outcome::Rejected { code: ErrorCode::FileDeleted, .. }), "{o:?}");
        // a file is deleted by its uploader only, once
        let f2 = Attachment { file_id: Uuid::new_v4(), ..file };
        st.decide(&cmd(ws, ch, alice, CommandBody::ShareFile { file: f2.clone() }), &ids, 8);
        let del = CommandBody::DeleteFile { file_id: f2.file_id };
        assert!(matches!(
            st.decide(&cmd(ws, ch, bob, del.clone()), &ids, 9).1,
            Outcome::Rejected { code: ErrorCode::Forbidden, .. }
        ));
        assert_eq!(
            st.decide(&cmd(ws, ch, alice, del.clone()), &ids, 9).0.unwrap().payload,
            Payload::FileDeleted { file_id: f2.file_id }
        );
        assert!(st.decide(&cmd(ws, ch, alice, del), &ids, 10).0.is_none());
    }

    #[test]
    fn sequencing_dedup_and_authorization() {
        let (ws, ch, alice, bob, eve) =
            (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ids = TimeUuidGen::new();
        let mut st = PartitionState::default();
        let create = CommandBody::CreateChannel {
            name: "general".into(),
            channel_kind: ChannelKind::Public,
            members: vec![bob],
        };
        let (e, o) = st.decide(&cmd(ws, ch, alice, create), &ids, 1);
        assert_eq!(e.unwrap().seq, 1);
        assert_eq!(o, Outcome::Done { seq: 1 });

        let (e1, o1) = st.decide(&cmd(ws, ch, alice, send("hi", "c1")), &ids, 2);
        let (e2, _) = st.decide(&cmd(ws, ch, bob, send("yo", "c1")), &ids, 3);
        assert_eq!((e1.as_ref().unwrap().seq, e2.as_ref().unwrap().seq), (2, 3));
        // a retry gets the original ids and no event
        let (dup, o_dup) = st.decide(&cmd(ws, ch, alice, send("hi", "c1")), &ids, 4);
        assert!(dup.is_none());
        match (o1, o_dup) {
            (
                Outcome::Posted { message_id: a, seq: s1, .. },
                Outcome::Posted { message_id: b, seq: s2, duplicate: true, .. },
            ) => {
                assert_eq!((a, s1), (b, s2))
            }
            other => panic!("{other:?}"),
        }
        // non-member, foreign workspace, bad text
        let (e, o) = st.decide(&cmd(ws, ch, eve, send("x", "c9")), &ids, 5);
        assert!(e.is_none() && matches!(o, Outcome::Rejected { code: ErrorCode::NotAMember, .. }));
        let (e, o) = st.decide(&cmd(Uuid::new_v4(), ch, alice, send("x", "c8")), &ids, 5);
        assert!(e.is_none() && matches!(o, Outcome::Rejected { code: ErrorCode::ChannelNotFound, .. }));
        let long = "x".repeat(confab_core::protocol::MAX_TEXT_CHARS + 1);
        let (e, o) = st.decide(&cmd(ws, ch, alice, send(&long, "c7")), &ids, 5);
        assert!(e.is_none() && matches!(o, Outcome::Rejected { code: ErrorCode::TextTooLong, .. }));
        // join then post; seq stays gap-free
        let (j, _) = st.decide(&cmd(ws, ch, eve, CommandBody::JoinChannel), &ids, 6);
        assert_eq!(j.unwrap().seq, 4);
        let (e, _) = st.decide(&cmd(ws, ch, eve, send("hello", "c9")), &ids, 7);
        assert_eq!(e.unwrap().seq, 5);
    }

    #[test]
    fn state_rebuilt_from_events_decides_the_same() {
        let (ws, ch, alice) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ids = TimeUuidGen::new();
        let mut st = PartitionState::default();
        let mut log = vec![];
        let create =
            CommandBody::CreateChannel { name: "c".into(), channel_kind: ChannelKind::Private, members: vec![] };
        log.extend(st.decide(&cmd(ws, ch, alice, create), &ids, 1).0);
        log.extend(st.decide(&cmd(ws, ch, alice, send("a", "k1")), &ids, 2).0);
        let mut rebuilt = PartitionState::default();
        for e in &log {
            rebuilt.apply(e);
        }
        let (e, o) = rebuilt.decide(&cmd(ws, ch, alice, send("a", "k1")), &ids, 3);
        assert!(e.is_none() && matches!(o, Outcome::Posted { seq: 2, duplicate: true, .. }));
        let (e, _) = rebuilt.decide(&cmd(ws, ch, alice, send("b", "k2")), &ids, 3);
        assert_eq!(e.unwrap().seq, 3);
        // private channel: a stranger cannot learn it exists
        let (_, o) = rebuilt.decide(&cmd(ws, ch, Uuid::new_v4(), CommandBody::JoinChannel), &ids, 4);
        assert!(matches!(o, Outcome::Rejected { code: ErrorCode::ChannelNotFound, .. }));
    }
}

#[cfg(test)]
mod edit_tests {
    use super::*;
    use confab_core::command::ReplyTo;

    fn cmd(ws: Uuid, ch: Uuid, user: Uuid, body: CommandBody) -> Command {
        Command {
            command_id: Uuid::new_v4(),
            workspace_id: ws,
            user_id: user,
            channel_id: ch,
            reply_to: ReplyTo { gateway_id: "g".into(), conn_id: 1 },
            issued_at: 0,
            client_msg_id: None,
            body,
        }
    }

    #[test]
    fn edits_deletes_and_reactions_follow_the_rules() {
        let (ws, ch, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ids = TimeUuidGen::new();
        let mut st = PartitionState::default();
        st.decide(
            &cmd(
                ws,
                ch,
                alice,
                CommandBody::CreateChannel { name: "c".into(), channel_kind: ChannelKind::Public, members: vec![bob] },
            ),
            &ids,
            1,
        );
        let (e, _) = st.decide(
            &cmd(
                ws,
                ch,
                alice,
                CommandBody::SendMessage {
                    text: "hi".into(),
                    client_msg_id: "k".into(),
                    thread_ts: None,
                    also_in_channel: false,
                    file_ids: vec![],
                },
            ),
            &ids,
            2,
        );
        let Payload::MessagePosted { message_id: m, .. } = e.unwrap().payload else { panic!() };
        let code = |o: Outcome| match o {
            Outcome::Rejected { code, .. } => Some(code),
            _ => None,
        };
        // only the author edits
        let (e, o) =
            st.decide(&cmd(ws, ch, bob, CommandBody::EditMessage { message_id: m, text: "x".into() }), &ids, 3);
        assert!(e.is_none() && code(o) == Some(ErrorCode::Forbidden));
        let (e, _) =
            st.decide(&cmd(ws, ch, alice, CommandBody::EditMessage { message_id: m, text: "hi!".into() }), &ids, 3);
        assert_eq!(e.unwrap().seq, 3);
        // reactions: set semantics, a repeat is a no-op
        let react = |u, add| cmd(ws, ch, u, CommandBody::React { message_id: m, emoji: "tada".into(), add });
        let (e, _) = st.decide(&react(bob, true), &ids, 4);
        assert!(
            matches!(e.unwrap().payload, Payload::ReactionChanged { ref users, added: true, .. } if users == &vec![bob])
        );
        let (e, o) = st.decide(&react(bob, true), &ids, 5);
        assert!(e.is_none() && matches!(o, Outcome::Done { .. }));
        let (e, _) = st.decide(&react(alice, true), &ids, 5);
        assert!(matches!(e.unwrap().payload, Payload::ReactionChanged { ref users, .. } if users.len() == 2));
        // too many distinct emoji
        for i in 1..MAX_REACTIONS_PER_MESSAGE {
            let (e, _) = st.decide(
                &cmd(ws, ch, bob, CommandBody::React { message_id: m, emoji: format!("e{i}"), add: true }),
                &ids,
                6,
            );
            assert!(e.is_some());
        }
        let (e, o) = st.decide(
            &cmd(ws, ch, bob, CommandBody::React { message_id: m, emoji: "one-more".into(), add: true }),
            &ids,
            7,
        );
        assert!(e.is_none() && code(o) == Some(ErrorCode::TooManyReactions));
        // delete: author only, then nothing touches it; deleting again is a no-op
        let (e, o) = st.decide(&cmd(ws, ch, bob, CommandBody::DeleteMessage { message_id: m }), &ids, 8);
        assert!(e.is_none() && code(o) == Some(ErrorCode::Forbidden));
        let (e, _) = st.decide(&cmd(ws, ch, alice, CommandBody::DeleteMessage { message_id: m }), &ids, 8);
        assert!(matches!(e.unwrap().payload, Payload::MessageDeleted { .. }));
        let (e, o) = st.decide(&react(bob, true), &ids, 9);
        assert!(e.is_none() && code(o) == Some(ErrorCode::MessageDeleted));
        let (e, o) =
            st.decide(&cmd(ws, ch, alice, CommandBody::EditMessage { message_id: m, text: "back".into() }), &ids, 9);
        assert!(e.is_none() && code(o) == Some(ErrorCode::MessageDeleted));
        let (e, o) = st.decide(&cmd(ws, ch, alice, CommandBody::DeleteMessage { message_id: m }), &ids, 9);
        assert!(e.is_none() && matches!(o, Outcome::Done { .. }));
        let (e, o) = st.decide(
            &cmd(ws, ch, alice, CommandBody::EditMessage { message_id: Uuid::new_v4(), text: "?".into() }),
            &ids,
            9,
        );
        assert!(e.is_none() && code(o) == Some(ErrorCode::MessageNotFound));
    }
}

#[cfg(test)]
mod channel_tests {
    use super::*;
    use confab_core::command::ReplyTo;

    fn cmd(ws: Uuid, ch: Uuid, user: Uuid, body: CommandBody) -> Command {
        Command {
            command_id: Uuid::new_v4(),
            workspace_id: ws,
            user_id: user,
            channel_id: ch,
            reply_to: ReplyTo { gateway_id: "g".into(), conn_id: 1 },
            issued_at: 0,
            client_msg_id: None,
            body,
        }
    }

    fn code(o: &Outcome) -> Option<ErrorCode> {
        match o {
            Outcome::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }

    #[test]
    fn dms_have_derived_ids_and_fixed_members() {
        let (ws, alice, bob, carol) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ids = TimeUuidGen::new();
        let mut st = PartitionState::default();
        let dm = dm_channel_id(&ws, &[alice, bob]);
        assert_eq!(dm, dm_channel_id(&ws, &[bob, alice]), "order does not matter");
        let open = |by, ch| {
            cmd(
                ws,
                ch,
                by,
                CommandBody::CreateChannel {
                    name: "dm".into(),
                    channel_kind: ChannelKind::Dm,
                    members: vec![alice, bob],
                },
            )
        };
        // an id not derived from the members is refused
        let (e, o) = st.decide(&open(alice, Uuid::new_v4()), &ids, 1);
        assert!(e.is_none() && code(&o) == Some(ErrorCode::InvalidField));
        let (e, _) = st.decide(&open(alice, dm), &ids, 1);
        assert!(matches!(e.unwrap().payload, Payload::ChannelCreated { kind: ChannelKind::Dm, .. }));
        // opening it again (by either) finds it; an outsider's attempt is a conflict
        let (e, o) = st.decide(&open(bob, dm), &ids, 2);
        assert!(e.is_none() && o == Outcome::Done { seq: 1 });
        let (e, o) = st.decide(&open(carol, dm), &ids, 2);
        assert!(e.is_none() && code(&o) == Some(ErrorCode::Conflict));
        for body in [
            CommandBody::LeaveChannel,
            CommandBody::Invite { user_id: carol },
            CommandBody::RenameChannel { name: "x".into() },
            CommandBody::ArchiveChannel { archived: true },
        ] {
            let (e, o) = st.decide(&cmd(ws, dm, alice, body), &ids, 3);
            assert!(e.is_none() && code(&o) == Some(ErrorCode::Forbidden));
        }
        let (e, o) = st.decide(&cmd(ws, dm, carol, CommandBody::JoinChannel), &ids, 3);
        assert!(e.is_none() && code(&o) == Some(ErrorCode::ChannelNotFound));
        // a "DM" of one person, or a group DM under the DM kind, is refused
        let solo = dm_channel_id(&ws, &[alice]);
        let (_, o) = st.decide(
            &cmd(
                ws,
                solo,
                alice,
                CommandBody::CreateChannel { name: "dm".into(), channel_kind: ChannelKind::Dm, members: vec![] },
            ),
            &ids,
            4,
        );
        assert_eq!(code(&o), Some(ErrorCode::InvalidField));
        let three = dm_channel_id(&ws, &[alice, bob, carol]);
        let (_, o) = st.decide(
            &cmd(
                ws,
                three,
                alice,
                CommandBody::CreateChannel {
                    name: "g".into(),
                    channel_kind: ChannelKind::Dm,
                    members: vec![bob, carol],
                },
            ),
            &ids,
            4,
        );
        assert_eq!(code(&o), Some(ErrorCode::InvalidField));
    }

    #[test]
    fn archive_kick_and_threads_follow_the_rules() {
        let (ws, ch, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ids = TimeUuidGen::new();
        let mut st = PartitionState::default();
        st.decide(
            &cmd(
                ws,
                ch,
                alice,
                CommandBody::CreateChannel { name: "c".into(), channel_kind: ChannelKind::Private, members: vec![bob] },
            ),
            &ids,
            1,
        );
        let send = |by, thread_ts| {
            cmd(
                ws,
                ch,
                by,
                CommandBody::SendMessage {
                    text: "t".into(),
                    client_msg_id: Uuid::new_v4().to_string(),
                    thread_ts,
                    also_in_channel: false,
                    file_ids: vec![],
                },
            )
        };
        let (e, _) = st.decide(&send(alice, None), &ids, 2);
        let Payload::MessagePosted { message_id: parent, .. } = e.unwrap().payload else { panic!() };
        let (e, _) = st.decide(&send(bob, Some(parent)), &ids, 3);
        let Payload::MessagePosted { message_id: r1, thread, .. } = e.unwrap().payload else { panic!() };
        assert_eq!(thread, Some(ThreadState { reply_count: 1, reply_users: vec![bob] }));
        // a reply to a reply goes to the root
        let (e, _) = st.decide(&send(alice, Some(r1)), &ids, 4);
        let Payload::MessagePosted { thread_ts, thread, .. } = e.unwrap().payload else { panic!() };
        assert_eq!((thread_ts, thread.unwrap().reply_users), (Some(parent), vec![bob, alice]));
        // only the creator kicks; archived channels take nothing new
        let (e, o) = st.decide(&cmd(ws, ch, bob, CommandBody::Kick { user_id: alice }), &ids, 5);
        assert!(e.is_none() && code(&o) == Some(ErrorCode::Forbidden));
        let (e, _) = st.decide(&cmd(ws, ch, alice, CommandBody::ArchiveChannel { archived: true }), &ids, 5);
        assert!(e.is_some());
        let (e, o) = st.decide(&send(bob, None), &ids, 6);
        assert!(e.is_none() && code(&o) == Some(ErrorCode::ChannelArchived));
        let (e, _) = st.decide(&cmd(ws, ch, alice, CommandBody::ArchiveChannel { archived: false }), &ids, 6);
        assert!(e.is_some());
        let (e, _) = st.decide(&cmd(ws, ch, alice, CommandBody::Kick { user_id: bob }), &ids, 7);
        assert!(matches!(e.unwrap().payload, Payload::MemberLeft { user_id } if user_id == bob));
        let (e, o) = st.decide(&send(bob, None), &ids, 8);
        assert!(
            e.is_none() && code(&o) == Some(ErrorCode::ChannelNotFound),
            "a private channel vanishes for whoever is removed"
        );
    }
}
