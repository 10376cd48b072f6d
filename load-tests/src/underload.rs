//! Scenario 1 of issue 6, latency under load: `--senders` connections send at a total rate
//! into `--channels` channels with `--members` connected receivers each; every delivery's
//! send -> receive latency is recorded. The rate steps up (`--rates`), `--seconds` per step,
//! and the table shows each step and the first rate whose p99 crosses 100 ms.
//!
//! The same shape runs against Confab (embedded or the real stack; senders on gateway 0,
//! receivers spread over both gateways) and against Centrifugo (`--system centrifugo`, memory
//! engine, started by `scripts/peers/centrifugo.sh`; clients publish with its JSON protocol
//! into channels without a namespace, so no history or recovery is kept), in one process with
//! one clock. Sender k sends into channels k, k + senders, ... and is a member of (subscribed
//! to) those on both sides, so each message reaches `--members` receivers plus its sender; only
//! the receivers' deliveries are timed.

use anyhow::Context;
use base64::Engine;
use confab_tests::{Client, Mode, Stack};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Send instants by message id, and the deliveries' latencies per rate step.
#[derive(Default)]
struct Book {
    sent: Mutex<HashMap<String, Instant>>,
    steps: Mutex<HashMap<u64, Histogram<u64>>>,
    /// With `CONFAB_LOAD_TRACE` set: every delivery, written there as CSV at the end.
    trace: Option<Trace>,
}

/// Deliveries as (rate, send time on CLOCK_MONOTONIC in ns, latency in µs), to line up with a
/// profile taken with `perf record -k CLOCK_MONOTONIC` (see `load-tests/tail.py`).
struct Trace {
    path: String,
    /// An `Instant` and the same moment in CLOCK_MONOTONIC ns (the clock `Instant` reads on
    /// Linux), to express any `Instant` in the clock perf stamps with.
    origin: (Instant, u64),
    rows: Mutex<Vec<(u64, u64, u64)>>,
}

