use confab_core::event::{ChannelKind, Event, Payload};
use confab_core::ports::{Fanout, FanoutItem, PortError, StreamErasure};
use confab_core::protocol::{ServerFrame, ThreadView, MEMBERS_IN_FRAME};
use confab_core::views::{message_view, posted_row};
use std::sync::Arc;
use uuid::Uuid;

use crate::Projection;

pub struct FanoutProjection {
    fanout: Arc<dyn Fanout>,
}

impl FanoutProjection {
    pub fn new(fanout: Arc<dyn Fanout>) -> Self {
        Self { fanout }
    }
}

/// Who an event's frame reaches beyond the channel's current members.
#[derive(Debug, Default, PartialEq)]
pub struct Membership {
    /// Become members with this event (and receive it).
    pub add: Vec<Uuid>,
    /// Stop being members after receiving it.
    pub remove: Vec<Uuid>,
}

/// The frame connected members receive for an event, and the membership change it makes; none
/// for an audit record (no client hears of those).
pub fn frame_for(e: &Event) -> Option<(ServerFrame, Membership)> {
    Some(match &e.payload {
        Payload::AdminActed { .. } => return None,
        Payload::ChannelCreated { name, kind, members } => created_frame(e, name, *kind, members),
        Payload::MemberJoined { user_id: joined } => {
            let by = (*joined != e.actor_id).then_some(e.actor_id);
            let (workspace_id, channel_id, seq) = (e.workspace_id, e.channel_id, e.seq);
            let frame = ServerFrame::Joined { workspace_id, channel_id, user_id: *joined, seq, by };
            (frame, Membership { add: vec![*joined], remove: vec![] })
        }
        Payload::MemberLeft { user_id: left } => {
            let (workspace_id, channel_id, seq) = (e.workspace_id, e.channel_id, e.seq);
            let frame = ServerFrame::Left { workspace_id, channel_id, user_id: *left, by: e.actor_id, seq };
            (frame, Membership { add: vec![], remove: vec![*left] })
        }
        _ => (plain_frame(e)?, Membership::default()),
    })
}

/// `channel:created`, listing members only for channels small enough (a 10,000-member channel
/// must not send 10,000 ids to 10,000 sockets).
fn created_frame(e: &Event, name: &str, kind: ChannelKind, members: &[Uuid]) -> (ServerFrame, Membership) {
    let listed = if members.len() <= MEMBERS_IN_FRAME { members.to_vec() } else { vec![] };
    let frame = ServerFrame::Created {
        workspace_id: e.workspace_id,
        channel_id: e.channel_id,
        name: name.to_string(),
        is_private: kind.is_private(),
        kind,
        members: listed,
        member_count: members.len(),
        seq: e.seq,
    };
    (frame, Membership { add: members.to_vec(), remove: vec![] })
}

