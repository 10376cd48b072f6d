"""Typed errors: every refusal from Confab (an `error` frame, an HTTP error body, a refused
upgrade) becomes a `ConfabError` carrying the server's `code`; failures on the client's side
(the connection, a deadline, a closed client) are subclasses with codes of their own."""

from __future__ import annotations

from typing import Any

#: Codes whose command never reached the event log, so sending it again is safe and may work
#: later: `rate_limited` (slow down first) and `unavailable` (the log could not be written).
RETRYABLE_CODES = frozenset({"rate_limited", "unavailable", "resume_unavailable", "too_many_connections"})

#: Codes that mean the token no longer works: get a new one before connecting again.
AUTH_CODES = frozenset({"unauthorized", "token_expired", "token_revoked", "user_deactivated", "workspace_deleted"})

#: WebSocket close codes the server uses when the token stops working (docs/asyncapi.yaml).
CLOSE_TOKEN_EXPIRED = 4001
CLOSE_TOKEN_REVOKED = 4003


class ConfabError(Exception):
    """An error Confab answered with, or one of the client's own (see the subclasses).

    `code` is one of the protocol's error codes (`rate_limited`, `invalid_field`,
    `not_a_member`, `channel_not_found`, ...) or, for client-side failures, `connection_lost`,
    `timeout` or `closed`. `retryable` says whether repeating the same request may succeed.
    """

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        client_msg_id: str | None = None,
        http_status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.client_msg_id = client_msg_id
        self.http_status = http_status
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        if self._retryable is not None:
            return self._retryable
        return self.code in RETRYABLE_CODES or (self.http_status is not None and self.http_status >= 500)

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> ConfabError:
        """An `error` frame (`{"type":"error","code":..,"message":..,"client_msg_id":..}`)."""
        code = str(frame.get("code", "internal"))
        error_class = ConfabAuthError if code in AUTH_CODES else ConfabError
        return error_class(code, str(frame.get("message", "")), client_msg_id=frame.get("client_msg_id"))

    @classmethod
    def from_http(cls, status: int, body: Any, fallback_message: str = "") -> ConfabError:
        """An HTTP error answer: `{"error":{"code":..,"message":..}}`, or whatever came instead."""
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and "code" in error:
            code, message = str(error["code"]), str(error.get("message", ""))
        else:
            code, message = f"http_{status}", fallback_message
        error_class = ConfabAuthError if (code in AUTH_CODES or status == 401) else ConfabError
        return error_class(code, message, http_status=status)


class ConfabAuthError(ConfabError):
    """The token was refused, expired or revoked (HTTP 401, close 4001/4003): not retryable
    with the same token."""

    @property
    def retryable(self) -> bool:
        return False


class ConfabConnectionError(ConfabError):
    """The server could not be reached, or the connection dropped before an answer came.

    For a command other than `message:send` (which the server deduplicates by
    `client_msg_id`) the outcome is then unknown: it may or may not have been applied."""

    def __init__(self, message: str, *, client_msg_id: str | None = None) -> None:
        super().__init__("connection_lost", message, client_msg_id=client_msg_id, retryable=True)


class ConfabTimeoutError(ConfabError):
    """No answer (or no connection) within the deadline."""

    def __init__(self, message: str, *, client_msg_id: str | None = None) -> None:
        super().__init__("timeout", message, client_msg_id=client_msg_id, retryable=True)


class ConfabClosedError(ConfabError):
    """The client was closed (`close()`), so it sends and receives nothing more."""

    def __init__(self, message: str = "the client is closed") -> None:
        super().__init__("closed", message, retryable=False)
