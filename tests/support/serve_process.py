"""`python -m app serve` in processes of their own, as in production, with their stderr kept."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path

import httpx

from tests.support.eventually import START_SECONDS
from tests.support.processes import free_port


class ServeProcess:
    """`python -m app serve` on a free port; `log()` is what it wrote to stderr so far."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.args = ("serve", "--port", str(self.port), *args)
        self._stderr = Path(tempfile.mkstemp(prefix="plugboard-serve-", suffix=".log")[1])
        self.process: asyncio.subprocess.Process | None = None
        self._final_log: str | None = None

    async def start(self, ready_path: str = "/healthz", deadline_seconds: float = START_SECONDS) -> ServeProcess:
        with self._stderr.open("wb") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app",
                *self.args,
                env=self.env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_seconds
        async with httpx.AsyncClient() as client:
            while loop.time() < end:
                try:
                    if (await client.get(self.url + ready_path)).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                assert self.process.returncode is None, f"the server exited during start-up:\n{self.log()}"
                await asyncio.sleep(0.1)
        raise AssertionError(f"the server did not start:\n{self.log()}")

    def log(self) -> str:
        if self._final_log is not None:
            return self._final_log
        return self._stderr.read_text(errors="replace")

    async def stop(self) -> str:
        """Stops the server as an operator would (SIGTERM) and returns everything it logged."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._final_log is None:
            self._final_log = self._stderr.read_text(errors="replace")
            self._stderr.unlink(missing_ok=True)
        return self._final_log

    async def __aenter__(self) -> ServeProcess:
        try:
            return await self.start()
        except BaseException:
            await self.stop()  # one that did not come up in time is not left running
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class WorkerProcess:
    """`python -m app worker`; `start()` returns once it logs that it started."""

    READY = "worker started"

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env}
        self.process: asyncio.subprocess.Process | None = None
        self._lines: list[str] = []
        self._ready = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> WorkerProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "worker",
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait([ready, self._reader], return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        assert self._ready.is_set(), f"the worker exited during start-up:\n{self.log()}"
        return self

    async def _read(self) -> None:
        """Keeps its stderr drained (a full pipe would stop it) and notes the readiness line."""
        assert self.process is not None and self.process.stderr is not None
        async for line in self.process.stderr:
            self._lines.append(line.decode(errors="replace"))
            if self.READY in self._lines[-1]:
                self._ready.set()

    def log(self) -> str:
        return "".join(self._lines)

    async def stop(self) -> str:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            await self._reader
        return self.log()
