//! The keyring: seals events' sensitive fields before they reach the log and opens them when
//! they are read, with the [`KeyStore`] behind it and two bounded, short-lived caches. Every
//! process that writes or reads events goes through it, by way of [`SealingLog`] (ingest) and
//! [`OpeningSource`] (projectors, the notifier, replays): components never see a sealed box.
//! Commands are sealed too, under transit keys destroyed once they are sequenced
//! ([`transit`]: [`SealingSink`] in distributed gateways, opened by [`SealingLog`]).
//!
//! A field whose key is gone (destroyed by a delete, an edit, retention or the workspace's
//! deletion) opens as blank and is listed in [`Sealing::redacted`]: an explicit marker, never an
//! error. A box that does not open with a key that exists is an error (altered bytes), and a
//! workspace key the master key does not open is fatal (the wrong master key is configured:
//! nothing may be taken for erased because of it).

mod transit;

pub use transit::SealingSink;

use async_trait::async_trait;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::event::{Event, Payload, Sealing};
use crate::ports::{
    CommandRecord, DeadRecord, EventRecord, EventSource, KeyStore, PortError, PortResult, SequencerLog,
};
use crate::sealing::{
    box_context, data_key_context, open, seal, unwrap_key, workspace_key_context, wrap_key, KeyWrapper, SealedBox,
    SealedField, SecretKey,
};

/// How long a key stays cached. A key destroyed in another process stays usable here at most
/// this long; the process that destroys a key drops it at once.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
/// Keys cached per process, at most (each cache).
pub const KEY_CACHE_ENTRIES: usize = 100_000;

/// A map bounded in size and in the age of its entries; when full it drops what expired, then
/// everything (keys are cheap to fetch again, never lost: the store holds them).
struct BoundedCache<K, V> {
    entries: HashMap<K, (Instant, V)>,
}

