//! Scenario 4 of issue 6 as a rate: one channel with `--members` connected members (Confab
//! embedded, or Centrifugo subscribers), one sender publishing at each of `--rates` msg/s for
//! `--seconds`; reported: deliveries per second achieved, how many messages reached every
//! member, and the time until the last member had each one (median / max). Receivers count
//! frames without parsing JSON (a substring search for the message id), so the load generator,
//! which shares the 2 cores, costs as little as it can.

use anyhow::Context;
use confab_tests::{Mode, Stack};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// One message: when it was sent, how many members got it, when the last one did.
type Delivery = (Instant, usize, Option<Instant>);

/// Publishes message n (connections are made first).
type Sender = Box<dyn FnMut(u64) -> futures::future::BoxFuture<'static, anyhow::Result<()>> + Send>;

#[derive(Default)]
struct Tally {
    /// message number -> its delivery
    msgs: Mutex<HashMap<u64, Delivery>>,
}

impl Tally {
    fn got(&self, text: &str, members: usize) {
        // ids look like `hot-<n>-end`
        let Some(start) = text.find("hot-") else { return };
        let rest = &text[start + 4..];
        let Some(end) = rest.find("-end") else { return };
        let Ok(n) = rest[..end].parse::<u64>() else { return };
        let mut m = self.msgs.lock().unwrap();
        if let Some(e) = m.get_mut(&n) {
            e.1 += 1;
            if e.1 == members {
                e.2 = Some(Instant::now());
            }
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One member's socket. `pong`: Centrifugo's, which answers the server's pings; otherwise
/// Confab's, which sends the protocol's heartbeat (the gateway closes a socket that sends
/// nothing for 70 s; before this, members were dropped part way through a sweep).
async fn reader(mut ws: Ws, tally: Arc<Tally>, members: usize, pong: bool) {
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(20), Duration::from_secs(20));
    loop {
        tokio::select! {
            m = ws.next() => {
                let Some(Ok(m)) = m else { break };
                if let Message::Text(t) = m {
                    if pong && t.as_str() == "{}" {
                        let _ = ws.send(Message::text("{}")).await;
                        continue;
                    }
                    tally.got(t.as_str(), members);
                }
            }
            _ = heartbeat.tick(), if !pong => {
                if ws.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
                    break;
                }
            }
        }
    }
}

pub async fn run(systems: &[String], members: usize, rates: &[u64], seconds: u64) -> anyhow::Result<()> {
    for system in systems {
        let tally = Arc::new(Tally::default());
        // `send(n)` publishes message n; connections are made first
        let (mut send, what, _keep): (Sender, String, Box<dyn std::any::Any + Send>) = match system.as_str() {
            "embedded" | "distributed" => {
                let mode = if system == "embedded" { Mode::Embedded } else { Mode::Distributed };
                let stack = Stack::start_custom(mode, 1, None, &[("CONFAB_GATEWAY__RATE_PER_SEC", "0")]).await;
                let ws = stack.create_workspace("hot").await;
                let mut users = Vec::new();
                for i in 0..members + 1 {
                    users.push(stack.create_user(&ws, &format!("u{i}")).await);
                }
                let ids: Vec<&str> = users.iter().map(|(id, _)| id.as_str()).collect();
                let ch = stack.create_channel(&ws, "all-hands", false, &ids).await;
                let addr = stack.addr("gw0");
                for (_, token) in &users[1..] {
                    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={token}"))
                        .await
                        .context("connect")?;
                    tokio::spawn(reader(ws, tally.clone(), members, false));
                }
                let (sender, _) =
                    tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={}", users[0].1)).await?;
                let (sink, mut stream) = sender.split();
                tokio::spawn(async move { while stream.next().await.is_some() {} }); // acks, its own copies
                let sink = Arc::new(tokio::sync::Mutex::new(sink));
                let send = move |n: u64| {
                    let (sink, ch) = (sink.clone(), ch.clone());
                    Box::pin(async move {
                        let f = json!({"type": "message:send", "channel_id": ch, "text": format!("hot-{n}-end all hands"), "client_msg_id": format!("h{n}")});
                        sink.lock().await.send(Message::text(f.to_string())).await?;
                        anyhow::Ok(())
                    }) as futures::future::BoxFuture<'static, anyhow::Result<()>>
                };
                let what = if mode == Mode::Embedded {
                    "Confab embedded (one confab serve)"
                } else {
                    "Confab on the real stack (one gateway)"
                };
                (Box::new(send), what.into(), Box::new(stack))
            }
            "centrifugo" => {
                let c = crate::underload::Centrifugo::start()?;
                let url = format!("{}/connection/websocket", c.url.replacen("http", "ws", 1));
                for i in 0..members {
                    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
                    ws.send(Message::text(
                        json!({"id": 1, "connect": {"token": crate::underload::jwt(&c.secret, &format!("u{i}"))}})
                            .to_string(),
                    ))
                    .await?;
                    ws.send(Message::text(json!({"id": 2, "subscribe": {"channel": "allhands"}}).to_string())).await?;
                    let mut replies = 0;
                    while replies < 2 {
                        let m = tokio::time::timeout(Duration::from_secs(10), ws.next()).await?.context("closed")??;
                        replies += m.to_text().unwrap_or("").lines().filter(|l| l.contains("\"id\"")).count();
                    }
                    tokio::spawn(reader(ws, tally.clone(), members, true));
                }
                let (mut sender, _) = tokio_tungstenite::connect_async(&url).await?;
                sender
                    .send(Message::text(
                        json!({"id": 1, "connect": {"token": crate::underload::jwt(&c.secret, "sender")}}).to_string(),
                    ))
                    .await?;
                let (sink, mut stream) = sender.split();
                tokio::spawn(async move { while stream.next().await.is_some() {} });
                let sink = Arc::new(tokio::sync::Mutex::new(sink));
                let send = move |n: u64| {
                    let sink = sink.clone();
                    Box::pin(async move {
                        let f = json!({"id": 100 + n, "publish": {"channel": "allhands", "data": {"text": format!("hot-{n}-end all hands")}}});
                        sink.lock().await.send(Message::text(f.to_string())).await?;
                        anyhow::Ok(())
                    }) as futures::future::BoxFuture<'static, anyhow::Result<()>>
                };
                (Box::new(send), "Centrifugo 6.9.1 (memory engine)".into(), Box::new(c))
            }
            other => anyhow::bail!("unknown system {other}: embedded, distributed or centrifugo"),
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("## hot channel: one channel, {members} connected members, {what}, {seconds} s per rate");
        println!();
        println!(
            "| offered msg/s | deliveries/s | messages reaching everyone | to the last member median ms | max ms |"
        );
        println!("|---|---|---|---|---|");
        let mut n: u64 = 0;
        for &rate in rates {
            let first = n;
            let total = rate * seconds;
            let start = Instant::now();
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for _ in 0..total {
                ticker.tick().await;
                tally.msgs.lock().unwrap().insert(n, (Instant::now(), 0, None));
                send(n).await?;
                n += 1;
            }
            // let the tail arrive (bounded)
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let done =
                    tally.msgs.lock().unwrap().iter().filter(|(k, v)| **k >= first && v.2.is_some()).count() as u64;
                if done == total {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let m = tally.msgs.lock().unwrap();
            let mut h = Histogram::<u64>::new(3)?;
            let mut deliveries = 0;
            let mut last = start;
            for (k, (sent, count, done)) in m.iter() {
                if *k < first {
                    continue;
                }
                deliveries += count;
                if let Some(d) = done {
                    h.record(d.duration_since(*sent).as_micros() as u64)?;
                    last = last.max(*d);
                }
            }
            let span = last.duration_since(start).as_secs_f64().max(seconds as f64);
            println!(
                "| {rate} | {:.0} | {} of {total} | {:.1} | {:.1} |",
                deliveries as f64 / span,
                h.len(),
                h.value_at_quantile(0.5) as f64 / 1000.0,
                h.max() as f64 / 1000.0
            );
            if h.len() < total {
                break;
            }
        }
        println!();
    }
    Ok(())
}
