//! One WebSocket connection: authenticate, hello, then read frames and write frames.
//!
//! Reading and writing are separate tasks joined by a bounded queue; the hub writes fanout
//! frames into the same queue. Bad frames get `error` frames and the socket stays open.

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use confab_core::auth::Claims;
use confab_core::command::{dm_channel_id, Command, CommandBody, ReplyTo};
use confab_core::event::ChannelKind;
use confab_core::protocol::{
    parse_client_frame, ClientFrame, ErrorCode, ResumeGap, ServerFrame, HEARTBEAT_INTERVAL_SECS, MAX_FRAME_BYTES,
};
use futures::StreamExt;
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit};
use uuid::Uuid;

use crate::http::{authenticate, ApiError};
use crate::hub::{ConnHandle, ConnId};
use crate::server::AppState;
use crate::writer::Out;
use confab_core::presence::PresenceStatus;

/// Frames up to this size are read and answered with `frame_too_large` when over
/// [`MAX_FRAME_BYTES`]; larger ones close the socket (1009), as the socket cannot skip them.
const HARD_FRAME_LIMIT: usize = 4 * MAX_FRAME_BYTES;
/// A socket that sends nothing (not even a ping) for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(HEARTBEAT_INTERVAL_SECS * 2 + 10);

#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
    /// `1`/`true`: the client will send `resume`; hold live events until it does.
    resume: Option<String>,
}

/// How long `?resume=1` holds live events waiting for the client's `resume` frame.
const RESUME_WAIT: Duration = Duration::from_secs(10);
/// Per-socket read buffer (grows for larger frames, up to the frame limit).
const READ_BUFFER: usize = 1024;
/// Bytes gathered before a write to the socket (flushes write everything at once anyway).
const WRITE_BUFFER: usize = 8 * 1024;
/// Channels one `resume` may name.
const MAX_RESUME_CHANNELS: usize = 2_000;

pub async fn upgrade(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let claims = match authenticate(&st, &headers, q.token.as_deref()) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let resume = matches!(q.resume.as_deref(), Some("1") | Some("true"));
    let Ok(permit) = st.conns.clone().try_acquire_owned() else {
        return ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "connection limit reached",
        )
        .into_response();
    };
    // small buffers: tungstenite's default 128 KiB read and write buffers per socket would be
    // most of an idle connection's memory (frames are small; the writer batches on its own)
    ws.max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| serve(st, socket, claims, resume, permit))
}

fn encode(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(frame).expect("frame serializes"))
}

/// A token bucket: `rate` tokens a second up to `burst`; each command takes one.
struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: std::time::Instant,
}

impl RateLimit {
    fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: rate as f64,
            burst: burst.max(1) as f64,
            tokens: burst.max(1) as f64,
            at: std::time::Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let now = std::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The id the workspace's fanout stream ends at now; `None` (follow from now) if unreadable.
async fn fanout_position(st: &AppState, ws: &Uuid) -> Option<String> {
    match st.fanout.last_id(ws).await {
        Ok(last) => Some(last),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read fanout position; following from now");
            None
        }
    }
}

