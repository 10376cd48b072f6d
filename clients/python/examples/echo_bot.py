#!/usr/bin/env python3
"""An echo bot on confab-client: answers every message posted in its channels (by anyone but
itself) with "echo: <text>", in the message's thread when it has one. It reconnects and
resumes by itself; messages the resume could not replay (gaps) are fetched over HTTP and
answered too, so a network blip loses nothing.

    CONFAB_URL=http://127.0.0.1:8080 CONFAB_TOKEN=... python examples/echo_bot.py

The token is read from the environment (not a flag) so it stays out of `ps`. Prints one JSON
line `{"event": "ready", "user_id": ...}` on stdout once connected; stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal

import confab_client
from confab_client import ConfabError, Message, MessageNew, ResumeDone, ResumeFailed

logger = logging.getLogger("echo_bot")


class EchoBot:
    def __init__(self, client: confab_client.ConfabClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.replies_in_flight: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        async for event in self.client:
            if isinstance(event, MessageNew):
                self.answer_later(event.message)
            elif isinstance(event, ResumeDone) and event.gaps:
                for message in await self.client.fetch_gaps(event.gaps):
                    self.answer_later(message)
            elif isinstance(event, ResumeFailed):
                logger.warning("resume failed (%s); messages sent meanwhile are not answered", event.code)

    def answer_later(self, message: Message) -> None:
        """Replies without holding up the event loop (an ack may take a while)."""
        if message.user_id == self.client.user_id or message.deleted or not message.text:
            return
        task = asyncio.create_task(self.answer(message))
        self.replies_in_flight.add(task)
        task.add_done_callback(self.replies_in_flight.discard)

    async def answer(self, message: Message) -> None:
        try:
            await self.client.send(message.channel_id, self.prefix + message.text, thread_ts=message.thread_ts)
        except ConfabError as error:
            logger.warning("cannot answer message %s: %s", message.message_id, error)


async def main_async(base_url: str, token: str, prefix: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    async with confab_client.connect(base_url, token) as client:
        print(json.dumps({"event": "ready", "user_id": client.user_id, "conn_id": client.hello.conn_id}), flush=True)
        logger.info("echo bot connected as %s", client.user_id)
        bot = EchoBot(client, prefix)
        running = asyncio.create_task(bot.run())
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if running in done:
            running.result()  # the client ended: raise why
        running.cancel()
        await asyncio.gather(running, *bot.replies_in_flight, return_exceptions=True)
    logger.info("echo bot stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--url", default=os.environ.get("CONFAB_URL", "http://127.0.0.1:8080"), help="the server (CONFAB_URL)"
    )
    parser.add_argument("--prefix", default="echo: ", help="what the answers start with")
    arguments = parser.parse_args()
    token = os.environ.get("CONFAB_TOKEN")
    if not token:
        parser.error("set CONFAB_TOKEN to the bot's token (confab admin create-user prints one)")
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    asyncio.run(main_async(arguments.url, token, arguments.prefix))


if __name__ == "__main__":
    main()