impl<K: Eq + Hash + Copy, V: Clone> BoundedCache<K, V> {
    fn new() -> Self {
        Self { entries: HashMap::new() }
    }
    fn get(&mut self, key: &K) -> Option<V> {
        match self.entries.get(key) {
            Some((at, v)) if at.elapsed() < KEY_CACHE_TTL => Some(v.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }
    fn insert(&mut self, key: K, value: V) {
        if self.entries.len() >= KEY_CACHE_ENTRIES {
            self.entries.retain(|_, (at, _)| at.elapsed() < KEY_CACHE_TTL);
            if self.entries.len() >= KEY_CACHE_ENTRIES {
                self.entries.clear();
            }
        }
        self.entries.insert(key, (Instant::now(), value));
    }
    fn remove(&mut self, key: &K) {
        self.entries.remove(key);
    }
    fn remove_where(&mut self, mut drop: impl FnMut(&K) -> bool) {
        self.entries.retain(|k, _| !drop(k));
    }
}

/// The longest a key store call may take: past it the call fails as transient, so a key store
/// that stops answering makes ingest and the readers unready and retry, rather than hang (a
/// driver's own timeout can be 30 s).
pub const KEY_STORE_TIMEOUT: Duration = Duration::from_secs(5);

async fn bounded<T>(call: impl std::future::Future<Output = PortResult<T>>) -> PortResult<T> {
    match tokio::time::timeout(KEY_STORE_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => {
            let secs = KEY_STORE_TIMEOUT.as_secs();
            Err(PortError::transient(format!("the key store did not answer within {secs} s")))
        }
    }
}

/// The fields of an event that are sealed, each with the id of the key it goes under and
/// whether that key is made for it (a text version's) or already exists (a file's, made when
/// the file was shared).
fn sealed_fields(event: &Event) -> Vec<(SealedField, Uuid, bool)> {
    match &event.payload {
        Payload::MessagePosted { attachments, .. } => std::iter::once((SealedField::Text, event.event_id, true))
            .chain(attachments.iter().map(|a| (SealedField::FileName(a.file_id), a.file_id, false)))
            .collect(),
        Payload::MessageEdited { .. } => vec![(SealedField::Text, event.event_id, true)],
        Payload::FileShared { file } => vec![(SealedField::FileName(file.file_id), file.file_id, true)],
        _ => Vec::new(),
    }
}

/// The payload's value of `field`, if it has that field.
fn field_mut(payload: &mut Payload, field: SealedField) -> Option<&mut String> {
    match (payload, field) {
        (Payload::MessagePosted { text, .. } | Payload::MessageEdited { text, .. }, SealedField::Text) => Some(text),
        (Payload::FileShared { file }, SealedField::FileName(id)) if file.file_id == id => Some(&mut file.name),
        (Payload::MessagePosted { attachments, .. }, SealedField::FileName(id)) => {
            attachments.iter_mut().find(|a| a.file_id == id).map(|a| &mut a.name)
        }
        _ => None,
    }
}

pub struct Keyring {
    store: Arc<dyn KeyStore>,
    master: Arc<dyn KeyWrapper>,
    workspace_keys: Mutex<BoundedCache<Uuid, SecretKey>>,
    data_keys: Mutex<BoundedCache<(Uuid, Uuid), SecretKey>>,
}

impl Keyring {
    pub fn new(store: Arc<dyn KeyStore>, master: Arc<dyn KeyWrapper>) -> Self {
        Self {
            store,
            master,
            workspace_keys: Mutex::new(BoundedCache::new()),
            data_keys: Mutex::new(BoundedCache::new()),
        }
    }

    /// The workspace's key; with `create`, made if it has none. `None`: it has none (destroyed).
    async fn workspace_key(&self, workspace_id: Uuid, create: bool) -> PortResult<Option<SecretKey>> {
        if let Some(key) = self.workspace_keys.lock().unwrap_or_else(PoisonError::into_inner).get(&workspace_id) {
            return Ok(Some(key));
        }
        let context = workspace_key_context(&workspace_id);
        let wrapped = match bounded(self.store.workspace_key(workspace_id)).await? {
            Some(wrapped) => wrapped,
            None if create => {
                let fresh = self.master.wrap(&context, &SecretKey::generate()).await.map_err(master_refused)?;
                bounded(self.store.create_workspace_key(workspace_id, fresh)).await?
            }
            None => return Ok(None),
        };
        let key = self.master.unwrap(&context, &wrapped).await.map_err(master_refused)?;
        self.workspace_keys.lock().unwrap_or_else(PoisonError::into_inner).insert(workspace_id, key.clone());
        Ok(Some(key))
    }

    /// Seals the texts and file names of `events`: a text under a new data key (its id: the
    /// event's id), a file's name under the file's key (made when it is shared). New keys are
    /// stored first: an event is never committed without its keys, and never in plain text.
    /// Events already sealed are left as they are.
    pub async fn seal(&self, events: &mut [&mut Event]) -> PortResult<()> {
        let plans: Vec<Vec<(SealedField, Uuid, bool)>> =
            events.iter().map(|e| if e.sealing.boxes.is_empty() { sealed_fields(e) } else { Vec::new() }).collect();
        let mut per_workspace: HashMap<Uuid, (Vec<Uuid>, Vec<Uuid>)> = HashMap::new();
        for (event, plan) in events.iter().zip(&plans) {
            let (new, existing) = per_workspace.entry(event.workspace_id).or_default();
            for (_, key_id, is_new) in plan {
                if *is_new {
                    new.push(*key_id)
                } else {
                    existing.push(*key_id)
                }
            }
        }
        let mut keys: HashMap<(Uuid, Uuid), SecretKey> = HashMap::new();
        for (ws, (mut new, mut existing)) in per_workspace {
            if new.is_empty() && existing.is_empty() {
                continue;
            }
            let ws_key = self
                .workspace_key(ws, true)
                .await?
                .ok_or_else(|| PortError::transient(format!("workspace {ws}'s key neither found nor created")))?;
            // a file shared in this very batch is attached with the key made for it here
            existing.retain(|id| !new.contains(id));
            let found = if existing.is_empty() { HashMap::new() } else { self.data_keys(ws, existing.clone()).await? };
            // a file shared before texts were sealed has no key yet: it gets one now (once)
            new.extend(existing.iter().filter(|id| !found.contains_key(id)));
            new.sort_unstable();
            new.dedup();
            let mut wrapped = Vec::new();
            for id in new {
                let key = SecretKey::generate();
                wrapped.push((id, wrap_key(&ws_key, &data_key_context(&ws, &id), &key)));
                keys.insert((ws, id), key);
            }
            keys.extend(found.into_iter().map(|(id, key)| ((ws, id), key)));
            if !wrapped.is_empty() {
                bounded(self.store.put_data_keys(ws, wrapped)).await?;
            }
        }
        let mut cache = self.data_keys.lock().unwrap_or_else(PoisonError::into_inner);
        for (event, plan) in events.iter_mut().zip(plans) {
            let ws = event.workspace_id;
            for (field, key_id, _) in plan {
                let missing =
                    || PortError::invalid(format!("sealing the {} of event {}", field.label(), event.event_id));
                let key = keys.get(&(ws, key_id)).ok_or_else(missing)?;
                let plain = std::mem::take(field_mut(&mut event.payload, field).ok_or_else(missing)?);
                let (nonce, ciphertext) = seal(key, &box_context(&ws, &key_id, field), plain.as_bytes());
                event.sealing.boxes.push(SealedBox { key_id, field, nonce, ciphertext });
                cache.insert((ws, key_id), key.clone());
            }
        }
        Ok(())
    }

    /// The data keys `wanted` of one workspace that still exist.
    async fn data_keys(&self, ws: Uuid, wanted: Vec<Uuid>) -> PortResult<HashMap<Uuid, SecretKey>> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let mut cache = self.data_keys.lock().unwrap_or_else(PoisonError::into_inner);
            for id in wanted {
                match cache.get(&(ws, id)) {
                    Some(key) => {
                        found.insert(id, key);
                    }
                    None => missing.push(id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let Some(ws_key) = self.workspace_key(ws, false).await? else { return Ok(found) };
        let wrapped = bounded(self.store.data_keys(ws, &missing)).await?;
        let mut cache = self.data_keys.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, wrapped) in wrapped {
            let key = unwrap_key(&ws_key, &data_key_context(&ws, &id), &wrapped)
                .map_err(|e| PortError::invalid(format!("data key {id} of workspace {ws}: {e}")))?;
            cache.insert((ws, id), key.clone());
            found.insert(id, key);
        }
        Ok(found)
    }

    /// Opens every sealed event in place: each box's field is filled in, or, if its key is
    /// gone, left blank and listed as redacted. Returns, per event, whether a box was altered
    /// (it opens with no key: such an event must not be applied).
    pub async fn open(&self, events: &mut [&mut Event]) -> PortResult<Vec<Result<(), PortError>>> {
        let mut wanted: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for event in events.iter() {
            for b in &event.sealing.boxes {
                wanted.entry(event.workspace_id).or_default().push(b.key_id);
            }
        }
        let mut keys = HashMap::new();
        for (ws, ids) in wanted {
            keys.insert(ws, self.data_keys(ws, ids).await?);
        }
        Ok(events
            .iter_mut()
            .map(|event| match keys.get(&event.workspace_id) {
                Some(keys) => open_boxes(event, keys),
                None => Ok(()),
            })
            .collect())
    }

    /// Opens sealed fields of one workspace for a reader outside the pipeline (a data team):
    /// each box's text, `None` when its key is gone (redacted), or an error for a box that does
    /// not open with its key (altered).
    pub async fn open_fields(
        &self,
        workspace_id: Uuid,
        boxes: &[SealedBox],
    ) -> PortResult<Vec<Result<Option<String>, PortError>>> {
        let keys = self.data_keys(workspace_id, boxes.iter().map(|b| b.key_id).collect()).await?;
        Ok(boxes
            .iter()
            .map(|b| {
                let Some(key) = keys.get(&b.key_id) else { return Ok(None) };
                let what = || format!("the {} sealed under {}", b.field.label(), b.key_id);
                let plain = open(key, &box_context(&workspace_id, &b.key_id, b.field), &b.nonce, &b.ciphertext)
                    .map_err(|e| PortError::invalid(format!("{}: {e}", what())))?;
                String::from_utf8(plain).map(Some).map_err(|_| PortError::invalid(format!("{} is not UTF-8", what())))
            })
            .collect())
    }

    /// Removes expired keys' bytes (see [`KeyStore::sweep_expired`]).
    pub async fn sweep_expired(&self) -> PortResult<u64> {
        bounded(self.store.sweep_expired()).await
    }

    /// Checks the key store answers (for readiness).
    pub async fn check(&self) -> PortResult<()> {
        bounded(self.store.workspace_key(Uuid::nil())).await.map(|_| ())
    }

    /// Destroys data keys for good, here and in the store.
    pub async fn destroy(&self, workspace_id: Uuid, key_ids: &[Uuid]) -> PortResult<()> {
        bounded(self.store.destroy_data_keys(workspace_id, key_ids)).await?;
        let mut cache = self.data_keys.lock().unwrap_or_else(PoisonError::into_inner);
        for id in key_ids {
            cache.remove(&(workspace_id, *id));
        }
        Ok(())
    }
}

impl Keyring {
    /// Destroys a deleted workspace's key for good, here and in the store: every data key it
    /// wrapped, and so every text and file name of the workspace, is unreadable.
    pub async fn destroy_workspace(&self, workspace_id: Uuid) -> PortResult<()> {
        bounded(self.store.destroy_workspace_key(workspace_id)).await?;
        self.workspace_keys.lock().unwrap_or_else(PoisonError::into_inner).remove(&workspace_id);
        self.data_keys.lock().unwrap_or_else(PoisonError::into_inner).remove_where(|(ws, _)| *ws == workspace_id);
        Ok(())
    }
}

/// Fills in the boxes of one event from `keys` (a workspace's existing data keys).
fn open_boxes(event: &mut Event, keys: &HashMap<Uuid, SecretKey>) -> Result<(), PortError> {
    let ws = event.workspace_id;
    let Sealing { boxes, redacted, .. } = &mut event.sealing;
    for b in std::mem::take(boxes) {
        let Some(key) = keys.get(&b.key_id) else {
            redacted.push(b.field);
            continue;
        };
        let what = || format!("the {} of event {}", b.field.label(), event.event_id);
        let plain = open(key, &box_context(&ws, &b.key_id, b.field), &b.nonce, &b.ciphertext)
            .map_err(|e| PortError::invalid(format!("{}: {e}", what())))?;
        let plain = String::from_utf8(plain).map_err(|_| PortError::invalid(format!("{} is not UTF-8", what())))?;
        let field = field_mut(&mut event.payload, b.field)
            .ok_or_else(|| PortError::invalid(format!("{}: the event has no such field", what())))?;
        *field = plain;
    }
    Ok(())
}

fn master_refused(e: crate::sealing::SealError) -> PortError {
    PortError::fatal(format!("the master key does not open a workspace key ({e}): is `keys.master_key_file` the one this deployment was set up with?"))
}

/// Ingest's log with sealing: every event is sealed before it is committed, and sealed
/// commands are opened as they are read; their transit keys are destroyed once committed.
pub struct SealingLog {
    inner: Box<dyn SequencerLog>,
    keyring: Arc<Keyring>,
    /// Transit keys of the commands read and not yet committed, per workspace.
    transit: HashMap<Uuid, Vec<Uuid>>,
    /// The destruction of the last committed batch's transit keys, running while the next
    /// batch is read and decided (it is off the path of every message); it yields the keys the
    /// store refused, to try again.
    destroying: Option<tokio::task::JoinHandle<HashMap<Uuid, Vec<Uuid>>>>,
}

impl SealingLog {
    pub fn new(inner: Box<dyn SequencerLog>, keyring: Arc<Keyring>) -> Self {
        Self { inner, keyring, transit: HashMap::new(), destroying: None }
    }

    /// Starts destroying the transit keys of the commands just committed, with those the store
    /// refused last time (a key left behind by a crash expires by its TTL). One destruction
    /// runs at a time: the previous one is awaited first.
    async fn destroy_transit_keys(&mut self) {
        let mut due = std::mem::take(&mut self.transit);
        if let Some(previous) = self.destroying.take() {
            for (ws, ids) in previous.await.unwrap_or_default() {
                due.entry(ws).or_default().extend(ids);
            }
        }
        if due.is_empty() {
            return;
        }
        let keyring = self.keyring.clone();
        self.destroying = Some(tokio::spawn(async move {
            let mut refused = HashMap::new();
            for (ws, ids) in due {
                if let Err(e) = keyring.destroy(ws, &ids).await {
                    tracing::warn!(workspace_id = %ws, keys = ids.len(), error = %e, "transit keys not destroyed yet");
                    refused.insert(ws, ids);
                }
            }
            refused
        }));
    }
}

#[async_trait]
impl SequencerLog for SealingLog {
    async fn next_batch(&mut self, max: usize) -> PortResult<Vec<CommandRecord>> {
        let mut batch = self.inner.next_batch(max).await?;
        for (ws, ids) in self.keyring.open_commands(&mut batch).await? {
            self.transit.entry(ws).or_default().extend(ids);
        }
        Ok(batch)
    }
    /// Ingest's state needs no text, only the names of shared files (a message that attaches
    /// a file carries its name): those are opened, texts stay sealed.
    async fn load_partition(&mut self, partition: i32) -> PortResult<Vec<Event>> {
        let mut events = self.inner.load_partition(partition).await?;
        let mut shared: Vec<&mut Event> =
            events.iter_mut().filter(|e| matches!(e.payload, Payload::FileShared { .. })).collect();
        for verdict in self.keyring.open(&mut shared).await? {
            if let Err(e) = verdict {
                tracing::error!(partition, error = %e, "a shared file's name does not open; it stays blank");
            }
        }
        Ok(events)
    }
    async fn commit(
        &mut self,
        mut events: Vec<(i32, Event)>,
        replies: Vec<crate::command::Reply>,
        offsets: Vec<(i32, i64)>,
    ) -> PortResult<()> {
        let mut to_seal: Vec<&mut Event> = events.iter_mut().map(|(_, e)| e).collect();
        self.keyring.seal(&mut to_seal).await?;
        self.inner.commit(events, replies, offsets).await?;
        self.destroy_transit_keys().await;
        Ok(())
    }
    fn take_revoked(&mut self) -> Vec<i32> {
        self.inner.take_revoked()
    }
}

/// An events source whose events come out opened. A batch that could not be opened (the key
/// store away) is kept and opened again on the next call, so nothing read is ever skipped.
pub struct OpeningSource {
    inner: Box<dyn EventSource>,
    keyring: Arc<Keyring>,
    pending: Option<Vec<EventRecord>>,
}

impl OpeningSource {
    pub fn new(inner: Box<dyn EventSource>, keyring: Arc<Keyring>) -> Self {
        Self { inner, keyring, pending: None }
    }
}

/// Opens a batch's sealed events in place; those with an altered box become dead records.
async fn open_batch(keyring: &Keyring, batch: &mut [EventRecord]) -> PortResult<()> {
    let mut events: Vec<&mut Event> =
        batch.iter_mut().filter_map(|r| r.event.as_mut().ok()).filter(|e| !e.sealing.boxes.is_empty()).collect();
    if events.is_empty() {
        return Ok(());
    }
    let verdicts = keyring.open(&mut events).await?;
    // events with an altered box become dead records (their bytes stay in the log)
    let mut altered: HashMap<Uuid, PortError> =
        events.iter().zip(verdicts).filter_map(|(e, v)| v.err().map(|err| (e.event_id, err))).collect();
    for record in batch.iter_mut() {
        let Ok(event) = &record.event else { continue };
        if let Some(error) = altered.remove(&event.event_id) {
            let payload = event.event_id.to_string().into_bytes();
            record.event = Err(DeadRecord { error, payload });
        }
    }
    Ok(())
}

#[async_trait]
impl EventSource for OpeningSource {
    async fn next_batch(&mut self, max: usize, wait: Option<Duration>) -> PortResult<Vec<EventRecord>> {
        let mut batch = match self.pending.take() {
            Some(batch) => batch,
            None => self.inner.next_batch(max, wait).await?,
        };
        if let Err(e) = open_batch(&self.keyring, &mut batch).await {
            self.pending = Some(batch);
            return Err(e);
        }
        Ok(batch)
    }
    async fn positions(&mut self) -> PortResult<Vec<(i32, i64)>> {
        self.inner.positions().await
    }
    async fn end_offsets(&mut self) -> PortResult<Vec<(i32, i64)>> {
        self.inner.end_offsets().await
    }
    fn ack_returned(&mut self) -> PortResult<()> {
        self.inner.ack_returned()
    }
    async fn commit(&mut self, wait: bool) -> PortResult<()> {
        self.inner.commit(wait).await
    }
    async fn lag(&mut self) -> Option<i64> {
        self.inner.lag().await
    }
    fn reachable(&self) -> Result<(), String> {
        self.inner.reachable()
    }
    async fn dead_letter(&mut self, partition: i32, offset: i64, record: &DeadRecord) -> PortResult<()> {
        self.inner.dead_letter(partition, offset, record).await
    }
}