/// One socket, for as long as it lives. Its future is most of an idle connection's memory, so
/// every call that awaits more than the socket itself (handling a frame, presence, the first
/// lookups) is boxed: that state lives on the heap only while the call runs.
async fn serve(st: Arc<AppState>, socket: WebSocket, claims: Claims, resume: bool, _permit: OwnedSemaphorePermit) {
    let id: ConnId = st.next_conn.fetch_add(1, Ordering::Relaxed);
    let mut limit = RateLimit::new(st.cfg.gateway.rate_per_sec, st.cfg.gateway.rate_burst);
    let mut typing: std::collections::HashMap<Uuid, std::time::Instant> = std::collections::HashMap::new();
    let (ws, user) = (claims.workspace_id, claims.user_id);
    let (tx, rx) = mpsc::channel::<Out>(st.cfg.gateway.send_buffer);
    let kill = Arc::new(Notify::new());
    // hello is queued before the connection joins the hub, so it is always the first frame.
    // Then: register (from here on, membership changes reach this socket), follow the
    // workspace's stream from its current end if this gateway did not already, and only then
    // load the user's channels: a channel joined in between is either in that list or arrives
    // as a membership change, never neither.
    let conn_id = format!("{}:{id}", st.gateway_id);
    tracing::debug!(conn_id = %conn_id, workspace_id = %ws, user_id = %user, "socket connected");
    let _ = tx.try_send(Out::Frame(encode(&ServerFrame::Hello {
        conn_id,
        heartbeat_interval: HEARTBEAT_INTERVAL_SECS,
        user_id: user,
        workspace_id: ws,
    })));
    if resume {
        // `?resume=1`: live events wait until the client's `resume` says where it was
        let _ = tx.try_send(Out::Hold(None));
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RESUME_WAIT).await;
            let _ = tx.send(Out::Release).await;
        });
    }
    let first = st.hub.register(id, ConnHandle { workspace_id: ws, user_id: user, tx: tx.clone(), kill: kill.clone() });
    if first {
        if let Some(last) = Box::pin(fanout_position(&st, &ws)).await {
            st.hub.follow(ws, last);
        }
    }
    let mut channels = match Box::pin(st.fanout.user_channels(&ws, &user)).await {
        Ok(chs) => chs,
        Err(e) => {
            tracing::warn!(error = %e, "cannot load channel memberships");
            Default::default()
        }
    };
    // the user's own stream (read markers from their other devices) and the workspace's
    // (presence changes)
    channels.push(user);
    channels.push(ws);
    st.hub.subscribe(id, ws, channels);
    let device = format!("{}:{id}", st.gateway_id);
    let mut away = false;
    Box::pin(crate::presence::touch(&st, ws, user, &device, away)).await;

    let (sink, mut stream) = socket.split();
    let writer = tokio::spawn(crate::writer::write_loop(sink, rx, kill, st.shutdown.clone(), st.metrics.clone()));
    let mut shutdown = st.shutdown.clone();
    loop {
        let next = tokio::select! {
            _ = shutdown.wait() => break,
            n = tokio::time::timeout(IDLE_TIMEOUT, stream.next()) => n,
        };
        let msg = match next {
            Err(_) => {
                tracing::debug!(conn = id, "idle timeout");
                break;
            }
            Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(m))) => m,
        };
        let reply = match msg {
            Message::Text(text) => {
                Box::pin(handle_text(
                    &st,
                    id,
                    &claims,
                    text.as_str(),
                    &mut limit,
                    &mut typing,
                    &tx,
                    (&device, &mut away),
                ))
                .await
            }
            Message::Binary(_) => Some(error(
                &st,
                ErrorCode::MalformedFrame,
                "binary frames are not supported; send JSON text frames",
                None,
            )),
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => None,
        };
        if let Some(frame) = reply {
            if tx.send(Out::Frame(encode(&frame))).await.is_err() {
                break;
            }
        }
        if writer.is_finished() {
            break;
        }
    }
    Box::pin(crate::presence::leave(&st, ws, user, &device)).await;
    if st.shutdown.is_triggered() {
        // the writer flushes the queue and sends close 1001; let it finish before letting go
        drop(tx);
        let _ = tokio::time::timeout(crate::server::DRAIN_TIMEOUT, writer).await;
        st.hub.unregister(id);
        return;
    }
    st.hub.unregister(id);
    drop(tx);
    let _ = writer.await;
}

fn error(st: &AppState, code: ErrorCode, message: &str, client_msg_id: Option<String>) -> ServerFrame {
    st.metrics.errors.with_label_values(&[code.as_str()]).inc();
    ServerFrame::Error { code, message: message.to_string(), client_msg_id }
}

