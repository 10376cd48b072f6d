//! Cassandra adapter: the directory (workspaces, users), channels, and the message timeline with
//! the design seed's table shape. Every key starts with `workspace_id`.

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlTimeuuid};
use std::sync::Arc;
use uuid::Uuid;

use async_trait::async_trait;

use crate::ports::{MessageUpdate, PortError, PortResult, Store};
pub use crate::ports::Workspace;
use crate::protocol::MessageView;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cassandra: {0}")]
    Db(String),
}

fn db<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The schema, created by `confab setup`. `{ks}` is the keyspace.
pub fn schema(ks: &str, rf: u32) -> Vec<String> {
    vec![
        format!("CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.messages (
                workspace_id uuid, channel_id uuid, message_id timeuuid, seq bigint, user_id uuid, text text,
                thread_ts timeuuid, edited_at timestamp, deleted boolean,
                reactions map<text, frozen<set<uuid>>>, attachments list<frozen<map<text, text>>>,
                client_msg_id text,
                PRIMARY KEY ((workspace_id, channel_id), message_id)
            ) WITH CLUSTERING ORDER BY (message_id DESC)
              AND default_time_to_live = 0
              AND compaction = {{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}}"
        ),
        format!("CREATE TABLE IF NOT EXISTS {ks}.workspaces (workspace_id uuid PRIMARY KEY, name text, retention_secs int, created_at timestamp)"),
        format!("CREATE TABLE IF NOT EXISTS {ks}.users (workspace_id uuid, user_id uuid, name text, created_at timestamp, PRIMARY KEY (workspace_id, user_id))"),
        format!("CREATE TABLE IF NOT EXISTS {ks}.channels (workspace_id uuid, channel_id uuid, name text, is_private boolean, created_at timestamp, PRIMARY KEY (workspace_id, channel_id))"),
    ]
}

pub async fn connect(nodes: &[String]) -> Result<Session, StoreError> {
    SessionBuilder::new().known_nodes(nodes).build().await.map_err(db)
}

/// Creates the keyspace and tables (idempotent; run once per deployment by `confab setup`).
pub async fn migrate(session: &Session, ks: &str, rf: u32) -> Result<(), StoreError> {
    for stmt in schema(ks, rf) {
        session.query_unpaged(stmt, &[]).await.map_err(db)?;
    }
    session.await_schema_agreement().await.map_err(db)?;
    Ok(())
}

/// Prepared statements over one keyspace.
#[derive(Clone)]
pub struct CassandraStore {
    session: Arc<Session>,
    keyspace: String,
    insert_message: PreparedStatement,
    history_first: PreparedStatement,
    history_before: PreparedStatement,
    insert_workspace: PreparedStatement,
    get_workspace: PreparedStatement,
    insert_user: PreparedStatement,
    get_user: PreparedStatement,
    insert_channel: PreparedStatement,
    edit_message: PreparedStatement,
    delete_message: PreparedStatement,
    set_reaction: PreparedStatement,
    drop_reaction: PreparedStatement,
}

const MESSAGE_COLUMNS: &str = "message_id, seq, user_id, text, client_msg_id, thread_ts, edited_at, deleted, reactions";

type MessageRow = (
    CqlTimeuuid,
    Option<i64>,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<CqlTimeuuid>,
    Option<CqlTimestamp>,
    Option<bool>,
    Option<std::collections::HashMap<String, Vec<Uuid>>>,
);

