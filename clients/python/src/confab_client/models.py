"""The data Confab's WebSocket frames and HTTP answers share, as dataclasses: messages, their
threads and attachments, channels, users, search hits. Field names are the wire's
(`docs/asyncapi.yaml`, README's HTTP table); each object keeps the JSON it came from in `raw`,
so fields added by a newer server are still reachable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

PresenceStatus = Literal["active", "away", "offline"]
ChannelKind = Literal["public", "private", "dm", "group_dm"]


@dataclass
class Attachment:
    """A shared file a message carries (download URLs from `GET /api/files/{file_id}`)."""

    file_id: str
    name: str
    size: int
    content_type: str
    #: History only: the file was deleted since.
    deleted: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attachment:
        return cls(
            file_id=data["file_id"],
            name=data.get("name", ""),
            size=int(data.get("size", 0)),
            content_type=data.get("content_type", ""),
            deleted=bool(data.get("deleted", False)),
        )


@dataclass
class ThreadSummary:
    """A thread's parent: its replies so far."""

    reply_count: int
    reply_users: list[str]
    #: Unix milliseconds of the newest reply.
    last_reply_at: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ThreadSummary:
        return cls(
            reply_count=int(data.get("reply_count", 0)),
            reply_users=list(data.get("reply_users", [])),
            last_reply_at=data.get("last_reply_at"),
        )


@dataclass
class Message:
    """A message, as `message:new` and history carry it."""

    channel_id: str
    message_id: str
    #: The channel's event sequence number of the post (gap-free per channel, 1 = creation).
    seq: int
    user_id: str
    text: str
    #: Unix milliseconds.
    ts: int
    workspace_id: str | None = None
    client_msg_id: str | None = None
    #: The thread's parent `message_id`, on a thread reply.
    thread_ts: str | None = None
    edited_at: int | None = None
    #: A tombstone: the text is empty.
    deleted: bool = False
    reactions: dict[str, list[str]] = field(default_factory=dict)
    also_in_channel: bool = False
    pinned: bool = False
    attachments: list[Attachment] = field(default_factory=list)
    thread: ThreadSummary | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        thread = data.get("thread")
        return cls(
            channel_id=data["channel_id"],
            message_id=data["message_id"],
            seq=int(data["seq"]),
            user_id=data["user_id"],
            text=data.get("text", ""),
            ts=int(data["ts"]),
            workspace_id=data.get("workspace_id"),
            client_msg_id=data.get("client_msg_id"),
            thread_ts=data.get("thread_ts"),
            edited_at=data.get("edited_at"),
            deleted=bool(data.get("deleted", False)),
            reactions={emoji: list(users) for emoji, users in (data.get("reactions") or {}).items()},
            also_in_channel=bool(data.get("also_in_channel", False)),
            pinned=bool(data.get("pinned", False)),
            attachments=[Attachment.from_json(a) for a in data.get("attachments") or []],
            thread=ThreadSummary.from_json(thread) if isinstance(thread, dict) else None,
            raw=data,
        )


@dataclass
class Channel:
    """A channel of `GET /api/channels` (or `GET /api/channels/{id}`, which adds `members`)."""

    channel_id: str
    name: str
    kind: str
    is_private: bool
    archived: bool
    is_member: bool | None = None
    member_count: int | None = None
    #: The seq of the channel's latest event the timeline has applied.
    last_seq: int | None = None
    created_by: str | None = None
    created_at: int | None = None
    last_read_seq: int | None = None
    unread_count: int | None = None
    mention_count: int | None = None
    more_unread: bool | None = None
    members: list[str] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Channel:
        return cls(
            channel_id=data["channel_id"],
            name=data.get("name", ""),
            kind=data.get("kind", "public"),
            is_private=bool(data.get("is_private", False)),
            archived=bool(data.get("archived", False)),
            is_member=data.get("is_member"),
            member_count=data.get("member_count"),
            last_seq=data.get("last_seq"),
            created_by=data.get("created_by"),
            created_at=data.get("created_at"),
            last_read_seq=data.get("last_read_seq"),
            unread_count=data.get("unread_count"),
            mention_count=data.get("mention_count"),
            more_unread=data.get("more_unread"),
            members=list(data["members"]) if isinstance(data.get("members"), list) else None,
            raw=data,
        )


@dataclass
class User:
    user_id: str
    name: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        return cls(user_id=data["user_id"], name=data.get("name", ""))


@dataclass
class Me:
    """`GET /api/me`: the token's user and workspace, and the ids of the user's channels."""

    user_id: str
    workspace_id: str
    name: str | None = None
    workspace_name: str | None = None
    channels: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Me:
        return cls(
            user_id=data["user_id"],
            workspace_id=data["workspace_id"],
            name=data.get("name"),
            workspace_name=data.get("workspace_name"),
            channels=list(data.get("channels") or []),
            raw=data,
        )


@dataclass
class HistoryPage:
    """One page of a channel's history: newest first by default (`next_cursor` for older
    pages); oldest first with `after=` (`next_after` for newer pages) and `around=`."""

    messages: list[Message]
    next_cursor: str | None = None
    next_after: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HistoryPage:
        return cls(
            messages=[Message.from_json(m) for m in data.get("messages") or []],
            next_cursor=data.get("next_cursor"),
            next_after=data.get("next_after"),
        )


@dataclass
class RepliesPage:
    """A thread: its parent (with its summary) and replies, oldest first."""

    parent: Message
    replies: list[Message]
    next_after: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RepliesPage:
        return cls(
            parent=Message.from_json(data["parent"]),
            replies=[Message.from_json(m) for m in data.get("replies") or []],
            next_after=data.get("next_after"),
        )


@dataclass
class SearchHit:
    message_id: str
    channel_id: str
    channel_name: str
    user_id: str
    ts: int
    text: str
    thread_ts: str | None
    score: float
    #: HTML-escaped text with the matches in `<em>`.
    highlight: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchHit:
        return cls(
            message_id=data["message_id"],
            channel_id=data["channel_id"],
            channel_name=data.get("channel_name", ""),
            user_id=data.get("user_id", ""),
            ts=int(data.get("ts", 0)),
            text=data.get("text", ""),
            thread_ts=data.get("thread_ts"),
            score=float(data.get("score", 0.0)),
            highlight=data.get("highlight", ""),
        )


@dataclass
class SearchResult:
    total: int
    messages: list[SearchHit]
    next_offset: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchResult:
        return cls(
            total=int(data.get("total", 0)),
            messages=[SearchHit.from_json(h) for h in data.get("messages") or []],
            next_offset=data.get("next_offset"),
        )


@dataclass
class ResumeGap:
    """Missed events of a channel a resume did not replay: seqs `from_seq..=to_seq`."""

    channel_id: str
    from_seq: int
    to_seq: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResumeGap:
        return cls(channel_id=data["channel_id"], from_seq=int(data["from_seq"]), to_seq=int(data["to_seq"]))


@dataclass
class PresenceUpdate:
    user_id: str
    status: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PresenceUpdate:
        return cls(user_id=data["user_id"], status=data.get("status", "offline"))
