//! Property tests of ingest's pure decide/apply core: random sequences of commands (creates,
//! joins, leaves, archives, sends retried with `client_msg_id`s from a small pool, edits,
//! deletes, reactions, pins, read markers) across a few channels and users, decided one by one
//! as the sequencer does. Whatever the sequence: each stream's seq is gap-free from 1, each
//! (channel, sender, client_msg_id) yields exactly one `message_posted` and every retry of it
//! is answered with that message, and state rebuilt from the events (a restart) decides alike.

use std::collections::HashMap;

use confab_core::command::{Command, CommandBody, Outcome, ReplyTo};
use confab_core::event::{ChannelKind, Event, Payload};
use confab_core::TimeUuidGen;
use confab_ingest::PartitionState;
use proptest::prelude::*;
use uuid::Uuid;

const WS: Uuid = Uuid::from_u128(0x0005_0000);
const CHANNELS: u8 = 3;
const USERS: u8 = 3;
/// The `client_msg_id`s senders draw from: few, so retries and reuse across channels happen.
const CLIENT_MSG_IDS: &[&str] = &["c-1", "c-2", "c-3", "c-4"];
/// Texts to send: mostly valid, one blank (rejected: a later retry of its id may still post).
const TEXTS: &[&str] = &["hello", "héllo <@x>", "  ", "ship it"];
const EMOJI: &[&str] = &["tada", "thumbsup"];

fn channel(i: u8) -> Uuid {
    Uuid::from_u128(0x00c0_0000 + i as u128)
}

fn user(i: u8) -> Uuid {
    Uuid::from_u128(0x00a0_0000 + i as u128)
}