/// The frame of an event that changes no membership.
fn plain_frame(e: &Event) -> Option<ServerFrame> {
    let (workspace_id, channel_id, seq, user_id) = (e.workspace_id, e.channel_id, e.seq, e.actor_id);
    Some(match &e.payload {
        Payload::MessagePosted { .. } => new_message_frame(e),
        Payload::MessageEdited { message_id, text } => ServerFrame::Edited {
            workspace_id,
            channel_id,
            message_id: *message_id,
            text: text.clone(),
            edited_at: e.occurred_at,
            seq,
            user_id,
        },
        Payload::MessageDeleted { message_id, file_ids } => {
            let (message_id, file_ids) = (*message_id, file_ids.clone());
            ServerFrame::Deleted { workspace_id, channel_id, message_id, seq, user_id, file_ids }
        }
        Payload::ReactionChanged { message_id, emoji, added, users } => {
            let (message_id, emoji, users) = (*message_id, emoji.clone(), users.clone());
            if *added {
                ServerFrame::ReactionAdded { workspace_id, channel_id, message_id, emoji, user_id, users, seq }
            } else {
                ServerFrame::ReactionRemoved { workspace_id, channel_id, message_id, emoji, user_id, users, seq }
            }
        }
        Payload::MessagePinned { message_id, pinned } => {
            let (message_id, pinned) = (*message_id, *pinned);
            ServerFrame::Pinned { workspace_id, channel_id, message_id, pinned, user_id, seq }
        }
        Payload::FileShared { file } => {
            ServerFrame::FileShared { workspace_id, channel_id, file: file.clone(), user_id, seq }
        }
        Payload::FileDeleted { file_id } => {
            ServerFrame::FileDeleted { workspace_id, channel_id, file_id: *file_id, user_id, seq }
        }
        Payload::ChannelRenamed { name } => {
            ServerFrame::Renamed { workspace_id, channel_id, name: name.clone(), user_id, seq }
        }
        Payload::ChannelArchived { archived } => {
            ServerFrame::Archived { workspace_id, channel_id, archived: *archived, user_id, seq }
        }
        // the user's own stream reaches only their connections (the gateways subscribe every
        // connection to its user's stream)
        Payload::ReadMarked { read_seq } => ServerFrame::Marked { workspace_id, channel_id, seq: *read_seq },
        Payload::ChannelCreated { .. } | Payload::MemberJoined { .. } | Payload::MemberLeft { .. } => {
            unreachable!("membership changes have their own frames")
        }
        Payload::AdminActed { .. } => return None,
    })
}

/// `message:new`: the message as clients first see it, and on a thread reply the parent's
/// thread after it.
fn new_message_frame(e: &Event) -> ServerFrame {
    let Payload::MessagePosted { thread, .. } = &e.payload else { unreachable!("called for posted messages") };
    let parent_thread = thread.as_ref().map(|t| ThreadView {
        reply_count: t.reply_count,
        reply_users: t.reply_users.clone(),
        last_reply_at: e.occurred_at,
    });
    let message = message_view(posted_row(e).expect("a posted message"));
    ServerFrame::New { message, parent_thread }
}

/// What an event erases from its topic's stream: the texts of an edited or deleted message,
/// the names of deleted files.
fn stream_erasures(e: &Event) -> Vec<StreamErasure> {
    let texts = |message_id: &Uuid| {
        StreamErasure::message_texts(message_id, e.seq, confab_core::timeuuid_millis(message_id).unwrap_or(0))
    };
    match &e.payload {
        Payload::MessageEdited { message_id, .. } => vec![texts(message_id)],
        Payload::MessageDeleted { message_id, file_ids } => std::iter::once(texts(message_id))
            .chain(file_ids.iter().map(|f| StreamErasure::file_name(f, e.seq)))
            .collect(),
        Payload::FileDeleted { file_id } => vec![StreamErasure::file_name(file_id, e.seq)],
        _ => Vec::new(),
    }
}

/// The fanout entry of an event: on its stream's topic (a channel, or the reader's own stream
/// for a read marker), with the frame serialized once for every gateway.
fn item_for(e: &Event) -> Option<FanoutItem> {
    let (frame, membership) = frame_for(e)?;
    Some(FanoutItem {
        workspace_id: e.workspace_id,
        topic_id: e.stream_id(),
        seq: e.seq,
        frame_type: frame.type_name().to_string(),
        frame_json: serde_json::to_string(&frame).expect("frame serializes"),
        add_members: membership.add,
        remove_members: membership.remove,
        ts: e.occurred_at,
    })
}

