//! The embedded timeline and directory. Message keys are
//! `workspace (16) | channel (16) | TIMEUUID ticks (8 BE) | message_id (16)`: one channel is a
//! contiguous range in time order, read backwards for newest-first pages. Thread replies are
//! indexed under `workspace | channel | parent | ticks | id`, pins under `workspace | channel |
//! ticks | id`. A workspace's retention is stored with each message as an expiry and honoured
//! on read.

use async_trait::async_trait;
use confab_core::files::FileRecord;
use confab_core::ports::{
    ChannelChange, ChannelInfo, Deactivation, HistoryPage, MessageUpdate, PortError, PortResult, Store, StoredMessage,
    TokenRevocation, Workspace,
};
use confab_core::unread::RecentActivity;
use fjall::Keyspace;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{corrupt, persist, port};

fn ticks(id: &Uuid) -> u64 {
    id.get_timestamp().map(|t| t.to_gregorian().0).unwrap_or(0)
}

fn key(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn message_key(ws: &Uuid, ch: &Uuid, id: &Uuid) -> Vec<u8> {
    key(&[ws.as_bytes(), ch.as_bytes(), &ticks(id).to_be_bytes(), id.as_bytes()])
}

/// Removes every key of `ks` under `prefix`, a batch at a time (not synced: the caller
/// persists); returns how many.
pub(crate) fn remove_prefix(db: &fjall::Database, ks: &Keyspace, prefix: &[u8]) -> PortResult<usize> {
    let mut removed = 0;
    loop {
        let keys: Vec<_> = ks
            .prefix(prefix)
            .take(10_000)
            .map(|g| g.key().map(|k| k.to_vec()).map_err(port))
            .collect::<PortResult<_>>()?;
        if keys.is_empty() {
            return Ok(removed);
        }
        let mut batch = db.batch();
        for k in &keys {
            batch.remove(ks, k.clone());
        }
        batch.commit().map_err(port)?;
        removed += keys.len();
    }
}

fn pair(a: &Uuid, b: &Uuid) -> Vec<u8> {
    key(&[a.as_bytes(), b.as_bytes()])
}

/// Everything after `prefix` in key order.
fn upper(prefix: &[u8]) -> Vec<u8> {
    key(&[prefix, &[0xff; 40]])
}

/// A message as stored: the port's row plus its expiry.
#[derive(Serialize, Deserialize)]
struct Row {
    #[serde(flatten)]
    message: StoredMessage,
    /// Unix ms after which the message is gone (0: never).
    expires_at: i64,
}

impl Row {
    fn live(&self, now: i64) -> bool {
        self.expires_at == 0 || self.expires_at > now
    }
}

/// A range of an index of message ids: its prefix, the direction, where to start after, how
/// many live messages to return.
struct IndexScan<'a> {
    index: &'a Keyspace,
    prefix: Vec<u8>,
    rev: bool,
    after: Option<Vec<u8>>,
    limit: usize,
}

pub struct EmbeddedStore {
    /// For the directory's durable writes.
    pub(crate) db: fjall::Database,
    pub(crate) messages: Keyspace,
    pub(crate) workspaces: Keyspace,
    pub(crate) users: Keyspace,
    pub(crate) channels: Keyspace,
    pub(crate) threads: Keyspace,
    pub(crate) pins: Keyspace,
    pub(crate) markers: Keyspace,
    /// `workspace | channel` -> the channel's [`RecentActivity`] (its own encoding).
    pub(crate) activity: Keyspace,
    /// `at_ms (big-endian) | workspace | user` -> revoked_before (big-endian seconds), then one
    /// byte when it (de)activates the user: 1 deactivated, 0 reactivated.
    pub(crate) revocations: Keyspace,
    /// `workspace | user` -> when the user was deactivated (big-endian Unix ms).
    pub(crate) deactivated: Keyspace,
    /// `workspace | file_id` -> FileRecord (JSON).
    pub(crate) files: Keyspace,
    /// The storage ledger: `workspace` -> bytes used, `workspace | file_id` -> the file's bytes
    /// (both big-endian i64), written together in one batch.
    pub(crate) storage: Keyspace,
    /// Serializes the ledger's read-check-write.
    pub(crate) storage_lock: tokio::sync::Mutex<()>,
}

