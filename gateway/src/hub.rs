//! Local connections and their channel subscriptions. A fanout entry is serialized once and the
//! same bytes are queued to every subscribed socket; a socket whose queue is full is closed
//! (slow consumer) instead of slowing the others.

use axum::extract::ws::Utf8Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::writer::Out;

pub type ConnId = u64;

/// Close codes of sockets whose token stopped working (the client gets a new token and
/// reconnects; see docs/asyncapi.yaml).
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;
pub const CLOSE_TOKEN_REVOKED: u16 = 4003;

pub struct ConnHandle {
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub tx: mpsc::Sender<Out>,
    /// Notified when the hub wants the socket closed (slow consumer).
    pub kill: Arc<Notify>,
    /// When the socket's token was issued (Unix seconds): a revocation covering it closes it.
    pub token_issued_at: i64,
}

/// A user's socket slot on this gateway (see [`Hub::take_user_slot`]).
pub struct UserSlot {
    hub: Arc<Hub>,
    key: (Uuid, Uuid),
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut slots = self.hub.user_slots.lock().expect("hub lock");
        if let Some(taken) = slots.get_mut(&self.key) {
            *taken -= 1;
            if *taken == 0 {
                slots.remove(&self.key);
            }
        }
    }
}

#[derive(Default)]
struct Index {
    conns: HashMap<ConnId, ConnHandle>,
    by_channel: HashMap<(Uuid, Uuid), HashSet<ConnId>>,
    by_user: HashMap<(Uuid, Uuid), HashSet<ConnId>>,
    channels_of: HashMap<ConnId, HashSet<(Uuid, Uuid)>>,
    per_workspace: HashMap<Uuid, usize>,
}

pub struct Hub {
    index: RwLock<Index>,
    /// Sockets per user, counted from before the upgrade to the socket's end ([`UserSlot`]).
    user_slots: Mutex<HashMap<(Uuid, Uuid), usize>>,
    /// Workspaces the fanout reader should start following, with the stream id to start after.
    follow: Mutex<Vec<(Uuid, String)>>,
    unfollow: Mutex<Vec<Uuid>>,
    metrics: Metrics,
}

impl Hub {
    pub fn new(metrics: Metrics) -> Arc<Self> {
        Arc::new(Self {
            index: RwLock::default(),
            user_slots: Mutex::default(),
            follow: Mutex::default(),
            unfollow: Mutex::default(),
            metrics,
        })
    }

    /// One of `cap` socket slots of a user on this gateway, or `None` when all are taken. Taken
    /// and counted in one step, before the upgrade, so upgrades arriving together cannot pass
    /// the cap; the slot is given back when dropped (the socket's end).
    pub fn take_user_slot(self: &Arc<Self>, ws: Uuid, user: Uuid, cap: usize) -> Option<UserSlot> {
        let mut slots = self.user_slots.lock().expect("hub lock");
        let taken = slots.entry((ws, user)).or_insert(0);
        if *taken >= cap {
            return None;
        }
        *taken += 1;
        Some(UserSlot { hub: self.clone(), key: (ws, user) })
    }

    /// Closes (4003) the sockets of `user` whose tokens were issued at or before
    /// `revoked_before`; returns how many.
    pub fn close_revoked(&self, ws: Uuid, user: Uuid, revoked_before: i64) -> usize {
        let ix = self.index.read().expect("hub lock");
        let Some(ids) = ix.by_user.get(&(ws, user)) else { return 0 };
        let mut closed = 0;
        for h in ids.iter().filter_map(|id| ix.conns.get(id)).filter(|h| h.token_issued_at <= revoked_before) {
            // a full queue cannot take the close frame: the socket is cut instead
            if h.tx.try_send(Out::Close(CLOSE_TOKEN_REVOKED, "token revoked")).is_err() {
                h.kill.notify_one();
            }
            closed += 1;
        }
        closed
    }

