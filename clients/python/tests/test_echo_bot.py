"""The example bot (examples/echo_bot.py), run as its own process against the server: it
answers a member's message once, in the thread when the message is a reply, never itself, and
stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from confab_client import MessageNew, connect
from conftest import CLIENT_ROOT
from support import EventRecorder

ECHO_BOT = CLIENT_ROOT / "examples" / "echo_bot.py"


async def test_the_echo_bot_answers_messages(team):
    bot_person = team.add_person("echo-bot")
    channel = team.add_channel("bots", [team.bob, bot_person], creator=team.bob)
    env = {**os.environ, "CONFAB_URL": team.base_url, "CONFAB_TOKEN": bot_person.token, "LOG_LEVEL": "INFO"}
    bot = await asyncio.create_subprocess_exec(
        sys.executable, str(ECHO_BOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert bot.stdout is not None
        ready = json.loads(await asyncio.wait_for(bot.stdout.readline(), 30))
        assert ready["event"] == "ready" and ready["user_id"] == bot_person.user_id

        async with connect(team.base_url, team.bob.token) as bob:
            bob_events = EventRecorder(bob)
            question = await bob.send(channel, "hello bot")
            answer = await bob_events.wait_for(
                lambda e: isinstance(e, MessageNew) and e.message.user_id == bot_person.user_id, "the bot's answer", 20
            )
            assert answer.message.text == "echo: hello bot"
            assert answer.message.channel_id == channel
            assert answer.message.thread_ts is None

            reply = await bob.send(channel, "in a thread", thread_ts=question.message_id)
            threaded = await bob_events.wait_for(
                lambda e: (
                    isinstance(e, MessageNew)
                    and e.message.user_id == bot_person.user_id
                    and e.message.text == "echo: in a thread"
                ),
                "the bot's answer in the thread",
                20,
            )
            assert threaded.message.thread_ts == question.message_id
            assert reply.message_id != threaded.message.message_id

            # one answer per message, and no answer to its own answers
            await asyncio.sleep(1.5)
            bot_texts = [m.text for m in bob_events.messages(channel) if m.user_id == bot_person.user_id]
            assert bot_texts == ["echo: hello bot", "echo: in a thread"]
            await bob_events.stop()

        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), 15) == 0
    except BaseException:
        if bot.returncode is None:
            bot.kill()
        assert bot.stderr is not None
        log = (await asyncio.wait_for(bot.stderr.read(), 10)).decode(errors="replace")
        print(f"echo bot's log:\n{log}", file=sys.stderr)
        raise
    finally:
        if bot.returncode is None:
            bot.kill()
        await bot.wait()
