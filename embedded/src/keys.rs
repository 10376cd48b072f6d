//! The key store in fjall: wrapped workspace keys (`workspace` -> wrapped) and wrapped data keys
//! (`workspace | key_id` -> expiry, wrapped). New data keys are written without a sync of their
//! own: the database has one journal, and the sequencer's commit that follows (the events sealed
//! under them) syncs it, so no event is ever durable without its key. Destruction is synced
//! before it returns.
//!
//! A data key expires with its workspace's retention (read from the directory when it is
//! written): an expired key reads as absent at once, and [`KeyStore::sweep_expired`] removes its
//! bytes, found through an index ordered by expiry (`expires_at | workspace | key_id`).
//!
//! A workspace whose retention is shortened keeps keys written with the longer expiry: the
//! sweep also destroys, per workspace with a retention, the keys written before its current
//! window, found through a second index (`workspace | written_at | key_id`).

use async_trait::async_trait;
use confab_core::ports::{KeyStore, PortResult, Workspace};
use fjall::Keyspace;
use std::collections::HashMap;
use uuid::Uuid;

use crate::error::{corrupt, persist, port};

/// Expired keys removed per sweep, at most (the next sweep takes the rest).
const SWEEP_BATCH: usize = 10_000;

pub struct EmbeddedKeys {
    pub(crate) db: fjall::Database,
    pub(crate) workspace_keys: Keyspace,
    pub(crate) data_keys: Keyspace,
    /// `expires_at (ms, big endian) | workspace | key_id` -> nothing.
    pub(crate) expiry: Keyspace,
    /// `workspace | written_at (ms, big endian) | key_id` -> nothing.
    pub(crate) written: Keyspace,
    /// The directory's workspaces (their retention).
    pub(crate) workspaces: Keyspace,
    /// Makes creating a workspace key check-and-set.
    pub(crate) create_lock: tokio::sync::Mutex<()>,
}