    /// Closes every connection of a deleted workspace (4003); returns how many.
    pub fn close_workspace(&self, ws: Uuid) -> usize {
        let ix = self.index.read().expect("hub lock");
        let mut closed = 0;
        for h in ix.conns.values().filter(|h| h.workspace_id == ws) {
            if h.tx.try_send(Out::Close(CLOSE_TOKEN_REVOKED, "workspace deleted")).is_err() {
                h.kill.notify_one();
            }
            closed += 1;
        }
        closed
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.index.read().expect("hub lock").conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a connection; returns true if it is the first of its workspace on this gateway.
    pub fn register(&self, id: ConnId, handle: ConnHandle) -> bool {
        let mut ix = self.index.write().expect("hub lock");
        let key = (handle.workspace_id, handle.user_id);
        let n = ix.per_workspace.entry(handle.workspace_id).or_insert(0);
        *n += 1;
        let first = *n == 1;
        ix.by_user.entry(key).or_default().insert(id);
        ix.conns.insert(id, handle);
        self.metrics.connections.inc();
        first
    }

    pub fn unregister(&self, id: ConnId) {
        let mut ix = self.index.write().expect("hub lock");
        let Some(h) = ix.conns.remove(&id) else { return };
        self.metrics.connections.dec();
        if let Some(set) = ix.by_user.get_mut(&(h.workspace_id, h.user_id)) {
            set.remove(&id);
            if set.is_empty() {
                ix.by_user.remove(&(h.workspace_id, h.user_id));
            }
        }
        for key in ix.channels_of.remove(&id).unwrap_or_default() {
            if let Some(set) = ix.by_channel.get_mut(&key) {
                set.remove(&id);
                if set.is_empty() {
                    ix.by_channel.remove(&key);
                }
            }
        }
        if let Some(n) = ix.per_workspace.get_mut(&h.workspace_id) {
            *n -= 1;
            if *n == 0 {
                ix.per_workspace.remove(&h.workspace_id);
                self.unfollow.lock().expect("hub lock").push(h.workspace_id);
            }
        }
    }

    pub fn subscribe(&self, id: ConnId, ws: Uuid, channels: impl IntoIterator<Item = Uuid>) {
        let mut ix = self.index.write().expect("hub lock");
        if !ix.conns.contains_key(&id) {
            return;
        }
        for ch in channels {
            ix.by_channel.entry((ws, ch)).or_default().insert(id);
            ix.channels_of.entry(id).or_default().insert((ws, ch));
        }
    }

    pub fn is_subscribed(&self, id: ConnId, ws: Uuid, ch: Uuid) -> bool {
        self.index.read().expect("hub lock").channels_of.get(&id).is_some_and(|s| s.contains(&(ws, ch)))
    }

    /// Asks the fanout reader to follow a workspace from `after_id` (if it does not already).
    pub fn follow(&self, ws: Uuid, after_id: String) {
        self.follow.lock().expect("hub lock").push((ws, after_id));
    }

    pub fn take_follow_changes(&self) -> (Vec<(Uuid, String)>, Vec<Uuid>) {
        let f = std::mem::take(&mut *self.follow.lock().expect("hub lock"));
        let u = std::mem::take(&mut *self.unfollow.lock().expect("hub lock"));
        (f, u)
    }

    /// Workspaces with a connection here.
    pub fn workspaces(&self) -> Vec<Uuid> {
        self.index.read().expect("hub lock").per_workspace.keys().copied().collect()
    }

    pub fn has_workspace(&self, ws: &Uuid) -> bool {
        self.index.read().expect("hub lock").per_workspace.contains_key(ws)
    }

    /// Sends a frame to one connection (replies, errors). False if it is gone or full.
    pub fn send_to(&self, id: ConnId, frame: Utf8Bytes) -> bool {
        let ix = self.index.read().expect("hub lock");
        let Some(h) = ix.conns.get(&id) else { return false };
        self.offer(h, Out::Frame(frame))
    }

    fn offer(&self, h: &ConnHandle, frame: Out) -> bool {
        match h.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.slow_disconnects.inc();
                h.kill.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Delivers an ephemeral frame (typing) to the channel's subscribed sockets, except
    /// `from`'s own.
    pub fn dispatch_ephemeral(&self, ws: Uuid, ch: Uuid, from: Uuid, frame: Utf8Bytes) -> usize {
        self.deliver(ws, ch, Some(from), None, frame)
    }

    /// Applies a fanout entry: membership changes first, then delivery to every subscribed
    /// socket. The publisher writes each `(channel, seq)` once and the reader only moves
    /// forward, so entries need no deduplication here.
    pub fn dispatch(
        &self,
        ws: Uuid,
        ch: Uuid,
        seq: i64,
        add_members: &[Uuid],
        remove_members: &[Uuid],
        frame: Utf8Bytes,
    ) -> usize {
        if !add_members.is_empty() {
            let mut ix = self.index.write().expect("hub lock");
            let ids: Vec<ConnId> =
                add_members.iter().flat_map(|u| ix.by_user.get(&(ws, *u)).into_iter().flatten().copied()).collect();
            for id in ids {
                ix.by_channel.entry((ws, ch)).or_default().insert(id);
                ix.channels_of.entry(id).or_default().insert((ws, ch));
            }
        }
        let n = self.deliver(ws, ch, None, Some(seq), frame);
        if !remove_members.is_empty() {
            // after delivery: the one who left (or was removed) learns it, then hears no more
            let mut ix = self.index.write().expect("hub lock");
            let ids: Vec<ConnId> =
                remove_members.iter().flat_map(|u| ix.by_user.get(&(ws, *u)).into_iter().flatten().copied()).collect();
            for id in ids {
                if let Some(set) = ix.by_channel.get_mut(&(ws, ch)) {
                    set.remove(&id);
                }
                if let Some(set) = ix.channels_of.get_mut(&id) {
                    set.remove(&(ws, ch));
                }
            }
        }
        n
    }

    /// Queues the same bytes to every socket subscribed to the channel (under the read lock).
    fn deliver(&self, ws: Uuid, ch: Uuid, skip_user: Option<Uuid>, seq: Option<i64>, frame: Utf8Bytes) -> usize {
        let ix = self.index.read().expect("hub lock");
        let Some(subs) = ix.by_channel.get(&(ws, ch)) else { return 0 };
        let mut n = 0;
        let event = seq.map(|seq| Arc::new(crate::writer::ChannelEvent { channel: ch, seq, frame: frame.clone() }));
        for h in subs.iter().filter_map(|id| ix.conns.get(id)) {
            let item = match &event {
                Some(e) => Out::Event(e.clone()),
                None => Out::Frame(frame.clone()),
            };
            if Some(h.user_id) != skip_user && self.offer(h, item) {
                n += 1;
            }
        }
        self.metrics.delivered.inc_by(n as u64);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_socket_slots_are_taken_at_once_and_given_back_on_drop() {
        let hub = Hub::new(Metrics::default());
        let (ws, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        // upgrades that have not registered a connection yet still hold their slots
        let first = hub.take_user_slot(ws, alice, 2).expect("first slot");
        let _second = hub.take_user_slot(ws, alice, 2).expect("second slot");
        assert!(hub.take_user_slot(ws, alice, 2).is_none(), "a third upgrade at the same time is refused");
        assert!(hub.take_user_slot(ws, bob, 2).is_some(), "another user is not affected");
        drop(first);
        assert!(hub.take_user_slot(ws, alice, 2).is_some(), "a slot given back can be taken again");
    }
}
