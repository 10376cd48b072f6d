//! Push notifications end to end, in both modes: the notifier's real Web Push client (RFC 8291
//! encryption, VAPID) against a local server that speaks the protocol and decrypts what it gets.
//! Offline recipients of DMs and mentions get a push on each registered device; online ones and
//! those whose preferences say no do not; a device the push service says is gone is pruned.

use confab_notifier::fake::{FakeWebPush, RecordingFake};
use confab_notifier::keys::{ec_key_to_b64url, ec_public_b64url, generate_ec_key};
use confab_tests::stack::eventually;
use confab_tests::{conformance, Client, Mode, Stack};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

conformance!(
    offline_recipients_get_pushes_and_online_ones_do_not,
    a_web_push_endpoint_inside_the_network_cannot_be_registered
);

async fn post(stack: &Stack, path: &str, token: &str, body: Value, method: reqwest::Method) -> (u16, Value) {
    let url = format!("http://{}{path}", stack.addr("gw0"));
    let resp = reqwest::Client::new().request(method, url).bearer_auth(token).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// With the default configuration, a subscription whose endpoint points inside the network (a
/// request forgery through the notifier) or whose keys are malformed is refused at
/// registration; the notifier checks again at every send (`notifier/tests/providers.rs`).
async fn a_web_push_endpoint_inside_the_network_cannot_be_registered(mode: Mode) {
    let stack = Stack::start(mode, 1).await;
    let (status, v) = stack.get("gw0", "/api/push/vapid", "").await;
    assert_eq!((status, v["error"]["code"].as_str()), (404, Some("not_found")), "no VAPID key configured: {v}");
    let ws = stack.create_workspace("acme").await;
    let bob = stack.create_user(&ws, "bob").await;
    let fake = FakeWebPush::start().await;
    let good =
        serde_json::to_value(fake.subscribe(&ec_public_b64url(generate_ec_key().verifying_key())).unwrap()).unwrap();
    let with = |endpoint: &str| json!({"platform": "web_push", "endpoint": endpoint, "p256dh": good["p256dh"], "auth": good["auth"]});
    for endpoint in [
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1:9200/",
        "https://[::1]/",
        "https://10.0.0.7/push",
        "https://localhost/push",
        "https://metadata.google.internal/computeMetadata/v1/",
        "http://push.example.com/x",
    ] {
        let (status, v) = post(&stack, "/api/devices", &bob.1, with(endpoint), reqwest::Method::POST).await;
        assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_field")), "{endpoint}: {v}");
    }
    let mut short_key = with("https://push.example.com/x");
    short_key["p256dh"] = json!("BAAA");
    let (status, v) = post(&stack, "/api/devices", &bob.1, short_key, reqwest::Method::POST).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) =
        post(&stack, "/api/devices", &bob.1, with("https://push.example.com/x"), reqwest::Method::POST).await;
    assert_eq!(status, 201, "a public https endpoint is fine: {v}");
}

/// A local Web Push service and a VAPID key pair: (service, public key, private key).
async fn web_push_service() -> (FakeWebPush, String, String) {
    let vapid = generate_ec_key();
    (FakeWebPush::start().await, ec_public_b64url(vapid.verifying_key()), ec_key_to_b64url(&vapid))
}

/// Settings for a notifier that pushes to a local Web Push service with `private` as VAPID key.
fn web_push_env(private: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("CONFAB_NOTIFIER__WEBPUSH_VAPID_KEY", private),
        ("CONFAB_NOTIFIER__WEBPUSH_ALLOW_HTTP", "true"),
        ("CONFAB_NOTIFIER__WEBPUSH_ALLOW_PRIVATE_NETWORKS", "true"),
    ]
}

fn plaintexts(fake: &FakeWebPush) -> Vec<Value> {
    fake.requests().iter().filter_map(|r| r.plaintext.as_ref().and_then(|p| serde_json::from_slice(p).ok())).collect()
}

