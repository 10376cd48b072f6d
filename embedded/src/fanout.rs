//! In-process fanout: one in-memory stream per workspace (ids `<n>-0`, trimmed to a maximum
//! length) that gateways in this process read, plus the persisted membership index and the last
//! published seq per channel, so replaying the log publishes nothing twice.

use async_trait::async_trait;
use confab_core::ports::{Fanout, FanoutEntry, FanoutItem, FanoutStream, PortError, PortResult};
use fjall::{Database, Keyspace};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

fn port<E: std::fmt::Display>(e: E) -> PortError {
    PortError::of(e)
}

fn k2(a: &Uuid, b: &Uuid) -> Vec<u8> {
    [a.as_bytes().as_slice(), b.as_bytes().as_slice()].concat()
}

fn k3(a: &Uuid, b: &Uuid, c: &Uuid) -> Vec<u8> {
    [a.as_bytes().as_slice(), b.as_bytes().as_slice(), c.as_bytes().as_slice()].concat()
}

fn parse_id(id: &str) -> u64 {
    id.split('-').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[derive(Default)]
struct Stream {
    next_id: u64,
    entries: VecDeque<(u64, FanoutEntry)>,
}

struct Inner {
    db: Database,
    seqs: Keyspace,
    members: Keyspace,
    user_channels: Keyspace,
    streams: Mutex<HashMap<Uuid, Stream>>,
    written: watch::Sender<u64>,
    max_len: usize,
}

pub struct EmbeddedFanout {
    inner: Arc<Inner>,
}

impl EmbeddedFanout {
    pub fn new(db: Database, seqs: Keyspace, members: Keyspace, user_channels: Keyspace, max_len: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                seqs,
                members,
                user_channels,
                streams: Mutex::default(),
                written: watch::channel(0).0,
                max_len: max_len.max(1),
            }),
        }
    }
}

#[async_trait]
impl Fanout for EmbeddedFanout {
    async fn publish(&self, items: &[FanoutItem]) -> PortResult<usize> {
        let inner = &self.inner;
        let mut fresh = Vec::new();
        let mut batch = inner.db.batch();
        let mut staged: HashMap<Vec<u8>, i64> = HashMap::new();
        for it in items {
            let key = k2(&it.workspace_id, &it.channel_id);
            let last = match staged.get(&key) {
                Some(s) => *s,
                None => match inner.seqs.get(&key).map_err(port)? {
                    Some(v) => i64::from_be_bytes(v.as_ref().try_into().map_err(|_| PortError("corrupt seq".into()))?),
                    None => 0,
                },
            };
            if it.seq <= last {
                continue;
            }
            staged.insert(key.clone(), it.seq);
            batch.insert(&inner.seqs, key, it.seq.to_be_bytes().to_vec());
            for u in &it.add_members {
                batch.insert(&inner.members, k3(&it.workspace_id, &it.channel_id, u), Vec::new());
                batch.insert(&inner.user_channels, k3(&it.workspace_id, u, &it.channel_id), Vec::new());
            }
            for u in &it.remove_members {
                batch.remove(&inner.members, k3(&it.workspace_id, &it.channel_id, u));
                batch.remove(&inner.user_channels, k3(&it.workspace_id, u, &it.channel_id));
            }
            fresh.push(it.clone());
        }
        batch.commit().map_err(port)?;
        if fresh.is_empty() {
            return Ok(0);
        }
        {
            let mut streams = inner.streams.lock().expect("fanout lock");
            for it in &fresh {
                let s = streams.entry(it.workspace_id).or_default();
                s.next_id += 1;
                let id = s.next_id;
                s.entries.push_back((
                    id,
                    FanoutEntry {
                        workspace_id: it.workspace_id,
                        stream_id: format!("{id}-0"),
                        channel_id: it.channel_id,
                        seq: it.seq,
                        frame_json: it.frame_json.clone(),
                        add_members: it.add_members.clone(),
                        remove_members: it.remove_members.clone(),
                        ts: it.ts,
                        ephemeral_from: None,
                    },
                ));
                while s.entries.len() > inner.max_len {
                    s.entries.pop_front();
                }
            }
        }
        inner.written.send_modify(|n| *n += 1);
        Ok(fresh.len())
    }

    async fn user_channels(&self, ws: &Uuid, user: &Uuid) -> PortResult<Vec<Uuid>> {
        let prefix = k2(ws, user);
        let mut out = Vec::new();
        for g in self.inner.user_channels.prefix(&prefix) {
            let k = g.key().map_err(port)?;
            out.push(Uuid::from_slice(&k[32..48]).map_err(port)?);
        }
        Ok(out)
    }

    async fn is_member(&self, ws: &Uuid, ch: &Uuid, user: &Uuid) -> PortResult<bool> {
        self.inner.members.contains_key(k3(ws, ch, user)).map_err(port)
    }

    async fn publish_ephemeral(&self, ws: &Uuid, ch: &Uuid, from: &Uuid, frame_json: &str) -> PortResult<()> {
        {
            let mut streams = self.inner.streams.lock().expect("fanout lock");
            let s = streams.entry(*ws).or_default();
            s.next_id += 1;
            let id = s.next_id;
            s.entries.push_back((
                id,
                FanoutEntry {
                    workspace_id: *ws,
                    stream_id: format!("{id}-0"),
                    channel_id: *ch,
                    seq: 0,
                    frame_json: frame_json.to_string(),
                    add_members: vec![],
                    remove_members: vec![],
                    ts: chrono::Utc::now().timestamp_millis(),
                    ephemeral_from: Some(*from),
                },
            ));
            while s.entries.len() > self.inner.max_len {
                s.entries.pop_front();
            }
        }
        self.inner.written.send_modify(|n| *n += 1);
        Ok(())
    }

    async fn last_id(&self, ws: &Uuid) -> PortResult<String> {
        let streams = self.inner.streams.lock().expect("fanout lock");
        Ok(format!("{}-0", streams.get(ws).map(|s| s.next_id).unwrap_or(0)))
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }

    async fn reader(&self) -> PortResult<Box<dyn FanoutStream>> {
        Ok(Box::new(Reader { inner: self.inner.clone(), wake: self.inner.written.subscribe() }))
    }
}

struct Reader {
    inner: Arc<Inner>,
    wake: watch::Receiver<u64>,
}

impl Reader {
    fn collect(&self, from: &[(Uuid, String)], count: usize) -> Vec<FanoutEntry> {
        let streams = self.inner.streams.lock().expect("fanout lock");
        let mut out = Vec::new();
        for (ws, after) in from {
            let after = parse_id(after);
            if let Some(s) = streams.get(ws) {
                for (id, e) in s.entries.iter() {
                    if *id > after {
                        out.push(e.clone());
                        if out.len() >= count {
                            return out;
                        }
                    }
                }
            }
        }
        out
    }
}

#[async_trait]
impl FanoutStream for Reader {
    async fn read(&mut self, from: &[(Uuid, String)], block_ms: usize, count: usize) -> PortResult<Vec<FanoutEntry>> {
        self.wake.borrow_and_update();
        let out = self.collect(from, count);
        if !out.is_empty() {
            return Ok(out);
        }
        let _ = tokio::time::timeout(Duration::from_millis(block_ms as u64), self.wake.changed()).await;
        Ok(self.collect(from, count))
    }
}
