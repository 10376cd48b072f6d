//! Who should hear about a message by push: the decision, apart from any I/O.
//!
//! For a posted message, in a channel whose members are known: DMs and group DMs notify every
//! other member; `<@user>` mentions notify that member; `@channel` (or `@everyone`) notifies every
//! member; a thread reply notifies the thread's earlier repliers. `@here` means "whoever is
//! online", so it never causes a push (pushes go to offline people). Then each user's preference
//! applies: `all` (every message of their channels), `mentions` (DMs, mentions, threads they are
//! in: the default), `nothing`; a muted channel is silent except for direct mentions. The sender
//! never notifies themself, and non-members never hear about a channel.
//!
//! Whether the recipient is offline is the caller's question (presence), asked after this.

use confab_core::event::{ChannelKind, Event, Payload};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

pub use confab_core::push::{Level, Prefs};

/// Why someone is notified (the strongest reason wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Message,
    Thread,
    Channel,
    Dm,
    Mention,
}

/// The members to push to for `event`, each with the reason; empty for anything but a post.
pub fn recipients(
    event: &Event,
    kind: ChannelKind,
    members: &HashSet<Uuid>,
    prefs: impl Fn(&Uuid) -> Prefs,
) -> BTreeMap<Uuid, Reason> {
    let Payload::MessagePosted { text, thread, thread_ts, also_in_channel, .. } = &event.payload else {
        return BTreeMap::new();
    };
    let sender = event.actor_id;
    let mentions = confab_core::mentions::parse(text);
    let mut out: BTreeMap<Uuid, Reason> = BTreeMap::new();
    let mut add = |u: Uuid, r: Reason| {
        if u != sender && members.contains(&u) {
            let e = out.entry(u).or_insert(r);
            *e = (*e).max(r);
        }
    };
    let shown_in_channel = thread_ts.is_none() || *also_in_channel;
    if kind.is_direct() {
        members.iter().for_each(|u| add(*u, Reason::Dm));
    }
    mentions.users.iter().for_each(|u| add(*u, Reason::Mention));
    if mentions.channel && shown_in_channel {
        members.iter().for_each(|u| add(*u, Reason::Channel));
    }
    if let Some(t) = thread {
        t.reply_users.iter().for_each(|u| add(*u, Reason::Thread));
    }
    if shown_in_channel {
        members.iter().for_each(|u| add(*u, Reason::Message));
    }
    out.retain(|u, reason| {
        let p = prefs(u);
        if p.muted_channels.contains(&event.channel_id) && *reason != Reason::Mention {
            return false;
        }
        match p.level {
            Level::Nothing => false,
            Level::Mentions => *reason != Reason::Message,
            Level::All => true,
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_core::event::ThreadState;

    fn post(ch: Uuid, from: Uuid, text: &str, thread: Option<ThreadState>) -> Event {
        Event {
            event_id: Uuid::new_v4(),
            workspace_id: Uuid::new_v4(),
            channel_id: ch,
            actor_id: from,
            occurred_at: 1,
            seq: 2,
            schema_version: 3,
            payload: Payload::MessagePosted {
                message_id: Uuid::new_v4(),
                client_msg_id: "c".into(),
                text: text.into(),
                thread_ts: thread.as_ref().map(|_| Uuid::new_v4()),
                also_in_channel: false,
                thread,
                attachments: vec![],
            },
            sealing: Default::default(),
        }
    }

    #[test]
    fn dms_mentions_threads_and_preferences() {
        let (ch, a, b, c, d) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let members: HashSet<Uuid> = [a, b, c].into();
        let default = |_: &Uuid| Prefs::default();
        // a DM reaches everyone but the sender
        let r = recipients(&post(ch, a, "hi", None), ChannelKind::GroupDm, &members, default);
        assert_eq!(r, BTreeMap::from([(b, Reason::Dm), (c, Reason::Dm)]));
        // in a channel, only mentions by default; non-members and @here never
        let r = recipients(&post(ch, a, &format!("<@{b}> <@{d}> @here"), None), ChannelKind::Public, &members, default);
        assert_eq!(r, BTreeMap::from([(b, Reason::Mention)]));
        let r = recipients(&post(ch, a, "@channel ship it", None), ChannelKind::Public, &members, default);
        assert_eq!(r, BTreeMap::from([(b, Reason::Channel), (c, Reason::Channel)]));
        // thread replies reach earlier repliers
        let t = ThreadState { reply_count: 2, reply_users: vec![c, a] };
        let r = recipients(&post(ch, a, "done", Some(t)), ChannelKind::Public, &members, default);
        assert_eq!(r, BTreeMap::from([(c, Reason::Thread)]));
        // preferences: `all` hears plain messages; `nothing` hears nothing; muted hears mentions only
        let prefs = |u: &Uuid| match u {
            u if *u == b => Prefs { level: Level::All, ..Default::default() },
            u if *u == c => Prefs { level: Level::Nothing, ..Default::default() },
            _ => Prefs::default(),
        };
        let r = recipients(&post(ch, a, "lunch?", None), ChannelKind::Public, &members, prefs);
        assert_eq!(r, BTreeMap::from([(b, Reason::Message)]));
        let muted = |_: &Uuid| Prefs { level: Level::All, muted_channels: [ch].into() };
        let r = recipients(&post(ch, a, &format!("@channel and <@{c}>"), None), ChannelKind::Public, &members, muted);
        assert_eq!(r, BTreeMap::from([(c, Reason::Mention)]));
        // edits and everything else: nobody
        let mut e = post(ch, a, "x", None);
        e.payload = Payload::MemberJoined { user_id: b };
        assert!(recipients(&e, ChannelKind::Public, &members, default).is_empty());
    }
}