impl Projection for FanoutProjection {
    fn name(&self) -> &'static str {
        "fanout"
    }

    async fn apply(&self, events: &[Event]) -> Result<(), PortError> {
        let items: Vec<FanoutItem> = events.iter().filter_map(item_for).collect();
        self.fanout.publish(&items).await?;
        // what a delete or an edit erased leaves the resume window too (after the frame that
        // says so was published: a reader never meets the hole before the reason for it)
        for e in events {
            for erasure in stream_erasures(e) {
                self.fanout.erase(&e.workspace_id, &e.channel_id, &erasure).await?;
            }
            if let Some(ws) = e.deleted_workspace() {
                self.fanout.delete_workspace(&ws).await?;
                tracing::info!(workspace_id = %ws, "deleted workspace removed from the fanout");
            }
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), PortError> {
        self.fanout.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delete_erases_the_messages_texts_and_files_and_not_its_thread_replies() {
        let (ws, ch, alice) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let gen = confab_core::TimeUuidGen::new();
        let (parent, reply, file) = (gen.next(1_000), gen.next(2_000), Uuid::new_v4());
        let event = |seq: i64, payload: Payload| Event {
            event_id: Uuid::new_v4(),
            workspace_id: ws,
            channel_id: ch,
            actor_id: alice,
            occurred_at: 3_000,
            seq,
            schema_version: confab_core::avro::SCHEMA_VERSION,
            payload,
            sealing: Default::default(),
        };
        let posted = |seq, message_id, thread_ts| {
            event(
                seq,
                Payload::MessagePosted {
                    message_id,
                    client_msg_id: format!("c{seq}"),
                    text: "t".into(),
                    thread_ts,
                    also_in_channel: false,
                    thread: None,
                    attachments: vec![],
                },
            )
        };
        let item = |e: &Event| item_for(e).expect("a conversation's event has a frame");
        let (parent_item, reply_item) = (item(&posted(2, parent, None)), item(&posted(3, reply, Some(parent))));
        let edited = item(&event(4, Payload::MessageEdited { message_id: parent, text: "t2".into() }));
        let deleted = event(5, Payload::MessageDeleted { message_id: parent, file_ids: vec![file] });
        let erasures = stream_erasures(&deleted);
        assert_eq!(erasures.len(), 2, "the texts and the file's name");
        let erased = |it: &FanoutItem| erasures.iter().any(|e| e.matches(&it.frame_type, &it.frame_json, it.seq));
        assert!(erased(&parent_item) && erased(&edited));
        assert!(!erased(&reply_item), "a reply names its parent only as thread_ts");
        let posted_at = confab_core::timeuuid_millis(&parent).unwrap();
        assert_eq!(erasures[0].since_ms, posted_at, "looked for from the message's own time");
        // an edit erases the versions before it, not itself
        let edit = event(4, Payload::MessageEdited { message_id: parent, text: "t2".into() });
        let erasures = stream_erasures(&edit);
        assert!(erasures[0].matches(&parent_item.frame_type, &parent_item.frame_json, parent_item.seq));
        assert!(!erasures[0].matches(&edited.frame_type, &edited.frame_json, edited.seq));
        assert!(stream_erasures(&posted(6, gen.next(4_000), None)).is_empty());
    }

    #[test]
    fn a_read_marker_goes_to_the_readers_own_topic_and_names_the_channel_read() {
        let (ws, ch, alice) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let e = Event {
            event_id: Uuid::new_v4(),
            workspace_id: ws,
            channel_id: ch,
            actor_id: alice,
            occurred_at: 1,
            seq: 9,
            schema_version: confab_core::avro::SCHEMA_VERSION,
            payload: Payload::ReadMarked { read_seq: 4 },
            sealing: Default::default(),
        };
        let item = item_for(&e).unwrap();
        assert_eq!((item.topic_id, item.seq, item.frame_type.as_str()), (alice, 9, "channel:marked"));
        let frame: ServerFrame = serde_json::from_str(&item.frame_json).unwrap();
        assert_eq!(frame, ServerFrame::Marked { workspace_id: ws, channel_id: ch, seq: 4 });
        let audit =
            Payload::AdminActed { action: "user_created".into(), subject_id: Some(alice), details: Default::default() };
        assert!(item_for(&Event { channel_id: ws, payload: audit, ..e }).is_none(), "no client hears of the audit log");
    }
}
