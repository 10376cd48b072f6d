//! One client frame: parsed and checked, then either answered here (ping, typing, presence,
//! resume, a join the socket already has) or turned into a command for the log. Commands count
//! against the connection's rate before anything else is read for them; the answer to a
//! command comes later, from ingest, as an ack or a typed error (`crate::replies`).

use confab_core::command::{dm_channel_id, Command, CommandBody, ReplyTo};
use confab_core::event::ChannelKind;
use confab_core::presence::PresenceStatus;
use confab_core::protocol::{parse_client_frame, ClientFrame, ServerFrame};
use confab_core::{Claims, ErrorCode};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::error_frame;
use super::rate_limit::RateLimit;
use crate::hub::ConnId;
use crate::state::AppState;
use crate::writer::Out;

/// What a connection knows about itself while it reads frames.
pub(super) struct Conn {
    pub st: Arc<AppState>,
    pub id: ConnId,
    pub claims: Claims,
    /// The socket's outgoing queue.
    pub tx: mpsc::Sender<Out>,
    /// This socket as a presence device.
    pub device: String,
    pub away: bool,
    pub limit: RateLimit,
    /// When this connection last sent typing, per channel (typing is coalesced).
    pub typing: HashMap<Uuid, Instant>,
}

/// A command a frame asks for, before it is addressed and written.
#[derive(Debug, PartialEq)]
pub(super) struct CommandRequest {
    /// The frame's type (a metric label).
    pub frame_type: &'static str,
    pub channel_id: Uuid,
    pub body: CommandBody,
    pub client_msg_id: Option<String>,
    /// Users the command names, who must be in the caller's workspace.
    pub users: Vec<Uuid>,
}

impl Conn {
    /// Handles one text frame; the frame to answer with now, if any.
    pub(super) async fn handle_text(&mut self, text: &str) -> Option<ServerFrame> {
        let frame = match parse_client_frame(text) {
            Ok(f) => f,
            Err(e) => {
                self.count("invalid");
                self.st.metrics.errors.with_label_values(&[e.code.as_str()]).inc();
                return Some(e.into_frame());
            }
        };
        match frame {
            ClientFrame::Ping { id } => {
                self.count("ping");
                // a ping costs a presence write: it counts against the rate like any frame
                if !self.limit.allow() {
                    return Some(self.rate_limited(None));
                }
                // the heartbeat keeps this device's presence
                self.touch_presence().await;
                Some(ServerFrame::Pong { id })
            }
            ClientFrame::Typing { channel_id } => self.typing(channel_id).await,
            ClientFrame::PresenceSet { status } => self.set_presence(status).await,
            ClientFrame::Resume { channels } => self.resume(channels).await,
            ClientFrame::Join { channel_id, client_msg_id } if self.is_subscribed(channel_id) => {
                // already a member: answer here, nothing to write
                Some(self.already_joined(channel_id, client_msg_id))
            }
            other => self.command(command_request(other, &self.claims)).await,
        }
    }

    pub(super) fn is_subscribed(&self, channel_id: Uuid) -> bool {
        self.st.hub.is_subscribed(self.id, self.claims.workspace_id, channel_id)
    }

    /// Whether `topic` is a channel (or DM) this socket's user is in: the socket also follows
    /// the workspace's topic (presence) and the user's own (read markers), which are not
    /// channels, so nothing may be typed into them or resumed from them.
    pub(super) fn is_channel_member(&self, topic: Uuid) -> bool {
        topic != self.claims.workspace_id && topic != self.claims.user_id && self.is_subscribed(topic)
    }

    pub(super) fn count(&self, frame_type: &str) {
        self.st.metrics.frames_in.with_label_values(&[frame_type]).inc();
    }

    pub(super) fn error(&self, code: ErrorCode, message: &str, client_msg_id: Option<String>) -> ServerFrame {
        error_frame(&self.st, code, message, client_msg_id)
    }

    pub(super) fn rate_limited(&self, client_msg_id: Option<String>) -> ServerFrame {
        let rate = self.st.cfg.gateway.rate_per_sec;
        let message = format!("more than {rate} commands a second on this connection; slow down and retry");
        self.error(ErrorCode::RateLimited, &message, client_msg_id)
    }

    async fn touch_presence(&self) {
        let (ws, user) = (self.claims.workspace_id, self.claims.user_id);
        crate::presence::touch(&self.st, ws, user, &self.device, self.away).await;
    }

    /// `presence:set`: away or active on this device (offline is disconnecting).
    async fn set_presence(&mut self, status: PresenceStatus) -> Option<ServerFrame> {
        self.count("presence:set");
        if status == PresenceStatus::Offline {
            let message = "status must be active or away; disconnect to go offline";
            return Some(self.error(ErrorCode::InvalidField, message, None));
        }
        if !self.limit.allow() {
            return Some(self.rate_limited(None));
        }
        self.away = status == PresenceStatus::Away;
        self.touch_presence().await;
        None
    }

