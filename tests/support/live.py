"""A Plugboard app served over loopback HTTP, with helpers to talk to it as a client would."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from tortoise.context import TortoiseContext

from app.accounts.models import Plan
from app.main import create_app
from app.platform import Platform
from app.plugins.contract import PluginHandler
from app.settings import Settings
from tests.support.server import LiveServer


@dataclass
class TestUser:
    __test__ = False  # not a test class

    id: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class GraphQLError(AssertionError):
    pass


class LiveApp:
    def __init__(self, settings: Settings, handlers: list[PluginHandler] | None = None) -> None:
        self.settings = settings
        self.app = create_app(settings, handlers)
        self.platform: Platform = self.app.state.platform
        self.server = LiveServer(self.app)
        self.http: httpx.AsyncClient | None = None
        self.scheduled_at = 0.0  # the instant `next_scheduler_minute` last fired the schedules at

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> LiveApp:
        await self.server.start()
        # Plain HTTP on loopback: no TLS to verify, and no CA bundle to load (47 ms of CPU a client).
        self.http = httpx.AsyncClient(base_url=self.url, timeout=30, verify=False)
        return self

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        await self.server.stop()

    @contextlib.contextmanager
    def db(self) -> Iterator[TortoiseContext]:
        """Makes this app's database current, to look at rows directly."""
        with self.platform.db.bound() as ctx:
            yield ctx

    async def create_user(self, email: str, plan: Plan | str = Plan.FREE) -> TestUser:
        with self.db():
            user, token = await self.platform.accounts.create_user(email, Plan(plan))
        return TestUser(id=user.id, email=user.email, token=token)

    async def graphql_response(
        self, query: str, variables: dict[str, Any] | None = None, user: TestUser | None = None
    ) -> dict[str, Any]:
        assert self.http is not None
        headers = {"Accept": "application/graphql-response+json, application/json"}
        if user is not None:
            headers.update(user.auth)
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        response = await self.http.post("/graphql", json=body, headers=headers)
        return response.json()

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, user: TestUser | None = None
    ) -> dict[str, Any]:
        """The `data` of a query that must succeed."""
        result = await self.graphql_response(query, variables, user)
        if result.get("errors"):
            raise GraphQLError(result["errors"])
        return result["data"]

    async def graphql_error(
        self, query: str, variables: dict[str, Any] | None = None, user: TestUser | None = None
    ) -> dict[str, Any]:
        """The single error of a query that must fail."""
        result = await self.graphql_response(query, variables, user)
        errors = result.get("errors") or []
        assert len(errors) == 1, result
        return errors[0]
