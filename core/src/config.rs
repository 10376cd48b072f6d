//! Configuration: one TOML file, then `CONFAB_<SECTION>__<KEY>` environment overrides, validated at
//! start. Unknown keys are errors that name the key. Every field has a default, so a process
//! with no configuration at all starts against servers on 127.0.0.1 with their default ports.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {source}")]
    Toml { path: String, source: toml::de::Error },
    #[error("invalid configuration ({origin}): {message}")]
    Invalid { origin: String, message: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `embedded` (everything in one process, no servers), `distributed` (Kafka, Cassandra,
    /// Redis, a schema registry), or `auto`: distributed as soon as the configuration names
    /// any of those servers, embedded otherwise. Only `confab serve` has a choice; the
    /// separate processes (`gateway`, `ingest`, ...) are always distributed.
    pub mode: Mode,
    /// Where the embedded mode keeps its data.
    pub data_dir: String,
    /// Prefix of every topic, consumer group and Redis key; lets several deployments (or tests)
    /// share one set of servers.
    pub namespace: String,
    /// The embedded mode's own settings; it reads no other server section.
    pub embedded: EmbeddedConfig,
    pub kafka: KafkaConfig,
    pub cassandra: CassandraConfig,
    pub redis: RedisConfig,
    pub registry: RegistryConfig,
    pub search: SearchConfig,
    pub notifier: NotifierConfig,
    pub files: FilesConfig,
    pub auth: AuthConfig,
    pub keys: KeysConfig,
    pub gateway: GatewayConfig,
    pub telemetry: TelemetryConfig,
}

/// Crypto-shredding (see `confab_core::sealing`): message texts are sealed in the log under
/// keys that deletes, edits and retention destroy.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// The master key (secret text of at least 32 bytes): it wraps every workspace key, so
    /// losing it loses every message in the log, and changing it makes them unreadable. Empty:
    /// the embedded mode generates one in its data directory (`master_key`); distributed
    /// processes that write or read events refuse to start (unless `--insecure-dev`). Every
    /// ingest, projector and notifier of a deployment needs the same one.
    pub master_key: String,
    /// Bearer key (at least 32 bytes) with which data teams open sealed fields through a
    /// gateway's admin listener (`POST /admin/keys/open`); that gateway needs `master_key` too.
    /// Empty: the endpoint is off.
    pub reader_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// Partitions of the embedded log (commands and events share them, keyed like Kafka's).
    pub partitions: i32,
    /// Entries each workspace's fanout stream keeps (what a resume can replay).
    pub fanout_stream_max_len: usize,
    /// Below this much free space on the data directory's disk, new sends get `unavailable`
    /// (a full disk would stop the database for good); 0 turns the check off.
    pub min_free_disk_mb: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub brokers: String,
    /// Partitions of the commands, events and replies topics (all three the same).
    pub partitions: i32,
    /// Replicas of each topic `confab setup` creates (3 in production).
    pub replication_factor: i32,
    /// Replicas that must have a write before it is acknowledged (`min.insync.replicas` of
    /// the topics `confab setup` creates; producers use `acks=all`). With 3 replicas, 2: one
    /// broker may be lost without losing or refusing a write.
    pub min_insync_replicas: i32,
    /// This process's static consumer-group member id (`group.instance.id`) and, for ingest,
    /// part of its `transactional.id`. A restarted process with the same id takes its
    /// partitions back at once instead of waiting for a session timeout. Give each replica of
    /// a process a distinct id.
    pub instance_id: String,
    /// Consumer session timeout: how long a crashed member keeps its partitions.
    pub session_timeout_ms: u32,
    /// Longest a fetch waits at the broker. With `read_committed` the broker does not wake a
    /// waiting fetch when a transaction commits, so this bounds end-to-end latency; keep it low.
    pub fetch_wait_max_ms: u32,
    /// The same for the search and notifier projectors, whose budgets are a second and five
    /// seconds: they wait for up to this long, or until `projector_fetch_min_bytes` are there,
    /// so that under load they take fewer, larger fetches. Everything clients read right after
    /// a live event (ingest, the fanout and timeline projectors, the gateways' replies) keeps
    /// `fetch_wait_max_ms`.
    pub projector_fetch_wait_ms: u32,
    /// Bytes a fetch of those projectors waits for (up to `projector_fetch_wait_ms`).
    pub projector_fetch_min_bytes: u32,
    /// How often each Kafka client reports librdkafka's statistics, which become the
    /// `confab_kafka_*` metrics (broker state and round trips, consumer lag, bytes); 0: never.
    pub statistics_interval_ms: u32,
    /// Any librdkafka setting, passed to every Kafka client as is (security, TLS, SASL, tuning):
    /// `[kafka.properties]` `"security.protocol" = "SASL_SSL"`. In the environment, underscores
    /// stand for dots (librdkafka names have none): `CONFAB_KAFKA__PROPERTIES__SASL_MECHANISMS`.
    /// A setting librdkafka does not know, or one this build cannot do, stops the process
    /// with an error naming it.
    #[serde(deserialize_with = "string_map")]
    pub properties: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CassandraConfig {
    /// Contact points, comma separated `host:port`.
    pub nodes: String,
    pub keyspace: String,
    /// Replication factor used when `confab setup` creates the keyspace (SimpleStrategy).
    pub replication_factor: u32,
    /// Credentials for `PasswordAuthenticator`; empty: no authentication.
    pub username: String,
    pub password: String,
    /// Client-to-node TLS (rustls): the node's certificate is checked against the system's
    /// roots, or against `ca_file` (a PEM file) for a CA of the operator's own.
    pub tls: bool,
    pub ca_file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/` or, over TLS, `rediss://host:port/`; an ACL user and its password
    /// go in the URL (`rediss://confab:secret@host:6380/`).
    pub url: String,
    /// Approximate length each workspace's fanout stream is trimmed to.
    pub stream_max_len: usize,
    /// A PEM file of the CA that signed the server's certificate, for a server whose CA is not
    /// among the system's (`rediss://` only). Empty: the system's roots.
    pub ca_file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Base URL of a Confluent-compatible schema registry.
    pub url: String,
    /// The bearer token that registers schemas and changes compatibility. `confab registry`
    /// takes writes only with it (reads are open); `confab setup` and `confab schemas register`
    /// send it. Running processes only look their schema up, so they need no key. Against the
    /// embedded registry (the admin listener's `/registry`) it is `auth.admin_key`.
    pub write_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Base URL of OpenSearch (or Elasticsearch) for the distributed mode; the embedded mode
    /// keeps a tantivy index in the data directory instead.
    pub url: String,
    /// Index name; empty means `<namespace>-messages`.
    pub index: String,
    /// A PEM file of the CA that signed the server's certificate, for an `https://` server whose
    /// CA is not a public one. Empty: the public roots. Basic auth goes in the URL
    /// (`https://confab:secret@search.internal:9200`).
    pub ca_file: String,
}

impl SearchConfig {
    pub fn index_name(&self, namespace: &str) -> String {
        if self.index.is_empty() {
            format!("{}-messages", namespace.to_ascii_lowercase())
        } else {
            self.index.clone()
        }
    }
}

/// File sharing: where blobs go, what may be uploaded, how long URLs live. Distributed mode
/// keeps blobs in an S3-compatible bucket (`s3_endpoint`, `bucket`, keys); embedded mode in
/// `<data_dir>/files`, with URLs the gateway signs and serves itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// S3 endpoint the servers use, such as `http://127.0.0.1:9000` for MinIO; empty means
    /// AWS's own.
    pub s3_endpoint: String,
    /// S3 endpoint in the URLs clients receive (they upload and download there directly), when
    /// it differs from `s3_endpoint` (a private address or an internal name for the servers, a
    /// public name or a CDN for clients); empty means `s3_endpoint`.
    pub s3_public_endpoint: String,
    /// Bucket name; empty means `<namespace>-files`. `confab setup` creates it.
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Largest file a workspace may upload unless the workspace sets its own limit.
    pub max_bytes: u64,
    /// Bytes of shared files a workspace may hold at once unless it sets its own quota.
    pub workspace_quota_bytes: u64,
    /// Content types a workspace may upload unless it sets its own list: `type/subtype`,
    /// `type/*` or `*/*` (a list, or one comma-separated string in the environment).
    #[serde(deserialize_with = "list_or_csv")]
    pub allowed_types: Vec<String>,
    /// How long an upload URL stays valid, in seconds.
    pub upload_url_ttl_secs: u64,
    /// How long after its URL expired an upload may still be completed; after that, bytes of
    /// an upload never completed are deleted.
    pub complete_grace_secs: u64,
    /// How often each gateway looks for uploads never completed, in seconds.
    pub incomplete_sweep_secs: u64,
    /// How long a download URL stays valid at most, in seconds (clients may ask for less).
    pub download_url_ttl_secs: u64,
    /// Uploads and downloads the embedded gateway serves at once (`/blobs/`); more get 503.
    pub max_concurrent_transfers: usize,
    /// How long one transfer through the gateway may take.
    pub transfer_timeout_secs: u64,
}

