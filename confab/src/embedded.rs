//! `confab serve` in embedded mode: gateway, ingest, projectors and a schema registry in one
//! process over one data directory, with no servers. First run creates a demo workspace; every
//! start prints ready-to-paste connection details.

use anyhow::Context;
use confab_core::auth::{Claims, TokenSigner};
use confab_core::avro::EventCodec;
use confab_core::config::{Config, DEV_SECRET};
use confab_core::kafka::Topics;
use confab_core::ports::SchemaSource;
use confab_core::shutdown::Shutdown;
use confab_core::telemetry::Health;
use confab_embedded::Embedded;
use confab_gateway::{new_gateway_id, Gateway, GatewayPorts};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{ProjectorName, Target};

/// A token secret kept in the data directory, so tokens survive restarts and are not the
/// public development default.
fn token_secret(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("token_secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(s.trim().to_string());
    }
    let secret: String = (0..48).map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rand_index(36)])).collect();
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

fn rand_index(n: usize) -> usize {
    (uuid::Uuid::new_v4().as_u128() % n as u128) as usize
}

pub async fn serve(mut cfg: Config, shutdown: Shutdown, health: Health) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let dir = PathBuf::from(&cfg.data_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating data directory {}", dir.display()))?;
    if cfg.auth.token_secret == DEV_SECRET {
        cfg.auth.token_secret = token_secret(&dir)?;
    }
    let registry = Arc::new(
        confab_registry::SchemaStore::open(Some(dir.join("registry.json"))).context("opening the schema registry")?,
    );
    let topics = Topics::new(&cfg.namespace);
    let codec = EventCodec::register_with(registry.clone() as Arc<dyn SchemaSource>, &topics.events)
        .await
        .context("registering the event schema")?;
    let emb = Embedded::open(&dir, cfg.kafka.partitions, codec, cfg.redis.stream_max_len)
        .context("opening the embedded store")?;

    let search = open_search(&dir)?;
    let blobs = open_blobs(&dir, &cfg.auth.token_secret)?;
    let gateway_id = new_gateway_id();
    let ports = GatewayPorts {
        commands: emb.log.clone(),
        replies: emb.log.reply_source(&gateway_id),
        store: emb.store.clone(),
        fanout: emb.fanout.clone(),
        search: search.clone(),
        presence: emb.presence.clone(),
        notify: emb.notify.clone(),
        blobs: Some(blobs.clone()),
    };
    let registry_api = axum::Router::new().nest("/registry", confab_registry::router(registry));
    let gw = Gateway::start(cfg.clone(), gateway_id, ports, Some(registry_api), shutdown.clone(), health.clone())
        .await
        .context("starting gateway")?;
    let addr = gw.addr;
    crate::announce("listening", addr);

    let log = emb.log.clone();
    let open = move || {
        let log = log.clone();
        async move { log.sequencer() }
    };
    let ingest = on_own_thread("confab-ingest", confab_ingest::run(open, shutdown.clone(), health.clone()))?;
    let timeline = tokio::spawn(crate::projector(
        ProjectorName::Timeline,
        emb.log.event_source("projector-timeline")?,
        Target::Store(emb.store.clone(), Some(blobs.clone())),
        shutdown.clone(),
        health.clone(),
    ));
    let fanout = tokio::spawn(crate::projector(
        ProjectorName::Fanout,
        emb.log.event_source("projector-fanout")?,
        Target::Fanout(emb.fanout.clone()),
        shutdown.clone(),
        health.clone(),
    ));
    let search = tokio::spawn(crate::projector(
        ProjectorName::Search,
        emb.log.event_source("projector-search")?,
        Target::Search(search, emb.store.clone()),
        shutdown.clone(),
        health.clone(),
    ));
    let notifier = tokio::spawn(crate::notifier::run(
        cfg.clone(),
        emb.log.event_source("projector-notifier")?,
        emb.store.clone(),
        emb.presence.clone(),
        emb.notify.clone(),
        shutdown.clone(),
        health.clone(),
    ));
    tracing::info!(%addr, data_dir = %dir.display(), ready_ms = started.elapsed().as_millis() as u64, "confab serve ready (embedded)");
    if std::env::var("CONFAB_NO_DEMO").is_err() {
        match demo(&cfg, &dir, addr).await {
            Ok(text) => println!("{text}"),
            Err(e) => tracing::warn!(error = %e, "could not prepare the demo workspace"),
        }
    }
    gw.join().await?;
    ingest.await.context("the ingest thread ended without a result")??;
    timeline.await??;
    fanout.await??;
    search.await??;
    notifier.await??;
    Ok(())
}

