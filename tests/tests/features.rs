//! The Slack feature set (issue 4), each behaviour written once and run against both adapter
//! sets like `conformance.rs`: channel management and private-channel invisibility, DMs and
//! group DMs, threads, pins, mentions and unread counts, history around a message.

use confab_tests::stack::eventually;
use confab_tests::{conformance, Client, Mode, Stack};
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);
const QUIET: Duration = Duration::from_millis(1500);

conformance!(
    channels_are_managed_and_private_ones_stay_invisible,
    direct_messages_have_fixed_members_and_one_id_per_set_of_people,
    threads_keep_replies_out_of_the_channel_and_summarize_on_the_parent,
    pins_read_markers_unread_and_mention_counts,
    a_mention_outlives_a_flood_and_counts_stop_at_the_window,
    history_pages_both_ways_and_around_a_message,
    presence_follows_every_device_and_reaches_the_workspace_only,
    a_dead_gateways_users_go_offline_after_the_heartbeat_ttl,
);

/// A workspace with three users. Returns (ws, alice, bob, carol), each user as (id, token).
async fn team(stack: &Stack) -> (String, (String, String), (String, String), (String, String)) {
    let ws = stack.create_workspace("acme").await;
    let alice = stack.create_user(&ws, "alice").await;
    let bob = stack.create_user(&ws, "bob").await;
    let carol = stack.create_user(&ws, "carol").await;
    (ws, alice, bob, carol)
}

fn ok(reply: &Value) -> &Value {
    assert_eq!(reply["type"], "ok", "expected ok: {reply}");
    reply
}

fn code(reply: &Value) -> &str {
    assert_eq!(reply["type"], "error", "expected an error: {reply}");
    reply["code"].as_str().unwrap()
}

/// The channel list entry named `name`, once it is there.
async fn listed(stack: &Stack, token: &str, name: &str) -> Value {
    eventually(T, &format!("channel {name} listed"), || async {
        let (status, body) = stack.get("gw0", "/api/channels", token).await;
        assert_eq!(status, 200, "{body}");
        body["channels"].as_array().unwrap().iter().find(|c| c["name"] == name).cloned()
    })
    .await
}

