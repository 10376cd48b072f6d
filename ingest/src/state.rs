//! Channel state owned by the sequencer, and the decision for each command. No I/O here.

use confab_core::avro::SCHEMA_VERSION;
use confab_core::command::{Command, CommandBody, Outcome};
use confab_core::event::{Event, Payload};
use confab_core::ids::{timeuuid_millis, TimeUuidGen};
use confab_core::protocol::{validate_client_msg_id, validate_emoji, validate_text, ErrorCode, MAX_CHANNEL_NAME, MAX_REACTIONS_PER_MESSAGE};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Posted {
    pub message_id: Uuid,
    pub seq: i64,
    pub ts: i64,
}

/// What the sequencer must know of a message to judge edits, deletes and reactions.
#[derive(Debug, Default, Clone)]
pub struct MessageState {
    pub author: Uuid,
    pub deleted: bool,
    pub reactions: BTreeMap<String, BTreeSet<Uuid>>,
}

#[derive(Debug, Default, Clone)]
pub struct ChannelState {
    /// message_id -> state (unbounded for now, like the dedup table).
    pub messages: HashMap<Uuid, MessageState>,
    pub is_private: bool,
    pub members: HashSet<Uuid>,
    pub last_seq: i64,
    pub last_ms: i64,
    /// (sender, client_msg_id) -> the message it produced. Unbounded for now (see docs/architecture.md).
    pub sent: HashMap<(Uuid, String), Posted>,
}

/// The state of every channel of one partition.
#[derive(Debug, Default)]
pub struct PartitionState {
    pub channels: HashMap<(Uuid, Uuid), ChannelState>,
}

impl PartitionState {
    /// Applies an event from the log (used when loading and after deciding).
    pub fn apply(&mut self, e: &Event) {
        let key = (e.workspace_id, e.channel_id);
        match &e.payload {
            Payload::ChannelCreated { is_private, members, .. } => {
                let ch = self.channels.entry(key).or_default();
                ch.is_private = *is_private;
                ch.members.extend(members.iter().copied());
            }
            Payload::MemberJoined { user_id } => {
                self.channels.entry(key).or_default().members.insert(*user_id);
            }
            Payload::MessagePosted { message_id, client_msg_id, .. } => {
                let ts = timeuuid_millis(message_id).unwrap_or(e.occurred_at);
                let ch = self.channels.entry(key).or_default();
                ch.sent.insert((e.actor_id, client_msg_id.clone()), Posted { message_id: *message_id, seq: e.seq, ts });
                ch.messages.insert(*message_id, MessageState { author: e.actor_id, ..Default::default() });
            }
            Payload::MessageEdited { .. } => {}
            Payload::MessageDeleted { message_id } => {
                if let Some(m) = self.channels.entry(key).or_default().messages.get_mut(message_id) {
                    m.deleted = true;
                    m.reactions.clear();
                }
            }
            Payload::ReactionChanged { message_id, emoji, users, .. } => {
                if let Some(m) = self.channels.entry(key).or_default().messages.get_mut(message_id) {
                    if users.is_empty() {
                        m.reactions.remove(emoji);
                    } else {
                        m.reactions.insert(emoji.clone(), users.iter().copied().collect());
                    }
                }
            }
        }
        let ch = self.channels.entry(key).or_default();
        ch.last_seq = ch.last_seq.max(e.seq);
        ch.last_ms = ch.last_ms.max(e.occurred_at);
    }

    /// The channel, if it exists in the command's workspace and `user` is a member. A private
    /// channel a stranger asks about is reported as missing, so its existence does not leak.
    fn member_channel(&self, key: &(Uuid, Uuid), user: &Uuid) -> Result<&ChannelState, (ErrorCode, &'static str)> {
        let ch = self.channels.get(key).ok_or((ErrorCode::ChannelNotFound, "no such channel in your workspace"))?;
        if ch.members.contains(user) {
            Ok(ch)
        } else if ch.is_private {
            Err((ErrorCode::ChannelNotFound, "no such channel in your workspace"))
        } else {
            Err((ErrorCode::NotAMember, "join the channel first"))
        }
    }