impl CassandraStore {
    pub async fn new(session: Arc<Session>, ks: &str) -> Result<Self, StoreError> {
        let p = |q: String| {
            let s = session.clone();
            async move { s.prepare(q).await.map_err(db) }
        };
        Ok(Self {
            insert_message: p(format!(
                "INSERT INTO {ks}.messages (workspace_id, channel_id, message_id, seq, user_id, text, client_msg_id, thread_ts, deleted)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, false) USING TTL ?"
            ))
            .await?,
            history_first: p(format!(
                "SELECT {MESSAGE_COLUMNS} FROM {ks}.messages WHERE workspace_id = ? AND channel_id = ? LIMIT ?"
            ))
            .await?,
            history_before: p(format!(
                "SELECT {MESSAGE_COLUMNS} FROM {ks}.messages WHERE workspace_id = ? AND channel_id = ? AND message_id < ? LIMIT ?"
            ))
            .await?,
            edit_message: p(format!(
                "UPDATE {ks}.messages USING TTL ? SET text = ?, edited_at = ? WHERE workspace_id = ? AND channel_id = ? AND message_id = ?"
            ))
            .await?,
            delete_message: p(format!(
                "UPDATE {ks}.messages USING TTL ? SET text = '', deleted = true, reactions = null WHERE workspace_id = ? AND channel_id = ? AND message_id = ?"
            ))
            .await?,
            set_reaction: p(format!(
                "UPDATE {ks}.messages USING TTL ? SET reactions[?] = ? WHERE workspace_id = ? AND channel_id = ? AND message_id = ?"
            ))
            .await?,
            drop_reaction: p(format!("DELETE reactions[?] FROM {ks}.messages WHERE workspace_id = ? AND channel_id = ? AND message_id = ?")).await?,
            insert_workspace: p(format!("INSERT INTO {ks}.workspaces (workspace_id, name, retention_secs, created_at) VALUES (?, ?, ?, ?)")).await?,
            get_workspace: p(format!("SELECT workspace_id, name, retention_secs FROM {ks}.workspaces WHERE workspace_id = ?")).await?,
            insert_user: p(format!("INSERT INTO {ks}.users (workspace_id, user_id, name, created_at) VALUES (?, ?, ?, ?)")).await?,
            get_user: p(format!("SELECT name FROM {ks}.users WHERE workspace_id = ? AND user_id = ?")).await?,
            insert_channel: p(format!(
                "INSERT INTO {ks}.channels (workspace_id, channel_id, name, is_private, created_at) VALUES (?, ?, ?, ?, ?)"
            ))
            .await?,
            session,
            keyspace: ks.to_string(),
        })
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Upserts a message row; replaying the same event writes the same row.
    pub async fn insert_message(&self, m: &MessageView, ttl_secs: i32) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(
                &self.insert_message,
                (
                    m.workspace_id,
                    m.channel_id,
                    CqlTimeuuid::from(m.message_id),
                    m.seq,
                    m.user_id,
                    &m.text,
                    &m.client_msg_id,
                    m.thread_ts.map(CqlTimeuuid::from),
                    ttl_secs.max(0),
                ),
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Newest first; `before` is the `message_id` cursor of the previous page.
    pub async fn history(&self, ws: Uuid, ch: Uuid, before: Option<Uuid>, limit: i32) -> Result<Vec<MessageView>, StoreError> {
        let result = match before {
            None => self.session.execute_unpaged(&self.history_first, (ws, ch, limit)).await,
            Some(b) => self.session.execute_unpaged(&self.history_before, (ws, ch, CqlTimeuuid::from(b), limit)).await,
        }
        .map_err(db)?;
        let rows = result.into_rows_result().map_err(db)?;
        let mut out = Vec::new();
        for row in rows.rows::<MessageRow>().map_err(db)? {
            let (id, seq, user_id, text, client_msg_id, thread_ts, edited_at, deleted, reactions) = row.map_err(db)?;
            let message_id: Uuid = id.into();
            out.push(MessageView {
                workspace_id: ws,
                channel_id: ch,
                ts: crate::ids::timeuuid_millis(&message_id).unwrap_or(0),
                message_id,
                seq: seq.unwrap_or(0),
                user_id: user_id.unwrap_or_default(),
                text: text.unwrap_or_default(),
                client_msg_id,
                thread_ts: thread_ts.map(Into::into),
                edited_at: edited_at.map(|t| t.0),
                deleted: deleted.unwrap_or(false),
                reactions: reactions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, mut v)| {
                        v.sort();
                        (k, v)
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    pub async fn insert_workspace(&self, w: &Workspace) -> Result<(), StoreError> {
        let now = CqlTimestamp(chrono::Utc::now().timestamp_millis());
        self.session.execute_unpaged(&self.insert_workspace, (w.workspace_id, &w.name, w.retention_secs, now)).await.map_err(db)?;
        Ok(())
    }

    pub async fn workspace(&self, ws: Uuid) -> Result<Option<Workspace>, StoreError> {
        let rows = self.session.execute_unpaged(&self.get_workspace, (ws,)).await.map_err(db)?.into_rows_result().map_err(db)?;
        let row = rows.maybe_first_row::<(Uuid, Option<String>, Option<i32>)>().map_err(db)?;
        Ok(row.map(|(workspace_id, name, retention)| Workspace {
            workspace_id,
            name: name.unwrap_or_default(),
            retention_secs: retention.unwrap_or(0),
        }))
    }

    pub async fn insert_user(&self, ws: Uuid, user: Uuid, name: &str) -> Result<(), StoreError> {
        let now = CqlTimestamp(chrono::Utc::now().timestamp_millis());
        self.session.execute_unpaged(&self.insert_user, (ws, user, name, now)).await.map_err(db)?;
        Ok(())
    }

    pub async fn user_exists(&self, ws: Uuid, user: Uuid) -> Result<bool, StoreError> {
        let rows = self.session.execute_unpaged(&self.get_user, (ws, user)).await.map_err(db)?.into_rows_result().map_err(db)?;
        Ok(rows.rows_num() > 0)
    }

    pub async fn insert_channel(&self, ws: Uuid, ch: Uuid, name: &str, is_private: bool, created_ms: i64) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.insert_channel, (ws, ch, name, is_private, CqlTimestamp(created_ms)))
            .await
            .map_err(db)?;
        Ok(())
    }
}

fn port(e: StoreError) -> PortError {
    PortError::of(e)
}

#[async_trait]
impl Store for CassandraStore {
    async fn insert_message(&self, m: &MessageView, ttl_secs: i32) -> PortResult<()> {
        CassandraStore::insert_message(self, m, ttl_secs).await.map_err(port)
    }
    async fn history(&self, ws: Uuid, ch: Uuid, before: Option<Uuid>, limit: i32) -> PortResult<Vec<MessageView>> {
        CassandraStore::history(self, ws, ch, before, limit).await.map_err(port)
    }
    async fn insert_channel(&self, ws: Uuid, ch: Uuid, name: &str, is_private: bool, created_ms: i64) -> PortResult<()> {
        CassandraStore::insert_channel(self, ws, ch, name, is_private, created_ms).await.map_err(port)
    }
    async fn insert_workspace(&self, w: &Workspace) -> PortResult<()> {
        CassandraStore::insert_workspace(self, w).await.map_err(port)
    }
    async fn workspace(&self, ws: Uuid) -> PortResult<Option<Workspace>> {
        CassandraStore::workspace(self, ws).await.map_err(port)
    }
    async fn insert_user(&self, ws: Uuid, user: Uuid, name: &str) -> PortResult<()> {
        CassandraStore::insert_user(self, ws, user, name).await.map_err(port)
    }
    async fn user_exists(&self, ws: Uuid, user: Uuid) -> PortResult<bool> {
        CassandraStore::user_exists(self, ws, user).await.map_err(port)
    }
    async fn update_message(&self, ws: Uuid, ch: Uuid, message_id: Uuid, update: &MessageUpdate, ttl_secs: i32) -> PortResult<()> {
        let id = CqlTimeuuid::from(message_id);
        let ttl = ttl_secs.max(0);
        let r = match update {
            MessageUpdate::Edit { text, edited_at } => {
                self.session.execute_unpaged(&self.edit_message, (ttl, text, CqlTimestamp(*edited_at), ws, ch, id)).await
            }
            MessageUpdate::Delete => self.session.execute_unpaged(&self.delete_message, (ttl, ws, ch, id)).await,
            MessageUpdate::Reactions { emoji, users } if users.is_empty() => {
                self.session.execute_unpaged(&self.drop_reaction, (emoji, ws, ch, id)).await
            }
            MessageUpdate::Reactions { emoji, users } => {
                let set: std::collections::BTreeSet<Uuid> = users.iter().copied().collect();
                self.session.execute_unpaged(&self.set_reaction, (ttl, emoji, set, ws, ch, id)).await
            }
        };
        r.map(|_| ()).map_err(PortError::of)
    }

    async fn truncate_timeline(&self) -> PortResult<()> {
        for table in ["messages", "channels"] {
            self.session.query_unpaged(format!("TRUNCATE {}.{table}", self.keyspace), &[]).await.map_err(PortError::of)?;
        }
        Ok(())
    }
}
