//! The timeline and directory on Cassandra: prepared statements over one keyspace, and the
//! `Store` port on them.

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlTimeuuid};
use std::sync::Arc;
use uuid::Uuid;

use async_trait::async_trait;

use confab_core::files::{Attachment, FileRecord};
use confab_core::ports::{
    ChannelChange, ChannelInfo, Deactivation, HistoryPage, MessageUpdate, PortError, PortResult, Store, StoredMessage,
    TokenRevocation, Workspace, MAX_RETENTION_SECS,
};
use confab_core::unread::RecentActivity;

use super::error::CqlResultExt;
use super::rows::{attachment_map, channel_of, message_of, ChannelRow, MessageRow, CHANNEL_COLUMNS};
use super::storage_ledger::StorageLedger;

/// Prepared statements over one keyspace.
#[derive(Clone)]
pub struct CassandraStore {
    session: Arc<Session>,
    keyspace: String,
    st: Arc<Statements>,
    ledger: StorageLedger,
}

struct Statements {
    insert_message: PreparedStatement,
    insert_reply: PreparedStatement,
    history_first: PreparedStatement,
    history_before: PreparedStatement,
    history_after: PreparedStatement,
    get_message: PreparedStatement,
    get_messages: PreparedStatement,
    thread_first: PreparedStatement,
    thread_after: PreparedStatement,
    pins: PreparedStatement,
    pin: PreparedStatement,
    unpin: PreparedStatement,
    insert_workspace: PreparedStatement,
    get_workspace: PreparedStatement,
    insert_user: PreparedStatement,
    get_user: PreparedStatement,
    users_among: PreparedStatement,
    list_users: PreparedStatement,
    insert_channel: PreparedStatement,
    get_channel: PreparedStatement,
    list_channels: PreparedStatement,
    first_channels: PreparedStatement,
    channels_after: PreparedStatement,
    rename_channel: PreparedStatement,
    archive_channel: PreparedStatement,
    add_member: PreparedStatement,
    remove_member: PreparedStatement,
    channel_seq: PreparedStatement,
    set_marker: PreparedStatement,
    get_markers: PreparedStatement,
    set_activity: PreparedStatement,
    revoke: PreparedStatement,
    revocations_since: PreparedStatement,
    set_deactivated: PreparedStatement,
    clear_deactivated: PreparedStatement,
    get_deactivated: PreparedStatement,
    all_deactivated: PreparedStatement,
    set_retention: PreparedStatement,
    activity_among: PreparedStatement,
    edit_message: PreparedStatement,
    delete_message: PreparedStatement,
    set_reaction: PreparedStatement,
    drop_reaction: PreparedStatement,
    set_pinned: PreparedStatement,
    set_thread: PreparedStatement,
    insert_file: PreparedStatement,
    get_file: PreparedStatement,
    delete_file: PreparedStatement,
}

/// A `workspaces` row as read (every column but the key may be null).
type WorkspaceRow = (Uuid, Option<String>, Option<i32>, Option<i64>, Option<Vec<String>>, Option<i64>);

const MESSAGE_COLUMNS: &str =
    "message_id, seq, user_id, text, client_msg_id, thread_ts, edited_at, deleted, reactions, also_in_channel, pinned, reply_count, reply_users, last_reply_at, attachments";