    /// Decides a command: the event to append (if any) and the outcome for the sender. The
    /// event, if any, is already applied to the state.
    pub fn decide(&mut self, cmd: &Command, ids: &TimeUuidGen, now_ms: i64) -> (Option<Event>, Outcome) {
        let key = (cmd.workspace_id, cmd.channel_id);
        let reject = |code: ErrorCode, message: &str| (None, Outcome::Rejected { code, message: message.to_string() });
        let event = |seq: i64, occurred_at: i64, payload: Payload| Event {
            event_id: Uuid::new_v4(),
            workspace_id: cmd.workspace_id,
            channel_id: cmd.channel_id,
            actor_id: cmd.user_id,
            occurred_at,
            seq,
            schema_version: SCHEMA_VERSION,
            payload,
        };
        match &cmd.body {
            CommandBody::CreateChannel { name, is_private, members } => {
                if self.channels.contains_key(&key) {
                    return reject(ErrorCode::Conflict, "a channel with this id already exists");
                }
                if name.trim().is_empty() || name.chars().count() > MAX_CHANNEL_NAME {
                    return reject(ErrorCode::InvalidField, "channel name must be 1..=80 characters");
                }
                let mut members: Vec<Uuid> = members.clone();
                if !members.contains(&cmd.user_id) {
                    members.push(cmd.user_id);
                }
                members.sort();
                members.dedup();
                let e = event(1, now_ms, Payload::ChannelCreated { name: name.clone(), is_private: *is_private, members });
                self.apply(&e);
                (Some(e), Outcome::Done { seq: 1 })
            }
            CommandBody::JoinChannel => {
                let Some(ch) = self.channels.get(&key) else {
                    return reject(ErrorCode::ChannelNotFound, "no such channel in your workspace");
                };
                if ch.members.contains(&cmd.user_id) {
                    return (None, Outcome::Done { seq: ch.last_seq });
                }
                if ch.is_private {
                    // private channels are invisible to non-members: same answer as a missing one
                    return reject(ErrorCode::ChannelNotFound, "no such channel in your workspace");
                }
                let e = event(ch.last_seq + 1, now_ms.max(ch.last_ms), Payload::MemberJoined { user_id: cmd.user_id });
                self.apply(&e);
                (Some(e.clone()), Outcome::Done { seq: e.seq })
            }
            CommandBody::EditMessage { message_id, .. } | CommandBody::DeleteMessage { message_id } | CommandBody::React { message_id, .. } => {
                let ch = match self.member_channel(&key, &cmd.user_id) {
                    Ok(ch) => ch,
                    Err((code, m)) => return reject(code, m),
                };
                let Some(msg) = ch.messages.get(message_id) else {
                    return reject(ErrorCode::MessageNotFound, "no such message in this channel");
                };
                let (seq, at) = (ch.last_seq + 1, now_ms.max(ch.last_ms));
                let payload = match &cmd.body {
                    CommandBody::DeleteMessage { .. } if msg.deleted => return (None, Outcome::Done { seq: ch.last_seq }),
                    _ if msg.deleted => return reject(ErrorCode::MessageDeleted, "the message was deleted"),
                    CommandBody::EditMessage { .. } | CommandBody::DeleteMessage { .. } if msg.author != cmd.user_id => {
                        return reject(ErrorCode::Forbidden, "you can only change your own messages")
                    }
                    CommandBody::EditMessage { text, .. } => {
                        if let Err((code, m)) = validate_text(text) {
                            return reject(code, &m);
                        }
                        Payload::MessageEdited { message_id: *message_id, text: text.clone() }
                    }
                    CommandBody::DeleteMessage { .. } => Payload::MessageDeleted { message_id: *message_id },
                    CommandBody::React { emoji, add, .. } => {
                        if let Err(m) = validate_emoji(emoji) {
                            return reject(ErrorCode::InvalidField, &m);
                        }
                        let mut users = msg.reactions.get(emoji).cloned().unwrap_or_default();
                        let changed = if *add { users.insert(cmd.user_id) } else { users.remove(&cmd.user_id) };
                        if !changed {
                            // already so: nothing to record (a retry, or a double click)
                            return (None, Outcome::Done { seq: ch.last_seq });
                        }
                        if *add && !msg.reactions.contains_key(emoji) && msg.reactions.len() >= MAX_REACTIONS_PER_MESSAGE {
                            return reject(ErrorCode::TooManyReactions, &format!("a message takes at most {MAX_REACTIONS_PER_MESSAGE} different emoji"));
                        }
                        Payload::ReactionChanged { message_id: *message_id, emoji: emoji.clone(), added: *add, users: users.into_iter().collect() }
                    }
                    _ => unreachable!("matched above"),
                };
                let e = event(seq, at, payload);
                self.apply(&e);
                (Some(e), Outcome::Done { seq })
            }
            CommandBody::SendMessage { text, client_msg_id } => {
                let ch = match self.member_channel(&key, &cmd.user_id) {
                    Ok(ch) => ch,
                    Err((code, m)) => return reject(code, m),
                };
                if let Some(p) = ch.sent.get(&(cmd.user_id, client_msg_id.clone())) {
                    return (None, Outcome::Posted { message_id: p.message_id, seq: p.seq, ts: p.ts, duplicate: true });
                }
                if let Err(m) = validate_client_msg_id(client_msg_id) {
                    return reject(ErrorCode::InvalidField, &m);
                }
                if let Err((code, m)) = validate_text(text) {
                    return reject(code, &m);
                }
                let message_id = ids.next(ch.last_ms);
                let ts = timeuuid_millis(&message_id).unwrap_or(now_ms);
                let e = event(
                    ch.last_seq + 1,
                    ts,
                    Payload::MessagePosted { message_id, client_msg_id: client_msg_id.clone(), text: text.clone(), thread_ts: None },
                );
                self.apply(&e);
                (Some(e.clone()), Outcome::Posted { message_id, seq: e.seq, ts, duplicate: false })
            }
        }
    }
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
        CommandBody::SendMessage { text: text.into(), client_msg_id: id.into() }
    }

    #[test]
    fn sequencing_dedup_and_authorization() {
        let (ws, ch, alice, bob, eve) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ids = TimeUuidGen::new();
        let mut st = PartitionState::default();
        let create = CommandBody::CreateChannel { name: "general".into(), is_private: false, members: vec![bob] };
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
            (Outcome::Posted { message_id: a, seq: s1, .. }, Outcome::Posted { message_id: b, seq: s2, duplicate: true, .. }) => {
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
        let create = CommandBody::CreateChannel { name: "c".into(), is_private: true, members: vec![] };
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
        Command { command_id: Uuid::new_v4(), workspace_id: ws, user_id: user, channel_id: ch, reply_to: ReplyTo { gateway_id: "g".into(), conn_id: 1 }, issued_at: 0, client_msg_id: None, body }
    }

    #[test]
    fn edits_deletes_and_reactions_follow_the_rules() {
        let (ws, ch, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ids = TimeUuidGen::new();
        let mut st = PartitionState::default();
        st.decide(&cmd(ws, ch, alice, CommandBody::CreateChannel { name: "c".into(), is_private: false, members: vec![bob] }), &ids, 1);
        let (e, _) = st.decide(&cmd(ws, ch, alice, CommandBody::SendMessage { text: "hi".into(), client_msg_id: "k".into() }), &ids, 2);
        let Payload::MessagePosted { message_id: m, .. } = e.unwrap().payload else { panic!() };
        let code = |o: Outcome| match o { Outcome::Rejected { code, .. } => Some(code), _ => None };
        // only the author edits
        let (e, o) = st.decide(&cmd(ws, ch, bob, CommandBody::EditMessage { message_id: m, text: "x".into() }), &ids, 3);
        assert!(e.is_none() && code(o) == Some(ErrorCode::Forbidden));
        let (e, _) = st.decide(&cmd(ws, ch, alice, CommandBody::EditMessage { message_id: m, text: "hi!".into() }), &ids, 3);
        assert_eq!(e.unwrap().seq, 3);
        // reactions: set semantics, a repeat is a no-op
        let react = |u, add| cmd(ws, ch, u, CommandBody::React { message_id: m, emoji: "tada".into(), add });
        let (e, _) = st.decide(&react(bob, true), &ids, 4);
        assert!(matches!(e.unwrap().payload, Payload::ReactionChanged { ref users, added: true, .. } if users == &vec![bob]));
        let (e, o) = st.decide(&react(bob, true), &ids, 5);
        assert!(e.is_none() && matches!(o, Outcome::Done { .. }));
        let (e, _) = st.decide(&react(alice, true), &ids, 5);
        assert!(matches!(e.unwrap().payload, Payload::ReactionChanged { ref users, .. } if users.len() == 2));
        // too many distinct emoji
        for i in 1..MAX_REACTIONS_PER_MESSAGE {
            let (e, _) = st.decide(&cmd(ws, ch, bob, CommandBody::React { message_id: m, emoji: format!("e{i}"), add: true }), &ids, 6);
            assert!(e.is_some());
        }
        let (e, o) = st.decide(&cmd(ws, ch, bob, CommandBody::React { message_id: m, emoji: "one-more".into(), add: true }), &ids, 7);
        assert!(e.is_none() && code(o) == Some(ErrorCode::TooManyReactions));
        // delete: author only, then nothing touches it; deleting again is a no-op
        let (e, o) = st.decide(&cmd(ws, ch, bob, CommandBody::DeleteMessage { message_id: m }), &ids, 8);
        assert!(e.is_none() && code(o) == Some(ErrorCode::Forbidden));
        let (e, _) = st.decide(&cmd(ws, ch, alice, CommandBody::DeleteMessage { message_id: m }), &ids, 8);
        assert!(matches!(e.unwrap().payload, Payload::MessageDeleted { .. }));
        let (e, o) = st.decide(&react(bob, true), &ids, 9);
        assert!(e.is_none() && code(o) == Some(ErrorCode::MessageDeleted));
        let (e, o) = st.decide(&cmd(ws, ch, alice, CommandBody::EditMessage { message_id: m, text: "back".into() }), &ids, 9);
        assert!(e.is_none() && code(o) == Some(ErrorCode::MessageDeleted));
        let (e, o) = st.decide(&cmd(ws, ch, alice, CommandBody::DeleteMessage { message_id: m }), &ids, 9);
        assert!(e.is_none() && matches!(o, Outcome::Done { .. }));
        let (e, o) = st.decide(&cmd(ws, ch, alice, CommandBody::EditMessage { message_id: Uuid::new_v4(), text: "?".into() }), &ids, 9);
        assert!(e.is_none() && code(o) == Some(ErrorCode::MessageNotFound));
    }
}
