"""A process that only takes updates in never imports aiogram's types (about 165 MiB on their own,
aiogram's issue #1513): checked in a fresh interpreter, since this one has them loaded already."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

from app.accounts.service import AccountService
from app.db import Database
from app.gateways.models import Gateway, GatewayEvent, GatewayType, new_gateway_columns
from app.ids import new_secret
from tests.support.telegram_updates import message_update

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
