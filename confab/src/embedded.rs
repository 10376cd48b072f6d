//! The embedded platform: every port in one process over one data directory, with no servers
//! (the fjall log and store, in-process fanout and presence, tantivy, a local file store and
//! the schema registry served by the gateway). `confab serve` runs every component on it; the
//! first run creates a demo workspace, and every start prints ready-to-paste connection
//! details. Reads only the `[embedded]` section of the server settings.

use anyhow::Context;
use async_trait::async_trait;
use confab_core::avro::EventCodec;
use confab_core::config::Config;
use confab_core::keyring::Keyring;
use confab_core::ports::{
    BlobStore, EventSource, Fanout, NotifyStore, Presence, ReplayFrom, SchemaSource, SearchIndex, Store,
};
use confab_core::sealing::LocalMasterKey;
use confab_core::telemetry::Health;
use confab_core::{secrets, Claims, Shutdown, TokenSigner, Topics};
use confab_embedded::{Embedded, LocalBlobs};
use confab_gateway::{ExtraRoutes, GatewayPorts};
use futures::FutureExt;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::platform::{Component, Platform, SequencerOpener, Shared};
use confab_registry::WriteAccess;

pub struct EmbeddedPlatform {
    emb: Embedded,
    send_limits: Arc<confab_embedded::EmbeddedSendLimits>,
    registry: Arc<confab_registry::SchemaStore>,
    /// The registry's writes take the admin key.
    admin_key: String,
    search: Arc<dyn SearchIndex>,
    blobs: Arc<dyn BlobStore>,
    keyring: Arc<Keyring>,
}

impl EmbeddedPlatform {
    /// Opens (creates) everything under `cfg.data_dir`. Fails if another process has it open.
    pub async fn open(cfg: &Config) -> anyhow::Result<Self> {
        let dir = PathBuf::from(&cfg.data_dir);
        let registry = Arc::new(
            confab_registry::SchemaStore::open(Some(dir.join("registry.json")))
                .context("opening the schema registry")?,
        );
        let events = Topics::new(&cfg.namespace).events;
        let codec = EventCodec::register_with(registry.clone() as Arc<dyn SchemaSource>, &events)
            .await
            .context("registering the event schema")?;
        let emb = Embedded::open(&dir, &cfg.embedded, codec).with_context(|| {
            format!("opening the embedded store in {} (is another confab using it?)", dir.display())
        })?;
        let search_dir = dir.join("search");
        let search = Arc::new(
            confab_search::TantivyIndex::open(&search_dir)
                .with_context(|| format!("opening the search index in {}", search_dir.display()))?,
        );
        let files_dir = dir.join("files");
        let blobs = Arc::new(
            LocalBlobs::open(&files_dir, &cfg.auth.token_secret)
                .with_context(|| format!("opening the file store in {}", files_dir.display()))?,
        );
        let gw = &cfg.gateway;
        let send_limits =
            Arc::new(confab_embedded::EmbeddedSendLimits::new(gw.user_send_bucket(), gw.workspace_send_bucket()));
        anyhow::ensure!(!cfg.keys.master_key.is_empty(), "no master key: `keys.master_key` or the data directory's");
        let master = Arc::new(LocalMasterKey::from_secret(&cfg.keys.master_key));
        let keyring = Arc::new(Keyring::new(emb.keys.clone(), master));
        Ok(Self { emb, send_limits, registry, admin_key: cfg.auth.admin_key.clone(), search, blobs, keyring })
    }
}

#[async_trait]
impl Platform for EmbeddedPlatform {
    fn mode(&self) -> &'static str {
        "embedded"
    }

    async fn gateway_ports(&self, gateway_id: &str) -> anyhow::Result<GatewayPorts> {
        Ok(GatewayPorts {
            commands: self.emb.log.clone(),
            replies: self.emb.log.reply_source(gateway_id),
            store: self.emb.store.clone(),
            fanout: self.emb.fanout.clone(),
            search: self.search.clone(),
            presence: self.emb.presence.clone(),
            notify: self.emb.notify.clone(),
            blobs: Some(self.blobs.clone()),
            send_limits: self.send_limits.clone(),
            keyring: Some(self.keyring().await?),
        })
    }

    /// The schema registry: anyone may read it; registering and changing compatibility are on
    /// the admin listener only, with the admin key.
    fn gateway_routes(&self) -> ExtraRoutes {
        let registry = &self.registry;
        ExtraRoutes {
            public: axum::Router::new().nest("/registry", confab_registry::read_router(registry.clone())),
            admin: axum::Router::new()
                .nest("/registry", confab_registry::router(registry.clone(), WriteAccess::Key(self.admin_key.clone()))),
            // the registry's API is Confluent's, documented by Confluent
            public_api: Default::default(),
        }
    }

    async fn log_sequencer(&self) -> anyhow::Result<Option<SequencerOpener>> {
        let log = self.emb.log.clone();
        Ok(Some(Arc::new(move || {
            let log = log.clone();
            async move { log.sequencer() }.boxed()
        })))
    }

    fn ingest_on_own_thread(&self) -> bool {
        true
    }

    async fn log_source(&self, name: &str) -> anyhow::Result<Option<Box<dyn EventSource>>> {
        Ok(Some(self.emb.log.event_source(&format!("projector-{name}"))?))
    }

    async fn log_replay_source(&self, name: &str, from: ReplayFrom) -> anyhow::Result<Option<Box<dyn EventSource>>> {
        Ok(Some(self.emb.log.event_source_from(&format!("replay-{name}"), from).await?))
    }

    async fn keyring(&self) -> anyhow::Result<Arc<Keyring>> {
        Ok(self.keyring.clone())
    }

    async fn store(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(self.emb.store.clone())
    }

    async fn fanout(&self) -> anyhow::Result<Arc<dyn Fanout>> {
        Ok(self.emb.fanout.clone())
    }

    async fn search(&self) -> anyhow::Result<Arc<dyn SearchIndex>> {
        Ok(self.search.clone())
    }

    async fn presence(&self) -> anyhow::Result<Arc<dyn Presence>> {
        Ok(self.emb.presence.clone())
    }

    async fn notify(&self) -> anyhow::Result<Arc<dyn NotifyStore>> {
        Ok(self.emb.notify.clone())
    }

    fn blobs(&self) -> anyhow::Result<Option<Arc<dyn BlobStore>>> {
        Ok(Some(self.blobs.clone()))
    }
}

