"""The WebSocket client: one connection kept alive (heartbeats, reconnects with backoff),
lossless resume after a drop, commands that are retried until answered, and the server's
events as typed objects through one async iterator.

Guarantees, as the protocol gives them (`docs/asyncapi.yaml`):

- every channel event is delivered at most once per (channel_id, seq), in order per channel:
  the client remembers, per channel, the highest seq it delivered, and drops anything at or
  below it;
- after a drop it reconnects with `?resume=1` and sends `resume` with those positions; the
  server replays what came after them, then `resume:done` (with `gaps` it could not replay,
  fetched over HTTP with `fetch_gap`), then live events;
- `send` generates a `client_msg_id` and resends the same frame (same id) after a disconnect,
  an unanswered attempt or `rate_limited` until the `message:ack` comes: the server turns a
  retried send into the original message, never a second one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

from ._version import __version__
from .errors import (
    AUTH_CODES,
    CLOSE_TOKEN_EXPIRED,
    CLOSE_TOKEN_REVOKED,
    ConfabAuthError,
    ConfabClosedError,
    ConfabConnectionError,
    ConfabError,
    ConfabTimeoutError,
)
from .events import (
    ChannelLeft,
    CommandOk,
    Disconnected,
    Event,
    Hello,
    MessageAck,
    MessageNew,
    ResumeDone,
    ResumeFailed,
    parse_event,
)
from .http_api import ConfabHttp, http_base_url
from .models import Message, ResumeGap

logger = logging.getLogger("confab_client")

#: Reconnect delays in seconds, one per failed attempt in a row (the last one repeats); each
#: is jittered to between half and all of it so that many clients do not come back at once.
DEFAULT_RECONNECT_DELAYS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
#: Channels one `resume` may name (the server refuses more).
MAX_RESUME_CHANNELS = 2000
#: Error codes (without a client_msg_id) that answer a `resume` frame.
RESUME_ERROR_CODES = frozenset({"resume_unavailable", "unavailable", "invalid_field", "rate_limited"})
#: Codes after which a command is sent again (they never reach the event log).
RESEND_CODES = frozenset({"rate_limited", "unavailable"})
#: The largest frame the server reads without `frame_too_large`.
MAX_OUTGOING_FRAME_BYTES = 256 * 1024
#: What the server sends is far smaller than this.
MAX_INCOMING_FRAME_BYTES = 16 * 1024 * 1024

TokenProvider = Callable[[], Awaitable[str]]

_END_OF_EVENTS = object()


class _ConnectionLost(Exception):
    """The connection a request was sent on dropped before its answer."""


def websocket_url(base_url: str) -> str:
    """`ws(s)://host[:port][/prefix]/ws` from the server's HTTP (or WebSocket) base URL."""
    http_url = http_base_url(base_url)
    scheme, rest = http_url.split("://", 1)
    return ("wss" if scheme == "https" else "ws") + "://" + rest + "/ws"


def new_client_msg_id() -> str:
    """A fresh `client_msg_id` (a uuid4, 36 bytes: within the protocol's 1-64)."""
    return str(uuid.uuid4())


