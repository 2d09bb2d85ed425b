"""A loopback HTTPS stand-in for the services plugins call out to, with a certificate from a
throw-away test CA (made with the `openssl` command, which the machine images have).

    certificates = make_certificates(tmp_path)          # a CA, and a certificate for localhost,
    async with HttpsStandIn(certificates) as hook:     #   hook.test, 127.0.0.1 and ::1
        hook.respond(204)
        ... post to hook.url("/in") trusting certificates.ca_file ...
        assert hook.received[0].body == ...
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from tests.support.server import LiveServer

NAMES = ("localhost", "hook.test")
ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Certificates:
    ca_file: str  # trust this
    cert_file: str  # the server's certificate and key
    key_file: str


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_certificates(directory: Path) -> Certificates:
    """A test CA and a server certificate it signed for NAMES and ADDRESSES, valid for two days."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Plugboard test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )
    _openssl("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=directory)
    alt_names = ",".join([*(f"DNS:{n}" for n in NAMES), *(f"IP:{a}" for a in ADDRESSES)])
    (directory / "server.ext").write_text(
        f"subjectAltName={alt_names}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        cwd=directory,
    )
    return Certificates(str(directory / "ca.pem"), str(directory / "server.pem"), str(directory / "server.key"))


@dataclass(frozen=True)
class Received:
    method: str
    path: str  # with the query
    headers: dict[str, str]  # names in lowercase
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0  # before the answer starts
    stream_bytes: int = 0  # then send this many more bytes, in 16 KiB chunks


class HttpsStandIn:
    """Records every request, and answers as told by `respond` (200 "ok" by default)."""

    def __init__(self, certificates: Certificates, host: str = "127.0.0.1") -> None:
        self.certificates = certificates
        self.host = host
        self.received: list[Received] = []
        self.answer = Answer()
        self.connections = 0
        self._server = LiveServer(
            self._app,
            host,
            interface="asgi3",
            lifespan="off",
            ssl_certfile=certificates.cert_file,
            ssl_keyfile=certificates.key_file,
            timeout_graceful_shutdown=1,
        )

    @property
    def port(self) -> int:
        return self._server.port

    def url(self, path: str = "/hook", host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    def respond(
        self,
        status: int = 200,
        body: bytes = b"ok",
        headers: dict[str, str] | None = None,
        delay_seconds: float = 0.0,
        stream_bytes: int = 0,
    ) -> None:
        self.answer = Answer(status, body, headers or {}, delay_seconds, stream_bytes)

    def reset(self) -> None:
        self.received.clear()
        self.answer = Answer()
        self.connections = 0

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        body = await request.body()
        self.received.append(Received(request.method, path, {k.lower(): v for k, v in request.headers.items()}, body))
        answer = self.answer
        if answer.delay_seconds:
            await asyncio.sleep(answer.delay_seconds)
        if answer.stream_bytes:

            async def chunks() -> AsyncIterator[bytes]:
                yield answer.body
                left = answer.stream_bytes
                while left > 0:
                    size = min(left, 16_384)
                    left -= size
                    yield b"x" * size
                    await asyncio.sleep(0)

            response: Response = StreamingResponse(chunks(), status_code=answer.status, headers=answer.headers)
        else:
            response = Response(answer.body, status_code=answer.status, headers=answer.headers)
        await response(scope, receive, send)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()

    async def __aenter__(self) -> HttpsStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
