//! One socket, for as long as it lives: hello, register with the hub, subscribe, read frames,
//! then leave. Its future is most of an idle connection's memory, so every call that awaits
//! more than the socket itself (handling a frame, presence, the first lookups) is boxed: that
//! state lives on the heap only while the call runs.

use axum::extract::ws::{Message, WebSocket};
use confab_core::protocol::{ServerFrame, HEARTBEAT_INTERVAL_SECS};
use confab_core::{Claims, ErrorCode};
use futures::stream::SplitStream;
use futures::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::frames::Conn;
use super::rate_limit::RateLimit;
use super::{encode, error_frame, IDLE_TIMEOUT, RESUME_WAIT};
use crate::hub::{ConnHandle, CLOSE_TOKEN_EXPIRED};
use crate::state::AppState;
use crate::writer::Out;

pub(super) async fn serve(
    st: Arc<AppState>,
    socket: WebSocket,
    claims: Claims,
    resume: bool,
    // the gateway's connection slot and the user's, both given back when the socket ends
    _slots: (OwnedSemaphorePermit, crate::hub::UserSlot),
) {
    let (tx, rx) = mpsc::channel::<Out>(st.cfg.gateway.send_buffer);
    let kill = Arc::new(Notify::new());
    let mut conn = Box::pin(open(st, claims, tx, kill.clone(), resume)).await;
    let (sink, stream) = socket.split();
    let writer =
        tokio::spawn(crate::writer::write_loop(sink, rx, kill, conn.st.shutdown.clone(), conn.st.metrics.clone()));
    read_frames(&mut conn, stream, &writer).await;
    close(conn, writer).await;
}

/// Says hello, registers the connection and subscribes it. Hello is queued before the
/// connection joins the hub, so it is always the first frame. Then: register (from here on,
/// membership changes reach this socket), follow the workspace's stream from its current end
/// if this gateway did not already, and only then load the user's channels: a channel joined
/// in between is either in that list or arrives as a membership change, never neither.
async fn open(st: Arc<AppState>, claims: Claims, tx: mpsc::Sender<Out>, kill: Arc<Notify>, resume: bool) -> Conn {
    let id = st.next_conn.fetch_add(1, Ordering::Relaxed);
    let (ws, user) = (claims.workspace_id, claims.user_id);
    let conn_id = format!("{}:{id}", st.gateway_id);
    tracing::debug!(conn_id = %conn_id, workspace_id = %ws, user_id = %user, "socket connected");
    let hello =
        ServerFrame::Hello { conn_id, heartbeat_interval: HEARTBEAT_INTERVAL_SECS, user_id: user, workspace_id: ws };
    let _ = tx.try_send(Out::Frame(encode(&hello)));
    if resume {
        hold_until_resume(&tx);
    }
    let handle = ConnHandle { workspace_id: ws, user_id: user, tx: tx.clone(), kill, token_issued_at: claims.iat };
    let first = st.hub.register(id, handle);
    if first {
        if let Some(last) = fanout_position(&st, &ws).await {
            st.hub.follow(ws, last);
        }
    }
    st.hub.subscribe(id, ws, subscriptions(&st, ws, user).await);
    let device = format!("{}:{id}", st.gateway_id);
    crate::presence::touch(&st, ws, user, &device, false).await;
    let limit = RateLimit::new(st.cfg.gateway.rate_per_sec, st.cfg.gateway.rate_burst);
    Conn { st, id, claims, tx, device, away: false, limit, typing: Default::default() }
}

/// `?resume=1`: live events wait until the client's `resume` says where it was (or
/// [`RESUME_WAIT`] passes).
fn hold_until_resume(tx: &mpsc::Sender<Out>) {
    let _ = tx.try_send(Out::Hold(None));
    let tx = tx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RESUME_WAIT).await;
        let _ = tx.send(Out::Release).await;
    });
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

/// What a socket hears: its user's channels, the user's own stream (read markers from their
/// other devices) and the workspace's (presence changes).
async fn subscriptions(st: &AppState, ws: Uuid, user: Uuid) -> Vec<Uuid> {
    let mut topics = match st.fanout.user_channels(&ws, &user).await {
        Ok(chs) => chs,
        Err(e) => {
            tracing::warn!(error = %e, "cannot load channel memberships");
            Vec::new()
        }
    };
    topics.push(user);
    topics.push(ws);
    topics
}

/// Reads frames until the client leaves, goes idle, its token expires, the writer stops or
/// the gateway shuts down.
async fn read_frames(conn: &mut Conn, mut stream: SplitStream<WebSocket>, writer: &JoinHandle<()>) {
    let mut shutdown = conn.st.shutdown.clone();
    let expires = token_deadline(conn.claims.exp);
    loop {
        // one timer for both: idle, or the token's expiry if sooner
        let deadline = (tokio::time::Instant::now() + IDLE_TIMEOUT).min(expires);
        let next = tokio::select! {
            _ = shutdown.wait() => return,
            n = tokio::time::timeout_at(deadline, stream.next()) => n,
        };
        let msg = match next {
            Err(_) if tokio::time::Instant::now() >= expires => {
                tracing::debug!(conn = conn.id, "token expired");
                let _ = conn.tx.try_send(Out::Close(CLOSE_TOKEN_EXPIRED, "token expired"));
                return;
            }
            Err(_) => {
                tracing::debug!(conn = conn.id, "idle timeout");
                return;
            }
            Ok(None) | Ok(Some(Err(_))) => return,
            Ok(Some(Ok(m))) => m,
        };
        let reply = match msg {
            Message::Text(text) => Box::pin(conn.handle_text(text.as_str())).await,
            Message::Binary(_) => {
                let message = "binary frames are not supported; send JSON text frames";
                Some(error_frame(&conn.st, ErrorCode::MalformedFrame, message, None))
            }
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => None,
        };
        if let Some(frame) = reply {
            if conn.tx.send(Out::Frame(encode(&frame))).await.is_err() {
                return;
            }
        }
        if writer.is_finished() {
            return;
        }
    }
}

/// The instant a token expiring at `exp` (Unix seconds) stops working.
fn token_deadline(exp: i64) -> tokio::time::Instant {
    let left_ms = (exp * 1000 - chrono::Utc::now().timestamp_millis()).max(0) as u64;
    tokio::time::Instant::now() + std::time::Duration::from_millis(left_ms)
}

/// Leaves presence and the hub; on shutdown, lets the writer flush its queue and send close
/// 1001 first.
async fn close(conn: Conn, writer: JoinHandle<()>) {
    let Conn { st, id, claims, tx, device, .. } = conn;
    Box::pin(crate::presence::leave(&st, claims.workspace_id, claims.user_id, &device)).await;
    if st.shutdown.is_triggered() {
        drop(tx);
        let _ = tokio::time::timeout(crate::server::DRAIN_TIMEOUT, writer).await;
        st.hub.unregister(id);
        return;
    }
    st.hub.unregister(id);
    drop(tx);
    let _ = writer.await;
}
