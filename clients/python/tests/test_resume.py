"""Lossless resume: what was sent while a client was disconnected arrives after it reconnects,
exactly once and in order, then live events; gaps the server could not replay are fetched over
HTTP; a channel that had no event on the socket yet is resumed too (its position comes from
`GET /api/channels`)."""

from __future__ import annotations

import asyncio

from confab_client import ConfabClient, Disconnected, MessageNew, ResumeDone, connect
from conftest import RESUME_MAX_ENTRIES
from support import EventRecorder


class GatedReconnect(ConfabClient):
    """Stays disconnected after a drop until the test opens the gate."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reconnect_gate = asyncio.Event()

    async def _reconnect_delay(self, failed_attempts: int) -> None:
        await asyncio.wait_for(self.reconnect_gate.wait(), 60)


def texts_and_seqs(recorder: EventRecorder, channel_id: str) -> list[tuple[str, int]]:
    return [(m.text, m.seq) for m in recorder.messages(channel_id)]


async def test_resume_delivers_what_was_missed_once_in_order_then_live_events(team):
    channel = team.general_channel_id
    async with connect(team.base_url, team.alice.token) as alice:
        bob = GatedReconnect(team.base_url, team.bob.token)
        async with bob:
            bob_events = EventRecorder(bob)
            first = await alice.send(channel, "before the drop")
            await bob_events.wait_for(
                lambda e: isinstance(e, MessageNew) and e.message.text == "before the drop", "msg 1"
            )

            bob.drop_connection()
            await bob_events.wait_for(lambda e: isinstance(e, Disconnected), "bob's disconnect")
            missed = [await alice.send(channel, f"missed {i}") for i in range(5)]
            assert [a.seq for a in missed] == list(range(first.seq + 1, first.seq + 6))

            bob.reconnect_gate.set()
            done = await bob_events.wait_for(lambda e: isinstance(e, ResumeDone), "resume:done", 20)
            assert isinstance(done, ResumeDone)
            assert done.replayed == 5
            assert done.gaps == []
            assert done.channels[channel] == missed[-1].seq
            live = await alice.send(channel, "after the resume")
            await bob_events.wait_for(
                lambda e: isinstance(e, MessageNew) and e.message.text == "after the resume", "live msg"
            )
            await asyncio.sleep(1.0)  # room for any duplicate

            expected = [("before the drop", first.seq)] + [(f"missed {i}", a.seq) for i, a in enumerate(missed)]
            expected.append(("after the resume", live.seq))
            assert texts_and_seqs(bob_events, channel) == expected
            # the replay came before resume:done, the live message after it
            order = [e for e in bob_events.events if isinstance(e, (MessageNew, ResumeDone))]
            assert isinstance(order[6], ResumeDone)
            assert bob.connection_count == 2
            await bob_events.stop()


async def test_gaps_the_server_cannot_replay_are_fetched_over_http(team):
    channel = team.general_channel_id
    missed_count = RESUME_MAX_ENTRIES + 10
    async with connect(team.base_url, team.alice.token) as alice:
        bob = GatedReconnect(team.base_url, team.bob.token)
        async with bob:
            bob_events = EventRecorder(bob)
            first = await alice.send(channel, "anchor")
            await bob_events.wait_for(lambda e: isinstance(e, MessageNew) and e.message.text == "anchor", "the anchor")
            bob.drop_connection()
            await bob_events.wait_for(lambda e: isinstance(e, Disconnected), "bob's disconnect")
            missed = [await alice.send(channel, f"gap {i}") for i in range(missed_count)]
            bob.reconnect_gate.set()
            done = await bob_events.wait_for(lambda e: isinstance(e, ResumeDone), "resume:done", 20)
            assert isinstance(done, ResumeDone)
            assert done.gaps, f"{missed_count} missed events but no gap (resume_max_entries={RESUME_MAX_ENTRIES})"
            assert all(gap.channel_id == channel for gap in done.gaps)
            assert done.gaps[0].from_seq == first.seq + 1

            replayed = [m for m in bob_events.messages(channel) if m.text.startswith("gap ")]
            fetched = await bob.fetch_gaps(done.gaps)
            # every missed message once: the gap's from HTTP, the rest from the replay
            together = sorted([(m.seq, m.text) for m in replayed + fetched])
            assert together == [(a.seq, f"gap {i}") for i, a in enumerate(missed)]
            # fetch_missed without an anchor pages backwards and finds the same
            bob.forget(channel)
            again = await bob.fetch_missed(channel, first.seq, done.gaps[-1].to_seq)
            assert [(m.seq, m.text) for m in again] == sorted((m.seq, m.text) for m in fetched)
            await bob_events.stop()


async def test_a_channel_quiet_on_the_socket_is_resumed_too(team):
    quiet = team.add_channel("quiet", [team.alice, team.bob], creator=team.alice)
    async with connect(team.base_url, team.alice.token) as alice:
        bob = GatedReconnect(team.base_url, team.bob.token)
        async with bob:
            bob_events = EventRecorder(bob)
            # bob saw nothing on the socket in #quiet: its position came from GET /api/channels
            assert quiet in bob.positions()
            bob.drop_connection()
            await bob_events.wait_for(lambda e: isinstance(e, Disconnected), "bob's disconnect")
            ack = await alice.send(quiet, "while you were away")
            bob.reconnect_gate.set()
            await bob_events.wait_for(lambda e: isinstance(e, ResumeDone), "resume:done", 20)
            message = await bob_events.wait_for(
                lambda e: isinstance(e, MessageNew) and e.message.message_id == ack.message_id, "the missed message"
            )
            assert message.message.text == "while you were away"
            await bob_events.stop()