impl Trace {
    fn from_env() -> Option<Trace> {
        let path = std::env::var("CONFAB_LOAD_TRACE").ok()?;
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let origin = (Instant::now(), ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
        Some(Trace { path, origin, rows: Mutex::default() })
    }

    fn monotonic_ns(&self, at: Instant) -> u64 {
        let (instant, ns) = self.origin;
        if at >= instant {
            ns + (at - instant).as_nanos() as u64
        } else {
            ns.saturating_sub((instant - at).as_nanos() as u64)
        }
    }
}

impl Book {
    fn sent(&self, id: &str) {
        self.sent.lock().unwrap().insert(id.to_string(), Instant::now());
    }
    /// A delivery of message `id` (`r<rate>-...`) now.
    fn delivered(&self, id: &str) {
        let now = Instant::now();
        let Some(at) = self.sent.lock().unwrap().get(id).copied() else { return };
        let Some(rate) = id.strip_prefix('r').and_then(|r| r.split('-').next()).and_then(|r| r.parse::<u64>().ok())
        else {
            return;
        };
        let mut steps = self.steps.lock().unwrap();
        let h = steps.entry(rate).or_insert_with(|| Histogram::new(3).unwrap());
        let latency = now.duration_since(at);
        let _ = h.record(latency.as_micros() as u64);
        if let Some(trace) = &self.trace {
            trace.rows.lock().unwrap().push((rate, trace.monotonic_ns(at), latency.as_micros() as u64));
        }
    }
    fn write_trace(&self) -> anyhow::Result<()> {
        let Some(trace) = &self.trace else { return Ok(()) };
        let mut out = String::from("rate,sent_monotonic_ns,latency_us\n");
        for (rate, sent, lat) in trace.rows.lock().unwrap().iter() {
            out.push_str(&format!("{rate},{sent},{lat}\n"));
        }
        std::fs::write(&trace.path, out)?;
        eprintln!("deliveries written to {}", trace.path);
        Ok(())
    }
    fn count(&self, rate: u64) -> u64 {
        self.steps.lock().unwrap().get(&rate).map(|h| h.len()).unwrap_or(0)
    }
}

pub struct Params {
    pub senders: usize,
    pub channels: usize,
    pub members: usize,
    pub rates: Vec<u64>,
    pub seconds: u64,
}

/// One sending connection: `send(channel index, id)` and a way to keep its inbox drained.
#[async_trait::async_trait]
trait Sender: Send {
    async fn send(&mut self, channel: usize, id: &str) -> anyhow::Result<()>;
    /// Reads what the server sent back (acks, pings) for at most `wait`.
    async fn pump(&mut self, wait: Duration) -> anyhow::Result<()>;
}

/// One rate step's outcome: offered, achieved, deliveries, lost, median and p99 (ms).
pub type Step = (u64, f64, u64, u64, f64, f64);

/// Runs the systems one after the other (each on a quiet machine: the previous one is
/// stopped first) and compares them at each rate.
pub async fn compare(systems: &[String], p: &Params) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for s in systems {
        all.push((s.clone(), run(s, p).await?));
        println!();
    }
    if systems.len() < 2 {
        return Ok(());
    }
    let peer = &all.last().expect("two systems").0;
    println!("## side by side (ratio = system / {peer}, per rate; lower is better)");
    println!();
    let mut head = String::from("| offered msg/s |");
    let mut rule = String::from("|---|");
    for (name, _) in &all {
        head += &format!(" {name} median / p99 ms |");
        rule += "---|";
    }
    for (name, _) in &all[..all.len() - 1] {
        head += &format!(" {name}/{peer} p99 |");
        rule += "---|";
    }
    println!("{head}\n{rule}");
    for rate in &p.rates {
        let at = |steps: &Vec<Step>| steps.iter().find(|s| s.0 == *rate).copied();
        let mut row = format!("| {rate} |");
        for (_, steps) in &all {
            row += &match at(steps) {
                Some(s) if s.3 == u64::MAX => " sender dropped |".into(),
                Some(s) if s.3 == 0 => format!(" {:.2} / {:.2} |", s.4, s.5),
                Some(s) => format!(" {:.2} / {:.2} ({} missing) |", s.4, s.5, s.3),
                None => " - |".into(),
            };
        }
        let peer_p99 = at(&all.last().expect("peer").1).map(|s| s.5);
        for (_, steps) in &all[..all.len() - 1] {
            row += &match (at(steps), peer_p99) {
                (Some(s), Some(q)) if q > 0.0 && s.5.is_finite() => format!(" {:.2} |", s.5 / q),
                _ => " - |".into(),
            };
        }
        println!("{row}");
    }
    Ok(())
}

