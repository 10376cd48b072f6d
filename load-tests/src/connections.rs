//! Scenario 3 of issue 6, connections: `--connections` idle WebSockets held by one server
//! (Confab's embedded `confab serve`, a distributed `confab gateway`, or Centrifugo), opened
//! from several 127.0.0.x source addresses, each sending the protocol's heartbeat every 30 s. Reported: time to connect them
//! all, the server's memory per connection (RSS after minus before), and the heartbeat's cost
//! (the server's CPU over a 30 s idle window, and the bytes the pings take).
//!
//! Confab's connections are distinct users in workspaces of `--per-workspace` people (presence
//! is announced within a workspace), with tokens minted locally with the stack's secret.

use anyhow::Context;
use confab_core::{Claims, TokenSigner};
use confab_tests::{Mode, Stack};
use futures::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The secret `Stack` gives every process.
const TEST_SECRET: &str = "test-secret-0123456789abcdef";

pub struct Params {
    pub connections: usize,
    pub per_workspace: usize,
    pub concurrency: usize,
}

use crate::procs::{cpu_secs, rss_kib};

/// What a connection sends and expects, per system.
#[derive(Clone)]
enum Proto {
    Confab,
    Centrifugo { secret: String },
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens one connection from `source` and completes the handshake.
async fn open(url: String, source: std::net::Ipv4Addr, proto: &Proto, user: &str) -> anyhow::Result<Ws> {
    let req = url.as_str().into_client_request()?;
    let host = req.uri().host().context("host")?.to_string();
    let port = req.uri().port_u16().context("port")?;
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind((source, 0).into())?;
    let tcp = sock.connect(format!("{host}:{port}").parse()?).await?;
    let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await?;
    match proto {
        Proto::Confab => {
            let hello = tokio::time::timeout(Duration::from_secs(30), ws.next()).await?.context("closed")??;
            anyhow::ensure!(hello.to_text().unwrap_or("").contains("hello"), "no hello: {hello:?}");
        }
        Proto::Centrifugo { secret } => {
            ws.send(Message::text(
                serde_json::json!({"id": 1, "connect": {"token": crate::underload::jwt(secret, user)}}).to_string(),
            ))
            .await?;
            let reply = tokio::time::timeout(Duration::from_secs(30), ws.next()).await?.context("closed")??;
            anyhow::ensure!(reply.to_text().unwrap_or("").contains("\"connect\""), "not connected: {reply:?}");
        }
    }
    Ok(ws)
}

/// Idles: Confab clients send a heartbeat every 30 s (the first at a random offset);
/// Centrifugo pings the client (`{}`) and expects `{}` back.
async fn idle(mut ws: Ws, proto: Proto, mut stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
    let first = Duration::from_millis(rand_ms(30_000));
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + first, Duration::from_secs(30));
    let confab = matches!(proto, Proto::Confab);
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = beat.tick(), if confab => ws.send(Message::text(r#"{"type":"ping"}"#)).await?,
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) if !confab && t.as_str() == "{}" => ws.send(Message::text("{}")).await?,
                Some(Ok(_)) => {}
                _ => anyhow::bail!("the server closed a connection"),
            },
        }
    }
}

fn rand_ms(max: u64) -> u64 {
    (uuid::Uuid::new_v4().as_u128() % max as u128) as u64
}

pub async fn run(systems: &[String], p: &Params) -> anyhow::Result<()> {
    println!("## connections: {} idle WebSockets on one server, heartbeat every 30 s", p.connections);
    println!();
    println!("| system | connected | time to connect | conn/s | RSS before | RSS after | per connection | CPU while idle (30 s) | heartbeat bytes/s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for system in systems {
        let (url, pid, proto, _keep): (String, u32, Proto, Box<dyn std::any::Any + Send>) = match system.as_str() {
            "embedded" | "distributed" => {
                let mode = if system == "embedded" { Mode::Embedded } else { Mode::Distributed };
                let stack = Stack::start_custom(mode, 1, None, &[]).await;
                // the gateway process (in embedded mode, the whole system)
                (format!("ws://{}/ws", stack.addr("gw0")), stack.pid("gw0"), Proto::Confab, Box::new(stack))
            }
            "centrifugo" => {
                let c = crate::underload::Centrifugo::start()?;
                let pid: u32 = std::fs::read_to_string(c.run_dir.join("centrifugo/pid"))?.trim().parse()?;
                let url = format!("{}/connection/websocket", c.url.replacen("http", "ws", 1));
                let secret = c.secret.clone();
                (url, pid, Proto::Centrifugo { secret }, Box::new(c))
            }
            other => anyhow::bail!("unknown system {other}: embedded, distributed or centrifugo"),
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = rss_kib(pid)?;
        let signer = TokenSigner::new(TEST_SECRET);
        let ready = Arc::new(AtomicUsize::new(0));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let failed = Arc::new(AtomicUsize::new(0));
        let sem = Arc::new(tokio::sync::Semaphore::new(p.concurrency));
        let start = Instant::now();
        let mut workspace = uuid::Uuid::new_v4();
        for i in 0..p.connections {
            if i % p.per_workspace.max(1) == 0 {
                workspace = uuid::Uuid::new_v4();
            }
            let user = uuid::Uuid::new_v4();
            let url = match &proto {
                Proto::Confab => {
                    let token = signer.mint(&Claims::issued(workspace, user, chrono::Utc::now().timestamp(), 86_400));
                    format!("{url}?token={token}")
                }
                Proto::Centrifugo { .. } => url.clone(),
            };
            let source = std::net::Ipv4Addr::new(127, 0, 0, 2 + (i % 50) as u8);
            let (proto, ready, stop, failed, sem) =
                (proto.clone(), ready.clone(), stop_rx.clone(), failed.clone(), sem.clone());
            let permit = sem.acquire_owned().await?;
            tokio::spawn(async move {
                // the permit bounds handshakes in flight, not connections held
                let ws = open(url, source, &proto, &user.to_string()).await;
                drop(permit);
                match ws {
                    Ok(ws) => {
                        ready.fetch_add(1, Ordering::Relaxed);
                        let _ = idle(ws, proto, stop).await;
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while ready.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < p.connections
            && start.elapsed() < Duration::from_secs(600)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = start.elapsed().as_secs_f64();
        let connected = ready.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let after = rss_kib(pid)?;
        let cpu0 = cpu_secs(pid)?;
        tokio::time::sleep(Duration::from_secs(30)).await;
        let cpu = (cpu_secs(pid)? - cpu0) / 30.0 * 100.0;
        // a ping and its pong per connection per 30 s, with WebSocket framing (client frames masked)
        let (ping, pong) = match proto {
            Proto::Confab => (15 + 6, 15 + 2),
            Proto::Centrifugo { .. } => (2 + 2, 2 + 6),
        };
        let beat_bps = connected as f64 * (ping + pong) as f64 / 30.0;
        let per = (after.saturating_sub(before)) as f64 / connected.max(1) as f64;
        println!(
            "| {system} | {connected} of {} | {took:.1} s | {:.0} | {:.0} MiB | {:.0} MiB | {per:.1} KiB | {cpu:.1}% of a core | {:.0} |",
            p.connections,
            connected as f64 / took,
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            beat_bps
        );
        let _ = stop_tx.send(true);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(())
}
