//! Typing indicators are ephemeral: checked against this socket's channels (never the
//! workspace's or the user's own topic), rate-limited like
//! a command, coalesced to one per [`TYPING_MIN_INTERVAL_MS`] per channel, and published to the
//! fanout (never to the log) for the channel's other connected members.

use confab_core::protocol::{ServerFrame, TYPING_EXPIRES_MS, TYPING_MIN_INTERVAL_MS};
use confab_core::ErrorCode;
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::frames::Conn;

impl Conn {
    pub(super) async fn typing(&mut self, channel_id: Uuid) -> Option<ServerFrame> {
        self.count("typing:start");
        // typing counts against the connection's rate like any command (a client cycling
        // through channels cannot flood them)
        if !self.limit.allow() {
            return Some(self.error(ErrorCode::RateLimited, "too many frames on this connection; slow down", None));
        }
        if !self.is_channel_member(channel_id) {
            return Some(self.error(ErrorCode::ChannelNotFound, "no such channel, or you are not a member", None));
        }
        let now = Instant::now();
        let min_interval = Duration::from_millis(TYPING_MIN_INTERVAL_MS);
        if self.typing.get(&channel_id).is_some_and(|t| now.duration_since(*t) < min_interval) {
            return None; // coalesced: the last one is still showing
        }
        self.typing.insert(channel_id, now);
        let (workspace_id, user_id) = (self.claims.workspace_id, self.claims.user_id);
        let frame = ServerFrame::Typing { workspace_id, channel_id, user_id, expires_in_ms: TYPING_EXPIRES_MS };
        let json = serde_json::to_string(&frame).expect("frame serializes");
        let published =
            self.st.fanout.publish_ephemeral(&workspace_id, &channel_id, &user_id, frame.type_name(), &json).await;
        match published {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot publish typing");
                Some(self.error(ErrorCode::Unavailable, "typing could not be sent", None))
            }
        }
    }
}