async fn offline_recipients_get_pushes_and_online_ones_do_not(mode: Mode) {
    let (fake, public, private) = web_push_service().await;
    let mut env = web_push_env(&private);
    env.extend([("CONFAB_GATEWAY__PRESENCE_GRACE_MS", "200"), ("CONFAB_GATEWAY__PRESENCE_SWEEP_MS", "100")]);
    let stack = Stack::start_custom(mode, 1, None, &env).await;
    let ws = stack.create_workspace("acme").await;
    let alice = stack.create_user(&ws, "alice").await;
    let bob = stack.create_user(&ws, "bob").await;
    let ch = stack.create_channel(&ws, "general", false, &[&alice.0, &bob.0]).await;

    // the key a browser subscribes with is served by the gateway
    let (status, vapid) = stack.get("gw0", "/api/push/vapid", "").await;
    assert_eq!((status, vapid["public_key"].as_str()), (200, Some(public.as_str())), "{vapid}");
    // bob's browser subscribes and registers; registering again gives the same device
    let subscription = serde_json::to_value(fake.subscribe(&public).unwrap()).unwrap();
    let (status, reg) = post(&stack, "/api/devices", &bob.1, subscription.clone(), reqwest::Method::POST).await;
    assert_eq!(status, 201, "{reg}");
    let (_, again) = post(&stack, "/api/devices", &bob.1, subscription.clone(), reqwest::Method::POST).await;
    assert_eq!(again["device_id"], reg["device_id"]);
    let (status, bad) =
        post(&stack, "/api/devices", &bob.1, json!({"platform": "pager", "token": "x"}), reqwest::Method::POST).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_field")));

    // bob is offline: a DM reaches his device, encrypted end to end
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    let dm = a.command(json!({"type": "dm:open", "user_ids": [bob.0]}), "d1").await["channel_id"]
        .as_str()
        .unwrap()
        .to_string();
    let ack = a.command(json!({"type": "message:send", "channel_id": dm, "text": "psst, bob"}), "m1").await;
    let acked = Instant::now();
    assert_eq!(ack["type"], "message:ack");
    let got = fake.wait_for(1, T).await;
    let latency = got[0].received_at.saturating_duration_since(acked);
    eprintln!("ack -> push at the provider: {latency:?} ({mode:?})");
    let p = &plaintexts(&fake)[0];
    assert_eq!(p["body"], "psst, bob", "{p}");
    assert_eq!(p["data"]["channel_id"], dm.as_str(), "{p}");
    assert_eq!(p["data"]["message_id"], ack["message_id"], "{p}");
    assert!(got[0].vapid_claims.is_some(), "VAPID verified");

    // a plain channel message does not push (default: mentions); a mention does
    a.command(json!({"type": "message:send", "channel_id": ch, "text": "lunch anyone?"}), "m2").await;
    a.command(json!({"type": "message:send", "channel_id": ch, "text": format!("<@{}> your review", bob.0)}), "m3")
        .await;
    fake.wait_for(2, T).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let bodies: Vec<String> = plaintexts(&fake).iter().map(|p| p["body"].as_str().unwrap().to_string()).collect();
    assert_eq!(bodies, vec!["psst, bob".to_string(), format!("<@{}> your review", bob.0)]);

    // online: no push
    let mut b = Client::connect(&stack.addr("gw0"), &bob.1).await.unwrap();
    b.ping().await;
    a.command(json!({"type": "message:send", "channel_id": dm, "text": "you're here"}), "m4").await;
    b.expect("message:new", T).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(fake.requests().len(), 2, "bob was online");
    drop(b);

    // preferences: nothing at all
    let (status, _) = post(
        &stack,
        "/api/notifications",
        &bob.1,
        json!({"level": "nothing", "muted_channels": []}),
        reqwest::Method::PUT,
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(600)).await; // bob's device leaves presence after the grace
    a.command(json!({"type": "message:send", "channel_id": dm, "text": "hush"}), "m5").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(fake.requests().len(), 2, "bob asked for nothing");
    post(
        &stack,
        "/api/notifications",
        &bob.1,
        json!({"level": "mentions", "muted_channels": []}),
        reqwest::Method::PUT,
    )
    .await;

    // the browser unsubscribed: the push service says 410, the device is pruned
    fake.unsubscribe(subscription["endpoint"].as_str().unwrap());
    a.command(json!({"type": "message:send", "channel_id": dm, "text": "still there?"}), "m6").await;
    eventually(T, "the gone device pruned", || async {
        let (_, body) = stack.get("gw0", "/api/devices", &bob.1).await;
        body["devices"].as_array()?.is_empty().then_some(())
    })
    .await;
    assert_eq!(fake.requests().last().unwrap().status, 410);
}