async fn channel_names(stack: &Stack, token: &str) -> Vec<String> {
    let (status, body) = stack.get("gw0", "/api/channels", token).await;
    assert_eq!(status, 200, "{body}");
    body["channels"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
}

/// Whether no `message:new` with `text` arrives within a quiet period.
async fn never_sees(c: &mut Client, text: &str) -> bool {
    !c.drain(QUIET).await.iter().any(|f| f["type"] == "message:new" && f["message"]["text"] == text)
}

async fn channels_are_managed_and_private_ones_stay_invisible(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let (_ws, alice, bob, carol) = team(&stack).await;
    let gw = stack.addr("gw0");
    // who am I, and who is here
    let (status, me) = stack.get("gw0", "/api/me", &alice.1).await;
    assert_eq!(
        (status, me["name"].as_str(), me["workspace_name"].as_str(), me["user_id"].as_str()),
        (200, Some("alice"), Some("acme"), Some(alice.0.as_str())),
        "{me}"
    );
    let (_, users) = stack.get("gw0", "/api/users", &bob.1).await;
    let names: Vec<&str> = users["users"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let mut a = Client::connect(&gw, &alice.1).await.unwrap();
    let mut b = Client::connect(&gw, &bob.1).await.unwrap();
    let mut c = Client::connect(&gw, &carol.1).await.unwrap();

    // create a public and a private channel over the socket
    let eng = ok(&a.command(json!({"type": "channel:create", "name": "eng"}), "c1").await)["channel_id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = a.expect("channel:created", T).await;
    assert_eq!((created["channel_id"].as_str(), created["kind"].as_str()), (Some(eng.as_str()), Some("public")));
    let secret = ok(&a.command(json!({"type": "channel:create", "name": "secret", "is_private": true}), "c2").await)
        ["channel_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(a.command(json!({"type": "channel:create", "name": " "}), "c3").await["code"], "invalid_field");

    // a non-member sees the public channel, never the private one
    let listing = listed(&stack, &carol.1, "eng").await;
    assert_eq!(listing["is_member"], false);
    listed(&stack, &alice.1, "secret").await;
    assert!(!channel_names(&stack, &carol.1).await.contains(&"secret".to_string()));
    assert_eq!(stack.get("gw0", &format!("/api/channels/{secret}"), &carol.1).await.0, 404);
    assert_eq!(stack.get("gw0", &format!("/api/channels/{secret}/messages"), &carol.1).await.0, 404);
    assert_eq!(
        code(&c.command(json!({"type": "channel:join", "channel_id": secret}), "j1").await),
        "channel_not_found"
    );
    assert_eq!(
        code(&c.command(json!({"type": "message:send", "channel_id": secret, "text": "hi"}), "s1").await),
        "channel_not_found"
    );
    // ...but may read a public channel's history without joining, as in Slack
    assert_eq!(stack.get("gw0", &format!("/api/channels/{eng}/messages"), &carol.1).await.0, 200);

    // join and leave a public channel; the others see both
    c.send(json!({"type": "channel:join", "channel_id": eng})).await;
    let joined = a.expect("channel:joined", T).await;
    assert_eq!((joined["user_id"].as_str(), joined.get("by")), (Some(carol.0.as_str()), None));
    ok(&c.command(json!({"type": "channel:leave", "channel_id": eng}), "l1").await);
    let left = a.expect("channel:left", T).await;
    assert_eq!((left["user_id"].as_str(), left["by"].as_str()), (Some(carol.0.as_str()), Some(carol.0.as_str())));
    assert_eq!(
        code(&c.command(json!({"type": "message:send", "channel_id": eng, "text": "hi"}), "s2").await),
        "not_a_member"
    );

    // invite into the private channel: bob hears about it and then hears its messages
    assert_eq!(
        code(
            &a.command(json!({"type": "channel:invite", "channel_id": secret, "user_id": uuid::Uuid::new_v4()}), "i0")
                .await
        ),
        "user_not_found"
    );
    ok(&a.command(json!({"type": "channel:invite", "channel_id": secret, "user_id": bob.0}), "i1").await);
    let joined = b.expect("channel:joined", T).await;
    assert_eq!((joined["channel_id"].as_str(), joined["by"].as_str()), (Some(secret.as_str()), Some(alice.0.as_str())));
    a.command(json!({"type": "message:send", "channel_id": secret, "text": "welcome bob"}), "m1").await;
    assert_eq!(b.expect("message:new", T).await["message"]["text"], "welcome bob");
    listed(&stack, &bob.1, "secret").await;

    // rename: members see it, the listing follows
    ok(&b.command(json!({"type": "channel:rename", "channel_id": secret, "name": "secret-2"}), "r1").await);
    assert_eq!(a.expect("channel:renamed", T).await["name"], "secret-2");
    listed(&stack, &alice.1, "secret-2").await;

    // only the creator removes people; the removed one is told, then hears nothing more
    assert_eq!(
        code(&b.command(json!({"type": "channel:kick", "channel_id": secret, "user_id": alice.0}), "k0").await),
        "forbidden"
    );
    ok(&a.command(json!({"type": "channel:kick", "channel_id": secret, "user_id": bob.0}), "k1").await);
    let left = b.expect("channel:left", T).await;
    assert_eq!((left["user_id"].as_str(), left["by"].as_str()), (Some(bob.0.as_str()), Some(alice.0.as_str())));
    a.command(json!({"type": "message:send", "channel_id": secret, "text": "bob is gone"}), "m2").await;
    assert!(never_sees(&mut b, "bob is gone").await, "a removed member must not receive the channel's messages");
    assert_eq!(
        code(&b.command(json!({"type": "message:send", "channel_id": secret, "text": "let me in"}), "s3").await),
        "channel_not_found"
    );
    eventually(T, "the private channel disappears for the removed member", || async {
        (stack.get("gw0", &format!("/api/channels/{secret}/messages"), &bob.1).await.0 == 404).then_some(())
    })
    .await;

    // archive: read-only until restored
    ok(&a.command(json!({"type": "channel:archive", "channel_id": eng}), "a1").await);
    assert_eq!(a.expect("channel:archived", T).await["archived"], true);
    assert_eq!(
        code(&a.command(json!({"type": "message:send", "channel_id": eng, "text": "anyone?"}), "s4").await),
        "channel_archived"
    );
    assert_eq!(listed(&stack, &alice.1, "eng").await["archived"], true);
    ok(&a.command(json!({"type": "channel:archive", "channel_id": eng, "archived": false}), "a2").await);
    assert_eq!(
        a.command(json!({"type": "message:send", "channel_id": eng, "text": "back"}), "s5").await["type"],
        "message:ack"
    );
}

async fn direct_messages_have_fixed_members_and_one_id_per_set_of_people(mode: Mode) {
    let stack = Stack::start(mode, 2).await;
    let (_ws, alice, bob, carol) = team(&stack).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    let mut b = Client::connect(&stack.addr("gw1"), &bob.1).await.unwrap();
    let mut c = Client::connect(&stack.addr("gw1"), &carol.1).await.unwrap();

    let dm = ok(&a.command(json!({"type": "dm:open", "user_ids": [bob.0]}), "d1").await)["channel_id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = b.expect("channel:created", T).await;
    assert_eq!((created["channel_id"].as_str(), created["kind"].as_str()), (Some(dm.as_str()), Some("dm")));
    a.command(json!({"type": "message:send", "channel_id": dm, "text": "psst"}), "m1").await;
    assert_eq!(b.expect("message:new", T).await["message"]["text"], "psst");
    assert!(never_sees(&mut c, "psst").await);
    // the same two people always get the same conversation, whoever opens it
    let again = ok(&b.command(json!({"type": "dm:open", "user_ids": [alice.0]}), "d2").await)["channel_id"].clone();
    assert_eq!(again, json!(dm));

    let group = ok(&a.command(json!({"type": "dm:open", "user_ids": [bob.0, carol.0]}), "d3").await)["channel_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(group, dm);
    assert_eq!(c.expect("channel:created", T).await["kind"], "group_dm");
    b.command(json!({"type": "message:send", "channel_id": group, "text": "all three"}), "m2").await;
    assert_eq!(c.expect("message:new", T).await["message"]["text"], "all three");

    // outsiders cannot see or enter; members cannot change who is in it
    assert_eq!(stack.get("gw1", &format!("/api/channels/{dm}/messages"), &carol.1).await.0, 404);
    assert_eq!(code(&c.command(json!({"type": "channel:join", "channel_id": dm}), "j1").await), "channel_not_found");
    assert_eq!(
        code(&a.command(json!({"type": "channel:invite", "channel_id": dm, "user_id": carol.0}), "i1").await),
        "forbidden"
    );
    assert_eq!(code(&a.command(json!({"type": "channel:leave", "channel_id": dm}), "l1").await), "forbidden");
    assert_eq!(
        code(&a.command(json!({"type": "channel:rename", "channel_id": group, "name": "x"}), "r1").await),
        "forbidden"
    );
    let eight: Vec<String> = (0..8).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    assert_eq!(code(&a.command(json!({"type": "dm:open", "user_ids": eight}), "d4").await), "invalid_field");
    assert_eq!(
        code(&a.command(json!({"type": "dm:open", "user_ids": [uuid::Uuid::new_v4()]}), "d5").await),
        "user_not_found"
    );

    let entry = eventually(T, "the DM in bob's channel list", || async {
        let (_, body) = stack.get("gw1", "/api/channels", &bob.1).await;
        body["channels"].as_array()?.iter().find(|c| c["channel_id"] == dm.as_str()).cloned()
    })
    .await;
    assert_eq!((entry["kind"].as_str(), entry["is_private"].as_bool()), (Some("dm"), Some(true)));
    let mut both = vec![alice.0.clone(), bob.0.clone()];
    both.sort();
    assert_eq!(entry["members"], json!(both));
    assert!(!channel_names(&stack, &carol.1).await.is_empty(), "carol sees her group DM");
    let (_, carols) = stack.get("gw1", "/api/channels", &carol.1).await;
    assert!(
        !carols["channels"].as_array().unwrap().iter().any(|c| c["channel_id"] == dm.as_str()),
        "carol never sees alice and bob's DM"
    );
}

async fn threads_keep_replies_out_of_the_channel_and_summarize_on_the_parent(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let (ws, alice, bob, _carol) = team(&stack).await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice.0, &bob.0]).await;
    let gw = stack.addr("gw0");
    let mut a = Client::connect(&gw, &alice.1).await.unwrap();
    let mut b = Client::connect(&gw, &bob.1).await.unwrap();
    let send = |text: &str, thread: Option<&str>, also: bool| {
        let mut f = json!({"type": "message:send", "channel_id": ch, "text": text});
        if let Some(t) = thread {
            f["thread_ts"] = json!(t);
        }
        if also {
            f["also_send_to_channel"] = json!(true);
        }
        f
    };
    let parent = a.command(send("lunch?", None, false), "p").await["message_id"].as_str().unwrap().to_string();
    let r1 = b.command(send("yes", Some(&parent), false), "r1").await["message_id"].as_str().unwrap().to_string();
    let new = a.expect_where("bob's reply", T, |f| f["type"] == "message:new" && f["message"]["text"] == "yes").await;
    assert_eq!(new["message"]["thread_ts"], parent.as_str());
    assert_eq!(
        (new["parent_thread"]["reply_count"].as_i64(), new["parent_thread"]["reply_users"][0].as_str()),
        (Some(1), Some(bob.0.as_str())),
        "the parent's summary rides along: {new}"
    );
    a.command(send("noon", Some(&parent), false), "r2").await;
    // a reply to a reply joins the root's thread; this one is also shown in the channel
    let r3 = b.command(send("see you there", Some(&r1), true), "r3").await;
    assert_eq!(r3["type"], "message:ack");
    assert_eq!(
        code(&a.command(send("orphan", Some(&uuid::Uuid::now_v1(&[1; 6]).to_string()), false), "r4").await),
        "message_not_found"
    );

    let thread = eventually(T, "the thread summary on the parent", || async {
        let (status, body) = stack.get("gw0", &format!("/api/channels/{ch}/messages/{parent}/replies"), &bob.1).await;
        (status == 200 && body["parent"]["thread"]["reply_count"] == 3).then_some(body)
    })
    .await;
    assert_eq!(thread["parent"]["thread"]["reply_users"], json!([bob.0, alice.0]), "repliers in order of first reply");
    let texts: Vec<&str> = thread["replies"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, vec!["yes", "noon", "see you there"]);
    assert!(thread["replies"].as_array().unwrap().iter().all(|m| m["thread_ts"] == parent.as_str()));
    assert!(
        thread["parent"]["thread"]["last_reply_at"].as_i64().unwrap() >= thread["replies"][2]["ts"].as_i64().unwrap()
    );
    // paging through a thread
    let (_, page) = stack.get("gw0", &format!("/api/channels/{ch}/messages/{parent}/replies?limit=2"), &bob.1).await;
    let after = page["next_after"].as_str().unwrap().to_string();
    let (_, rest) =
        stack.get("gw0", &format!("/api/channels/{ch}/messages/{parent}/replies?limit=2&after={after}"), &bob.1).await;
    assert_eq!(rest["replies"][0]["text"], "see you there");

    // the channel shows the parent and the reply sent to the channel, not thread-only replies
    let history = stack.history_all("gw0", &ch, &bob.1, 50).await;
    let texts: Vec<&str> = history.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, vec!["lunch?", "see you there"]);
    assert_eq!(history[1]["also_in_channel"], true);

    // a deleted parent takes no more replies
    a.command(json!({"type": "message:delete", "channel_id": ch, "message_id": parent}), "del").await;
    assert_eq!(code(&b.command(send("too late", Some(&parent), false), "r5").await), "message_deleted");
}

async fn pins_read_markers_unread_and_mention_counts(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let (ws, alice, bob, _carol) = team(&stack).await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice.0, &bob.0]).await;
    let gw = stack.addr("gw0");
    let mut a = Client::connect(&gw, &alice.1).await.unwrap();
    let mut b = Client::connect(&gw, &bob.1).await.unwrap();
    let mut b2 = Client::connect(&gw, &bob.1).await.unwrap(); // bob's phone

    let msg = |text: &str| json!({"type": "message:send", "channel_id": ch, "text": text});
    let first = a.command(msg("agenda: ship it"), "m1").await;
    let first_id = first["message_id"].as_str().unwrap().to_string();

    // pins
    ok(&b.command(json!({"type": "message:pin", "channel_id": ch, "message_id": first_id}), "pin1").await);
    let pinned = a.expect("message:pinned", T).await;
    assert_eq!((pinned["message_id"].as_str(), pinned["pinned"].as_bool()), (Some(first_id.as_str()), Some(true)));
    let pins = eventually(T, "the pin listed", || async {
        let (_, body) = stack.get("gw0", &format!("/api/channels/{ch}/pins"), &alice.1).await;
        (body["messages"].as_array()?.len() == 1).then_some(body)
    })
    .await;
    assert_eq!(pins["messages"][0]["message_id"], first_id.as_str());
    assert_eq!(pins["messages"][0]["pinned"], true);
    ok(&a
        .command(json!({"type": "message:pin", "channel_id": ch, "message_id": first_id, "pinned": false}), "pin2")
        .await);
    eventually(T, "the pin removed", || async {
        let (_, body) = stack.get("gw0", &format!("/api/channels/{ch}/pins"), &alice.1).await;
        body["messages"].as_array()?.is_empty().then_some(())
    })
    .await;

    // bob reads everything so far; alice writes three more, one mentioning him, one @here
    let answer = b.command(json!({"type": "channel:mark", "channel_id": ch, "seq": first["seq"]}), "mark1").await;
    assert_eq!(ok(&answer)["channel_id"], ch.as_str(), "the answer names the channel read");
    let marked = b2.expect("channel:marked", T).await;
    assert_eq!(
        (marked["channel_id"].as_str(), &marked["seq"]),
        (Some(ch.as_str()), &first["seq"]),
        "bob's other devices follow his read marker"
    );
    a.command(msg(&format!("<@{}> can you review?", bob.0)), "m2").await;
    a.command(msg("unrelated"), "m3").await;
    let last = a.command(msg("@here standup"), "m4").await;
    let mine = b.command(msg("on it"), "m5").await; // his own messages are never unread
    let entry = eventually(T, "bob's unread counts and the channel's position", || async {
        let (_, body) = stack.get("gw0", "/api/channels", &bob.1).await;
        let e = body["channels"].as_array()?.iter().find(|c| c["channel_id"] == ch.as_str())?.clone();
        (e["unread_count"] == 3 && e["last_seq"] == mine["seq"]).then_some(e)
    })
    .await;
    assert_eq!(entry["mention_count"], 2, "a direct mention and an @here");
    assert_eq!(entry["last_read_seq"], first["seq"]);
    // alice's own messages are not unread to her: only bob's reply is
    eventually(T, "alice's unread count", || async {
        let (_, body) = stack.get("gw0", "/api/channels", &alice.1).await;
        let e = body["channels"].as_array()?.iter().find(|c| c["channel_id"] == ch.as_str())?.clone();
        (e["unread_count"] == 1 && e["mention_count"] == 0).then_some(())
    })
    .await;

    ok(&b2.command(json!({"type": "channel:mark", "channel_id": ch, "seq": last["seq"]}), "mark2").await);
    eventually(T, "unread back to zero after reading", || async {
        let (_, body) = stack.get("gw0", "/api/channels", &bob.1).await;
        let e = body["channels"].as_array()?.iter().find(|c| c["channel_id"] == ch.as_str())?.clone();
        (e["unread_count"] == 0 && e["mention_count"] == 0).then_some(())
    })
    .await;
    assert_eq!(
        code(&b.command(json!({"type": "channel:mark", "channel_id": ch, "seq": -1}), "mark3").await),
        "invalid_field"
    );
}

/// Sends `text`, waiting out the per-user send limit (a flood from one user is over it).
async fn send_patiently(client: &mut Client, ch: &str, text: &str, cmid: &str) -> Value {
    for _ in 0..100 {
        let reply = client.command(json!({"type": "message:send", "channel_id": ch, "text": text}), cmid).await;
        if reply["code"] != "rate_limited" {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{cmid} still rate limited")
}

/// Counts come from each channel's summary, not from a page of history: a mention buried
/// under more messages than a page still counts (a history page of 100 lost it), the unread
/// count stops at the window, and deleting the mention takes it back.
async fn a_mention_outlives_a_flood_and_counts_stop_at_the_window(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let (ws, alice, bob, carol) = team(&stack).await;
    let ch = stack.create_channel(&ws, "busy", false, &[&alice.0, &bob.0, &carol.0]).await;
    let gw = stack.addr("gw0");
    let mut a = Client::connect(&gw, &alice.1).await.unwrap();
    let mut c = Client::connect(&gw, &carol.1).await.unwrap();
    let acked = |reply: Value| {
        assert_eq!(reply["type"], "message:ack", "{reply}");
        reply
    };
    let mention = acked(send_patiently(&mut a, &ch, &format!("<@{}> please look", bob.0), "mention").await);
    for i in 0..60 {
        acked(send_patiently(&mut a, &ch, &format!("alice {i}"), &format!("a{i}")).await);
        acked(send_patiently(&mut c, &ch, &format!("carol {i}"), &format!("c{i}")).await);
    }
    let counts = |who: &(String, String)| {
        let (stack, ch, token) = (&stack, ch.clone(), who.1.clone());
        async move {
            let (_, body) = stack.get("gw0", "/api/channels", &token).await;
            let e = body["channels"].as_array()?.iter().find(|e| e["channel_id"] == ch.as_str())?.clone();
            let more = e["more_unread"].as_bool()?;
            Some((e["unread_count"].as_u64()?, more, e["mention_count"].as_u64()?, e["last_seq"].as_i64()?))
        }
    };
    let last_seq = mention["seq"].as_i64().unwrap() + 120;
    eventually(T, "bob's counts after the flood", || async {
        (counts(&bob).await? == (100, true, 1, last_seq)).then_some(())
    })
    .await;
    // the newest 100 hold 50 of alice's 61: carol is told there are more
    eventually(T, "carol sees alice's newest and none of her own", || async {
        (counts(&carol).await? == (50, true, 0, last_seq)).then_some(())
    })
    .await;
    let id = mention["message_id"].as_str().unwrap();
    ok(&a.command(json!({"type": "message:delete", "channel_id": ch, "message_id": id}), "del").await);
    eventually(T, "a deleted mention no longer counts", || async { (counts(&bob).await?.2 == 0).then_some(()) }).await;
}

async fn history_pages_both_ways_and_around_a_message(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let (ws, alice, bob, _carol) = team(&stack).await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice.0, &bob.0]).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..10 {
        let ack = a
            .command(json!({"type": "message:send", "channel_id": ch, "text": format!("m{i}")}), &format!("h{i}"))
            .await;
        ids.push(ack["message_id"].as_str().unwrap().to_string());
    }
    let texts = |body: &Value| -> Vec<String> {
        body["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_string()).collect()
    };
    // the timeline is a projection: wait until it has all ten
    eventually(T, "all ten in the timeline", || async {
        (stack.history_all("gw0", &ch, &bob.1, 50).await.len() == 10).then_some(())
    })
    .await;
    let around = eventually(T, "history around m5", || async {
        let (status, body) =
            stack.get("gw0", &format!("/api/channels/{ch}/messages?around={}&limit=4", ids[5]), &bob.1).await;
        (status == 200 && body["messages"].as_array()?.len() == 5).then_some(body)
    })
    .await;
    assert_eq!(texts(&around), vec!["m3", "m4", "m5", "m6", "m7"]);
    let (_, after) = stack.get("gw0", &format!("/api/channels/{ch}/messages?after={}&limit=2", ids[6]), &bob.1).await;
    assert_eq!(texts(&after), vec!["m7", "m8"]);
    let (_, rest) = stack
        .get(
            "gw0",
            &format!("/api/channels/{ch}/messages?after={}&limit=2", after["next_after"].as_str().unwrap()),
            &bob.1,
        )
        .await;
    assert_eq!(texts(&rest), vec!["m9"]);
    assert!(rest["next_after"].is_null());
    let (_, before) = stack.get("gw0", &format!("/api/channels/{ch}/messages?cursor={}&limit=3", ids[3]), &bob.1).await;
    assert_eq!(texts(&before), vec!["m2", "m1", "m0"]);
    let (status, body) =
        stack.get("gw0", &format!("/api/channels/{ch}/messages?around={}&after={}", ids[1], ids[2]), &bob.1).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_field")));
    let (status, body) =
        stack.get("gw0", &format!("/api/channels/{ch}/messages?around={}", uuid::Uuid::now_v1(&[1; 6])), &bob.1).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("message_not_found")));
}