pub async fn run(system: &str, p: &Params) -> anyhow::Result<Vec<Step>> {
    let mut results = Vec::new();
    let book = Arc::new(Book { trace: Trace::from_env(), ..Default::default() });
    let (senders, describe, _keep): (Vec<Box<dyn Sender>>, String, Box<dyn std::any::Any + Send>) = match system {
        "embedded" | "distributed" => confab(system, p, book.clone()).await?,
        "centrifugo" => centrifugo(p, book.clone()).await?,
        "synapse" => synapse(p, book.clone()).await?,
        other => anyhow::bail!("unknown system {other}: embedded, distributed, centrifugo or synapse"),
    };
    println!("## latency under load: {describe}");
    println!(
        "{} senders, {} channels x {} connected receivers, {} s per rate",
        p.senders, p.channels, p.members, p.seconds
    );
    println!();
    println!("(achieved: what the senders got through, the server pushing back on their sockets; missing: deliveries not arrived 15 s after the step ended)");
    println!();
    println!("| offered msg/s | achieved msg/s | deliveries | missing | median ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut senders = senders;
    if system == "distributed" {
        // the JVMs run with the full JIT: give them its first compilations before measuring
        // (the first steps after a cold start were several times slower)
        warm_up(&mut senders, p, 200, Duration::from_secs(40), &book).await?;
    }
    let senders: Vec<Arc<tokio::sync::Mutex<Box<dyn Sender>>>> =
        senders.into_iter().map(|s| Arc::new(tokio::sync::Mutex::new(s))).collect();
    let mut crossed = None;
    for &rate in &p.rates {
        let per_sender = rate as f64 / senders.len() as f64;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (k, s) in senders.iter().enumerate() {
            let (s, book, channels, seconds, nsenders) = (s.clone(), book.clone(), p.channels, p.seconds, p.senders);
            tasks.push(tokio::spawn(async move {
                let mut s = s.lock().await;
                let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sender));
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let total = (per_sender * seconds as f64).round() as usize;
                let mut i = 0;
                while i < total {
                    ticker.tick().await;
                    let id = format!("r{rate}-{k}-{i}");
                    book.sent(&id);
                    // sender k owns channels k, k + senders, ... (it is a member of those only)
                    let owned = channels.div_ceil(nsenders);
                    let c = (k + nsenders * (i % owned)) % channels;
                    s.send(c, &id).await?;
                    i += 1;
                    // read what is already there (acks, pings) without waiting
                    s.pump(Duration::ZERO).await?;
                }
                anyhow::Ok(total)
            }));
        }
        let mut sent = 0;
        let mut dropped = false;
        for t in tasks {
            match t.await {
                Ok(r) => sent += r?,
                // a sender's socket was closed under it: the server dropped it as a slow
                // consumer (the load generator shares the 2 cores and fell behind reading)
                Err(e) if e.is_panic() => dropped = true,
                Err(e) => return Err(e.into()),
            }
        }
        if dropped {
            println!("| {rate} | - | - | - | a sender was disconnected as too slow to read; sweep ends | | | |");
            results.push((rate, 0.0, 0, u64::MAX, f64::NAN, f64::NAN));
            break;
        }
        let achieved = sent as f64 / start.elapsed().as_secs_f64();
        let expected = (sent * p.members) as u64;
        // let the tail arrive (bounded), keeping the senders' inboxes drained
        let deadline = Instant::now() + Duration::from_secs(15);
        while book.count(rate) < expected && Instant::now() < deadline {
            for s in &senders {
                s.lock().await.pump(Duration::from_millis(20)).await?;
            }
        }
        let steps = book.steps.lock().unwrap();
        let empty = Histogram::<u64>::new(3)?;
        let h = steps.get(&rate).unwrap_or(&empty);
        let ms = |v: u64| v as f64 / 1000.0;
        println!(
            "| {rate} | {achieved:.0} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            h.len(),
            expected.saturating_sub(h.len()),
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.95)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max())
        );
        let lost = expected.saturating_sub(h.len());
        results.push((rate, achieved, h.len(), lost, ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99))));
        if crossed.is_none() && (h.value_at_quantile(0.99) > 100_000 || lost > 0) {
            crossed = Some(rate);
        }
        drop(steps);
        if crossed.is_some() && crossed != Some(rate) {
            break; // one step past the crossing is enough
        }
    }
    println!();
    match crossed {
        Some(r) => println!("p99 first over 100 ms (or deliveries missing) at {r} msg/s offered"),
        None => println!("p99 stayed under 100 ms up to {} msg/s offered", p.rates.last().unwrap_or(&0)),
    }
    book.write_trace()?;
    Ok(results)
}

// ---- Confab ---------------------------------------------------------------------------------

struct ConfabSender {
    client: Client,
    channels: Vec<String>,
}

#[async_trait::async_trait]
impl Sender for ConfabSender {
    async fn send(&mut self, channel: usize, id: &str) -> anyhow::Result<()> {
        let text = format!("load message {id} with a little text in it");
        self.client.send(json!({"type": "message:send", "channel_id": self.channels[channel], "text": text, "client_msg_id": id})).await;
        Ok(())
    }
    async fn pump(&mut self, wait: Duration) -> anyhow::Result<()> {
        // without waiting: a zero timeout would still sleep until the timer's next tick (1 ms)
        while let Some(f) = self.client.try_next() {
            anyhow::ensure!(f["type"] != "error", "send refused: {f}");
        }
        if wait.is_zero() {
            return Ok(());
        }
        let until = Instant::now() + wait;
        while let Some(f) = self.client.next(until.saturating_duration_since(Instant::now())).await {
            anyhow::ensure!(f["type"] != "error", "send refused: {f}");
        }
        Ok(())
    }
}