impl FilesConfig {
    pub fn bucket_name(&self, namespace: &str) -> String {
        if self.bucket.is_empty() {
            format!("{}-files", namespace.to_ascii_lowercase().replace('_', "-"))
        } else {
            self.bucket.clone()
        }
    }
}

/// Push providers. A provider left unconfigured (empty key) is off: pushes to its devices are
/// dropped with a logged reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifierConfig {
    /// Our VAPID private key (base64url P-256 scalar or PEM); its public half is what web
    /// clients subscribe with (`GET /api/push/vapid` on every gateway given this setting).
    pub webpush_vapid_key: String,
    /// `mailto:` or `https:` contact for push services.
    pub webpush_subject: String,
    /// Allow `http://` push endpoints (local test servers only).
    pub webpush_allow_http: bool,
    /// Allow push endpoints on loopback, private and link-local addresses (local test servers
    /// only: otherwise a client could make the notifier call inside the network).
    pub webpush_allow_private_networks: bool,
    /// APNs: base URL, team id, key id, the `.p8` PEM, and the app's bundle id (topic).
    pub apns_url: String,
    pub apns_team_id: String,
    pub apns_key_id: String,
    pub apns_key_pem: String,
    pub apns_topic: String,
    /// FCM: base URL and the service account key file's JSON (its `token_uri` may be
    /// overridden by `fcm_token_url`).
    pub fcm_url: String,
    pub fcm_service_account: String,
    pub fcm_token_url: String,
    /// Attempts before a push is given up (with exponential backoff between them).
    pub max_attempts: u32,
    /// How long a notifier's claim on an outbox item hides it from the other notifiers, in ms:
    /// longer than one send can take (a provider's connect and request timeouts, 15 s), since
    /// an item still unsent when its lease ends is claimed and sent again.
    pub outbox_lease_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HMAC key for user tokens; every gateway needs the same one, of at least 32 bytes. Empty:
    /// the embedded mode generates one in its data directory (`token_secret`); distributed
    /// processes refuse to start (unless `--insecure-dev`).
    pub token_secret: String,
    /// Bearer key for the admin API (on `gateway.admin_listen`), of at least 32 bytes. Empty:
    /// generated like the token secret (`admin_key`), or refused.
    pub admin_key: String,
    /// Lifetime of tokens minted by the admin API, in seconds.
    pub token_ttl_secs: i64,
    /// No token may live longer than this (`exp - iat`, in seconds), whoever minted it; it also
    /// bounds how long a revocation must be remembered.
    pub max_token_lifetime_secs: i64,
    /// Public keys for RS256 / EdDSA JWTs minted by an app's own backend: a JWKS file path or
    /// an `https://` URL (re-read every `jwks_refresh_secs`, and early for an unknown `kid`).
    /// Empty: only HS256 JWTs (signed with `token_secret`) and `cfb1` tokens.
    pub jwks: String,
    pub jwks_refresh_secs: u64,
    /// When set, a JWT's `iss` must be this.
    pub jwt_issuer: String,
    /// When set, a JWT's `aud` must include this.
    pub jwt_audience: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Where clients connect (WebSocket and the user API).
    pub listen: String,
    /// Where the admin API, the schema registry's write routes (embedded mode), `/metrics` and
    /// the detailed `/healthz` are served: keep it on loopback or a private network.
    pub admin_listen: String,
    /// Host names (without port) the gateway answers on `listen`; any other `Host` header gets
    /// 421 (this defeats DNS rebinding). Empty: in embedded mode `localhost`, `127.0.0.1`, `::1`
    /// and the listen address's own host; in distributed mode any host (a load balancer in
    /// front decides).
    #[serde(deserialize_with = "list_or_csv")]
    pub allowed_hosts: Vec<String>,
    /// Host names the admin listener answers besides `localhost` and IP addresses (DNS
    /// rebinding needs a name, so an address is always safe): the name a scraper or an operator
    /// reaches it by, such as a Kubernetes service's. Any other name gets 421, in both modes.
    #[serde(deserialize_with = "list_or_csv")]
    pub admin_allowed_hosts: Vec<String>,
    /// WebSocket cap (a semaphore); upgrades past it get HTTP 503.
    pub max_connections: usize,
    /// Open HTTP connections (keep-alive included) on the public listener; a connection past it
    /// is closed as soon as it is accepted, and counted.
    pub max_http_connections: usize,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may stay idle: a client that trickles bytes (slowloris) is cut off.
    pub http_header_timeout_ms: u64,
    /// How long one HTTP request may take, body included (file transfers: `files.transfer_timeout_secs`).
    pub http_request_timeout_ms: u64,
    /// Frames buffered per connection before a slow consumer is disconnected.
    pub send_buffer: usize,
    /// Commands (sends, joins, edits, reactions) one connection may issue per second, sustained;
    /// 0 disables the limit. Over it, commands get `rate_limited` and never reach the log.
    pub rate_per_sec: u32,
    /// Commands one connection may issue in a burst.
    pub rate_burst: u32,
    /// WebSockets one user may hold on one gateway; past it the upgrade gets 429
    /// `too_many_connections`.
    pub max_connections_per_user: usize,
    /// Entries one `resume` replays at most; older missed events are reported as gaps (fetched
    /// over HTTP history).
    pub resume_max_entries: usize,
    /// Entries of other channels one `resume` may pass over while looking for the ones it
    /// replays: with `resume_max_entries`, the bound on a resume's work.
    pub resume_extra_scan: usize,
    /// Messages one user may send per second (sustained) and in a burst, across all their
    /// sockets and every gateway (Redis in distributed mode); 0 disables. Past it: `rate_limited`.
    pub user_send_rate_per_sec: u32,
    pub user_send_burst: u32,
    /// Messages one workspace may send per second and in a burst, all its users together.
    pub workspace_send_rate_per_sec: u32,
    pub workspace_send_burst: u32,
    /// A device counts as connected this long after its last heartbeat (ping); the seed's 35 s
    /// for a 30 s heartbeat.
    pub presence_ttl_ms: u64,
    /// A disconnected device still counts this long, so a quick reconnect changes nothing.
    pub presence_grace_ms: u64,
    /// How often each gateway looks for users whose last device expired.
    pub presence_sweep_ms: u64,
    /// Presence changes of a workspace are gathered this long into one `presence:change`.
    pub presence_batch_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Where processes without an HTTP port of their own (ingest, projectors) serve `/healthz`
    /// and `/metrics`.
    pub listen: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Auto,
    Embedded,
    Distributed,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::Auto,
            data_dir: "./confab-data".into(),
            namespace: "confab".into(),
            embedded: EmbeddedConfig::default(),
            kafka: KafkaConfig::default(),
            cassandra: CassandraConfig::default(),
            redis: RedisConfig::default(),
            registry: RegistryConfig::default(),
            search: SearchConfig::default(),
            notifier: NotifierConfig::default(),
            files: FilesConfig::default(),
            auth: AuthConfig::default(),
            keys: KeysConfig::default(),
            gateway: GatewayConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}
impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self { partitions: 8, fanout_stream_max_len: 100_000, min_free_disk_mb: 256 }
    }
}
impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            partitions: 8,
            replication_factor: 1,
            min_insync_replicas: 1,
            instance_id: "0".into(),
            session_timeout_ms: 10_000,
            fetch_wait_max_ms: 10,
            projector_fetch_wait_ms: 100,
            projector_fetch_min_bytes: 16_384,
            statistics_interval_ms: 15_000,
            properties: Default::default(),
        }
    }
}
impl Default for CassandraConfig {
    fn default() -> Self {
        Self {
            nodes: "127.0.0.1:9042".into(),
            keyspace: "confab".into(),
            replication_factor: 1,
            username: String::new(),
            password: String::new(),
            tls: false,
            ca_file: String::new(),
        }
    }
}
impl Default for RedisConfig {
    fn default() -> Self {
        Self { url: "redis://127.0.0.1:6379/".into(), stream_max_len: 100_000, ca_file: String::new() }
    }
}
impl Default for RegistryConfig {
    fn default() -> Self {
        Self { url: "http://127.0.0.1:8081".into(), write_key: String::new() }
    }
}
impl Default for SearchConfig {
    fn default() -> Self {
        Self { url: "http://127.0.0.1:9200".into(), index: String::new(), ca_file: String::new() }
    }
}
impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            s3_endpoint: String::new(),
            s3_public_endpoint: String::new(),
            bucket: String::new(),
            region: "us-east-1".into(),
            access_key: String::new(),
            secret_key: String::new(),
            max_bytes: 100 * 1024 * 1024,
            workspace_quota_bytes: 10 << 30,
            allowed_types: [
                "image/*",
                "video/*",
                "audio/*",
                "text/plain",
                "text/csv",
                "text/markdown",
                "application/pdf",
                "application/zip",
                "application/json",
            ]
            .map(String::from)
            .to_vec(),
            upload_url_ttl_secs: 900,
            complete_grace_secs: 600,
            incomplete_sweep_secs: 300,
            download_url_ttl_secs: 300,
            max_concurrent_transfers: 32,
            transfer_timeout_secs: 600,
        }
    }
}
impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            webpush_vapid_key: String::new(),
            webpush_subject: "mailto:ops@confab.invalid".into(),
            webpush_allow_http: false,
            webpush_allow_private_networks: false,
            apns_url: "https://api.push.apple.com".into(),
            apns_team_id: String::new(),
            apns_key_id: String::new(),
            apns_key_pem: String::new(),
            apns_topic: String::new(),
            fcm_url: "https://fcm.googleapis.com".into(),
            fcm_service_account: String::new(),
            fcm_token_url: String::new(),
            max_attempts: 12,
            outbox_lease_ms: 60_000,
        }
    }
}
impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token_secret: String::new(),
            admin_key: String::new(),
            token_ttl_secs: 30 * 86_400,
            max_token_lifetime_secs: 30 * 86_400,
            jwks: String::new(),
            jwks_refresh_secs: 300,
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
        }
    }
}
impl GatewayConfig {
    /// The per-user send bucket.
    pub fn user_send_bucket(&self) -> crate::ports::Bucket {
        crate::ports::Bucket { rate: self.user_send_rate_per_sec, burst: self.user_send_burst }
    }

