//! The push scenario: offline users with a registered Web Push subscription each get DMs; the
//! time from the sender's ack to the push request arriving at the push service (a local server
//! speaking the protocol, decrypting each message), one DM at a time.

use confab_notifier::fake::{FakeWebPush, RecordingFake};
use confab_notifier::keys::{ec_key_to_b64url, ec_public_b64url, generate_ec_key};
use confab_tests::{Client, Mode, Stack};
use hdrhistogram::Histogram;
use serde_json::json;
use std::time::{Duration, Instant};

pub async fn run(mode: Mode, pushes: usize, recipients: usize) -> anyhow::Result<()> {
    let fake = FakeWebPush::start().await;
    let vapid = generate_ec_key();
    let (private, public) = (ec_key_to_b64url(&vapid), ec_public_b64url(vapid.verifying_key()));
    let env = [
        ("CONFAB_GATEWAY__RATE_PER_SEC", "0"),
        ("CONFAB_NOTIFIER__WEBPUSH_VAPID_KEY", private.as_str()),
        ("CONFAB_NOTIFIER__WEBPUSH_ALLOW_HTTP", "true"),
    ];
    let stack = Stack::start_custom(mode, 1, None, &env).await;
    let ws = stack.create_workspace("push").await;
    let (_, sender_token) = stack.create_user(&ws, "sender").await;
    let http = reqwest::Client::new();
    let mut users = Vec::new();
    for i in 0..recipients {
        let (id, token) = stack.create_user(&ws, &format!("r{i}")).await;
        let sub = serde_json::to_value(fake.subscribe(&public)?)?;
        let r = http
            .post(format!("http://{}/api/devices", stack.addr("gw0")))
            .bearer_auth(&token)
            .json(&sub)
            .send()
            .await?;
        anyhow::ensure!(r.status().as_u16() == 201, "register: {}", r.status());
        users.push(id);
    }
    let mut c = Client::connect(&stack.addr("gw0"), &sender_token).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut dms = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let r = c.command(json!({"type": "dm:open", "user_ids": [u]}), &format!("dm{i}")).await;
        dms.push(r["channel_id"].as_str().unwrap_or_default().to_string());
    }
    // warm up: the first push per DM waits for the channel to reach the timeline
    for (i, dm) in dms.iter().enumerate() {
        c.command(json!({"type": "message:send", "channel_id": dm, "text": "warm up"}), &format!("w{i}")).await;
    }
    fake.wait_for(dms.len(), Duration::from_secs(60)).await;
    let mut h = Histogram::<u64>::new(3)?;
    for k in 0..pushes {
        let before = fake.requests().len();
        let ack = c
            .command(
                json!({"type": "message:send", "channel_id": dms[k % dms.len()], "text": format!("push {k}")}),
                &format!("p{k}"),
            )
            .await;
        anyhow::ensure!(ack["type"] == "message:ack", "{ack}");
        let acked = Instant::now();
        let got = fake.wait_for(before + 1, Duration::from_secs(30)).await;
        anyhow::ensure!(got.len() > before, "push {k} never arrived");
        h.record(got[before].received_at.saturating_duration_since(acked).as_micros() as u64)?;
    }
    let where_ = if mode == Mode::Embedded {
        "embedded (one confab serve)"
    } else {
        "distributed (confab notifier, Redis outbox)"
    };
    println!(
        "## push: {pushes} DMs to {recipients} offline users with a Web Push subscription, one at a time, {where_}"
    );
    println!();
    println!("| measure | n | median ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    println!("{}", crate::summary("sender's ack -> push request at the push service", &h));
    Ok(())
}