async fn confab(
    system: &str,
    p: &Params,
    book: Arc<Book>,
) -> anyhow::Result<(Vec<Box<dyn Sender>>, String, Box<dyn std::any::Any + Send>)> {
    let mode = if system == "embedded" { Mode::Embedded } else { Mode::Distributed };
    let gateways = if mode == Mode::Embedded { 1 } else { 2 };
    // the senders read their channels' messages and acks on a loaded 2-core machine: give their
    // sockets room before the gateway drops them as slow consumers
    let stack = Stack::start_custom(
        mode,
        gateways,
        None,
        &[("CONFAB_GATEWAY__RATE_PER_SEC", "0"), ("CONFAB_GATEWAY__SEND_BUFFER", "8192")],
    )
    .await;
    let ws = stack.create_workspace("load").await;
    let mut senders = Vec::new();
    for i in 0..p.senders {
        senders.push(stack.create_user(&ws, &format!("sender{i}")).await);
    }
    let sender_ids: Vec<&str> = senders.iter().map(|(id, _)| id.as_str()).collect();
    let mut channels = Vec::new();
    let mut receivers = Vec::new();
    for c in 0..p.channels {
        let mut members: Vec<String> = vec![sender_ids[c % sender_ids.len()].to_string()];
        for m in 0..p.members {
            let (id, token) = stack.create_user(&ws, &format!("r{c}-{m}")).await;
            members.push(id);
            receivers.push(token);
        }
        let refs: Vec<&str> = members.iter().map(String::as_str).collect();
        channels.push(stack.create_channel(&ws, &format!("load{c}"), false, &refs).await);
    }
    // receivers spread over the gateways; each reads on its own task
    for (i, token) in receivers.iter().enumerate() {
        let gw = format!("gw{}", i % gateways);
        let mut c = Client::connect(&stack.addr(&gw), token).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let book = book.clone();
        tokio::spawn(async move {
            // with the heartbeat (`keep_alive`): without it the gateway dropped receivers as
            // idle part way through longer sweeps
            loop {
                match c.next(Duration::from_secs(5)).await {
                    Some(f) if f["type"] == "message:new" => {
                        if let Some(id) = f["message"]["client_msg_id"].as_str() {
                            book.delivered(id);
                        }
                    }
                    Some(_) => {}
                    None if c.closed.is_some() => break,
                    None => {}
                }
                if !c.keep_alive().await {
                    break;
                }
            }
        });
    }
    let mut out: Vec<Box<dyn Sender>> = Vec::new();
    for (_, token) in &senders {
        let client = Client::connect(&stack.addr("gw0"), token).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        out.push(Box::new(ConfabSender { client, channels: channels.clone() }));
    }
    // the fanout path is live once a probe arrives everywhere
    wait_live(&mut out, &book, p).await?;
    let what = if mode == Mode::Embedded {
        "Confab embedded (one confab serve)"
    } else {
        "Confab on the real stack (Kafka, Cassandra, Redis; 2 gateways)"
    };
    Ok((out, what.to_string(), Box::new(stack)))
}

/// Sends `rate` msg/s (ids of a step never reported) for `time`, keeping inboxes drained.
async fn warm_up(
    senders: &mut [Box<dyn Sender>],
    p: &Params,
    rate: u64,
    time: Duration,
    book: &Book,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut i = 0usize;
    while start.elapsed() < time {
        ticker.tick().await;
        let k = i % senders.len();
        let id = format!("r2000000-w-{i}");
        book.sent(&id);
        let owned = p.channels.div_ceil(p.senders);
        let c = (k + p.senders * ((i / senders.len()) % owned)) % p.channels;
        senders[k].send(c, &id).await?;
        for s in senders.iter_mut() {
            s.pump(Duration::ZERO).await?;
        }
        i += 1;
    }
    for s in senders.iter_mut() {
        s.pump(Duration::from_millis(500)).await?;
    }
    Ok(())
}