async fn handle_text(
    st: &Arc<AppState>,
    id: ConnId,
    claims: &Claims,
    text: &str,
    limit: &mut RateLimit,
    typing: &mut std::collections::HashMap<Uuid, std::time::Instant>,
    tx: &mpsc::Sender<Out>,
    (device, away): (&str, &mut bool),
) -> Option<ServerFrame> {
    let frame = match parse_client_frame(text) {
        Ok(f) => f,
        Err(e) => {
            st.metrics.frames_in.with_label_values(&["invalid"]).inc();
            st.metrics.errors.with_label_values(&[e.code.as_str()]).inc();
            return Some(e.into_frame());
        }
    };
    let (ty, channel_id, body, client_msg_id) = match frame {
        ClientFrame::Ping { id } => {
            st.metrics.frames_in.with_label_values(&["ping"]).inc();
            // the heartbeat keeps this device's presence
            crate::presence::touch(st, claims.workspace_id, claims.user_id, device, *away).await;
            return Some(ServerFrame::Pong { id });
        }
        ClientFrame::Send { channel_id, text, client_msg_id, thread_ts, also_send_to_channel, file_ids } => (
            "message:send",
            channel_id,
            CommandBody::SendMessage {
                text,
                client_msg_id: client_msg_id.clone(),
                thread_ts,
                also_in_channel: also_send_to_channel,
                file_ids,
            },
            Some(client_msg_id),
        ),
        ClientFrame::Join { channel_id, client_msg_id } => {
            if st.hub.is_subscribed(id, claims.workspace_id, channel_id) {
                // already a member: answer here, nothing to write
                return Some(match client_msg_id {
                    Some(client_msg_id) => ServerFrame::Ok { client_msg_id, channel_id, seq: 0 },
                    None => ServerFrame::Joined {
                        workspace_id: claims.workspace_id,
                        channel_id,
                        user_id: claims.user_id,
                        seq: 0,
                        by: None,
                    },
                });
            }
            ("channel:join", channel_id, CommandBody::JoinChannel, client_msg_id)
        }
        ClientFrame::Typing { channel_id } => {
            st.metrics.frames_in.with_label_values(&["typing:start"]).inc();
            // typing is coalesced per channel, and counts against the connection's rate like
            // any command (a client cycling through channels cannot flood them)
            if !limit.allow() {
                return Some(error(st, ErrorCode::RateLimited, "too many frames on this connection; slow down", None));
            }
            return typing_start(st, id, claims, channel_id, typing).await;
        }
        ClientFrame::PresenceSet { status } => {
            st.metrics.frames_in.with_label_values(&["presence:set"]).inc();
            if status == PresenceStatus::Offline {
                return Some(error(
                    st,
                    ErrorCode::InvalidField,
                    "status must be active or away; disconnect to go offline",
                    None,
                ));
            }
            if !limit.allow() {
                return Some(error(st, ErrorCode::RateLimited, "too many frames on this connection; slow down", None));
            }
            *away = status == PresenceStatus::Away;
            crate::presence::touch(st, claims.workspace_id, claims.user_id, device, *away).await;
            return None;
        }
        ClientFrame::Resume { channels } => {
            st.metrics.frames_in.with_label_values(&["resume"]).inc();
            if !limit.allow() {
                let _ = tx.send(Out::Release).await;
                return Some(error(st, ErrorCode::RateLimited, "too many frames on this connection; slow down", None));
            }
            return resume(st, id, claims, channels, tx).await;
        }
        ClientFrame::Edit { channel_id, message_id, text, client_msg_id } => {
            ("message:edit", channel_id, CommandBody::EditMessage { message_id, text }, client_msg_id)
        }
        ClientFrame::Delete { channel_id, message_id, client_msg_id } => {
            ("message:delete", channel_id, CommandBody::DeleteMessage { message_id }, client_msg_id)
        }
        ClientFrame::ReactionAdd { channel_id, message_id, emoji, client_msg_id } => {
            ("reaction:add", channel_id, CommandBody::React { message_id, emoji, add: true }, client_msg_id)
        }
        ClientFrame::ReactionRemove { channel_id, message_id, emoji, client_msg_id } => {
            ("reaction:remove", channel_id, CommandBody::React { message_id, emoji, add: false }, client_msg_id)
        }
        ClientFrame::Create { name, is_private, members, client_msg_id } => {
            if let Some(frame) = unknown_users(st, claims, &members, client_msg_id.clone()).await {
                return Some(frame);
            }
            let kind = if is_private { ChannelKind::Private } else { ChannelKind::Public };
            (
                "channel:create",
                Uuid::new_v4(),
                CommandBody::CreateChannel { name, channel_kind: kind, members },
                client_msg_id,
            )
        }
        ClientFrame::DmOpen { user_ids, client_msg_id } => {
            if let Some(frame) = unknown_users(st, claims, &user_ids, client_msg_id.clone()).await {
                return Some(frame);
            }
            let mut people = user_ids.clone();
            people.push(claims.user_id);
            people.sort();
            people.dedup();
            let kind = if people.len() == 2 { ChannelKind::Dm } else { ChannelKind::GroupDm };
            let channel_id = dm_channel_id(&claims.workspace_id, &people);
            (
                "dm:open",
                channel_id,
                CommandBody::CreateChannel { name: kind.as_str().into(), channel_kind: kind, members: people },
                client_msg_id,
            )
        }
        ClientFrame::Rename { channel_id, name, client_msg_id } => {
            ("channel:rename", channel_id, CommandBody::RenameChannel { name }, client_msg_id)
        }
        ClientFrame::Archive { channel_id, archived, client_msg_id } => {
            ("channel:archive", channel_id, CommandBody::ArchiveChannel { archived }, client_msg_id)
        }
        ClientFrame::Leave { channel_id, client_msg_id } => {
            ("channel:leave", channel_id, CommandBody::LeaveChannel, client_msg_id)
        }
        ClientFrame::Invite { channel_id, user_id, client_msg_id } => {
            if let Some(frame) = unknown_users(st, claims, &[user_id], client_msg_id.clone()).await {
                return Some(frame);
            }
            ("channel:invite", channel_id, CommandBody::Invite { user_id }, client_msg_id)
        }
        ClientFrame::Kick { channel_id, user_id, client_msg_id } => {
            ("channel:kick", channel_id, CommandBody::Kick { user_id }, client_msg_id)
        }
        ClientFrame::Pin { channel_id, message_id, pinned, client_msg_id } => {
            ("message:pin", channel_id, CommandBody::Pin { message_id, pinned }, client_msg_id)
        }
        // read markers go to the user's own stream, keyed by the user
        ClientFrame::Mark { channel_id, seq, client_msg_id } => {
            ("channel:mark", claims.user_id, CommandBody::MarkRead { channel_id, seq }, client_msg_id)
        }
    };
    st.metrics.frames_in.with_label_values(&[ty]).inc();
    if !limit.allow() {
        let msg = format!(
            "more than {} commands a second on this connection; slow down and retry",
            st.cfg.gateway.rate_per_sec
        );
        return Some(error(st, ErrorCode::RateLimited, &msg, client_msg_id));
    }
    let cmd = Command {
        command_id: Uuid::new_v4(),
        workspace_id: claims.workspace_id,
        user_id: claims.user_id,
        channel_id,
        reply_to: ReplyTo { gateway_id: st.gateway_id.clone(), conn_id: id },
        issued_at: chrono::Utc::now().timestamp_millis(),
        client_msg_id: client_msg_id.clone(),
        body,
    };
    match st.produce(&cmd).await {
        Ok(()) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot write command");
            Some(error(
                st,
                ErrorCode::Unavailable,
                "the message log is unavailable; retry with the same client_msg_id",
                client_msg_id,
            ))
        }
    }
}

