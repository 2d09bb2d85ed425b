"""Plugins' outbound HTTPS: it reaches public services only, checked on the address it connects
to, never follows a redirect, stops reading at the size cap and gives up at its timeouts.

The public side cannot be reached from a test machine, so the stand-in is on loopback and each
test that must get through says so, with the allow-list or a resolver hook."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from app.outbound import (
    AddressRefused,
    OutboundError,
    OutboundHttp,
    OutboundPolicy,
    OutboundTimeout,
    ResponseTooLarge,
    UrlRefused,
    address_problem,
    parse_allow_list,
    parse_url,
)
from app.settings import SettingError, Settings
from tests.support.https_server import Certificates


class Resolver:
    """A DNS of the test's own: names map to the answers given, one list per lookup in turn."""

    def __init__(self, **answers: list[list[str]]) -> None:
        self.answers = {name.replace("_", "."): list(lists) for name, lists in answers.items()}
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        answers = self.answers[host]
        return answers.pop(0) if len(answers) > 1 else answers[0]


def client(
    certificates: Certificates, allowed: str = "", resolver: Resolver | None = None, **policy: Any
) -> OutboundHttp:
    """A client trusting the test CA, letting `allowed` through, resolving with `resolver` if given."""
    settings = OutboundPolicy(allowed=parse_allow_list(allowed), ca_file=certificates.ca_file, **policy)
    return OutboundHttp(settings) if resolver is None else OutboundHttp(settings, resolver=resolver)


async def refused(call: object, kind: type[OutboundError] = OutboundError) -> str:
    with pytest.raises(kind) as raised:
        await call  # type: ignore[misc]
    return str(raised.value)


# --- which addresses are public -----------------------------------------------------------------

INSIDE = {
    "127.0.0.1": "a loopback address",
    "127.8.9.10": "a loopback address",
    "::1": "a loopback address",
    "10.1.2.3": "a private address",
    "172.16.0.1": "a private address",
    "192.168.1.1": "a private address",
    "fd12:3456::1": "a private address",
    "169.254.169.254": "a link-local address",  # the cloud metadata service
    "fe80::1": "a link-local address",
    "224.0.0.1": "a multicast address",
    "ff02::1": "a multicast address",
    "0.0.0.0": "an unspecified address",
    "::": "an unspecified address",
    "240.0.0.1": "a reserved address",
    "::ffff:127.0.0.1": "a loopback address",  # IPv4-mapped IPv6
    "::ffff:169.254.169.254": "a link-local address",
    "2002:7f00:1::1": "a loopback address",  # 6to4 of 127.0.0.1
    "64:ff9b::a9fe:a9fe": "a link-local address",  # NAT64 of 169.254.169.254
    "100.64.0.1": "not a public address",  # carrier-grade NAT
    "192.0.2.10": "a private address",  # documentation
    "198.18.0.1": "a private address",  # benchmarking
}


@pytest.mark.parametrize("address", sorted(INSIDE))
def test_addresses_inside_are_refused_with_the_reason(address):
    assert address_problem(ipaddress.ip_address(address)) == INSIDE[address]


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert address_problem(ipaddress.ip_address(address)) is None


# --- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hook.example.com/in", "Only https:// URLs are allowed"),
        ("ftp://hook.example.com/in", "Only https:// URLs are allowed"),
        ("hook.example.com/in", "Only https:// URLs are allowed"),
        ("https://user:pass@hook.example.com/in", "Credentials in the URL are not allowed"),
        ("https:///in", "The URL has no host"),
        ("https://hook.example.com:99999/", "The URL is not valid"),
        ("https://hook.example.com/a b", "The URL must not contain spaces or control characters"),
        ("https://hook.example.com/" + "a" * 2_100, "The URL must be text of at most 2048 characters"),
    ],
)
async def test_only_plain_https_urls_are_taken(url, reason, certificates):
    assert await refused(client(certificates).post(url), UrlRefused) == reason


async def test_an_http_url_is_refused_before_anything_is_sent_even_when_allowed(stand_in, certificates):
    http = client(certificates, allowed=f"localhost:{stand_in.port}")
    await refused(http.post(stand_in.url().replace("https://", "http://")), UrlRefused)
    assert stand_in.received == []