/// Sends one probe per channel until every receiver has had one.
async fn wait_live(senders: &mut [Box<dyn Sender>], book: &Book, p: &Params) -> anyhow::Result<()> {
    let start = Instant::now();
    for attempt in 0.. {
        anyhow::ensure!(start.elapsed() < Duration::from_secs(90), "the fanout path is not live after 90 s");
        let rate = 1_000_000 + attempt; // a step of its own, never reported
        for c in 0..p.channels {
            let id = format!("r{rate}-p-{c}");
            book.sent(&id);
            let n = senders.len();
            senders[c % n].send(c, &id).await?;
        }
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            for s in senders.iter_mut() {
                s.pump(Duration::from_millis(10)).await?;
            }
            if book.count(rate) >= (p.channels * p.members) as u64 {
                for s in senders.iter_mut() {
                    s.pump(Duration::from_millis(200)).await?;
                }
                return Ok(());
            }
        }
    }
    unreachable!()
}

// ---- Centrifugo -----------------------------------------------------------------------------

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The peer's address and secret, from `scripts/peers/centrifugo.sh start`'s env file.
pub struct Centrifugo {
    pub url: String,
    pub secret: String,
    pub run_dir: std::path::PathBuf,
}

impl Centrifugo {
    /// Starts the peer on a free port (`scripts/peers/centrifugo.sh`, which installs it if
    /// needed); stopped on drop.
    pub fn start() -> anyhow::Result<Centrifugo> {
        let run_dir = tempfile::tempdir()?.keep();
        let st = std::process::Command::new("scripts/peers/centrifugo.sh").arg("start").arg(&run_dir).status()?;
        anyhow::ensure!(st.success(), "scripts/peers/centrifugo.sh start failed");
        let env = std::fs::read_to_string(run_dir.join("env"))?;
        let get =
            |k: &str| env.lines().filter_map(|l| l.strip_prefix(&format!("{k}="))).next_back().map(str::to_string);
        Ok(Centrifugo {
            url: get("CENTRIFUGO_URL").context("CENTRIFUGO_URL")?,
            secret: get("CENTRIFUGO_HMAC_SECRET").context("secret")?,
            run_dir,
        })
    }
}

impl Drop for Centrifugo {
    fn drop(&mut self) {
        let _ = std::process::Command::new("scripts/peers/centrifugo.sh").arg("stop").arg(&self.run_dir).status();
    }
}

