//! The rules, exercised through `PartitionState::decide` as the sequencer calls it.

use confab_core::command::{dm_channel_id, Command, CommandBody, Outcome, ReplyTo};
use confab_core::event::{ChannelKind, Event, Payload, ThreadState};
use confab_core::files::Attachment;
use confab_core::protocol::{MAX_CREATE_MEMBERS_ADMIN, MAX_REACTIONS_PER_MESSAGE};
use confab_core::{ErrorCode, TimeUuidGen};
use uuid::Uuid;

use crate::state::PartitionState;

/// A command's body and, for sends, its `client_msg_id`.
struct TestBody(CommandBody, Option<String>);

impl From<CommandBody> for TestBody {
    fn from(body: CommandBody) -> Self {
        TestBody(body, None)
    }
}

fn cmd(ws: Uuid, ch: Uuid, user: Uuid, body: impl Into<TestBody>) -> Command {
    let TestBody(body, client_msg_id) = body.into();
    Command {
        command_id: Uuid::new_v4(),
        workspace_id: ws,
        user_id: user,
        channel_id: ch,
        reply_to: ReplyTo { gateway_id: "g".into(), conn_id: 1 },
        issued_at: 0,
        client_msg_id,
        body,
        sealed: Vec::new(),
    }
}

fn sending(text: &str, client_msg_id: &str, thread_ts: Option<Uuid>, file_ids: Vec<Uuid>) -> TestBody {
    TestBody(
        CommandBody::SendMessage { text: text.into(), thread_ts, also_in_channel: false, file_ids },
        Some(client_msg_id.into()),
    )
}

fn send(text: &str, client_msg_id: &str) -> TestBody {
    sending(text, client_msg_id, None, vec![])
}

/// The error code of a rejection.
fn code(o: &Outcome) -> Option<ErrorCode> {
    match o {
        Outcome::Rejected { code, .. } => Some(*code),
        _ => None,
    }
}

mod sequencing {
    use super::*;

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
        let with = |f: Vec<Uuid>, id: &str| sending("", id, None, f);
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

mod edits {
    use super::*;

