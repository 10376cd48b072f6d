use confab_core::event::{Event, Payload};
use confab_core::files::{object_key, FileRecord};
use confab_core::ports::{
    BlobStore, ChannelChange, ChannelInfo, MessageUpdate, PortError, Store, ThreadSummary, MAX_RETENTION_SECS,
};
use confab_core::unread::RecentActivity;
use confab_core::views::posted_row;
use futures::stream::{self, TryStreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::deleted::DeletedWorkspaces;
use crate::Projection;

const CONCURRENCY: usize = 64;
/// How long a workspace's retention is taken as read (an admin may change it).
const RETENTION_READ_EVERY: Duration = Duration::from_secs(60);

pub struct TimelineProjection {
    store: Arc<dyn Store>,
    /// Each workspace's retention (the TTL of its rows) and when it was read.
    retention: Mutex<HashMap<Uuid, (Instant, i32)>>,
    /// Deleted workspaces, whose late or replayed events are skipped.
    deleted: DeletedWorkspaces,
    /// Where deleted files' bytes are removed from (none: only their records are marked).
    blobs: Option<Arc<dyn BlobStore>>,
}

impl TimelineProjection {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let deleted = DeletedWorkspaces::new(store.clone());
        Self { store, retention: Mutex::new(HashMap::new()), deleted, blobs: None }
    }

    /// Also deletes the bytes of deleted files from `blobs`.
    pub fn with_blobs(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// Revokes a file: its record is marked deleted (no more links), then its bytes go and
    /// stop counting against the workspace's storage quota.
    async fn delete_file(&self, ws: Uuid, file_id: Uuid) -> Result<(), PortError> {
        self.store.delete_file(ws, file_id).await?;
        if let Some(b) = &self.blobs {
            b.delete(&object_key(&ws, &file_id)).await?;
        }
        self.store.release_storage(ws, file_id).await
    }

    /// The TTL of the workspace's rows: its retention, read again after [`RETENTION_READ_EVERY`]
    /// (an admin may change it).
    async fn ttl(&self, ws: Uuid) -> Result<i32, PortError> {
        if let Some((at, t)) = self.retention.lock().expect("retention lock").get(&ws) {
            if at.elapsed() < RETENTION_READ_EVERY {
                return Ok(*t);
            }
        }
        // written before retention was bounded at the API: the most a TTL can be
        let t = self.store.workspace(ws).await?.map(|w| w.retention_secs).unwrap_or(0).clamp(0, MAX_RETENTION_SECS);
        let mut retention = self.retention.lock().expect("retention lock");
        if retention.len() >= 100_000 {
            retention.clear();
        }
        retention.insert(ws, (Instant::now(), t));
        Ok(t)
    }

    /// A deleted workspace: its rows, and the bytes of its files, go.
    async fn delete_workspace(&self, ws: Uuid) -> Result<(), PortError> {
        self.store.delete_timeline(ws).await?;
        if let Some(b) = &self.blobs {
            delete_blobs_under(b.as_ref(), &ws.to_string()).await?;
        }
        tracing::info!(workspace_id = %ws, "deleted workspace removed from the timeline");
        Ok(())
    }

    /// Each channel's summary for unread and mention counts, read and written once per batch
    /// (a channel's events come from one partition, so one projector instance writes it).
    async fn update_recent_activity(&self, events: &[Event]) -> Result<(), PortError> {
        let mut by_channel: HashMap<(Uuid, Uuid), Vec<&Event>> = HashMap::new();
        for e in events.iter().filter(|e| RecentActivity::is_affected_by(e)) {
            by_channel.entry((e.workspace_id, e.channel_id)).or_default().push(e);
        }
        stream::iter(by_channel.into_iter().map(Ok))
            .try_for_each_concurrent(CONCURRENCY, |((ws, ch), channel_events)| async move {
                let stored = self.store.recent_activity(ws, &[ch]).await?.pop().map(|(_, a)| a);
                let mut activity = stored.clone().unwrap_or_default();
                for e in channel_events {
                    activity.apply(e);
                }
                if stored.as_ref() == Some(&activity) {
                    return Ok(());
                }
                self.store.set_recent_activity(ws, ch, &activity).await
            })
            .await
    }

    async fn apply_one(&self, e: &Event) -> Result<(), PortError> {
        let (ws, ch) = (e.workspace_id, e.channel_id);
        let update = |id: Uuid, u: MessageUpdate| async move {
            let ttl = self.ttl(ws).await?;
            self.store.update_message(ws, ch, id, &u, ttl).await
        };
        let channel = |c: ChannelChange| async move { self.store.change_channel(ws, ch, &c).await };
        match &e.payload {
            Payload::MessagePosted { thread_ts, thread, .. } => {
                let ttl = self.ttl(ws).await?;
                self.store.insert_message(&posted_row(e).expect("a posted message"), ttl).await?;
                if let (Some(parent), Some(t)) = (thread_ts, thread) {
                    let view = ThreadSummary {
                        reply_count: t.reply_count,
                        reply_users: t.reply_users.clone(),
                        last_reply_at: e.occurred_at,
                    };
                    update(*parent, MessageUpdate::Thread(view)).await?;
                }
                Ok(())
            }
            Payload::MessageEdited { message_id, text } => {
                update(*message_id, MessageUpdate::Edit { text: text.clone(), edited_at: e.occurred_at }).await
            }
            Payload::MessageDeleted { message_id, file_ids } => {
                for f in file_ids {
                    self.delete_file(ws, *f).await?;
                }
                update(*message_id, MessageUpdate::Delete).await
            }
            Payload::FileShared { file } => {
                let record = FileRecord {
                    workspace_id: ws,
                    channel_id: ch,
                    uploader: e.actor_id,
                    created_at: e.occurred_at,
                    deleted: false,
                    file: file.clone(),
                };
                Ok(self.store.insert_file(&record).await?)
            }
            Payload::FileDeleted { file_id } => self.delete_file(ws, *file_id).await,
            Payload::ReactionChanged { message_id, emoji, users, .. } => {
                update(*message_id, MessageUpdate::Reactions { emoji: emoji.clone(), users: users.clone() }).await
            }
            Payload::MessagePinned { message_id, pinned } => {
                update(*message_id, MessageUpdate::Pin { pinned: *pinned }).await
            }
            Payload::ChannelCreated { name, kind, members } => {
                channel(ChannelChange::Created(ChannelInfo {
                    workspace_id: ws,
                    channel_id: ch,
                    name: name.clone(),
                    kind: *kind,
                    archived: false,
                    created_by: e.actor_id,
                    created_at: e.occurred_at,
                    members: members.clone(),
                    last_seq: e.seq,
                }))
                .await
            }
            Payload::MemberJoined { user_id } => channel(ChannelChange::Joined(*user_id)).await,
            Payload::MemberLeft { user_id } => channel(ChannelChange::Left(*user_id)).await,
            Payload::ChannelRenamed { name } => channel(ChannelChange::Renamed(name.clone())).await,
            Payload::ChannelArchived { archived } => channel(ChannelChange::Archived(*archived)).await,
            Payload::ReadMarked { read_seq } => Ok(self.store.set_read_marker(ws, e.actor_id, ch, *read_seq).await?),
            // the audit log is read from the log itself; a deletion removes the workspace
            Payload::AdminActed { .. } => match e.deleted_workspace() {
                Some(ws) => self.delete_workspace(ws).await,
                None => Ok(()),
            },
        }
    }
}

/// Top-level posts are independent upserts and may be written concurrently with their
/// neighbours; everything else changes an existing row and goes in log order.
fn independent(e: &Event) -> bool {
    matches!(e.payload, Payload::MessagePosted { thread_ts: None, .. })
}

impl Projection for TimelineProjection {
    fn name(&self) -> &'static str {
        "timeline"
    }

    async fn apply(&self, events: &[Event]) -> Result<(), PortError> {
        let events = self.deleted.live(events).await?;
        let events = &events[..];
        // new messages are independent upserts and may be written concurrently; changes to a
        // message must land after its insert and in order, so they wait for the posts before
        // them and go one at a time
        let mut i = 0;
        while i < events.len() {
            let j = events[i..].iter().position(|e| !independent(e)).map(|k| i + k).unwrap_or(events.len());
            stream::iter(events[i..j].iter().map(Ok))
                .try_for_each_concurrent(CONCURRENCY, |e| self.apply_one(e))
                .await?;
            if j < events.len() {
                self.apply_one(&events[j]).await?;
            }
            i = j + 1;
        }
        // each channel's position, once per batch (user streams of read markers and the
        // workspaces' audit streams are no channels)
        let mut last: HashMap<(Uuid, Uuid), i64> = HashMap::new();
        for e in events.iter().filter(|e| !matches!(e.payload, Payload::ReadMarked { .. }) && !e.is_audit()) {
            let seq = last.entry((e.workspace_id, e.channel_id)).or_default();
            *seq = (*seq).max(e.seq);
        }
        stream::iter(last.into_iter().map(Ok))
            .try_for_each_concurrent(CONCURRENCY, |((ws, ch), seq)| async move {
                self.store.change_channel(ws, ch, &ChannelChange::LastSeq(seq)).await
            })
            .await?;
        self.update_recent_activity(events).await
    }

    async fn check(&self) -> Result<(), PortError> {
        self.store.workspace(Uuid::nil()).await.map(|_| ())
    }
}