/// Three notifiers share the outbox (issue 17: "two notifiers would double-send"): bob,
/// offline, gets each of 30 DMs exactly once on his device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifiers_sharing_the_outbox_send_each_push_once() {
    if !confab_tests::servers_available(Mode::Distributed) {
        return;
    }
    const N: usize = 30;
    let (fake, public, private) = web_push_service().await;
    let env = web_push_env(&private);
    let mut stack = Stack::start_custom(Mode::Distributed, 1, None, &env).await;
    for n in 1..3 {
        let id = n.to_string();
        stack.spawn_with_env(&format!("notifier{n}"), &["notifier"], &[("CONFAB_KAFKA__INSTANCE_ID", id.as_str())]);
    }
    let ws = stack.create_workspace("acme").await;
    let alice = stack.create_user(&ws, "alice").await;
    let bob = stack.create_user(&ws, "bob").await;
    let subscription = serde_json::to_value(fake.subscribe(&public).unwrap()).unwrap();
    let (status, reg) = post(&stack, "/api/devices", &bob.1, subscription, reqwest::Method::POST).await;
    assert_eq!(status, 201, "{reg}");
    let mut a = Client::connect(&stack.addr("gw0"), &alice.1).await.unwrap();
    let dm = a.command(json!({"type": "dm:open", "user_ids": [bob.0]}), "d1").await["channel_id"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..N {
        let ack = a
            .command(json!({"type": "message:send", "channel_id": dm, "text": format!("ping {i}")}), &format!("m{i}"))
            .await;
        assert_eq!(ack["type"], "message:ack", "{ack}");
    }
    fake.wait_for(N, T).await;
    // anything doubled would arrive within the polling interval; give it a second more
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut bodies: Vec<String> = plaintexts(&fake).iter().map(|p| p["body"].as_str().unwrap().to_string()).collect();
    let sent = bodies.len();
    bodies.sort();
    bodies.dedup();
    assert_eq!((bodies.len(), sent), (N, N), "each DM pushed once by three notifiers");
}

/// The Redis outbox's claims: concurrent claims split the items, a claimed item is hidden until
/// its lease ends, then another notifier claims it (its claimer died); a removed one is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_claims_hide_items_until_their_lease_ends() {
    if !confab_tests::servers_available(Mode::Distributed) {
        return;
    }
    use confab_core::ports::{NotifyStore, OutboxItem};
    let url = confab_tests::Services::required().redis;
    let namespace = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let client = redis::Client::open(url.as_str()).unwrap();
    let outbox = confab_distributed::RedisNotify::connect(&client, &namespace).await.unwrap();
    let item = |n: u32| OutboxItem {
        id: format!("e{n}:d"),
        workspace_id: uuid::Uuid::new_v4(),
        user_id: uuid::Uuid::new_v4(),
        device_id: uuid::Uuid::new_v4(),
        address: "{}".into(),
        payload: "{}".into(),
        attempts: 0,
        due_ms: 1_000 + n as i64,
        event_ms: 0,
    };
    outbox.enqueue(&(0..10).map(item).collect::<Vec<_>>()).await.unwrap();
    let (first, second) = tokio::join!(outbox.claim(2_000, 60_000, 6), outbox.claim(2_000, 60_000, 6));
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut ids: Vec<String> = first.iter().chain(&second).map(|i| i.id.clone()).collect();
    assert_eq!(ids.len(), 10, "two claims at once took {} and {}", first.len(), second.len());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "no item claimed twice");
    assert!(outbox.claim(61_999, 60_000, 100).await.unwrap().is_empty(), "hidden until the lease ends");
    outbox.remove("e3:d").await.unwrap();
    let again = outbox.claim(62_000, 60_000, 100).await.unwrap();
    assert_eq!(again.len(), 9, "claimed again once the lease ended, but not the removed one");
}
