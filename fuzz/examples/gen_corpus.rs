//! Writes the fuzz targets' seed corpus (`fuzz/corpus/<target>/`) with the production encoders:
//! real client frames, commands and replies as JSON, events in the Confluent wire format (this
//! build's schema and the v3 one), search queries, message texts and upload bodies.
//! Run from the repo root: `cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus`.

use std::path::Path;

use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use confab_core::avro::to_value;
use confab_core::command::{Command, CommandBody, Outcome, Reply, ReplyTo};
use confab_core::event::{ChannelKind, Event, Payload, ThreadState};
use confab_core::files::Attachment;
use confab_core::ErrorCode;
use confab_fuzz::{block_on, codec, CURRENT_ID, V3_ID, V3_SCHEMA};
use uuid::Uuid;

const WS: Uuid = Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888);
const CH: Uuid = Uuid::from_u128(0xc0ffee00_0000_4000_8000_000000000001);
const ALICE: Uuid = Uuid::from_u128(0xa11ce000_0000_4000_8000_000000000001);
const BOB: Uuid = Uuid::from_u128(0xb0b00000_0000_4000_8000_000000000002);
const MSG: Uuid = Uuid::from_u128(0x1ef0_0000_0000_1000_8000_0000_0000_0001);
const FILE: Uuid = Uuid::from_u128(0xf11e0000_0000_4000_8000_000000000003);

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("corpus file");
}