fn presence_of(f: &Value, user: &str) -> Option<String> {
    if f["type"] != "presence:change" {
        return None;
    }
    f["users"].as_array()?.iter().find(|u| u["user_id"] == user).map(|u| u["status"].as_str().unwrap().to_string())
}

/// Waits for a `presence:change` saying `user` is `status`.
async fn sees(c: &mut Client, user: &str, status: &str) {
    let (u, s) = (user.to_string(), status.to_string());
    c.expect_where(&format!("{user} {status}"), T, move |f| presence_of(f, &u).as_deref() == Some(s.as_str())).await;
}

async fn lookup(stack: &Stack, token: &str, users: &[&str]) -> Value {
    let (status, body) = stack.get("gw0", &format!("/api/presence?user_ids={}", users.join(",")), token).await;
    assert_eq!(status, 200, "{body}");
    body
}

const PRESENCE_ENV: &[(&str, &str)] = &[
    ("CONFAB_GATEWAY__PRESENCE_GRACE_MS", "300"),
    ("CONFAB_GATEWAY__PRESENCE_SWEEP_MS", "100"),
    ("CONFAB_GATEWAY__PRESENCE_BATCH_MS", "100"),
];

async fn presence_follows_every_device_and_reaches_the_workspace_only(mode: Mode) {
    let stack = Stack::start_custom(mode, 2, None, PRESENCE_ENV).await;
    let (ws, alice, bob, carol) = team(&stack).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();

    // bob comes online on the other gateway: alice is told
    let mut b1 = Client::connect(&stack.addr("gw1"), &bob.1).await.unwrap();
    sees(&mut a, &bob.0, "active").await;
    let body = lookup(&stack, &alice.1, &[&alice.0, &bob.0, &carol.0]).await;
    assert_eq!(body["users"], json!({alice.0.clone(): "active", bob.0.clone(): "active", carol.0.clone(): "offline"}));
    assert_eq!(body["online_count"], 2);

    // away only when every device is away
    let mut b2 = Client::connect(&stack.addr("gw0"), &bob.1).await.unwrap();
    b1.send(json!({"type": "presence:set", "status": "away"})).await;
    b1.ping().await;
    assert!(
        !a.drain(QUIET).await.iter().any(|f| presence_of(f, &bob.0).is_some()),
        "one device still active: no change"
    );
    b2.send(json!({"type": "presence:set", "status": "away"})).await;
    sees(&mut a, &bob.0, "away").await;
    assert_eq!(lookup(&stack, &alice.1, &[&bob.0]).await["users"][&bob.0], "away");
    b2.send(json!({"type": "presence:set", "status": "active"})).await;
    sees(&mut a, &bob.0, "active").await;
    b2.send(json!({"type": "presence:set", "status": "offline"})).await;
    assert_eq!(b2.expect("error", T).await["code"], "invalid_field");

    // connected devices decide, not one in its grace period: when the active device closes,
    // the away one left makes bob away at once, and its own changes count at once
    drop(b2);
    sees(&mut a, &bob.0, "away").await;
    b1.send(json!({"type": "presence:set", "status": "active"})).await;
    sees(&mut a, &bob.0, "active").await;
    let b2 = Client::connect(&stack.addr("gw0"), &bob.1).await.unwrap();

    // a quick reconnect changes nothing; leaving for good is reported after the grace period
    drop(b2);
    let b3 = Client::connect(&stack.addr("gw0"), &bob.1).await.unwrap();
    drop(b1);
    assert!(
        !a.drain(QUIET).await.iter().any(|f| presence_of(f, &bob.0).as_deref() == Some("offline")),
        "bob never looked offline"
    );
    drop(b3);
    sees(&mut a, &bob.0, "offline").await;
    let body = lookup(&stack, &alice.1, &[&bob.0]).await;
    assert_eq!((body["users"][&bob.0].as_str(), body["online_count"].as_u64()), (Some("offline"), Some(1)));

    // another workspace's people are never announced here
    let other = stack.create_workspace("globex").await;
    let eve = stack.create_user(&other, "eve").await;
    let _e = Client::connect(&stack.addr("gw0"), &eve.1).await.unwrap();
    assert!(!a.drain(QUIET).await.iter().any(|f| presence_of(f, &eve.0).is_some()));
    assert_eq!(lookup(&stack, &alice.1, &[&eve.0]).await["users"][&eve.0], "offline", "not visible across workspaces");
    let (status, _) = stack.get("gw0", "/api/presence?user_ids=nope", &alice.1).await;
    assert_eq!(status, 400);
    let _ = ws;
}

