"""Confab's user HTTP API (README's HTTP table) over httpx, with the bearer token: the caller,
channels (every page), history in all three directions, threads, pins, search, users and
presence. Every error answer (`{"error":{"code":..,"message":..}}`) raises `ConfabError`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx

from .errors import ConfabConnectionError, ConfabError
from .models import Channel, HistoryPage, Me, Message, RepliesPage, SearchResult, User

logger = logging.getLogger("confab_client")

#: Pages `channels()` follows at most (the server looks at up to 1,000 channels per page).
MAX_CHANNEL_PAGES = 100
#: Users one `GET /api/presence` may name.
MAX_PRESENCE_USERS = 500


def http_base_url(base_url: str) -> str:
    """`http(s)://host[:port][/prefix]` from either an HTTP or a WebSocket URL."""
    url = base_url.rstrip("/")
    if url.startswith("ws://"):
        url = "http://" + url[len("ws://") :]
    elif url.startswith("wss://"):
        url = "https://" + url[len("wss://") :]
    if url.endswith("/ws"):
        url = url[: -len("/ws")]
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must be an http(s):// or ws(s):// URL, got {base_url!r}")
    return url


class ConfabHttp:
    """The HTTP API as one user (the token's). Use as an async context manager, or call
    `aclose()` when done; pass `http_client` to share an `httpx.AsyncClient` of your own."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_seconds: float = 15.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = http_base_url(base_url)
        self.token = token
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(timeout=timeout_seconds)

    async def __aenter__(self) -> ConfabHttp:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def request(self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        """One call of the API; the decoded JSON answer. Parameters that are None are left out."""
        query = {key: _query_value(value) for key, value in (params or {}).items() if value is not None}
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            response = await self._client.request(
                method, f"{self.base_url}{path}", params=query, json=body, headers=headers
            )
        except httpx.TimeoutException as error:
            raise ConfabConnectionError(f"{method} {path} timed out ({error.__class__.__name__})") from error
        except httpx.TransportError as error:
            raise ConfabConnectionError(f"cannot reach {self.base_url} ({error})") from error
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = None
        if response.status_code >= 400:
            raise ConfabError.from_http(response.status_code, data, response.reason_phrase)
        return data

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self.request("GET", path, params)

    # the caller and the workspace -----------------------------------------------------------

    async def me(self) -> Me:
        """The token's user (`user_id`, `name`), workspace and channel ids."""
        return Me.from_json(await self.get("/api/me"))

    async def users(self) -> list[User]:
        """Everyone in the workspace, by name."""
        data = await self.get("/api/users")
        return [User.from_json(u) for u in data.get("users") or []]

    async def presence(self, user_ids: Iterable[str]) -> dict[str, str]:
        """user_id -> `active`, `away` or `offline` (asked 500 at a time)."""
        ids = list(dict.fromkeys(user_ids))
        statuses: dict[str, str] = {}
        for start in range(0, len(ids), MAX_PRESENCE_USERS):
            chunk = ids[start : start + MAX_PRESENCE_USERS]
            data = await self.get("/api/presence", {"user_ids": ",".join(chunk)})
            statuses.update(data.get("users") or {})
        return statuses

    # channels -------------------------------------------------------------------------------

    async def channels(self, *, page_size: int | None = None) -> list[Channel]:
        """Every channel the caller can see (public ones and their own), following `next_after`
        page by page, sorted by name. `page_size` is how many channels of the workspace the
        server looks at per call (default 500, at most 1,000)."""
        found: list[Channel] = []
        after: str | None = None
        for _ in range(MAX_CHANNEL_PAGES):
            data = await self.get("/api/channels", {"limit": page_size, "after": after})
            found.extend(Channel.from_json(c) for c in data.get("channels") or [])
            after = data.get("next_after")
            if not after:
                break
        else:
            logger.warning("stopped listing channels after %d pages", MAX_CHANNEL_PAGES)
        return sorted(found, key=lambda c: c.name)

    async def channel(self, channel_id: str) -> Channel:
        """One channel with its `members` (`channel_not_found` for a private one you are not in)."""
        return Channel.from_json(await self.get(f"/api/channels/{channel_id}"))

    # messages -------------------------------------------------------------------------------

    async def history(
        self,
        channel_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        after: str | None = None,
        around: str | None = None,
    ) -> HistoryPage:
        """One page of a channel's messages (thread-only replies left out). Default: the newest,
        newest first; `cursor=<message_id>` (a page's `next_cursor`): older ones;
        `after=<message_id>` (a page's `next_after`): newer ones, oldest first;
        `around=<message_id>`: the message with `limit/2` on each side. `limit` 1-200."""
        given = [name for name, value in (("cursor", cursor), ("after", after), ("around", around)) if value]
        if len(given) > 1:
            raise ValueError(f"give at most one of cursor, after and around (got {', '.join(given)})")
        params = {"limit": limit, "cursor": cursor, "after": after, "around": around}
        return HistoryPage.from_json(await self.get(f"/api/channels/{channel_id}/messages", params))

    async def iter_history(
        self, channel_id: str, *, page_size: int = 100, after: str | None = None
    ) -> AsyncIterator[Message]:
        """Every message of a channel: newest to oldest following `next_cursor`, or, with
        `after=<message_id>`, the newer ones oldest to newest following `next_after`."""
        if after is not None:
            next_after: str | None = after
            while next_after:
                page = await self.history(channel_id, limit=page_size, after=next_after)
                for message in page.messages:
                    yield message
                next_after = page.next_after
            return
        cursor: str | None = None
        while True:
            page = await self.history(channel_id, limit=page_size, cursor=cursor)
            for message in page.messages:
                yield message
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def replies(
        self, channel_id: str, message_id: str, *, limit: int | None = None, after: str | None = None
    ) -> RepliesPage:
        """A thread: the parent (with its summary) and replies, oldest first (`next_after` pages)."""
        params = {"limit": limit, "after": after}
        return RepliesPage.from_json(
            await self.get(f"/api/channels/{channel_id}/messages/{message_id}/replies", params)
        )

    async def pins(self, channel_id: str) -> list[Message]:
        """Pinned messages of a channel, newest first."""
        data = await self.get(f"/api/channels/{channel_id}/pins")
        return [Message.from_json(m) for m in data.get("messages") or []]

    async def search(
        self, query: str, *, limit: int | None = None, offset: int | None = None, tz_minutes: int | None = None
    ) -> SearchResult:
        """Full-text search of the messages you can read (`in:#channel`, `from:@name`, `"phrases"`,
        `before:`/`after:`/`on:` dates in `tz_minutes` from UTC, `has:link`, `is:thread`, ...).
        Near-real-time: a message is found shortly after its ack, not at once."""
        params = {"q": query, "limit": limit, "offset": offset, "tz": tz_minutes}
        return SearchResult.from_json(await self.get("/api/search", params))


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