    /// The per-workspace send bucket.
    pub fn workspace_send_bucket(&self) -> crate::ports::Bucket {
        crate::ports::Bucket { rate: self.workspace_send_rate_per_sec, burst: self.workspace_send_burst }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:8090".into(),
            allowed_hosts: Vec::new(),
            admin_allowed_hosts: Vec::new(),
            max_connections: 100_000,
            max_http_connections: 10_000,
            http_header_timeout_ms: 10_000,
            http_request_timeout_ms: 30_000,
            send_buffer: 1024,
            rate_per_sec: 50,
            rate_burst: 500,
            max_connections_per_user: 20,
            resume_max_entries: 5_000,
            resume_extra_scan: 2_000,
            user_send_rate_per_sec: 10,
            user_send_burst: 50,
            workspace_send_rate_per_sec: 500,
            workspace_send_burst: 2_000,
            presence_ttl_ms: 35_000,
            presence_grace_ms: 5_000,
            presence_sweep_ms: 1_000,
            presence_batch_ms: 200,
        }
    }
}
impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { listen: "127.0.0.1:0".into() }
    }
}

/// What `--insecure-dev` fills empty secrets with (development on one machine only; never a
/// default).
pub const INSECURE_DEV_TOKEN_SECRET: &str = "confab-insecure-dev-token-secret-0123456789";
pub const INSECURE_DEV_ADMIN_KEY: &str = "confab-insecure-dev-admin-key-0123456789";
pub const INSECURE_DEV_MASTER_KEY: &str = "confab-insecure-dev-master-key-0123456789";