pub fn jwt(secret: &str, sub: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let head = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64.encode(json!({"sub": sub, "exp": chrono::Utc::now().timestamp() + 86_400}).to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", b64.encode(mac.finalize().into_bytes()))
}

/// Connects and authenticates, and subscribes to `channels`.
async fn centrifugo_client(c: &Centrifugo, user: &str, channels: &[String]) -> anyhow::Result<Ws> {
    let url = format!("{}/connection/websocket", c.url.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.context("connecting to centrifugo")?;
    ws.send(Message::text(json!({"id": 1, "connect": {"token": jwt(&c.secret, user)}}).to_string())).await?;
    for (i, ch) in channels.iter().enumerate() {
        ws.send(Message::text(json!({"id": 2 + i, "subscribe": {"channel": ch}}).to_string())).await?;
    }
    // the replies to connect and the subscriptions
    let want = 1 + channels.len();
    let mut got = 0;
    while got < want {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .context("centrifugo handshake")?
            .context("closed")??;
        for line in m.to_text().unwrap_or("").lines() {
            let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
            anyhow::ensure!(v.get("error").is_none(), "centrifugo refused: {v}");
            if v.get("id").is_some() {
                got += 1;
            }
        }
    }
    Ok(ws)
}

/// Handles one frame: answers pings, records publications (at receivers: `book` is set).
async fn centrifugo_frame(ws: &mut Ws, m: Message, book: Option<&Book>) -> anyhow::Result<()> {
    if let Message::Text(t) = &m {
        for line in t.as_str().lines() {
            if line == "{}" {
                ws.send(Message::text("{}")).await?; // ping -> pong
                continue;
            }
            let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
            if let (Some(id), Some(book)) = (v["push"]["pub"]["data"]["id"].as_str(), book) {
                book.delivered(id);
            }
            anyhow::ensure!(v.get("error").is_none(), "centrifugo error: {v}");
        }
    }
    Ok(())
}

struct CentrifugoSender {
    ws: Ws,
    next_id: u64,
}

#[async_trait::async_trait]
impl Sender for CentrifugoSender {
    async fn send(&mut self, channel: usize, id: &str) -> anyhow::Result<()> {
        self.next_id += 1;
        let text = format!("load message {id} with a little text in it");
        let cmd = json!({"id": self.next_id, "publish": {"channel": format!("load{channel}"), "data": {"id": id, "text": text}}});
        self.ws.send(Message::text(cmd.to_string())).await?;
        Ok(())
    }
    async fn pump(&mut self, wait: Duration) -> anyhow::Result<()> {
        use futures::FutureExt;
        // without waiting: a zero timeout would still sleep until the timer's next tick (1 ms)
        while let Some(m) = self.ws.next().now_or_never() {
            let m = m.context("centrifugo closed the sender")??;
            centrifugo_frame(&mut self.ws, m, None).await?;
        }
        if wait.is_zero() {
            return Ok(());
        }
        let until = tokio::time::Instant::now() + wait;
        while let Ok(m) = tokio::time::timeout_at(until, self.ws.next()).await {
            let m = m.context("centrifugo closed the sender")??;
            // senders receive every message (as Confab's do) but only receivers are timed
            centrifugo_frame(&mut self.ws, m, None).await?;
        }
        Ok(())
    }
}

async fn centrifugo(
    p: &Params,
    book: Arc<Book>,
) -> anyhow::Result<(Vec<Box<dyn Sender>>, String, Box<dyn std::any::Any + Send>)> {
    let c = Centrifugo::start()?;
    for ch in 0..p.channels {
        for m in 0..p.members {
            let mut ws = centrifugo_client(&c, &format!("r{ch}-{m}"), &[format!("load{ch}")]).await?;
            let book = book.clone();
            tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if centrifugo_frame(&mut ws, m, Some(&book)).await.is_err() {
                        break;
                    }
                }
            });
        }
    }
    let mut out: Vec<Box<dyn Sender>> = Vec::new();
    for i in 0..p.senders {
        // senders subscribe to the channels they send to, as Confab's senders are members of
        // them and so receive their messages too: the same deliveries on both sides
        let own: Vec<String> = (0..p.channels).filter(|c| c % p.senders == i).map(|c| format!("load{c}")).collect();
        let ws = centrifugo_client(&c, &format!("sender{i}"), &own).await?;
        out.push(Box::new(CentrifugoSender { ws, next_id: 1000 }));
    }
    wait_live(&mut out, &book, p).await?;
    let version =
        std::process::Command::new(std::env::var("HOME").unwrap_or_default() + "/.cache/confab/peers/bin/centrifugo")
            .arg("version")
            .output()
            .ok();
    let version = version.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    Ok((out, format!("Centrifugo ({version}, memory engine, client-side publish)"), Box::new(c)))
}

// ---- Synapse (Matrix) -----------------------------------------------------------------------

/// The peer (`scripts/peers/synapse.sh`, SQLite as the brief asks; its production setup is
/// PostgreSQL); stopped on drop.
struct Synapse {
    run_dir: std::path::PathBuf,
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let _ = std::process::Command::new("scripts/peers/synapse.sh").arg("stop").arg(&self.run_dir).status();
    }
}

