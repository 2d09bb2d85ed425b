"""A process that only takes updates in never imports aiogram's types (about 165 MiB on their own,
aiogram's issue #1513): checked in a fresh interpreter, since this one has them loaded already."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

from app.accounts.service import AccountService
from app.analytics.models import AnalyticsChat
from app.db import Database
from app.gateways.models import Gateway, GatewayEvent, GatewayType, new_gateway_columns
from app.ids import new_secret
from tests.support.eventually import START_SECONDS
from tests.support.runtime import (
    analytics_counts,
    connect_bot,
    deliver,
    install,
    messages_counted,
    wait_until_processed,
)
from tests.support.telegram_updates import (
    channel_post_update,
    chat_member,
    chat_member_update,
    message_update,
    new_members_update,
    user,
)

# Builds the app as `serve` does with INBOX_CONCURRENCY=0, starts it on a real socket, delivers one
# update over HTTP and reports the answer and which of aiogram's modules got imported on the way.
INGEST_ONLY = textwrap.dedent(
    """
    import asyncio, json, os, socket, sys

    import httpx
    import uvicorn

    from app.main import create_app
    from app.settings import Settings

    database_url, gateway_id, secret, body = sys.argv[1:5]
    imported_by_main = sorted(m for m in sys.modules if m.startswith("aiogram"))


    async def main():
        # Webhooks: a deployment that polls calls Telegram from every process, with aiogram.
        settings = Settings(
            database_url=database_url, inbox_concurrency=0, scheduler_enabled=False, telegram_delivery="webhook",
            secret_keys=(os.environ["SECRET_KEY"],),
        )
        app = create_app(settings)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as http:
            response = await http.post(
                f"/webhooks/telegram/{gateway_id}",
                content=body,
                headers={"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"},
            )
        server.should_exit = True
        await serving
        return response.status_code


    status = asyncio.run(main())
    print(json.dumps({
        "status": status,
        "imported_by_main": imported_by_main,
        "types": sorted(m for m in sys.modules if m.startswith("aiogram.types")),
    }))
    """
)


async def a_gateway(database_url: str) -> tuple[str, str]:
    db = Database(database_url)
    await db.open()
    try:
        with db.bound():
            user, _ = await AccountService().create_user("ingest@example.com")
            secret = new_secret()
            gateway = await Gateway.create(
                owner_id=user.id,
                type=GatewayType.TELEGRAM_BOT,
                name="ingest",
                **new_gateway_columns("0:ingest", secret),
            )
    finally:
        await db.close()
    return gateway.id, secret


async def events_stored(database_url: str) -> int:
    db = Database(database_url)
    await db.open()
    try:
        with db.bound():
            return await GatewayEvent.all().count()
    finally:
        await db.close()


async def test_an_ingest_only_server_takes_an_update_without_importing_aiogram_types(database_url):
    gateway_id, secret = await a_gateway(database_url)
    body = json.dumps(message_update(1, chat_id=-7))

    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", INGEST_ONLY, database_url, gateway_id, secret, body],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == 200
    assert await events_stored(database_url) == 1  # it went the whole way: checked and committed
    assert report["imported_by_main"] == []  # `import app.main` imports no aiogram at all
    assert report["types"] == []


# A worker as `python -m app worker` builds it (the built-in plugins), run until the test says the
# inbox is processed (a line on stdin); it reports which of aiogram's types got imported and which
# event models got built. Another process holds the gateway health checks' lease: they call Telegram
# through aiogram, whose `Bot` imports its types.
LEAN_WORKER = textwrap.dedent(
    """
    import asyncio, json, os, sys

    from app.gateways import leases
    from app.platform import Platform
    from app.settings import Settings


    async def main():
        settings = Settings(
            database_url=sys.argv[1], inbox_concurrency=4, scheduler_enabled=False, telegram_delivery="webhook",
            secret_keys=(os.environ["SECRET_KEY"],),
        )
        platform = Platform(settings)
        await platform.db.open()
        with platform.db.bound():
            assert await leases.take("gateway-health", "another-worker", 600)
        await platform.db.close()
        await platform.start()
        try:
            await asyncio.to_thread(sys.stdin.readline)
        finally:
            await platform.stop()


    asyncio.run(main())
    models = sys.modules.get("aiogram.types")
    print(json.dumps({
        "types": sorted(m for m in sys.modules if m.startswith("aiogram.types")),
        "built": [] if models is None else [
            name for name in ("Message", "CallbackQuery", "ChatMemberUpdated", "Update")
            if getattr(models, name).__pydantic_complete__
        ],
    }))
    """
)


async def test_a_worker_whose_plugins_read_only_light_fields_processes_updates_without_aiogram_types(
    make_app, telegram
):
    ingest = await make_app(inbox_concurrency=0)  # the built-in plugins
    owner = await ingest.create_user("lean@example.com", "pro")
    bot = await connect_bot(ingest, owner, telegram)
    analytics = await install(ingest, owner, "analytics")
    await install(ingest, owner, "welcome")
    robot = user(502, "Robo", is_bot=True)
    updates = [
        message_update(1, "hi", chat_id=-9, sender_id=501),
        message_update(2, "hi again", chat_id=-9, sender_id=503),
        channel_post_update(3, chat_id=-10),
        new_members_update(4, robot, chat_id=-9),  # Welcome reads it, and greets no bot
        chat_member_update(5, chat_member("left", 501), chat_member("member", 501), chat_id=-9),
        chat_member_update(6, chat_member("member", 502), chat_member("kicked", 502), chat_id=-9),
    ]
    for update in updates:
        assert (await deliver(ingest, bot, update)).status_code == 200

    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LEAN_WORKER,
        ingest.settings.database_url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_until_processed(ingest, START_SECONDS)
    finally:
        out, err = await worker.communicate(b"stop\n")
    assert worker.returncode == 0, err.decode()[-3000:]
    report = json.loads(out.decode().strip().splitlines()[-1])

    counts = await analytics_counts(ingest, analytics.id, -9)
    assert counts is not None and (counts["received"], counts["users"]) == (3, 2)
    with ingest.db():
        chat = await AnalyticsChat.get(install_id=analytics.id, chat_id=-9)
    assert (chat.joins, chat.leaves) == (1, 1)
    assert await messages_counted(ingest, analytics.id, -10) == 1
    assert "sendMessage" not in [call.method for call in telegram.calls]  # no greeting for a bot
    assert report == {"types": [], "built": []}
