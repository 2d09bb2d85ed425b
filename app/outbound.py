"""HTTPS out of Plugboard, for plugins that call other services, without a way into our own network.

- HTTPS only; credentials in the URL are refused.
- The host is resolved once per connection, every address it resolves to is checked, and the
  connection goes to a checked address (TLS still verifies the certificate for the name). So a
  DNS name that points inside, or that changes its answer between a check and a connect (DNS
  rebinding), is refused: loopback, private (RFC 1918, CGNAT 100.64/10, ULA fc00::/7), link-local
  (169.254/16 with the cloud metadata address, fe80::/10), multicast, unspecified and reserved
  addresses, and IPv6 addresses that carry one of those IPv4 addresses (mapped, 6to4, NAT64).
  Cloud metadata names (metadata.google.internal, any *.internal, ...) are refused before any lookup.
- Redirects are never followed: a 3xx is the answer.
- A connect timeout (lookup, TCP and TLS) and a total timeout; a response body larger than the cap
  is not read further.

`OUTBOUND_ALLOWED_HOSTS` lets chosen destinations through anyway (tests reach their loopback
stand-in so): `host`, `host:port` or a CIDR such as `127.0.0.1/32`. It is empty by default.

Errors name the destination's host and port, never its path or query (they may hold a token).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2_048
MAX_REQUEST_BYTES = 1_000_000
MAX_ADDRESSES_TRIED = 3
METADATA_NAMES = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "metadata.tencentyun.com"}
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}")
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"})


# --- errors ----------------------------------------------------------------------------------


class OutboundError(Exception):
    """A request that was refused or failed. Its text is safe to log and to show the plugin's user."""


class UrlRefused(OutboundError):
    pass


class AddressRefused(OutboundError):
    pass


class OutboundTimeout(OutboundError):
    pass


class ResponseTooLarge(OutboundError):
    pass


# --- the policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowRule:
    """One OUTBOUND_ALLOWED_HOSTS entry: a host (any port, or one) or a network of addresses."""

    host: str | None = None
    port: int | None = None
    network: IPNetwork | None = None

    def lets_host(self, host: str, port: int) -> bool:
        return self.host is not None and self.host == host and self.port in (None, port)

    def lets_address(self, address: IPAddress) -> bool:
        return self.network is not None and address.version == self.network.version and address in self.network


def parse_allow_rule(entry: str) -> AllowRule:
    """`host`, `host:port`, `[v6]:port`, an IP address or a CIDR; raises ValueError otherwise."""
    entry = entry.strip().lower()
    if not entry or any(c.isspace() for c in entry) or any(c in entry for c in "@?#\\"):
        raise ValueError(f"not a host, host:port or CIDR: {entry!r}")
    if "/" in entry:
        return AllowRule(network=ipaddress.ip_network(entry, strict=False))
    try:
        return AllowRule(host=str(ipaddress.ip_address(entry)))  # a bare IPv6 address has colons
    except ValueError:
        pass
    parts = urlsplit(f"//{entry}")
    host, port = parts.hostname, parts.port  # port raises ValueError when out of range
    if not host or parts.path:
        raise ValueError(f"not a host, host:port or CIDR: {entry!r}")
    return AllowRule(host=host, port=port)


def parse_allow_list(raw: str | Iterable[str]) -> tuple[AllowRule, ...]:
    entries = raw.split(",") if isinstance(raw, str) else list(raw)
    return tuple(parse_allow_rule(entry) for entry in entries if entry.strip())


