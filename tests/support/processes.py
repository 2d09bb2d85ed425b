"""Server and worker processes (`python -m app serve`, `python -m app worker`) for one test,
started with the test's settings and stopped when the block ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from app.settings import Settings
from tests.support.eventually import START_SECONDS, eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Running:
    process: asyncio.subprocess.Process
    url: str | None = None

    def kill(self) -> None:
        """Dies as a crash would: no shutdown, nothing given back."""
        self.process.send_signal(signal.SIGKILL)


class Processes:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.running: list[Running] = []

    def _env(self, env: dict[str, str]) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.settings.database_url,
            "TELEGRAM_API_URL": self.settings.telegram_api_url,
            "PUBLIC_URL": self.settings.public_url,
            "SCHEDULER_ENABLED": "false",
            "INBOX_POLL_SECONDS": "0.2",
            **env,
        }

    async def server(self, **env: str) -> Running:
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "serve",
            "--port",
            str(port),
            env=self._env(env),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        running = Running(process, f"http://127.0.0.1:{port}")
        self.running.append(running)
        async with httpx.AsyncClient() as client:

            async def healthy() -> bool:
                try:
                    return (await client.get(f"{running.url}/healthz")).status_code == 200
                except httpx.TransportError:
                    assert process.returncode is None, "the server exited during start-up"
                    return False

            await eventually(healthy, "the server answering /healthz 200", timeout=START_SECONDS)
        return running

    async def worker(self, **env: str) -> Running:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "worker",
            env=self._env(env),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        running = Running(process)
        self.running.append(running)
        return running

    async def stop(self) -> None:
        for running in reversed(self.running):
            if running.process.returncode is None:
                running.process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(running.process.wait(), 15)
                except TimeoutError:
                    running.process.kill()
                    await running.process.wait()


@contextlib.asynccontextmanager
async def processes(settings: Settings) -> AsyncIterator[Processes]:
    running = Processes(settings)
    try:
        yield running
    finally:
        await running.stop()
