//! Routes this gateway's replies (read from the log only once their events are committed): to a
//! socket as `message:ack` / `error`, or to an admin request waiting on its command id.

use axum::extract::ws::Utf8Bytes;
use confab_core::command::Outcome;
use confab_core::ports::ReplySource;
use confab_core::protocol::ServerFrame;
use std::sync::Arc;
use std::time::Duration;

use crate::state::AppState;

pub async fn route(st: Arc<AppState>, mut source: Box<dyn ReplySource>) {
    let mut shutdown = st.shutdown.clone();
    loop {
        let reply = tokio::select! {
            _ = shutdown.wait() => return,
            r = source.next() => r,
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                st.health.set("log", Err(e.to_string()));
                tracing::warn!(error = %e, "replies source error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        st.health.set("log", Ok(()));
        if let Some(waiter) = st.pending.lock().expect("pending lock").remove(&reply.command_id) {
            let _ = waiter.send(reply);
            continue;
        }
        let frame = match reply.outcome {
            Outcome::Posted { message_id, seq, ts, .. } => ServerFrame::Ack {
                client_msg_id: reply.client_msg_id.unwrap_or_default(),
                channel_id: reply.channel_id,
                message_id,
                seq,
                ts,
            },
            Outcome::Rejected { code, message } => {
                st.metrics.errors.with_label_values(&[code.as_str()]).inc();
                ServerFrame::Error { code, message, client_msg_id: reply.client_msg_id }
            }
            Outcome::Done { seq } => match reply.client_msg_id {
                Some(client_msg_id) => ServerFrame::Ok { client_msg_id, channel_id: reply.channel_id, seq },
                None => continue,
            },
        };
        let json = serde_json::to_string(&frame).expect("frame serializes");
        st.hub.send_to(reply.reply_to.conn_id, Utf8Bytes::from(json));
    }
}
