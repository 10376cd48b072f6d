//! Scenario 5 of issue 6, reconnect storm: `--clients` connected users (workspaces of 100,
//! each with one channel of all its people); one message per channel while they are
//! connected, then every socket drops at once and every client reconnects at once with
//! `?resume=1` and `resume` naming its channel and the seq it saw before the message. Reported:
//! the time until all are back and resumed (each got `resume:done` with the missed message
//! replayed), and the per-client reconnect time.

use confab_tests::{Client, Mode, Stack};
use hdrhistogram::Histogram;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn run(mode: Mode, clients: usize) -> anyhow::Result<()> {
    let stack = Stack::start_custom(mode, 1, None, &[("CONFAB_GATEWAY__RATE_PER_SEC", "0")]).await;
    let addr = stack.addr("gw0");
    // users, workspaces of 100 with one channel each
    let mut people = Vec::new(); // (token, channel index)
    let mut channels = Vec::new();
    let t0 = Instant::now();
    for w in 0..clients.div_ceil(100) {
        let ws = stack.create_workspace(&format!("w{w}")).await;
        let n = (clients - w * 100).min(100);
        let mut ids = Vec::new();
        for u in 0..n {
            let (id, token) = stack.create_user(&ws, &format!("u{u}")).await;
            ids.push(id);
            people.push((token, channels.len()));
        }
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        channels.push((stack.create_channel(&ws, "general", false, &refs).await, people.len() - n));
    }
    eprintln!("{} users in {} workspaces made in {:.1} s", people.len(), channels.len(), t0.elapsed().as_secs_f64());
    // everyone connected
    let mut conns = Vec::new();
    for (token, _) in &people {
        conns.push(Client::connect(&addr, token).await.map_err(|e| anyhow::anyhow!("{e:?}"))?);
    }
    // the seq each channel is at (its creation), then one message each that everyone misses
    let mut seen = Vec::new();
    for (ch, first) in &channels {
        let (_, body) = stack.get("gw0", "/api/channels", &people[*first].0).await;
        let seq = body["channels"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["channel_id"] == ch.as_str()))
            .map(|c| c["last_seq"].as_i64().unwrap_or(0))
            .unwrap_or(0);
        seen.push(seq);
    }
    drop(conns); // every socket closes at once
    tokio::time::sleep(Duration::from_secs(1)).await;
    // one message per channel, sent by its first member (who then drops too)
    for (i, (ch, first)) in channels.iter().enumerate() {
        let mut sender = Client::connect(&addr, &people[*first].0).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let ack = sender
            .command(json!({"type": "message:send", "channel_id": ch, "text": "while you were away"}), &format!("m{i}"))
            .await;
        anyhow::ensure!(ack["type"] == "message:ack", "{ack}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // the fanout stream has them

    // the storm: all at once
    let start = Instant::now();
    let mut tasks = Vec::new();
    let addr = Arc::new(addr);
    for (token, c) in people.iter().cloned() {
        let (addr, ch, seq) = (addr.clone(), channels[c].0.clone(), seen[c]);
        tasks.push(tokio::spawn(async move {
            let began = Instant::now();
            let mut client = Client::connect_resuming(&addr, &token).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            client.send(json!({"type": "resume", "channels": {ch: seq}})).await;
            let mut replayed = false;
            loop {
                let f = client.next(Duration::from_secs(120)).await.ok_or_else(|| anyhow::anyhow!("no resume:done"))?;
                if f["type"] == "message:new" && f["message"]["text"] == "while you were away" {
                    replayed = true;
                }
                if f["type"] == "resume:done" {
                    break;
                }
            }
            anyhow::ensure!(replayed, "the missed message was not replayed");
            anyhow::Ok((began.elapsed(), client))
        }));
    }
    let mut h = Histogram::<u64>::new(3)?;
    let mut failed = 0;
    let mut held = Vec::new();
    for t in tasks {
        match t.await? {
            Ok((d, c)) => {
                h.record(d.as_micros() as u64)?;
                held.push(c);
            }
            Err(e) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("a client failed: {e:#}");
                }
            }
        }
    }
    let all = start.elapsed().as_secs_f64();
    let what = if mode == Mode::Embedded { "embedded (one confab serve)" } else { "real stack, one gateway" };
    let ms = |v: u64| v as f64 / 1000.0;
    println!("## reconnect storm: {clients} clients reconnect at once with resume, {what}");
    println!();
    println!("| clients | back and resumed | failed | all done after | per client median ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {clients} | {} | {failed} | {all:.2} s | {:.1} | {:.1} | {:.1} |",
        h.len(),
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max())
    );
    Ok(())
}