impl CassandraStore {
    pub async fn new(session: Arc<Session>, ks: &str) -> PortResult<Self> {
        let p = |q: String| {
            let s = session.clone();
            async move { s.prepare(q).await.or_port("new") }
        };
        let m = |cond: &str| {
            format!("SELECT {MESSAGE_COLUMNS} FROM {ks}.messages WHERE workspace_id = ? AND channel_id = ? {cond}")
        };
        let st = Statements {
            insert_message: p(format!(
                "INSERT INTO {ks}.messages (workspace_id, channel_id, message_id, seq, user_id, text, client_msg_id, thread_ts, also_in_channel, attachments, deleted)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, false) USING TTL ?"
            ))
            .await?,
            insert_reply: p(format!("INSERT INTO {ks}.thread_replies (workspace_id, channel_id, thread_ts, message_id) VALUES (?, ?, ?, ?) USING TTL ?")).await?,
            history_first: p(m("LIMIT ?")).await?,
            history_before: p(m("AND message_id < ? LIMIT ?")).await?,
            history_after: p(m("AND message_id > ? ORDER BY message_id ASC LIMIT ?")).await?,
            get_message: p(m("AND message_id = ?")).await?,
            get_messages: p(m("AND message_id IN ?")).await?,
            thread_first: p(format!("SELECT message_id FROM {ks}.thread_replies WHERE workspace_id = ? AND channel_id = ? AND thread_ts = ? LIMIT ?")).await?,
            thread_after: p(format!(
                "SELECT message_id FROM {ks}.thread_replies WHERE workspace_id = ? AND channel_id = ? AND thread_ts = ? AND message_id > ? LIMIT ?"
            ))
            .await?,
            pins: p(format!("SELECT message_id FROM {ks}.pins WHERE workspace_id = ? AND channel_id = ? LIMIT 1000")).await?,
            pin: p(format!("INSERT INTO {ks}.pins (workspace_id, channel_id, message_id) VALUES (?, ?, ?) USING TTL ?")).await?,
            unpin: p(format!("DELETE FROM {ks}.pins WHERE workspace_id = ? AND channel_id = ? AND message_id = ?")).await?,
            edit_message: p(format!(
                "UPDATE {ks}.messages USING TTL ? SET text = ?, edited_at = ? WHERE workspace_id = ? AND channel_id = ? AND message_id = ?"
            ))
            .await?,
            delete_message: p(format!(
                "UPDATE {ks}.messages USING TTL ? SET text = '', deleted = true, reactions = null, attachments = null, pinned = false WHERE workspace_id = ? AND channel_id = ? AND message_id = ?"
            ))
            .await?,
            set_reaction: p(format!(
                "UPDATE {ks}.messages USING TTL ? SET reactions[?] = ? WHERE workspace_id = ? AND channel_id = ? AND message_id = ?"
            ))
            .await?,
            drop_reaction: p(format!("DELETE reactions[?] FROM {ks}.messages WHERE workspace_id = ? AND channel_id = ? AND message_id = ?")).await?,
            set_pinned: p(format!("UPDATE {ks}.messages USING TTL ? SET pinned = ? WHERE workspace_id = ? AND channel_id = ? AND message_id = ?")).await?,
            set_thread: p(format!(
                "UPDATE {ks}.messages USING TTL ? SET reply_count = ?, reply_users = ?, last_reply_at = ? WHERE workspace_id = ? AND channel_id = ? AND message_id = ?"
            ))
            .await?,
            insert_workspace: p(format!(
                "INSERT INTO {ks}.workspaces (workspace_id, name, retention_secs, created_at, max_file_bytes, file_types, storage_quota_bytes) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            get_workspace: p(format!("SELECT workspace_id, name, retention_secs, max_file_bytes, file_types, storage_quota_bytes FROM {ks}.workspaces WHERE workspace_id = ?")).await?,
            // IF NOT EXISTS: a replayed share keeps a later deletion
            insert_file: p(format!(
                "INSERT INTO {ks}.files (workspace_id, file_id, channel_id, uploader, name, size, content_type, created_at, deleted)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, false) IF NOT EXISTS"
            ))
            .await?,
            get_file: p(format!(
                "SELECT channel_id, uploader, name, size, content_type, created_at, deleted FROM {ks}.files WHERE workspace_id = ? AND file_id = ?"
            ))
            .await?,
            delete_file: p(format!("UPDATE {ks}.files SET deleted = true WHERE workspace_id = ? AND file_id = ?")).await?,
            insert_user: p(format!("INSERT INTO {ks}.users (workspace_id, user_id, name, created_at) VALUES (?, ?, ?, ?)")).await?,
            get_user: p(format!("SELECT name FROM {ks}.users WHERE workspace_id = ? AND user_id = ?")).await?,
            users_among: p(format!("SELECT user_id FROM {ks}.users WHERE workspace_id = ? AND user_id IN ?")).await?,
            list_users: p(format!("SELECT user_id, name FROM {ks}.users WHERE workspace_id = ?")).await?,
            // IF NOT EXISTS: a replayed creation keeps later renames and membership
            insert_channel: p(format!(
                "INSERT INTO {ks}.channels (workspace_id, {CHANNEL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
            ))
            .await?,
            get_channel: p(format!("SELECT {CHANNEL_COLUMNS} FROM {ks}.channels WHERE workspace_id = ? AND channel_id = ?")).await?,
            list_channels: p(format!("SELECT {CHANNEL_COLUMNS} FROM {ks}.channels WHERE workspace_id = ?")).await?,
            first_channels: p(format!("SELECT {CHANNEL_COLUMNS} FROM {ks}.channels WHERE workspace_id = ? LIMIT ?")).await?,
            channels_after: p(format!(
                "SELECT {CHANNEL_COLUMNS} FROM {ks}.channels WHERE workspace_id = ? AND channel_id > ? LIMIT ?"
            ))
            .await?,
            rename_channel: p(format!("UPDATE {ks}.channels SET name = ? WHERE workspace_id = ? AND channel_id = ?")).await?,
            archive_channel: p(format!("UPDATE {ks}.channels SET archived = ? WHERE workspace_id = ? AND channel_id = ?")).await?,
            add_member: p(format!("UPDATE {ks}.channels SET members = members + ? WHERE workspace_id = ? AND channel_id = ?")).await?,
            channel_seq: p(format!("UPDATE {ks}.channels SET last_seq = ? WHERE workspace_id = ? AND channel_id = ?")).await?,
            remove_member: p(format!("UPDATE {ks}.channels SET members = members - ? WHERE workspace_id = ? AND channel_id = ?")).await?,
            set_marker: p(format!("INSERT INTO {ks}.read_markers (workspace_id, user_id, channel_id, seq) VALUES (?, ?, ?, ?)")).await?,
            get_markers: p(format!("SELECT channel_id, seq FROM {ks}.read_markers WHERE workspace_id = ? AND user_id = ?")).await?,
            revoke: p(format!(
                "INSERT INTO {ks}.token_revocations (day, at_ms, workspace_id, user_id, revoked_before, deactivated)
                 VALUES (?, ?, ?, ?, ?, ?) USING TTL ?"
            ))
            .await?,
            revocations_since: p(format!(
                "SELECT at_ms, workspace_id, user_id, revoked_before, deactivated FROM {ks}.token_revocations WHERE day = ? AND at_ms >= ?"
            ))
            .await?,
            set_deactivated: p(format!(
                "INSERT INTO {ks}.deactivated_users (workspace_id, user_id, at_ms) VALUES (?, ?, ?)"
            ))
            .await?,
            clear_deactivated: p(format!("DELETE FROM {ks}.deactivated_users WHERE workspace_id = ? AND user_id = ?"))
                .await?,
            get_deactivated: p(format!(
                "SELECT at_ms FROM {ks}.deactivated_users WHERE workspace_id = ? AND user_id = ?"
            ))
            .await?,
            all_deactivated: p(format!("SELECT workspace_id, user_id, at_ms FROM {ks}.deactivated_users")).await?,
            set_retention: p(format!("UPDATE {ks}.workspaces SET retention_secs = ? WHERE workspace_id = ?")).await?,
            set_activity: p(format!("INSERT INTO {ks}.channel_activity (workspace_id, channel_id, summary) VALUES (?, ?, ?)")).await?,
            activity_among: p(format!(
                "SELECT channel_id, summary FROM {ks}.channel_activity WHERE workspace_id = ? AND channel_id IN ?"
            ))
            .await?,
        };
        let ledger = StorageLedger::new(session.clone(), ks).await?;
        Ok(Self { session, keyspace: ks.to_string(), st: Arc::new(st), ledger })
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    async fn messages(
        &self,
        ps: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        ws: Uuid,
        ch: Uuid,
    ) -> PortResult<Vec<StoredMessage>> {
        let rows = self
            .session
            .execute_unpaged(ps, values)
            .await
            .or_port("messages")?
            .into_rows_result()
            .or_port("messages")?;
        let mut out = Vec::new();
        for row in rows.rows::<MessageRow>().or_port("messages")? {
            out.push(message_of(ws, ch, row.or_port("messages")?));
        }
        Ok(out)
    }

    /// The messages with these ids, in the order given (missing ones left out).
    async fn by_ids(&self, ws: Uuid, ch: Uuid, ids: Vec<Uuid>) -> PortResult<Vec<StoredMessage>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let keys: Vec<CqlTimeuuid> = ids.iter().map(|i| CqlTimeuuid::from(*i)).collect();
        let mut found: std::collections::HashMap<Uuid, StoredMessage> = self
            .messages(&self.st.get_messages, (ws, ch, keys), ws, ch)
            .await?
            .into_iter()
            .map(|m| (m.message_id, m))
            .collect();
        Ok(ids.iter().filter_map(|i| found.remove(i)).collect())
    }

    async fn ids(
        &self,
        ps: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> PortResult<Vec<Uuid>> {
        let rows = self.session.execute_unpaged(ps, values).await.or_port("ids")?.into_rows_result().or_port("ids")?;
        let mut out = Vec::new();
        for row in rows.rows::<(CqlTimeuuid,)>().or_port("ids")? {
            out.push(row.or_port("ids")?.0.into());
        }
        Ok(out)
    }

    async fn exec(&self, ps: &PreparedStatement, values: impl scylla::serialize::row::SerializeRow) -> PortResult<()> {
        self.session.execute_unpaged(ps, values).await.or_port("exec")?;
        Ok(())
    }

    /// A page of history without thread-only replies: reads until `limit` qualify or the
    /// channel ends (bounded: at most 20 reads).
    async fn history_page(&self, ws: Uuid, ch: Uuid, page: HistoryPage, limit: i32) -> PortResult<Vec<StoredMessage>> {
        let mut out = Vec::new();
        let mut cursor = page;
        let batch = (limit * 2).clamp(20, 1000);
        for _ in 0..20 {
            let rows = match cursor {
                HistoryPage::Latest => self.messages(&self.st.history_first, (ws, ch, batch), ws, ch).await?,
                HistoryPage::Before(b) => {
                    self.messages(&self.st.history_before, (ws, ch, CqlTimeuuid::from(b), batch), ws, ch).await?
                }
                HistoryPage::After(a) => {
                    self.messages(&self.st.history_after, (ws, ch, CqlTimeuuid::from(a), batch), ws, ch).await?
                }
            };
            let done = rows.len() < batch as usize;
            let last = rows.last().map(|m| m.message_id);
            for m in rows {
                if m.thread_ts.is_none() || m.also_in_channel {
                    out.push(m);
                    if out.len() >= limit as usize {
                        return Ok(out);
                    }
                }
            }
            match (last, done) {
                (Some(l), false) => {
                    cursor = if matches!(page, HistoryPage::After(_)) {
                        HistoryPage::After(l)
                    } else {
                        HistoryPage::Before(l)
                    }
                }
                _ => break,
            }
        }
        Ok(out)
    }

    pub async fn insert_workspace(&self, w: &Workspace) -> PortResult<()> {
        let now = CqlTimestamp(chrono::Utc::now().timestamp_millis());
        self.exec(
            &self.st.insert_workspace,
            (w.workspace_id, &w.name, w.retention_secs, now, w.max_file_bytes, &w.file_types, w.storage_quota_bytes),
        )
        .await
    }
}

#[async_trait]
impl Store for CassandraStore {
    async fn insert_message(&self, m: &StoredMessage, ttl_secs: i32) -> PortResult<()> {
        let ttl = ttl_secs.max(0);
        let id = CqlTimeuuid::from(m.message_id);
        let attachments: Vec<_> = m.attachments.iter().map(attachment_map).collect();
        let values = (
            m.workspace_id,
            m.channel_id,
            id,
            m.seq,
            m.user_id,
            &m.text,
            &m.client_msg_id,
            m.thread_ts.map(CqlTimeuuid::from),
            m.also_in_channel,
            attachments,
            ttl,
        );
        self.exec(&self.st.insert_message, values).await?;
        if let Some(parent) = m.thread_ts {
            self.exec(&self.st.insert_reply, (m.workspace_id, m.channel_id, CqlTimeuuid::from(parent), id, ttl))
                .await?;
        }
        Ok(())
    }
    async fn history(&self, ws: Uuid, ch: Uuid, page: HistoryPage, limit: i32) -> PortResult<Vec<StoredMessage>> {
        self.history_page(ws, ch, page, limit).await
    }
    async fn message(&self, ws: Uuid, ch: Uuid, message_id: Uuid) -> PortResult<Option<StoredMessage>> {
        Ok(self.messages(&self.st.get_message, (ws, ch, CqlTimeuuid::from(message_id)), ws, ch).await?.pop())
    }
    async fn thread(
        &self,
        ws: Uuid,
        ch: Uuid,
        parent: Uuid,
        after: Option<Uuid>,
        limit: i32,
    ) -> PortResult<Vec<StoredMessage>> {
        let parent = CqlTimeuuid::from(parent);
        let ids = match after {
            None => self.ids(&self.st.thread_first, (ws, ch, parent, limit)).await,
            Some(a) => self.ids(&self.st.thread_after, (ws, ch, parent, CqlTimeuuid::from(a), limit)).await,
        }?;
        self.by_ids(ws, ch, ids).await
    }
    async fn pins(&self, ws: Uuid, ch: Uuid) -> PortResult<Vec<StoredMessage>> {
        let ids = self.ids(&self.st.pins, (ws, ch)).await?;
        self.by_ids(ws, ch, ids).await
    }
    async fn change_channel(&self, ws: Uuid, ch: Uuid, change: &ChannelChange) -> PortResult<()> {
        let r = match change {
            ChannelChange::Created(c) => {
                let members: std::collections::BTreeSet<Uuid> = c.members.iter().copied().collect();
                let values = (
                    ws,
                    ch,
                    &c.name,
                    c.kind.is_private(),
                    c.kind.as_str(),
                    c.archived,
                    c.created_by,
                    CqlTimestamp(c.created_at),
                    members,
                    c.last_seq,
                );
                self.exec(&self.st.insert_channel, values).await
            }
            ChannelChange::Renamed(name) => self.exec(&self.st.rename_channel, (name, ws, ch)).await,
            ChannelChange::Archived(a) => self.exec(&self.st.archive_channel, (*a, ws, ch)).await,
            ChannelChange::Joined(u) => {
                self.exec(&self.st.add_member, (std::collections::BTreeSet::from([*u]), ws, ch)).await
            }
            ChannelChange::Left(u) => {
                self.exec(&self.st.remove_member, (std::collections::BTreeSet::from([*u]), ws, ch)).await
            }
            ChannelChange::LastSeq(seq) => self.exec(&self.st.channel_seq, (*seq, ws, ch)).await,
        };
        r
    }
    async fn channel(&self, ws: Uuid, ch: Uuid) -> PortResult<Option<ChannelInfo>> {
        let rows = self
            .session
            .execute_unpaged(&self.st.get_channel, (ws, ch))
            .await
            .or_port("channel")?
            .into_rows_result()
            .or_port("channel")?;
        Ok(rows.maybe_first_row::<ChannelRow>().or_port("channel")?.map(|r| channel_of(ws, r)))
    }
    async fn channels(&self, ws: Uuid) -> PortResult<Vec<ChannelInfo>> {
        let rows = self
            .session
            .execute_unpaged(&self.st.list_channels, (ws,))
            .await
            .or_port("channels")?
            .into_rows_result()
            .or_port("channels")?;
        let mut out = Vec::new();
        for r in rows.rows::<ChannelRow>().or_port("channels")? {
            out.push(channel_of(ws, r.or_port("channels")?));
        }
        Ok(out)
    }
    async fn channels_page(&self, ws: Uuid, after: Option<Uuid>, limit: usize) -> PortResult<Vec<ChannelInfo>> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let result = match after {
            Some(ch) => self.session.execute_unpaged(&self.st.channels_after, (ws, ch, limit)).await,
            None => self.session.execute_unpaged(&self.st.first_channels, (ws, limit)).await,
        };
        let rows = result.or_port("channels")?.into_rows_result().or_port("channels")?;
        let mut out = Vec::new();
        for r in rows.rows::<ChannelRow>().or_port("channels")? {
            out.push(channel_of(ws, r.or_port("channels")?));
        }
        Ok(out)
    }
    async fn set_read_marker(&self, ws: Uuid, user: Uuid, ch: Uuid, seq: i64) -> PortResult<()> {
        self.exec(&self.st.set_marker, (ws, user, ch, seq)).await
    }
    async fn read_markers(&self, ws: Uuid, user: Uuid) -> PortResult<Vec<(Uuid, i64)>> {
        let rows = self
            .session
            .execute_unpaged(&self.st.get_markers, (ws, user))
            .await
            .or_port("read markers")?
            .into_rows_result()
            .or_port("read markers")?;
        let mut out = Vec::new();
        for r in rows.rows::<(Uuid, Option<i64>)>().or_port("read markers")? {
            let (ch, seq) = r.or_port("read markers")?;
            out.push((ch, seq.unwrap_or(0)));
        }
        Ok(out)
    }
    async fn recent_activity(&self, ws: Uuid, channels: &[Uuid]) -> PortResult<Vec<(Uuid, RecentActivity)>> {
        let mut out = Vec::new();
        for chunk in channels.chunks(100) {
            let rows = self
                .session
                .execute_unpaged(&self.st.activity_among, (ws, chunk.to_vec()))
                .await
                .or_port("channel activity")?
                .into_rows_result()
                .or_port("channel activity")?;
            for r in rows.rows::<(Uuid, Vec<u8>)>().or_port("channel activity")? {
                let (ch, bytes) = r.or_port("channel activity")?;
                let activity = RecentActivity::decode(&bytes)
                    .ok_or_else(|| PortError::invalid(format!("channel {ch}: a summary that does not decode")))?;
                out.push((ch, activity));
            }
        }
        Ok(out)
    }
    async fn revoke_tokens(&self, r: &TokenRevocation, keep_secs: i64) -> PortResult<()> {
        let day = day_of(r.at_ms);
        let ttl = keep_secs.clamp(1, MAX_RETENTION_SECS as i64) as i32;
        let values = (day, r.at_ms, r.workspace_id, r.user_id, r.revoked_before, r.deactivated, ttl);
        self.exec(&self.st.revoke, values).await
    }
    async fn token_revocations_since(&self, since_ms: i64) -> PortResult<Vec<TokenRevocation>> {
        let today = day_of(chrono::Utc::now().timestamp_millis());
        // a gateway looks back at most the longest token lifetime; the admin API bounds that
        let first = day_of(since_ms).max(today - 400);
        let mut out = Vec::new();
        for day in first..=today {
            let rows = self
                .session
                .execute_unpaged(&self.st.revocations_since, (day, since_ms))
                .await
                .or_port("token revocations")?
                .into_rows_result()
                .or_port("token revocations")?;
            for r in rows.rows::<(i64, Uuid, Uuid, i64, Option<bool>)>().or_port("token revocations")? {
                let (at_ms, workspace_id, user_id, revoked_before, deactivated) = r.or_port("token revocations")?;
                out.push(TokenRevocation { workspace_id, user_id, revoked_before, at_ms, deactivated });
            }
        }
        Ok(out)
    }
    async fn set_recent_activity(&self, ws: Uuid, ch: Uuid, activity: &RecentActivity) -> PortResult<()> {
        self.exec(&self.st.set_activity, (ws, ch, activity.encode())).await
    }
    async fn set_user_deactivated(&self, ws: Uuid, user: Uuid, deactivation: Option<Deactivation>) -> PortResult<()> {
        match deactivation {
            Some(d) => self.exec(&self.st.set_deactivated, (ws, user, d.at_ms)).await,
            None => self.exec(&self.st.clear_deactivated, (ws, user)).await,
        }
    }
    async fn user_deactivated(&self, ws: Uuid, user: Uuid) -> PortResult<bool> {
        let rows = self
            .session
            .execute_unpaged(&self.st.get_deactivated, (ws, user))
            .await
            .or_port("deactivated user")?
            .into_rows_result()
            .or_port("deactivated user")?;
        Ok(rows.maybe_first_row::<(Option<i64>,)>().or_port("deactivated user")?.is_some())
    }
    async fn deactivated_users(&self) -> PortResult<Vec<Deactivation>> {
        use futures::TryStreamExt;
        let pager =
            self.session.execute_iter(self.st.all_deactivated.clone(), ()).await.or_port("deactivated users")?;
        let mut rows = pager.rows_stream::<(Uuid, Uuid, Option<i64>)>().or_port("deactivated users")?;
        let mut out = Vec::new();
        while let Some((workspace_id, user_id, at_ms)) = rows.try_next().await.or_port("deactivated users")? {
            out.push(Deactivation { workspace_id, user_id, at_ms: at_ms.unwrap_or(0) });
        }
        Ok(out)
    }
    async fn delete_directory(&self, ws: Uuid) -> PortResult<()> {
        super::workspace_deletion::delete_directory(&self.session, &self.keyspace, ws).await
    }
    async fn delete_timeline(&self, ws: Uuid) -> PortResult<()> {
        super::workspace_deletion::delete_timeline(&self.session, &self.keyspace, ws).await
    }
    async fn set_workspace_retention(&self, ws: Uuid, retention_secs: i32) -> PortResult<()> {
        self.exec(&self.st.set_retention, (retention_secs, ws)).await
    }
    async fn insert_workspace(&self, w: &Workspace) -> PortResult<()> {
        CassandraStore::insert_workspace(self, w).await
    }
    async fn workspace(&self, ws: Uuid) -> PortResult<Option<Workspace>> {
        let rows = self
            .session
            .execute_unpaged(&self.st.get_workspace, (ws,))
            .await
            .or_port("workspace")?
            .into_rows_result()
            .or_port("workspace")?;
        let row = rows.maybe_first_row::<WorkspaceRow>().or_port("workspace")?;
        Ok(row.map(|(workspace_id, name, retention, max_file_bytes, file_types, quota)| Workspace {
            workspace_id,
            name: name.unwrap_or_default(),
            retention_secs: retention.unwrap_or(0),
            max_file_bytes: max_file_bytes.unwrap_or(0),
            file_types: file_types.unwrap_or_default(),
            storage_quota_bytes: quota.unwrap_or(0),
        }))
    }
    async fn insert_user(&self, ws: Uuid, user: Uuid, name: &str) -> PortResult<()> {
        let now = CqlTimestamp(chrono::Utc::now().timestamp_millis());
        self.exec(&self.st.insert_user, (ws, user, name, now)).await
    }
    async fn user_exists(&self, ws: Uuid, user: Uuid) -> PortResult<bool> {
        let rows = self
            .session
            .execute_unpaged(&self.st.get_user, (ws, user))
            .await
            .or_port("user exists")?
            .into_rows_result()
            .or_port("user exists")?;
        Ok(rows.rows_num() > 0)
    }
    async fn missing_users(&self, ws: Uuid, users: &[Uuid]) -> PortResult<Vec<Uuid>> {
        let mut found = std::collections::HashSet::new();
        // one partition, a clustering IN per 100 ids: a 1,000-member channel is 10 reads
        for chunk in users.chunks(100) {
            let rows = self
                .session
                .execute_unpaged(&self.st.users_among, (ws, chunk.to_vec()))
                .await
                .or_port("users among")?
                .into_rows_result()
                .or_port("users among")?;
            for r in rows.rows::<(Uuid,)>().or_port("users among")? {
                found.insert(r.or_port("users among")?.0);
            }
        }
        Ok(users.iter().filter(|u| !found.contains(u)).copied().collect())
    }
    async fn user_name(&self, ws: Uuid, user: Uuid) -> PortResult<Option<String>> {
        let rows = self
            .session
            .execute_unpaged(&self.st.get_user, (ws, user))
            .await
            .or_port("user name")?
            .into_rows_result()
            .or_port("user name")?;
        Ok(rows.maybe_first_row::<(Option<String>,)>().or_port("user name")?.map(|(n,)| n.unwrap_or_default()))
    }
    async fn users(&self, ws: Uuid) -> PortResult<Vec<(Uuid, String)>> {
        let rows = self
            .session
            .execute_unpaged(&self.st.list_users, (ws,))
            .await
            .or_port("users")?
            .into_rows_result()
            .or_port("users")?;
        let mut out = Vec::new();
        for r in rows.rows::<(Uuid, Option<String>)>().or_port("users")? {
            let (u, n) = r.or_port("users")?;
            out.push((u, n.unwrap_or_default()));
        }
        Ok(out)
    }
    async fn update_message(
        &self,
        ws: Uuid,
        ch: Uuid,
        message_id: Uuid,
        update: &MessageUpdate,
        ttl_secs: i32,
    ) -> PortResult<()> {
        let id = CqlTimeuuid::from(message_id);
        let ttl = ttl_secs.max(0);
        let r = match update {
            MessageUpdate::Edit { text, edited_at } => {
                self.exec(&self.st.edit_message, (ttl, text, CqlTimestamp(*edited_at), ws, ch, id)).await
            }
            MessageUpdate::Delete => {
                self.exec(&self.st.unpin, (ws, ch, id)).await?;
                self.exec(&self.st.delete_message, (ttl, ws, ch, id)).await
            }
            MessageUpdate::Reactions { emoji, users } if users.is_empty() => {
                self.exec(&self.st.drop_reaction, (emoji, ws, ch, id)).await
            }
            MessageUpdate::Reactions { emoji, users } => {
                let set: std::collections::BTreeSet<Uuid> = users.iter().copied().collect();
                self.exec(&self.st.set_reaction, (ttl, emoji, set, ws, ch, id)).await
            }
            // the flag is set before the message is listed and cleared after it is unlisted: a
            // reader in between never sees a listed pin that is not flagged pinned
            MessageUpdate::Pin { pinned: true } => {
                self.exec(&self.st.set_pinned, (ttl, true, ws, ch, id)).await?;
                self.exec(&self.st.pin, (ws, ch, id, ttl)).await
            }
            MessageUpdate::Pin { pinned: false } => {
                self.exec(&self.st.unpin, (ws, ch, id)).await?;
                self.exec(&self.st.set_pinned, (ttl, false, ws, ch, id)).await
            }
            MessageUpdate::Thread(t) => {
                self.exec(
                    &self.st.set_thread,
                    (ttl, t.reply_count, &t.reply_users, CqlTimestamp(t.last_reply_at), ws, ch, id),
                )
                .await
            }
        };
        r
    }

    async fn insert_file(&self, f: &FileRecord) -> PortResult<()> {
        let a = &f.file;
        let values = (
            f.workspace_id,
            a.file_id,
            f.channel_id,
            f.uploader,
            &a.name,
            a.size,
            &a.content_type,
            CqlTimestamp(f.created_at),
        );
        self.exec(&self.st.insert_file, values).await
    }
    async fn file(&self, ws: Uuid, file_id: Uuid) -> PortResult<Option<FileRecord>> {
        let rows = self
            .session
            .execute_unpaged(&self.st.get_file, (ws, file_id))
            .await
            .or_port("file")?
            .into_rows_result()
            .or_port("file")?;
        type Row = (
            Option<Uuid>,
            Option<Uuid>,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<CqlTimestamp>,
            Option<bool>,
        );
        let row = rows.maybe_first_row::<Row>().or_port("file")?;
        Ok(row.map(|(channel_id, uploader, name, size, content_type, created_at, deleted)| FileRecord {
            workspace_id: ws,
            channel_id: channel_id.unwrap_or_default(),
            uploader: uploader.unwrap_or_default(),
            created_at: created_at.map(|t| t.0).unwrap_or(0),
            deleted: deleted.unwrap_or(false),
            file: Attachment {
                file_id,
                name: name.unwrap_or_default(),
                size: size.unwrap_or(0),
                content_type: content_type.unwrap_or_default(),
            },
        }))
    }
    async fn delete_file(&self, ws: Uuid, file_id: Uuid) -> PortResult<()> {
        self.exec(&self.st.delete_file, (ws, file_id)).await
    }

    async fn reserve_storage(&self, ws: Uuid, file_id: Uuid, bytes: i64, quota: i64) -> PortResult<bool> {
        self.ledger.reserve(ws, file_id, bytes, quota).await
    }
    async fn release_storage(&self, ws: Uuid, file_id: Uuid) -> PortResult<()> {
        self.ledger.release(ws, file_id).await
    }
    async fn storage_used(&self, ws: Uuid) -> PortResult<i64> {
        Ok(self.ledger.used(ws).await?.unwrap_or(0))
    }
    async fn truncate_timeline(&self) -> PortResult<()> {
        for table in ["messages", "channels", "thread_replies", "pins", "read_markers", "channel_activity", "files"] {
            self.session
                .query_unpaged(format!("TRUNCATE {}.{table}", self.keyspace), &[])
                .await
                .or_port("truncate timeline")?;
        }
        Ok(())
    }
}

/// The day (since the Unix epoch) of a Unix ms time: the partition of token revocations.
fn day_of(ms: i64) -> i32 {
    (ms.div_euclid(86_400_000)) as i32
}