/// Top-level keys settable as `CONFAB_<KEY>`.
const TOP_LEVEL_ENV: &[&str] = &["CONFAB_NAMESPACE", "CONFAB_MODE", "CONFAB_DATA_DIR"];
/// Environment variables that are not config overrides.
const RESERVED_ENV: &[&str] = &["CONFAB_CONFIG", "CONFAB_LOG", "CONFAB_LOG_FORMAT"];

impl Config {
    /// Loads `path` (if any), applies `CONFAB_*` overrides from `env`, and validates.
    pub fn load(path: Option<&str>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut root = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.into(), source })?;
                text.parse::<toml::Table>().map_err(|source| ConfigError::Toml { path: p.into(), source })?
            }
            None => toml::Table::new(),
        };
        let origin = path.unwrap_or("defaults").to_string();
        let mut env: Vec<_> = env.into_iter().filter(|(k, _)| k.starts_with("CONFAB_")).collect();
        env.sort();
        let defaults = match toml::Value::try_from(Config::default()) {
            Ok(toml::Value::Table(t)) => t,
            _ => toml::Table::new(),
        };
        for (key, value) in env {
            if RESERVED_ENV.contains(&key.as_str()) || !(key.contains("__") || TOP_LEVEL_ENV.contains(&key.as_str())) {
                continue;
            }
            let path: Vec<String> = key["CONFAB_".len()..].split("__").map(|s| s.to_ascii_lowercase()).collect();
            let parsed = env_value(&defaults, &path, &value);
            set_path(&mut root, &path, parsed)
                .map_err(|message| ConfigError::Invalid { origin: key.clone(), message })?;
        }
        let names_servers = ["kafka", "cassandra", "redis", "registry", "search"].iter().any(|k| root.contains_key(*k));
        let mut cfg: Config = toml::Value::Table(root).try_into().map_err(|e: toml::de::Error| {
            ConfigError::Invalid { origin: origin.clone(), message: e.message().to_string() }
        })?;
        if cfg.mode == Mode::Auto {
            cfg.mode = if names_servers { Mode::Distributed } else { Mode::Embedded };
        }
        cfg.validate().map_err(|message| ConfigError::Invalid { origin, message })?;
        Ok(cfg)
    }

    /// Every setting within its bounds; the error names the first one that is not.
    pub fn validate(&self) -> Result<(), String> {
        if self.namespace.is_empty()
            || !self.namespace.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err("`namespace` must be non-empty and use only [A-Za-z0-9_-]".into());
        }
        if self.embedded.partitions < 1 || self.embedded.fanout_stream_max_len < 1 {
            return Err("`embedded.partitions` and `embedded.fanout_stream_max_len` must be at least 1".into());
        }
        if self.notifier.outbox_lease_ms < 1_000 {
            return Err("`notifier.outbox_lease_ms` must be at least 1000".into());
        }
        self.validate_auth()?;
        self.validate_servers()?;
        self.validate_gateway()?;
        self.validate_files()
    }

    fn validate_auth(&self) -> Result<(), String> {
        let auth = &self.auth;
        if auth.max_token_lifetime_secs < 60 || !(1..=auth.max_token_lifetime_secs).contains(&auth.token_ttl_secs) {
            return Err(
                "`auth.max_token_lifetime_secs` must be at least 60 and `auth.token_ttl_secs` between 1 and it".into(),
            );
        }
        if auth.jwks.starts_with("http://")
            && !auth.jwks.starts_with("http://127.0.0.1")
            && !auth.jwks.starts_with("http://localhost")
        {
            return Err("`auth.jwks` must be a file or an https:// URL (http:// only on loopback)".into());
        }
        if !auth.jwks.is_empty() && auth.jwks_refresh_secs < 10 {
            return Err("`auth.jwks_refresh_secs` must be at least 10".into());
        }
        for (name, secret) in [("auth.token_secret", &auth.token_secret), ("auth.admin_key", &auth.admin_key)] {
            if !secret.is_empty() && secret.len() < crate::secrets::MIN_SECRET_LEN {
                return Err(format!("`{name}` must be at least {} bytes", crate::secrets::MIN_SECRET_LEN));
            }
        }
        for (name, secret) in [("keys.master_key", &self.keys.master_key), ("keys.reader_key", &self.keys.reader_key)] {
            if !secret.is_empty() && secret.len() < crate::secrets::MIN_SECRET_LEN {
                return Err(format!("`{name}` must be at least {} bytes", crate::secrets::MIN_SECRET_LEN));
            }
        }
        if !self.keys.reader_key.is_empty() && [&auth.admin_key, &auth.token_secret].contains(&&self.keys.reader_key) {
            return Err("`keys.reader_key` must differ from `auth.admin_key` and `auth.token_secret`".into());
        }
        if auth.token_secret == auth.admin_key && !auth.admin_key.is_empty() {
            return Err("`auth.admin_key` must differ from `auth.token_secret`".into());
        }
        Ok(())
    }

    /// Kafka, Cassandra, Redis, the registry and the search index.
    fn validate_servers(&self) -> Result<(), String> {
        let kafka = &self.kafka;
        if kafka.partitions < 1 {
            return Err("`kafka.partitions` must be at least 1".into());
        }
        if kafka.min_insync_replicas < 1 || kafka.min_insync_replicas > kafka.replication_factor {
            return Err("`kafka.min_insync_replicas` must be between 1 and `kafka.replication_factor`".into());
        }
        if kafka.instance_id.is_empty()
            || !kafka.instance_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err("`kafka.instance_id` must be non-empty and use only [A-Za-z0-9_-]".into());
        }
        if !(1..=5_000).contains(&kafka.projector_fetch_wait_ms) {
            return Err("`kafka.projector_fetch_wait_ms` must be between 1 and 5000".into());
        }
        if kafka.brokers.trim().is_empty() {
            return Err("`kafka.brokers` must name at least one broker".into());
        }
        if !self.cassandra.keyspace.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || self.cassandra.keyspace.is_empty()
        {
            return Err("`cassandra.keyspace` must use only [A-Za-z0-9_]".into());
        }
        if !self.cassandra.ca_file.is_empty() && !self.cassandra.tls {
            return Err("`cassandra.ca_file` is for TLS: set `cassandra.tls = true`".into());
        }
        if self.cassandra.username.is_empty() != self.cassandra.password.is_empty() {
            return Err("`cassandra.username` and `cassandra.password` go together".into());
        }
        if !self.redis.url.starts_with("redis://") && !self.redis.url.starts_with("rediss://") {
            return Err("`redis.url` must start with redis:// or rediss://".into());
        }
        if !self.redis.ca_file.is_empty() && !self.redis.url.starts_with("rediss://") {
            return Err("`redis.ca_file` is for TLS: `redis.url` must start with rediss://".into());
        }
        if !self.registry.url.starts_with("http://") && !self.registry.url.starts_with("https://") {
            return Err("`registry.url` must be an http(s) URL".into());
        }
        if !self.search.url.starts_with("http://") && !self.search.url.starts_with("https://") {
            return Err("`search.url` must be an http(s) URL".into());
        }
        if !self.search.ca_file.is_empty() && !self.search.url.starts_with("https://") {
            return Err("`search.ca_file` is for TLS: `search.url` must start with https://".into());
        }
        let index = self.search.index_name(&self.namespace);
        if index.starts_with(['_', '-', '+'])
            || !index.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err("`search.index` must use only [a-z0-9_-] and not start with _, - or +".into());
        }
        Ok(())
    }

    /// Listeners, connection and request bounds.
    fn validate_gateway(&self) -> Result<(), String> {
        let gw = &self.gateway;
        let listeners = [
            ("gateway.listen", &gw.listen),
            ("gateway.admin_listen", &gw.admin_listen),
            ("telemetry.listen", &self.telemetry.listen),
        ];
        for (name, v) in listeners {
            v.parse::<SocketAddr>().map_err(|_| format!("`{name}` must be host:port, got `{v}`"))?;
        }
        if gw.max_connections == 0 || gw.send_buffer == 0 || gw.max_http_connections == 0 {
            return Err(
                "`gateway.max_connections`, `gateway.max_http_connections` and `gateway.send_buffer` must be positive"
                    .into(),
            );
        }
        if gw.http_header_timeout_ms == 0 || gw.http_request_timeout_ms == 0 {
            return Err(
                "`gateway.http_header_timeout_ms` and `gateway.http_request_timeout_ms` must be positive".into()
            );
        }
        Ok(())
    }

    fn validate_files(&self) -> Result<(), String> {
        let files = &self.files;
        if files.max_bytes == 0
            || files.workspace_quota_bytes == 0
            || files.upload_url_ttl_secs == 0
            || files.download_url_ttl_secs == 0
        {
            return Err(
                "`files.max_bytes`, `files.workspace_quota_bytes` and the `files.*_url_ttl_secs` must be positive"
                    .into(),
            );
        }
        for t in &files.allowed_types {
            if t != "*/*" && crate::files::normalize_content_type(&t.replace("/*", "/x")).is_err() {
                return Err(format!("`files.allowed_types`: `{t}` is not `type/subtype`, `type/*` or `*/*`"));
            }
        }
        for (name, url) in
            [("files.s3_endpoint", &files.s3_endpoint), ("files.s3_public_endpoint", &files.s3_public_endpoint)]
        {
            if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(format!("`{name}` must be an http(s) URL, got `{url}`"));
            }
        }
        if files.incomplete_sweep_secs == 0 {
            return Err("`files.incomplete_sweep_secs` must be positive".into());
        }
        if files.max_concurrent_transfers == 0 || files.transfer_timeout_secs == 0 {
            return Err("`files.max_concurrent_transfers` and `files.transfer_timeout_secs` must be positive".into());
        }
        Ok(())
    }
}