fn client_frames() {
    let frames = [
        ("ping", r#"{"type":"ping","id":1}"#.to_string()),
        (
            "send",
            format!(
                r#"{{"type":"message:send","channel_id":"{CH}","text":"hi <@{BOB}> @here","client_msg_id":"c-1"}}"#
            ),
        ),
        (
            "reply",
            format!(
                r#"{{"type":"message:send","channel_id":"{CH}","text":"in thread","client_msg_id":"c-2","thread_ts":"{MSG}","also_send_to_channel":true}}"#
            ),
        ),
        (
            "files",
            format!(
                r#"{{"type":"message:send","channel_id":"{CH}","text":"","client_msg_id":"c-3","file_ids":["{FILE}"]}}"#
            ),
        ),
        ("edit", format!(r#"{{"type":"message:edit","channel_id":"{CH}","message_id":"{MSG}","text":"fixed"}}"#)),
        (
            "react",
            format!(
                r#"{{"type":"reaction:add","channel_id":"{CH}","message_id":"{MSG}","emoji":"tada","client_msg_id":"r-1"}}"#
            ),
        ),
        (
            "create",
            format!(r#"{{"type":"channel:create","name":"release-notes","is_private":true,"members":["{BOB}"]}}"#),
        ),
        ("dm", format!(r#"{{"type":"dm:open","user_ids":["{BOB}"],"client_msg_id":"d-1"}}"#)),
        ("resume", format!(r#"{{"type":"resume","channels":{{"{CH}":41}}}}"#)),
        ("mark", format!(r#"{{"type":"channel:mark","channel_id":"{CH}","seq":7}}"#)),
        ("presence", r#"{"type":"presence:set","status":"away"}"#.to_string()),
        ("bad_type", r#"{"type":"message:sned","client_msg_id":"x"}"#.to_string()),
    ];
    for (name, f) in frames {
        write("client_frame", name, f.as_bytes());
    }
}

fn cmd(client_msg_id: Option<&str>, user: Uuid, body: CommandBody) -> Command {
    Command {
        command_id: Uuid::from_u128(0xc0de),
        workspace_id: WS,
        user_id: user,
        channel_id: CH,
        reply_to: ReplyTo { gateway_id: "gw-1".into(), conn_id: 3 },
        issued_at: 1_767_225_600_000,
        client_msg_id: client_msg_id.map(str::to_owned),
        body,
        sealed: Vec::new(),
    }
}

fn lines(items: &[String]) -> Vec<u8> {
    items.join("\n").into_bytes()
}

fn commands() {
    let json = |c: &Command| serde_json::to_string(c).expect("command json");
    let create = cmd(
        None,
        ALICE,
        CommandBody::CreateChannel { name: "general".into(), channel_kind: ChannelKind::Public, members: vec![BOB] },
    );
    let send = |id: &str, text: &str| {
        cmd(
            Some(id),
            ALICE,
            CommandBody::SendMessage { text: text.into(), thread_ts: None, also_in_channel: false, file_ids: vec![] },
        )
    };
    let file = Attachment { file_id: FILE, name: "a.png".into(), size: 12, content_type: "image/png".into() };
    // a session: create, send, retry, share a file, join, react, mark read
    let session = [
        json(&create),
        json(&send("c-1", "hello")),
        json(&send("c-1", "hello")),
        json(&cmd(None, ALICE, CommandBody::ShareFile { file })),
        json(&cmd(None, BOB, CommandBody::JoinChannel)),
        json(&cmd(None, BOB, CommandBody::MarkRead { seq: 2 })),
        json(&cmd(None, ALICE, CommandBody::ArchiveChannel { archived: true })),
    ];
    write("command", "session", &lines(&session));
    write("command", "send", json(&send("c-9", "ship it <!channel>")).as_bytes());
    let edits = [
        json(&create),
        json(&cmd(None, ALICE, CommandBody::EditMessage { message_id: MSG, text: "edited".into() })),
        json(&cmd(None, ALICE, CommandBody::React { message_id: MSG, emoji: "tada".into(), add: true })),
        json(&cmd(None, ALICE, CommandBody::Pin { message_id: MSG, pinned: true })),
        json(&cmd(None, ALICE, CommandBody::DeleteMessage { message_id: MSG })),
        json(&cmd(None, ALICE, CommandBody::Kick { user_id: BOB })),
        json(&cmd(None, ALICE, CommandBody::RenameChannel { name: "renamed".into() })),
    ];
    write("command", "edits", &lines(&edits));
    let reply = |outcome| Reply {
        reply_to: ReplyTo { gateway_id: "gw-1".into(), conn_id: 3 },
        command_id: Uuid::from_u128(0xc0de),
        workspace_id: WS,
        channel_id: CH,
        client_msg_id: Some("c-1".into()),
        outcome,
    };
    let replies = [
        reply(Outcome::Posted { message_id: MSG, seq: 2, ts: 1_767_225_600_000, duplicate: true }),
        reply(Outcome::Rejected { code: ErrorCode::NotAMember, message: "join the channel first".into() }),
    ];
    let replies: Vec<String> = replies.iter().map(|r| serde_json::to_string(r).expect("reply json")).collect();
    write("command", "replies", &lines(&replies));
}

fn events() -> Vec<Event> {
    let event = |seq, payload| Event {
        event_id: Uuid::from_u128(0xe0 + seq as u128),
        workspace_id: WS,
        channel_id: CH,
        actor_id: ALICE,
        occurred_at: 1_767_225_600_000 + seq,
        seq,
        schema_version: confab_core::avro::SCHEMA_VERSION,
        payload,
        sealing: Default::default(),
    };
    let file =
        Attachment {
            file_id: FILE, name: "ré sumé.pdf".into(), size: 1 << 20, content_type: "application/pdf".into()
        };
    vec![
        event(
            1,
            Payload::ChannelCreated { name: "general".into(), kind: ChannelKind::Private, members: vec![ALICE, BOB] },
        ),
        event(
            2,
            Payload::MessagePosted {
                message_id: MSG,
                client_msg_id: "c-1".into(),
                text: "héllo <@b0b00000-0000-4000-8000-000000000002>".into(),
                thread_ts: None,
                also_in_channel: false,
                thread: Some(ThreadState { reply_count: 2, reply_users: vec![BOB] }),
                attachments: vec![file.clone()],
            },
        ),
        event(3, Payload::ReactionChanged { message_id: MSG, emoji: "tada".into(), added: true, users: vec![BOB] }),
        event(4, Payload::MessageDeleted { message_id: MSG, file_ids: vec![FILE] }),
        event(5, Payload::ReadMarked { read_seq: 4 }),
        event(6, Payload::FileShared { file }),
        event(7, Payload::MemberLeft { user_id: BOB }),
    ]
}

fn avro() {
    let codec = codec();
    let v3 = Schema::parse_str(V3_SCHEMA).expect("v3 schema");
    let old = GenericDatumWriter::builder(&v3).validate(false).build().expect("v3 writer");
    let v3_branches = confab_core::avro::payload_branches(&v3).len();
    for e in events() {
        let name = e.payload.kind();
        let framed = codec.encode(&e).expect("encodes");
        assert_eq!(&framed[1..5], &CURRENT_ID.to_be_bytes());
        assert_eq!(block_on(codec.decode(&framed)).expect("decodes"), e, "seed {name} round-trips");
        write("wire_framing", name, &framed);
        // avro_event: a pick byte (even: this build's schema) then the datum alone
        let mut seed = vec![0u8];
        seed.extend_from_slice(&framed[5..]);
        write("avro_event", name, &seed);
        // the same event written by a v3 producer, where v3 has the branch
        let value = to_value(&e);
        let branch = match &value {
            apache_avro::types::Value::Record(fields) => fields.iter().find_map(|(k, v)| match v {
                apache_avro::types::Value::Union(i, _) if k == "payload" => Some(*i as usize),
                _ => None,
            }),
            _ => None,
        };
        let mut body = Vec::new();
        // the unvalidated writer panics on a branch the older schema lacks: skip those
        if branch.is_some_and(|b| b < v3_branches) && old.write_value(&mut body, value).is_ok() {
            let mut framed = vec![0u8];
            framed.extend_from_slice(&V3_ID.to_be_bytes());
            framed.extend_from_slice(&body);
            if block_on(codec.decode(&framed)).is_ok() {
                write("wire_framing", &format!("{name}.v3"), &framed);
                let mut seed = vec![1u8];
                seed.extend_from_slice(&body);
                write("avro_event", &format!("{name}.v3"), &seed);
            }
        }
    }
    write("wire_framing", "unframed", b"{\"not\":\"avro\"}");
    write("wire_framing", "unknown_id", &[0, 0, 0, 0, 9, 2, 0]);
}

fn search_queries() {
    // 4 bytes tz (LE i32 minutes), 4 bytes clock (LE u32 seconds after 2020), then the query
    let prefix = |tz: i32, secs: u32| -> Vec<u8> {
        let mut p = tz.to_le_bytes().to_vec();
        p.extend_from_slice(&secs.to_le_bytes());
        p
    };
    let queries = [
        ("plain", 0, "deploy failed"),
        ("full", 60, r#"deploy "release notes" in:#general from:@ana after:2026-01-01 has:link is:thread"#),
        ("dates", -300, "on:2026-02 before:today during:2025 after:yesterday"),
        ("quoted_in", 330, "in:\"#release notes\" from:me “smart quotes”"),
        ("unknown_ops", 0, "http://x 12:30 to:ana"),
        ("bad_date", 0, "before:tomorrowish"),
        ("unterminated", 0, "\"open phrase"),
    ];
    for (name, tz, q) in queries {
        let mut seed = prefix(tz, 200_000_000);
        seed.extend_from_slice(q.as_bytes());
        write("search_query", name, &seed);
    }
}

fn mention_texts() {
    let texts = [
        ("users", format!("hey <@{ALICE}> and <@{BOB}|bob>, <@{ALICE}> again; <@nope>")),
        ("broadcasts", "ping @channel now, <!here> standup, @everyone".to_string()),
        ("address", "mail me@channel.com @herence".to_string()),
        ("noise", format!("{}<@{BOB}>", "<@".repeat(40))),
        ("nested", format!("<@<@{ALICE}> <@{}>", "x".repeat(130))),
    ];
    for (name, t) in texts {
        write("mentions", name, t.as_bytes());
    }
}

fn upload_bodies() {
    // first byte: bit 0 picks the body (0 new upload, 1 completion), bit 1 the content type
    let bodies: [(&str, u8, String); 5] = [
        ("new", 0, format!(r#"{{"channel_id":"{CH}","name":"a.png","size":12,"content_type":"image/png"}}"#)),
        (
            "new_params",
            2,
            format!(
                r#"{{"channel_id":"{CH}","name":"ré sumé.pdf","size":1048576,"content_type":"Application/PDF; charset=binary"}}"#
            ),
        ),
        (
            "new_unknown_field",
            0,
            format!(r#"{{"channel_id":"{CH}","name":"a","size":1,"content_type":"text/plain","x":1}}"#),
        ),
        ("complete", 1, r#"{"upload_token":"eyJ3cyI6IjEifQ.c2ln"}"#.to_string()),
        ("fields", 3, "invoice\u{202e}fdp.exe\ntext/plain;charset=utf-8".to_string()),
    ];
    for (name, pick, body) in bodies {
        let mut seed = vec![pick];
        seed.extend_from_slice(body.as_bytes());
        write("upload_body", name, &seed);
    }
}

fn main() {
    client_frames();
    commands();
    avro();
    search_queries();
    mention_texts();
    upload_bodies();
    println!("corpus written under fuzz/corpus/");
}
