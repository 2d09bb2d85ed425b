from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hypothesis
import pytest

from app import secrets_at_rest
from app.db import Database
from app.plugins.contract import PluginHandler
from app.settings import Settings
from tests.support.databases import TEMPLATES_VARIABLE, drop_database, drop_templates, migrated_copy, truncate_all
from tests.support.https_server import Certificates, HttpsStandIn, make_certificates
from tests.support.live import LiveApp, TestUser

if TYPE_CHECKING:
    from tests.fakes.telegram import FakeTelegram

pytest_plugins = ["tests.support.hangs"]  # what a test that hit the timeout was waiting for

# Nothing in a test is bounded by time, hypothesis' examples neither: no deadline per example, no
# "too slow" health check (a busy machine is slow; that is no failure of the code under test).
hypothesis.settings.register_profile("suite", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow])
hypothesis.settings.load_profile("suite")

BACKENDS = ["sqlite", "postgres"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `slow` are spread over the first half of the run, one every few others.

    Under xdist, a slow test that started last would hold the run open alone while the other
    workers sit idle; and most slow tests wait (on leases, outages, processes they start), so run
    all together first they left the cores idle for a minute. Spread out, the workers beside them
    keep the cores busy."""
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if not slow:
        return
    rest = [item for item in items if item.get_closest_marker("slow") is None]
    stride = max(1, len(rest) // (2 * len(slow)))
    spread: list[pytest.Item] = []
    for index, item in enumerate(slow):
        spread.append(item)
        spread.extend(rest[index * stride : (index + 1) * stride])
    spread.extend(rest[len(slow) * stride :])
    items[:] = spread


# The key the tests seal secrets with: this process's (the migrations and apps run here) and,
# through the environment, every `python -m app` process a test starts (SECRET_KEY).
TEST_SECRET_KEY = "7dkhVlrODo0L_2ysjiLuFFt39FYrOxTMlidOghzN9TU"
secrets_at_rest.configure([TEST_SECRET_KEY])
os.environ.setdefault("SECRET_KEY", TEST_SECRET_KEY)


def pytest_configure(config: pytest.Config) -> None:
    """The process that starts the run (not an xdist worker) makes the directory where the run's
    template databases are recorded; its workers inherit it through the environment."""
    if not hasattr(config, "workerinput") and TEMPLATES_VARIABLE not in os.environ:
        os.environ[TEMPLATES_VARIABLE] = tempfile.mkdtemp(prefix="plugboard-templates-")
        config.add_cleanup(lambda: _drop_templates(Path(os.environ.pop(TEMPLATES_VARIABLE))))


def _drop_templates(templates: Path) -> None:
    try:
        drop_templates(templates)
    finally:
        shutil.rmtree(templates, ignore_errors=True)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
async def migrated_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """One migrated database per backend for each worker; tests empty it before they start."""
    url = await migrated_copy(backend, tmp_path_factory.mktemp(backend))
    yield url
    await drop_database(backend, url)


@pytest.fixture
async def database_url(migrated_database: str) -> str:
    db = Database(migrated_database)
    await db.open()
    try:
        await truncate_all(db)
    finally:
        await db.close()
    return migrated_database


@pytest.fixture(scope="session")
async def telegram_server() -> AsyncIterator[FakeTelegram]:
    from tests.fakes.telegram import FakeTelegram

    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def faulty_database_url(backend: str, database_url: str) -> AsyncIterator[str]:
    """The test's database, or on PostgreSQL one of its own, whose connections may be refused."""
    if backend == "sqlite":
        yield database_url
        return
    from tests.support.outage import own_postgres_database

    async with own_postgres_database() as url:
        yield url


@pytest.fixture
def telegram(telegram_server: FakeTelegram) -> FakeTelegram:
    """The fake Telegram Bot API, emptied for each test."""
    telegram_server.reset()
    return telegram_server


@pytest.fixture
def settings(database_url: str, telegram: FakeTelegram) -> Settings:
    return Settings(
        database_url=database_url,
        telegram_api_url=telegram.url,
        public_url="https://plugboard.example",
        inbox_poll_seconds=0.2,
        scheduler_enabled=False,
        secret_keys=(TEST_SECRET_KEY,),
    )


AppFactory = Callable[..., Awaitable[LiveApp]]


@pytest.fixture
async def make_app(settings: Settings) -> AsyncIterator[AppFactory]:
    """Starts apps over real HTTP: make_app(handlers=[...], **settings overrides)."""
    apps: list[LiveApp] = []

    async def start(handlers: list[PluginHandler] | None = None, **overrides: Any) -> LiveApp:
        live = LiveApp(replace(settings, **overrides), handlers)
        await live.start()
        apps.append(live)
        return live

    yield start
    for live in reversed(apps):
        await live.stop()


@pytest.fixture
async def app(make_app: AppFactory) -> LiveApp:
    return await make_app()


@pytest.fixture
async def user(app: LiveApp) -> TestUser:
    return await app.create_user("ada@example.com", "free")


@pytest.fixture
async def pro_user(app: LiveApp) -> TestUser:
    return await app.create_user("grace@example.com", "pro")


# --- a loopback HTTPS receiver (the forward plugin's webhook, ctx.http's far end) ----------------


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
async def stand_in_server(certificates: Certificates) -> AsyncIterator[HttpsStandIn]:
    async with HttpsStandIn(certificates) as server:
        yield server


@pytest.fixture
def stand_in(stand_in_server: HttpsStandIn) -> HttpsStandIn:
    stand_in_server.reset()
    return stand_in_server
