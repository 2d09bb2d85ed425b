"""Shows the circuit breaker of the `welcome` plugin while the fake Bot API answers a greeting with
429 "retry after 7", longer than a run may wait (5 s): the bot's sends pause in every process, so
greetings fail at once; the breaker opens after 3, the next joins are skipped (recorded, not
queued), a trial after the backoff fails and doubles it, the pause ends, and the next trial
succeeds and closes the breaker. Channel Analytics, installed beside it, counts every message.

    .venv/bin/python -m bench.show_breaker [sqlite|postgres]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from app.plugins.models import RunRecord, UserPlugin
from app.settings import Settings
from tests.fakes.telegram import FakeTelegram
from tests.support.databases import drop_database, migrated, new_database_url
from tests.support.live import LiveApp
from tests.support.runtime import connect_bot, deliver, install, messages_counted, wait_until_processed
from tests.support.telegram_updates import new_members_update, user

CHAT = -100200


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
                breaker_failures=3,
                breaker_backoff_seconds=2,
                breaker_max_backoff_seconds=8,
                plugin_timeout_seconds=5,
            )
            app = LiveApp(settings)
            await app.start()
            start = time.monotonic()
            try:
                owner = await app.create_user("demo@example.com", "pro")
                bot = await connect_bot(app, owner, telegram, "demo_bot")
                welcome = await install(app, owner, "welcome")
                analytics = await install(app, owner, "analytics")
                telegram.flood(retry_after=7)  # the first greeting is answered 429 "retry after 7"
                print("   t (s)  join  welcome run   status                consecutive  backoff  Telegram saw")
                for n in range(1, 9):
                    if n in (6, 7, 8):  # the next join comes once a trial is due
                        with app.db():
                            row = await UserPlugin.get(id=welcome.id)
                        if row.probe_at is not None:
                            await asyncio.sleep((row.probe_at - datetime.now(UTC)).total_seconds() + 0.3)
                    await deliver(app, bot, new_members_update(n, user(2000 + n, f"Member{n}"), chat_id=CHAT))
                    await wait_until_processed(app)
                    with app.db():
                        row = await UserPlugin.get(id=welcome.id)
                        run = await RunRecord.filter(install_id=welcome.id).order_by("-created_at", "-id").first()
                    sent = [a.status for a in telegram.sends()]
                    outcome = run.outcome.value if run else "-"
                    print(
                        f"{time.monotonic() - start:8.2f}  {n:>4}  {outcome:<12}  {row.status.value:<20}  "
                        f"{row.consecutive_failures:>11}  {row.backoff_seconds:>5.0f} s  {sent}"
                    )
                    if run and run.error and n in (1, 4):
                        print(f"          error: {run.error}")
                    if n == 3:
                        print(f"          statusReason: {row.status_reason}")
                print(
                    f"Channel Analytics counted {await messages_counted(app, analytics.id, CHAT)} messages in the chat"
                )
            finally:
                await app.stop()
        await drop_database(backend, url)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "sqlite"))