impl CassandraConfig {
    /// The contact points.
    pub fn nodes(&self) -> Vec<String> {
        self.nodes.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    }
}

fn list_or_csv<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(l) => l,
        Either::Csv(s) => s.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
    })
}

/// An environment value as the setting's type: text for a text setting whatever it looks like
/// (`CONFAB_KAFKA__INSTANCE_ID=1`, an all-digit password), otherwise a number or a boolean
/// when it reads as one.
fn env_value(defaults: &toml::Table, path: &[String], v: &str) -> toml::Value {
    let mut at = defaults;
    for (i, p) in path.iter().enumerate() {
        match at.get(p) {
            Some(toml::Value::Table(t)) if i + 1 < path.len() => at = t,
            Some(toml::Value::String(_)) | Some(toml::Value::Array(_)) if i + 1 == path.len() => {
                return toml::Value::String(v.to_string());
            }
            _ => break,
        }
    }
    parse_env_value(v)
}

/// A table of settings whose values may be written as text, numbers or booleans; all kept as
/// text, with underscores in names read as dots (see [`KafkaConfig::properties`]).
fn string_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    let table = toml::Table::deserialize(d)?;
    table
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => v.to_string(),
                other => return Err(serde::de::Error::custom(format!("`{k}`: {other} is not a single value"))),
            };
            Ok((k.replace('_', "."), v))
        })
        .collect()
}