/// Replays what the socket missed: for each named channel it is subscribed to, the fanout
/// entries after the given `seq`, then `resume:done`; live events of those channels are held
/// meanwhile and follow without duplicates (see `writer`). Channels whose missed events are no
/// longer in the fanout stream are reported as gaps, to be fetched over HTTP history.
async fn resume(
    st: &Arc<AppState>,
    id: ConnId,
    claims: &Claims,
    channels: std::collections::BTreeMap<Uuid, i64>,
    tx: &mpsc::Sender<Out>,
) -> Option<ServerFrame> {
    if channels.len() > MAX_RESUME_CHANNELS {
        let _ = tx.send(Out::Release).await;
        return Some(error(
            st,
            ErrorCode::InvalidField,
            &format!("resume names at most {MAX_RESUME_CHANNELS} channels"),
            None,
        ));
    }
    let ws = claims.workspace_id;
    let (mine, not_members): (Vec<(Uuid, i64)>, Vec<(Uuid, i64)>) =
        channels.into_iter().partition(|(ch, _)| st.hub.is_subscribed(id, ws, *ch));
    let _ = tx.send(Out::Hold(Some(Box::new(mine.iter().map(|(c, _)| *c).collect())))).await;
    let backlog = match st.fanout.backlog(&ws, &mine).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the fanout backlog");
            st.metrics.resumes.with_label_values(&["unavailable"]).inc();
            let _ = tx.send(Out::Release).await;
            return Some(error(st, ErrorCode::Unavailable, "cannot resume now; fetch history over HTTP", None));
        }
    };
    let mut upto: std::collections::BTreeMap<Uuid, i64> = mine.iter().copied().collect();
    let mut events = Vec::with_capacity(backlog.entries.len());
    for e in backlog.entries {
        upto.insert(e.channel_id, e.seq);
        events.push((e.channel_id, e.seq, Utf8Bytes::from(e.frame_json)));
    }
    let gaps: Vec<ResumeGap> =
        backlog.gaps.iter().map(|&(channel_id, from_seq, to_seq)| ResumeGap { channel_id, from_seq, to_seq }).collect();
    st.metrics.resumes.with_label_values(&[if gaps.is_empty() { "complete" } else { "gaps" }]).inc();
    let done = ServerFrame::ResumeDone {
        replayed: events.len(),
        channels: upto,
        gaps,
        not_members: not_members.into_iter().map(|(c, _)| c).collect(),
    };
    let _ = tx.send(Out::Replay(Box::new(crate::writer::Replay { events, done: encode(&done) }))).await;
    None
}

