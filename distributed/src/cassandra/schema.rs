//! The schema `confab setup` creates (the design seed's message table, plus the directory,
//! channels, threads, pins, files, read markers and push registrations), and connecting to the
//! cluster.

use confab_core::config::CassandraConfig;
use confab_core::ports::PortResult;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

use super::error::CqlResultExt;

/// The schema, created by `confab setup`. `{ks}` is the keyspace.
pub fn schema(ks: &str, rf: u32) -> Vec<String> {
    vec![
        format!("CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.messages (
                workspace_id uuid, channel_id uuid, message_id timeuuid, seq bigint, user_id uuid, text text,
                thread_ts timeuuid, edited_at timestamp, deleted boolean,
                reactions map<text, frozen<set<uuid>>>, attachments list<frozen<map<text, text>>>,
                client_msg_id text, also_in_channel boolean, pinned boolean,
                reply_count int, reply_users list<uuid>, last_reply_at timestamp,
                PRIMARY KEY ((workspace_id, channel_id), message_id)
            ) WITH CLUSTERING ORDER BY (message_id DESC)
              AND default_time_to_live = 0
              AND compaction = {{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.workspaces (workspace_id uuid PRIMARY KEY, name text, retention_secs int, created_at timestamp,
                max_file_bytes bigint, file_types list<text>, storage_quota_bytes bigint)"
        ),
        format!("CREATE TABLE IF NOT EXISTS {ks}.users (workspace_id uuid, user_id uuid, name text, created_at timestamp, PRIMARY KEY (workspace_id, user_id))"),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.channels (workspace_id uuid, channel_id uuid, name text, is_private boolean, kind text,
                archived boolean, created_by uuid, created_at timestamp, members set<uuid>, last_seq bigint, PRIMARY KEY (workspace_id, channel_id))"
        ),
        // the seed's LOAD_THREAD_REPLIES, as an index table: a thread is one partition in order
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.thread_replies (workspace_id uuid, channel_id uuid, thread_ts timeuuid, message_id timeuuid,
                PRIMARY KEY ((workspace_id, channel_id, thread_ts), message_id)) WITH CLUSTERING ORDER BY (message_id ASC)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.pins (workspace_id uuid, channel_id uuid, message_id timeuuid,
                PRIMARY KEY ((workspace_id, channel_id), message_id)) WITH CLUSTERING ORDER BY (message_id DESC)"
        ),
        // shared files' metadata (the bytes are in the object store), one partition per file
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.files (workspace_id uuid, file_id uuid, channel_id uuid, uploader uuid, name text, size bigint,
                content_type text, created_at timestamp, deleted boolean, PRIMARY KEY ((workspace_id, file_id)))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.read_markers (workspace_id uuid, user_id uuid, channel_id uuid, seq bigint,
                PRIMARY KEY ((workspace_id, user_id), channel_id))"
        ),
        // each channel's summary for unread and mention counts (`confab_core::unread`), read
        // for a user's channels a hundred partitions at a time
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.channel_activity (workspace_id uuid, channel_id uuid, summary blob,
                PRIMARY KEY ((workspace_id, channel_id)))"
        ),
        // token revocations by day, read by every gateway since its last look; each row lives
        // as long as the longest token (a TTL set on write)
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.token_revocations (day int, at_ms bigint, workspace_id uuid, user_id uuid,
                revoked_before bigint, deactivated boolean, PRIMARY KEY (day, at_ms, workspace_id, user_id))"
        ),
        // deactivated users, kept until reactivation; every gateway reads them all when it starts
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.deactivated_users (workspace_id uuid, user_id uuid, at_ms bigint,
                PRIMARY KEY ((workspace_id), user_id))"
        ),
        // what users registered for push (see `devices`)
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.push_devices (workspace_id uuid, user_id uuid, device_id uuid, address text,
                PRIMARY KEY ((workspace_id, user_id), device_id))"
        ),
        // the storage ledger (see `storage_ledger`): a workspace's files and their total
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.storage_ledger (workspace_id uuid, file_id uuid, bytes bigint, used bigint static,
                PRIMARY KEY (workspace_id, file_id))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.push_prefs (workspace_id uuid, user_id uuid, prefs text, PRIMARY KEY (workspace_id, user_id))"
        ),
        // crypto-shredding's key store (see `keys`): a destroyed key's tombstone may be purged
        // (and the wrapped bytes compacted away) after a day, so repairs must run within a day
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.workspace_keys (workspace_id uuid PRIMARY KEY, wrapped blob)
                WITH gc_grace_seconds = 86400"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.data_keys (workspace_id uuid, key_id uuid, wrapped blob,
                PRIMARY KEY ((workspace_id, key_id))) WITH gc_grace_seconds = 86400"
        ),
        // data keys by the hour they were written, for the sweep that applies a shortened
        // retention to keys written under the longer one; and how far it has swept
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.data_key_times (workspace_id uuid, hour bigint, written_ms bigint, key_id uuid,
                PRIMARY KEY ((workspace_id, hour), written_ms, key_id)) WITH gc_grace_seconds = 86400"
        ),
        format!("CREATE TABLE IF NOT EXISTS {ks}.key_sweeps (workspace_id uuid PRIMARY KEY, swept_hour bigint)"),
    ]
}

/// Columns added after the first release, for keyspaces created before them (errors for
/// columns that already exist are expected and ignored).
fn additions(ks: &str) -> Vec<String> {
    [
        "messages ADD also_in_channel boolean",
        "messages ADD pinned boolean",
        "messages ADD reply_count int",
        "messages ADD reply_users list<uuid>",
        "messages ADD last_reply_at timestamp",
        "channels ADD kind text",
        "channels ADD archived boolean",
        "channels ADD created_by uuid",
        "channels ADD members set<uuid>",
        "channels ADD last_seq bigint",
        "workspaces ADD max_file_bytes bigint",
        "workspaces ADD file_types list<text>",
        "workspaces ADD storage_quota_bytes bigint",
        "token_revocations ADD deactivated boolean",
    ]
    .iter()
    .map(|a| format!("ALTER TABLE {ks}.{a}"))
    .collect()
}

/// A session on the nodes of `cfg`, with its credentials and TLS settings.
pub async fn connect(cfg: &CassandraConfig) -> PortResult<Session> {
    let mut builder = SessionBuilder::new().known_nodes(cfg.nodes());
    if !cfg.username.is_empty() {
        builder = builder.user(&cfg.username, &cfg.password);
    }
    if cfg.tls {
        builder = builder.tls_context(Some(super::tls::client_config(&cfg.ca_file)?));
    }
    builder.build().await.or_port("connecting")
}

/// Creates the keyspace and tables (idempotent; run once per deployment by `confab setup`).
pub async fn migrate(session: &Session, ks: &str, rf: u32) -> PortResult<()> {
    for stmt in schema(ks, rf) {
        session.query_unpaged(stmt, &[]).await.or_port("creating the schema")?;
    }
    for stmt in additions(ks) {
        if let Err(e) = session.query_unpaged(stmt, &[]).await {
            tracing::debug!(error = %e, "schema addition skipped");
        }
    }
    session.await_schema_agreement().await.or_port("waiting for schema agreement")?;
    Ok(())
}