class ConfabClient:
    """A Confab user's real-time connection. Create it with `connect()` (or call `start()`),
    read events with `async for event in client`, and `close()` it when done.

    Options:
      token_provider: called for a new token when the server refuses the current one (HTTP
        401, close 4001 or 4003); without it such a refusal ends the client with
        `ConfabAuthError`.
      heartbeat_interval_seconds: override the server's `hello.heartbeat_interval`.
      pong_timeout_seconds: a ping unanswered this long means the connection is dead.
      answer_timeout_seconds: one attempt of a command waits this long for its answer before
        the client reconnects (and, for sends, retries).
      request_timeout_seconds: a command gives up (`ConfabTimeoutError`) after this long in all.
      connect_timeout_seconds: bound on opening a socket and receiving `hello`.
      reconnect_delays: see `DEFAULT_RECONNECT_DELAYS`.
      retry_rate_limited: resend commands refused with `rate_limited`/`unavailable` after a
        backoff (default) instead of raising at once.
      resume_all_channels: on the first connect, read every channel's `last_seq` over HTTP so
        that a later resume covers channels that had no event on the socket yet.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        token_provider: TokenProvider | None = None,
        heartbeat_interval_seconds: float | None = None,
        pong_timeout_seconds: float = 10.0,
        answer_timeout_seconds: float = 10.0,
        request_timeout_seconds: float = 60.0,
        connect_timeout_seconds: float = 15.0,
        reconnect_delays: Sequence[float] = DEFAULT_RECONNECT_DELAYS,
        retry_rate_limited: bool = True,
        resume_all_channels: bool = True,
        http_timeout_seconds: float = 15.0,
    ) -> None:
        if not reconnect_delays:
            raise ValueError("reconnect_delays needs at least one delay")
        self.base_url = http_base_url(base_url)
        self.websocket_url = websocket_url(base_url)
        self._token = token
        self.token_provider = token_provider
        self.heartbeat_interval_seconds = heartbeat_interval_seconds
        self.pong_timeout_seconds = pong_timeout_seconds
        self.answer_timeout_seconds = answer_timeout_seconds
        self.request_timeout_seconds = request_timeout_seconds
        self.connect_timeout_seconds = connect_timeout_seconds
        self.reconnect_delays = tuple(reconnect_delays)
        self.retry_rate_limited = retry_rate_limited
        self.resume_all_channels = resume_all_channels
        #: The HTTP API as the same user (same token).
        self.http = ConfabHttp(self.base_url, token, timeout_seconds=http_timeout_seconds)

        #: The latest connection's `hello` (None before the first).
        self.hello: Hello | None = None
        #: The latest `resume:done` (None until a reconnect resumed).
        self.last_resume: ResumeDone | None = None
        #: How often the connection was (re)opened, and how many duplicate events were dropped.
        self.connection_count = 0
        self.duplicates_dropped = 0

        self._websocket: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._pending: dict[str, asyncio.Future[Any]] = {}
        # channel_id -> highest seq delivered (dedup), in order of last update
        self._delivered: dict[str, int] = {}
        # channel_id -> seq known to be seen otherwise (HTTP history, resume:done)
        self._floor: dict[str, int] = {}
        # channel_id -> (seq, message_id) of the newest message known: where `after=` starts
        self._anchors: dict[str, tuple[int, str]] = {}
        self._anchors_at_resume: dict[str, tuple[int, str]] = {}
        self._resume_positions_sent: dict[str, int] = {}
        self._resuming = False
        self._has_connected = False
        self._closing = False
        self._fatal: ConfabError | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._first_connection: asyncio.Future[None] | None = None
        self._awaited_pong_id: int | None = None
        self._pong_received = asyncio.Event()

    # lifecycle -------------------------------------------------------------------------------

    async def start(self) -> ConfabClient:
        """Opens the first connection and waits for its `hello`; raises if it cannot
        (`ConfabAuthError` for a refused token, `ConfabConnectionError` otherwise). Later drops
        are reconnected by themselves."""
        if self._supervisor is not None:
            raise RuntimeError("the client is already started")
        self._first_connection = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.create_task(self._supervise(), name="confab-client-connection")
        try:
            await self._first_connection
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        """Closes the connection (1000) and the HTTP client; the event iterator ends and
        pending commands fail with `ConfabClosedError`. Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        websocket = self._websocket
        if websocket is not None:
            try:
                await asyncio.wait_for(websocket.close(1000, "client closing"), 3)
            except (asyncio.TimeoutError, ConnectionClosed, OSError):
                _abort(websocket)
        if self._supervisor is not None and not self._supervisor.done():
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        self._fail_pending(ConfabClosedError())
        if self._first_connection is not None and not self._first_connection.done():
            self._first_connection.set_exception(ConfabClosedError())
        self._events.put_nowait(_END_OF_EVENTS)
        self._connected.set()
        await self.http.aclose()

    async def __aenter__(self) -> ConfabClient:
        if self._supervisor is None:
            await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set() and self._websocket is not None

    @property
    def user_id(self) -> str | None:
        return self.hello.user_id if self.hello else None

    @property
    def workspace_id(self) -> str | None:
        return self.hello.workspace_id if self.hello else None

    @property
    def token(self) -> str:
        return self._token

    async def wait_connected(self, timeout_seconds: float | None = None) -> None:
        """Waits until a connection is open (after a drop: reconnected, `resume` sent)."""
        await self._wait_connected(self.request_timeout_seconds if timeout_seconds is None else timeout_seconds)

    def drop_connection(self) -> None:
        """Drops the current connection abruptly, as a network failure would (no close
        handshake); the client reconnects and resumes by itself."""
        websocket = self._websocket
        self._connected.clear()
        if websocket is not None:
            logger.info("dropping the connection on request")
            _abort(websocket)

    # events ----------------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    async def events(self) -> AsyncIterator[Event]:
        """Every event, in the order received: channel events once per (channel_id, seq),
        `hello` on each connection, `resume:done` after a resume, `typing`, `presence:change`,
        unsolicited `error`s, and the client's own `Disconnected`/`ResumeFailed`. Ends when the
        client is closed; raises the error that ended the client otherwise. One consumer."""
        while True:
            item = await self._events.get()
            if item is _END_OF_EVENTS:
                self._events.put_nowait(_END_OF_EVENTS)
                if self._fatal is not None:
                    raise self._fatal
                return
            yield item

    async def next_event(self, timeout_seconds: float | None = None) -> Event:
        """The next event (`asyncio.TimeoutError` after `timeout_seconds`)."""
        item = await asyncio.wait_for(self._events.get(), timeout_seconds)
        if item is _END_OF_EVENTS:
            self._events.put_nowait(_END_OF_EVENTS)
            raise self._fatal or ConfabClosedError()
        event: Event = item
        return event

    # positions (lossless resume) ------------------------------------------------------------

    def advance(self, channel_id: str, seq: int) -> None:
        """You have seen `channel_id` up to `seq` otherwise (e.g. HTTP history): a resume
        starts from at least there."""
        if seq > self._floor.get(channel_id, -1):
            self._floor[channel_id] = seq

    def forget(self, channel_id: str) -> None:
        """Stops tracking a channel (it is no longer named in `resume`)."""
        self._delivered.pop(channel_id, None)
        self._floor.pop(channel_id, None)
        self._anchors.pop(channel_id, None)
        self._anchors_at_resume.pop(channel_id, None)

    def positions(self) -> dict[str, int]:
        """channel_id -> the seq a resume would start after."""
        merged = dict(self._floor)
        for channel_id, seq in self._delivered.items():
            merged[channel_id] = max(seq, merged.get(channel_id, 0))
        return merged

    def _resume_positions(self) -> dict[str, int]:
        # floors first, then delivered channels in order of their last event: the most recently
        # active channels are kept when there are more than a resume may name
        merged: dict[str, int] = {c: s for c, s in self._floor.items() if c not in self._delivered}
        for channel_id, seq in self._delivered.items():
            merged[channel_id] = max(seq, self._floor.get(channel_id, 0))
        if len(merged) > MAX_RESUME_CHANNELS:
            logger.warning("resuming only the %d most active of %d channels", MAX_RESUME_CHANNELS, len(merged))
            merged = dict(list(merged.items())[-MAX_RESUME_CHANNELS:])
        return merged

    async def fetch_missed(
        self, channel_id: str, after_seq: int, up_to_seq: int | None = None, *, max_messages: int = 10_000
    ) -> list[Message]:
        """The messages of `channel_id` with `after_seq < seq <= up_to_seq` (no upper bound when
        None), oldest first, over HTTP history: forward with `after=` from the newest message the
        client knows before them, or backwards from the newest when it knows none. History holds
        messages only (in their latest state: edits applied, deletes as tombstones), not
        reactions or other events, and leaves out thread-only replies."""
        found: dict[int, Message] = {}
        anchor = self._anchor_at_or_before(channel_id, after_seq)
        seen = 0
        if anchor is not None:
            async for message in self.http.iter_history(channel_id, after=anchor[1], page_size=200):
                seen += 1
                if (up_to_seq is not None and message.seq > up_to_seq) or seen > max_messages:
                    break
                if message.seq > after_seq:
                    found[message.seq] = message
        else:
            async for message in self.http.iter_history(channel_id, page_size=200):
                seen += 1
                if message.seq <= after_seq or seen > max_messages:
                    break
                if up_to_seq is None or message.seq <= up_to_seq:
                    found[message.seq] = message
        return [found[seq] for seq in sorted(found)]

    async def fetch_gap(self, gap: ResumeGap) -> list[Message]:
        """The messages of a `resume:done` gap (see `fetch_missed` for what history holds)."""
        return await self.fetch_missed(gap.channel_id, gap.from_seq - 1, gap.to_seq)

    async def fetch_gaps(self, gaps: Iterable[ResumeGap]) -> list[Message]:
        messages: list[Message] = []
        for gap in gaps:
            messages.extend(await self.fetch_gap(gap))
        return messages

    def _anchor_at_or_before(self, channel_id: str, seq: int) -> tuple[int, str] | None:
        for anchors in (self._anchors, self._anchors_at_resume):
            anchor = anchors.get(channel_id)
            if anchor is not None and anchor[0] <= seq:
                return anchor
        return None

    def _remember_anchor(self, channel_id: str, seq: int, message_id: str) -> None:
        known = self._anchors.get(channel_id)
        if known is None or seq > known[0]:
            self._anchors[channel_id] = (seq, message_id)

    # commands --------------------------------------------------------------------------------

    async def send(
        self,
        channel_id: str,
        text: str,
        *,
        thread_ts: str | None = None,
        also_send_to_channel: bool = False,
        file_ids: Sequence[str] | None = None,
        client_msg_id: str | None = None,
        timeout_seconds: float | None = None,
    ) -> MessageAck:
        """Posts a message and returns its `message:ack` (message_id, seq, ts) once committed.
        Retried with the same `client_msg_id` (generated unless given) after a disconnect, an
        unanswered attempt or `rate_limited`: the message exists once whatever happens.
        Raises `ConfabError` with the server's code (`not_a_member`, `empty_text`, ...)."""
        frame: dict[str, Any] = {
            "type": "message:send",
            "channel_id": channel_id,
            "text": text,
            "client_msg_id": client_msg_id or new_client_msg_id(),
        }
        if thread_ts is not None:
            frame["thread_ts"] = thread_ts
        if also_send_to_channel:
            frame["also_send_to_channel"] = True
        if file_ids:
            frame["file_ids"] = list(file_ids)
        answer = await self._request(frame, resend_when_outcome_unknown=True, timeout_seconds=timeout_seconds)
        assert isinstance(answer, MessageAck)
        return answer

    async def edit(self, channel_id: str, message_id: str, text: str, **options: Any) -> CommandOk:
        """Replaces the text of your own message (`message:edited` to every member)."""
        frame = {"type": "message:edit", "channel_id": channel_id, "message_id": message_id, "text": text}
        return await self._command(frame, resend_when_outcome_unknown=True, **options)

    async def delete(self, channel_id: str, message_id: str, **options: Any) -> CommandOk:
        """Deletes your own message (a tombstone stays; `message:deleted` to every member)."""
        frame = {"type": "message:delete", "channel_id": channel_id, "message_id": message_id}
        return await self._command(frame, resend_when_outcome_unknown=False, **options)

    async def react(self, channel_id: str, message_id: str, emoji: str, **options: Any) -> CommandOk:
        """Adds your reaction (`emoji` is a name without spaces or colons, e.g. `tada`)."""
        frame = {"type": "reaction:add", "channel_id": channel_id, "message_id": message_id, "emoji": emoji}
        return await self._command(frame, resend_when_outcome_unknown=True, **options)

    async def unreact(self, channel_id: str, message_id: str, emoji: str, **options: Any) -> CommandOk:
        frame = {"type": "reaction:remove", "channel_id": channel_id, "message_id": message_id, "emoji": emoji}
        return await self._command(frame, resend_when_outcome_unknown=True, **options)

    async def mark_read(self, channel_id: str, seq: int, **options: Any) -> CommandOk:
        """You have read `channel_id` up to `seq` (your other connections get `channel:marked`)."""
        frame = {"type": "channel:mark", "channel_id": channel_id, "seq": seq}
        return await self._command(frame, resend_when_outcome_unknown=True, **options)

    async def join(self, channel_id: str, **options: Any) -> CommandOk:
        """Joins a public channel (`seq` 0 in the answer: you were a member already)."""
        frame = {"type": "channel:join", "channel_id": channel_id}
        return await self._command(frame, resend_when_outcome_unknown=True, **options)

    async def create_channel(
        self, name: str, *, is_private: bool = False, members: Sequence[str] = (), **options: Any
    ) -> CommandOk:
        """Creates a channel you are in; the answer's `channel_id` is the new channel's."""
        frame = {"type": "channel:create", "name": name, "is_private": is_private, "members": list(members)}
        return await self._command(frame, resend_when_outcome_unknown=False, **options)

    async def open_dm(self, user_ids: Sequence[str], **options: Any) -> CommandOk:
        """Opens (or finds) the DM with 1-7 other people; the answer's `channel_id` is the DM's."""
        frame = {"type": "dm:open", "user_ids": list(user_ids)}
        return await self._command(frame, resend_when_outcome_unknown=True, **options)

    async def rename_channel(self, channel_id: str, name: str, **options: Any) -> CommandOk:
        frame = {"type": "channel:rename", "channel_id": channel_id, "name": name}
        return await self._command(frame, resend_when_outcome_unknown=True, **options)

    async def archive_channel(self, channel_id: str, archived: bool = True, **options: Any) -> CommandOk:
        """Archives (read-only) or, with `archived=False`, restores a channel."""
        frame = {"type": "channel:archive", "channel_id": channel_id, "archived": archived}
        return await self._command(frame, resend_when_outcome_unknown=True, **options)

    async def leave_channel(self, channel_id: str, **options: Any) -> CommandOk:
        frame = {"type": "channel:leave", "channel_id": channel_id}
        return await self._command(frame, resend_when_outcome_unknown=False, **options)

    async def invite(self, channel_id: str, user_id: str, **options: Any) -> CommandOk:
        frame = {"type": "channel:invite", "channel_id": channel_id, "user_id": user_id}
        return await self._command(frame, resend_when_outcome_unknown=False, **options)

    async def kick(self, channel_id: str, user_id: str, **options: Any) -> CommandOk:
        """Removes someone from a channel (its creator only)."""
        frame = {"type": "channel:kick", "channel_id": channel_id, "user_id": user_id}
        return await self._command(frame, resend_when_outcome_unknown=False, **options)

    async def pin(self, channel_id: str, message_id: str, pinned: bool = True, **options: Any) -> CommandOk:
        frame = {"type": "message:pin", "channel_id": channel_id, "message_id": message_id, "pinned": pinned}
        return await self._command(frame, resend_when_outcome_unknown=True, **options)

    async def typing(self, channel_id: str) -> bool:
        """Says you are typing in `channel_id` (repeat every few seconds while typing). Never
        answered; False when not connected (nothing sent). A refusal comes as an `ErrorEvent`."""
        return await self.send_frame({"type": "typing:start", "channel_id": channel_id})

    async def set_presence(self, status: str) -> bool:
        """`away` or `active` on this device (disconnecting is `offline`). Never answered."""
        if status not in ("active", "away"):
            raise ValueError("status must be 'active' or 'away'; close the client to go offline")
        return await self.send_frame({"type": "presence:set", "status": status})

    async def send_frame(self, frame: dict[str, Any]) -> bool:
        """Sends a frame as it is if connected (no answer awaited); False otherwise."""
        websocket = self._websocket
        if websocket is None or not self._connected.is_set():
            return False
        try:
            await self._transmit(websocket, frame)
        except ConnectionClosed:
            return False
        return True

    async def _command(
        self,
        frame: dict[str, Any],
        *,
        resend_when_outcome_unknown: bool,
        client_msg_id: str | None = None,
        timeout_seconds: float | None = None,
    ) -> CommandOk:
        frame["client_msg_id"] = client_msg_id or new_client_msg_id()
        answer = await self._request(
            frame, resend_when_outcome_unknown=resend_when_outcome_unknown, timeout_seconds=timeout_seconds
        )
        assert isinstance(answer, CommandOk)
        return answer

    async def _request(
        self, frame: dict[str, Any], *, resend_when_outcome_unknown: bool, timeout_seconds: float | None
    ) -> MessageAck | CommandOk:
        """Sends `frame` until it is answered (ack or ok), refused (error), or the deadline
        passes. Resends after `rate_limited`/`unavailable` (which never reach the log) with a
        backoff, and, when `resend_when_outcome_unknown`, after the connection dropped or an
        attempt went unanswered (sends are deduplicated by client_msg_id; other commands whose
        repetition is harmless)."""
        loop = asyncio.get_running_loop()
        client_msg_id: str = frame["client_msg_id"]
        frame_type = frame["type"]
        deadline = loop.time() + (self.request_timeout_seconds if timeout_seconds is None else timeout_seconds)
        encoded_bytes = len(json.dumps(frame, separators=(",", ":")).encode())
        if encoded_bytes > MAX_OUTGOING_FRAME_BYTES:
            # the server's frame_too_large would not name the client_msg_id: refuse it here
            message = f"frame is {encoded_bytes} bytes; the limit is {MAX_OUTGOING_FRAME_BYTES}"
            raise ConfabError("frame_too_large", message, client_msg_id=client_msg_id, retryable=False)
        attempts = 0
        backoff_seconds = 0.25
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ConfabTimeoutError(f"no answer to {frame_type} in time", client_msg_id=client_msg_id)
            websocket = await self._wait_connected(remaining)
            attempts += 1
            waiter: asyncio.Future[Any] = loop.create_future()
            self._pending[client_msg_id] = waiter
            try:
                await self._transmit(websocket, frame)
                attempt_timeout = max(min(self.answer_timeout_seconds, deadline - loop.time()), 0.001)
                answer = await asyncio.wait_for(waiter, attempt_timeout)
            except (ConnectionClosed, _ConnectionLost):
                if not resend_when_outcome_unknown:
                    raise ConfabConnectionError(
                        f"the connection dropped before {frame_type} was answered; it may or may not have been applied",
                        client_msg_id=client_msg_id,
                    ) from None
                logger.info(
                    "connection lost before the answer to %s %s; resending after reconnect", frame_type, client_msg_id
                )
                continue
            except asyncio.TimeoutError:
                if self._websocket is websocket:
                    logger.warning(
                        "no answer to %s %s within %.1f s; reconnecting", frame_type, client_msg_id, attempt_timeout
                    )
                    self.drop_connection()
                if not resend_when_outcome_unknown:
                    raise ConfabTimeoutError(
                        f"no answer to {frame_type}; it may or may not have been applied", client_msg_id=client_msg_id
                    ) from None
                continue
            finally:
                if self._pending.get(client_msg_id) is waiter:
                    del self._pending[client_msg_id]
            if isinstance(answer, ConfabError):
                if answer.code in RESEND_CODES and self.retry_rate_limited:
                    delay = backoff_seconds * (0.5 + random.random() / 2)
                    if loop.time() + delay >= deadline:
                        raise answer
                    logger.info(
                        "%s %s refused with %s; resending in %.2f s", frame_type, client_msg_id, answer.code, delay
                    )
                    await asyncio.sleep(delay)
                    backoff_seconds = min(backoff_seconds * 2, 5.0)
                    continue
                raise answer
            assert isinstance(answer, (MessageAck, CommandOk))
            answer.attempts = attempts
            return answer

    async def _transmit(self, websocket: ClientConnection, frame: dict[str, Any]) -> None:
        """Writes one frame (the one place frames leave the client)."""
        await websocket.send(json.dumps(frame, separators=(",", ":")))

    async def _wait_connected(self, timeout_seconds: float) -> ClientConnection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while True:
            if self._fatal is not None:
                raise self._fatal
            if self._closing:
                raise ConfabClosedError()
            websocket = self._websocket
            if self._connected.is_set() and websocket is not None:
                return websocket
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ConfabTimeoutError("not connected in time")
            try:
                await asyncio.wait_for(self._connected.wait(), remaining)
            except asyncio.TimeoutError:
                raise ConfabTimeoutError("not connected in time") from None
            if self._websocket is None and self._fatal is None and not self._closing:
                await asyncio.sleep(0.01)  # the event was set for a socket that is gone already

    # the connection --------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Connects, serves the connection until it drops, and reconnects, until closed or a
        refusal that another attempt cannot fix."""
        failed_attempts = 0
        refreshed_token = False
        try:
            while not self._closing:
                resume = self._has_connected and bool(self._resume_positions())
                try:
                    websocket, hello = await self._open_connection(resume)
                except ConfabAuthError as error:
                    if self.token_provider is not None and not refreshed_token and await self._refresh_token(error):
                        refreshed_token = True
                        continue
                    self._fail(error)
                    return
                except ConfabError as error:
                    if not self._has_connected or not error.retryable:
                        self._fail(error)
                        return
                    logger.warning("cannot reconnect (%s); retrying", error)
                    await self._reconnect_delay(failed_attempts)
                    failed_attempts += 1
                    continue
                failed_attempts, refreshed_token = 0, False
                close_code, reason = await self._serve_connection(websocket, hello, resume)
                if self._closing:
                    return
                if close_code in (CLOSE_TOKEN_EXPIRED, CLOSE_TOKEN_REVOKED):
                    code = "token_expired" if close_code == CLOSE_TOKEN_EXPIRED else "token_revoked"
                    token_error = ConfabAuthError(code, f"the server closed the socket ({close_code} {reason})")
                    if self.token_provider is None or not await self._refresh_token(token_error):
                        self._emit(Disconnected(close_code=close_code, reason=reason, reconnecting=False))
                        self._fail(token_error)
                        return
                logger.info("connection closed (%s %s); reconnecting", close_code, reason or "no reason")
                self._emit(Disconnected(close_code=close_code, reason=reason, reconnecting=True))
                await self._reconnect_delay(failed_attempts)
                failed_attempts += 1
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug here must not leave callers waiting forever
            logger.exception("connection supervisor failed")
            self._fail(ConfabError("internal", f"the client's connection loop failed: {error!r}", retryable=False))

    async def _refresh_token(self, error: ConfabError) -> bool:
        assert self.token_provider is not None
        logger.info("token refused (%s); asking the token provider for a new one", error.code)
        try:
            token = await self.token_provider()
        except Exception as provider_error:
            logger.warning("the token provider failed: %r", provider_error)
            return False
        self._token = token
        self.http.token = token
        return True

    async def _reconnect_delay(self, failed_attempts: int) -> None:
        """Waits before the next connection attempt (jittered backoff)."""
        base = self.reconnect_delays[min(failed_attempts, len(self.reconnect_delays) - 1)]
        await asyncio.sleep(base / 2 + random.random() * base / 2)

    async def _open_connection(self, resume: bool) -> tuple[ClientConnection, Hello]:
        """A socket that said hello. The token goes in `Sec-WebSocket-Protocol`, never the URL."""
        url = self.websocket_url + ("?resume=1" if resume else "")
        subprotocols = [Subprotocol("confab"), Subprotocol("bearer." + self._token)]
        try:
            websocket = await asyncio.wait_for(
                websocket_connect(
                    url,
                    subprotocols=subprotocols,
                    ping_interval=None,  # the protocol's own `ping` frames are the heartbeat
                    compression=None,
                    open_timeout=self.connect_timeout_seconds,
                    close_timeout=2,
                    max_size=MAX_INCOMING_FRAME_BYTES,
                    user_agent_header=f"confab-client-python/{__version__}",
                ),
                self.connect_timeout_seconds + 1,
            )
        except InvalidStatus as error:
            raise _refused_upgrade(error) from None
        except InvalidURI:
            raise
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as error:
            raise ConfabConnectionError(f"cannot connect to {self.websocket_url}: {error!r}") from None
        try:
            text = await asyncio.wait_for(websocket.recv(), self.connect_timeout_seconds)
            frame = json.loads(text)
        except (ConnectionClosed, asyncio.TimeoutError, ValueError) as error:
            _abort(websocket)
            raise ConfabConnectionError(f"no hello from {self.websocket_url}: {error!r}") from None
        hello = parse_event(frame) if isinstance(frame, dict) else None
        if not isinstance(hello, Hello):
            _abort(websocket)
            raise ConfabError("malformed_frame", f"expected hello first, got {str(text)[:200]}", retryable=True)
        return websocket, hello

    async def _serve_connection(
        self, websocket: ClientConnection, hello: Hello, resume: bool
    ) -> tuple[int | None, str]:
        """Runs one connection from its hello to its end; returns its close code and reason."""
        first = not self._has_connected
        self._websocket = websocket
        self.hello = hello
        self.connection_count += 1
        heartbeat: asyncio.Task[None] | None = None
        try:
            if resume:
                self._resume_positions_sent = self._resume_positions()
                self._anchors_at_resume = dict(self._anchors)
                self._resuming = True
                await self._transmit(websocket, {"type": "resume", "channels": self._resume_positions_sent})
                logger.info("reconnected; resuming %d channels", len(self._resume_positions_sent))
            self._emit(hello)
            if first and self.resume_all_channels:
                await self._seed_positions_from_http()
            self._has_connected = True
            self._connected.set()
            if self._first_connection is not None and not self._first_connection.done():
                self._first_connection.set_result(None)
            heartbeat = asyncio.create_task(self._heartbeat(websocket, self._heartbeat_seconds(hello)))
            async for message in websocket:
                if isinstance(message, str):
                    self._receive(message)
        except ConnectionClosed:
            pass
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            self._connected.clear()
            if self._websocket is websocket:
                self._websocket = None
            self._resuming = False
            self._fail_pending(_ConnectionLost())
        return _close_details(websocket)

    def _heartbeat_seconds(self, hello: Hello) -> float:
        if self.heartbeat_interval_seconds is not None:
            return self.heartbeat_interval_seconds
        interval = float(hello.heartbeat_interval or 30)
        # the contract says seconds (30); a value this large can only be milliseconds
        if interval >= 1000:
            interval /= 1000
        return max(interval, 1.0)

    async def _seed_positions_from_http(self) -> None:
        """Every member channel's `last_seq`, so a later resume names channels that had no event
        on the socket yet."""
        try:
            channels = await asyncio.wait_for(self.http.channels(), self.connect_timeout_seconds)
        except (ConfabError, asyncio.TimeoutError) as error:
            logger.warning("cannot list channels to resume them later (%r)", error)
            return
        for channel in channels:
            if channel.is_member and isinstance(channel.last_seq, int):
                self.advance(channel.channel_id, channel.last_seq)

    async def _heartbeat(self, websocket: ClientConnection, interval_seconds: float) -> None:
        """`{"type":"ping","id":n}` every interval; a pong missing for `pong_timeout_seconds`
        drops the connection (which then reconnects and resumes)."""
        ping_id = 0
        while True:
            await asyncio.sleep(interval_seconds)
            ping_id += 1
            self._awaited_pong_id = ping_id
            self._pong_received.clear()
            try:
                await self._transmit(websocket, {"type": "ping", "id": ping_id})
                await asyncio.wait_for(self._pong_received.wait(), self.pong_timeout_seconds)
            except ConnectionClosed:
                return
            except asyncio.TimeoutError:
                logger.warning("no pong within %.1f s; dropping the connection", self.pong_timeout_seconds)
                if self._websocket is websocket:
                    self.drop_connection()
                return

    def _receive(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            logger.warning("ignoring a frame that is not JSON: %.200s", text)
            return
        if not isinstance(frame, dict):
            logger.warning("ignoring a frame that is not an object: %.200s", text)
            return
        try:
            self._dispatch(frame)
        except Exception:
            logger.exception("cannot handle a %r frame", frame.get("type"))

    def _dispatch(self, frame: dict[str, Any]) -> None:
        frame_type = frame.get("type")
        if frame_type == "pong":
            if frame.get("id") == self._awaited_pong_id:
                self._pong_received.set()
            return
        if frame_type in ("message:ack", "ok"):
            answer = parse_event(frame)
            if isinstance(answer, MessageAck):
                self._remember_anchor(answer.channel_id, answer.seq, answer.message_id)
            waiter = self._pending.get(frame.get("client_msg_id", ""))
            if waiter is not None and not waiter.done():
                waiter.set_result(answer)
            else:
                logger.debug("an answer nobody waits for: %s", frame.get("client_msg_id"))
            return
        if frame_type == "error":
            self._dispatch_error(frame)
            return
        event = parse_event(frame)
        if isinstance(event, Hello):
            logger.debug("ignoring a second hello on one connection")
            return
        if isinstance(event, ResumeDone):
            self._resume_done(event)
            return
        position = event.position()
        if position is not None:
            channel_id, seq = position
            if seq <= self._delivered.get(channel_id, 0):
                self.duplicates_dropped += 1
                return
            self._delivered.pop(channel_id, None)  # re-inserted last: most recently active
            self._delivered[channel_id] = seq
            if isinstance(event, MessageNew):
                self._remember_anchor(channel_id, seq, event.message.message_id)
        self._emit(event)
        if isinstance(event, ChannelLeft) and event.user_id == self.user_id:
            self.forget(event.channel_id)

    def _dispatch_error(self, frame: dict[str, Any]) -> None:
        client_msg_id = frame.get("client_msg_id")
        waiter = self._pending.get(client_msg_id) if isinstance(client_msg_id, str) else None
        if waiter is not None and not waiter.done():
            waiter.set_result(ConfabError.from_frame(frame))
            return
        code, message = str(frame.get("code", "internal")), str(frame.get("message", ""))
        if client_msg_id is None and self._resuming and code in RESUME_ERROR_CODES:
            self._resuming = False
            logger.warning("the server could not resume (%s: %s); fetch what was missed over HTTP", code, message)
            self._emit(ResumeFailed(code=code, message=message, positions=dict(self._resume_positions_sent), raw=frame))
            return
        logger.warning("error from the server: %s: %s", code, message)
        self._emit(parse_event(frame))

    def _resume_done(self, event: ResumeDone) -> None:
        self._resuming = False
        for channel_id, seq in event.channels.items():
            self.advance(channel_id, seq)
        for channel_id in event.not_members:
            self.forget(channel_id)
        self.last_resume = event
        if event.gaps:
            logger.warning("resume left %d gaps; fetch them over HTTP (fetch_gap)", len(event.gaps))
        self._emit(event)

    def _emit(self, event: Event) -> None:
        self._events.put_nowait(event)

    def _fail_pending(self, error: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for waiter in pending.values():
            if not waiter.done():
                waiter.set_exception(error)
                waiter.exception()  # retrieved here: a waiter whose caller gave up logs nothing

    def _fail(self, error: ConfabError) -> None:
        """Ends the client with `error`: the first connect, pending commands and the event
        iterator raise it."""
        logger.error("giving up on the connection: %s", error)
        self._fatal = error
        if self._first_connection is not None and not self._first_connection.done():
            self._first_connection.set_exception(error)
        self._fail_pending(error)
        self._events.put_nowait(_END_OF_EVENTS)
        self._connected.set()


def _abort(websocket: ClientConnection) -> None:
    """Closes the TCP connection at once, without the WebSocket close handshake."""
    transport = getattr(websocket, "transport", None)
    if transport is not None:
        transport.abort()


def _close_details(websocket: ClientConnection) -> tuple[int | None, str]:
    """The close code and reason the connection ended with (None: no close frame came)."""
    # `ClientConnection.close_code` is websockets 15+; its protocol object has it since 13
    protocol = websocket.protocol
    return protocol.close_code, protocol.close_reason or ""


def _refused_upgrade(error: InvalidStatus) -> ConfabError:
    """The typed error of an upgrade the server answered with an HTTP error."""
    response = error.response
    status = response.status_code
    try:
        body = json.loads(response.body or b"null")
    except ValueError:
        body = None
    refusal = ConfabError.from_http(status, body, f"the upgrade was refused with HTTP {status}")
    if status == 401 or refusal.code in AUTH_CODES:
        return ConfabAuthError(refusal.code, refusal.message, http_status=status)
    # too_many_connections (429) and unavailable (503) may pass; other refusals will not
    retryable = status in (429, 502, 503, 504)
    return ConfabError(refusal.code, refusal.message, http_status=status, retryable=retryable)


class _Connecting:
    """What `connect()` returns: await it for a started client, or use it with `async with`
    to have the client closed at the end of the block."""

    def __init__(self, client: ConfabClient) -> None:
        self.client = client

    def __await__(self):  # type: ignore[no-untyped-def]
        return self.client.start().__await__()

    async def __aenter__(self) -> ConfabClient:
        return await self.client.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.client.close()


def connect(base_url: str, token: str, **options: Any) -> _Connecting:
    """Connects to Confab at `base_url` (`http://host:port`, or its `ws://` form) as the
    token's user and waits for `hello`. `client = await connect(...)` or
    `async with connect(...) as client:`; options as `ConfabClient`'s."""
    return _Connecting(ConfabClient(base_url, token, **options))
