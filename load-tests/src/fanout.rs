//! The fanout scenario: one channel with N members, every member connected (spread over the
//! gateways), and the time for one message to reach every socket; plus presence propagation
//! (a member connects, how long until another gateway's socket hears it).

use confab_tests::{Client, Mode, Stack};
use futures::future::join_all;
use hdrhistogram::Histogram;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

pub async fn run(mode: Mode, members: usize, messages: usize) -> anyhow::Result<()> {
    let gateways = if mode == Mode::Embedded { 1 } else { 2 };
    let stack = Stack::start_custom(
        mode,
        gateways,
        None,
        &[("CONFAB_GATEWAY__RATE_PER_SEC", "0"), ("CONFAB_GATEWAY__PRESENCE_BATCH_MS", "50")],
    )
    .await;
    let ws = stack.create_workspace("fanout").await;
    let started = Instant::now();
    let mut users = Vec::with_capacity(members);
    for chunk in (0..members).collect::<Vec<_>>().chunks(100) {
        let names: Vec<String> = chunk.iter().map(|i| format!("u{i}")).collect();
        let made = join_all(names.iter().map(|n| stack.create_user(&ws, n))).await;
        users.extend(made);
    }
    let ids: Vec<&str> = users.iter().map(|(id, _)| id.as_str()).collect();
    let ch = stack.create_channel(&ws, "all-hands", false, &ids).await;
    println!("{members} users and the channel created in {:.1} s", started.elapsed().as_secs_f64());

    // connect everyone (gateway i % n), 200 at a time
    let started = Instant::now();
    let addrs: Vec<String> = (0..gateways).map(|g| stack.addr(&format!("gw{g}"))).collect();
    let mut clients = Vec::with_capacity(members);
    for (k, chunk) in users.chunks(200).enumerate() {
        let conns = join_all(chunk.iter().enumerate().map(|(j, (_, token))| {
            let addr = addrs[(k * 200 + j) % gateways].clone();
            async move { Client::connect(&addr, token).await }
        }))
        .await;
        for c in conns {
            clients.push(c.map_err(|e| anyhow::anyhow!("connect: {e:?}"))?);
        }
    }
    println!("{members} sockets connected in {:.1} s", started.elapsed().as_secs_f64());
    // the membership index must have caught up before measuring: a probe reaches everyone
    let mut sender = clients.pop().expect("members");
    let receivers = clients.len();
    let barrier = Arc::new(Barrier::new(receivers + 1));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize, Instant)>();
    for (i, mut c) in clients.into_iter().enumerate() {
        let (tx, barrier) = (tx.clone(), barrier.clone());
        tokio::spawn(async move {
            // message k arrives as "m<k>"; the probe is "probe"
            loop {
                match c.next(Duration::from_secs(120)).await {
                    Some(f) if f["type"] == "message:new" && f["message"]["text"] == "probe" => break,
                    Some(_) => {}
                    None => return,
                }
            }
            barrier.wait().await;
            let mut got = 0;
            while got < messages {
                match c.next(Duration::from_secs(120)).await {
                    Some(f) if f["type"] == "message:new" => {
                        let k: usize = f["message"]["text"].as_str().unwrap_or("m0")[1..].parse().unwrap_or(0);
                        let _ = tx.send((i, k, Instant::now()));
                        got += 1;
                    }
                    Some(_) => {}
                    None => return,
                }
            }
        });
    }
    drop(tx);
    let probe = Instant::now();
    sender.command(json!({"type": "message:send", "channel_id": ch, "text": "probe"}), "probe").await;
    tokio::time::timeout(Duration::from_secs(180), barrier.wait())
        .await
        .map_err(|_| anyhow::anyhow!("the probe did not reach every receiver in 180 s"))?;
    println!("probe reached all {receivers} receivers after {:.1} s", probe.elapsed().as_secs_f64());

    let mut all = Histogram::<u64>::new(3)?;
    let mut last_per_msg = Histogram::<u64>::new(3)?;
    let mut sent_at = Vec::new();
    let mut arrivals: Vec<Vec<Instant>> = vec![Vec::with_capacity(receivers); messages];
    for k in 0..messages {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sent_at.push(Instant::now());
        sender.send(json!({"type": "message:send", "channel_id": ch, "text": format!("m{k}"), "client_msg_id": format!("f{k}")})).await;
        // collect this message's arrivals before the next one
        let deadline = Instant::now() + Duration::from_secs(60);
        while arrivals[k].len() < receivers && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
                Ok(Some((_, j, at))) if j < messages => arrivals[j].push(at),
                _ => break,
            }
        }
    }
    let mut complete = 0;
    for (k, arr) in arrivals.iter().enumerate() {
        for at in arr {
            all.record(at.duration_since(sent_at[k]).as_micros() as u64)?;
        }
        if arr.len() == receivers {
            complete += 1;
            let last = arr.iter().max().unwrap();
            last_per_msg.record(last.duration_since(sent_at[k]).as_micros() as u64)?;
        }
    }
    let where_ = if mode == Mode::Embedded { "embedded (one confab serve)" } else { "distributed, 2 gateways" };
    println!("## fanout: one channel, {members} members all connected, {messages} messages, {where_}");
    println!("messages that reached every socket: {complete} of {messages}");
    println!();
    println!("| measure | n | median ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    println!("{}", crate::summary("send -> message:new, each socket", &all));
    println!("{}", crate::summary("send -> the last socket has it", &last_per_msg));

    // presence: a fresh user connects on one gateway; the sender (on another) hears it
    let mut pres = Histogram::<u64>::new(3)?;
    for i in 0..20 {
        let (uid, token) = stack.create_user(&ws, &format!("p{i}")).await;
        let addr = addrs[(members + i + 1) % gateways].clone();
        let t0 = Instant::now();
        let c = Client::connect(&addr, &token).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let uid2 = uid.clone();
        sender
            .expect_where("presence", Duration::from_secs(30), move |f| {
                f["type"] == "presence:change"
                    && f["users"].as_array().is_some_and(|u| u.iter().any(|u| u["user_id"] == uid2.as_str()))
            })
            .await;
        pres.record(t0.elapsed().as_micros() as u64)?;
        drop(c);
    }
    println!("{}", crate::summary("connect -> presence:change at another socket (batch 50 ms)", &pres));
    anyhow::ensure!(complete == messages, "some messages did not reach every socket");
    Ok(())
}
