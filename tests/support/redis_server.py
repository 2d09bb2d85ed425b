"""Redis for tests: a private redis-server on a free loopback port, which a test may stop and
start again; or the machine's own Redis (`redis-server` on port 6379, TEST_REDIS_URL), at a
database number of this pytest-xdist worker's own so that workers never share keys. Pub/sub
channels are not per database: the app's channels name a user, whose id is random."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support.databases import IN_CI

SHARED_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _unavailable("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.directory = directory
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def freeze(self) -> None:
        """The server stops answering while its port stays open, as a hung host does (SIGSTOP)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    async def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            await asyncio.to_thread(self._process.wait)
            self._process = None


def _unavailable(message: str) -> NoReturn:
    """Fails under CI=true, where the suite must run whole; skips elsewhere."""
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


async def shared_redis_url() -> str:
    """The machine's Redis, at this worker's own database (0 without xdist, gw3 -> 3)."""
    from redis import asyncio as aioredis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    number = int(worker.removeprefix("gw")) % 16 if worker.startswith("gw") else 0
    url = f"{SHARED_REDIS_URL.rstrip('/')}/{number}"
    client = aioredis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        await client.ping()
    except Exception as exc:
        _unavailable(f"Redis is not reachable at {url} ({type(exc).__name__}: {exc}): start redis-server")
    finally:
        await client.aclose()
    return url
