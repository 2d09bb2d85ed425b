"""`python -m app serve`: the listening socket first, then migrations, then uvicorn on that socket.

Binding before anything else means a port already in use fails at once, with one line, before a
migration runs and before the app starts (uvicorn alone starts the app, then fails to bind).
"""

from __future__ import annotations

import gc
import os
import socket
from collections.abc import MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from app.settings import Settings

if TYPE_CHECKING:
    from app.gateways.models import Delivery


class CannotListen(Exception):
    """The address cannot be listened on; the text says which and why, in one line."""


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (port 0: a free one), inheritable by uvicorn's worker processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        hint = " (is another server running there? --port or PORT chooses another port)" if "in use" in reason else ""
        raise CannotListen(f"cannot listen on {host}:{port}: {reason}{hint}") from exc
    except (OverflowError, UnicodeError) as exc:
        sock.close()
        raise CannotListen(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.set_inheritable(True)
    return sock


def shown_url(host: str, port: int) -> str:
    """The address to open in a browser: a wildcard host is reached on loopback."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def with_public_url(
    settings: Settings, served: str, environ: MutableMapping[str, str] = os.environ
) -> tuple[Settings, str | None]:
    """The settings to serve with, and the PUBLIC_URL warning to log (None when Telegram can reach it).

    Without PUBLIC_URL in the environment, webhook addresses start with the address being served
    (`served`), and the warning names that address, not the default's port. The app's processes
    read it from the environment, so it is set there too.
    """
    from app.gateways.public_url import public_url_problem

    if (environ.get("PUBLIC_URL") or "").strip():
        return settings, public_url_problem(settings.public_url)
    environ["PUBLIC_URL"] = served
    subject = f"PUBLIC_URL is not set, so bots' webhooks would go to this server's address {served}, which"
    return replace(settings, public_url=served), public_url_problem(served, subject)


def telegram_delivery(settings: Settings, public_url_set: bool = True) -> tuple[Delivery, str]:
    """How bots get their updates under these settings, and why in words (the start-up line).
    `public_url_set`: whether PUBLIC_URL was set, or is this server's address (with_public_url)."""
    from app.gateways.registration import delivery_mode

    subject = None if public_url_set else f"PUBLIC_URL is not set, and this server's address {settings.public_url}"
    return delivery_mode(settings, subject)


def public_url_warning(delivery: Delivery, problem: str | None) -> str | None:
    """The PUBLIC_URL warning to log: only when webhooks are the plan (polling needs no address)."""
    from app.gateways.models import Delivery

    if problem is None or delivery != Delivery.WEBHOOK:
        return None
    return f"{problem} Until then, connecting a bot fails."


def database_line(settings: Settings) -> str:
    shown = settings.database_shown
    if shown.startswith("sqlite://") and ":memory:" not in shown:
        path = Path(shown.removeprefix("sqlite://").split("?", 1)[0]).resolve()
        return f"{shown} (file {path})"
    return shown


def pubsub_line(settings: Settings) -> str:
    from app.settings import without_password

    if settings.broadcast_url.startswith("memory://"):
        return f"{settings.broadcast_url} (live updates reach this process's subscribers only)"
    return without_password(settings.broadcast_url)


def start_up_lines(settings: Settings, url: str, telegram: str | None = None) -> list[str]:
    """What serve prints once it listens; `telegram`: how bots get their updates (telegram_delivery)."""
    return [
        f"Plugboard: {url}/  (GraphiQL: {url}/graphql)",
        f"Database:  {database_line(settings)}",
        f"Pub/sub:   {pubsub_line(settings)}",
        *([f"Telegram:  {telegram}"] if telegram else []),
    ]


def freeze_heap() -> None:
    """Puts every object alive after start-up (modules, classes, the GraphQL schema) out of the
    cyclic garbage collector's reach, for the life of the process. A full collection then walks
    what was made since, not the ~200,000 objects start-up leaves (about 0.1 s a pass, longer with
    aiogram's types loaded), which a busy process otherwise pays every few seconds. Frozen objects
    are still freed by reference counting.

    Then collections come less often (GC_THRESHOLDS): a worker's batch of events holds tens of
    thousands of objects for a few milliseconds (runs, their contexts, storages), and at Python's
    700 allocations a young collection they outlive many, are promoted, and are walked again by
    the older generations' collections until they die; freed by reference counting in the
    meantime, they never reach a collection at all."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


# Allocations between young collections, then young collections between middle ones, and middle
# between full ones (Python's are 700, 10, 10). Measured in docs/benchmarks.md (processing).
GC_THRESHOLDS = (50_000, 20, 20)


# An idle keep-alive connection is closed after this long. It must outlast the idle expiry of the
# clients that reuse connections: with uvicorn's 5 s, equal to httpx's, a client sends its next
# request at the instant the server closes the connection and gets a reset instead of an answer.
# 65 s outlasts httpx's 5 s and the 60 s of nginx's upstream pools and AWS's load balancers.
KEEP_ALIVE_SECONDS = 65
# Under --workers N the supervisor kills a worker that does not answer its ping within this long.
# uvicorn's 5 s is missed by a healthy worker on a loaded 2-core machine, and a worker killed then
# drops its requests in flight; one that is truly hung is still replaced.
WORKER_HEALTHCHECK_SECONDS = 30


def run_uvicorn(settings: Settings, sock: socket.socket, workers: int, log_config: dict[str, object]) -> bool:
    """Serves the app on `sock` until stopped; False when it failed to start."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from app.read_timeout import CONFIG_ATTRIBUTE, TimedHttpToolsProtocol

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        "app.main:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        log_config=log_config,
        access_log=settings.access_log,
        http=TimedHttpToolsProtocol,  # headers within REQUEST_READ_TIMEOUT_SECONDS (the body: app.read_timeout)
    )
    setattr(config, CONFIG_ATTRIBUTE, settings.request_read_timeout_seconds)  # goes with it to worker processes
    server = uvicorn.Server(config)
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
        return True
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    return server.started
