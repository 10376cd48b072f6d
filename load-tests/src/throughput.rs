//! Scenario 2 of issue 6, throughput: the highest sustained message rate that every consumer
//! keeps up with, and what each process spends on it.
//!
//! `--senders` sockets send at a fixed total rate, without waiting for acks, into `--channels`
//! channels (sender k into channels k, k + senders, ...), each with `--readers` more connected
//! members counting their `message:new` frames. Each rate step lasts `--seconds`. Once a second
//! the consumers' lag is sampled: embedded, the `confab_projector_lag` gauges at `/metrics`
//! (its ingest is in-process: the acks show whether it keeps up); on the real stack, every
//! consumer group's committed offsets against the topics' high watermarks, ingest included.
//! The CPU and memory of every process are read from /proc over the sending window: Confab's
//! processes, the real servers' (found by the port each listens on) and this generator's.
//!
//! A step keeps up when everything sent was acked (p99 within 1 s: the path from the socket
//! through the command log and ingest and back keeps up; embedded, the table of ingest's loop
//! tells whether ingest itself was the busy part) and reached the readers, the achieved rate is
//! within 5% of the offered one, every consumer's lag stayed at most two seconds of messages
//! behind through the step's second half, and all lag drained within 10 s of the last send.
//! The sweep stops at the first step that does not keep up.

use anyhow::Context;
use confab_tests::{Client, Mode, Stack};
use hdrhistogram::Histogram;
use rdkafka::consumer::BaseConsumer;
use rdkafka::ClientConfig;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::procs::{self, Usage, Watch};

pub struct Params {
    pub senders: usize,
    pub channels: usize,
    pub readers: usize,
    pub rates: Vec<u64>,
    pub seconds: u64,
}

/// Where the consumers' lag is read.
enum Lag {
    /// `confab serve`'s Prometheus gauges.
    Metrics { url: String, http: reqwest::Client },
    /// Committed offsets per consumer group: (name, consumer in that group, topic).
    Kafka(Arc<Vec<(String, BaseConsumer, String)>>),
}

impl Lag {
    fn kafka(brokers: &str, namespace: &str) -> anyhow::Result<Lag> {
        let topics = confab_core::Topics::new(namespace);
        let mut groups = Vec::new();
        for (name, role, topic) in [
            ("ingest", "ingest", &topics.commands),
            ("timeline", "projector-timeline", &topics.events),
            ("fanout", "projector-fanout", &topics.events),
            ("search", "projector-search", &topics.events),
            ("notifier", "projector-notifier", &topics.events),
        ] {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .set("group.id", format!("{namespace}-{role}"))
                .set("enable.auto.commit", "false")
                .set("log_level", "3")
                .create()?;
            groups.push((name.to_string(), c, topic.clone()));
        }
        Ok(Lag::Kafka(Arc::new(groups)))
    }

    /// Embedded: ingest's loop counters at `/metrics` (`confab_ingest_busy_seconds_total` by
    /// stage, batch sizes, `confab_ingest_commit_seconds`), by series; the real stack: none (ingest is a process
    /// of its own).
    async fn ingest(&self) -> anyhow::Result<Option<BTreeMap<String, f64>>> {
        let Lag::Metrics { url, http } = self else { return Ok(None) };
        let text = http.get(url).send().await?.text().await?;
        let mut out = BTreeMap::new();
        for line in text.lines().filter(|l| l.starts_with("confab_ingest_")) {
            if let Some((series, v)) = line.rsplit_once(' ') {
                if let Ok(v) = v.parse::<f64>() {
                    out.insert(series.to_string(), v);
                }
            }
        }
        Ok(Some(out))
    }

