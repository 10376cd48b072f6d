"""The HTTP helpers against the real API: the caller, users, every page of channels, presence,
history in all three directions, threads, pins, and search finding a message shortly after it
was sent."""

from __future__ import annotations

import uuid

from confab_client import ConfabHttp, MessageNew, connect
from support import EventRecorder, poll


async def test_me_users_channels_and_presence(team):
    names = [f"topic-{i}" for i in range(4)]
    for name in names:
        team.add_channel(name, [team.alice])
    team.add_channel("not-for-alice", [team.bob], private=True, creator=team.bob)
    async with connect(team.base_url, team.alice.token) as alice:
        me = await alice.http.me()
        assert me.user_id == team.alice.user_id
        assert me.workspace_id == team.workspace_id
        assert me.name == "alice"
        assert team.general_channel_id in me.channels

        users = await alice.http.users()
        assert [u.name for u in users] == ["alice", "bob"]
        assert {u.user_id for u in users} == {team.alice.user_id, team.bob.user_id}

        # one channel looked at per call: every page must be followed to see them all
        channels = await alice.http.channels(page_size=1)
        by_name = {c.name: c for c in channels}
        assert set(by_name) == {"general", *names}, "a page was missed, or a private channel leaked"
        assert [c.name for c in channels] == sorted(by_name)
        assert all(c.is_member for c in channels)
        assert all(isinstance(c.last_seq, int) and c.last_seq >= 1 for c in channels)
        assert by_name["general"].channel_id == team.general_channel_id

        detail = await alice.http.channel(team.general_channel_id)
        assert set(detail.members or []) == {team.alice.user_id, team.bob.user_id}

        statuses = await poll(
            "alice to be active",
            lambda: alice.http.presence([team.alice.user_id, team.bob.user_id]),
            lambda s: s.get(team.alice.user_id) == "active",
            timeout_seconds=10,
        )
        assert statuses[team.bob.user_id] == "offline"


async def test_history_pages_in_every_direction(team):
    channel = team.add_channel("history", [team.alice])
    async with connect(team.base_url, team.alice.token) as alice:
        acks = [await alice.send(channel, f"line {i:02d}") for i in range(12)]
        texts = [f"line {i:02d}" for i in range(12)]
        await poll(
            "12 messages in history",
            lambda: alice.http.history(channel, limit=50),
            lambda page: len(page.messages) == 12,
        )
        # newest first, five at a time, following next_cursor
        seen, cursor, pages = [], None, 0
        while True:
            page = await alice.http.history(channel, limit=5, cursor=cursor)
            pages += 1
            seen.extend(m.text for m in page.messages)
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        assert seen == list(reversed(texts))
        assert pages >= 3
        assert [m.text async for m in alice.http.iter_history(channel, page_size=5)] == list(reversed(texts))
        # oldest first after a message, following next_after
        newer = [m.text async for m in alice.http.iter_history(channel, after=acks[3].message_id, page_size=4)]
        assert newer == texts[4:]
        # around a message: it and its neighbours, oldest first
        around = await alice.http.history(channel, around=acks[6].message_id, limit=4)
        assert [m.text for m in around.messages] == texts[4:9]
        # seqs in history are the acks'
        page = await alice.http.history(channel, limit=1)
        assert page.messages[0].seq == acks[-1].seq and page.messages[0].message_id == acks[-1].message_id


async def test_threads_pins_edits_reactions_and_deletes(team):
    channel = team.general_channel_id
    async with connect(team.base_url, team.alice.token) as alice, connect(team.base_url, team.bob.token) as bob:
        bob_events = EventRecorder(bob)
        parent = await alice.send(channel, "a thread starts")
        reply = await bob.send(channel, "a reply", thread_ts=parent.message_id)
        new_reply = await bob_events.wait_for(
            lambda e: isinstance(e, MessageNew) and e.message.message_id == reply.message_id, "the reply"
        )
        assert new_reply.message.thread_ts == parent.message_id
        assert new_reply.parent_thread is not None and new_reply.parent_thread.reply_count == 1

        thread = await poll(
            "the thread",
            lambda: alice.http.replies(channel, parent.message_id),
            lambda page: len(page.replies) == 1,
        )
        assert thread.parent.message_id == parent.message_id
        assert thread.parent.thread is not None and thread.parent.thread.reply_count == 1
        assert thread.parent.thread.reply_users == [team.bob.user_id]
        assert thread.replies[0].text == "a reply"

        await alice.edit(channel, parent.message_id, "a thread starts (edited)")
        await alice.react(channel, parent.message_id, "tada")
        await alice.pin(channel, parent.message_id)
        pinned_now = await poll(
            "the pin and the reaction in history",
            lambda: alice.http.pins(channel),
            lambda found: len(found) == 1 and found[0].reactions.get("tada") == [team.alice.user_id],
        )
        assert pinned_now[0].message_id == parent.message_id and pinned_now[0].pinned
        assert pinned_now[0].text == "a thread starts (edited)" and pinned_now[0].edited_at
        await alice.unreact(channel, parent.message_id, "tada")
        await alice.delete(channel, parent.message_id)
        await bob_events.wait_until(
            lambda: (
                [e.type for e in bob_events.events if getattr(e, "message_id", None) == parent.message_id]
                == ["message:edited", "reaction:added", "message:pinned", "reaction:removed", "message:deleted"]
            ),
            "edit, reaction, pin, unreaction and delete, in order",
        )
        edited, added, pinned, removed, deleted = [
            e for e in bob_events.events if getattr(e, "message_id", None) == parent.message_id
        ]
        assert edited.text == "a thread starts (edited)" and edited.user_id == team.alice.user_id
        assert added.emoji == "tada" and added.users == [team.alice.user_id] and added.added
        assert pinned.pinned is True
        assert removed.users == [] and not removed.added
        assert deleted.user_id == team.alice.user_id
        seqs = [edited.seq, added.seq, pinned.seq, removed.seq, deleted.seq]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5

        # a deleted message is a tombstone in history and leaves the pins
        tombstone = await poll(
            "the tombstone in history",
            lambda: alice.http.history(channel, around=parent.message_id, limit=2),
            lambda page: any(m.message_id == parent.message_id and m.deleted for m in page.messages),
        )
        assert [m.text for m in tombstone.messages if m.message_id == parent.message_id] == [""]
        await poll("the pin to go", lambda: alice.http.pins(channel), lambda found: found == [])
        await bob_events.stop()


async def test_search_eventually_finds_a_message(team):
    word = "zebra" + uuid.uuid4().hex[:10]
    async with connect(team.base_url, team.alice.token) as alice:
        ack = await alice.send(team.general_channel_id, f"the {word} crossed the road")
    async with ConfabHttp(team.base_url, team.bob.token) as bob_http:
        found = await poll(
            f"search to find {word}",
            lambda: bob_http.search(word),
            lambda result: result.total >= 1,
            timeout_seconds=30,
        )
        hit = found.messages[0]
        assert hit.message_id == ack.message_id
        assert hit.channel_id == team.general_channel_id and hit.channel_name == "general"
        assert hit.user_id == team.alice.user_id
        assert "<em>" in hit.highlight
        assert (await bob_http.search("nothing" + uuid.uuid4().hex)).total == 0