def test_urls_are_read_as_host_port_and_encoded_path():
    target = parse_url("https://Hook.Example.COM./in/ü?x=1&y=ä#frag")
    assert (target.host, target.port, target.path) == ("hook.example.com", 443, "/in/%C3%BC?x=1&y=%C3%A4")
    assert parse_url("https://[::1]:8443").host_header == "[::1]:8443"
    assert parse_url("https://bücher.example/").host == "xn--bcher-kva.example"


# --- addresses, checked where the connection goes ------------------------------------------------


async def test_a_name_that_resolves_to_loopback_is_refused_and_nothing_is_sent(stand_in, certificates):
    error = await refused(client(certificates).post(stand_in.url(host="localhost")), AddressRefused)
    assert error == f"localhost:{stand_in.port} is refused: it resolves to a loopback address"
    assert stand_in.received == []


async def test_a_name_mapped_to_an_address_inside_is_refused(stand_in, certificates):
    resolver = Resolver(
        hook_test=[["127.0.0.1"]], meta_example_com=[["169.254.169.254"]], lan_example_com=[["10.0.0.7"]]
    )
    http = client(certificates, resolver=resolver)
    assert "loopback" in await refused(http.post(stand_in.url(host="hook.test")), AddressRefused)
    assert "link-local" in await refused(http.post("https://meta.example.com/latest/meta-data"), AddressRefused)
    assert "private" in await refused(http.post("https://lan.example.com/"), AddressRefused)
    assert stand_in.received == []


async def test_a_name_with_one_address_inside_among_public_ones_is_refused_whole(certificates):
    resolver = Resolver(split_example_com=[["93.184.216.34", "127.0.0.1"]])
    error = await refused(client(certificates, resolver=resolver).post("https://split.example.com/"), AddressRefused)
    assert error == "split.example.com is refused: it resolves to a loopback address"


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1/", "https://[::1]/", "https://[::ffff:127.0.0.1]/", "https://169.254.169.254/latest"]
)
async def test_address_literals_inside_are_refused(url, certificates):
    assert "is refused: it is a" in await refused(client(certificates).post(url), AddressRefused)


@pytest.mark.parametrize("host", ["metadata.google.internal", "metadata", "anything.internal", "instance-data"])
async def test_metadata_names_are_refused_before_any_lookup(host, certificates):
    resolver = Resolver(**{host.replace(".", "_"): [["93.184.216.34"]]})
    error = await refused(client(certificates, resolver=resolver).post(f"https://{host}/"), AddressRefused)
    assert error == f"{host} is refused: a cloud metadata name"
    assert resolver.lookups == []


async def test_each_connection_goes_to_the_address_checked_for_it_so_rebinding_gets_nowhere(stand_in, certificates):
    # hook.test is in no DNS: the request reaches the stand-in only through the address the guard
    # checked. The next lookup answers with an address inside, and is refused.
    resolver = Resolver(hook_test=[["127.0.0.1"], ["10.0.0.1"]])
    http = client(certificates, allowed="127.0.0.1/32", resolver=resolver)
    response = await http.post(stand_in.url("/in", host="hook.test"), content=b"one")
    assert response.status == 200 and [r.body for r in stand_in.received] == [b"one"]
    assert stand_in.received[0].headers["host"] == f"hook.test:{stand_in.port}"
    assert resolver.lookups == ["hook.test"]
    await refused(http.post(stand_in.url("/in", host="hook.test"), content=b"two"), AddressRefused)
    assert [r.body for r in stand_in.received] == [b"one"]


async def test_the_allow_list_lets_through_what_it_names_and_nothing_else(stand_in, certificates):
    port = stand_in.port
    for allowed in (f"localhost:{port}", "localhost", "127.0.0.1/32,::1/128"):
        assert (await client(certificates, allowed=allowed).post(stand_in.url())).status == 200
    for allowed in ("", f"localhost:{port + 1}", "hook.test", "10.0.0.0/8"):
        await refused(client(certificates, allowed=allowed).post(stand_in.url()), AddressRefused)
    assert len(stand_in.received) == 3


def test_the_allow_list_is_empty_by_default_and_a_bad_entry_is_a_setting_error():
    assert Settings.from_env({}).outbound_allowed_hosts == ()
    assert Settings.from_env({}).outbound_policy().allowed == ()
    with pytest.raises(SettingError, match="OUTBOUND_ALLOWED_HOSTS"):
        Settings.from_env({"OUTBOUND_ALLOWED_HOSTS": "localhost, http://x/"})


