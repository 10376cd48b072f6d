//! Resume and typing against hostile input (issue 16, items 6, 13 and 14), on both adapter sets:
//! positions are validated, only channels can be resumed or typed into, a resume's work is
//! bounded (what it does not replay is a gap), replayed frames never carry text that was edited
//! away or deleted (the frames that carried it leave the stream: a gap), a flood of typing never pushes events out of the resume window, and a
//! resume that cannot be served says so with its own error code.

use confab_tests::stack::eventually;
use confab_tests::{conformance, Client, Mode, Stack};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

async fn conversation(stack: &Stack) -> (String, String, (String, String), (String, String)) {
    let ws = stack.create_workspace("acme").await;
    let alice = stack.create_user(&ws, "alice").await;
    let bob = stack.create_user(&ws, "bob").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice.0, &bob.0]).await;
    (ws, ch, alice, bob)
}

/// Waits until a fresh socket of `token` is subscribed to `ch` (in distributed mode the
/// membership index follows a channel's creation a moment later).
async fn wait_until_subscribed(stack: &Stack, token: &str, ch: &str) {
    eventually(T, "the channel in the socket's subscriptions", || async {
        let mut c = Client::connect_resuming(&stack.addr("gw0"), token).await.unwrap();
        c.send(json!({"type": "resume", "channels": {ch: 0}})).await;
        let done = c.expect("resume:done", T).await;
        done["channels"].get(ch).map(|_| ())
    })
    .await;
}

/// Sends `texts` into `ch` and returns their message ids, in order.
async fn send_all(a: &mut Client, ch: &str, texts: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for text in texts {
        let ack = a
            .command(
                json!({"type": "message:send", "channel_id": ch, "text": text}),
                &format!("send-{}", uuid::Uuid::new_v4()),
            )
            .await;
        assert_eq!(ack["type"], "message:ack", "{ack}");
        ids.push(ack["message_id"].as_str().unwrap().to_string());
    }
    ids
}

/// Reconnects `token` with `?resume=1`, sends `resume` for `positions`, and returns the frames
/// replayed before `resume:done`, and `resume:done` itself.
async fn resume(stack: &Stack, token: &str, positions: Value) -> (Vec<Value>, Value) {
    let mut b = Client::connect_resuming(&stack.addr("gw0"), token).await.unwrap();
    b.send(json!({"type": "resume", "channels": positions})).await;
    let mut replayed = Vec::new();
    loop {
        let f = b.next(T).await.expect("resume:done within the timeout");
        match f["type"].as_str() {
            Some("resume:done") => return (replayed, f),
            Some("error") => panic!("resume refused: {f}"),
            // live, not replayed: presence is gathered and sent whenever it changes
            Some("presence:change") => {}
            _ => replayed.push(f),
        }
    }
}

async fn typing_into_the_workspace_or_ones_own_topic_is_refused(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let (ws, _ch, alice, bob) = conversation(&stack).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    let mut b = Client::connect(&stack.addr("gw0"), &bob.1).await.unwrap();
    b.ping().await;
    // the socket follows the workspace's topic (presence) and its own (read markers): neither
    // is a channel; typing into the workspace's used to reach everyone in it
    for topic in [&ws, &alice.0] {
        a.send(json!({"type": "typing:start", "channel_id": topic})).await;
        let e = a.expect("error", T).await;
        assert_eq!(e["code"], "channel_not_found", "typing into {topic}: {e}");
    }
    let seen = b.drain(Duration::from_millis(1500)).await;
    assert!(seen.iter().all(|f| f["type"] != "typing"), "{seen:?}");
}

