//! `confab-load`: benchmark scenarios against a real stack.
//!
//! `latency`: starts a stack (real servers from `CONFAB_TEST_ENV`, the `confab` binary from
//! `CONFAB_BIN`, normally a release build), puts a sender on gateway 0 and a receiver on
//! gateway 1 in one channel, sends `--messages` at `--rate` per second, and reports
//! send -> `message:new` latency at the other gateway (and send -> ack) as median/p95/p99/max.
//! Both ends run in this process, so they share one clock.
//!
//! `search`: loads `--messages` into a workspace, then measures how long after its ack a new
//! message is found by `/api/search` (one at a time), and the latency of a mix of queries.

mod connections;
mod fanout;
mod hot;
mod procs;
mod push;
mod replay;
mod search;
mod storm;
mod throughput;
mod underload;

use anyhow::Context;
use clap::{Parser, Subcommand};
use confab_tests::{Client, Mode, Stack};
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// send -> message:new latency across two gateways at a fixed rate
    Latency {
        /// `embedded` (confab serve alone) or `distributed` (real servers from CONFAB_TEST_ENV)
        #[arg(long, default_value = "distributed")]
        mode: String,
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        #[arg(long, default_value_t = 200)]
        rate: u64,
        #[arg(long, default_value_t = 200)]
        warmup: usize,
    },
    /// latency under load: senders into channels with connected receivers, rate stepped up
    /// until p99 crosses 100 ms; `--system` embedded, distributed or centrifugo (the peer), or
    /// several comma separated (run one after the other, then compared, the last as the peer)
    Underload {
        #[arg(long, default_value = "embedded")]
        system: String,
        #[arg(long, default_value_t = 4)]
        senders: usize,
        #[arg(long, default_value_t = 20)]
        channels: usize,
        #[arg(long, default_value_t = 5)]
        members: usize,
        /// offered rates (msg/s), comma separated, in order
        #[arg(long, default_value = "250,500,1000,2000,3000,4000")]
        rates: String,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// the highest sustained send rate every consumer keeps up with (lag bounded), with the
    /// CPU and memory of every process; the rate is stepped up until one step falls behind
    Throughput {
        #[arg(long, default_value = "distributed")]
        mode: String,
        #[arg(long, default_value_t = 8)]
        senders: usize,
        #[arg(long, default_value_t = 40)]
        channels: usize,
        /// connected members per channel besides its sender, each counting deliveries
        #[arg(long, default_value_t = 1)]
        readers: usize,
        #[arg(long, default_value = "500,1000,2000,4000,8000,12000,16000")]
        rates: String,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// idle WebSockets one server holds: memory per connection, heartbeat cost; `--system`
    /// embedded, centrifugo or both comma separated
    Connections {
        #[arg(long, default_value = "embedded,centrifugo")]
        system: String,
        #[arg(long, default_value_t = 15_000)]
        connections: usize,
        #[arg(long, default_value_t = 100)]
        per_workspace: usize,
        /// handshakes in flight
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
    },
    /// load messages, then rebuild the timeline and the search index from the log (events/s)
    Replay {
        #[arg(long, default_value = "distributed")]
        mode: String,
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
    },
    /// every client reconnects at once with resume; time until all are back and resumed
    Storm {
        #[arg(long, default_value = "embedded")]
        mode: String,
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
    },
    /// one hot channel, every member connected: deliveries per second the server fans out
    Hot {
        #[arg(long, default_value = "embedded,centrifugo")]
        system: String,
        #[arg(long, default_value_t = 5_000)]
        members: usize,
        #[arg(long, default_value = "2,5,10,20,40")]
        rates: String,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// one message to every member of a big channel, all connected; presence propagation
    Fanout {
        #[arg(long, default_value = "distributed")]
        mode: String,
        #[arg(long, default_value_t = 10_000)]
        members: usize,
        #[arg(long, default_value_t = 10)]
        messages: usize,
    },
    /// ack -> push request at a (local, protocol-speaking) Web Push service
    Push {
        #[arg(long, default_value = "distributed")]
        mode: String,
        #[arg(long, default_value_t = 200)]
        pushes: usize,
        #[arg(long, default_value_t = 20)]
        recipients: usize,
    },
    /// search visibility lag (ack -> found by /api/search) and query latency over a loaded index
    Search {
        #[arg(long, default_value = "distributed")]
        mode: String,
        /// messages indexed before measuring
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// visibility samples (one at a time)
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// queries timed
        #[arg(long, default_value_t = 500)]
        queries: usize,
    },
}

fn parse_mode(mode: &str) -> anyhow::Result<Mode> {
    match mode {
        "embedded" => Ok(Mode::Embedded),
        "distributed" => Ok(Mode::Distributed),
        other => anyhow::bail!("unknown mode {other}: embedded or distributed"),
    }
}

pub(crate) fn summary(name: &str, h: &Histogram<u64>) -> String {
    let ms = |v: u64| v as f64 / 1000.0;
    format!(
        "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
        h.len(),
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.95)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max())
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // the tests' client checks each frame against docs/asyncapi.yaml: not what is measured here
    confab_tests::asyncapi::set_checking(false);
    match cli.scenario {
        Scenario::Latency { mode, messages, rate, warmup } => latency(parse_mode(&mode)?, messages, rate, warmup).await,
        Scenario::Underload { system, senders, channels, members, rates, seconds } => {
            let rates = rates
                .split(',')
                .map(|r| r.trim().parse::<u64>())
                .collect::<Result<Vec<_>, _>>()
                .context("--rates: comma-separated numbers")?;
            let systems: Vec<String> = system.split(',').map(|s| s.trim().to_string()).collect();
            underload::compare(&systems, &underload::Params { senders, channels, members, rates, seconds }).await
        }
        Scenario::Throughput { mode, senders, channels, readers, rates, seconds } => {
            let rates = rates
                .split(',')
                .map(|r| r.trim().parse::<u64>())
                .collect::<Result<Vec<_>, _>>()
                .context("--rates: comma-separated numbers")?;
            throughput::run(parse_mode(&mode)?, &throughput::Params { senders, channels, readers, rates, seconds })
                .await
        }
        Scenario::Connections { system, connections, per_workspace, concurrency } => {
            let systems: Vec<String> = system.split(',').map(|s| s.trim().to_string()).collect();
            connections::run(&systems, &connections::Params { connections, per_workspace, concurrency }).await
        }
        Scenario::Storm { mode, clients } => storm::run(parse_mode(&mode)?, clients).await,
        Scenario::Hot { system, members, rates, seconds } => {
            let systems: Vec<String> = system.split(',').map(|s| s.trim().to_string()).collect();
            let rates =
                rates.split(',').map(|r| r.trim().parse::<u64>()).collect::<Result<Vec<_>, _>>().context("--rates")?;
            hot::run(&systems, members, &rates, seconds).await
        }
        Scenario::Replay { mode, messages } => replay::run(parse_mode(&mode)?, messages).await,
        Scenario::Push { mode, pushes, recipients } => push::run(parse_mode(&mode)?, pushes, recipients).await,
        Scenario::Fanout { mode, members, messages } => fanout::run(parse_mode(&mode)?, members, messages).await,
        Scenario::Search { mode, messages, samples, queries } => {
            search::run(parse_mode(&mode)?, messages, samples, queries).await
        }
    }
}

async fn latency(mode: Mode, messages: usize, rate: u64, warmup: usize) -> anyhow::Result<()> {
    // one connection sends the whole load: lift the per-connection command rate limit
    let stack = Stack::start_custom(mode, 2, None, &[("CONFAB_GATEWAY__RATE_PER_SEC", "0")]).await;
    let ws = stack.create_workspace("bench").await;
    let (alice, alice_token) = stack.create_user(&ws, "sender").await;
    let (bob, bob_token) = stack.create_user(&ws, "receiver").await;
    let ch = stack.create_channel(&ws, "bench", false, &[&alice, &bob]).await;
    let mut sender = Client::connect(&stack.addr("gw0"), &alice_token).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut receiver = Client::connect(&stack.addr("gw1"), &bob_token).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;

    // the fanout path is live once a probe reaches the receiver (projectors may still be
    // joining their consumer groups right after start); only then warm up and measure
    let probe_start = Instant::now();
    let mut probe = 0;
    'live: loop {
        anyhow::ensure!(probe_start.elapsed() < Duration::from_secs(60), "fanout path not live after 60 s");
        sender.send_message(&ch, "probe", &format!("probe-{probe}")).await;
        probe += 1;
        let until = Instant::now() + Duration::from_millis(200);
        while let Some(f) = receiver.next(until.saturating_duration_since(Instant::now())).await {
            if f["type"] == "message:new" {
                break 'live;
            }
        }
    }
    let _ = receiver.drain(Duration::from_millis(500)).await;
    let _ = sender.drain(Duration::from_millis(200)).await;
    println!("fanout path live after {:.1} s ({probe} probes)", probe_start.elapsed().as_secs_f64());

    let total = warmup + messages;
    let start = Instant::now();
    let recv_task = tokio::spawn(async move {
        let mut got: HashMap<String, Instant> = HashMap::new();
        while got.len() < total {
            match receiver.next(Duration::from_secs(30)).await {
                Some(f) if f["type"] == "message:new" => {
                    got.insert(f["message"]["client_msg_id"].as_str().unwrap_or_default().to_string(), Instant::now());
                }
                Some(_) => {}
                None => break,
            }
        }
        got
    });
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut acks: HashMap<String, Instant> = HashMap::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut i = 0;
    // one loop both sends on the tick and timestamps acks as they arrive
    while i < total {
        tokio::select! {
            biased;
            _ = ticker.tick() => {
                let id = format!("b{i}");
                sent.insert(id.clone(), Instant::now());
                sender.send_message(&ch, &format!("benchmark message {i} with some text in it"), &id).await;
                i += 1;
            }
            f = sender.next(Duration::from_secs(30)) => match f {
                Some(f) if f["type"] == "message:ack" => {
                    acks.insert(f["client_msg_id"].as_str().unwrap_or_default().to_string(), Instant::now());
                }
                Some(_) => {}
                None => anyhow::bail!("sender socket closed"),
            },
        }
    }
    let send_secs = start.elapsed().as_secs_f64();
    while acks.len() < total {
        match sender.next(Duration::from_secs(30)).await {
            Some(f) if f["type"] == "message:ack" => {
                acks.insert(f["client_msg_id"].as_str().unwrap_or_default().to_string(), Instant::now());
            }
            Some(_) => {}
            None => break,
        }
    }
    let got = recv_task.await.context("receiver")?;
    let mut deliver = Histogram::<u64>::new(3)?;
    let mut ack = Histogram::<u64>::new(3)?;
    for i in warmup..total {
        let id = format!("b{i}");
        let s = sent[&id];
        if let Some(r) = got.get(&id) {
            deliver.record(r.duration_since(s).as_micros() as u64)?;
        }
        if let Some(a) = acks.get(&id) {
            ack.record(a.duration_since(s).as_micros() as u64)?;
        }
    }
    let where_ = if mode == Mode::Embedded {
        "embedded (one confab serve)"
    } else {
        "real stack, sender on gateway 0, receiver on gateway 1"
    };
    println!("## latency: {messages} messages (after {warmup} warm-up) at {rate}/s, {where_}");
    println!(
        "offered rate achieved: {:.0} msg/s; delivered {} of {}; acked {} of {}",
        total as f64 / send_secs,
        deliver.len(),
        messages,
        ack.len(),
        messages
    );
    println!();
    println!("| measure | n | median ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    println!("{}", summary("send -> message:new (receiver)", &deliver));
    println!("{}", summary("send -> message:ack (own gateway)", &ack));
    anyhow::ensure!(deliver.len() as usize == messages, "lost deliveries: {} of {messages}", deliver.len());
    Ok(())
}
