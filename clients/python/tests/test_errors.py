"""Refusals become typed errors: an `error` frame answering a command raises `ConfabError`
with the server's code and the command's client_msg_id; one answering nothing the client waits
for (a refused `typing:start`) arrives as an `ErrorEvent`; HTTP error bodies raise too."""

from __future__ import annotations

import uuid

import pytest

from confab_client import ConfabAuthError, ConfabError, ConfabHttp, ErrorEvent, connect
from support import EventRecorder


async def test_sending_to_a_public_channel_you_are_not_in_is_not_a_member(team):
    alices_own = team.add_channel("alice-only", [team.alice], creator=team.alice)
    async with connect(team.base_url, team.bob.token) as bob:
        with pytest.raises(ConfabError) as refused:
            await bob.send(alices_own, "let me in", client_msg_id="bob-intrudes")
        assert refused.value.code == "not_a_member"
        assert refused.value.client_msg_id == "bob-intrudes"
        assert not refused.value.retryable


async def test_a_private_channel_you_are_not_in_does_not_exist(team):
    secret = team.add_channel("secret", [team.alice], private=True, creator=team.alice)
    async with connect(team.base_url, team.bob.token) as bob:
        with pytest.raises(ConfabError) as refused:
            await bob.send(secret, "anyone?")
        assert refused.value.code == "channel_not_found"
        with pytest.raises(ConfabError) as refused_over_http:
            await bob.http.history(secret)
        assert refused_over_http.value.code == "channel_not_found"
        assert refused_over_http.value.http_status == 404


async def test_invalid_input_gets_the_matching_code(team):
    async with connect(team.base_url, team.alice.token) as alice:
        with pytest.raises(ConfabError) as empty:
            await alice.send(team.general_channel_id, "")
        assert empty.value.code == "empty_text"
        with pytest.raises(ConfabError) as too_long:
            await alice.send(team.general_channel_id, "x" * 40_001)
        assert too_long.value.code == "text_too_long"
        with pytest.raises(ConfabError) as not_a_uuid:
            await alice.send("not-a-channel-id", "hello")
        assert not_a_uuid.value.code == "invalid_field"
        with pytest.raises(ConfabError) as bad_emoji:
            ack = await alice.send(team.general_channel_id, "react to me")
            await alice.react(team.general_channel_id, ack.message_id, "has space")
        assert bad_emoji.value.code == "invalid_field"
        with pytest.raises(ConfabError) as unknown_message:
            await alice.edit(team.general_channel_id, str(uuid.uuid4()), "new text")
        assert unknown_message.value.code == "message_not_found"
        # the socket stays open after refusals
        ack = await alice.send(team.general_channel_id, "still fine")
        assert ack.attempts == 1 and alice.connection_count == 1


async def test_an_unanswerable_error_arrives_as_an_error_event(team):
    elsewhere = team.add_channel("elsewhere", [team.alice], private=True, creator=team.alice)
    async with connect(team.base_url, team.bob.token) as bob:
        recorder = EventRecorder(bob)
        assert await bob.typing(elsewhere)
        error = await recorder.wait_for(lambda e: isinstance(e, ErrorEvent), "the refused typing's error")
        assert isinstance(error, ErrorEvent)
        assert error.code == "channel_not_found"
        assert error.client_msg_id is None
        await recorder.stop()


async def test_http_errors_become_confab_errors(team):
    async with ConfabHttp(team.base_url, team.alice.token) as http:
        with pytest.raises(ConfabError) as bad_limit:
            await http.history(team.general_channel_id, limit=0)
        assert bad_limit.value.code == "invalid_field"
        assert bad_limit.value.http_status == 400
        with pytest.raises(ConfabError) as missing:
            await http.history(str(uuid.uuid4()))
        assert missing.value.code == "channel_not_found"
    async with ConfabHttp(team.base_url, "cfb1.not-a-token.at-all") as stranger:
        with pytest.raises(ConfabAuthError) as refused:
            await stranger.me()
        assert refused.value.http_status == 401
        assert refused.value.code == "unauthorized"
