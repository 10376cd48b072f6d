//! Transit keys: a command's sensitive fields (a message's text, an edit's, a shared file's
//! name) are sealed before the command is written to the commands log, under a key made for
//! that one command (its id is the command's). Ingest opens them, sequences the command, and
//! destroys the key once the batch is committed: what clients sent is readable in the commands
//! log only while it waits to be sequenced, so deleting a message erases every copy of its text.
//!
//! Only the distributed mode needs it: the embedded command log is held in memory.
//!
//! A key left behind (ingest dies between committing a batch and destroying its keys, or the
//! key store refuses the destroy) expires after at most a week, the commands topic's retention
//! ([`crate::ports::TRANSIT_KEY_TTL_SECS`]), or with its workspace's retention if shorter.

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

use super::{bounded, Keyring};
use crate::command::{Command, CommandBody, SealedCommandField};
use crate::ports::{CommandRecord, CommandSink, PortError, PortResult, UnacceptedCommand};
use crate::sealing::{command_box_context, data_key_context, open, seal, wrap_key, SealedField, SecretKey};

/// The fields of a command body that are sealed in the commands log.
fn sensitive_fields(body: &mut CommandBody) -> Vec<(SealedField, &mut String)> {
    match body {
        CommandBody::SendMessage { text, .. } | CommandBody::EditMessage { text, .. } => {
            vec![(SealedField::Text, text)]
        }
        CommandBody::ShareFile { file } => vec![(SealedField::FileName(file.file_id), &mut file.name)],
        _ => Vec::new(),
    }
}

impl Keyring {
    /// Seals `cmd`'s sensitive fields under a new transit key (id: the command's id), stored
    /// before the command is written; the fields in the body are left blank.
    pub async fn seal_command(&self, cmd: &mut Command) -> PortResult<()> {
        if sensitive_fields(&mut cmd.body).is_empty() {
            return Ok(());
        }
        let (ws, key_id) = (cmd.workspace_id, cmd.command_id);
        let ws_key = self
            .workspace_key(ws, true)
            .await?
            .ok_or_else(|| PortError::transient(format!("workspace {ws}'s key neither found nor created")))?;
        let key = SecretKey::generate();
        let wrapped = wrap_key(&ws_key, &data_key_context(&ws, &key_id), &key);
        bounded(self.store.put_transit_key(ws, key_id, wrapped)).await?;
        let Command { body, sealed, .. } = cmd;
        for (field, value) in sensitive_fields(body) {
            let plain = std::mem::take(value);
            let (nonce, ciphertext) = seal(&key, &command_box_context(&ws, &key_id, field), plain.as_bytes());
            sealed.push(SealedCommandField {
                field: field.label(),
                nonce: B64.encode(nonce),
                ciphertext: B64.encode(ciphertext),
            });
        }
        Ok(())
    }

    /// Opens the sealed commands of a batch in place. A command whose transit key is gone
    /// becomes [`UnacceptedCommand::Erased`], one whose fields do not open with its key
    /// [`UnacceptedCommand::Undecodable`]. Returns the transit keys met, per workspace: they
    /// are to be destroyed once the batch is committed.
    pub async fn open_commands(&self, batch: &mut [CommandRecord]) -> PortResult<HashMap<Uuid, Vec<Uuid>>> {
        let mut transit: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for cmd in batch.iter().filter_map(|r| r.command.as_ref().ok()).filter(|c| !c.sealed.is_empty()) {
            transit.entry(cmd.workspace_id).or_default().push(cmd.command_id);
        }
        let mut keys = HashMap::new();
        for (ws, ids) in &transit {
            keys.insert(*ws, self.data_keys(*ws, ids.clone()).await?);
        }
        for record in batch.iter_mut() {
            let Ok(cmd) = &mut record.command else { continue };
            if cmd.sealed.is_empty() {
                continue;
            }
            let verdict = match keys.get(&cmd.workspace_id).and_then(|k| k.get(&cmd.command_id)) {
                None => Err(UnacceptedCommand::Erased),
                Some(key) => open_command(cmd, key).map_err(|e| {
                    tracing::warn!(command_id = %cmd.command_id, error = %e, "a sealed command does not open");
                    UnacceptedCommand::Undecodable
                }),
            };
            if let Err(unaccepted) = verdict {
                record.command = Err(unaccepted);
            }
        }
        Ok(transit)
    }
}

/// Fills in a command's sealed fields from its transit key.
fn open_command(cmd: &mut Command, key: &SecretKey) -> Result<(), PortError> {
    let (ws, key_id) = (cmd.workspace_id, cmd.command_id);
    let mut fields = sensitive_fields(&mut cmd.body);
    for sealed in std::mem::take(&mut cmd.sealed) {
        let field = SealedField::parse(&sealed.field)
            .ok_or_else(|| PortError::invalid(format!("unknown sealed field `{}`", sealed.field)))?;
        let (Ok(nonce), Ok(ciphertext)) = (B64.decode(&sealed.nonce), B64.decode(&sealed.ciphertext)) else {
            return Err(PortError::invalid(format!("the {} is not base64", sealed.field)));
        };
        let plain = open(key, &command_box_context(&ws, &key_id, field), &nonce, &ciphertext)
            .map_err(|e| PortError::invalid(format!("the {}: {e}", sealed.field)))?;
        let value = fields
            .iter_mut()
            .find(|(f, _)| *f == field)
            .ok_or_else(|| PortError::invalid(format!("the command has no {}", sealed.field)))?;
        *value.1 =
            String::from_utf8(plain).map_err(|_| PortError::invalid(format!("the {} is not UTF-8", sealed.field)))?;
    }
    Ok(())
}

/// A gateway's command sink that seals each command's sensitive fields on the way to the log.
pub struct SealingSink {
    inner: Arc<dyn CommandSink>,
    keyring: Arc<Keyring>,
}

impl SealingSink {
    pub fn new(inner: Arc<dyn CommandSink>, keyring: Arc<Keyring>) -> Self {
        Self { inner, keyring }
    }
}

#[async_trait]
impl CommandSink for SealingSink {
    async fn send(&self, cmd: &Command) -> PortResult<()> {
        // one list of sensitive fields (`sensitive_fields`): a command without any is sent as
        // it is, by `seal_command` making no key
        let mut sealed = cmd.clone();
        self.keyring.seal_command(&mut sealed).await?;
        self.inner.send(&sealed).await
    }

    async fn ping(&self) -> PortResult<()> {
        self.inner.ping().await
    }
}
