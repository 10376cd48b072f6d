//! Distributed mode on a secured Redis (issue 17, item 1). The Redis of this test
//! (`scripts/services/redis.sh` with `REDIS_SECURITY=tls`) listens on TLS only, with a
//! certificate of a CA of its own, its default user off and one ACL user confined to the keys of
//! the stack's namespace (`~<ns>:*`). Every Redis-backed part runs through it: live delivery
//! across gateways (the fanout stream and membership index), a resume (stream reads), typing
//! (ephemeral frames), presence (Lua scripts) and the shared send limits. Any key outside the
//! namespace, or one a script touched without declaring it, would be refused and fail this.

use confab_tests::stack::eventually;
use confab_tests::{servers_available, Client, Mode, OwnServer, Stack};
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redis_part_works_over_tls_with_an_acl_user_confined_to_its_namespace() {
    if !servers_available(Mode::Distributed) {
        return;
    }
    let namespace = Stack::new_namespace();
    let redis = OwnServer::redis_secured(&namespace);
    let (url, ca) = (redis.setting("CONFAB_REDIS_URL"), redis.setting("CONFAB_REDIS_CA"));
    assert!(url.starts_with("rediss://confab:"), "{url}");
    let env = [
        ("CONFAB_NAMESPACE", namespace.as_str()),
        ("CONFAB_REDIS__CA_FILE", ca.as_str()),
        // the send limits are Redis scripts too: on, but far above what this test sends
        ("CONFAB_GATEWAY__USER_SEND_RATE_PER_SEC", "1000"),
        ("CONFAB_GATEWAY__WORKSPACE_SEND_RATE_PER_SEC", "1000"),
        ("CONFAB_GATEWAY__PRESENCE_BATCH_MS", "100"),
    ];
    let stack = Stack::start_custom(Mode::Distributed, 2, Some(url), &env).await;
    let ws = stack.create_workspace("acme").await;
    let (alice, alice_token) = stack.create_user(&ws, "alice").await;
    let (bob, bob_token) = stack.create_user(&ws, "bob").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice, &bob]).await;

    // bob subscribed on the other gateway (the membership index follows the creation)
    let mut b = eventually(T, "bob subscribed to the channel", || async {
        let mut b = Client::connect_resuming(&stack.addr("gw1"), &bob_token).await.unwrap();
        b.send(json!({"type": "resume", "channels": {&ch: 0}})).await;
        let done = b.expect("resume:done", T).await;
        done["channels"].get(&ch).map(|_| b)
    })
    .await;
    let mut a = Client::connect(&stack.addr("gw0"), &alice_token).await.unwrap();
    // presence: bob sees alice come online (Lua scripts over the presence keys)
    b.expect_where("alice online", T, |f| {
        f["type"] == "presence:change"
            && f["users"].as_array().is_some_and(|u| u.iter().any(|u| u["user_id"] == alice.as_str()))
    })
    .await;
    a.send(json!({"type": "typing:start", "channel_id": ch})).await;
    b.expect_where("alice typing", T, |f| f["type"] == "typing" && f["user_id"] == alice.as_str()).await;

    let n = 10;
    for i in 0..n {
        let frame = json!({"type": "message:send", "channel_id": ch, "text": format!("over tls {i}")});
        let ack = a.command(frame, &format!("m-{i}")).await;
        assert_eq!(ack["type"], "message:ack", "{ack}");
    }
    let mut last_seq = 0;
    for i in 0..n {
        let f = b.expect("message:new", T).await;
        assert_eq!(f["message"]["text"], format!("over tls {i}"), "each once, in order");
        last_seq = f["message"]["seq"].as_i64().unwrap();
    }

    // a resume from before the first message replays all of them from the stream
    let mut again = Client::connect_resuming(&stack.addr("gw0"), &bob_token).await.unwrap();
    again.send(json!({"type": "resume", "channels": {&ch: last_seq - n as i64}})).await;
    let mut replayed = Vec::new();
    loop {
        let f = again.next(T).await.expect("resume:done within the timeout");
        match f["type"].as_str() {
            Some("resume:done") => break,
            Some("message:new") => replayed.push(f["message"]["text"].as_str().unwrap().to_string()),
            _ => {}
        }
    }
    assert_eq!(replayed, (0..n).map(|i| format!("over tls {i}")).collect::<Vec<_>>());
}