    /// Events (commands, for ingest) not yet applied, per consumer.
    async fn read(&self) -> anyhow::Result<BTreeMap<String, i64>> {
        match self {
            Lag::Metrics { url, http } => {
                let text = http.get(url).send().await?.text().await?;
                let mut out = BTreeMap::new();
                for line in text.lines().filter(|l| l.starts_with("confab_projector_lag{")) {
                    let name = line
                        .split("projector=\"")
                        .nth(1)
                        .and_then(|s| s.split('"').next())
                        .context("projector label")?;
                    let v: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).context("gauge value")?;
                    out.insert(name.to_string(), v as i64);
                }
                Ok(out)
            }
            Lag::Kafka(groups) => {
                let groups = groups.clone();
                tokio::task::spawn_blocking(move || {
                    let t = Duration::from_secs(5);
                    let mut out = BTreeMap::new();
                    for (name, c, topic) in groups.iter() {
                        out.insert(name.clone(), confab_distributed::kafka::committed_lag(c, topic, t)?);
                    }
                    anyhow::Ok(out)
                })
                .await?
            }
        }
    }
}

/// Where ingest's one serial loop spent a step's sending window (from its `/metrics`).
struct IngestLoop {
    /// Seconds per second in each stage.
    read: f64,
    decide: f64,
    commit: f64,
    mean_batch: f64,
    mean_commit_ms: f64,
}

impl IngestLoop {
    fn between(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>, secs: f64) -> IngestLoop {
        let d = |k: &str| b.get(k).copied().unwrap_or(0.0) - a.get(k).copied().unwrap_or(0.0);
        let stage = |s: &str| d(&format!("confab_ingest_busy_seconds_total{{stage=\"{s}\"}}")) / secs;
        let per = |sum: f64, n: f64| if n > 0.0 { sum / n } else { f64::NAN };
        IngestLoop {
            read: stage("read"),
            decide: stage("decide"),
            commit: d("confab_ingest_commit_seconds_sum") / secs,
            mean_batch: per(d("confab_ingest_batch_size_sum"), d("confab_ingest_batch_size_count")),
            mean_commit_ms: 1000.0
                * per(d("confab_ingest_commit_seconds_sum"), d("confab_ingest_commit_seconds_count")),
        }
    }
}

/// One rate step's outcome.
struct Step {
    offered: u64,
    achieved: f64,
    sent: u64,
    acked: u64,
    errors: u64,
    ack: Histogram<u64>,
    delivered: u64,
    expected: u64,
    /// Per consumer: the highest lag sampled in the step's second half.
    max_lag: BTreeMap<String, i64>,
    drained_after: Option<f64>,
    usage: Vec<Usage>,
    /// Embedded: ingest's loop over the sending window.
    ingest: Option<IngestLoop>,
    /// Why the sweep cannot go on: a sender was disconnected.
    dropped: Option<String>,
}

impl Step {
    fn keeps_up(&self) -> Result<(), String> {
        if let Some(why) = &self.dropped {
            return Err(why.clone());
        }
        if self.acked < self.sent || self.errors > 0 {
            return Err(format!("{} of {} acked, {} errors", self.acked, self.sent, self.errors));
        }
        // ingest is a consumer too: its backlog shows as acks arriving late (so does a gateway
        // that falls behind reading its sockets)
        if self.ack.value_at_quantile(0.99) > 1_000_000 {
            return Err(format!("send -> ack p99 {:.0} ms > 1 s", self.ack.value_at_quantile(0.99) as f64 / 1000.0));
        }
        if self.achieved < 0.95 * self.offered as f64 {
            return Err(format!("senders achieved {:.0} msg/s", self.achieved));
        }
        let bound = 2 * self.offered as i64;
        if let Some((name, lag)) = self.max_lag.iter().find(|(_, l)| **l > bound) {
            return Err(format!("{name} lag {lag} > {bound} (2 s of messages)"));
        }
        if self.delivered < self.expected {
            return Err(format!("readers got {} of {} messages", self.delivered, self.expected));
        }
        if self.drained_after.is_none() {
            return Err("lag not drained within 10 s".into());
        }
        Ok(())
    }
}