/// An error frame if one of `users` is not in the caller's workspace.
async fn unknown_users(
    st: &Arc<AppState>,
    claims: &Claims,
    users: &[Uuid],
    client_msg_id: Option<String>,
) -> Option<ServerFrame> {
    for u in users {
        match st.store.user_exists(claims.workspace_id, *u).await {
            Ok(true) => {}
            Ok(false) => {
                return Some(error(
                    st,
                    ErrorCode::UserNotFound,
                    &format!("no user {u} in your workspace"),
                    client_msg_id,
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot check users");
                return Some(error(st, ErrorCode::Unavailable, "the directory is unavailable; retry", client_msg_id));
            }
        }
    }
    None
}

/// Typing is ephemeral: checked against this socket's channels, coalesced to one per
/// [`TYPING_MIN_INTERVAL_MS`] per channel, published to the fanout (never to the log).
async fn typing_start(
    st: &Arc<AppState>,
    id: ConnId,
    claims: &Claims,
    channel_id: Uuid,
    typing: &mut std::collections::HashMap<Uuid, std::time::Instant>,
) -> Option<ServerFrame> {
    use confab_core::protocol::{TYPING_EXPIRES_MS, TYPING_MIN_INTERVAL_MS};
    if !st.hub.is_subscribed(id, claims.workspace_id, channel_id) {
        return Some(error(st, ErrorCode::ChannelNotFound, "no such channel, or you are not a member", None));
    }
    let now = std::time::Instant::now();
    if typing.get(&channel_id).is_some_and(|t| now.duration_since(*t) < Duration::from_millis(TYPING_MIN_INTERVAL_MS)) {
        return None; // coalesced: the last one is still showing
    }
    typing.insert(channel_id, now);
    let frame = ServerFrame::Typing {
        workspace_id: claims.workspace_id,
        channel_id,
        user_id: claims.user_id,
        expires_in_ms: TYPING_EXPIRES_MS,
    };
    let json = serde_json::to_string(&frame).expect("frame serializes");
    match st.fanout.publish_ephemeral(&claims.workspace_id, &channel_id, &claims.user_id, &json).await {
        Ok(()) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot publish typing");
            Some(error(st, ErrorCode::Unavailable, "typing could not be sent", None))
        }
    }
}