/// One command to decide. Messages are named by index into the channel's posted messages
/// (modulo their number), so edits, deletes, reactions and thread replies hit real ones.
#[derive(Debug, Clone)]
enum Op {
    Create { ch: u8, user: u8, private: bool },
    Join { ch: u8, user: u8 },
    Leave { ch: u8, user: u8 },
    Archive { ch: u8, user: u8, archived: bool },
    Send { ch: u8, user: u8, cmid: usize, text: usize, reply_to: Option<usize> },
    Edit { ch: u8, user: u8, msg: usize },
    Delete { ch: u8, user: u8, msg: usize },
    React { ch: u8, user: u8, msg: usize, emoji: usize, add: bool },
    Pin { ch: u8, user: u8, msg: usize, pinned: bool },
    MarkRead { ch: u8, user: u8, seq: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    let ch = 0..CHANNELS;
    let u = 0..USERS;
    prop_oneof![
        2 => (ch.clone(), u.clone(), any::<bool>()).prop_map(|(ch, user, private)| Op::Create { ch, user, private }),
        2 => (ch.clone(), u.clone()).prop_map(|(ch, user)| Op::Join { ch, user }),
        1 => (ch.clone(), u.clone()).prop_map(|(ch, user)| Op::Leave { ch, user }),
        1 => (ch.clone(), u.clone(), any::<bool>()).prop_map(|(ch, user, archived)| Op::Archive { ch, user, archived }),
        8 => (ch.clone(), u.clone(), 0..CLIENT_MSG_IDS.len(), 0..TEXTS.len(), proptest::option::weighted(0.2, 0..8usize))
            .prop_map(|(ch, user, cmid, text, reply_to)| Op::Send { ch, user, cmid, text, reply_to }),
        1 => (ch.clone(), u.clone(), 0..8usize).prop_map(|(ch, user, msg)| Op::Edit { ch, user, msg }),
        1 => (ch.clone(), u.clone(), 0..8usize).prop_map(|(ch, user, msg)| Op::Delete { ch, user, msg }),
        2 => (ch.clone(), u.clone(), 0..8usize, 0..EMOJI.len(), any::<bool>())
            .prop_map(|(ch, user, msg, emoji, add)| Op::React { ch, user, msg, emoji, add }),
        1 => (ch.clone(), u.clone(), 0..8usize, any::<bool>()).prop_map(|(ch, user, msg, pinned)| Op::Pin { ch, user, msg, pinned }),
        1 => (ch, u, -1..20i64).prop_map(|(ch, user, seq)| Op::MarkRead { ch, user, seq }),
    ]
}

fn command(ch: u8, user_ix: u8, client_msg_id: Option<&str>, body: CommandBody) -> Command {
    Command {
        command_id: Uuid::new_v4(),
        workspace_id: WS,
        user_id: user(user_ix),
        channel_id: channel(ch),
        reply_to: ReplyTo { gateway_id: "g".into(), conn_id: 1 },
        issued_at: 0,
        client_msg_id: client_msg_id.map(str::to_owned),
        body,
        sealed: Vec::new(),
    }
}

/// The command for `op`, given the messages posted so far per channel.
fn to_command(op: &Op, posted: &HashMap<u8, Vec<Uuid>>) -> Command {
    let message = |ch: u8, i: usize| match posted.get(&ch) {
        Some(ids) if !ids.is_empty() => ids[i % ids.len()],
        _ => Uuid::from_u128(0xdead),
    };
    match *op {
        Op::Create { ch, user, private } => {
            let kind = if private { ChannelKind::Private } else { ChannelKind::Public };
            let body = CommandBody::CreateChannel { name: format!("c{ch}"), channel_kind: kind, members: vec![] };
            command(ch, user, None, body)
        }
        Op::Join { ch, user } => command(ch, user, None, CommandBody::JoinChannel),
        Op::Leave { ch, user } => command(ch, user, None, CommandBody::LeaveChannel),
        Op::Archive { ch, user, archived } => command(ch, user, None, CommandBody::ArchiveChannel { archived }),
        Op::Send { ch, user, cmid, text, reply_to } => {
            let body = CommandBody::SendMessage {
                text: TEXTS[text].into(),
                thread_ts: reply_to.map(|i| message(ch, i)),
                also_in_channel: false,
                file_ids: vec![],
            };
            command(ch, user, Some(CLIENT_MSG_IDS[cmid]), body)
        }
        Op::Edit { ch, user, msg } => {
            command(ch, user, None, CommandBody::EditMessage { message_id: message(ch, msg), text: "edited".into() })
        }
        Op::Delete { ch, user, msg } => {
            command(ch, user, None, CommandBody::DeleteMessage { message_id: message(ch, msg) })
        }
        Op::React { ch, user, msg, emoji, add } => {
            let body = CommandBody::React { message_id: message(ch, msg), emoji: EMOJI[emoji].into(), add };
            command(ch, user, None, body)
        }
        Op::Pin { ch, user, msg, pinned } => {
            command(ch, user, None, CommandBody::Pin { message_id: message(ch, msg), pinned })
        }
        Op::MarkRead { ch, user, seq } => command(ch, user, None, CommandBody::MarkRead { seq }),
    }
}

/// A send's dedup key: (channel, sender, client_msg_id).
type SendKey = (Uuid, Uuid, String);
/// Per send key, the message it produced: (message_id, seq).
type Originals = HashMap<SendKey, (Uuid, i64)>;

fn send_key(cmd: &Command) -> Option<SendKey> {
    match cmd.body {
        CommandBody::SendMessage { .. } => Some((cmd.channel_id, cmd.user_id, cmd.client_msg_id.clone()?)),
        _ => None,
    }
}

/// Decides every op in order; checks each outcome against its event as it goes and returns the
/// events appended and, per send key, the message it produced.
fn run(ops: &[Op]) -> Result<(Vec<Event>, Originals), TestCaseError> {
    let ids = TimeUuidGen::new();
    let mut state = PartitionState::default();
    let (mut events, mut originals) = (Vec::new(), HashMap::new());
    let mut posted: HashMap<u8, Vec<Uuid>> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        let cmd = to_command(op, &posted);
        let (event, outcome) = state.decide(&cmd, &ids, 1_700_000_000_000 + i as i64);
        if let Some(e) = &event {
            prop_assert_eq!((e.workspace_id, e.stream_id()), (cmd.workspace_id, cmd.stream_id()));
        }
        match (&event, &outcome, send_key(&cmd)) {
            (Some(e), Outcome::Posted { message_id, seq, duplicate: false, .. }, Some(key)) => {
                let posted_id = match &e.payload {
                    Payload::MessagePosted { message_id, .. } => Some(*message_id),
                    _ => None,
                };
                prop_assert_eq!(posted_id, Some(*message_id), "a send appended {:?}", e.payload);
                prop_assert_eq!(e.seq, *seq);
                prop_assert!(originals.insert(key, (*message_id, *seq)).is_none(), "a second message for a send key");
                if let Op::Send { ch, .. } = op {
                    posted.entry(*ch).or_default().push(*message_id);
                }
            }
            (None, Outcome::Posted { message_id, seq, duplicate: true, .. }, Some(key)) => {
                let original = originals.get(&key);
                prop_assert_eq!(original, Some(&(*message_id, *seq)), "a retry not answered with the original");
            }
            (Some(e), Outcome::Done { seq }, None) => prop_assert_eq!(e.seq, *seq),
            (None, Outcome::Done { .. } | Outcome::Rejected { .. }, _) => {}
            (e, o, _) => prop_assert!(false, "{:?} gave {:?} with event {:?}", op, o, e),
        }
        events.extend(event);
    }
    Ok((events, originals))
}

