"""Test helpers: record a client's events in the background and wait, always with a deadline,
for an event or a condition; poll an HTTP answer until it says what a test expects."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from confab_client import ConfabClient, Event, Message, MessageNew

T = TypeVar("T")


class EventRecorder:
    """Drains a client's event iterator into `events` until stopped."""

    def __init__(self, client: ConfabClient) -> None:
        self.client = client
        self.events: list[Event] = []
        self.failure: BaseException | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            async for event in self.client:
                self.events.append(event)
                self._changed.set()
        except BaseException as error:  # noqa: BLE001 - kept for the test to see
            self.failure = error
            self._changed.set()

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def of_type(self, event_type: type[T]) -> list[T]:
        return [event for event in self.events if isinstance(event, event_type)]

    def messages(self, channel_id: str | None = None) -> list[Message]:
        """The messages of `message:new` events, in the order received."""
        return [
            event.message
            for event in self.events
            if isinstance(event, MessageNew) and (channel_id is None or event.message.channel_id == channel_id)
        ]

    async def wait_for(self, predicate: Callable[[Event], bool], what: str, timeout_seconds: float = 15.0) -> Event:
        """The first recorded event matching `predicate`, waiting for it up to the deadline."""

        def find() -> Event | None:
            return next((event for event in self.events if predicate(event)), None)

        await self.wait_until(lambda: find() is not None, what, timeout_seconds)
        found = find()
        assert found is not None
        return found

    async def wait_until(self, condition: Callable[[], bool], what: str, timeout_seconds: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while not condition():
            if self.failure is not None:
                raise AssertionError(f"the event stream failed while waiting for {what}: {self.failure!r}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = ", ".join(_describe(event) for event in self.events[-15:])
                raise AssertionError(f"timed out after {timeout_seconds} s waiting for {what}; last events: {recent}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
            except asyncio.TimeoutError:
                pass


async def poll(
    what: str, fetch: Callable[[], Awaitable[T]], accept: Callable[[T], bool], timeout_seconds: float = 20.0
) -> T:
    """Calls `fetch` until `accept` takes its answer (the read side is eventually consistent)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    last: Any = None
    while True:
        last = await fetch()
        if accept(last):
            return last
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_seconds} s waiting for {what}; last answer: {last!r:.2000}")
        await asyncio.sleep(0.1)


def _describe(event: Event) -> str:
    if isinstance(event, MessageNew):
        return f"message:new({event.message.text[:30]!r} seq={event.message.seq})"
    return event.type
