//! The search scenario: index a corpus, then time visibility (ack -> first search that finds
//! the message) and queries, through the public HTTP API like a client would.

use confab_tests::{Client, Mode, Stack};
use hdrhistogram::Histogram;
use serde_json::json;
use std::time::{Duration, Instant};

/// Words the corpus is drawn from (a Zipf-ish mix: early words are common).
const WORDS: &[&str] = &[
    "deploy",
    "release",
    "billing",
    "service",
    "customer",
    "invoice",
    "meeting",
    "review",
    "design",
    "backend",
    "frontend",
    "database",
    "migration",
    "outage",
    "incident",
    "latency",
    "cluster",
    "kafka",
    "search",
    "index",
    "query",
    "budget",
    "roadmap",
    "quarter",
    "planning",
    "hiring",
    "interview",
    "lunch",
    "coffee",
    "weekend",
    "holiday",
    "travel",
    "report",
    "metrics",
    "dashboard",
    "alert",
    "pager",
    "rollback",
    "feature",
    "flag",
    "experiment",
    "launch",
    "marketing",
    "sales",
    "contract",
    "renewal",
    "security",
    "audit",
    "password",
    "token",
    "network",
    "firewall",
    "storage",
    "backup",
    "restore",
];

pub fn text(i: usize) -> String {
    // deterministic pseudo-random picks, biased towards the front of the list
    let mut x = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let n = 6 + (x % 10) as usize;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let r = ((x >> 33) % 1000) as f64 / 1000.0;
        out.push(WORDS[((r * r) * WORDS.len() as f64) as usize]);
    }
    out.join(" ")
}

pub fn enc(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn run(mode: Mode, messages: usize, samples: usize, queries: usize) -> anyhow::Result<()> {
    // one socket sends the whole load and receives every ack and message:new: no rate limit,
    // and room for the frames in flight
    let stack = Stack::start_custom(
        mode,
        1,
        None,
        &[("CONFAB_GATEWAY__RATE_PER_SEC", "0"), ("CONFAB_GATEWAY__SEND_BUFFER", "8192")],
    )
    .await;
    let ws = stack.create_workspace("bench").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let channels: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..10 {
            v.push(stack.create_channel(&ws, &format!("c{i}"), false, &[&alice]).await);
        }
        v
    };
    let mut c = Client::connect(&stack.addr("gw0"), &token).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;

    // load, with at most `window` sends in flight
    let started = Instant::now();
    let window = 200;
    let (mut sent, mut acked) = (0usize, 0usize);
    while acked < messages {
        while sent < messages && sent - acked < window {
            c.send_message(&channels[sent % channels.len()], &text(sent), &format!("l{sent}")).await;
            sent += 1;
        }
        match c.next(Duration::from_secs(60)).await {
            Some(f) if f["type"] == "message:ack" => acked += 1,
            Some(f) if f["type"] == "error" => anyhow::bail!("load send failed: {f}"),
            Some(_) => {}
            None => anyhow::bail!("socket closed while loading"),
        }
    }
    let load_secs = started.elapsed().as_secs_f64();
    // wait until the index has caught up with the load: a marker sent last to every channel
    // (channels live on different partitions, indexed independently) is findable
    for (i, ch) in channels.iter().enumerate() {
        let marker = c
            .command(json!({"type": "message:send", "channel_id": ch, "text": "zzmarkerzz"}), &format!("marker{i}"))
            .await;
        anyhow::ensure!(marker["type"] == "message:ack", "marker: {marker}");
    }
    let caught_up = Instant::now();
    loop {
        let (_, body) = stack.get("gw0", "/api/search?q=zzmarkerzz", &token).await;
        if body["total"] == channels.len() {
            break;
        }
        anyhow::ensure!(caught_up.elapsed() < Duration::from_secs(600), "index did not catch up in 10 min");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let index_secs = started.elapsed().as_secs_f64();
    let (_, all) = stack.get("gw0", "/api/search?q=deploy", &token).await;
    println!(
        "loaded {messages} messages in {load_secs:.1} s ({:.0} msg/s acked); searchable after {index_secs:.1} s; `deploy` matches {}",
        messages as f64 / load_secs,
        all["total"]
    );

    // visibility: ack -> the first search that returns it, polled every 5 ms
    let mut vis = Histogram::<u64>::new(3)?;
    for i in 0..samples {
        // a random token: no fuzzy match with any other probe
        let word = format!("p{}", uuid::Uuid::new_v4().simple());
        let ack = c.command(json!({"type": "message:send", "channel_id": channels[i % channels.len()], "text": format!("probe {word} for visibility")}), &format!("v{i}")).await;
        anyhow::ensure!(ack["type"] == "message:ack", "probe: {ack}");
        let t0 = Instant::now();
        loop {
            let (_, body) = stack.get("gw0", &format!("/api/search?q={word}"), &token).await;
            if body["messages"].as_array().is_some_and(|m| m.iter().any(|m| m["message_id"] == ack["message_id"])) {
                break;
            }
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(30), "probe {word} not searchable after 30 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        vis.record(t0.elapsed().as_micros() as u64)?;
    }

    // queries: a mix of what people type
    let mix = [
        "deploy",
        "billing invoice",
        "\"customer contract\"",
        "deploymnet",
        "incident in:#c3",
        "rollback from:me",
        "kafka cluster latency",
        "audit after:2020-01-01",
    ];
    let mut q_h = Histogram::<u64>::new(3)?;
    let mut per: Vec<Histogram<u64>> = mix.iter().map(|_| Histogram::new(3).unwrap()).collect();
    for i in 0..queries {
        let k = i % mix.len();
        let t = Instant::now();
        let (status, body) = stack.get("gw0", &format!("/api/search?q={}&limit=20", enc(mix[k])), &token).await;
        let us = t.elapsed().as_micros() as u64;
        anyhow::ensure!(status == 200, "query {}: {body}", mix[k]);
        q_h.record(us)?;
        per[k].record(us)?;
    }
    let where_ = if mode == Mode::Embedded {
        "embedded (tantivy, one confab serve)"
    } else {
        "distributed (OpenSearch 2.19, one node, 512 MB heap)"
    };
    println!("## search: {messages} messages indexed, {where_}");
    println!();
    println!("| measure | n | median ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    println!("{}", crate::summary("ack -> searchable (visibility lag)", &vis));
    println!("{}", crate::summary("query, all kinds (HTTP round trip)", &q_h));
    for (k, h) in per.iter().enumerate() {
        println!("{}", crate::summary(&format!("query `{}`", mix[k].replace('"', "\\\"")), h));
    }
    Ok(())
}
