"""Typed server frames: one dataclass per frame `docs/asyncapi.yaml` lists under `serverSends`,
with the contract's field names, plus two events the client itself produces (`Disconnected`,
`ResumeFailed`). `parse_event` turns a decoded frame into one of them; a frame of a type this
version does not know becomes `UnknownEvent`, so a newer server never breaks an older client."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, ClassVar

from .models import Attachment, Message, PresenceUpdate, ResumeGap, ThreadSummary

logger = logging.getLogger("confab_client")


class Event:
    """Base of every event; `type` is the frame's `type` (`message:new`, `typing`, ...)."""

    type: ClassVar[str] = ""
    raw: dict[str, Any]

    def position(self) -> tuple[str, int] | None:
        """The (channel_id, seq) of a channel event, which is delivered once per pair; None for
        frames outside any channel's sequence (answers, typing, presence, ...)."""
        channel_id = getattr(self, "channel_id", None)
        seq = getattr(self, "seq", None)
        if isinstance(channel_id, str) and isinstance(seq, int):
            return channel_id, seq
        return None


@dataclass
class Hello(Event):
    """The first frame of every connection. `heartbeat_interval` is in seconds."""

    type: ClassVar[str] = "hello"
    conn_id: str
    heartbeat_interval: int
    user_id: str
    workspace_id: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class Pong(Event):
    type: ClassVar[str] = "pong"
    id: int | str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class MessageAck(Event):
    """The sender's answer to `message:send`, once the message is committed to the log.

    `attempts` is the client's own count of how often it sent the frame (retries after a
    disconnect, a timeout or `rate_limited`), not part of the frame."""

    type: ClassVar[str] = "message:ack"
    client_msg_id: str
    channel_id: str
    message_id: str
    seq: int
    ts: int
    attempts: int = 1
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def position(self) -> tuple[str, int] | None:
        # an answer, not the channel's event: the message:new that follows is the event
        return None


@dataclass
class CommandOk(Event):
    """A command without a message of its own succeeded (edit, delete, reaction, join,
    channel changes, pin, read marker). `channel_id` is the new channel's for `channel:create`
    and `dm:open`; `seq` is 0 when nothing had to be written (a join of a channel you are in)."""

    type: ClassVar[str] = "ok"
    client_msg_id: str
    channel_id: str
    seq: int
    attempts: int = 1
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def position(self) -> tuple[str, int] | None:
        return None


@dataclass
class MessageNew(Event):
    """A message posted to one of your channels (your own included)."""

    type: ClassVar[str] = "message:new"
    message: Message
    #: On a thread reply: the parent's thread after it.
    parent_thread: ThreadSummary | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def channel_id(self) -> str:
        return self.message.channel_id

    @property
    def seq(self) -> int:
        return self.message.seq

    def position(self) -> tuple[str, int] | None:
        return self.message.channel_id, self.message.seq


@dataclass
class ChannelJoined(Event):
    type: ClassVar[str] = "channel:joined"
    workspace_id: str
    channel_id: str
    user_id: str
    seq: int
    #: Who invited them, when invited.
    by: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class ChannelCreated(Event):
    type: ClassVar[str] = "channel:created"
    workspace_id: str
    channel_id: str
    name: str
    is_private: bool
    kind: str
    #: Everyone, for channels of up to 100 people; empty above (see `member_count`).
    members: list[str]
    member_count: int
    seq: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class MessageEdited(Event):
    type: ClassVar[str] = "message:edited"
    workspace_id: str
    channel_id: str
    message_id: str
    user_id: str
    text: str
    edited_at: int
    seq: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class MessageDeleted(Event):
    type: ClassVar[str] = "message:deleted"
    workspace_id: str
    channel_id: str
    message_id: str
    user_id: str
    seq: int
    #: The files it carried, deleted with it.
    file_ids: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class ReactionChanged(Event):
    """`reaction:added` or `reaction:removed` (see the two subclasses); `users` is everyone
    reacting with `emoji` after the change."""

    workspace_id: str
    channel_id: str
    message_id: str
    emoji: str
    user_id: str
    users: list[str]
    seq: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def added(self) -> bool:
        return self.type == "reaction:added"


@dataclass
class ReactionAdded(ReactionChanged):
    type: ClassVar[str] = "reaction:added"


@dataclass
class ReactionRemoved(ReactionChanged):
    type: ClassVar[str] = "reaction:removed"


