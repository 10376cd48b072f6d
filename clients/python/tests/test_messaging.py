"""Sending: the ack, delivery to the other member exactly once, retries with the same
client_msg_id (after a drop, or by hand) yielding one message, and `rate_limited` being backed
off and retried."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import websockets

from confab_client import ConfabClient, ConfabError, MessageAck, MessageNew, connect, websocket_url
from support import EventRecorder, poll


async def history_with_client_msg_id(client: ConfabClient, channel_id: str, client_msg_id: str) -> list:
    page = await client.http.history(channel_id, limit=200)
    return [m for m in page.messages if m.client_msg_id == client_msg_id]


async def test_a_send_is_acked_and_the_other_member_gets_it_exactly_once(team):
    async with connect(team.base_url, team.alice.token) as alice, connect(team.base_url, team.bob.token) as bob:
        bob_events, alice_events = EventRecorder(bob), EventRecorder(alice)
        ack = await alice.send(team.general_channel_id, "hello bob")
        assert isinstance(ack, MessageAck)
        assert ack.channel_id == team.general_channel_id
        assert ack.seq > 0 and ack.ts > 0 and ack.message_id
        assert ack.attempts == 1
        received = await bob_events.wait_for(
            lambda e: isinstance(e, MessageNew) and e.message.message_id == ack.message_id, "bob's message:new"
        )
        assert isinstance(received, MessageNew)
        assert received.message.text == "hello bob"
        assert received.message.user_id == team.alice.user_id
        assert received.message.seq == ack.seq
        assert received.message.client_msg_id == ack.client_msg_id
        assert received.message.workspace_id == team.workspace_id
        # the sender hears her own message too
        await alice_events.wait_for(
            lambda e: isinstance(e, MessageNew) and e.message.message_id == ack.message_id, "alice's own message:new"
        )
        # a moment for any duplicate to arrive
        await asyncio.sleep(1.0)
        assert [m.message_id for m in bob_events.messages()].count(ack.message_id) == 1
        assert [m.message_id for m in alice_events.messages()].count(ack.message_id) == 1
        await bob_events.stop()
        await alice_events.stop()


async def test_resending_the_same_client_msg_id_yields_the_original_message(team):
    client_msg_id = f"retry-{uuid.uuid4()}"
    frame = {
        "type": "message:send",
        "channel_id": team.general_channel_id,
        "text": "only once",
        "client_msg_id": client_msg_id,
    }
    # a first attempt on a bare socket (as a crashed client would have made), answered...
    async with websockets.connect(
        websocket_url(team.base_url), subprotocols=["confab", "bearer." + team.alice.token], ping_interval=None
    ) as raw_socket:
        hello = json.loads(await asyncio.wait_for(raw_socket.recv(), 10))
        assert hello["type"] == "hello"
        await raw_socket.send(json.dumps(frame))
        while True:
            answer = json.loads(await asyncio.wait_for(raw_socket.recv(), 10))
            if answer["type"] == "message:ack":
                break
            assert answer["type"] != "error", answer
    # ...then the client resends it twice with the same id: the same message every time
    async with connect(team.base_url, team.alice.token) as alice:
        retried = await alice.send(team.general_channel_id, "only once", client_msg_id=client_msg_id)
        again = await alice.send(team.general_channel_id, "only once", client_msg_id=client_msg_id)
        assert retried.message_id == answer["message_id"] == again.message_id
        assert retried.seq == answer["seq"] == again.seq
        stored = await poll(
            "the message in history",
            lambda: history_with_client_msg_id(alice, team.general_channel_id, client_msg_id),
            lambda found: len(found) >= 1,
        )
        await asyncio.sleep(0.5)
        stored = await history_with_client_msg_id(alice, team.general_channel_id, client_msg_id)
        assert len(stored) == 1, stored
        assert stored[0].message_id == answer["message_id"]


class DropsAfterFirstSend(ConfabClient):
    """Loses its connection right after writing its first `message:send`, before any ack can
    arrive: the send must be retried on the next connection with the same client_msg_id."""

    dropped = False

    async def _transmit(self, websocket: Any, frame: dict[str, Any]) -> None:
        await super()._transmit(websocket, frame)
        if frame["type"] == "message:send" and not self.dropped:
            self.dropped = True
            self.drop_connection()


async def test_a_send_interrupted_by_a_drop_is_retried_and_stored_once(team):
    async with connect(team.base_url, team.bob.token) as bob:
        bob_events = EventRecorder(bob)
        alice = DropsAfterFirstSend(team.base_url, team.alice.token)
        async with alice:
            ack = await alice.send(team.general_channel_id, "through a drop", timeout_seconds=30)
            assert alice.dropped
            assert ack.attempts >= 2, "the send was not retried after the drop"
            assert alice.connection_count >= 2
            await bob_events.wait_for(
                lambda e: isinstance(e, MessageNew) and e.message.message_id == ack.message_id, "bob's copy"
            )
            await asyncio.sleep(1.0)
            assert [m.text for m in bob_events.messages()].count("through a drop") == 1
            stored = await poll(
                "the message in history",
                lambda: history_with_client_msg_id(alice, team.general_channel_id, ack.client_msg_id),
                lambda found: len(found) >= 1,
            )
            assert len(stored) == 1 and stored[0].message_id == ack.message_id
        await bob_events.stop()


async def test_rate_limited_sends_are_backed_off_and_retried(team):
    # one user may send 10 messages a second in bursts of 50: 70 at once must hit the limit
    sender = team.add_person("burst")
    channel = team.add_channel("burst", [sender])
    async with connect(team.base_url, sender.token, request_timeout_seconds=60) as client:
        acks = await asyncio.wait_for(asyncio.gather(*(client.send(channel, f"burst {i}") for i in range(70))), 90)
        assert len({ack.message_id for ack in acks}) == 70
        assert max(ack.attempts for ack in acks) > 1, "no send was ever rate limited"
        history = await poll(
            "70 messages in history",
            lambda: client.http.history(channel, limit=200),
            lambda page: len(page.messages) >= 70,
        )
        assert sorted(m.text for m in history.messages) == sorted(f"burst {i}" for i in range(70))


async def test_rate_limited_is_a_retryable_confab_error_when_not_retried(team):
    sender = team.add_person("impatient")
    channel = team.add_channel("impatient", [sender])
    async with connect(team.base_url, sender.token, retry_rate_limited=False) as client:
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(client.send(channel, f"m{i}") for i in range(70)), return_exceptions=True), 60
        )
        refusals = [o for o in outcomes if isinstance(o, BaseException)]
        assert refusals, "70 sends at once were never rate limited"
        for refusal in refusals:
            assert isinstance(refusal, ConfabError), refusal
            assert refusal.code == "rate_limited"
            assert refusal.retryable
            assert refusal.client_msg_id
        assert sum(isinstance(o, MessageAck) for o in outcomes) >= 50