# --- TLS -------------------------------------------------------------------------------------


async def test_the_certificate_is_verified_for_the_name_in_the_url(stand_in, certificates):
    resolver = Resolver(hook_test=[["127.0.0.1"]], other_test=[["127.0.0.1"]])
    trusting = client(certificates, allowed="127.0.0.1/32", resolver=resolver)
    assert (await trusting.post(stand_in.url(host="hook.test"))).status == 200
    mismatch = await refused(trusting.post(stand_in.url(host="other.test")))  # not a name the certificate has
    assert "CERTIFICATE_VERIFY_FAILED" in mismatch and "other.test" in mismatch
    untrusting = OutboundHttp(OutboundPolicy(allowed=parse_allow_list("127.0.0.1/32")), resolver=resolver)
    assert "CERTIFICATE_VERIFY_FAILED" in await refused(untrusting.post(stand_in.url(host="hook.test")))
    assert len(stand_in.received) == 1


# --- answers ---------------------------------------------------------------------------------


async def test_a_redirect_is_the_answer_and_is_not_followed(stand_in, certificates):
    stand_in.respond(302, body=b"", headers={"Location": stand_in.url("/elsewhere")})
    response = await client(certificates, allowed="localhost").post(stand_in.url("/in"))
    assert response.status == 302 and not response.ok
    assert ("location", stand_in.url("/elsewhere")) in response.headers
    assert [r.path for r in stand_in.received] == ["/in"]


async def test_a_body_up_to_the_cap_is_read_and_a_larger_one_is_not(stand_in, certificates):
    http = client(certificates, allowed="localhost", max_response_bytes=1_000)
    stand_in.respond(200, body=b"y" * 1_000)
    assert (await http.post(stand_in.url())).body == b"y" * 1_000
    stand_in.respond(200, body=b"y", stream_bytes=10_000_000)  # 10 MB, streamed
    error = await refused(http.post(stand_in.url()), ResponseTooLarge)
    assert error == f"localhost:{stand_in.port} answered more than 1000 bytes; the rest was not read"


async def test_a_slow_answer_times_out(stand_in, certificates):
    stand_in.respond(200, delay_seconds=30)
    http = client(certificates, allowed="localhost", timeout_seconds=0.3)
    error = await refused(http.post(stand_in.url()), OutboundTimeout)  # had it waited 30 s, it got the answer
    assert error == f"localhost:{stand_in.port} did not answer within 0.3 s"


async def test_a_name_lookup_that_hangs_times_out_at_the_connect_timeout(certificates):
    async def never(host: str, port: int) -> list[str]:
        await asyncio.Event().wait()
        return []

    http = OutboundHttp(OutboundPolicy(connect_timeout_seconds=0.2), resolver=never)
    error = await refused(http.post("https://slow.example.com/"), OutboundTimeout)
    assert error == "slow.example.com: the name lookup took longer than 0.2 s"


# --- what errors and requests carry --------------------------------------------------------------


async def test_errors_name_the_host_but_never_the_path_or_query(stand_in, certificates):
    url = stand_in.url("/hooks/T0KEN-IN-PATH?token=T0KEN-IN-QUERY")
    messages = [await refused(client(certificates).post(url))]
    stand_in.respond(200, delay_seconds=30)
    messages.append(await refused(client(certificates, allowed="localhost", timeout_seconds=0.2).post(url)))
    assert all("T0KEN" not in message and f"localhost:{stand_in.port}" in message for message in messages)


async def test_headers_are_sent_but_cannot_be_smuggled_or_override_host(stand_in, certificates):
    http = client(certificates, allowed="localhost")
    smuggled = {"X-Custom": "1", "Host": "evil.example", "Content-Length": "999"}
    await http.post(stand_in.url(), content=b"{}", headers=smuggled)
    assert stand_in.received[0].headers["x-custom"] == "1"
    assert stand_in.received[0].headers["host"] == f"localhost:{stand_in.port}"
    assert stand_in.received[0].headers["content-length"] == "2"
    injected = await refused(http.post(stand_in.url(), headers={"Authorization": "Bearer s3cr3t\r\nX-Other: b"}))
    assert injected == "The value of header Authorization has a line break, a NUL or a non-Latin-1 character"
    assert "not valid" in await refused(http.post(stand_in.url(), headers={"Bad Name": "1"}))
    assert len(stand_in.received) == 1
