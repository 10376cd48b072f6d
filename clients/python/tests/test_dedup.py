"""The client's own delivery rules, on frames fed to it directly (no server needed): each
channel event once per (channel_id, seq) and never older than what was delivered, answers and
read markers never taken for channel events, and what a resume is asked to start from."""

from __future__ import annotations

from confab_client import ChannelMarked, ConfabClient, MessageNew, ReactionAdded

CHANNEL_A = "00000000-0000-4000-8000-00000000000a"
CHANNEL_B = "00000000-0000-4000-8000-00000000000b"
USER = "00000000-0000-4000-8000-000000000001"
WORKSPACE = "00000000-0000-4000-8000-0000000000ff"


def message_new(channel_id: str, seq: int, text: str) -> dict:
    return {
        "type": "message:new",
        "message": {
            "workspace_id": WORKSPACE,
            "channel_id": channel_id,
            "message_id": f"m-{channel_id[-1]}-{seq}",
            "seq": seq,
            "user_id": USER,
            "text": text,
            "ts": 1_700_000_000_000 + seq,
        },
    }


def drain(client: ConfabClient) -> list:
    events = []
    while not client._events.empty():
        events.append(client._events.get_nowait())
    return events


async def test_channel_events_are_delivered_once_and_in_order_per_channel():
    client = ConfabClient("http://127.0.0.1:1", "token")
    for frame in [
        message_new(CHANNEL_A, 5, "a5"),
        message_new(CHANNEL_A, 5, "a5 again"),  # a duplicate
        message_new(CHANNEL_B, 2, "b2"),  # another channel counts on its own
        message_new(CHANNEL_A, 4, "a4 late"),  # older than delivered
        {
            "type": "reaction:added",
            "workspace_id": WORKSPACE,
            "channel_id": CHANNEL_A,
            "message_id": "m-a-5",
            "emoji": "tada",
            "user_id": USER,
            "users": [USER],
            "seq": 6,
        },
        {
            "type": "reaction:added",
            "workspace_id": WORKSPACE,
            "channel_id": CHANNEL_A,
            "message_id": "m-a-5",
            "emoji": "tada",
            "user_id": USER,
            "users": [USER],
            "seq": 6,
        },
        # answers and read markers carry seqs that are not the channel's events
        {
            "type": "message:ack",
            "client_msg_id": "c",
            "channel_id": CHANNEL_A,
            "message_id": "m-a-7",
            "seq": 7,
            "ts": 1,
        },
        {"type": "channel:marked", "workspace_id": WORKSPACE, "channel_id": CHANNEL_A, "seq": 6},
        {"type": "channel:marked", "workspace_id": WORKSPACE, "channel_id": CHANNEL_A, "seq": 6},
        message_new(CHANNEL_A, 7, "a7"),
    ]:
        client._dispatch(frame)
    events = drain(client)
    described = [(e.message.text if isinstance(e, MessageNew) else e.type) for e in events]
    assert described == ["a5", "b2", "reaction:added", "channel:marked", "channel:marked", "a7"]
    assert isinstance(events[2], ReactionAdded) and isinstance(events[3], ChannelMarked)
    assert client.duplicates_dropped == 3
    assert client.positions() == {CHANNEL_A: 7, CHANNEL_B: 2}
    await client.http.aclose()


async def test_a_resume_starts_from_the_furthest_known_position():
    client = ConfabClient("http://127.0.0.1:1", "token")
    client._dispatch(message_new(CHANNEL_A, 3, "a3"))
    client.advance(CHANNEL_A, 2)  # older than delivered: no effect
    client.advance(CHANNEL_B, 9)  # seen over HTTP only
    assert client._resume_positions() == {CHANNEL_B: 9, CHANNEL_A: 3}
    # a resume:done moves positions on and drops channels the user is no longer in
    client._resuming = True
    client._dispatch(
        {"type": "resume:done", "replayed": 0, "channels": {CHANNEL_A: 12}, "gaps": [], "not_members": [CHANNEL_B]}
    )
    assert client._resume_positions() == {CHANNEL_A: 12}
    assert not client._resuming
    # live events go on from there
    client._dispatch(message_new(CHANNEL_A, 13, "a13"))
    assert [e.message.text for e in drain(client) if isinstance(e, MessageNew)] == ["a3", "a13"]
    await client.http.aclose()


async def test_an_error_while_resuming_becomes_resume_failed():
    client = ConfabClient("http://127.0.0.1:1", "token")
    client._dispatch(message_new(CHANNEL_A, 3, "a3"))
    client._resume_positions_sent = client._resume_positions()
    client._resuming = True
    client._dispatch({"type": "error", "code": "resume_unavailable", "message": "cannot resume now"})
    failed = drain(client)[-1]
    assert failed.type == "client:resume_failed"
    assert failed.code == "resume_unavailable" and failed.positions == {CHANNEL_A: 3}
    await client.http.aclose()