async fn a_resume_with_a_bad_position_or_a_topic_that_is_no_channel_is_refused(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let (ws, ch, _alice, bob) = conversation(&stack).await;
    wait_until_subscribed(&stack, &bob.1, &ch).await;
    let mut b = Client::connect_resuming(&stack.addr("gw0"), &bob.1).await.unwrap();
    b.send(json!({"type": "resume", "channels": {ch.clone(): -1}})).await;
    let e = b.expect("error", T).await;
    assert_eq!(e["code"], "invalid_field", "{e}");
    // the workspace's topic and the user's own are answered as not channels of theirs
    b.send(json!({"type": "resume", "channels": {ws.clone(): 0, bob.0.clone(): 0, ch.clone(): 0}})).await;
    let done = b.expect("resume:done", T).await;
    let mut not_members: Vec<&str> =
        done["not_members"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    not_members.sort();
    let mut want = vec![ws.as_str(), bob.0.as_str()];
    want.sort();
    assert_eq!(not_members, want, "{done}");
    assert_eq!(done["channels"][&ch], 1, "the channel itself is resumed: {done}");
    b.ping().await;
}

async fn a_resume_never_replays_text_that_was_edited_or_deleted(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let (_ws, ch, alice, bob) = conversation(&stack).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    // bob is away (he saw seq 1, the channel's creation) while alice writes, edits and deletes
    let ids = send_all(&mut a, &ch, &["the code is hunter2", "first draft", "stays as written"]).await;
    let edit = json!({"type": "message:edit", "channel_id": ch, "message_id": ids[1], "text": "final words"});
    assert_eq!(a.command(edit, "edit").await["type"], "ok");
    let delete = json!({"type": "message:delete", "channel_id": ch, "message_id": ids[0]});
    assert_eq!(a.command(delete, "delete").await["type"], "ok");
    // the delete is in the fanout stream once alice's own socket gets it
    a.expect("message:deleted", T).await;
    // (the erasure follows the delete's publication: look until it is done)
    let (replayed, done) = eventually(T, "the erased entries gone from the stream", || async {
        let (replayed, done) = resume(&stack, &bob.1, json!({ch.clone(): 1})).await;
        (done["gaps"] != json!([])).then_some((replayed, done))
    })
    .await;
    let all = serde_json::to_string(&replayed).unwrap();
    assert!(!all.contains("hunter2"), "deleted text replayed: {all}");
    assert!(!all.contains("first draft"), "text edited away replayed: {all}");
    // the fanout stream no longer holds the frames that carried the erased texts (crypto-
    // shredding reaches the resume window): the stretch they were in is a gap, which the client
    // fetches from history; what follows is replayed with the current text
    assert_eq!(done["gaps"], json!([{"channel_id": ch, "from_seq": 2, "to_seq": 3}]), "{done}");
    let news: Vec<&Value> = replayed.iter().filter(|f| f["type"] == "message:new").collect();
    assert_eq!(news.len(), 1, "the untouched message is replayed: {all}");
    assert_eq!(news[0]["message"]["text"], "stays as written");
    let seq_of = |f: &Value| f["seq"].as_i64().or(f["message"]["seq"].as_i64());
    let seqs: Vec<i64> =
        replayed.iter().map(|f| seq_of(f).unwrap_or_else(|| panic!("a replayed frame without a seq: {f}"))).collect();
    assert_eq!(seqs, [4, 5, 6], "the edit and the delete follow, in order");
    assert_eq!(replayed[1]["text"], "final words", "the edit's frame carries the current text");
    // history, where the client fills the gap, has the deleted message's tombstone and the edit
    eventually(T, "the tombstone and the edit in history", || async {
        let history = stack.history_all("gw0", &ch, &bob.1, 50).await;
        let texts: Vec<(&str, bool)> = history
            .iter()
            .map(|m| (m["text"].as_str().unwrap_or(""), m["deleted"].as_bool().unwrap_or(false)))
            .collect();
        (texts.contains(&("", true)) && texts.contains(&("final words", false))).then_some(())
    })
    .await;
}

async fn a_resume_scans_a_bounded_window_and_reports_the_rest_as_gaps(mode: Mode) {
    let env = [("CONFAB_GATEWAY__RESUME_EXTRA_SCAN", "20")];
    let stack = Stack::start_custom(mode, 1, None, &env).await;
    let (ws, busy, alice, bob) = conversation(&stack).await;
    let quiet = stack.create_channel(&ws, "quiet", false, &[&alice.0, &bob.0]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    send_all(&mut a, &quiet, &["one quiet message"]).await;
    let busy_texts: Vec<String> = (0..100).map(|i| format!("busy {i}")).collect();
    send_all(&mut a, &busy, &busy_texts.iter().map(String::as_str).collect::<Vec<_>>()).await;
    // wait until the last one is in the stream
    a.expect_where("the last busy message", T, |f| f["message"]["text"] == "busy 99").await;
    // bob has busy up to seq 97 ("busy 95"); the quiet channel's message lies 100 entries
    // back: past the 5 missed + 20 the resume may read
    let (replayed, done) = resume(&stack, &bob.1, json!({quiet.clone(): 1, busy.clone(): 97})).await;
    let texts: Vec<&str> = replayed.iter().filter_map(|f| f["message"]["text"].as_str()).collect();
    assert_eq!(texts, ["busy 96", "busy 97", "busy 98", "busy 99"], "{done}");
    assert_eq!(done["gaps"], json!([{"channel_id": quiet, "from_seq": 2, "to_seq": 2}]), "{done}");
}

async fn a_typing_flood_never_pushes_events_out_of_the_resume_window(mode: Mode) {
    let env = [("CONFAB_EMBEDDED__FANOUT_STREAM_MAX_LEN", "60"), ("CONFAB_REDIS__STREAM_MAX_LEN", "60")];
    let stack = Stack::start_custom(mode, 1, None, &env).await;
    let (ws, ch, alice, bob) = conversation(&stack).await;
    let mut rooms = Vec::new();
    for i in 0..20 {
        rooms.push(stack.create_channel(&ws, &format!("room{i}"), false, &[&alice.0, &bob.0]).await);
    }
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    send_all(&mut a, &ch, &["m1", "m2", "m3", "m4", "m5"]).await;
    a.expect_where("m5 in the stream", T, |f| f["message"]["text"] == "m5").await;
    // 10 sockets × 21 channels: 210 typing frames (one per socket and channel: they coalesce)
    let mut typists = Vec::new();
    for _ in 0..10 {
        let mut t = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
        for room in rooms.iter().chain([&ch]) {
            t.send(json!({"type": "typing:start", "channel_id": room})).await;
        }
        t.ping().await;
        typists.push(t);
    }
    let (replayed, done) = resume(&stack, &bob.1, json!({ch.clone(): 1})).await;
    assert_eq!(done["gaps"], json!([]), "typing pushed events out of the window: {done}");
    let texts: Vec<&str> = replayed.iter().filter_map(|f| f["message"]["text"].as_str()).collect();
    assert_eq!(texts, ["m1", "m2", "m3", "m4", "m5"]);
    assert!(replayed.iter().all(|f| f["type"] != "typing"), "typing is never replayed");
}

conformance!(
    typing_into_the_workspace_or_ones_own_topic_is_refused,
    a_resume_with_a_bad_position_or_a_topic_that_is_no_channel_is_refused,
    a_resume_never_replays_text_that_was_edited_or_deleted,
    a_resume_scans_a_bounded_window_and_reports_the_rest_as_gaps,
    a_typing_flood_never_pushes_events_out_of_the_resume_window,
);

/// With Redis gone, a resume is answered `resume_unavailable` (clients fall back to HTTP
/// history), and the socket stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_that_cannot_be_served_says_so_with_its_own_code() {
    if !confab_tests::servers_available(Mode::Distributed) {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let mut redis = std::process::Command::new("redis-server")
        .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    std::thread::sleep(Duration::from_millis(300));
    let stack = Stack::start_with(Mode::Distributed, 1, Some(format!("redis://127.0.0.1:{port}/"))).await;
    let (_ws, ch, _alice, bob) = conversation(&stack).await;
    wait_until_subscribed(&stack, &bob.1, &ch).await;
    let mut b = Client::connect_resuming(&stack.addr("gw0"), &bob.1).await.unwrap();
    redis.kill().unwrap();
    let _ = redis.wait();
    b.send(json!({"type": "resume", "channels": {ch: 0}})).await;
    let e = b.expect("error", T).await;
    assert_eq!(e["code"], "resume_unavailable", "{e}");
    b.ping().await;
}