/// Each stream's seqs, in log order, are 1, 2, 3, ...
fn check_gap_free(events: &[Event]) -> Result<(), TestCaseError> {
    let mut last: HashMap<(Uuid, Uuid), i64> = HashMap::new();
    for e in events {
        let prev = last.insert((e.workspace_id, e.stream_id()), e.seq).unwrap_or(0);
        prop_assert_eq!(e.seq, prev + 1, "seq gap or repeat in stream {} at {:?}", e.stream_id(), e.payload);
    }
    Ok(())
}

/// Exactly one `message_posted` per (channel, sender, client_msg_id) ever sent successfully.
fn check_one_message_per_send(events: &[Event], originals: &Originals) -> Result<(), TestCaseError> {
    let mut posted: HashMap<SendKey, usize> = HashMap::new();
    for e in events {
        if let Payload::MessagePosted { client_msg_id, .. } = &e.payload {
            *posted.entry((e.channel_id, e.actor_id, client_msg_id.clone())).or_default() += 1;
        }
    }
    for (key, n) in &posted {
        prop_assert_eq!(*n, 1, "{:?} posted {} times", key, n);
    }
    prop_assert_eq!(posted.len(), originals.len());
    Ok(())
}

/// State rebuilt from the events (what a restarted sequencer does) has the same seqs, and a
/// retry of every send made before the restart is still answered with the original message.
fn check_rebuilt(events: &[Event], originals: &Originals) -> Result<(), TestCaseError> {
    let mut state = PartitionState::default();
    for e in events {
        state.apply(e);
    }
    let ids = TimeUuidGen::new();
    for ((ch, user, cmid), (message_id, seq)) in originals {
        let body = CommandBody::SendMessage {
            text: "again".into(),
            thread_ts: None,
            also_in_channel: false,
            file_ids: vec![],
        };
        let cmd = Command { user_id: *user, channel_id: *ch, ..command(0, 0, Some(cmid), body) };
        let before = state.channels.get(&(WS, *ch)).map(|c| c.last_seq);
        let (event, outcome) = state.decide(&cmd, &ids, 1_800_000_000_000);
        prop_assert!(event.is_none(), "a retry after restart appended {:?}", event);
        match outcome {
            // the channel may have been archived since: refused, but never posted again
            Outcome::Rejected { .. } => {}
            Outcome::Posted { message_id: m, seq: s, duplicate: true, .. } => {
                prop_assert_eq!((m, s), (*message_id, *seq));
            }
            other => prop_assert!(false, "a retry after restart answered {:?}", other),
        }
        prop_assert_eq!(state.channels.get(&(WS, *ch)).map(|c| c.last_seq), before);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn seqs_are_gap_free_and_each_send_posts_once(ops in proptest::collection::vec(op(), 1..120)) {
        let (events, originals) = run(&ops)?;
        check_gap_free(&events)?;
        check_one_message_per_send(&events, &originals)?;
        check_rebuilt(&events, &originals)?;
    }
}

/// The generator reaches the cases the properties are about: some runs post, retry and reuse
/// a `client_msg_id` in another channel (guards against a generator that only gets rejections).
#[test]
fn the_generator_exercises_retries() {
    let ops = [
        Op::Create { ch: 0, user: 0, private: false },
        Op::Create { ch: 1, user: 0, private: false },
        Op::Send { ch: 0, user: 0, cmid: 0, text: 2, reply_to: None },
        Op::Send { ch: 0, user: 0, cmid: 0, text: 0, reply_to: None },
        Op::Send { ch: 0, user: 0, cmid: 0, text: 1, reply_to: None },
        Op::Send { ch: 1, user: 0, cmid: 0, text: 0, reply_to: Some(0) },
        Op::Join { ch: 0, user: 1 },
        Op::Send { ch: 0, user: 1, cmid: 0, text: 0, reply_to: Some(0) },
        Op::MarkRead { ch: 0, user: 1, seq: 3 },
    ];
    let (events, originals) = run(&ops).unwrap();
    check_gap_free(&events).unwrap();
    check_one_message_per_send(&events, &originals).unwrap();
    check_rebuilt(&events, &originals).unwrap();
    // the blank send is refused, its retry posts, the next retry is a duplicate; the same id
    // posts once in the other channel (as a reply to nothing there: refused) and once for bob
    let posts = events.iter().filter(|e| matches!(e.payload, Payload::MessagePosted { .. })).count();
    assert_eq!((posts, originals.len()), (2, 2), "{events:#?}");
}