    #[test]
    fn each_edit_and_the_delete_destroy_the_key_of_the_text_they_replace() {
        let (ws, ch, alice) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ids = TimeUuidGen::new();
        let mut st = PartitionState::default();
        let create =
            CommandBody::CreateChannel { name: "c".into(), channel_kind: ChannelKind::Public, members: vec![] };
        let (created, _) = st.decide(&cmd(ws, ch, alice, create), &ids, 1);
        let created = created.unwrap();
        assert!(created.sealing.destroys_keys.is_empty());
        let (posted, _) = st.decide(&cmd(ws, ch, alice, send("v1", "k")), &ids, 2);
        let posted = posted.unwrap();
        assert!(posted.sealing.destroys_keys.is_empty());
        let Payload::MessagePosted { message_id: m, .. } = posted.payload else { panic!() };
        let edit = |text: &str| cmd(ws, ch, alice, CommandBody::EditMessage { message_id: m, text: text.into() });
        let (first_edit, _) = st.decide(&edit("v2"), &ids, 3);
        let first_edit = first_edit.unwrap();
        assert_eq!(first_edit.sealing.destroys_keys, vec![posted.event_id], "the posted version goes");
        let (second_edit, _) = st.decide(&edit("v3"), &ids, 4);
        let second_edit = second_edit.unwrap();
        assert_eq!(second_edit.sealing.destroys_keys, vec![first_edit.event_id], "then the first edit's");
        let (deleted, _) = st.decide(&cmd(ws, ch, alice, CommandBody::DeleteMessage { message_id: m }), &ids, 5);
        assert_eq!(deleted.unwrap().sealing.destroys_keys, vec![second_edit.event_id], "the delete: the last");
        // files: a deleted file's key goes, and a deleted message's files' keys go with its text's
        let file = |name: &str| Attachment {
            file_id: Uuid::new_v4(),
            name: name.into(),
            size: 1,
            content_type: "text/plain".into(),
        };
        let (kept, gone) = (file("a.txt"), file("b.txt"));
        for f in [&kept, &gone] {
            st.decide(&cmd(ws, ch, alice, CommandBody::ShareFile { file: f.clone() }), &ids, 6);
        }
        let (unshared, _) = st.decide(&cmd(ws, ch, alice, CommandBody::DeleteFile { file_id: gone.file_id }), &ids, 7);
        assert_eq!(unshared.unwrap().sealing.destroys_keys, vec![gone.file_id]);
        let (with_file, _) = st.decide(&cmd(ws, ch, alice, sending("see", "k2", None, vec![kept.file_id])), &ids, 8);
        let with_file = with_file.unwrap();
        let Payload::MessagePosted { message_id: m2, .. } = with_file.payload else { panic!() };
        let (deleted, _) = st.decide(&cmd(ws, ch, alice, CommandBody::DeleteMessage { message_id: m2 }), &ids, 9);
        assert_eq!(deleted.unwrap().sealing.destroys_keys, vec![with_file.event_id, kept.file_id]);
        // the same keys after the state is rebuilt from the log
        let mut rebuilt = PartitionState::default();
        for e in [&created, &posted, &first_edit] {
            rebuilt.apply(e);
        }
        let (again, _) = rebuilt.decide(&edit("v2 again"), &ids, 6);
        assert_eq!(again.unwrap().sealing.destroys_keys, vec![first_edit.event_id]);
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
        let (e, _) = st.decide(&cmd(ws, ch, alice, sending("hi", "k", None, vec![])), &ids, 2);
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

mod channels {
    use super::*;

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
        let send = |by, thread_ts| cmd(ws, ch, by, sending("t", &Uuid::new_v4().to_string(), thread_ts, vec![]));
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

mod read_markers {
    use super::*;

    #[test]
    fn audit_records_go_to_the_workspaces_own_stream_which_is_no_conversation() {
        let (ws, alice) = (Uuid::new_v4(), Uuid::new_v4());
        let ids = TimeUuidGen::new();
        let mut st = PartitionState::default();
        let audit = |action: &str, details: Vec<(&str, String)>| CommandBody::Audit {
            action: action.into(),
            subject_id: Some(alice),
            details: details.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        };
        for seq in 1..=2 {
            let (e, o) = st.decide(&cmd(ws, ws, Uuid::nil(), audit("user_created", vec![])), &ids, 1);
            let e = e.expect("recorded");
            assert_eq!((e.channel_id, e.seq, o), (ws, seq, Outcome::Done { seq }));
        }
        let (e, o) = st.decide(&cmd(ws, Uuid::new_v4(), Uuid::nil(), audit("user_created", vec![])), &ids, 2);
        assert!(e.is_none() && code(&o) == Some(ErrorCode::InvalidField), "only in the workspace's stream");
        let (e, o) = st.decide(&cmd(ws, ws, Uuid::nil(), audit("x", vec![("k", "v".repeat(201))])), &ids, 2);
        assert!(e.is_none() && code(&o) == Some(ErrorCode::InvalidField), "details are bounded");
        let (e, o) = st.decide(&cmd(ws, ws, Uuid::nil(), audit("", vec![])), &ids, 2);
        assert!(e.is_none() && code(&o) == Some(ErrorCode::InvalidField), "an action has a name");
        // nobody joins or posts into it
        for body in [CommandBody::JoinChannel, send("hi", "m1").0] {
            let mut c = cmd(ws, ws, alice, body);
            c.client_msg_id = Some("m1".into());
            let (e, o) = st.decide(&c, &ids, 3);
            assert!(e.is_none() && code(&o) == Some(ErrorCode::ChannelNotFound), "{o:?}");
        }
    }

    #[test]
    fn read_markers_name_the_channel_read_and_are_sequenced_in_the_readers_own_stream() {
        let (ws, ch, alice) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ids = TimeUuidGen::new();
        let mut st = PartitionState::default();
        let create =
            CommandBody::CreateChannel { name: "c".into(), channel_kind: ChannelKind::Public, members: vec![] };
        st.decide(&cmd(ws, ch, alice, create), &ids, 1);
        let mark = |seq| cmd(ws, ch, alice, CommandBody::MarkRead { seq });
        assert_eq!(mark(1).stream_id(), alice);
        for (read_seq, stream_seq) in [(1, 1), (1, 2), (0, 3)] {
            let (e, o) = st.decide(&mark(read_seq), &ids, 2);
            let e = e.expect("a marker is recorded, even moving back (marking unread)");
            assert_eq!((e.channel_id, e.stream_id(), e.seq), (ch, alice, stream_seq));
            assert_eq!(e.payload, Payload::ReadMarked { read_seq });
            assert_eq!(o, Outcome::Done { seq: stream_seq });
        }
        // the channel's own sequence is untouched
        let (e, _) = st.decide(&cmd(ws, ch, alice, send("hi", "m1")), &ids, 3);
        assert_eq!(e.unwrap().seq, 2);
        let (e, o) = st.decide(&mark(-1), &ids, 4);
        assert!(e.is_none() && matches!(o, Outcome::Rejected { code: ErrorCode::InvalidField, .. }));
    }

    #[test]
    fn a_send_without_a_client_msg_id_is_refused() {
        let (ws, ch, alice) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ids = TimeUuidGen::new();
        let mut st = PartitionState::default();
        let create =
            CommandBody::CreateChannel { name: "c".into(), channel_kind: ChannelKind::Public, members: vec![] };
        st.decide(&cmd(ws, ch, alice, create), &ids, 1);
        let body =
            CommandBody::SendMessage { text: "hi".into(), thread_ts: None, also_in_channel: false, file_ids: vec![] };
        let (e, o) = st.decide(&cmd(ws, ch, alice, body), &ids, 2);
        assert!(e.is_none() && matches!(o, Outcome::Rejected { code: ErrorCode::InvalidField, .. }), "{o:?}");
    }

    #[test]
    fn channel_names_must_be_visible_and_creations_bounded() {
        let (ws, alice) = (Uuid::new_v4(), Uuid::new_v4());
        let ids = TimeUuidGen::new();
        let mut st = PartitionState::default();
        let create = |name: &str, members: Vec<Uuid>| {
            let body = CommandBody::CreateChannel { name: name.into(), channel_kind: ChannelKind::Public, members };
            cmd(ws, Uuid::new_v4(), alice, body)
        };
        // the gateway checks these too; ingest holds for anything that writes the commands topic
        for name in ["general\u{200B}", "\u{202E}lareneg", "gen\u{2066}eral", "\u{3164}"] {
            let (e, o) = st.decide(&create(name, vec![]), &ids, 1);
            assert!(e.is_none() && code(&o) == Some(ErrorCode::InvalidField), "{name:?}: {o:?}");
        }
        let too_many = (0..MAX_CREATE_MEMBERS_ADMIN).map(|_| Uuid::new_v4()).collect();
        let (e, o) = st.decide(&create("big", too_many), &ids, 1);
        assert!(e.is_none() && code(&o) == Some(ErrorCode::InvalidField), "{o:?}");
        let twice = vec![Uuid::from_u128(1), Uuid::from_u128(1), alice];
        let (e, _) = st.decide(&create("ok", twice), &ids, 1);
        match e.unwrap().payload {
            Payload::ChannelCreated { members, .. } => assert_eq!(members.len(), 2, "deduplicated"),
            other => panic!("{other:?}"),
        }
    }
}