async fn matrix(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut req = http.request(method, &url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{url}: {status} {v}");
    Ok(v)
}

struct SynapseSender {
    http: reqwest::Client,
    url: String,
    token: String,
    rooms: Vec<String>,
    txn: u64,
    /// Sends in flight (each is an HTTP request; the sender does not wait for one to send the next).
    inflight: Arc<tokio::sync::Semaphore>,
}

#[async_trait::async_trait]
impl Sender for SynapseSender {
    async fn send(&mut self, channel: usize, id: &str) -> anyhow::Result<()> {
        self.txn += 1;
        let url = format!(
            "{}/_matrix/client/v3/rooms/{}/send/m.room.message/t{}",
            self.url,
            enc(&self.rooms[channel]),
            self.txn
        );
        let body = json!({"msgtype": "m.text", "body": format!("load message {id} with a little text in it"), "confab_id": id});
        let (http, token) = (self.http.clone(), self.token.clone());
        let permit = self.inflight.clone().acquire_owned().await?;
        tokio::spawn(async move {
            let _ = matrix(&http, reqwest::Method::PUT, url, Some(&token), body).await;
            drop(permit);
        });
        Ok(())
    }
    async fn pump(&mut self, wait: Duration) -> anyhow::Result<()> {
        // nothing to read: answers are awaited by each send's own task
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }
}

use crate::search::enc;

async fn synapse(
    p: &Params,
    book: Arc<Book>,
) -> anyhow::Result<(Vec<Box<dyn Sender>>, String, Box<dyn std::any::Any + Send>)> {
    let run_dir = tempfile::tempdir()?.keep();
    let st = std::process::Command::new("scripts/peers/synapse.sh").arg("start").arg(&run_dir).status()?;
    anyhow::ensure!(st.success(), "scripts/peers/synapse.sh start failed");
    let env = std::fs::read_to_string(run_dir.join("env"))?;
    let url =
        env.lines().filter_map(|l| l.strip_prefix("SYNAPSE_URL=")).next_back().context("SYNAPSE_URL")?.to_string();
    let peer = Synapse { run_dir };
    let http = reqwest::Client::new();
    let register = |name: String| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let v = matrix(
                &http,
                reqwest::Method::POST,
                format!("{url}/_matrix/client/v3/register"),
                None,
                json!({"username": name, "password": "load-test-password", "auth": {"type": "m.login.dummy"}}),
            )
            .await?;
            anyhow::Ok(v["access_token"].as_str().context("access_token")?.to_string())
        }
    };
    let mut sender_tokens = Vec::new();
    for i in 0..p.senders {
        sender_tokens.push(register(format!("sender{i}")).await?);
    }
    let mut rooms = Vec::new();
    for c in 0..p.channels {
        let owner = &sender_tokens[c % p.senders];
        let v = matrix(
            &http,
            reqwest::Method::POST,
            format!("{url}/_matrix/client/v3/createRoom"),
            Some(owner),
            json!({"preset": "public_chat", "name": format!("load{c}")}),
        )
        .await?;
        rooms.push(v["room_id"].as_str().context("room_id")?.to_string());
    }
    // receivers: join their room, then long-poll /sync (only new timeline events)
    let filter = json!({"room": {"timeline": {"limit": 1000}, "state": {"lazy_load_members": true, "limit": 0}, "ephemeral": {"not_types": ["*"]}}, "presence": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]}});
    let filter = enc(&filter.to_string());
    for (c, room) in rooms.iter().enumerate() {
        for m in 0..p.members {
            let token = register(format!("r{c}-{m}")).await?;
            matrix(
                &http,
                reqwest::Method::POST,
                format!("{url}/_matrix/client/v3/join/{}", enc(room)),
                Some(&token),
                json!({}),
            )
            .await?;
            let (http, url, book, filter) = (http.clone(), url.clone(), book.clone(), filter.clone());
            tokio::spawn(async move {
                let mut since: Option<String> = None;
                loop {
                    let mut u = format!("{url}/_matrix/client/v3/sync?timeout=30000&filter={filter}");
                    if let Some(s) = &since {
                        u += &format!("&since={}", enc(s));
                    }
                    let Ok(r) = http.get(&u).bearer_auth(&token).send().await else { break };
                    let Ok(v) = r.json::<Value>().await else { break };
                    if let Some(rooms) = v["rooms"]["join"].as_object() {
                        for (_, r) in rooms {
                            for e in r["timeline"]["events"].as_array().into_iter().flatten() {
                                if let Some(id) = e["content"]["confab_id"].as_str() {
                                    book.delivered(id);
                                }
                            }
                        }
                    }
                    since = v["next_batch"].as_str().map(str::to_string);
                }
            });
        }
    }
    let mut out: Vec<Box<dyn Sender>> = Vec::new();
    for token in sender_tokens {
        out.push(Box::new(SynapseSender {
            http: http.clone(),
            url: url.clone(),
            token,
            rooms: rooms.clone(),
            txn: 0,
            inflight: Arc::new(tokio::sync::Semaphore::new(64)),
        }));
    }
    wait_live(&mut out, &book, p).await?;
    Ok((
        out,
        "Matrix Synapse 1.163.2 (SQLite, one process; client-server API: PUT send, /sync long-poll)".into(),
        Box::new(peer),
    ))
}
