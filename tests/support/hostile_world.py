"""A small world for hostile calls to run in: two users, each with a connected bot and an install.

It can tell whether a call changed it (a snapshot of every table a call can reach and of the fake
Telegram's webhooks), and go back to its first state after a call that rightly changed it, so
every generated example starts from the same place.
"""

from __future__ import annotations

import secrets
from typing import Any

from app.audit.models import AuditLog
from app.gateways.models import Gateway, GatewayEvent
from app.plugins.models import Plugin, RunRecord, StoredValue, UserPlugin
from tests.fakes.telegram import FakeTelegram
from tests.support.hostile import Ref
from tests.support.live import LiveApp, TestUser
from tests.support.oracle import Snapshot, snapshot
from tests.support.runtime import ConnectedBot, install, service_context

UNKNOWN_TOKEN = "123456789:AAHkZ0unknownUnknownUnknownUnknown00"  # well formed, unknown to Telegram
BAD_TOKEN_HEADERS = {
    "bad token": "Bearer pb_not-a-real-token",
    "empty bearer": "Bearer",
    "basic auth": "Basic dXNlcjpwYXNz",
}


class World:
    def __init__(self, app: LiveApp, telegram: FakeTelegram, mine: TestUser, theirs: TestUser) -> None:
        self.app = app
        self.telegram = telegram
        self.mine = mine  # a pro user
        self.theirs = theirs  # a free user
        # One token per bot for the world's life: the app keeps an HTTP session per token it has seen.
        self.tokens = {name: f"{secrets.randbelow(10**9)}:{secrets.token_urlsafe(30)}" for name in ("mine", "theirs")}
        self.refs: dict[str, Any] = {}
        self.bots: dict[str, ConnectedBot] = {}
        self.baseline: Snapshot = {}
        self.current: Snapshot = {}

    def __repr__(self) -> str:  # hypothesis prints a failing example's fixtures
        return f"<World at {self.app.url}>"

    @classmethod
    async def create(cls, app: LiveApp, telegram: FakeTelegram) -> World:
        mine = await app.create_user("mine@example.com", "pro")
        theirs = await app.create_user("theirs@example.com", "free")
        world = cls(app, telegram, mine, theirs)
        await world.rebuild()
        return world

    async def rebuild(self) -> None:
        """Back to the first state: each user with one bot and one install, no history."""
        with self.app.db():
            for model in (AuditLog, StoredValue, RunRecord, UserPlugin, GatewayEvent, Gateway):
                await model.all().delete()
        self.telegram.reset()
        self.bots = {
            "mine": await self.connect(self.mine, self.tokens["mine"], "my_bot"),
            "theirs": await self.connect(self.theirs, self.tokens["theirs"], "their_bot"),
        }
        with self.app.db():
            plugins = {p.slug: p for p in await Plugin.all()}
        self.refs = {
            "plugin:analytics": plugins["analytics"].id,
            "plugin:welcome": plugins["welcome"].id,
            "slug:analytics": "analytics",
            "slug:welcome": "welcome",
            "category:analytics": plugins["analytics"].category,
            "category:engagement": plugins["welcome"].category,
            "gateway:mine": self.bots["mine"].gateway_id,
            "gateway:theirs": self.bots["theirs"].gateway_id,
            "user:mine": self.mine.id,
            "user:theirs": self.theirs.id,
            "token:mine": self.bots["mine"].token,
            "token:theirs": self.bots["theirs"].token,
            "token:unknown": UNKNOWN_TOKEN,
        }
        await self.reinstall()

    async def connect(self, user: TestUser, token: str, username: str) -> ConnectedBot:
        """Connects a bot of this token as the user would (tests.support.runtime.connect_bot draws a new token)."""
        self.telegram.add_bot(token, username)
        ctx = await service_context(self.app, user)
        platform = self.app.platform
        with self.app.db():
            gateway = await platform.gateways.connect_telegram_bot(ctx, token)
        secret = self.telegram.bot(token).secret_token
        assert secret
        return ConnectedBot(gateway_id=gateway.id, token=token, secret=secret)

    async def reinstall(self) -> None:
        """Back to the first installs (the pro user: analytics; the free user: welcome), no history."""
        with self.app.db():
            for model in (AuditLog, StoredValue, RunRecord, UserPlugin):
                await model.all().delete()
        self.refs["install:mine"] = (await install(self.app, self.mine, "analytics")).id
        self.refs["install:theirs"] = (await install(self.app, self.theirs, "welcome")).id
        with self.app.db():
            await AuditLog.all().delete()
        self.baseline = self.current = await snapshot(self.app, self.telegram)

    async def ensure_pristine(self) -> None:
        """Undoes what the last call rightly changed: installs alone are quick to put back."""
        changed = {table for table in self.baseline if self.current.get(table) != self.baseline[table]}
        if changed <= {"user_plugins", "plugin_storage", "audit_log"}:
            if changed:
                await self.reinstall()
        else:
            await self.rebuild()

    def resolve(self, ref: Ref) -> Any:
        return self.refs[ref.name]

    def authorization(self, caller: str) -> str | None:
        if caller == "mine":
            return f"Bearer {self.mine.token}"
        if caller == "theirs":
            return f"Bearer {self.theirs.token}"
        if caller == "anonymous":
            return None
        return BAD_TOKEN_HEADERS[caller]

    def clear_telegram_faults(self) -> None:
        """Forgets failures a call did not reach, keeping the bots as they are."""
        bots = list(self.telegram.bots.values())
        self.telegram.reset()
        for bot in bots:
            fresh = self.telegram.add_bot(bot.token, bot.username, bot.bot_id)
            fresh.webhook_url, fresh.secret_token, fresh.allowed_updates = (
                bot.webhook_url,
                bot.secret_token,
                bot.allowed_updates,
            )