/// One sender's socket over one step: sends `total` at `per_sec`, reading acks as they come.
/// Gives back the socket and its channels for the next step.
async fn send_step(
    mut c: Client,
    channels: Vec<String>,
    per_sec: f64,
    total: usize,
    tag: String,
) -> Result<Sent, Dropped> {
    let mut sent_at: HashMap<String, Instant> = HashMap::with_capacity(total);
    let mut ack = Histogram::<u64>::new(3).expect("3 significant digits");
    let (mut acked, mut errors) = (0u64, 0u64);
    // frames are matched by their start, not parsed: the generator shares the 2 cores
    let mut on_frame = |f: String, sent_at: &mut HashMap<String, Instant>| {
        if f.starts_with(r#"{"type":"message:ack""#) {
            let id = f.split(r#""client_msg_id":""#).nth(1).and_then(|r| r.split('"').next());
            if let Some(at) = id.and_then(|id| sent_at.remove(id)) {
                acked += 1;
                let _ = ack.record(at.elapsed().as_micros() as u64);
            }
        } else if f.starts_with(r#"{"type":"error""#) {
            errors += 1;
        }
    };
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut i = 0;
    while i < total {
        tokio::select! {
            biased;
            _ = ticker.tick() => {
                let id = format!("{tag}-{i}");
                let channel = &channels[i % channels.len()];
                let frame = json!({"type": "message:send", "channel_id": channel, "text": format!("throughput message {id} with a little text in it"), "client_msg_id": id});
                sent_at.insert(id, Instant::now());
                if !c.try_send(frame).await {
                    return Err(Dropped(c.closed.clone()));
                }
                i += 1;
                // read what has arrived: under a burst of ticks the biased select would
                // otherwise starve the reads, and the gateway drop this socket as too slow
                while let Some(f) = c.try_next_text() {
                    on_frame(f, &mut sent_at);
                }
            }
            f = c.next_text(Duration::from_secs(30)) => match f {
                Some(f) => on_frame(f, &mut sent_at),
                None => return Err(Dropped(c.closed.clone())),
            },
        }
    }
    let last_send = Instant::now();
    // the acks still on their way (bounded)
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sent_at.is_empty() && Instant::now() < deadline {
        match c.next_text(deadline.saturating_duration_since(Instant::now())).await {
            Some(f) => on_frame(f, &mut sent_at),
            None => break,
        }
    }
    Ok(Sent { client: c, channels, acked, errors, ack, last_send })
}

/// A sender's socket was closed under it (with the close frame's code and reason, if any): the
/// gateway drops a socket whose outgoing queue is full, which here means the generator fell
/// behind reading its own messages and acks on the shared cores.
#[derive(Debug)]
struct Dropped(Option<(u16, String)>);

/// What one sender's step gives back.
struct Sent {
    client: Client,
    channels: Vec<String>,
    acked: u64,
    errors: u64,
    ack: Histogram<u64>,
    last_send: Instant,
}

pub async fn run(mode: Mode, p: &Params) -> anyhow::Result<()> {
    anyhow::ensure!(p.senders > 0 && p.channels >= p.senders, "--channels must be at least --senders (> 0)");
    let stack = Stack::start_custom(
        mode,
        1,
        None,
        &[("CONFAB_GATEWAY__RATE_PER_SEC", "0"), ("CONFAB_GATEWAY__SEND_BUFFER", "8192")],
    )
    .await;
    let ws = stack.create_workspace("throughput").await;
    let mut senders = Vec::new();
    for i in 0..p.senders {
        senders.push(stack.create_user(&ws, &format!("sender{i}")).await);
    }
    let gw = stack.addr("gw0");
    let delivered = Arc::new(AtomicU64::new(0));
    let mut channels = Vec::new();
    for c in 0..p.channels {
        let mut members = vec![senders[c % p.senders].0.clone()];
        let mut tokens = Vec::new();
        for r in 0..p.readers {
            let (id, token) = stack.create_user(&ws, &format!("reader{c}-{r}")).await;
            members.push(id);
            tokens.push(token);
        }
        let refs: Vec<&str> = members.iter().map(String::as_str).collect();
        channels.push(stack.create_channel(&ws, &format!("t{c}"), false, &refs).await);
        for token in tokens {
            let mut reader = Client::connect(&gw, &token).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let delivered = delivered.clone();
            tokio::spawn(async move {
                // with the heartbeat (`keep_alive`), or the gateway drops it as idle
                loop {
                    // frames are only counted, not parsed: the generator shares the 2 cores
                    match reader.next_text(Duration::from_secs(5)).await {
                        Some(t) if t.starts_with(r#"{"type":"message:new""#) => {
                            delivered.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(_) => {}
                        None if reader.closed.is_some() => break,
                        None => {}
                    }
                    if !reader.keep_alive().await {
                        break;
                    }
                }
                eprintln!("warning: a reader's socket closed: {:?}", reader.closed);
            });
        }
    }
    let mut clients = Vec::new();
    for (k, (_, token)) in senders.iter().enumerate() {
        let own: Vec<String> =
            channels.iter().enumerate().filter(|(i, _)| i % p.senders == k).map(|(_, c)| c.clone()).collect();
        clients.push((Client::connect(&gw, token).await.map_err(|e| anyhow::anyhow!("{e:?}"))?, own));
    }

    // what is watched: lag, and every process's CPU and memory
    let mut watched: Vec<(String, u32)> = Vec::new();
    let lag = if mode == Mode::Embedded {
        watched.push(("confab serve".into(), stack.pid("serve")));
        Lag::Metrics { url: format!("http://{}/metrics", stack.admin_addr("serve")), http: reqwest::Client::new() }
    } else {
        for name in ["ingest", "timeline", "fanout", "search", "notifier", "gw0"] {
            watched.push((format!("confab {name}"), stack.pid(name)));
        }
        let s = stack.services.as_ref().context("real servers")?;
        for (name, addr) in [
            ("Kafka", &s.kafka),
            ("Cassandra", &s.cassandra),
            ("OpenSearch", &s.opensearch),
            ("Redis", &s.redis),
            ("MinIO", &s.s3.0),
        ] {
            match procs::port_of(addr).and_then(procs::listening_on) {
                Some(pid) => watched.push((name.to_string(), pid)),
                None => eprintln!("warning: no process found listening for {name} at {addr}; not watched"),
            }
        }
        Lag::kafka(&s.kafka, &stack.namespace)?
    };
    watched.push(("load generator".into(), std::process::id()));

    // warm up: every path live (consumer groups joined) and, on the real stack, the JVMs'
    // JIT past its first compilations (a first step right after start was markedly slower)
    let warm_rate = (p.rates.first().copied().unwrap_or(200) / 2).max(100);
    let warm_secs = if mode == Mode::Embedded { 10 } else { 40 };
    let warm = Step::run(&lag, &mut clients, &delivered, p, warm_rate, warm_secs, &watched, "w", true).await?;
    anyhow::ensure!(warm.acked == warm.sent, "warm-up: {} of {} acked", warm.acked, warm.sent);

    let what = if mode == Mode::Embedded {
        "Confab embedded (one confab serve)"
    } else {
        "Confab on the real stack (Kafka, Cassandra, OpenSearch, Redis, MinIO; one process per component, one gateway)"
    };
    println!("## throughput: {what}");
    println!(
        "{} senders into {} channels, {} more connected member(s) each; {} s per rate after {warm_secs} s of warm-up at {warm_rate} msg/s; lag sampled every second",
        p.senders, p.channels, p.readers, p.seconds
    );
    println!();
    println!("keeps up = everything acked (p99 within 1 s) and delivered to the readers, achieved rate within 5% of offered, every consumer's lag at most 2 s of messages through the step's second half, and drained within 10 s of the last send");
    println!();
    let mut steps: Vec<Step> = Vec::new();
    for &rate in &p.rates {
        let step =
            Step::run(&lag, &mut clients, &delivered, p, rate, p.seconds, &watched, &format!("r{rate}"), false).await?;
        let ok = step.keeps_up().is_ok();
        steps.push(step);
        if !ok {
            break;
        }
    }
    print_steps(&steps);
    println!();
    print_usage(&steps);
    println!();
    print_ingest(&steps);
    let best = steps.iter().filter(|s| s.keeps_up().is_ok()).map(|s| s.offered).max();
    match (best, steps.iter().find(|s| s.keeps_up().is_err())) {
        (Some(b), Some(f)) => println!(
            "highest rate every consumer kept up with: {b} msg/s; at {} msg/s: {}",
            f.offered,
            f.keeps_up().unwrap_err()
        ),
        (Some(b), None) => println!("every consumer kept up at every rate tried, up to {b} msg/s"),
        (None, Some(f)) => println!("no rate kept up; at {} msg/s: {}", f.offered, f.keeps_up().unwrap_err()),
        (None, None) => println!("no steps ran"),
    }
    Ok(())
}

impl Step {
    /// Runs one rate step: sends, samples lag every second, then waits for the lag to drain.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        lag: &Lag,
        clients: &mut Vec<(Client, Vec<String>)>,
        delivered: &AtomicU64,
        p: &Params,
        rate: u64,
        seconds: u64,
        watched: &[(String, u32)],
        tag: &str,
        warmup: bool,
    ) -> anyhow::Result<Step> {
        let per_sender = rate as f64 / clients.len() as f64;
        let per_sender_total = (per_sender * seconds as f64).round() as usize;
        let delivered_before = delivered.load(Ordering::Relaxed);
        let watch = Watch::start(watched);
        let ingest_before = lag.ingest().await?;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (k, (c, own)) in clients.drain(..).enumerate() {
            tasks.push(tokio::spawn(send_step(c, own, per_sender, per_sender_total, format!("{tag}-{k}"))));
        }
        // lag once a second while the senders run
        let mut max_lag: BTreeMap<String, i64> = BTreeMap::new();
        let half = Duration::from_secs_f64(seconds as f64 / 2.0);
        while tasks.iter().any(|t| !t.is_finished()) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let sample = lag.read().await?;
            if start.elapsed() >= half {
                for (name, l) in sample {
                    let m = max_lag.entry(name).or_insert(0);
                    *m = (*m).max(l);
                }
            }
        }
        let usage = watch.finish();
        let ingest = match (&ingest_before, lag.ingest().await?) {
            (Some(a), Some(b)) => Some(IngestLoop::between(a, &b, start.elapsed().as_secs_f64())),
            _ => None,
        };
        let (mut acked, mut errors, mut sent) = (0, 0, 0);
        let mut last_send = start;
        let mut ack = Histogram::<u64>::new(3)?;
        let mut dropped = None;
        for t in tasks {
            let r = match t.await? {
                Ok(r) => r,
                Err(Dropped(close)) => {
                    dropped = Some(format!(
                        "a sender's socket was closed ({close:?}): the generator fell behind reading; the sweep ends"
                    ));
                    continue;
                }
            };
            acked += r.acked;
            errors += r.errors;
            sent += per_sender_total as u64;
            ack.add(r.ack)?;
            last_send = last_send.max(r.last_send);
            clients.push((r.client, r.channels));
        }
        // the achieved rate: what the senders sent over the time until the last send
        let achieved = if dropped.is_some() {
            f64::NAN
        } else {
            sent as f64 / last_send.duration_since(start).as_secs_f64().max(0.001)
        };
        let mut drained_after = None;
        let drain_limit = if warmup { Duration::from_secs(120) } else { Duration::from_secs(10) };
        while Instant::now() < last_send + drain_limit {
            let sample = lag.read().await?;
            if sample.values().all(|l| *l == 0) {
                drained_after = Some(Instant::now().saturating_duration_since(last_send).as_secs_f64());
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // the readers' tail (bounded)
        let expected = sent * p.readers as u64;
        let deadline = Instant::now() + Duration::from_secs(5);
        while delivered.load(Ordering::Relaxed) - delivered_before < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Step {
            offered: rate,
            achieved,
            sent,
            acked,
            errors,
            ack,
            delivered: delivered.load(Ordering::Relaxed) - delivered_before,
            expected,
            max_lag,
            drained_after,
            usage,
            ingest,
            dropped,
        })
    }
}

fn print_steps(steps: &[Step]) {
    let names: Vec<String> = steps
        .iter()
        .flat_map(|s| s.max_lag.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    println!(
        "| offered msg/s | achieved msg/s | acked | send -> ack median / p99 ms | reader deliveries | max lag in 2nd half ({}) | drained after s | keeps up |",
        names.join(" / ")
    );
    println!("|---|---|---|---|---|---|---|---|");
    for s in steps {
        let lags: Vec<String> =
            names.iter().map(|n| s.max_lag.get(n).map(|l| l.to_string()).unwrap_or("-".into())).collect();
        let ms = |v: u64| v as f64 / 1000.0;
        println!(
            "| {} | {:.0} | {} of {} | {:.2} / {:.2} | {} of {} | {} | {} | {} |",
            s.offered,
            s.achieved,
            s.acked,
            s.sent,
            ms(s.ack.value_at_quantile(0.5)),
            ms(s.ack.value_at_quantile(0.99)),
            s.delivered,
            s.expected,
            lags.join(" / "),
            s.drained_after.map(|d| format!("{d:.1}")).unwrap_or("no (10 s)".into()),
            match s.keeps_up() {
                Ok(()) => "yes".to_string(),
                Err(why) => format!("no: {why}"),
            }
        );
    }
}

fn print_ingest(steps: &[Step]) {
    if steps.iter().all(|s| s.ingest.is_none()) {
        return;
    }
    println!("ingest's serial loop over each step's sending window (from `confab_ingest_busy_seconds_total` and friends): seconds per second reading commands (waiting included), deciding, committing; mean batch; mean commit:");
    println!();
    println!("| offered msg/s | read | decide | commit | mean batch | mean commit ms |");
    println!("|---|---|---|---|---|---|");
    for s in steps {
        if let Some(i) = &s.ingest {
            println!(
                "| {} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} |",
                s.offered, i.read, i.decide, i.commit, i.mean_batch, i.mean_commit_ms
            );
        }
    }
    println!();
}

fn print_usage(steps: &[Step]) {
    let Some(first) = steps.first() else { return };
    println!(
        "CPU (% of one core, mean over the step: its sends and the acks' tail) / RSS at its end (MiB), per process:"
    );
    println!();
    let mut head = "| process |".to_string();
    let mut rule = "|---|".to_string();
    for s in steps {
        head += &format!(" {} msg/s |", s.offered);
        rule += "---|";
    }
    println!("{head}\n{rule}");
    for (i, u) in first.usage.iter().enumerate() {
        let mut row = format!("| {} |", u.name);
        for s in steps {
            let u = &s.usage[i];
            row += &format!(" {:.0}% / {:.0} |", u.cpu_pct, u.rss_mib);
        }
        println!("{row}");
    }
    let mut row = "| all watched |".to_string();
    for s in steps {
        let cpu: f64 = s.usage.iter().map(|u| u.cpu_pct).filter(|c| c.is_finite()).sum();
        let rss: f64 = s.usage.iter().map(|u| u.rss_mib).filter(|c| c.is_finite()).sum();
        row += &format!(" {cpu:.0}% / {rss:.0} |");
    }
    println!("{row}");
}