/// The configuration the embedded mode runs with: the data directory exists, readable by its
/// owner only, and the token secret, admin key and master key are the directory's own (generated on first
/// run) unless configured.
pub fn prepare(mut cfg: Config) -> anyhow::Result<Config> {
    let dir = PathBuf::from(&cfg.data_dir);
    secrets::private_dir(&dir)?;
    if cfg.auth.token_secret.is_empty() {
        cfg.auth.token_secret = secrets::load_or_create(&dir, TOKEN_SECRET_FILE)?;
    }
    if cfg.auth.admin_key.is_empty() {
        cfg.auth.admin_key = secrets::load_or_create(&dir, ADMIN_KEY_FILE)?;
    }
    if cfg.keys.master_key.is_empty() {
        cfg.keys.master_key = secrets::load_or_create(&dir, MASTER_KEY_FILE)?;
    }
    Ok(cfg)
}

/// The files in the data directory that hold the generated secrets.
pub const TOKEN_SECRET_FILE: &str = "token_secret";
pub const ADMIN_KEY_FILE: &str = "admin_key";
/// The master key of crypto-shredding: losing it loses every message (see docs/operators.md).
pub const MASTER_KEY_FILE: &str = "master_key";

/// `confab serve` in embedded mode: every component in this process.
pub async fn serve(cfg: Config, shutdown: Shutdown, health: Health) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let cfg = prepare(cfg)?;
    let platform = Arc::new(EmbeddedPlatform::open(&cfg).await?);
    let cx = Shared { cfg: cfg.clone(), shutdown, health };
    let running = crate::platform::start(platform, &Component::ALL, cx).await?;
    let (addr, admin) = running.gateway.expect("serve runs a gateway");
    let dir = PathBuf::from(&cfg.data_dir);
    let ready_ms = started.elapsed().as_millis() as u64;
    tracing::info!(%addr, %admin, data_dir = %dir.display(), ready_ms, "confab serve ready (embedded)");
    if std::env::var("CONFAB_NO_DEMO").is_err() {
        match demo(&cfg, &dir, addr, admin).await {
            Ok(text) => println!("{text}"),
            Err(e) => tracing::warn!(error = %e, "could not prepare the demo workspace"),
        }
    }
    running.wait().await
}

/// Creates the demo workspace on first run (through the admin API, like any operator), and
/// returns connection details with fresh tokens.
async fn demo(cfg: &Config, dir: &Path, addr: SocketAddr, admin: SocketAddr) -> anyhow::Result<String> {
    let path = dir.join("demo.json");
    let base = format!("http://{addr}");
    let admin_base = format!("http://{admin}");
    let demo: Value = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)?,
        Err(_) => {
            let d = create_demo(cfg, &admin_base).await?;
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
        let token = signer.mint(&Claims { workspace_id: ws, user_id: user, exp, iat: exp - cfg.auth.token_ttl_secs });
        text += &format!("  {name}: token {token}\n");
        web += &format!("  {name}: http://{addr}/#token={token}\n");
    }
    text += &format!(
        "  socket: ws://{addr}/ws with header `Authorization: Bearer TOKEN` (a browser: subprotocols [\"confab\", \"bearer.\" + TOKEN])\n"
    );
    text = format!("{text}{web}");
    text += &format!(
        "  send:  {{\"type\":\"message:send\",\"channel_id\":\"{ch}\",\"text\":\"hello\",\"client_msg_id\":\"c1\"}}\n"
    );
    let key = dir.join(ADMIN_KEY_FILE);
    text += &format!("  admin: confab admin --url {admin_base} --help (its key is in {})\n", key.display());
    text += &format!("  schema registry (Confluent API): {base}/registry (registering: {admin_base}/registry)\n");
    Ok(text)
}

/// The demo workspace with alice and bob in #general, made through the admin API.
async fn create_demo(cfg: &Config, base: &str) -> anyhow::Result<Value> {
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
    let alice = post(format!("/admin/workspaces/{ws_s}/users"), json!({"name": "alice"})).await?["user_id"].clone();
    let bob = post(format!("/admin/workspaces/{ws_s}/users"), json!({"name": "bob"})).await?["user_id"].clone();
    let general = json!({"name": "general", "members": [alice, bob]});
    let ch = post(format!("/admin/workspaces/{ws_s}/channels"), general).await?["channel_id"].clone();
    Ok(json!({"workspace_id": ws, "channel_id": ch, "users": {"alice": alice, "bob": bob}}))
}