@dataclass
class Typing(Event):
    """Another member is typing: show it for `expires_in_ms` unless refreshed."""

    type: ClassVar[str] = "typing"
    workspace_id: str
    channel_id: str
    user_id: str
    expires_in_ms: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class ChannelLeft(Event):
    """`user_id` left, or was removed by `by`."""

    type: ClassVar[str] = "channel:left"
    workspace_id: str
    channel_id: str
    user_id: str
    by: str
    seq: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class ChannelRenamed(Event):
    type: ClassVar[str] = "channel:renamed"
    workspace_id: str
    channel_id: str
    name: str
    user_id: str
    seq: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class ChannelArchived(Event):
    type: ClassVar[str] = "channel:archived"
    workspace_id: str
    channel_id: str
    archived: bool
    user_id: str
    seq: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class MessagePinned(Event):
    type: ClassVar[str] = "message:pinned"
    workspace_id: str
    channel_id: str
    message_id: str
    pinned: bool
    user_id: str
    seq: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class ChannelMarked(Event):
    """To your own connections: you read `channel_id` up to `seq` (on another device, maybe).
    Its seq is a read position, not the channel's event: it is never deduplicated."""

    type: ClassVar[str] = "channel:marked"
    workspace_id: str
    channel_id: str
    seq: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def position(self) -> tuple[str, int] | None:
        return None


@dataclass
class FileShared(Event):
    type: ClassVar[str] = "file:shared"
    workspace_id: str
    channel_id: str
    file: Attachment
    user_id: str
    seq: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class FileDeleted(Event):
    type: ClassVar[str] = "file:deleted"
    workspace_id: str
    channel_id: str
    file_id: str
    user_id: str
    seq: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class PresenceChange(Event):
    """Users of the workspace whose presence changed, gathered over a short window."""

    type: ClassVar[str] = "presence:change"
    workspace_id: str
    users: list[PresenceUpdate]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class ResumeDone(Event):
    """The end of a resume's replay: each channel's seq now, `gaps` (missed events not
    replayed: fetch them over HTTP, see `ConfabClient.fetch_gap`) and the named channels the
    user is not a member of any more."""

    type: ClassVar[str] = "resume:done"
    replayed: int
    channels: dict[str, int]
    gaps: list[ResumeGap]
    not_members: list[str]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class ErrorEvent(Event):
    """An `error` frame no pending request was waiting for (e.g. a refused `typing:start`)."""

    type: ClassVar[str] = "error"
    code: str
    message: str
    client_msg_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class UnknownEvent(Event):
    """A frame this version of the client has no class for; `frame_type` is its `type`."""

    frame_type: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def type(self) -> str:  # type: ignore[override]
        return self.frame_type

    def position(self) -> tuple[str, int] | None:
        channel_id, seq = self.raw.get("channel_id"), self.raw.get("seq")
        if isinstance(channel_id, str) and isinstance(seq, int) and not isinstance(seq, bool):
            return channel_id, seq
        return None


# client-side events ------------------------------------------------------------------------


@dataclass
class Disconnected(Event):
    """The connection dropped; `reconnecting` says whether the client is reconnecting (and will
    resume). Sent by the client, not the server."""

    type: ClassVar[str] = "client:disconnected"
    close_code: int | None
    reason: str
    reconnecting: bool
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class ResumeFailed(Event):
    """The server could not resume (`resume_unavailable`, ...): what was missed since
    `positions` (channel_id -> last seq seen) must be fetched over HTTP
    (`ConfabClient.fetch_missed`). Sent by the client, not the server."""

    type: ClassVar[str] = "client:resume_failed"
    code: str
    message: str
    positions: dict[str, int]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


# parsing ------------------------------------------------------------------------------------


def _common(frame: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: frame[name] for name in names}


def _parse_message_new(frame: dict[str, Any]) -> MessageNew:
    parent = frame.get("parent_thread")
    return MessageNew(
        message=Message.from_json(frame["message"]),
        parent_thread=ThreadSummary.from_json(parent) if isinstance(parent, dict) else None,
        raw=frame,
    )


def _parse_reaction(cls: type[ReactionChanged]) -> Callable[[dict[str, Any]], ReactionChanged]:
    def parse(frame: dict[str, Any]) -> ReactionChanged:
        return cls(
            **_common(frame, "workspace_id", "channel_id", "message_id", "emoji", "user_id", "seq"),
            users=list(frame.get("users") or []),
            raw=frame,
        )

    return parse