/// Deletes every object under `prefix`, page by page. A page listed again after its deletion
/// means the store does not delete (or lists stale): that fails as transient rather than
/// looping forever.
async fn delete_blobs_under(blobs: &dyn BlobStore, prefix: &str) -> Result<(), PortError> {
    let mut previous: Vec<String> = Vec::new();
    loop {
        let keys = blobs.written_before(prefix, std::time::SystemTime::now(), 1_000).await?;
        if keys.is_empty() {
            return Ok(());
        }
        if keys == previous {
            return Err(PortError::transient(format!(
                "the object store still lists {} (and {} more) after deleting them",
                keys[0],
                keys.len() - 1
            )));
        }
        for key in &keys {
            blobs.delete(key).await?;
        }
        previous = keys;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use confab_core::ports::{PortErrorKind, PortResult, UploadUrl};
    use std::collections::BTreeSet;
    use std::time::SystemTime;

    /// Object keys in memory; `deletes` says whether `delete` removes anything.
    struct Objects {
        keys: Mutex<BTreeSet<String>>,
        deletes: bool,
    }

    #[async_trait]
    impl BlobStore for Objects {
        async fn ensure_bucket(&self) -> PortResult<()> {
            Ok(())
        }
        async fn upload_url(&self, _: &str, _: u64, _: &str, _: Duration, _: &str) -> PortResult<UploadUrl> {
            unreachable!("not used by the deletion")
        }
        async fn download_url(&self, _: &str, _: &str, _: &str, _: Duration, _: &str) -> PortResult<String> {
            unreachable!("not used by the deletion")
        }
        async fn size(&self, _: &str) -> PortResult<Option<u64>> {
            unreachable!("not used by the deletion")
        }
        async fn delete(&self, key: &str) -> PortResult<()> {
            if self.deletes {
                self.keys.lock().unwrap().remove(key);
            }
            Ok(())
        }
        async fn promote(&self, _: &str, _: &str) -> PortResult<()> {
            unreachable!("not used by the deletion")
        }
        async fn written_before(&self, prefix: &str, _: SystemTime, max: usize) -> PortResult<Vec<String>> {
            let keys = self.keys.lock().unwrap();
            Ok(keys.iter().filter(|k| k.starts_with(prefix)).take(max).cloned().collect())
        }
    }

    fn objects(deletes: bool) -> Objects {
        let keys = (0..2_500).map(|n| format!("ws-a/{n}")).chain(["ws-b/kept".to_string()]).collect();
        Objects { keys: Mutex::new(keys), deletes }
    }

    #[tokio::test]
    async fn every_page_of_a_workspace_is_deleted_and_nothing_else() {
        let store = objects(true);
        delete_blobs_under(&store, "ws-a").await.unwrap();
        assert_eq!(store.keys.lock().unwrap().iter().collect::<Vec<_>>(), ["ws-b/kept"]);
    }

    #[tokio::test]
    async fn a_store_that_keeps_listing_deleted_objects_fails_instead_of_looping() {
        let store = objects(false);
        let error = tokio::time::timeout(Duration::from_secs(10), delete_blobs_under(&store, "ws-a"))
            .await
            .expect("the deletion ends")
            .unwrap_err();
        assert_eq!(error.kind(), PortErrorKind::Transient, "{error}");
    }
}
