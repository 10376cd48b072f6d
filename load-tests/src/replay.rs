//! Scenario 6 of issue 6, replay: load `--messages` through one socket (at most 200 sends in
//! flight; the acked rate is what ingest sustained), then rebuild the timeline (`confab replay
//! --projection timeline --from earliest --truncate`) and the search index (`--projection
//! search --from earliest`) from the log, and report each replay's events per second as
//! `confab replay` measured it. Embedded replays need the data directory, so `confab serve`
//! is stopped first; distributed replays run beside the live projectors.

use confab_tests::{Client, Mode, Stack};
use serde_json::Value;
use std::time::{Duration, Instant};

pub async fn run(mode: Mode, messages: usize) -> anyhow::Result<()> {
    let mut stack = Stack::start_custom(
        mode,
        1,
        None,
        &[("CONFAB_GATEWAY__RATE_PER_SEC", "0"), ("CONFAB_GATEWAY__SEND_BUFFER", "8192")],
    )
    .await;
    let ws = stack.create_workspace("bench").await;
    let (alice, token) = stack.create_user(&ws, "alice").await;
    let mut channels = Vec::new();
    for i in 0..10 {
        channels.push(stack.create_channel(&ws, &format!("c{i}"), false, &[&alice]).await);
    }
    let mut c = Client::connect(&stack.addr("gw0"), &token).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let started = Instant::now();
    let window = 200;
    let (mut sent, mut acked) = (0usize, 0usize);
    while acked < messages {
        while sent < messages && sent - acked < window {
            c.send_message(&channels[sent % channels.len()], &crate::search::text(sent), &format!("l{sent}")).await;
            sent += 1;
        }
        match c.next(Duration::from_secs(60)).await {
            Some(f) if f["type"] == "message:ack" => acked += 1,
            Some(f) if f["type"] == "error" => anyhow::bail!("load send failed: {f}"),
            Some(_) => {}
            None => anyhow::bail!("socket closed while loading"),
        }
    }
    let load_rate = messages as f64 / started.elapsed().as_secs_f64();
    drop(c);
    if mode == Mode::Embedded {
        stack.terminate("serve");
    } else {
        tokio::time::sleep(Duration::from_secs(5)).await; // let the live projectors settle
    }
    let mut rows = Vec::new();
    for (projection, extra) in [("timeline", vec!["--truncate"]), ("search", vec![])] {
        let mut args = vec!["replay", "--projection", projection, "--from", "earliest"];
        args.extend(extra);
        let out = stack.confab(&args).output()?;
        anyhow::ensure!(out.status.success(), "confab {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary: Value = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| anyhow::anyhow!("no summary in {stdout}"))?;
        rows.push((projection, summary));
    }
    let what = if mode == Mode::Embedded {
        "embedded (fjall log, tantivy)"
    } else {
        "real stack (Kafka, Cassandra, OpenSearch)"
    };
    println!("## replay: {messages} messages loaded into 10 channels, {what}");
    println!("load: {load_rate:.0} msg/s acked (one socket, 200 in flight)");
    println!();
    println!("| projection | events | seconds | events/s |");
    println!("|---|---|---|---|");
    for (p, s) in rows {
        println!(
            "| {p} | {} | {:.1} | {:.0} |",
            s["events"],
            s["seconds"].as_f64().unwrap_or(0.0),
            s["events_per_sec"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}
