//! Crypto-shredding, in both modes (issue 18): texts are sealed in the log under keys of their
//! own, and a delete or an edit destroys the key of the text it removes, so that text is
//! unreadable in every copy of the log and in every replay, while everything else replays as
//! before.

use confab_tests::files::share;
use confab_tests::stack::eventually;
use confab_tests::{Client, Mode, Stack};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

confab_tests::conformance!(
    a_deleted_or_replaced_text_is_unreadable_in_the_log_and_replays_without_it,
    a_text_past_its_workspace_retention_is_unreadable_in_the_log,
    a_shortened_retention_erases_older_texts_from_the_log_and_history,
    a_deleted_workspace_is_gone_from_every_store_and_unreadable_in_the_log,
);

const T: Duration = Duration::from_secs(30);

/// `confab events` (the log, opened with the keyring): one JSON value per event, and the raw
/// output. The embedded mode's serve must be stopped.
fn dump_events(stack: &Stack) -> (Vec<Value>, String) {
    let out = stack.confab(&["events"]).output().expect("run confab events");
    assert!(out.status.success(), "confab events failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let events = text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("a JSON line: {l}"))).collect();
    (events, text)
}

/// The log's events once the erasure projector has destroyed the keys `erased` were sealed
/// under (the embedded mode's serve is stopped while the log is read, and started again).
async fn events_once_erased(stack: &mut Stack, erased: &[&str]) -> (Vec<Value>, String) {
    let deadline = std::time::Instant::now() + T;
    loop {
        if stack.single_process() {
            assert!(stack.terminate("serve").success());
        }
        let (events, raw) = dump_events(stack);
        if stack.single_process() {
            stack.restart("serve");
        }
        if erased.iter().all(|text| !raw.contains(text)) {
            return (events, raw);
        }
        assert!(std::time::Instant::now() < deadline, "the erased texts are still readable in the log:\n{raw}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn of_message<'a>(events: &'a [Value], message_id: &str, kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["message_id"] == message_id && e["kind"] == kind).collect()
}

async fn a_deleted_or_replaced_text_is_unreadable_in_the_log_and_replays_without_it(mode: Mode) {
    let mut stack = Stack::start(mode, 1).await;
    let ws = stack.create_workspace("shred").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice]).await;
    let marker = |what: &str| format!("{what}{}", uuid::Uuid::new_v4().simple());
    let (deleted, replaced, replacement, kept) =
        (marker("deleted"), marker("replaced"), marker("edit"), marker("kept"));
    // three files: one carried by the message to be deleted, one deleted by itself, one kept
    let (carried, unshared, kept_file) = (marker("carried"), marker("unshared"), marker("keptfile"));
    let mut file_ids = Vec::new();
    for name in [&carried, &unshared, &kept_file] {
        file_ids.push(share(&stack, &token, &ch, &format!("{name}.txt"), b"bytes", "text/plain").await);
    }
    // ingest rebuilds its state from the log before the files are attached: a message carries
    // its files' names, which ingest must open from the log (the kept file's name is checked)
    if stack.single_process() {
        assert!(stack.terminate("serve").success());
        stack.restart("serve");
    } else {
        stack.kill("ingest");
        stack.restart("ingest");
    }
    let mut a = Client::connect(&stack.addr("gw0"), &token).await.unwrap();
    let mut post = async |text: &str, cmid: &str, files: &[&String]| {
        let frame = json!({"type": "message:send", "channel_id": ch, "text": text, "file_ids": files});
        let ack = a.command(frame, cmid).await;
        assert_eq!(ack["type"], "message:ack", "{ack}");
        ack["message_id"].as_str().unwrap().to_string()
    };
    let deleted_id = post(&deleted, "c1", &[&file_ids[0]]).await;
    let replaced_id = post(&replaced, "c2", &[]).await;
    let kept_id = post(&kept, "c3", &[&file_ids[2]]).await;
    let (status, _) = stack.call(Method::DELETE, "gw0", &format!("/api/files/{}", file_ids[1]), &token, None).await;
    assert_eq!(status, 200);
    let edit = json!({"type": "message:edit", "channel_id": ch, "message_id": replaced_id, "text": replacement});
    assert_eq!(a.command(edit, "e1").await["type"], "ok");
    let delete = json!({"type": "message:delete", "channel_id": ch, "message_id": deleted_id});
    assert_eq!(a.command(delete, "d1").await["type"], "ok");

    // what Kafka keeps on disk of the events and commands topics never held any text in the
    // clear (the embedded command log is held in memory only)
    if let Some(dir) = stack.services.as_ref().and_then(|s| s.kafka_data_dir.clone()) {
        for topic in ["events", "commands"] {
            let segments = topic_bytes(&dir, &format!("{}.{topic}-", stack.keyspace()));
            assert!(segments.len() > 1_000, "the {topic} topic's segments were found ({} bytes)", segments.len());
            for text in [&deleted, &replaced, &replacement, &kept, &carried, &unshared, &kept_file] {
                assert!(
                    !contains(&segments, text.as_bytes()),
                    "`{text}` is in the {topic} topic's segments in the clear"
                );
            }
        }
    }

    // the log, read through the keyring: the deleted text and the replaced version are gone,
    // the edit and the untouched message are readable
    let (events, raw) = events_once_erased(&mut stack, &[&deleted, &replaced, &carried, &unshared]).await;
    assert!(raw.contains(&kept) && raw.contains(&kept_file) && raw.contains(&replacement), "{raw}");
    let posted = of_message(&events, &deleted_id, "message_posted");
    assert_eq!(posted.len(), 1, "{events:?}");
    assert_eq!(posted[0]["text"].as_str(), Some(""));
    let posted = of_message(&events, &replaced_id, "message_posted");
    assert_eq!(posted[0]["redacted"], json!(["text"]), "an edit erases the version it replaces");
    let edited = of_message(&events, &replaced_id, "message_edited");
    assert_eq!((edited[0]["text"].as_str(), edited[0].get("redacted")), (Some(replacement.as_str()), None));
    let kept_post = of_message(&events, &kept_id, "message_posted");
    assert_eq!((kept_post[0]["text"].as_str(), kept_post[0].get("redacted")), (Some(kept.as_str()), None));
    // the edit and the delete named the keys they destroyed: the versions they replaced
    let deleting = of_message(&events, &deleted_id, "message_deleted");
    assert_eq!(edited[0]["destroys_keys"], json!([posted_event_id(&events, &replaced_id)]));
    // file names: erased with the file, or with the message carrying it, wherever they appeared
    let file_name = |file: &str| format!("file_name:{file}");
    let shares: Vec<&Value> = events.iter().filter(|e| e["kind"] == "file_shared").collect();
    assert_eq!(shares.len(), 3, "{events:?}");
    assert_eq!(shares[0]["redacted"], json!([file_name(&file_ids[0])]));
    assert_eq!(shares[1]["redacted"], json!([file_name(&file_ids[1])]));
    assert_eq!(shares[2]["files"][0]["name"], format!("{kept_file}.txt"));
    assert_eq!(kept_post[0]["files"][0]["name"], format!("{kept_file}.txt"));
    let carrying = of_message(&events, &deleted_id, "message_posted");
    assert_eq!(carrying[0]["redacted"], json!(["text", file_name(&file_ids[0])]));
    assert_eq!(carrying[0]["files"][0]["name"], "");
    assert_eq!(deleting[0]["destroys_keys"], json!([posted_event_id(&events, &deleted_id), file_ids[0]]));

    // the fanout stream's resume window keeps no erased text either: a client resuming from the
    // channel's start replays the rest and is told about the hole
    let stream = eventually(T, "the erased texts gone from the resume window", || async {
        let frames = resume_from_start(&stack, &token, &ch).await;
        let raw = serde_json::to_string(&frames).unwrap();
        let left: Vec<&String> =
            [&deleted, &replaced, &carried].into_iter().filter(|t| raw.contains(t.as_str())).collect();
        left.is_empty().then_some(raw)
    })
    .await;
    assert!(stream.contains(&kept) && stream.contains(&replacement), "{stream}");
    if let Some(services) = &stack.services {
        let mut redis =
            redis::Client::open(services.redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let key = format!("{}:{{{ws}}}:fanout", stack.keyspace());
        let entries: redis::Value =
            redis::cmd("XRANGE").arg(&key).arg("-").arg("+").query_async(&mut redis).await.unwrap();
        let raw = format!("{entries:?}");
        assert!(raw.contains(&kept), "the stream was read: {raw}");
        for text in [&deleted, &replaced] {
            assert!(!raw.contains(text.as_str()), "`{text}` is still in Redis's fanout stream");
        }
    }

    // a timeline rebuilt from the log holds the same messages: the tombstone, the edited text
    let before = stack.history_all("gw0", &ch, &token, 100).await;
    if stack.single_process() {
        assert!(stack.terminate("serve").success());
    }
    let out =
        stack.confab(&["replay", "--projection", "timeline", "--from", "earliest", "--truncate"]).output().unwrap();
    assert!(out.status.success(), "replay failed:\n{}", String::from_utf8_lossy(&out.stderr));
    if stack.single_process() {
        stack.restart("serve");
    }
    let after = eventually(T, "the rebuilt timeline", || async {
        let h = stack.history_all("gw0", &ch, &token, 100).await;
        (h.len() == before.len()).then_some(h)
    })
    .await;
    assert_eq!(after, before, "the rebuilt timeline is the one before");
    let texts: Vec<&str> = after.iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(texts.contains(&replacement.as_str()) && texts.contains(&kept.as_str()), "{after:?}");
    assert!(!texts.contains(&deleted.as_str()) && !texts.contains(&replaced.as_str()), "{after:?}");
}

async fn a_text_past_its_workspace_retention_is_unreadable_in_the_log(mode: Mode) {
    let mut stack = Stack::start(mode, 1).await;
    let marker = |what: &str| format!("{what}{}", uuid::Uuid::new_v4().simple());
    let (expiring, kept) = (marker("expiring"), marker("kept"));
    // a workspace that keeps messages 3 s, and one that keeps them for ever
    let mut ids = Vec::new();
    for (ws, text) in [
        (stack.create_workspace_with_retention("short", 3).await, &expiring),
        (stack.create_workspace("long").await, &kept),
    ] {
        let (alice, token) = stack.create_user(&ws, "alice").await;
        let ch = stack.create_channel(&ws, "general", false, &[&alice]).await;
        let mut a = Client::connect(&stack.addr("gw0"), &token).await.unwrap();
        let ack = a.command(json!({"type": "message:send", "channel_id": ch, "text": text}), "r1").await;
        assert_eq!(ack["type"], "message:ack", "{ack}");
        ids.push(ack["message_id"].as_str().unwrap().to_string());
    }
    // past the retention its key is gone: the text is unreadable in the log; the other stays
    let (events, raw) = events_once_erased(&mut stack, &[&expiring]).await;
    assert!(raw.contains(&kept), "{raw}");
    let expired = of_message(&events, &ids[0], "message_posted");
    assert_eq!((expired[0]["text"].as_str(), &expired[0]["redacted"]), (Some(""), &json!(["text"])));
    assert_eq!(of_message(&events, &ids[1], "message_posted")[0]["text"], kept.as_str());
}

async fn a_shortened_retention_erases_older_texts_from_the_log_and_history(mode: Mode) {
    let mut stack = Stack::start(mode, 1).await;
    let marker = |what: &str| format!("{what}{}", uuid::Uuid::new_v4().simple());
    let (old, kept) = (marker("old"), marker("kept"));
    // two workspaces that keep messages for ever, each with one message
    let mut sent = Vec::new();
    for (name, text) in [("shortened", &old), ("untouched", &kept)] {
        let ws = stack.create_workspace(name).await;
        let (alice, token) = stack.create_user(&ws, "alice").await;
        let ch = stack.create_channel(&ws, "general", false, &[&alice]).await;
        let mut a = Client::connect(&stack.addr("gw0"), &token).await.unwrap();
        let ack = a.command(json!({"type": "message:send", "channel_id": ch, "text": text}), "r1").await;
        assert_eq!(ack["type"], "message:ack", "{ack}");
        sent.push((ws, ch, token, ack["message_id"].as_str().unwrap().to_string()));
    }
    let (ws, ch, token, old_id) = &sent[0];
    eventually(T, "the old message in history", || async {
        stack.history_all("gw0", ch, token, 50).await.iter().any(|m| m["text"] == old.as_str()).then_some(())
    })
    .await;
    // its message is now 3 s old; the first workspace's retention becomes 2 s
    tokio::time::sleep(Duration::from_secs(3)).await;
    let admin_url = format!("http://{}", stack.admin_addr("gw0"));
    let out = stack
        .confab(&["admin", "--url", &admin_url, "--admin-key", &stack.admin_key])
        .args(["set-retention", "--workspace", ws, "--secs", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "confab admin set-retention: {}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((answer["retention_secs"].as_i64(), answer["previous_retention_secs"].as_i64()), (Some(2), Some(0)));
    let history = stack.history_all("gw0", ch, token, 50).await;
    assert!(history.iter().all(|m| m["text"] != old.as_str()), "history applies the new window at once: {history:?}");
    // the sweep destroys the key it was sealed under: unreadable in the log; the other stays
    let (events, raw) = events_once_erased(&mut stack, &[&old]).await;
    assert!(raw.contains(&kept), "the other workspace keeps its text: {raw}");
    let erased = of_message(&events, old_id, "message_posted");
    assert_eq!((erased[0]["text"].as_str(), &erased[0]["redacted"]), (Some(""), &json!(["text"])));
    let (status, body) = stack.admin_put(&format!("/admin/workspaces/{ws}/retention"), json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_field")), "{body}");
    let (status, body) = stack
        .admin_put(&format!("/admin/workspaces/{}/retention", uuid::Uuid::new_v4()), json!({"retention_days": 1}))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
}

async fn a_deleted_workspace_is_gone_from_every_store_and_unreadable_in_the_log(mode: Mode) {
    let mut stack = Stack::start(mode, 1).await;
    let marker = |what: &str| format!("{what}{}", uuid::Uuid::new_v4().simple());
    let (said, file_name, kept) = (marker("said"), format!("{}.txt", marker("filename")), marker("kept"));
    let ws = stack.create_workspace("doomed").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let (bob, bob_token) = stack.create_user(&ws, "bob").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice, &bob]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &token).await.unwrap();
    let ack = a.command(json!({"type": "message:send", "channel_id": ch, "text": said}), "d1").await;
    let said_id = ack["message_id"].as_str().unwrap().to_string();
    let reply = json!({"type": "message:send", "channel_id": ch, "text": format!("re {said}"), "thread_ts": said_id});
    assert_eq!(a.command(reply, "d2").await["type"], "message:ack");
    let file_id = share(&stack, &token, &ch, &file_name, b"the file's bytes", "text/plain").await;
    let phone = json!({"platform": "fcm", "token": "alice-phone"});
    assert_eq!(stack.call(Method::POST, "gw0", "/api/devices", &token, Some(phone)).await.0, 201);
    // another workspace, untouched
    let other = stack.create_workspace("kept").await;
    let (carol, carol_token) = stack.create_user(&other, "carol").await;
    let other_ch = stack.create_channel(&other, "general", false, &[&carol]).await;
    let mut c = Client::connect(&stack.addr("gw0"), &carol_token).await.unwrap();
    assert_eq!(
        c.command(json!({"type": "message:send", "channel_id": other_ch, "text": kept}), "k1").await["type"],
        "message:ack"
    );
    let search = format!("/api/search?q={said}");
    eventually(T, "the message to be searchable", || async {
        let (_, body) = stack.get("gw0", &search, &token).await;
        (body["total"].as_u64() > Some(0) || body["messages"].as_array().is_some_and(|m| !m.is_empty())).then_some(())
    })
    .await;
    let (status, download) = stack.get("gw0", &format!("/api/files/{file_id}"), &token).await;
    assert_eq!(status, 200, "{download}");
    let url = download["url"].as_str().unwrap().to_string();
    assert_eq!(reqwest::get(&url).await.unwrap().status().as_u16(), 200, "the file downloads before");

    let admin_url = format!("http://{}", stack.admin_addr("gw0"));
    let out = stack
        .confab(&["admin", "--url", &admin_url, "--admin-key", &stack.admin_key])
        .args(["delete-workspace", "--workspace", &ws])
        .output()
        .unwrap();
    assert!(out.status.success(), "confab admin delete-workspace: {}", String::from_utf8_lossy(&out.stderr));

    // at once: no token of it works, its sockets close, its directory is gone
    for t in [&token, &bob_token] {
        let (status, body) = stack.get("gw0", "/api/channels", t).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("workspace_deleted")), "{body}");
    }
    assert_eq!(a.close_code(T).await, Some(4003), "alice's socket closes");
    let (status, body) = stack.admin_post(&format!("/admin/workspaces/{ws}/users"), json!({"name": "mallory"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    for gone in [ws.clone(), uuid::Uuid::new_v4().to_string()] {
        let url = format!("{admin_url}/admin/workspaces/{gone}");
        let resp = reqwest::Client::new().delete(url).bearer_auth(&stack.admin_key).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "a workspace deleted already, or that never was");
    }
    // then, from the log: its file's bytes go
    eventually(T, "the file's bytes to be deleted", || async {
        (reqwest::get(&url).await.unwrap().status().as_u16() != 200).then_some(())
    })
    .await;
    if let Some(services) = stack.services.clone() {
        // its search documents and every Redis key of it (streams, presence, rate limits)
        let index = format!("{}-messages", stack.namespace.to_ascii_lowercase());
        let count = format!("{}/{index}/_count", services.opensearch);
        let query = json!({"query": {"term": {"workspace_id": ws}}});
        eventually(T, "its search documents to be deleted", || async {
            let v: Value = reqwest::Client::new().post(&count).json(&query).send().await.ok()?.json().await.ok()?;
            (v["count"] == 0).then_some(())
        })
        .await;
        let mut conn =
            redis::Client::open(services.redis.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let pattern = format!("*{{{ws}}}*");
        eventually(T, "its Redis keys to be deleted", || {
            let (mut conn, pattern) = (conn.clone(), pattern.clone());
            async move {
                let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut conn).await.ok()?;
                keys.is_empty().then_some(())
            }
        })
        .await;
        let _: () = redis::cmd("PING").query_async(&mut conn).await.unwrap();
        // and its rows in Cassandra: directory and timeline
        let session = scylla::client::session_builder::SessionBuilder::new()
            .known_node(&services.cassandra)
            .build()
            .await
            .expect("a Cassandra session");
        let ks = stack.keyspace();
        let ws_id: uuid::Uuid = ws.parse().unwrap();
        let ch_id: uuid::Uuid = ch.parse().unwrap();
        let file: uuid::Uuid = file_id.parse().unwrap();
        let counts = [
            (format!("SELECT COUNT(*) FROM {ks}.workspaces WHERE workspace_id = {ws_id}"), "workspace"),
            (format!("SELECT COUNT(*) FROM {ks}.users WHERE workspace_id = {ws_id}"), "users"),
            (format!("SELECT COUNT(*) FROM {ks}.channels WHERE workspace_id = {ws_id}"), "channels"),
            (format!("SELECT COUNT(*) FROM {ks}.messages WHERE workspace_id = {ws_id} AND channel_id = {ch_id}"), "messages"),
            (format!("SELECT COUNT(*) FROM {ks}.thread_replies WHERE workspace_id = {ws_id} AND channel_id = {ch_id} AND thread_ts = {said_id}"), "replies"),
            (format!("SELECT COUNT(*) FROM {ks}.files WHERE workspace_id = {ws_id} AND file_id = {file}"), "files"),
            (format!("SELECT COUNT(*) FROM {ks}.workspace_keys WHERE workspace_id = {ws_id}"), "workspace key"),
        ];
        for (cql, what) in counts {
            let left = eventually(T, &format!("its {what} rows to be deleted"), || {
                let (session, cql) = (&session, cql.clone());
                async move {
                    let rows = session.query_unpaged(cql, ()).await.ok()?.into_rows_result().ok()?;
                    let (n,): (i64,) = rows.first_row().ok()?;
                    (n == 0).then_some(n)
                }
            })
            .await;
            assert_eq!(left, 0, "{what}");
        }
    }
    // and its key: every text and file name of it is unreadable in the log; the other stays
    let (events, raw) = events_once_erased(&mut stack, &[&said, &file_name]).await;
    assert!(raw.contains(&kept), "the other workspace keeps its text: {raw}");
    let posted = of_message(&events, &said_id, "message_posted");
    assert_eq!((posted[0]["text"].as_str(), &posted[0]["redacted"]), (Some(""), &json!(["text"])));
    let deleted = events.iter().filter(|e| e["workspace_id"] == ws.as_str() && e["action"] == "workspace_deleted");
    assert_eq!(deleted.count(), 1, "the audit record of the deletion stays");
    // the other workspace works as before
    let history = stack.history_all("gw0", &other_ch, &carol_token, 50).await;
    assert!(history.iter().any(|m| m["text"] == kept.as_str()), "{history:?}");
}

/// The frames a client resuming `ch` from its start receives, up to `resume:done`.
async fn resume_from_start(stack: &Stack, token: &str, ch: &str) -> Vec<Value> {
    let mut c = Client::connect_resuming(&stack.addr("gw0"), token).await.unwrap();
    c.send(json!({"type": "resume", "channels": {ch: 0}})).await;
    let mut frames = Vec::new();
    loop {
        let f = c.next(T).await.expect("frames until resume:done");
        if f["type"] == "resume:done" {
            frames.push(f);
            return frames;
        }
        frames.push(f);
    }
}

fn posted_event_id(events: &[Value], message_id: &str) -> Value {
    of_message(events, message_id, "message_posted")[0]["event_id"].clone()
}

/// Every byte of every file of the topic's partitions (`<dir>/<topic>-<n>/`).
fn topic_bytes(dir: &str, prefix: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for partition in std::fs::read_dir(dir).expect("the Kafka data directory").flatten() {
        if !partition.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        for file in std::fs::read_dir(partition.path()).unwrap().flatten() {
            bytes.extend(std::fs::read(file.path()).unwrap_or_default());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
