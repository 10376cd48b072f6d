//! What every handler and task of a gateway shares: its configuration, its ports, the local
//! connections (the hub), pending admin answers, metrics and health.

use confab_core::auth::{JwtKeys, JwtRules};
use confab_core::command::{Command, CommandBody, Reply, ReplyTo};
use confab_core::config::Config;
use confab_core::ports::{
    BlobStore, CommandSink, Fanout, NotifyStore, PortError, Presence, ReplySource, SearchIndex, SendLimits,
    SendVerdict, Store,
};
use confab_core::presence::PresenceStatus;
use confab_core::telemetry::Health;
use confab_core::{Shutdown, TokenSigner, TokenVerifier};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, Semaphore};
use uuid::Uuid;

use crate::hub::Hub;
use crate::metrics::Metrics;

/// What a gateway needs from the outside world.
pub struct GatewayPorts {
    pub commands: Arc<dyn CommandSink>,
    pub replies: Box<dyn ReplySource>,
    pub store: Arc<dyn Store>,
    pub fanout: Arc<dyn Fanout>,
    pub search: Arc<dyn SearchIndex>,
    pub presence: Arc<dyn Presence>,
    pub notify: Arc<dyn NotifyStore>,
    /// Shared files' bytes (none: file sharing is off).
    pub blobs: Option<Arc<dyn BlobStore>>,
    /// Per-user and per-workspace send limits, shared by every gateway.
    pub send_limits: Arc<dyn SendLimits>,
    /// Opens sealed fields for data teams (`POST /admin/keys/open`); none: this gateway has no
    /// master key.
    pub keyring: Option<Arc<confab_core::keyring::Keyring>>,
}

pub struct AppState {
    pub cfg: Config,
    pub gateway_id: String,
    /// Mints `cfb1` tokens (admin API).
    pub signer: TokenSigner,
    /// Verifies every token (`cfb1` and JWTs).
    pub verifier: TokenVerifier,
    pub revocations: crate::revocations::Revocations,
    /// Wakes the JWKS refresher early (`jwks::refresh`): a token named a key it lacks.
    pub jwks_refresh: tokio::sync::Notify,
    pub commands: Arc<dyn CommandSink>,
    pub store: Arc<dyn Store>,
    pub fanout: Arc<dyn Fanout>,
    pub search: Arc<dyn SearchIndex>,
    pub presence: Arc<dyn Presence>,
    pub notify: Arc<dyn NotifyStore>,
    pub blobs: Option<Arc<dyn BlobStore>>,
    pub send_limits: Arc<dyn SendLimits>,
    pub keyring: Option<Arc<confab_core::keyring::Keyring>>,
    /// Presence transitions, to the batcher (`presence::batcher`).
    pub presence_changes: tokio::sync::mpsc::UnboundedSender<(Uuid, Uuid, PresenceStatus)>,
    pub hub: Arc<Hub>,
    pub pending: Mutex<HashMap<Uuid, oneshot::Sender<Reply>>>,
    pub conns: Arc<Semaphore>,
    /// File transfers through the gateway (`/blobs/`) running now.
    pub transfers: Arc<Semaphore>,
    pub next_conn: AtomicU64,
    pub metrics: Metrics,
    pub health: Health,
    pub shutdown: Shutdown,
}

/// Presence transitions on their way to the batcher (`presence::batcher`).
pub type PresenceChanges = tokio::sync::mpsc::UnboundedReceiver<(Uuid, Uuid, PresenceStatus)>;

impl AppState {
    /// Takes a token from `user`'s and the workspace's command buckets (shared by every
    /// gateway): `None` when the command may go on, or the refusal to send back. Every
    /// command and upload grant takes one. A limiter that cannot answer lets the command
    /// through (the log is what must be available), and says so.
    pub async fn take_command_token(&self, ws: Uuid, user: Uuid) -> Option<String> {
        let now = chrono::Utc::now().timestamp_millis();
        let gateway = &self.cfg.gateway;
        match self.send_limits.take(ws, user, now).await {
            Ok(SendVerdict::Allowed) => None,
            Ok(SendVerdict::UserLimited) => Some(format!(
                "more than {} messages and other commands a second from you; slow down and retry",
                gateway.user_send_rate_per_sec
            )),
            Ok(SendVerdict::WorkspaceLimited) => Some(format!(
                "more than {} messages and other commands a second in this workspace; retry shortly",
                gateway.workspace_send_rate_per_sec
            )),
            Err(e) => {
                tracing::warn!(error = %e, "send limits unavailable; letting the command through");
                None
            }
        }
    }

    /// The state of a gateway over `ports`, the receiving end of its presence transitions, and
    /// its replies (read by one task, `replies::route`).
    pub fn new(
        cfg: Config,
        gateway_id: String,
        ports: GatewayPorts,
        shutdown: Shutdown,
        health: Health,
    ) -> (Arc<Self>, PresenceChanges, Box<dyn ReplySource>) {
        let metrics = Metrics::new();
        let (presence_changes, presence_rx) = tokio::sync::mpsc::unbounded_channel();
        let state = Arc::new(AppState {
            signer: TokenSigner::new(&cfg.auth.token_secret),
            verifier: verifier(&cfg),
            revocations: Default::default(),
            jwks_refresh: tokio::sync::Notify::new(),
            conns: Arc::new(Semaphore::new(cfg.gateway.max_connections)),
            transfers: Arc::new(Semaphore::new(cfg.files.max_concurrent_transfers)),
            hub: Hub::new(metrics.clone()),
            cfg,
            gateway_id,
            commands: ports.commands,
            store: ports.store,
            fanout: ports.fanout,
            search: ports.search,
            presence: ports.presence,
            notify: ports.notify,
            blobs: ports.blobs,
            send_limits: ports.send_limits,
            keyring: ports.keyring,
            presence_changes,
            pending: Mutex::default(),
            next_conn: AtomicU64::new(1),
            metrics,
            health,
            shutdown,
        });
        (state, presence_rx, ports.replies)
    }

    /// A command from this gateway's HTTP API (its reply comes to no socket): `user_id` acts in
    /// `channel_id` (for an audit record, the nil user in the workspace's own stream).
    pub fn http_command(&self, workspace_id: Uuid, user_id: Uuid, channel_id: Uuid, body: CommandBody) -> Command {
        Command {
            command_id: Uuid::new_v4(),
            workspace_id,
            user_id,
            channel_id,
            reply_to: ReplyTo { gateway_id: self.gateway_id.clone(), conn_id: 0 },
            issued_at: chrono::Utc::now().timestamp_millis(),
            client_msg_id: None,
            body,
            sealed: Vec::new(),
        }
    }

    /// Writes a command to the commands log, keyed by workspace:channel.
    pub async fn produce(&self, cmd: &Command) -> Result<(), PortError> {
        self.commands.send(cmd).await?;
        self.metrics.commands.inc();
        Ok(())
    }
}

/// The token rules of `cfg` (JWKS keys are loaded apart, at start).
fn verifier(cfg: &Config) -> TokenVerifier {
    let a = &cfg.auth;
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let jwt = JwtRules::new(&a.token_secret, JwtKeys::default(), non_empty(&a.jwt_issuer), non_empty(&a.jwt_audience));
    TokenVerifier::new(&a.token_secret, jwt, a.max_token_lifetime_secs)
}

/// A new gateway id (the key its replies carry).
pub fn new_gateway_id() -> String {
    format!("gw-{}", Uuid::new_v4().simple())
}