/// A gateway dies with its sockets: after the heartbeat TTL, another gateway's sweep reports
/// its users offline. (In embedded mode every socket dies with the process: nothing to see.)
async fn a_dead_gateways_users_go_offline_after_the_heartbeat_ttl(mode: Mode) {
    if mode == Mode::Embedded {
        return;
    }
    let mut env = PRESENCE_ENV.to_vec();
    env.push(("CONFAB_GATEWAY__PRESENCE_TTL_MS", "2000"));
    let mut stack = Stack::start_custom(mode, 2, None, &env).await;
    let (_ws, alice, bob, _carol) = team(&stack).await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    let _b = Client::connect(&stack.addr("gw1"), &bob.1).await.unwrap();
    sees(&mut a, &bob.0, "active").await;
    stack.kill("gw1");
    // alice keeps her own device alive with heartbeats while waiting
    let started = std::time::Instant::now();
    loop {
        a.ping().await;
        if a.drain(Duration::from_millis(300))
            .await
            .iter()
            .any(|f| presence_of(f, &bob.0).as_deref() == Some("offline"))
        {
            break;
        }
        assert!(started.elapsed() < T, "bob still online {:?} after his gateway died", started.elapsed());
    }
    assert!(started.elapsed() >= Duration::from_millis(1500), "not before the TTL");
}
