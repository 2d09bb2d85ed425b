"""Shows the send queue at work against the fake Bot API, which holds sends to Telegram's limits
and answers the first message with 429 "retry after 2". Once that 429 has paused the bot, two
platforms (as two processes) on one database send for it at once, to one private chat, another
and a group; one call has a deadline it cannot meet.

    .venv/bin/python -m bench.show_send_queue [sqlite|postgres]

Prints each request as the fake received it: seconds since the first, the chat, the status.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from app.gateways.sendqueue import SendRateLimited
from app.settings import Settings
from tests.fakes.telegram import FakeTelegram
from tests.support.databases import drop_database, migrated, new_database_url
from tests.support.live import LiveApp, TestUser
from tests.support.runtime import ConnectedBot, connect_bot


async def send(
    app: LiveApp, user: TestUser, bot: ConnectedBot, chat_id: int, text: str, deadline: float | None = None
) -> str:
    try:
        with app.db():
            await app.platform.gateways.execute(
                user.id, bot.gateway_id, "sendMessage", {"chat_id": chat_id, "text": text}, deadline=deadline
            )
        return f"{text}: sent"
    except SendRateLimited as exc:
        return f"{text}: {exc.message}"


async def main(backend: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = await new_database_url(backend, Path(directory))
        await migrated(url)
        async with FakeTelegram() as telegram:
            settings = Settings(
                database_url=url,
                telegram_api_url=telegram.url,
                public_url="https://plugboard.example",
                scheduler_enabled=False,
            )
            one, two = LiveApp(settings), LiveApp(settings)
            await one.start()
            await two.start()
            try:
                user = await one.create_user("demo@example.com", "pro")
                bot = await connect_bot(one, user, telegram, "demo_bot")
                telegram.enforce_limits()
                telegram.flood(retry_after=2)  # the first message gets 429, retry after 2
                loop = asyncio.get_running_loop()
                first = asyncio.create_task(send(one, user, bot, 1, "p1 chat 1 #1"))
                with one.db():  # until the 429 came back and paused the bot, in every process
                    while await one.platform.gateways.sends.limits.paused_for(str(telegram.bot(bot.token).bot_id)) == 0:
                        await asyncio.sleep(0.01)
                outcomes: list[Any] = await asyncio.gather(
                    first,
                    send(two, user, bot, 1, "p2 chat 1 #2"),
                    send(one, user, bot, 1, "p1 chat 1 #3"),
                    send(two, user, bot, 2, "p2 chat 2 #1"),
                    send(one, user, bot, -100, "p1 group #1"),
                    send(two, user, bot, -100, "p2 group #2"),
                    send(one, user, bot, 1, "p1 chat 1 #4 (deadline 1 s)", deadline=loop.time() + 1),
                )
            finally:
                await two.stop()
                await one.stop()
        await drop_database(backend, url)
    start = telegram.arrivals[0].at if telegram.arrivals else 0.0
    print(
        f"backend: {backend}; limits: 1/s per chat, 20/min per group, 30/s per bot; first send flooded (429, retry after 2)"
    )
    print("   t (s)   chat   status  text")
    for arrival in telegram.sends():
        print(f"{arrival.at - start:8.3f}  {arrival.chat_id:>5}   {arrival.status}     {arrival.params.get('text')}")
    print("outcomes:")
    for outcome in outcomes:
        print("  " + outcome)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "sqlite"))
