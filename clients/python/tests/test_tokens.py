"""Tokens that stop working while connected: `confab admin revoke-tokens` closes the socket
with 4003; without a token provider the client ends with `ConfabAuthError`, with one it gets a
new token, reconnects and resumes."""

from __future__ import annotations

import asyncio

import pytest

from confab_client import ConfabAuthError, Disconnected, MessageNew, ResumeDone, connect
from support import EventRecorder


async def test_revoked_tokens_end_the_client_with_an_auth_error(team):
    async with connect(team.base_url, team.bob.token) as bob:
        events: list = []
        with pytest.raises(ConfabAuthError) as ended:

            async def read_all() -> None:
                async for event in bob:
                    events.append(event)

            reading = asyncio.create_task(read_all())
            await asyncio.to_thread(
                team.server.admin, "revoke-tokens", "--workspace", team.workspace_id, "--user", team.bob.user_id
            )
            await asyncio.wait_for(reading, 20)
        assert ended.value.code == "token_revoked"
        disconnects = [e for e in events if isinstance(e, Disconnected)]
        assert len(disconnects) == 1 and disconnects[0].close_code == 4003 and not disconnects[0].reconnecting
        with pytest.raises(ConfabAuthError):
            await bob.send(team.general_channel_id, "too late")


async def test_a_token_provider_replaces_a_revoked_token_and_the_client_resumes(team):
    minted: list[str] = []

    async def new_token() -> str:
        # tokens issued in the second of the revocation are revoked too
        await asyncio.sleep(1.1)
        answer = await asyncio.to_thread(
            team.server.admin, "token", "--workspace", team.workspace_id, "--user", team.bob.user_id
        )
        minted.append(answer["token"])
        return answer["token"]

    async with connect(team.base_url, team.alice.token) as alice:
        async with connect(team.base_url, team.bob.token, token_provider=new_token) as bob:
            recorder = EventRecorder(bob)
            await asyncio.to_thread(
                team.server.admin, "revoke-tokens", "--workspace", team.workspace_id, "--user", team.bob.user_id
            )
            await recorder.wait_for(
                lambda e: isinstance(e, Disconnected) and e.close_code == 4003, "the 4003 close", 20
            )
            missed = await alice.send(team.general_channel_id, "sent while bob changed tokens")
            await recorder.wait_for(lambda e: isinstance(e, ResumeDone), "the resume with the new token", 30)
            await recorder.wait_for(
                lambda e: isinstance(e, MessageNew) and e.message.message_id == missed.message_id, "the missed message"
            )
            assert minted and bob.token == minted[-1] and bob.http.token == minted[-1]
            assert bob.connection_count == 2
            await bob.send(team.general_channel_id, "back with a new token")
            assert (await bob.http.me()).user_id == team.bob.user_id
            await recorder.stop()
