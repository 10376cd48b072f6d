"""confab-client: an asyncio client of Confab, the team messaging backend.

    import confab_client

    async with confab_client.connect("http://127.0.0.1:8080", token) as client:
        ack = await client.send(channel_id, "hello")
        async for event in client:
            if isinstance(event, confab_client.MessageNew):
                print(event.message.text)

`connect` opens the WebSocket (token in `Sec-WebSocket-Protocol`), keeps it alive with
heartbeats, reconnects and resumes losslessly; `ConfabClient.http` (or `ConfabHttp` alone) is
the HTTP API. Every refusal raises `ConfabError` with the server's `code`.
"""

from ._version import __version__
from .client import DEFAULT_RECONNECT_DELAYS, ConfabClient, connect, new_client_msg_id, websocket_url
from .errors import (
    RETRYABLE_CODES,
    ConfabAuthError,
    ConfabClosedError,
    ConfabConnectionError,
    ConfabError,
    ConfabTimeoutError,
)
from .events import (
    SERVER_FRAME_TYPES,
    ChannelArchived,
    ChannelCreated,
    ChannelJoined,
    ChannelLeft,
    ChannelMarked,
    ChannelRenamed,
    CommandOk,
    Disconnected,
    ErrorEvent,
    Event,
    FileDeleted,
    FileShared,
    Hello,
    MessageAck,
    MessageDeleted,
    MessageEdited,
    MessageNew,
    MessagePinned,
    Pong,
    PresenceChange,
    ReactionAdded,
    ReactionChanged,
    ReactionRemoved,
    ResumeDone,
    ResumeFailed,
    Typing,
    UnknownEvent,
    parse_event,
)
from .http_api import ConfabHttp
from .models import (
    Attachment,
    Channel,
    HistoryPage,
    Me,
    Message,
    PresenceUpdate,
    RepliesPage,
    ResumeGap,
    SearchHit,
    SearchResult,
    ThreadSummary,
    User,
)

__all__ = [
    "__version__",
    "connect",
    "ConfabClient",
    "ConfabHttp",
    "DEFAULT_RECONNECT_DELAYS",
    "new_client_msg_id",
    "websocket_url",
    # errors
    "ConfabError",
    "ConfabAuthError",
    "ConfabConnectionError",
    "ConfabTimeoutError",
    "ConfabClosedError",
    "RETRYABLE_CODES",
    # events
    "Event",
    "parse_event",
    "SERVER_FRAME_TYPES",
    "Hello",
    "Pong",
    "MessageAck",
    "CommandOk",
    "MessageNew",
    "MessageEdited",
    "MessageDeleted",
    "MessagePinned",
    "ReactionChanged",
    "ReactionAdded",
    "ReactionRemoved",
    "Typing",
    "ChannelCreated",
    "ChannelJoined",
    "ChannelLeft",
    "ChannelRenamed",
    "ChannelArchived",
    "ChannelMarked",
    "FileShared",
    "FileDeleted",
    "PresenceChange",
    "ResumeDone",
    "ErrorEvent",
    "UnknownEvent",
    "Disconnected",
    "ResumeFailed",
    # data
    "Attachment",
    "Channel",
    "HistoryPage",
    "Me",
    "Message",
    "PresenceUpdate",
    "RepliesPage",
    "ResumeGap",
    "SearchHit",
    "SearchResult",
    "ThreadSummary",
    "User",
]