/// Runs `task` to completion on a thread with a runtime of its own; the receiver gets its output.
///
/// For ingest: its loop is serial (read commands, decide, commit), so every wake-up that waited
/// behind the gateway's tasks on the two shared workers was time the whole pipeline lost. At
/// 12,000 msg/s it spent 0.26 s of every second reading and 0.69 s committing batches of 36
/// commands on average, whose fsync alone takes about 0.1 ms (`load-tests/RESULTS.md`,
/// 2026-11-28, "what limits embedded throughput").
fn on_own_thread<T: Send + 'static>(
    name: &str,
    task: impl std::future::Future<Output = T> + Send + 'static,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<T>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .with_context(|| format!("building the {name} runtime"))?;
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = done.send(rt.block_on(task));
        })
        .with_context(|| format!("starting the {name} thread"))?;
    Ok(result)
}

/// The embedded file store: `<data_dir>/files`, with URLs signed (with a key derived from
/// `secret`) and served by the gateway.
pub fn open_blobs(dir: &Path, secret: &str) -> anyhow::Result<Arc<confab_core::blobs::BlobStore>> {
    let path = dir.join("files");
    Ok(Arc::new(
        confab_core::blobs::BlobStore::local(&path, secret)
            .with_context(|| format!("opening the file store in {}", path.display()))?,
    ))
}

/// The embedded search index: tantivy in `<data_dir>/search`.
pub fn open_search(dir: &Path) -> anyhow::Result<Arc<dyn confab_core::search::SearchIndex>> {
    let path = dir.join("search");
    Ok(Arc::new(
        confab_search::TantivyIndex::open(&path)
            .with_context(|| format!("opening the search index in {}", path.display()))?,
    ))
}

/// Creates the demo workspace on first run (through the admin API, like any operator), and
/// returns connection details with fresh tokens.
async fn demo(cfg: &Config, dir: &Path, addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let path = dir.join("demo.json");
    let base = format!("http://{addr}");
    let demo: Value = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)?,
        Err(_) => {
            let http = reqwest::Client::new();
            let post = |p: String, body: Value| {
                let http = http.clone();
                let url = format!("{base}{p}");
                let key = cfg.auth.admin_key.clone();
                async move {
                    let r = http.post(url).bearer_auth(key).json(&body).send().await?;
                    anyhow::ensure!(r.status().is_success(), "admin API answered {}", r.status());
                    Ok::<Value, anyhow::Error>(r.json().await?)
                }
            };
            let ws = post("/admin/workspaces".into(), json!({"name": "demo"})).await?["workspace_id"].clone();
            let ws_s = ws.as_str().unwrap_or_default().to_string();
            let alice =
                post(format!("/admin/workspaces/{ws_s}/users"), json!({"name": "alice"})).await?["user_id"].clone();
            let bob = post(format!("/admin/workspaces/{ws_s}/users"), json!({"name": "bob"})).await?["user_id"].clone();
            let ch =
                post(format!("/admin/workspaces/{ws_s}/channels"), json!({"name": "general", "members": [alice, bob]}))
                    .await?["channel_id"]
                    .clone();
            let d = json!({"workspace_id": ws, "channel_id": ch, "users": {"alice": alice, "bob": bob}});
            std::fs::write(&path, serde_json::to_vec_pretty(&d)?)?;
            d
        }
    };
    let signer = TokenSigner::new(&cfg.auth.token_secret);
    let exp = chrono::Utc::now().timestamp() + cfg.auth.token_ttl_secs;
    let ws: uuid::Uuid = demo["workspace_id"].as_str().unwrap_or_default().parse()?;
    let ch = demo["channel_id"].as_str().unwrap_or_default();
    let mut text = format!(
        "\nConfab is running (embedded, data in {}).\nDemo workspace {ws}, channel #general {ch}\n",
        dir.display()
    );
    let mut web =
        String::from("Open the web client (one line per demo user; the token stays in the URL's fragment):\n");
    for name in ["alice", "bob"] {
        let user: uuid::Uuid = demo["users"][name].as_str().unwrap_or_default().parse()?;
        let token = signer.mint(&Claims { workspace_id: ws, user_id: user, exp });
        text += &format!("  {name}: ws://{addr}/ws?token={token}\n");
        web += &format!("  {name}: http://{addr}/#token={token}\n");
    }
    text = format!("{text}{web}");
    text += &format!(
        "  send:  {{\"type\":\"message:send\",\"channel_id\":\"{ch}\",\"text\":\"hello\",\"client_msg_id\":\"c1\"}}\n"
    );
    text += &format!("  admin: CONFAB_ADMIN_URL={base} CONFAB_ADMIN_KEY={} confab admin --help\n", cfg.auth.admin_key);
    text += &format!("  schema registry (Confluent API): {base}/registry\n");
    Ok(text)
}