fn parse_env_value(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(b) = v.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    toml::Value::String(v.to_string())
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut t = table;
    for p in parents {
        t = t
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` is not a section"))?;
    }
    t.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn kafka_properties_pass_through_as_text_with_dotted_names() {
        let file = std::env::temp_dir().join(format!("confab-props-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            "[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"message.max.bytes\" = 2000000\n",
        )
        .unwrap();
        let cfg = Config::load(file.to_str(), env(&[("CONFAB_KAFKA__PROPERTIES__SASL_MECHANISMS", "SCRAM-SHA-512")]))
            .unwrap();
        let _ = std::fs::remove_file(&file);
        let props: Vec<(&str, &str)> = cfg.kafka.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            props,
            [("message.max.bytes", "2000000"), ("sasl.mechanisms", "SCRAM-SHA-512"), ("security.protocol", "SASL_SSL")]
        );
    }

    #[test]
    fn text_settings_stay_text_whatever_they_look_like() {
        let cfg = Config::load(
            None,
            env(&[("CONFAB_KAFKA__INSTANCE_ID", "1"), ("CONFAB_NAMESPACE", "2026"), ("CONFAB_FILES__BUCKET", "true")]),
        )
        .unwrap();
        assert_eq!((cfg.kafka.instance_id.as_str(), cfg.namespace.as_str()), ("1", "2026"));
        assert_eq!(cfg.files.bucket, "true");
    }

    #[test]
    fn defaults_validate() {
        Config::load(None, env(&[])).unwrap();
    }

    #[test]
    fn env_overrides_nested_keys_with_types() {
        let c = Config::load(
            None,
            env(&[
                ("CONFAB_KAFKA__PARTITIONS", "3"),
                ("CONFAB_NAMESPACE", "t1"),
                ("CONFAB_ADMIN_KEY", "not-config"),
                ("CONFAB_REDIS__URL", "redis://h:1/"),
            ]),
        )
        .unwrap();
        assert_eq!(c.kafka.partitions, 3);
        assert_eq!(c.redis.url, "redis://h:1/");
        assert_eq!(c.namespace, "t1");
    }

    #[test]
    fn mode_follows_whether_servers_are_named() {
        assert_eq!(Config::load(None, env(&[])).unwrap().mode, Mode::Embedded);
        assert_eq!(Config::load(None, env(&[("CONFAB_KAFKA__BROKERS", "k:1")])).unwrap().mode, Mode::Distributed);
        assert_eq!(
            Config::load(None, env(&[("CONFAB_KAFKA__BROKERS", "k:1"), ("CONFAB_MODE", "embedded")])).unwrap().mode,
            Mode::Embedded
        );
        let e = Config::load(None, env(&[("CONFAB_MODE", "cloud")])).unwrap_err().to_string();
        assert!(e.contains("cloud") || e.contains("mode"), "{e}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::load(None, env(&[("CONFAB_KAFKA__BROKRES", "x")])).unwrap_err().to_string();
        assert!(e.contains("brokres"), "{e}");
        let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(file.path(), "[gateway]\nlisten = \"127.0.0.1:1\"\nmax_conns = 3\n").unwrap();
        let e = Config::load(Some(&file.path().to_string_lossy()), env(&[])).unwrap_err().to_string();
        assert!(e.contains("max_conns"), "{e}");
    }

    #[test]
    fn invalid_values_are_explained() {
        let e = Config::load(None, env(&[("CONFAB_GATEWAY__LISTEN", "nowhere")])).unwrap_err().to_string();
        assert!(e.contains("gateway.listen"), "{e}");
        // one setting of each section's checks
        for (key, value, named) in [
            ("CONFAB_KAFKA__BROKERS", " ", "kafka.brokers"),
            ("CONFAB_AUTH__JWKS_REFRESH_SECS", "1", "auth.jwks_refresh_secs"),
            ("CONFAB_FILES__WORKSPACE_QUOTA_BYTES", "0", "files.workspace_quota_bytes"),
            ("CONFAB_FILES__S3_PUBLIC_ENDPOINT", "minio:9000", "files.s3_public_endpoint"),
            ("CONFAB_FILES__INCOMPLETE_SWEEP_SECS", "0", "files.incomplete_sweep_secs"),
            ("CONFAB_GATEWAY__HTTP_HEADER_TIMEOUT_MS", "0", "gateway.http_header_timeout_ms"),
            // a CA for a plaintext URL: the operator meant TLS and would not get it
            ("CONFAB_REDIS__CA_FILE", "/etc/confab/redis-ca.pem", "redis.ca_file"),
            ("CONFAB_SEARCH__CA_FILE", "/etc/confab/search-ca.pem", "search.ca_file"),
            ("CONFAB_KAFKA__MIN_INSYNC_REPLICAS", "2", "kafka.min_insync_replicas"),
            ("CONFAB_CASSANDRA__CA_FILE", "/etc/confab/cassandra-ca.pem", "cassandra.ca_file"),
            ("CONFAB_CASSANDRA__USERNAME", "confab", "cassandra.password"),
        ] {
            let mut vars = vec![(key, value)];
            if key == "CONFAB_AUTH__JWKS_REFRESH_SECS" {
                vars.push(("CONFAB_AUTH__JWKS", "/etc/jwks.json"));
            }
            let e = Config::load(None, env(&vars)).unwrap_err().to_string();
            assert!(e.contains(named), "{key}={value}: {e}");
        }
    }
}