fn data_key(ws: &Uuid, id: &Uuid) -> Vec<u8> {
    [ws.as_bytes().as_slice(), id.as_bytes()].concat()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl EmbeddedKeys {
    /// When keys written now for the workspace expire (0: never).
    fn expires_at(&self, workspace_id: &Uuid) -> PortResult<i64> {
        let Some(v) = self.workspaces.get(workspace_id.as_bytes()).map_err(port)? else { return Ok(0) };
        let w: Workspace = serde_json::from_slice(&v).map_err(|_| corrupt("workspace"))?;
        Ok(if w.retention_secs > 0 { now_ms() + i64::from(w.retention_secs) * 1000 } else { 0 })
    }
}

impl EmbeddedKeys {
    /// Adds to `batch` the removal of up to `limit` keys written before their workspace's
    /// current retention window (a retention shortened after they were written); returns how
    /// many.
    fn sweep_outside_windows(&self, batch: &mut fjall::OwnedWriteBatch, now: i64, limit: usize) -> PortResult<u64> {
        let mut swept = 0;
        for entry in self.workspaces.iter() {
            if swept as usize >= limit {
                break;
            }
            let (id, v) = entry.into_inner().map_err(port)?;
            let w: Workspace = serde_json::from_slice(&v).map_err(|_| corrupt("workspace"))?;
            if w.retention_secs <= 0 {
                continue;
            }
            let window_start = now - i64::from(w.retention_secs) * 1000;
            let end = [id.as_ref(), &window_start.to_be_bytes()].concat();
            for entry in self.written.range(id.to_vec()..end).take(limit - swept as usize) {
                let k = entry.key().map_err(port)?;
                if k.len() != 40 {
                    return Err(corrupt("data key index"));
                }
                let key = [&k[..16], &k[24..]].concat();
                if let Some(v) = self.data_keys.get(&key).map_err(port)? {
                    // its entry in the expiry index goes with it
                    batch.remove(&self.expiry, [&v[..8.min(v.len())], key.as_slice()].concat());
                    batch.remove(&self.data_keys, key);
                    swept += 1;
                }
                batch.remove(&self.written, k.to_vec());
            }
        }
        Ok(swept)
    }
}

#[async_trait]
impl KeyStore for EmbeddedKeys {
    async fn workspace_key(&self, workspace_id: Uuid) -> PortResult<Option<Vec<u8>>> {
        Ok(self.workspace_keys.get(workspace_id.as_bytes()).map_err(port)?.map(|v| v.to_vec()))
    }

    async fn create_workspace_key(&self, workspace_id: Uuid, wrapped: Vec<u8>) -> PortResult<Vec<u8>> {
        let _one_at_a_time = self.create_lock.lock().await;
        if let Some(existing) = self.workspace_keys.get(workspace_id.as_bytes()).map_err(port)? {
            return Ok(existing.to_vec());
        }
        self.workspace_keys.insert(workspace_id.as_bytes(), &wrapped).map_err(port)?;
        persist(&self.db).await?;
        Ok(wrapped)
    }

    async fn put_data_keys(&self, workspace_id: Uuid, keys: Vec<(Uuid, Vec<u8>)>) -> PortResult<()> {
        let expires_at = self.expires_at(&workspace_id)?;
        let written_at = now_ms().to_be_bytes();
        let mut batch = self.db.batch();
        for (id, wrapped) in keys {
            let k = data_key(&workspace_id, &id);
            if expires_at > 0 {
                batch.insert(&self.expiry, [expires_at.to_be_bytes().as_slice(), &k].concat(), []);
            }
            batch.insert(&self.written, [workspace_id.as_bytes().as_slice(), &written_at, id.as_bytes()].concat(), []);
            batch.insert(&self.data_keys, k, [expires_at.to_be_bytes().as_slice(), &wrapped].concat());
        }
        batch.commit().map_err(port)
    }

    async fn data_keys(&self, workspace_id: Uuid, key_ids: &[Uuid]) -> PortResult<HashMap<Uuid, Vec<u8>>> {
        let now = now_ms();
        let mut found = HashMap::new();
        for id in key_ids {
            let Some(v) = self.data_keys.get(data_key(&workspace_id, id)).map_err(port)? else { continue };
            if v.len() < 8 {
                return Err(corrupt("data key"));
            }
            let expires_at = i64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
            if expires_at == 0 || expires_at > now {
                found.insert(*id, v[8..].to_vec());
            }
        }
        Ok(found)
    }

    async fn destroy_data_keys(&self, workspace_id: Uuid, key_ids: &[Uuid]) -> PortResult<()> {
        let mut batch = self.db.batch();
        for id in key_ids {
            batch.remove(&self.data_keys, data_key(&workspace_id, id));
        }
        batch.commit().map_err(port)?;
        persist(&self.db).await
    }

    async fn destroy_workspace_key(&self, workspace_id: Uuid) -> PortResult<()> {
        self.workspace_keys.remove(workspace_id.as_bytes()).map_err(port)?;
        persist(&self.db).await
    }

    async fn sweep_expired(&self) -> PortResult<u64> {
        let now = now_ms();
        let end = (now + 1).to_be_bytes();
        let mut batch = self.db.batch();
        let mut swept = 0;
        for entry in self.expiry.range(..end.as_slice()).take(SWEEP_BATCH) {
            let k = entry.key().map_err(port)?;
            batch.remove(&self.data_keys, k[8..].to_vec());
            batch.remove(&self.expiry, k.to_vec());
            swept += 1;
        }
        batch.commit().map_err(port)?;
        let mut batch = self.db.batch();
        swept += self.sweep_outside_windows(&mut batch, now, SWEEP_BATCH)?;
        batch.commit().map_err(port)?;
        if swept > 0 {
            persist(&self.db).await?;
        }
        Ok(swept)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use confab_core::event::{Event, Payload, Sealing};
    use confab_core::keyring::Keyring;
    use confab_core::ports::PortErrorKind;
    use confab_core::sealing::{LocalMasterKey, SealedField};
    use std::sync::Arc;

    pub(crate) fn open_keys(dir: &std::path::Path) -> Arc<EmbeddedKeys> {
        let db = fjall::Database::builder(dir).open().unwrap();
        let ks = |n: &str| db.keyspace(n, fjall::KeyspaceCreateOptions::default).unwrap();
        Arc::new(EmbeddedKeys {
            workspace_keys: ks("workspace_keys"),
            data_keys: ks("data_keys"),
            expiry: ks("data_key_expiry"),
            written: ks("data_key_written"),
            workspaces: ks("workspaces"),
            db,
            create_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn keyring(keys: &Arc<EmbeddedKeys>, master: &str) -> Keyring {
        Keyring::new(keys.clone(), Arc::new(LocalMasterKey::from_secret(master)))
    }

    pub(crate) const MASTER: &str = "the master key of this test, thirty-two bytes or more";

    fn posted(ws: Uuid, text: &str) -> Event {
        Event {
            event_id: Uuid::new_v4(),
            workspace_id: ws,
            channel_id: Uuid::new_v4(),
            actor_id: Uuid::new_v4(),
            occurred_at: 1,
            seq: 2,
            schema_version: confab_core::avro::SCHEMA_VERSION,
            payload: Payload::MessagePosted {
                message_id: Uuid::new_v4(),
                client_msg_id: "c1".into(),
                text: text.into(),
                thread_ts: None,
                also_in_channel: false,
                thread: None,
                attachments: vec![],
            },
            sealing: Sealing::default(),
        }
    }

    fn text(e: &Event) -> &str {
        match &e.payload {
            Payload::MessagePosted { text, .. } | Payload::MessageEdited { text, .. } => text,
            _ => panic!("not a message"),
        }
    }

    async fn sealed(keyring: &Keyring, ws: Uuid, t: &str) -> Event {
        let mut e = posted(ws, t);
        keyring.seal(&mut [&mut e]).await.unwrap();
        e
    }

    async fn opened(keyring: &Keyring, mut e: Event) -> Result<Event, confab_core::ports::PortError> {
        keyring.open(&mut [&mut e]).await?.pop().unwrap()?;
        Ok(e)
    }

    #[tokio::test]
    async fn a_sealed_text_is_blank_in_the_event_and_opens_in_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let keys = open_keys(dir.path());
        let ws = Uuid::new_v4();
        let e = sealed(&keyring(&keys, MASTER), ws, "the launch is on friday").await;
        assert_eq!(text(&e), "");
        assert_eq!(e.sealing.boxes.len(), 1);
        assert_eq!(e.sealing.boxes[0].key_id, e.event_id);
        // as the log's record holds it, the text is nowhere
        let record = format!("{:?}", confab_core::avro::to_value(&e));
        assert!(!record.contains("launch") && record.contains("ciphertext"), "{record}");
        // a fresh keyring (nothing cached: another process) opens it from the store
        let fresh = keyring(&keys, MASTER);
        let e = opened(&fresh, e).await.unwrap();
        assert_eq!(text(&e), "the launch is on friday");
        assert!(e.sealing.boxes.is_empty() && e.sealing.redacted.is_empty());
    }

    #[tokio::test]
    async fn a_destroyed_key_opens_as_redacted_everywhere_and_others_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let keys = open_keys(dir.path());
        let ws = Uuid::new_v4();
        let (writer, reader) = (keyring(&keys, MASTER), keyring(&keys, MASTER));
        let (gone, kept) = (sealed(&writer, ws, "delete me").await, sealed(&writer, ws, "keep me").await);
        // the destroying keyring forgets the key at once, and no other finds it in the store
        writer.destroy(ws, &[gone.event_id]).await.unwrap();
        let e = opened(&writer, gone.clone()).await.unwrap();
        assert_eq!(text(&e), "");
        assert_eq!(e.sealing.redacted, vec![SealedField::Text]);
        assert!(e.sealing.is_redacted(SealedField::Text));
        let e = opened(&reader, gone).await.unwrap();
        assert!(e.sealing.is_redacted(SealedField::Text), "another process finds no key either");
        assert_eq!(text(&opened(&reader, kept).await.unwrap()), "keep me");
        // destroying again changes nothing
        writer.destroy(ws, &[e.event_id]).await.unwrap();
    }

    #[tokio::test]
    async fn a_destroyed_workspace_key_redacts_the_whole_workspace_only() {
        let dir = tempfile::tempdir().unwrap();
        let keys = open_keys(dir.path());
        let (ws, other) = (Uuid::new_v4(), Uuid::new_v4());
        let writer = keyring(&keys, MASTER);
        let (a, b) = (sealed(&writer, ws, "a").await, sealed(&writer, other, "b").await);
        keys.destroy_workspace_key(ws).await.unwrap();
        let reader = keyring(&keys, MASTER);
        assert!(opened(&reader, a).await.unwrap().sealing.is_redacted(SealedField::Text));
        assert_eq!(text(&opened(&reader, b).await.unwrap()), "b");
    }

    #[tokio::test]
    async fn the_wrong_master_key_stops_the_reader_instead_of_redacting() {
        let dir = tempfile::tempdir().unwrap();
        let keys = open_keys(dir.path());
        let e = sealed(&keyring(&keys, MASTER), Uuid::new_v4(), "secret").await;
        let wrong = keyring(&keys, "another master key, also thirty-two bytes long");
        let err = opened(&wrong, e).await.unwrap_err();
        assert_eq!(err.kind(), PortErrorKind::Fatal, "{err}");
        assert!(err.to_string().contains("keys.master_key"), "{err}");
    }

    #[tokio::test]
    async fn an_altered_box_is_refused_not_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let keys = open_keys(dir.path());
        let writer = keyring(&keys, MASTER);
        let mut e = sealed(&writer, Uuid::new_v4(), "secret").await;
        e.sealing.boxes[0].ciphertext[0] ^= 1;
        let err = opened(&keyring(&keys, MASTER), e).await.unwrap_err();
        assert_eq!(err.kind(), PortErrorKind::Invalid, "{err}");
    }

    fn shared(ws: Uuid, file_id: Uuid, name: &str) -> Event {
        let file =
            confab_core::files::Attachment { file_id, name: name.into(), size: 3, content_type: "text/plain".into() };
        Event { payload: Payload::FileShared { file }, ..posted(ws, "") }
    }

    fn with_attachment(mut e: Event, file_id: Uuid, name: &str) -> Event {
        if let Payload::MessagePosted { attachments, .. } = &mut e.payload {
            attachments.push(confab_core::files::Attachment {
                file_id,
                name: name.into(),
                size: 3,
                content_type: "text/plain".into(),
            });
        }
        e
    }

    fn names(e: &Event) -> Vec<String> {
        match &e.payload {
            Payload::FileShared { file } => vec![file.name.clone()],
            Payload::MessagePosted { attachments, .. } => attachments.iter().map(|a| a.name.clone()).collect(),
            _ => vec![],
        }
    }

    #[tokio::test]
    async fn a_file_name_is_sealed_under_the_file_key_wherever_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let keys = open_keys(dir.path());
        let (ws, file, older) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let writer = keyring(&keys, MASTER);
        let mut share = shared(ws, file, "salaries.xlsx");
        writer.seal(&mut [&mut share]).await.unwrap();
        assert_eq!((names(&share), share.sealing.boxes[0].key_id), (vec![String::new()], file));
        // a message attaching it, and a file shared before names were sealed (it has no key yet)
        let mut post =
            with_attachment(with_attachment(posted(ws, "see attached"), file, "salaries.xlsx"), older, "old.txt");
        keyring(&keys, MASTER).seal(&mut [&mut post]).await.unwrap();
        assert_eq!(names(&post), vec![String::new(), String::new()]);
        let key_ids: Vec<Uuid> = post.sealing.boxes.iter().map(|b| b.key_id).collect();
        assert_eq!(key_ids, vec![post.event_id, file, older]);
        let reader = keyring(&keys, MASTER);
        let opened_post = opened(&reader, post.clone()).await.unwrap();
        assert_eq!(names(&opened_post), vec!["salaries.xlsx", "old.txt"]);
        assert_eq!(text(&opened_post), "see attached");
        // deleting the file erases its name everywhere, not the message's text
        writer.destroy(ws, &[file]).await.unwrap();
        let reader = keyring(&keys, MASTER);
        let share = opened(&reader, share).await.unwrap();
        assert_eq!(
            (names(&share), share.sealing.redacted.clone()),
            (vec![String::new()], vec![SealedField::FileName(file)])
        );
        let post = opened(&reader, post).await.unwrap();
        assert_eq!((names(&post), text(&post)), (vec![String::new(), "old.txt".into()], "see attached"));
        assert_eq!(post.sealing.redacted, vec![SealedField::FileName(file)]);
    }

    #[tokio::test]
    async fn a_file_shared_and_attached_in_one_batch_is_sealed_under_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = open_keys(dir.path());
        let (ws, file, older) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let writer = keyring(&keys, MASTER);
        // one ingest batch: the upload's completion, then a message attaching it and, twice, a
        // file from before names were sealed
        let mut share = shared(ws, file, "q3.pdf");
        let mut post = with_attachment(with_attachment(posted(ws, "here"), file, "q3.pdf"), older, "a.txt");
        let mut again = with_attachment(posted(ws, "again"), older, "a.txt");
        writer.seal(&mut [&mut share, &mut post, &mut again]).await.unwrap();
        let reader = keyring(&keys, MASTER);
        assert_eq!(names(&opened(&reader, share).await.unwrap()), vec!["q3.pdf"]);
        assert_eq!(names(&opened(&reader, post).await.unwrap()), vec!["q3.pdf", "a.txt"]);
        assert_eq!(names(&opened(&reader, again).await.unwrap()), vec!["a.txt"]);
    }

    #[tokio::test]
    async fn a_key_expires_with_its_workspace_retention_and_is_swept() {
        let dir = tempfile::tempdir().unwrap();
        let keys = open_keys(dir.path());
        let (short, forever) = (Uuid::new_v4(), Uuid::new_v4());
        let workspace = |id: Uuid, retention_secs: i32| confab_core::ports::Workspace {
            workspace_id: id,
            name: "w".into(),
            retention_secs,
            max_file_bytes: 0,
            file_types: vec![],
            storage_quota_bytes: 0,
        };
        for w in [workspace(short, 1), workspace(forever, 0)] {
            keys.workspaces.insert(w.workspace_id.as_bytes(), serde_json::to_vec(&w).unwrap()).unwrap();
        }
        let writer = keyring(&keys, MASTER);
        let (gone, kept) = (sealed(&writer, short, "for a second").await, sealed(&writer, forever, "for ever").await);
        assert_eq!(text(&opened(&keyring(&keys, MASTER), gone.clone()).await.unwrap()), "for a second");
        assert_eq!(keys.sweep_expired().await.unwrap(), 0, "nothing has expired yet");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        // expired: absent at once, for any reader that does not hold it cached
        let e = opened(&keyring(&keys, MASTER), gone.clone()).await.unwrap();
        assert!(e.sealing.is_redacted(SealedField::Text));
        assert_eq!(text(&opened(&keyring(&keys, MASTER), kept).await.unwrap()), "for ever");
        // and its bytes are removed by the sweep
        let stored = |ws: Uuid, id: Uuid| keys.data_keys.get(data_key(&ws, &id)).unwrap().is_some();
        assert!(stored(short, gone.event_id));
        assert_eq!(keys.sweep_expired().await.unwrap(), 1);
        assert!(!stored(short, gone.event_id));
        assert_eq!(keys.sweep_expired().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_shortened_retention_sweeps_keys_written_under_the_longer_one() {
        let dir = tempfile::tempdir().unwrap();
        let keys = open_keys(dir.path());
        let ws = Uuid::new_v4();
        let mut w = confab_core::ports::Workspace {
            workspace_id: ws,
            name: "w".into(),
            retention_secs: 3600,
            max_file_bytes: 0,
            file_types: vec![],
            storage_quota_bytes: 0,
        };
        keys.workspaces.insert(ws.as_bytes(), serde_json::to_vec(&w).unwrap()).unwrap();
        let writer = keyring(&keys, MASTER);
        let old = sealed(&writer, ws, "written under an hour's retention").await;
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        assert_eq!(keys.sweep_expired().await.unwrap(), 0, "an hour has not passed");
        w.retention_secs = 2;
        keys.workspaces.insert(ws.as_bytes(), serde_json::to_vec(&w).unwrap()).unwrap();
        let recent = sealed(&writer, ws, "written under two seconds' retention").await;
        assert_eq!(keys.sweep_expired().await.unwrap(), 1, "the old key is outside the two-second window");
        let e = opened(&keyring(&keys, MASTER), old).await.unwrap();
        assert!(e.sealing.is_redacted(SealedField::Text), "erased: {e:?}");
        assert_eq!(
            text(&opened(&keyring(&keys, MASTER), recent).await.unwrap()),
            "written under two seconds' retention"
        );
        assert_eq!(keys.expiry.iter().count(), 1, "only the recent key's expiry entry is left");
    }

    #[tokio::test]
    async fn two_keyrings_racing_on_a_new_workspace_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = open_keys(dir.path());
        let ws = Uuid::new_v4();
        let (k1, k2) = (keyring(&keys, MASTER), keyring(&keys, MASTER));
        let (e1, e2) = tokio::join!(sealed(&k1, ws, "one"), sealed(&k2, ws, "two"));
        let reader = keyring(&keys, MASTER);
        assert_eq!(text(&opened(&reader, e1).await.unwrap()), "one");
        assert_eq!(text(&opened(&reader, e2).await.unwrap()), "two");
    }

    fn command(ws: Uuid, body: confab_core::command::CommandBody) -> confab_core::command::Command {
        confab_core::command::Command {
            command_id: Uuid::new_v4(),
            workspace_id: ws,
            user_id: Uuid::new_v4(),
            channel_id: Uuid::new_v4(),
            reply_to: confab_core::command::ReplyTo { gateway_id: "g".into(), conn_id: 1 },
            issued_at: 0,
            client_msg_id: Some("c1".into()),
            body,
            sealed: Vec::new(),
        }
    }

    fn record(cmd: confab_core::command::Command) -> confab_core::ports::CommandRecord {
        confab_core::ports::CommandRecord { partition: 0, offset: 0, command: Ok(cmd) }
    }

    #[tokio::test]
    async fn a_command_is_sealed_for_the_log_under_its_own_key_and_refused_once_the_key_is_gone() {
        use confab_core::command::CommandBody;
        use confab_core::files::Attachment;
        use confab_core::ports::UnacceptedCommand;
        let dir = tempfile::tempdir().unwrap();
        let keys = open_keys(dir.path());
        let (gateway, ingest) = (keyring(&keys, MASTER), keyring(&keys, MASTER));
        let ws = Uuid::new_v4();
        let file =
            Attachment { file_id: Uuid::new_v4(), name: "plans.pdf".into(), size: 3, content_type: "x/y".into() };
        let bodies = [
            CommandBody::SendMessage {
                text: "a secret".into(),
                thread_ts: None,
                also_in_channel: false,
                file_ids: vec![],
            },
            CommandBody::EditMessage { message_id: Uuid::new_v4(), text: "another secret".into() },
            CommandBody::ShareFile { file: file.clone() },
        ];
        for body in bodies {
            let original = command(ws, body);
            let mut cmd = original.clone();
            gateway.seal_command(&mut cmd).await.unwrap();
            let wire = serde_json::to_string(&cmd).unwrap();
            assert!(!wire.contains("secret") && !wire.contains("plans"), "nothing in the clear: {wire}");
            assert_eq!(cmd.sealed.len(), 1);
            let mut batch = vec![record(cmd.clone())];
            let transit = ingest.open_commands(&mut batch).await.unwrap();
            assert_eq!(batch[0].command.as_ref().unwrap(), &original, "ingest reads what the client sent");
            assert_eq!(transit, HashMap::from([(ws, vec![original.command_id])]));
            // once destroyed, the copy in the log never opens again, in any process
            ingest.destroy(ws, &transit[&ws]).await.unwrap();
            let mut again = vec![record(cmd)];
            keyring(&keys, MASTER).open_commands(&mut again).await.unwrap();
            assert_eq!(again[0].command.as_ref().unwrap_err(), &UnacceptedCommand::Erased);
        }
        // a command with nothing sensitive is left as it is, and makes no key
        let mut pin = command(ws, CommandBody::Pin { message_id: Uuid::new_v4(), pinned: true });
        gateway.seal_command(&mut pin).await.unwrap();
        assert!(pin.sealed.is_empty());
        assert!(keys.data_keys(ws, &[pin.command_id]).await.unwrap().is_empty());
        // altered bytes are refused as undecodable, not taken for an erasure
        let mut cmd = command(ws, CommandBody::EditMessage { message_id: Uuid::new_v4(), text: "x".into() });
        gateway.seal_command(&mut cmd).await.unwrap();
        let altered = if cmd.sealed[0].ciphertext.starts_with('A') { "B" } else { "A" };
        cmd.sealed[0].ciphertext.replace_range(0..1, altered);
        let mut batch = vec![record(cmd)];
        ingest.open_commands(&mut batch).await.unwrap();
        assert_eq!(batch[0].command.as_ref().unwrap_err(), &UnacceptedCommand::Undecodable);
    }
}