    fn already_joined(&self, channel_id: Uuid, client_msg_id: Option<String>) -> ServerFrame {
        match client_msg_id {
            Some(client_msg_id) => ServerFrame::Ok { client_msg_id, channel_id, seq: 0 },
            None => ServerFrame::Joined {
                workspace_id: self.claims.workspace_id,
                channel_id,
                user_id: self.claims.user_id,
                seq: 0,
                by: None,
            },
        }
    }

    /// Rate-limits, checks the users it names, and writes the command to the log.
    async fn command(&mut self, req: CommandRequest) -> Option<ServerFrame> {
        self.count(req.frame_type);
        if !self.limit.allow() {
            return Some(self.rate_limited(req.client_msg_id));
        }
        // every command (a send, an edit, a reaction, a channel created...) is an event in the
        // log: each takes from the user's and the workspace's buckets, before any directory read
        if let Some(frame) = self.send_limited(&req.client_msg_id).await {
            return Some(frame);
        }
        if let Some(frame) = self.unknown_users(&req.users, &req.client_msg_id).await {
            return Some(frame);
        }
        let cmd = Command {
            command_id: Uuid::new_v4(),
            workspace_id: self.claims.workspace_id,
            user_id: self.claims.user_id,
            channel_id: req.channel_id,
            reply_to: ReplyTo { gateway_id: self.st.gateway_id.clone(), conn_id: self.id },
            issued_at: chrono::Utc::now().timestamp_millis(),
            client_msg_id: req.client_msg_id,
            body: req.body,
            sealed: Vec::new(),
        };
        match self.st.produce(&cmd).await {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot write command");
                let message = "the message log is unavailable; retry with the same client_msg_id";
                Some(self.error(ErrorCode::Unavailable, message, cmd.client_msg_id))
            }
        }
    }

    /// An error frame if the user's or the workspace's command bucket is empty.
    async fn send_limited(&self, client_msg_id: &Option<String>) -> Option<ServerFrame> {
        let refused = self.st.take_command_token(self.claims.workspace_id, self.claims.user_id).await?;
        Some(self.error(ErrorCode::RateLimited, &refused, client_msg_id.clone()))
    }

    /// An error frame if one of `users` is not in the caller's workspace.
    async fn unknown_users(&self, users: &[Uuid], client_msg_id: &Option<String>) -> Option<ServerFrame> {
        if users.is_empty() {
            return None;
        }
        match self.st.store.missing_users(self.claims.workspace_id, users).await {
            Ok(missing) if missing.is_empty() => None,
            Ok(missing) => {
                let message = format!("no user {} in your workspace", missing[0]);
                Some(self.error(ErrorCode::UserNotFound, &message, client_msg_id.clone()))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot check users");
                let message = "the directory is unavailable; retry";
                Some(self.error(ErrorCode::Unavailable, message, client_msg_id.clone()))
            }
        }
    }
}