_PARSERS: dict[str, Callable[[dict[str, Any]], Event]] = {
    "hello": lambda f: Hello(**_common(f, "conn_id", "heartbeat_interval", "user_id", "workspace_id"), raw=f),
    "pong": lambda f: Pong(id=f.get("id"), raw=f),
    "message:ack": lambda f: MessageAck(**_common(f, "client_msg_id", "channel_id", "message_id", "seq", "ts"), raw=f),
    "ok": lambda f: CommandOk(**_common(f, "client_msg_id", "channel_id", "seq"), raw=f),
    "message:new": _parse_message_new,
    "channel:joined": lambda f: ChannelJoined(
        **_common(f, "workspace_id", "channel_id", "user_id", "seq"), by=f.get("by"), raw=f
    ),
    "channel:created": lambda f: ChannelCreated(
        **_common(f, "workspace_id", "channel_id", "name", "is_private", "kind", "member_count", "seq"),
        members=list(f.get("members") or []),
        raw=f,
    ),
    "message:edited": lambda f: MessageEdited(
        **_common(f, "workspace_id", "channel_id", "message_id", "user_id", "text", "edited_at", "seq"), raw=f
    ),
    "message:deleted": lambda f: MessageDeleted(
        **_common(f, "workspace_id", "channel_id", "message_id", "user_id", "seq"),
        file_ids=list(f.get("file_ids") or []),
        raw=f,
    ),
    "reaction:added": _parse_reaction(ReactionAdded),
    "reaction:removed": _parse_reaction(ReactionRemoved),
    "typing": lambda f: Typing(**_common(f, "workspace_id", "channel_id", "user_id", "expires_in_ms"), raw=f),
    "channel:left": lambda f: ChannelLeft(**_common(f, "workspace_id", "channel_id", "user_id", "by", "seq"), raw=f),
    "channel:renamed": lambda f: ChannelRenamed(
        **_common(f, "workspace_id", "channel_id", "name", "user_id", "seq"), raw=f
    ),
    "channel:archived": lambda f: ChannelArchived(
        **_common(f, "workspace_id", "channel_id", "archived", "user_id", "seq"), raw=f
    ),
    "message:pinned": lambda f: MessagePinned(
        **_common(f, "workspace_id", "channel_id", "message_id", "pinned", "user_id", "seq"), raw=f
    ),
    "channel:marked": lambda f: ChannelMarked(**_common(f, "workspace_id", "channel_id", "seq"), raw=f),
    "file:shared": lambda f: FileShared(
        **_common(f, "workspace_id", "channel_id", "user_id", "seq"), file=Attachment.from_json(f["file"]), raw=f
    ),
    "file:deleted": lambda f: FileDeleted(
        **_common(f, "workspace_id", "channel_id", "file_id", "user_id", "seq"), raw=f
    ),
    "presence:change": lambda f: PresenceChange(
        workspace_id=f["workspace_id"], users=[PresenceUpdate.from_json(u) for u in f.get("users") or []], raw=f
    ),
    "resume:done": lambda f: ResumeDone(
        replayed=int(f.get("replayed", 0)),
        channels={str(k): int(v) for k, v in (f.get("channels") or {}).items()},
        gaps=[ResumeGap.from_json(g) for g in f.get("gaps") or []],
        not_members=list(f.get("not_members") or []),
        raw=f,
    ),
    "error": lambda f: ErrorEvent(
        code=str(f.get("code", "internal")),
        message=str(f.get("message", "")),
        client_msg_id=f.get("client_msg_id"),
        raw=f,
    ),
}

#: Every server frame type the client has a class for.
SERVER_FRAME_TYPES = frozenset(_PARSERS)


def parse_event(frame: dict[str, Any]) -> Event:
    """The typed event for a decoded server frame; `UnknownEvent` for an unknown type or a
    frame missing a field its type requires (logged)."""
    frame_type = frame.get("type")
    parser = _PARSERS.get(frame_type) if isinstance(frame_type, str) else None
    if parser is None:
        return UnknownEvent(frame_type=str(frame_type), raw=frame)
    try:
        return parser(frame)
    except (KeyError, TypeError, ValueError) as error:
        logger.warning("server frame %r lacks or mistypes a field (%s); passed on as unknown", frame_type, error)
        return UnknownEvent(frame_type=str(frame_type), raw=frame)
