"""The other client frames of the contract: channel create/rename/archive/invite/leave/kick,
DMs, joins, read markers (to your other connections), typing and presence, each answered and
seen by the other member as the typed event."""

from __future__ import annotations

import pytest

from confab_client import (
    ChannelArchived,
    ChannelCreated,
    ChannelJoined,
    ChannelLeft,
    ChannelMarked,
    ChannelRenamed,
    CommandOk,
    ConfabError,
    MessageNew,
    PresenceChange,
    Typing,
    connect,
)
from support import EventRecorder


async def test_channel_lifecycle_and_dms(team):
    async with connect(team.base_url, team.alice.token) as alice, connect(team.base_url, team.bob.token) as bob:
        bob_events = EventRecorder(bob)
        created = await alice.create_channel("projects", members=[team.bob.user_id])
        assert isinstance(created, CommandOk) and created.channel_id and created.seq >= 1
        channel = created.channel_id
        announced = await bob_events.wait_for(
            lambda e: isinstance(e, ChannelCreated) and e.channel_id == channel, "channel:created"
        )
        assert announced.name == "projects" and announced.kind == "public" and not announced.is_private
        assert set(announced.members) == {team.alice.user_id, team.bob.user_id}

        await alice.rename_channel(channel, "projects-2026")
        renamed = await bob_events.wait_for(lambda e: isinstance(e, ChannelRenamed), "channel:renamed")
        assert renamed.name == "projects-2026"

        carol = team.add_person("carol")
        await alice.invite(channel, carol.user_id)
        joined = await bob_events.wait_for(
            lambda e: isinstance(e, ChannelJoined) and e.user_id == carol.user_id, "carol's channel:joined"
        )
        assert joined.by == team.alice.user_id

        await alice.kick(channel, carol.user_id)
        kicked = await bob_events.wait_for(
            lambda e: isinstance(e, ChannelLeft) and e.user_id == carol.user_id, "carol's channel:left"
        )
        assert kicked.by == team.alice.user_id
        with pytest.raises(ConfabError) as not_creator:
            await bob.kick(channel, team.alice.user_id)
        assert not_creator.value.code == "forbidden"

        await alice.archive_channel(channel)
        archived = await bob_events.wait_for(lambda e: isinstance(e, ChannelArchived), "channel:archived")
        assert archived.archived is True
        with pytest.raises(ConfabError) as read_only:
            await bob.send(channel, "too late")
        assert read_only.value.code == "channel_archived"
        await alice.archive_channel(channel, archived=False)

        await bob.leave_channel(channel)
        await bob_events.wait_for(
            lambda e: isinstance(e, ChannelLeft) and e.user_id == team.bob.user_id, "bob's own channel:left"
        )
        assert channel not in bob.positions()
        await bob.join(channel)
        await bob_events.wait_for(
            lambda e: isinstance(e, ChannelJoined) and e.user_id == team.bob.user_id and e.channel_id == channel,
            "bob's channel:joined",
        )

        dm = await alice.open_dm([team.bob.user_id])
        again = await alice.open_dm([team.bob.user_id])
        assert dm.channel_id == again.channel_id
        await alice.send(dm.channel_id, "psst")
        message = await bob_events.wait_for(
            lambda e: isinstance(e, MessageNew) and e.message.channel_id == dm.channel_id, "the DM"
        )
        assert message.message.text == "psst"
        dm_created = [e for e in bob_events.of_type(ChannelCreated) if e.channel_id == dm.channel_id]
        assert len(dm_created) == 1 and dm_created[0].kind == "dm"
        await bob_events.stop()


async def test_read_markers_reach_your_other_connections(team):
    async with connect(team.base_url, team.alice.token) as laptop, connect(team.base_url, team.alice.token) as phone:
        phone_events = EventRecorder(phone)
        ack = await laptop.send(team.general_channel_id, "read me")
        answer = await laptop.mark_read(team.general_channel_id, ack.seq)
        assert isinstance(answer, CommandOk)
        marked = await phone_events.wait_for(lambda e: isinstance(e, ChannelMarked), "channel:marked on the phone")
        assert marked.channel_id == team.general_channel_id and marked.seq == ack.seq
        channels = {c.channel_id: c for c in await laptop.http.channels()}
        assert channels[team.general_channel_id].last_read_seq == ack.seq
        await phone_events.stop()


async def test_typing_and_presence(team):
    async with connect(team.base_url, team.bob.token) as bob:
        bob_events = EventRecorder(bob)
        async with connect(team.base_url, team.alice.token) as alice:
            await bob_events.wait_for(
                lambda e: (
                    isinstance(e, PresenceChange)
                    and any(u.user_id == team.alice.user_id and u.status == "active" for u in e.users)
                ),
                "alice active",
            )
            assert await alice.typing(team.general_channel_id)
            typing = await bob_events.wait_for(lambda e: isinstance(e, Typing), "typing")
            assert typing.user_id == team.alice.user_id and typing.channel_id == team.general_channel_id
            assert typing.expires_in_ms > 0

            assert await alice.set_presence("away")
            await bob_events.wait_for(
                lambda e: (
                    isinstance(e, PresenceChange)
                    and any(u.user_id == team.alice.user_id and u.status == "away" for u in e.users)
                ),
                "alice away",
            )
            statuses = await bob.http.presence([team.alice.user_id])
            assert statuses[team.alice.user_id] == "away"
            with pytest.raises(ValueError):
                await alice.set_presence("offline")
        await bob_events.stop()