/// The command a frame that writes to the log asks for. Pure: where the command goes (a new
/// channel's id, a DM's id derived from its members) is decided here, who may do it by ingest.
pub(super) fn command_request(frame: ClientFrame, claims: &Claims) -> CommandRequest {
    let req = |frame_type, channel_id, body, client_msg_id| CommandRequest {
        frame_type,
        channel_id,
        body,
        client_msg_id,
        users: vec![],
    };
    match frame {
        ClientFrame::Send { channel_id, text, client_msg_id, thread_ts, also_send_to_channel, file_ids } => {
            let body = CommandBody::SendMessage { text, thread_ts, also_in_channel: also_send_to_channel, file_ids };
            req("message:send", channel_id, body, Some(client_msg_id))
        }
        ClientFrame::Join { channel_id, client_msg_id } => {
            req("channel:join", channel_id, CommandBody::JoinChannel, client_msg_id)
        }
        ClientFrame::Edit { channel_id, message_id, text, client_msg_id } => {
            req("message:edit", channel_id, CommandBody::EditMessage { message_id, text }, client_msg_id)
        }
        ClientFrame::Delete { channel_id, message_id, client_msg_id } => {
            req("message:delete", channel_id, CommandBody::DeleteMessage { message_id }, client_msg_id)
        }
        ClientFrame::ReactionAdd { channel_id, message_id, emoji, client_msg_id } => {
            let body = CommandBody::React { message_id, emoji, add: true };
            req("reaction:add", channel_id, body, client_msg_id)
        }
        ClientFrame::ReactionRemove { channel_id, message_id, emoji, client_msg_id } => {
            let body = CommandBody::React { message_id, emoji, add: false };
            req("reaction:remove", channel_id, body, client_msg_id)
        }
        ClientFrame::Create { name, is_private, mut members, client_msg_id } => {
            let channel_kind = if is_private { ChannelKind::Private } else { ChannelKind::Public };
            // each member is looked up once, however often named
            members.sort();
            members.dedup();
            let body = CommandBody::CreateChannel { name, channel_kind, members: members.clone() };
            CommandRequest { users: members, ..req("channel:create", Uuid::new_v4(), body, client_msg_id) }
        }
        ClientFrame::DmOpen { user_ids, client_msg_id } => dm_open(user_ids, client_msg_id, claims),
        ClientFrame::Rename { channel_id, name, client_msg_id } => {
            req("channel:rename", channel_id, CommandBody::RenameChannel { name }, client_msg_id)
        }
        ClientFrame::Archive { channel_id, archived, client_msg_id } => {
            req("channel:archive", channel_id, CommandBody::ArchiveChannel { archived }, client_msg_id)
        }
        ClientFrame::Leave { channel_id, client_msg_id } => {
            req("channel:leave", channel_id, CommandBody::LeaveChannel, client_msg_id)
        }
        ClientFrame::Invite { channel_id, user_id, client_msg_id } => {
            let request = req("channel:invite", channel_id, CommandBody::Invite { user_id }, client_msg_id);
            CommandRequest { users: vec![user_id], ..request }
        }
        ClientFrame::Kick { channel_id, user_id, client_msg_id } => {
            req("channel:kick", channel_id, CommandBody::Kick { user_id }, client_msg_id)
        }
        ClientFrame::Pin { channel_id, message_id, pinned, client_msg_id } => {
            req("message:pin", channel_id, CommandBody::Pin { message_id, pinned }, client_msg_id)
        }
        ClientFrame::Mark { channel_id, seq, client_msg_id } => {
            req("channel:mark", channel_id, CommandBody::MarkRead { seq }, client_msg_id)
        }
        ClientFrame::Ping { .. }
        | ClientFrame::Typing { .. }
        | ClientFrame::PresenceSet { .. }
        | ClientFrame::Resume { .. } => unreachable!("answered by the connection, not the log"),
    }
}

/// `dm:open`: the DM's id is derived from its members (the opener included), so opening it
/// again finds it.
fn dm_open(user_ids: Vec<Uuid>, client_msg_id: Option<String>, claims: &Claims) -> CommandRequest {
    let mut people = user_ids.clone();
    people.push(claims.user_id);
    people.sort();
    people.dedup();
    let kind = if people.len() == 2 { ChannelKind::Dm } else { ChannelKind::GroupDm };
    let channel_id = dm_channel_id(&claims.workspace_id, &people);
    let body = CommandBody::CreateChannel { name: kind.as_str().into(), channel_kind: kind, members: people };
    CommandRequest { frame_type: "dm:open", channel_id, body, client_msg_id, users: user_ids }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims { workspace_id: Uuid::new_v4(), user_id: Uuid::new_v4(), exp: 0, iat: 0 }
    }

    #[test]
    fn a_send_carries_its_client_msg_id_once_on_the_command() {
        let ch = Uuid::new_v4();
        let frame = parse_client_frame(&format!(
            r#"{{"type":"message:send","channel_id":"{ch}","text":"hi","client_msg_id":"c1"}}"#
        ))
        .unwrap();
        let req = command_request(frame, &claims());
        assert_eq!(req.client_msg_id.as_deref(), Some("c1"));
        assert_eq!(req.channel_id, ch);
        assert!(matches!(req.body, CommandBody::SendMessage { .. }));
    }

    #[test]
    fn a_read_marker_names_the_channel_read() {
        let (ch, who) = (Uuid::new_v4(), claims());
        let frame = ClientFrame::Mark { channel_id: ch, seq: 7, client_msg_id: None };
        let req = command_request(frame, &who);
        assert_eq!((req.channel_id, req.body), (ch, CommandBody::MarkRead { seq: 7 }));
    }

    #[test]
    fn a_dm_is_addressed_by_its_members_and_names_them_for_checking() {
        let (who, bob) = (claims(), Uuid::new_v4());
        let req = command_request(ClientFrame::DmOpen { user_ids: vec![bob], client_msg_id: None }, &who);
        assert_eq!(req.channel_id, dm_channel_id(&who.workspace_id, &[who.user_id, bob]));
        assert_eq!(req.users, vec![bob]);
        let CommandBody::CreateChannel { channel_kind, .. } = req.body else { panic!("a channel") };
        assert_eq!(channel_kind, ChannelKind::Dm);
    }
}