impl EmbeddedStore {
    /// One big-endian i64 of the storage ledger.
    fn ledger_value(&self, k: &[u8]) -> PortResult<Option<i64>> {
        match self.storage.get(k).map_err(port)? {
            Some(v) => Ok(Some(i64::from_be_bytes(v.as_ref().try_into().map_err(|_| corrupt("storage ledger"))?))),
            None => Ok(None),
        }
    }

    /// Every workspace (for the first-run check).
    pub fn workspace_count(&self) -> usize {
        self.workspaces.iter().count()
    }

    fn get(&self, ws: &Uuid, ch: &Uuid, id: &Uuid) -> PortResult<Option<Row>> {
        match self.messages.get(message_key(ws, ch, id)).map_err(port)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(port)?)),
            None => Ok(None),
        }
    }

    /// Messages of `ws`/`ch` whose keys (in the scan's index, under its prefix) end in a
    /// message id, in key order.
    fn indexed(&self, ws: &Uuid, ch: &Uuid, scan: IndexScan) -> PortResult<Vec<StoredMessage>> {
        let IndexScan { index, prefix, rev, after, limit } = scan;
        let now = chrono::Utc::now().timestamp_millis();
        let start = after.unwrap_or_else(|| prefix.clone());
        let range = index.range(start.clone()..upper(&prefix));
        let keys: Box<dyn Iterator<Item = _>> = if rev { Box::new(range.rev()) } else { Box::new(range) };
        let mut out = Vec::new();
        for g in keys {
            let k = g.key().map_err(port)?;
            if k.as_ref() == start.as_slice() {
                continue;
            }
            let id = Uuid::from_slice(&k[k.len() - 16..]).map_err(port)?;
            if let Some(m) = self.get(ws, ch, &id)? {
                if m.live(now) {
                    out.push(m.message);
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn put_channel(&self, c: &ChannelInfo) -> PortResult<()> {
        self.channels
            .insert(pair(&c.workspace_id, &c.channel_id), serde_json::to_vec(c).expect("channel serializes"))
            .map_err(port)
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn insert_message(&self, m: &StoredMessage, ttl_secs: i32) -> PortResult<()> {
        let expires_at = if ttl_secs > 0 { m.ts + ttl_secs as i64 * 1000 } else { 0 };
        // an upsert from a replay must not drop what later events already put on the row
        let mut message = m.clone();
        if let Some(old) = self.get(&m.workspace_id, &m.channel_id, &m.message_id)? {
            message = old.message;
        }
        let v = serde_json::to_vec(&Row { message, expires_at }).expect("message serializes");
        self.messages.insert(message_key(&m.workspace_id, &m.channel_id, &m.message_id), v).map_err(port)?;
        if let Some(parent) = m.thread_ts {
            let k = key(&[
                m.workspace_id.as_bytes(),
                m.channel_id.as_bytes(),
                parent.as_bytes(),
                &ticks(&m.message_id).to_be_bytes(),
                m.message_id.as_bytes(),
            ]);
            self.threads.insert(k, []).map_err(port)?;
        }
        Ok(())
    }

    async fn history(&self, ws: Uuid, ch: Uuid, page: HistoryPage, limit: i32) -> PortResult<Vec<StoredMessage>> {
        let start = pair(&ws, &ch);
        let now = chrono::Utc::now().timestamp_millis();
        let range = match page {
            HistoryPage::Latest => self.messages.range(start.clone()..upper(&start)),
            HistoryPage::Before(b) => self.messages.range(start.clone()..message_key(&ws, &ch, &b)),
            HistoryPage::After(a) => self.messages.range(message_key(&ws, &ch, &a)..upper(&start)),
        };
        let iter: Box<dyn Iterator<Item = _>> =
            if matches!(page, HistoryPage::After(_)) { Box::new(range) } else { Box::new(range.rev()) };
        let mut out = Vec::new();
        for g in iter {
            let v = g.value().map_err(port)?;
            let m: Row = serde_json::from_slice(&v).map_err(port)?;
            if !m.live(now) || (m.message.thread_ts.is_some() && !m.message.also_in_channel) {
                continue;
            }
            if let HistoryPage::After(a) = page {
                if m.message.message_id == a {
                    continue;
                }
            }
            out.push(m.message);
            if out.len() >= limit as usize {
                break;
            }
        }
        Ok(out)
    }

    async fn message(&self, ws: Uuid, ch: Uuid, message_id: Uuid) -> PortResult<Option<StoredMessage>> {
        let now = chrono::Utc::now().timestamp_millis();
        Ok(self.get(&ws, &ch, &message_id)?.filter(|m| m.live(now)).map(|m| m.message))
    }

    async fn thread(
        &self,
        ws: Uuid,
        ch: Uuid,
        parent: Uuid,
        after: Option<Uuid>,
        limit: i32,
    ) -> PortResult<Vec<StoredMessage>> {
        let prefix = key(&[ws.as_bytes(), ch.as_bytes(), parent.as_bytes()]);
        let after = after.map(|a| key(&[&prefix, &ticks(&a).to_be_bytes(), a.as_bytes()]));
        self.indexed(
            &ws,
            &ch,
            IndexScan { index: &self.threads, prefix, rev: false, after, limit: limit.max(0) as usize },
        )
    }

    async fn pins(&self, ws: Uuid, ch: Uuid) -> PortResult<Vec<StoredMessage>> {
        self.indexed(
            &ws,
            &ch,
            IndexScan { index: &self.pins, prefix: pair(&ws, &ch), rev: true, after: None, limit: 1000 },
        )
    }

    async fn change_channel(&self, ws: Uuid, ch: Uuid, change: &ChannelChange) -> PortResult<()> {
        if let ChannelChange::Created(c) = change {
            // a replay of the creation keeps later renames and membership
            if self.channels.contains_key(pair(&ws, &ch)).map_err(port)? {
                return Ok(());
            }
            return self.put_channel(c);
        }
        let Some(mut c) = self.channel(ws, ch).await? else {
            // written before channels had records of this shape: a replay with --truncate rebuilds it
            tracing::warn!(workspace_id = %ws, channel_id = %ch, "channel change for a channel without a record; skipped");
            return Ok(());
        };
        match change {
            ChannelChange::Created(_) => unreachable!("handled above"),
            ChannelChange::Renamed(name) => c.name = name.clone(),
            ChannelChange::Archived(a) => c.archived = *a,
            ChannelChange::Joined(u) => {
                if !c.members.contains(u) {
                    c.members.push(*u);
                    c.members.sort();
                }
            }
            ChannelChange::Left(u) => c.members.retain(|m| m != u),
            ChannelChange::LastSeq(seq) => c.last_seq = *seq,
        }
        self.put_channel(&c)
    }

    async fn channel(&self, ws: Uuid, ch: Uuid) -> PortResult<Option<ChannelInfo>> {
        match self.channels.get(pair(&ws, &ch)).map_err(port)? {
            // a record from before channel records had this shape reads as missing
            Some(v) => Ok(serde_json::from_slice(&v).ok()),
            None => Ok(None),
        }
    }

    async fn channels(&self, ws: Uuid) -> PortResult<Vec<ChannelInfo>> {
        let prefix = ws.as_bytes().to_vec();
        let mut out = Vec::new();
        for g in self.channels.prefix(prefix) {
            if let Ok(c) = serde_json::from_slice(&g.value().map_err(port)?) {
                out.push(c);
            }
        }
        Ok(out)
    }

    async fn channels_page(&self, ws: Uuid, after: Option<Uuid>, limit: usize) -> PortResult<Vec<ChannelInfo>> {
        use std::ops::Bound;
        let start = match after {
            Some(ch) => Bound::Excluded(pair(&ws, &ch)),
            None => Bound::Included(ws.as_bytes().to_vec()),
        };
        let end = Bound::Included(upper(ws.as_bytes()));
        let mut out = Vec::new();
        for g in self.channels.range((start, end)) {
            if out.len() >= limit {
                break;
            }
            if let Ok(c) = serde_json::from_slice(&g.value().map_err(port)?) {
                out.push(c);
            }
        }
        Ok(out)
    }

    async fn set_read_marker(&self, ws: Uuid, user: Uuid, ch: Uuid, seq: i64) -> PortResult<()> {
        self.markers.insert(key(&[ws.as_bytes(), user.as_bytes(), ch.as_bytes()]), seq.to_be_bytes()).map_err(port)
    }

    async fn read_markers(&self, ws: Uuid, user: Uuid) -> PortResult<Vec<(Uuid, i64)>> {
        let mut out = Vec::new();
        for g in self.markers.prefix(pair(&ws, &user)) {
            let (k, v) = g.into_inner().map_err(port)?;
            let ch = Uuid::from_slice(&k[32..48]).map_err(port)?;
            let seq = i64::from_be_bytes(v.as_ref().try_into().map_err(port)?);
            out.push((ch, seq));
        }
        Ok(out)
    }

    async fn recent_activity(&self, ws: Uuid, channels: &[Uuid]) -> PortResult<Vec<(Uuid, RecentActivity)>> {
        let mut out = Vec::new();
        for ch in channels {
            if let Some(v) = self.activity.get(pair(&ws, ch)).map_err(port)? {
                let activity = RecentActivity::decode(&v).ok_or_else(|| corrupt("channel summary"))?;
                out.push((*ch, activity));
            }
        }
        Ok(out)
    }

    async fn set_recent_activity(&self, ws: Uuid, ch: Uuid, activity: &RecentActivity) -> PortResult<()> {
        self.activity.insert(pair(&ws, &ch), activity.encode()).map_err(port)
    }

    async fn revoke_tokens(&self, r: &TokenRevocation, keep_secs: i64) -> PortResult<()> {
        // what no token can outlive any more goes first
        let horizon = (r.at_ms - keep_secs * 1000).max(0);
        let stale: Vec<_> = self
            .revocations
            .range(..horizon.to_be_bytes().to_vec())
            .map(|g| g.key().map_err(port))
            .collect::<PortResult<_>>()?;
        for k in stale {
            self.revocations.remove(k).map_err(port)?;
        }
        let k = key(&[&r.at_ms.to_be_bytes(), r.workspace_id.as_bytes(), r.user_id.as_bytes()]);
        let mut v = r.revoked_before.to_be_bytes().to_vec();
        v.extend(r.deactivated.map(u8::from));
        self.revocations.insert(k, v).map_err(port)?;
        persist(&self.db).await
    }

    async fn token_revocations_since(&self, since_ms: i64) -> PortResult<Vec<TokenRevocation>> {
        let mut out = Vec::new();
        for g in self.revocations.range(since_ms.max(0).to_be_bytes().to_vec()..) {
            let (k, v) = g.into_inner().map_err(port)?;
            if k.len() != 40 || !(8..=9).contains(&v.len()) {
                return Err(corrupt("token revocation"));
            }
            out.push(TokenRevocation {
                at_ms: i64::from_be_bytes(k[..8].try_into().map_err(port)?),
                workspace_id: Uuid::from_slice(&k[8..24]).map_err(port)?,
                user_id: Uuid::from_slice(&k[24..40]).map_err(port)?,
                revoked_before: i64::from_be_bytes(v[..8].try_into().map_err(port)?),
                deactivated: v.get(8).map(|flag| *flag == 1),
            });
        }
        Ok(out)
    }

    async fn set_user_deactivated(&self, ws: Uuid, user: Uuid, deactivation: Option<Deactivation>) -> PortResult<()> {
        match deactivation {
            Some(d) => self.deactivated.insert(pair(&ws, &user), d.at_ms.to_be_bytes()).map_err(port)?,
            None => self.deactivated.remove(pair(&ws, &user)).map_err(port)?,
        }
        persist(&self.db).await
    }

    async fn user_deactivated(&self, ws: Uuid, user: Uuid) -> PortResult<bool> {
        self.deactivated.contains_key(pair(&ws, &user)).map_err(port)
    }

    async fn deactivated_users(&self) -> PortResult<Vec<Deactivation>> {
        let mut out = Vec::new();
        for g in self.deactivated.iter() {
            let (k, v) = g.into_inner().map_err(port)?;
            if k.len() != 32 || v.len() != 8 {
                return Err(corrupt("deactivated user"));
            }
            out.push(Deactivation {
                workspace_id: Uuid::from_slice(&k[..16]).map_err(port)?,
                user_id: Uuid::from_slice(&k[16..]).map_err(port)?,
                at_ms: i64::from_be_bytes(v.as_ref().try_into().map_err(port)?),
            });
        }
        Ok(out)
    }

    async fn delete_directory(&self, ws: Uuid) -> PortResult<()> {
        self.workspaces.remove(ws.as_bytes()).map_err(port)?;
        remove_prefix(&self.db, &self.users, ws.as_bytes())?;
        let marker = self.deactivated.get(pair(&ws, &Uuid::nil())).map_err(port)?;
        remove_prefix(&self.db, &self.deactivated, ws.as_bytes())?;
        if let Some(at) = marker {
            self.deactivated.insert(pair(&ws, &Uuid::nil()), at).map_err(port)?;
        }
        persist(&self.db).await
    }

    async fn delete_timeline(&self, ws: Uuid) -> PortResult<()> {
        for ks in [
            &self.messages,
            &self.channels,
            &self.threads,
            &self.pins,
            &self.markers,
            &self.activity,
            &self.files,
            &self.storage,
        ] {
            remove_prefix(&self.db, ks, ws.as_bytes())?;
        }
        persist(&self.db).await
    }

    async fn set_workspace_retention(&self, ws: Uuid, retention_secs: i32) -> PortResult<()> {
        let Some(mut w) = self.workspace(ws).await? else {
            return Err(PortError::not_found(format!("workspace {ws}")));
        };
        w.retention_secs = retention_secs;
        self.insert_workspace(&w).await
    }

    async fn insert_workspace(&self, w: &Workspace) -> PortResult<()> {
        self.workspaces
            .insert(w.workspace_id.as_bytes().to_vec(), serde_json::to_vec(w).expect("workspace serializes"))
            .map_err(port)?;
        persist(&self.db).await
    }

    async fn workspace(&self, ws: Uuid) -> PortResult<Option<Workspace>> {
        match self.workspaces.get(ws.as_bytes()).map_err(port)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(port)?)),
            None => Ok(None),
        }
    }

    async fn insert_user(&self, ws: Uuid, user: Uuid, name: &str) -> PortResult<()> {
        self.users.insert(pair(&ws, &user), name.as_bytes().to_vec()).map_err(port)?;
        persist(&self.db).await
    }

    async fn user_exists(&self, ws: Uuid, user: Uuid) -> PortResult<bool> {
        self.users.contains_key(pair(&ws, &user)).map_err(port)
    }

    async fn user_name(&self, ws: Uuid, user: Uuid) -> PortResult<Option<String>> {
        Ok(self.users.get(pair(&ws, &user)).map_err(port)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    async fn users(&self, ws: Uuid) -> PortResult<Vec<(Uuid, String)>> {
        let mut out = Vec::new();
        for g in self.users.prefix(ws.as_bytes()) {
            let (k, v) = g.into_inner().map_err(port)?;
            out.push((Uuid::from_slice(&k[16..32]).map_err(port)?, String::from_utf8_lossy(&v).into_owned()));
        }
        Ok(out)
    }

    async fn update_message(
        &self,
        ws: Uuid,
        ch: Uuid,
        message_id: Uuid,
        update: &MessageUpdate,
        _ttl_secs: i32,
    ) -> PortResult<()> {
        // the timeline projector is the only writer, so read-modify-write is safe
        let k = message_key(&ws, &ch, &message_id);
        let Some(mut m) = self.get(&ws, &ch, &message_id)? else {
            return Err(PortError::not_found(format!("message {message_id} is not in the timeline")));
        };
        match update {
            MessageUpdate::Edit { text, edited_at } => {
                m.message.text = text.clone();
                m.message.edited_at = Some(*edited_at);
            }
            MessageUpdate::Delete => {
                m.message.text.clear();
                m.message.deleted = true;
                m.message.reactions.clear();
                m.message.attachments.clear();
                m.message.pinned = false;
                self.pins
                    .remove(key(&[
                        ws.as_bytes(),
                        ch.as_bytes(),
                        &ticks(&message_id).to_be_bytes(),
                        message_id.as_bytes(),
                    ]))
                    .map_err(port)?;
            }
            MessageUpdate::Reactions { emoji, users } if users.is_empty() => {
                m.message.reactions.remove(emoji);
            }
            MessageUpdate::Reactions { emoji, users } => {
                let mut users = users.clone();
                users.sort();
                m.message.reactions.insert(emoji.clone(), users);
            }
            MessageUpdate::Pin { pinned } => {
                m.message.pinned = *pinned;
                let pk = key(&[ws.as_bytes(), ch.as_bytes(), &ticks(&message_id).to_be_bytes(), message_id.as_bytes()]);
                if *pinned {
                    self.pins.insert(pk, []).map_err(port)?;
                } else {
                    self.pins.remove(pk).map_err(port)?;
                }
            }
            MessageUpdate::Thread(t) => m.message.thread = Some(t.clone()),
        }
        self.messages.insert(k, serde_json::to_vec(&m).expect("message serializes")).map_err(port)
    }

    async fn insert_file(&self, f: &FileRecord) -> PortResult<()> {
        let k = pair(&f.workspace_id, &f.file.file_id);
        // a replayed share keeps a later deletion
        if self.files.contains_key(&k).map_err(port)? {
            return Ok(());
        }
        self.files.insert(k, serde_json::to_vec(f).expect("file serializes")).map_err(port)
    }

    async fn file(&self, ws: Uuid, file_id: Uuid) -> PortResult<Option<FileRecord>> {
        match self.files.get(pair(&ws, &file_id)).map_err(port)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(port)?)),
            None => Ok(None),
        }
    }

    async fn delete_file(&self, ws: Uuid, file_id: Uuid) -> PortResult<()> {
        let k = pair(&ws, &file_id);
        // the log shares a file before deleting it; nothing recorded means nothing to revoke
        let Some(mut f) = self.file(ws, file_id).await? else { return Ok(()) };
        f.deleted = true;
        self.files.insert(k, serde_json::to_vec(&f).expect("file serializes")).map_err(port)
    }

    async fn reserve_storage(&self, ws: Uuid, file_id: Uuid, bytes: i64, quota: i64) -> PortResult<bool> {
        let _guard = self.storage_lock.lock().await;
        if self.storage.contains_key(pair(&ws, &file_id)).map_err(port)? {
            return Ok(true);
        }
        let used = self.ledger_value(ws.as_bytes())?.unwrap_or(0);
        if used.saturating_add(bytes) > quota {
            return Ok(false);
        }
        let mut batch = self.db.batch();
        batch.insert(&self.storage, ws.as_bytes().to_vec(), (used + bytes).to_be_bytes().to_vec());
        batch.insert(&self.storage, pair(&ws, &file_id), bytes.to_be_bytes().to_vec());
        batch.commit().map_err(port)?;
        persist(&self.db).await?;
        Ok(true)
    }

    async fn release_storage(&self, ws: Uuid, file_id: Uuid) -> PortResult<()> {
        let _guard = self.storage_lock.lock().await;
        let Some(bytes) = self.ledger_value(&pair(&ws, &file_id))? else { return Ok(()) };
        let used = self.ledger_value(ws.as_bytes())?.unwrap_or(0);
        let mut batch = self.db.batch();
        batch.insert(&self.storage, ws.as_bytes().to_vec(), (used - bytes).max(0).to_be_bytes().to_vec());
        batch.remove(&self.storage, pair(&ws, &file_id));
        batch.commit().map_err(port)?;
        persist(&self.db).await
    }

    async fn storage_used(&self, ws: Uuid) -> PortResult<i64> {
        Ok(self.ledger_value(ws.as_bytes())?.unwrap_or(0))
    }

    async fn truncate_timeline(&self) -> PortResult<()> {
        for ks in
            [&self.messages, &self.channels, &self.threads, &self.pins, &self.markers, &self.activity, &self.files]
        {
            ks.clear().map_err(port)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn open(dir: &std::path::Path) -> EmbeddedStore {
        let db = fjall::Database::builder(dir).open().unwrap();
        let ks = |n: &str| db.keyspace(n, fjall::KeyspaceCreateOptions::default).unwrap();
        EmbeddedStore {
            messages: ks("messages"),
            workspaces: ks("workspaces"),
            users: ks("users"),
            channels: ks("channels"),
            threads: ks("threads"),
            pins: ks("pins"),
            markers: ks("markers"),
            activity: ks("activity"),
            revocations: ks("revocations"),
            deactivated: ks("deactivated"),
            files: ks("files"),
            storage: ks("storage"),
            storage_lock: tokio::sync::Mutex::new(()),
            db,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reservations_never_pass_the_quota_and_count_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(dir.path()));
        let ws = Uuid::new_v4();
        let files: Vec<Uuid> = (0..25).map(|_| Uuid::new_v4()).collect();
        let tries = files.iter().map(|f| {
            let (store, f) = (store.clone(), *f);
            tokio::spawn(async move { store.reserve_storage(ws, f, 100, 1000).await.unwrap() })
        });
        let granted = futures::future::join_all(tries).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
        assert_eq!(granted, 10);
        assert_eq!(store.storage_used(ws).await.unwrap(), 1000);
        let counted: Vec<Uuid> =
            files.iter().copied().filter(|f| store.storage.contains_key(pair(&ws, f)).unwrap()).collect();
        assert_eq!(counted.len(), 10);
        // a counted file is not counted again; releasing twice gives its room back once
        assert!(store.reserve_storage(ws, counted[0], 100, 1000).await.unwrap());
        assert_eq!(store.storage_used(ws).await.unwrap(), 1000);
        store.release_storage(ws, counted[0]).await.unwrap();
        store.release_storage(ws, counted[0]).await.unwrap();
        assert_eq!(store.storage_used(ws).await.unwrap(), 900);
        // another workspace has its own ledger
        assert_eq!(store.storage_used(Uuid::new_v4()).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn deleting_a_workspace_removes_its_rows_and_nothing_of_another() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let gen = confab_core::TimeUuidGen::new();
        let (doomed, kept) = (Uuid::new_v4(), Uuid::new_v4());
        for ws in [doomed, kept] {
            let w = Workspace {
                workspace_id: ws,
                name: "w".into(),
                retention_secs: 0,
                max_file_bytes: 0,
                file_types: vec![],
                storage_quota_bytes: 0,
            };
            store.insert_workspace(&w).await.unwrap();
            let (user, ch, id) = (Uuid::new_v4(), Uuid::new_v4(), gen.next(1_000));
            store.insert_user(ws, user, "alice").await.unwrap();
            let info = ChannelInfo {
                workspace_id: ws,
                channel_id: ch,
                name: "general".into(),
                kind: confab_core::event::ChannelKind::Public,
                archived: false,
                created_by: user,
                created_at: 1,
                members: vec![user],
                last_seq: 1,
            };
            store.change_channel(ws, ch, &ChannelChange::Created(info)).await.unwrap();
            let m: StoredMessage = serde_json::from_value(serde_json::json!({
                "workspace_id": ws, "channel_id": ch, "message_id": id, "seq": 2, "user_id": user,
                "text": "said", "ts": 1_000,
            }))
            .unwrap();
            store.insert_message(&m, 0).await.unwrap();
            store.set_read_marker(ws, user, ch, 2).await.unwrap();
            store.reserve_storage(ws, Uuid::new_v4(), 10, 100).await.unwrap();
        }
        store
            .set_user_deactivated(
                doomed,
                Uuid::nil(),
                Some(Deactivation { workspace_id: doomed, user_id: Uuid::nil(), at_ms: 1 }),
            )
            .await
            .unwrap();
        store.delete_directory(doomed).await.unwrap();
        store.delete_timeline(doomed).await.unwrap();
        let holds = |ws: Uuid| {
            [&store.messages, &store.channels, &store.markers, &store.storage, &store.users]
                .iter()
                .map(|ks| ks.prefix(ws.as_bytes()).count())
                .sum::<usize>()
        };
        assert_eq!(holds(doomed), 0, "nothing of the deleted workspace is left");
        assert!(store.workspace(doomed).await.unwrap().is_none());
        assert!(store.user_deactivated(doomed, Uuid::nil()).await.unwrap(), "the marker stays");
        assert_eq!(holds(kept), 6, "the other workspace keeps its message, channel, marker, ledger and user");
        assert!(store.workspace(kept).await.unwrap().is_some());
    }
}
