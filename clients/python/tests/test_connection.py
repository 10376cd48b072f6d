"""Connecting: hello, the token in the subprotocol, a refused token, heartbeats keeping the
connection up, and a connection whose pongs stop coming being dropped and resumed."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from confab_client import (
    ConfabAuthError,
    ConfabClient,
    Disconnected,
    Hello,
    MessageNew,
    ResumeDone,
    connect,
)
from support import EventRecorder

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def test_connect_waits_for_hello_with_the_users_identity(team):
    async with connect(team.base_url, team.alice.token) as alice:
        hello = alice.hello
        assert isinstance(hello, Hello)
        assert hello.user_id == team.alice.user_id
        assert hello.workspace_id == team.workspace_id
        assert hello.conn_id
        assert isinstance(hello.heartbeat_interval, int) and hello.heartbeat_interval > 0
        assert UUID.match(hello.user_id)
        assert alice.connected
        # the server selected the `confab` subprotocol; the token never went into the URL
        assert alice._websocket is not None and alice._websocket.subprotocol == "confab"
        assert team.alice.token not in alice.websocket_url
        assert alice.websocket_url == team.base_url.replace("http://", "ws://") + "/ws"
        first = await alice.next_event(timeout_seconds=5)
        assert isinstance(first, Hello) and first.conn_id == hello.conn_id


async def test_a_refused_token_raises_an_auth_error(team):
    forged = team.alice.token[:-4] + ("AAAA" if not team.alice.token.endswith("AAAA") else "BBBB")
    with pytest.raises(ConfabAuthError) as refused:
        await asyncio.wait_for(connect(team.base_url, forged), 20)
    assert refused.value.http_status == 401
    assert refused.value.code == "unauthorized"
    assert not refused.value.retryable


async def test_heartbeats_keep_the_connection_up(team):
    # pings every 0.2 s, each must be answered within 2 s or the connection is dropped
    async with connect(
        team.base_url, team.alice.token, heartbeat_interval_seconds=0.2, pong_timeout_seconds=2
    ) as alice:
        recorder = EventRecorder(alice)
        await asyncio.sleep(3)
        assert alice.connection_count == 1, "a pong was missed and the connection was dropped"
        assert not recorder.of_type(Disconnected)
        ack = await alice.send(team.general_channel_id, "still here", timeout_seconds=10)
        assert ack.attempts == 1
        await recorder.stop()


class PongDeafClient(ConfabClient):
    """Ignores pongs on its first connection, as if the network had silently died."""

    def _dispatch(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "pong" and self.connection_count == 1:
            return
        super()._dispatch(frame)


async def test_a_missing_pong_drops_the_connection_and_it_resumes(team):
    alice = PongDeafClient(team.base_url, team.alice.token, heartbeat_interval_seconds=0.3, pong_timeout_seconds=0.7)
    async with alice:
        recorder = EventRecorder(alice)
        await recorder.wait_for(lambda e: isinstance(e, Disconnected), "the dead connection to be dropped", 10)
        await recorder.wait_for(lambda e: isinstance(e, ResumeDone), "the reconnect to resume", 15)
        assert alice.connection_count == 2
        hellos = recorder.of_type(Hello)
        assert len(hellos) == 2 and hellos[0].conn_id != hellos[1].conn_id
        # the new connection works
        await alice.send(team.general_channel_id, "after the reconnect", timeout_seconds=15)
        await recorder.wait_for(
            lambda e: isinstance(e, MessageNew) and e.message.text == "after the reconnect", "my own message", 10
        )
        await recorder.stop()
