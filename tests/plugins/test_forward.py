"""Forward to webhook: matching messages reach the user's HTTPS webhook, signed with their secret;
a delivery that does not get through fails the run with a clear error, and never leaks the secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from app.errors import BadUserInput
from app.outbound import OutboundHttp, OutboundPolicy, parse_allow_list
from app.plugins.config import check_defaults, check_schema, validate_config
from app.plugins.contract import TelegramMessageEvent
from app.plugins.events import update_event
from app.plugins.handlers.forward import (
    TEST_TEXT,
    DeliveryFailed,
    ForwardHandler,
    matches,
    payload,
    sign,
    verify,
)
from app.plugins.secrets import secret_keys
from tests.support.forwarding import signed_by
from tests.support.https_server import Certificates, HttpsStandIn
from tests.support.installs_api import audit_events, my_install, run_plugin, runs_of
from tests.support.live import LiveApp, TestUser
from tests.support.logs_seen import log_as_serve_does
from tests.support.runtime import ConnectedBot, connect_bot, deliver, wait_until_processed
from tests.support.telegram_updates import channel_post_update, message_update, new_members_update, user

SCHEMA = ForwardHandler.definition.config_schema
SECRET = "s3cret-signing-key-0123456789"
INSTALL = "mutation($id: ID!, $config: JSON) { installPlugin(pluginId: $id, config: $config) { id config } }"
MY_PLUGINS = "{ myPlugins { plugin { slug } config lastError executionCount } }"


# --- the definition ----------------------------------------------------------------------------


def test_the_signing_secret_is_a_secret_setting_and_the_schema_is_sound():
    check_schema(SCHEMA)
    check_defaults(SCHEMA)
    assert secret_keys(SCHEMA) == {"signingSecret"}


def test_a_url_and_a_secret_are_required_and_the_url_must_be_https():
    with pytest.raises(BadUserInput) as raised:
        validate_config(SCHEMA, {})
    assert {e.path for e in raised.value.errors} == {"/url", "/signingSecret"}
    for url in ("http://hook.example.com/in", "https://user:pw@hook.example.com/", "https://", "hook.example.com"):
        with pytest.raises(BadUserInput, match="/url"):
            validate_config(SCHEMA, {"url": url, "signingSecret": SECRET})
    config = validate_config(SCHEMA, {"url": "https://hook.example.com/in?k=1", "signingSecret": SECRET})
    assert config["keywords"] == []


def test_keywords_are_bounded():
    with pytest.raises(BadUserInput):
        validate_config(SCHEMA, {"url": "https://h.example", "signingSecret": SECRET, "keywords": ["w"] * 21})
    with pytest.raises(BadUserInput):
        validate_config(SCHEMA, {"url": "https://h.example", "signingSecret": SECRET, "keywords": ["w" * 101]})


# --- signing and matching ------------------------------------------------------------------------


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"text":"hi"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, body) == f"sha256={expected}"
    assert verify(SECRET, "1700000000", body, f"sha256={expected}")
    assert not verify(SECRET, "1700000001", body, f"sha256={expected}")  # another timestamp
    assert not verify("another-secret-of-16+", "1700000000", body, f"sha256={expected}")
    assert not verify(SECRET, "17e8", body, f"sha256={expected}")


def test_keywords_match_as_plain_case_insensitive_substrings():
    assert matches("anything", [])
    assert matches("Server is DOWN again", ["down", "outage"])
    assert not matches("all good", ["down", "outage"])
    assert not matches("a" * 4096, ["(a+)+$"])  # a pattern is text, never a regular expression
    assert matches("Straße", ["STRASSE"])  # casefold, not lower


def event_of(update: dict[str, Any], gateway_id: str = "g1") -> TelegramMessageEvent:
    event = update_event(gateway_id, update)
    assert isinstance(event, TelegramMessageEvent)
    return event


def test_the_payload_carries_the_message():
    update = message_update(41, text="hello there", chat_id=-500, sender_id=77)
    body = payload(event_of(update))
    assert body == {
        "event": "telegram.message",
        "gatewayId": "g1",
        "updateId": 41,
        "isChannelPost": False,
        "chat": {"id": -500, "type": "supergroup", "title": "Test chat", "username": None},
        "messageId": update["message"]["message_id"],
        "date": update["message"]["date"],
        "text": "hello there",
        "from": {"id": 77, "isBot": False, "firstName": "Ada", "lastName": None, "username": None},
    }
    post = payload(event_of(channel_post_update(42, text="news")))
    assert post["isChannelPost"] and post["from"] is None and post["text"] == "news"


# --- the handler against a stand-in webhook ------------------------------------------------------


def context(certificates: Certificates, stand_in: HttpsStandIn, **config: Any) -> SimpleNamespace:
    """What the executor gives a run, as far as this plugin uses it."""
    http = OutboundHttp(
        OutboundPolicy(
            allowed=parse_allow_list(f"localhost:{stand_in.port}"),
            ca_file=certificates.ca_file,
            timeout_seconds=config.pop("timeout_seconds", 10.0),
        )
    )
    full = validate_config(SCHEMA, {"url": stand_in.url("/in"), "signingSecret": SECRET, **config})
    return SimpleNamespace(install_id="install-1", config=full, http=http, log=logging.getLogger("test"))


async def test_a_message_is_posted_as_signed_json(certificates, stand_in):
    stand_in.respond(204, body=b"")
    update = message_update(7, text="deploy finished")
    result = await ForwardHandler().on_event(event_of(update), context(certificates, stand_in))
    assert result == {"delivered": True, "status": 204}
    [received] = stand_in.received
    assert (received.method, received.path) == ("POST", "/in")
    assert received.headers["content-type"] == "application/json"
    assert received.headers["x-plugboard-event"] == "telegram.message"
    assert received.headers["x-plugboard-delivery"] == "install-1:g1:7"
    assert json.loads(received.body)["text"] == "deploy finished"
    assert signed_by(received, SECRET)
    assert not signed_by(received, SECRET + "x")
    assert SECRET not in json.dumps(received.headers) and SECRET.encode() not in received.body


async def test_only_messages_with_a_matching_text_are_posted(certificates, stand_in):
    ctx = context(certificates, stand_in, keywords=["alert"])
    handler = ForwardHandler()
    assert await handler.on_event(event_of(message_update(1, text="nothing to see")), ctx) is None
    assert await handler.on_event(event_of(new_members_update(2, user(9, "Grace"))), ctx) is None  # no text
    assert (await handler.on_event(event_of(message_update(3, text="ALERT: disk full")), ctx))["delivered"]
    assert [json.loads(r.body)["updateId"] for r in stand_in.received] == [3]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"status": 500}, "Not delivered: localhost:{port} answered 500"),
        (
            {"status": 302, "headers": {"Location": "https://elsewhere.example/"}},
            "Not delivered: localhost:{port} answered 302 (redirects are not followed)",
        ),
        ({"status": 200, "delay_seconds": 30}, "Not delivered: localhost:{port} did not answer within 0.3 s"),
    ],
)
async def test_a_delivery_that_does_not_get_through_fails_with_a_clear_error(certificates, stand_in, answer, error):
    stand_in.respond(**answer)
    with pytest.raises(DeliveryFailed) as raised:
        ctx = context(certificates, stand_in, timeout_seconds=0.3)
        await ForwardHandler().on_event(event_of(message_update(1)), ctx)
    assert str(raised.value) == error.format(port=stand_in.port)


async def test_an_address_inside_is_a_failed_delivery_and_nothing_is_sent(certificates, stand_in):
    ctx = context(certificates, stand_in)
    ctx.http = OutboundHttp(OutboundPolicy(ca_file=certificates.ca_file))  # the default: no allow-list
    with pytest.raises(DeliveryFailed) as raised:
        await ForwardHandler().on_event(event_of(message_update(1)), ctx)
    refusal = f"Not delivered: localhost:{stand_in.port} is refused: it resolves to a loopback address"
    assert str(raised.value) == refusal
    assert stand_in.received == []


# --- installed, through the whole platform (both databases) ----------------------------------------


async def install_forward(app, owner, config: dict[str, Any]) -> dict[str, Any]:
    plugins = (await app.graphql("{ plugins { id slug } }"))["plugins"]
    plugin_id = next(p["id"] for p in plugins if p["slug"] == "forward")
    return (await app.graphql(INSTALL, {"id": plugin_id, "config": config}, user=owner))["installPlugin"]


async def test_messages_a_bot_receives_reach_the_webhook_signed(forwarding_app, telegram, stand_in):
    app = forwarding_app
    owner = await app.create_user("ops@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    config = {"url": stand_in.url("/in"), "signingSecret": SECRET, "keywords": ["deploy"]}
    installed = await install_forward(app, owner, config)
    assert installed["config"]["signingSecret"] == {"$secret": "set"}

    await deliver(app, bot, message_update(1, text="lunch?"))
    await deliver(app, bot, message_update(2, text="Deploy done", chat_id=-77))
    await wait_until_processed(app)

    [received] = stand_in.received
    body = json.loads(received.body)
    assert (body["updateId"], body["chat"]["id"], body["text"]) == (2, -77, "Deploy done")
    assert body["gatewayId"] == bot.gateway_id
    assert signed_by(received, SECRET)
    [mine] = (await app.graphql(MY_PLUGINS, user=owner))["myPlugins"]
    assert (mine["executionCount"], mine["lastError"]) == (2, None)


async def test_a_failed_delivery_fails_the_run_with_its_reason_and_never_the_secret(
    forwarding_app, telegram, stand_in, caplog
):
    app = forwarding_app
    log_as_serve_does(caplog)
    owner = await app.create_user("ops@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install_forward(app, owner, {"url": stand_in.url("/in?token=abc"), "signingSecret": SECRET})
    stand_in.respond(503)
    await deliver(app, bot, message_update(1, text="hello"))
    await wait_until_processed(app)

    [mine] = (await app.graphql(MY_PLUGINS, user=owner))["myPlugins"]
    assert mine["lastError"] == f"DeliveryFailed: Not delivered: localhost:{stand_in.port} answered 503"
    assert len(stand_in.received) == 1
    assert any("Not delivered" in r.getMessage() for r in caplog.records), "the failure was not logged"
    assert SECRET not in caplog.text and SECRET not in json.dumps(mine)


async def test_without_the_allow_list_a_loopback_webhook_is_refused(make_app, telegram, stand_in, certificates):
    app = await make_app(outbound_ca_file=certificates.ca_file)  # OUTBOUND_ALLOWED_HOSTS left empty
    owner = await app.create_user("ops@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install_forward(app, owner, {"url": stand_in.url("/in"), "signingSecret": SECRET})
    await deliver(app, bot, message_update(1, text="hello"))
    await wait_until_processed(app)

    [mine] = (await app.graphql(MY_PLUGINS, user=owner))["myPlugins"]
    assert mine["lastError"].endswith(f"localhost:{stand_in.port} is refused: it resolves to a loopback address")
    assert stand_in.received == []


# --- "Send test" (runPlugin) and what an event's run answers ---------------------------------------


async def forward_ready(
    app: LiveApp, telegram, stand_in: HttpsStandIn, path: str = "/in"
) -> tuple[TestUser, ConnectedBot]:
    owner = await app.create_user("ops@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install_forward(app, owner, {"url": stand_in.url(path), "signingSecret": SECRET})
    return owner, bot


async def test_send_test_posts_one_signed_delivery_shaped_as_a_real_one_and_marked_test(
    forwarding_app, telegram, stand_in
):
    app = forwarding_app
    owner, bot = await forward_ready(app, telegram, stand_in)
    stand_in.respond(204, body=b"")

    run = await run_plugin(app, owner, "forward", {"text": "Is this thing on?", "chatTitle": "Ops room"})

    assert (run["outcome"], run["trigger"], run["eventLabel"], run["error"]) == (
        "SUCCEEDED",
        "STANDALONE",
        "Run now",
        None,
    )
    [received] = stand_in.received
    assert (received.method, received.path) == ("POST", "/in")
    assert received.headers["content-type"] == "application/json"
    assert received.headers["x-plugboard-event"] == "telegram.message"
    assert signed_by(received, SECRET)
    assert not signed_by(received, SECRET + "x")
    body = json.loads(received.body)
    real = payload(event_of(message_update(1, text="a real one")))
    assert set(body) == set(real) | {"test"}
    assert set(body["chat"]) == set(real["chat"])
    assert body["test"] is True
    assert (body["text"], body["chat"]["title"], body["gatewayId"]) == ("Is this thing on?", "Ops room", bot.gateway_id)
    assert SECRET.encode() not in received.body

    assert set(run["output"]) == {"status", "durationMs"}
    assert run["output"]["status"] == 204
    assert run["output"]["durationMs"] >= 0
    assert (run["apiCalls"], run["tokensUsed"]) == (1, None)


async def test_send_test_without_a_text_sends_the_test_text(forwarding_app, telegram, stand_in):
    app = forwarding_app
    owner, _ = await forward_ready(app, telegram, stand_in)
    run = await run_plugin(app, owner, "forward")
    assert run["outcome"] == "SUCCEEDED"
    [received] = stand_in.received
    body = json.loads(received.body)
    assert (body["text"], body["test"], body["chat"]["title"]) == (TEST_TEXT, True, None)


async def test_a_receiver_answering_500_fails_the_send_test_naming_the_host_and_status_only(
    forwarding_app, telegram, stand_in
):
    app = forwarding_app
    owner, _ = await forward_ready(app, telegram, stand_in, path="/hooks/private-path?key=k3y-in-the-url")
    stand_in.respond(500)

    run = await run_plugin(app, owner, "forward", {"text": "hello"})

    assert run["outcome"] == "FAILED"
    assert run["error"] == f"DeliveryFailed: Not delivered: localhost:{stand_in.port} answered 500"
    assert (run["output"], run["apiCalls"]) == (None, 1)
    assert len(stand_in.received) == 1  # tried once, as a delivery is
    mine = await my_install(app, owner, "forward")
    assert (mine["executionCount"], mine["lastError"]) == (1, run["error"])
    shown = json.dumps([run, mine, await audit_events(app, owner, "plugin.run")])
    for hidden in (SECRET, "private-path", "k3y-in-the-url"):
        assert hidden not in shown


async def test_an_event_runs_output_is_what_the_plugin_answered_and_its_calls_are_counted(
    forwarding_app, telegram, stand_in
):
    app = forwarding_app
    owner = await app.create_user("ops@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    config = {"url": stand_in.url("/in"), "signingSecret": SECRET, "keywords": ["deploy"]}
    await install_forward(app, owner, config)
    stand_in.respond(202, body=b"")

    await deliver(app, bot, message_update(1, text="lunch?"))
    await wait_until_processed(app)
    await deliver(app, bot, message_update(2, text="deploy done"))
    await wait_until_processed(app)

    delivered, ignored = await runs_of(app, owner, "forward")  # newest first
    assert (delivered["trigger"], delivered["outcome"]) == ("EVENT", "SUCCEEDED")
    assert delivered["output"] == {"delivered": True, "status": 202}
    assert delivered["apiCalls"] == 1
    assert (ignored["output"], ignored["apiCalls"]) == (None, 0)  # not forwarded: answered nothing, called nothing
    assert delivered["workflowRunId"] is None and delivered["stepIndex"] is None
