//! The embedded timeline and directory. Message keys are
//! `workspace (16) | channel (16) | TIMEUUID ticks (8 BE) | message_id (16)`: one channel is a
//! contiguous range in time order, read backwards for newest-first pages. A workspace's
//! retention is stored with each message as an expiry and honoured on read.

use async_trait::async_trait;
use confab_core::ports::{MessageUpdate, PortError, PortResult, Store, Workspace};
use confab_core::protocol::MessageView;
use fjall::Keyspace;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

fn port<E: std::fmt::Display>(e: E) -> PortError {
    PortError::of(e)
}

fn ticks(id: &Uuid) -> u64 {
    id.get_timestamp().map(|t| t.to_gregorian().0).unwrap_or(0)
}

fn message_key(ws: &Uuid, ch: &Uuid, id: &Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(56);
    k.extend_from_slice(ws.as_bytes());
    k.extend_from_slice(ch.as_bytes());
    k.extend_from_slice(&ticks(id).to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

fn pair(a: &Uuid, b: &Uuid) -> Vec<u8> {
    [a.as_bytes().as_slice(), b.as_bytes().as_slice()].concat()
}

#[derive(Serialize, Deserialize)]
struct StoredMessage {
    #[serde(flatten)]
    view: MessageView,
    /// Unix ms after which the message is gone (0: never).
    expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredChannel {
    name: String,
    is_private: bool,
    created_ms: i64,
}

pub struct EmbeddedStore {
    messages: Keyspace,
    workspaces: Keyspace,
    users: Keyspace,
    channels: Keyspace,
}

impl EmbeddedStore {
    pub fn new(messages: Keyspace, workspaces: Keyspace, users: Keyspace, channels: Keyspace) -> Self {
        Self { messages, workspaces, users, channels }
    }

    /// Every workspace (for the first-run check).
    pub fn workspace_count(&self) -> usize {
        self.workspaces.iter().count()
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn insert_message(&self, m: &MessageView, ttl_secs: i32) -> PortResult<()> {
        let expires_at = if ttl_secs > 0 { m.ts + ttl_secs as i64 * 1000 } else { 0 };
        let v = serde_json::to_vec(&StoredMessage { view: m.clone(), expires_at }).expect("message serializes");
        self.messages.insert(message_key(&m.workspace_id, &m.channel_id, &m.message_id), v).map_err(port)
    }

    async fn history(&self, ws: Uuid, ch: Uuid, before: Option<Uuid>, limit: i32) -> PortResult<Vec<MessageView>> {
        let start = pair(&ws, &ch);
        let end = match before {
            Some(b) => message_key(&ws, &ch, &b),
            None => [start.as_slice(), &[0xff; 24]].concat(),
        };
        let now = chrono::Utc::now().timestamp_millis();
        let mut out = Vec::new();
        for g in self.messages.range(start..end).rev() {
            let v = g.value().map_err(port)?;
            let m: StoredMessage = serde_json::from_slice(&v).map_err(port)?;
            if m.expires_at != 0 && m.expires_at <= now {
                continue;
            }
            out.push(m.view);
            if out.len() >= limit as usize {
                break;
            }
        }
        Ok(out)
    }

    async fn insert_channel(&self, ws: Uuid, ch: Uuid, name: &str, is_private: bool, created_ms: i64) -> PortResult<()> {
        let v = serde_json::to_vec(&StoredChannel { name: name.into(), is_private, created_ms }).expect("channel serializes");
        self.channels.insert(pair(&ws, &ch), v).map_err(port)
    }

    async fn insert_workspace(&self, w: &Workspace) -> PortResult<()> {
        self.workspaces.insert(w.workspace_id.as_bytes().to_vec(), serde_json::to_vec(w).expect("workspace serializes")).map_err(port)
    }

    async fn workspace(&self, ws: Uuid) -> PortResult<Option<Workspace>> {
        match self.workspaces.get(ws.as_bytes()).map_err(port)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(port)?)),
            None => Ok(None),
        }
    }

    async fn insert_user(&self, ws: Uuid, user: Uuid, name: &str) -> PortResult<()> {
        self.users.insert(pair(&ws, &user), name.as_bytes().to_vec()).map_err(port)
    }

    async fn user_exists(&self, ws: Uuid, user: Uuid) -> PortResult<bool> {
        self.users.contains_key(pair(&ws, &user)).map_err(port)
    }

    async fn update_message(&self, ws: Uuid, ch: Uuid, message_id: Uuid, update: &MessageUpdate, _ttl_secs: i32) -> PortResult<()> {
        // the timeline projector is the only writer, so read-modify-write is safe
        let key = message_key(&ws, &ch, &message_id);
        let Some(v) = self.messages.get(&key).map_err(port)? else {
            return Err(PortError(format!("message {message_id} is not in the timeline")));
        };
        let mut m: StoredMessage = serde_json::from_slice(&v).map_err(port)?;
        match update {
            MessageUpdate::Edit { text, edited_at } => {
                m.view.text = text.clone();
                m.view.edited_at = Some(*edited_at);
            }
            MessageUpdate::Delete => {
                m.view.text.clear();
                m.view.deleted = true;
                m.view.reactions.clear();
            }
            MessageUpdate::Reactions { emoji, users } if users.is_empty() => {
                m.view.reactions.remove(emoji);
            }
            MessageUpdate::Reactions { emoji, users } => {
                let mut users = users.clone();
                users.sort();
                m.view.reactions.insert(emoji.clone(), users);
            }
        }
        self.messages.insert(key, serde_json::to_vec(&m).expect("message serializes")).map_err(port)
    }

    async fn truncate_timeline(&self) -> PortResult<()> {
        self.messages.clear().map_err(port)?;
        self.channels.clear().map_err(port)
    }
}