@dataclass(frozen=True)
class OutboundPolicy:
    allowed: tuple[AllowRule, ...] = ()
    connect_timeout_seconds: float = 5.0
    timeout_seconds: float = 10.0
    max_response_bytes: int = 65_536
    ca_file: str | None = None  # trusted CAs instead of the system's (tests)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in prefix for prefix in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why `address` is no place to send a plugin's request, or None when it is a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None and (problem := address_problem(inner)):
            return problem
        if address.ipv4_mapped is not None:
            return None  # a public IPv4 address written as IPv6
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local):
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Guard:
    """Decides where a connection may go: resolves a host once and checks every address."""

    policy: OutboundPolicy
    resolver: Resolver = system_resolver

    def name_problem(self, host: str) -> str | None:
        if host in METADATA_NAMES or host.endswith(".internal"):
            return "a cloud metadata name"
        return None

    async def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to for `host`; raises AddressRefused."""
        shown = _shown(host, port)
        by_name = any(rule.lets_host(host, port) for rule in self.policy.allowed)
        if not by_name and (problem := self.name_problem(host)):
            raise AddressRefused(f"{shown} is refused: {problem}")
        try:
            async with asyncio.timeout(self.policy.connect_timeout_seconds):
                found = await self.resolver(host, port)
        except TimeoutError:
            raise OutboundTimeout(
                f"{shown}: the name lookup took longer than {self.policy.connect_timeout_seconds:g} s"
            ) from None
        except OSError as exc:
            raise OutboundError(f"{shown}: the name does not resolve ({exc.strerror or exc})") from None
        try:
            addresses = [ipaddress.ip_address(text.split("%", 1)[0]) for text in found]
        except ValueError:
            raise OutboundError(f"{shown}: the name lookup gave something that is not an address") from None
        if not addresses:
            raise OutboundError(f"{shown}: the name does not resolve")
        if not by_name:
            literal = _is_address(host)
            for address in addresses:
                problem = address_problem(address)
                if problem and not any(rule.lets_address(address) for rule in self.policy.allowed):
                    # Every address is checked: a name that also points inside is refused whole.
                    raise AddressRefused(f"{shown} is refused: {'it is' if literal else 'it resolves to'} {problem}")
        return [str(address) for address in addresses]


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the guard checked just now."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._guard.addresses(host, port)
        failure: Exception | None = None
        for address in addresses[:MAX_ADDRESSES_TRIED]:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("Unix sockets are refused")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# --- the client ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class _Target:
    host: str  # lowercase, IDNA-encoded, an IPv6 address without brackets
    port: int
    path: str  # path and query, percent-encoded

    @property
    def shown(self) -> str:
        return _shown(self.host, self.port)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 443 else f"{host}:{self.port}"


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _shown(host: str, port: int) -> str:
    host = f"[{host}]" if ":" in host else host
    return host if port == 443 else f"{host}:{port}"


def parse_url(url: str) -> _Target:
    """The destination of an https:// URL; raises UrlRefused for anything else."""
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"The URL must be text of at most {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise UrlRefused("The URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        raise UrlRefused("The URL is not valid") from None
    if parts.scheme.lower() != "https":
        raise UrlRefused("Only https:// URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("Credentials in the URL are not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("The URL has no host")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise UrlRefused("The URL's host is not a valid name") from None
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return _Target(host=host, port=port, path=path)


class Requests:
    """A client's verbs beside its `request`: one `post` for every client plugins call out with
    (OutboundHttp, and each run's counted view of it)."""

    async def post(
        self, url: str, *, content: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> OutboundResponse:
        return await self.request("POST", url, content=content, headers=headers)

    async def request(
        self, method: str, url: str, *, content: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> OutboundResponse:
        raise NotImplementedError


class OutboundHttp(Requests):
    """The HTTPS client plugins call out with. Stateless between requests (each has its own
    connection), so one instance serves every run."""

    def __init__(
        self,
        policy: OutboundPolicy | None = None,
        *,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = policy or OutboundPolicy()
        self._guard = Guard(self.policy, resolver)
        self._ssl_context = ssl_context

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:  # loading the CA store takes a while: once, and only when used
            context = ssl.create_default_context(cafile=self.policy.ca_file)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._ssl_context = context
        return self._ssl_context

    async def request(
        self, method: str, url: str, *, content: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> OutboundResponse:
        """Sends one request and reads its answer, whatever the status; raises OutboundError when
        it is refused, fails, times out, or answers more than the size cap."""
        target = parse_url(url)
        if len(content) > MAX_REQUEST_BYTES:
            raise OutboundError(f"The request body is larger than {MAX_REQUEST_BYTES} bytes")
        sent = [(b"Host", target.host_header.encode("ascii")), (b"User-Agent", b"Plugboard")]
        for name, value in (headers or {}).items():
            # Checked here so that no error quotes a value (it may be a credential).
            if not _HEADER_NAME.fullmatch(name):
                raise OutboundError(f"Header name {name[:64]!r} is not valid")
            if any(c in value for c in "\r\n\x00") or not _latin1(value):
                raise OutboundError(f"The value of header {name} has a line break, a NUL or a non-Latin-1 character")
            if name.lower() not in _HOP_HEADERS:
                sent.append((name.encode("ascii"), value.encode("latin-1")))
        sent.append((b"Content-Length", str(len(content)).encode("ascii")))
        policy = self.policy
        timeouts = {
            "connect": policy.connect_timeout_seconds,
            "read": policy.timeout_seconds,
            "write": policy.timeout_seconds,
            "pool": policy.timeout_seconds,
        }
        url_parts = httpcore.URL(
            scheme=b"https", host=target.host.encode("ascii"), port=target.port, target=target.path.encode("ascii")
        )
        try:
            async with asyncio.timeout(policy.timeout_seconds):
                async with httpcore.AsyncConnectionPool(
                    ssl_context=self.ssl_context,
                    network_backend=_GuardedBackend(self._guard),
                    max_connections=1,
                    retries=0,
                    keepalive_expiry=0,
                ) as pool:
                    async with pool.stream(
                        method.encode("ascii"),
                        url_parts,
                        headers=sent,
                        content=content,
                        extensions={"timeout": timeouts},
                    ) as response:
                        body = await self._read(response, target)
                        return OutboundResponse(
                            status=response.status,
                            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers],
                            body=body,
                        )
        except OutboundError:
            raise
        except (TimeoutError, httpcore.TimeoutException):
            raise OutboundTimeout(f"{target.shown} did not answer within {policy.timeout_seconds:g} s") from None
        except httpcore.ConnectError as exc:
            raise OutboundError(f"Could not connect to {target.shown}: {_reason(exc)}") from None
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise OutboundError(f"The exchange with {target.shown} failed: {_reason(exc)}") from None
        except httpcore.UnsupportedProtocol as exc:
            raise OutboundError(f"{target.shown}: {_reason(exc)}") from None

    async def _read(self, response: httpcore.Response, target: _Target) -> bytes:
        cap = self.policy.max_response_bytes
        body = bytearray()
        async for chunk in response.aiter_stream():
            body += chunk
            if len(body) > cap:
                raise ResponseTooLarge(f"{target.shown} answered more than {cap} bytes; the rest was not read")
        return bytes(body)


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"
