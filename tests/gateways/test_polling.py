"""Long polling (app/gateways/polling.py) against the strict fake Bot API, on both backends: updates
that Telegram holds for getUpdates are stored once and counted once, the poller asks for what the
installs need, confirms an update only after its commit, backs off, waits out a 429, shows a 409
without fighting it, stops on a 401, and moves bots between webhooks and polling without losing
an update. (Several processes polling one database: test_polling_processes.py.)"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from app.analytics.models import AnalyticsChat
from app.audit.models import AuditLog
from app.gateways import leases
from app.gateways.models import Delivery, EventKind, Gateway, GatewayEvent, GatewayStatus, RejectedUpdate
from app.gateways.polling import LEASE_PREFIX, POLLER_CONFLICT, WEBHOOK_CONFLICT, Timing, update_body
from app.gateways.telegram import GatewayUnreachable, TelegramApi
from tests.fakes.telegram import FakeTelegram, unreachable_url
from tests.support.eventually import eventually
from tests.support.live import LiveApp, TestUser
from tests.support.outage import (
    database_down,
    database_locked,
    short_busy_timeout,
    wait_for_health,
)
from tests.support.proxy import tcp_proxy
from tests.support.runtime import analytics_counts, install, service_context, wait_until_processed
from tests.support.telegram_updates import (
    channel_post_update,
    chat_member,
    chat_member_update,
    message_update,
)

ANALYTICS_TYPES = ["channel_post", "chat_member", "message", "my_chat_member"]  # what Channel Analytics needs
FAST = Timing(cycle_seconds=0.1, lease_seconds=2.0, first_backoff=0.05, max_backoff=0.4)
POLLING = {"telegram_delivery": "polling", "telegram_poll_timeout_seconds": 1}


async def polling_app(make_app: Any, timing: Timing = FAST, **settings: Any) -> LiveApp:
    app = await make_app(**{**POLLING, **settings})
    app.platform.polling.timing = timing
    return app


@pytest.fixture
async def app(make_app: Any) -> LiveApp:
    return await polling_app(make_app)


@pytest.fixture
async def owner(app: LiveApp) -> TestUser:
    return await app.create_user("poller@example.com", "pro")


def new_token() -> str:
    return f"{secrets.randbelow(10**9) + 1}:{secrets.token_urlsafe(30)}"


async def connect(app: LiveApp, user: TestUser, telegram: FakeTelegram, token: str | None = None) -> tuple[str, str]:
    """Connects a bot the fake knows (a new one unless `token`); its gateway id and token."""
    if token is None:
        token = new_token()
        telegram.add_bot(token, f"poll{secrets.randbelow(10**6)}_bot")
    ctx = await service_context(app, user)
    with app.db():
        gateway = await app.platform.gateways.connect_telegram_bot(ctx, token)
    return gateway.id, token


async def long_polled(telegram: FakeTelegram, token: str) -> None:
    """Until a getUpdates long poll for the bot waits at the fake (so its registration is made)."""
    await eventually(lambda: telegram.polling(token).is_set(), "a getUpdates long poll waiting")


async def confirmed(telegram: FakeTelegram, token: str, update_ids: list[int]) -> None:
    """Until getUpdates' offset confirmed these updates: each was committed before."""
    await eventually(lambda: set(update_ids) <= set(telegram.confirmed(token)), f"updates {update_ids} confirmed")


def polls(telegram: FakeTelegram, status: int | None = None) -> list[Any]:
    return [a for a in telegram.arrivals if a.method.lower() == "getupdates" and (status is None or a.status == status)]


async def gateway_row(app: LiveApp, gateway_id: str) -> Gateway:
    with app.db():
        return await Gateway.get(id=gateway_id)


async def status_of(app: LiveApp, gateway_id: str) -> tuple[GatewayStatus, str | None]:
    gateway = await gateway_row(app, gateway_id)
    return gateway.status, gateway.status_reason


async def stored_updates(app: LiveApp, gateway_id: str) -> list[str]:
    with app.db():
        keys = (
            await GatewayEvent.filter(gateway_id=gateway_id, kind=EventKind.UPDATE)
            .order_by("id")
            .values_list("key", flat=True)
        )
    return [str(key) for key in keys]


async def joins(app: LiveApp, install_id: str, chat_id: int) -> int:
    with app.db():
        chat = await AnalyticsChat.get(install_id=install_id, chat_id=chat_id)
    return chat.joins


async def test_updates_fetched_by_polling_are_counted_once_and_the_poller_asks_for_what_the_installs_need(
    app, owner, telegram
):
    analytics = await install(app, owner, "analytics")  # installed first, connected second
    gateway_id, token = await connect(app, owner, telegram)
    await long_polled(telegram, token)
    assert telegram.bot(token).webhook_url is None

    updates = [message_update(n, chat_id=-7, sender_id=sender) for n, sender in enumerate([1, 2, 1, 3], start=1)]
    updates += [
        channel_post_update(5, chat_id=-8),
        chat_member_update(6, chat_member("left", user_id=9), chat_member("member", user_id=9), chat_id=-7),
    ]
    for update in updates:
        assert (await telegram.deliver(token, update)).status == "pending"  # held for getUpdates, not filtered
    await confirmed(telegram, token, list(range(1, 7)))
    await wait_until_processed(app)

    assert await stored_updates(app, gateway_id) == [str(n) for n in range(1, 7)]
    assert await analytics_counts(app, analytics.id, -7) == {"received": 4, "sent": 0, "messages": 4, "users": 3}
    assert await analytics_counts(app, analytics.id, -8) == {"received": 1, "sent": 0, "messages": 1, "users": 0}
    assert await joins(app, analytics.id, -7) == 1
    assert {tuple(a.params["allowed_updates"]) for a in polls(telegram)} == {tuple(ANALYTICS_TYPES)}
    gateway = await gateway_row(app, gateway_id)
    assert (gateway.delivery, gateway.status) == (Delivery.POLLING, GatewayStatus.ACTIVE)
    assert not polls(telegram, 409)


async def test_an_install_made_while_polling_is_asked_for_at_once(app, owner, telegram):
    gateway_id, token = await connect(app, owner, telegram)
    await long_polled(telegram, token)
    assert telegram.bot(token).allowed_updates == ["message"]  # nothing installed: the minimum
    analytics = await install(app, owner, "analytics")
    # The poll in flight asked for less: it is ended and asked again, without waiting for its timeout.
    await eventually(lambda: telegram.bot(token).allowed_updates == ANALYTICS_TYPES, "the new types asked for")
    update = chat_member_update(1, chat_member("left", user_id=5), chat_member("member", user_id=5), chat_id=-3)
    assert (await telegram.deliver(token, update)).status == "pending"
    await confirmed(telegram, token, [1])
    await wait_until_processed(app)
    assert await joins(app, analytics.id, -3) == 1


async def test_an_update_committed_but_not_confirmed_before_a_crash_is_fetched_again_and_stored_once(
    make_app, telegram
):
    # The first process backs off for long after a failure: it is stopped before it confirms.
    first = await polling_app(make_app, Timing(cycle_seconds=0.1, lease_seconds=2.0, first_backoff=600))
    owner = await first.create_user("crash@example.com", "pro")
    analytics = await install(first, owner, "analytics")
    gateway_id, token = await connect(first, owner, telegram)
    await long_polled(telegram, token)
    telegram.fail_next("getUpdates", 500)  # the call that would confirm update 1
    await telegram.deliver(token, message_update(1, chat_id=-7))
    await eventually(lambda: polls(telegram, 500), "the confirming getUpdates failing")
    assert await stored_updates(first, gateway_id) == ["1"]  # committed ...
    assert [u["update_id"] for u in telegram.bot(token).pending] == [1]  # ... and still held by Telegram
    assert telegram.confirmed(token) == []
    await wait_until_processed(first)
    await first.stop()

    second = await polling_app(make_app)
    before = len(polls(telegram))
    await confirmed(telegram, token, [1])  # fetched again (a fresh poller has no offset), then confirmed
    assert "offset" not in polls(telegram)[before].params
    await wait_until_processed(second)
    assert await stored_updates(second, gateway_id) == ["1"]
    assert (await analytics_counts(second, analytics.id, -7))["received"] == 1


async def test_a_webhook_set_elsewhere_shows_polling_conflict_without_a_fight_and_polling_resumes_once_it_goes(
    app, owner, telegram
):
    analytics = await install(app, owner, "analytics")
    gateway_id, token = await connect(app, owner, telegram)
    await long_polled(telegram, token)
    deletes = telegram.methods_called().count("deleteWebhook")
    async with httpx.AsyncClient(base_url=f"{telegram.url}/bot{token}") as other_deployment:
        assert (await other_deployment.post("/setWebhook", json={"url": "https://elsewhere.example/hook"})).json()["ok"]
        await eventually(
            lambda: _is(status_of(app, gateway_id), (GatewayStatus.POLLING_CONFLICT, WEBHOOK_CONFLICT)),
            "POLLING_CONFLICT shown, naming the webhook",
        )
        conflicts = len(polls(telegram, 409))
        await eventually(lambda: len(polls(telegram, 409)) >= conflicts + 2, "getUpdates tried again")
        assert telegram.methods_called().count("deleteWebhook") == deletes  # it never deletes the other's webhook
        assert telegram.bot(token).webhook_url == "https://elsewhere.example/hook"
        assert (await other_deployment.post("/deleteWebhook")).json()["ok"]

    await eventually(lambda: _is(status_of(app, gateway_id), (GatewayStatus.ACTIVE, None)), "ACTIVE again")
    await long_polled(telegram, token)
    await telegram.deliver(token, message_update(1, chat_id=-7))
    await confirmed(telegram, token, [1])
    await wait_until_processed(app)
    assert (await analytics_counts(app, analytics.id, -7))["received"] == 1
    with app.db():
        changes = await AuditLog.filter(action="gateway.status", target_id=gateway_id).order_by("created_at")
    assert [(c.metadata["from"], c.metadata["to"]) for c in changes] == [
        ("ACTIVE", "POLLING_CONFLICT"),
        ("POLLING_CONFLICT", "ACTIVE"),
    ]


async def _is(value: Any, expected: Any) -> bool:
    return await value == expected


async def test_another_program_polling_the_same_token_shows_polling_conflict_until_it_stops(app, owner, telegram):
    gateway_id, token = await connect(app, owner, telegram)
    await long_polled(telegram, token)
    stop = False

    async def other_program() -> None:
        async with httpx.AsyncClient(base_url=f"{telegram.url}/bot{token}", timeout=30) as http:
            while not stop:
                await http.post("/getUpdates", json={"timeout": 5})

    other = asyncio.create_task(other_program())
    try:
        await eventually(
            lambda: _is(status_of(app, gateway_id), (GatewayStatus.POLLING_CONFLICT, POLLER_CONFLICT)),
            "POLLING_CONFLICT shown, naming another poller",
        )
    finally:
        stop = True
        await other
    await eventually(lambda: _is(status_of(app, gateway_id), (GatewayStatus.ACTIVE, None)), "ACTIVE again")


async def test_flood_control_is_waited_out(app, owner, telegram):
    gateway_id, token = await connect(app, owner, telegram)
    await long_polled(telegram, token)
    telegram.fail_next("getUpdates", 429, retry_after=2)  # the call after the one waiting now
    await eventually(lambda: polls(telegram, 429), "a 429")
    [flooded] = polls(telegram, 429)
    await eventually(lambda: polls(telegram)[-1].at > flooded.at, "getUpdates called again")
    after = [a for a in polls(telegram) if a.at > flooded.at]
    assert after[0].at - flooded.at >= 2  # not a moment before retry_after
    assert await status_of(app, gateway_id) == (GatewayStatus.ACTIVE, None)


async def test_server_errors_back_off_doubling_then_polling_goes_on(make_app, telegram):
    app = await polling_app(make_app, Timing(cycle_seconds=0.1, lease_seconds=2.0, first_backoff=0.2, max_backoff=5))
    owner = await app.create_user("errors@example.com", "pro")
    analytics = await install(app, owner, "analytics")
    _, token = await connect(app, owner, telegram)
    await long_polled(telegram, token)
    for status in (500, 502, 500):
        telegram.fail_next("getUpdates", status)
    await telegram.deliver(token, message_update(1, chat_id=-7))  # the poll waiting brings it; the next three fail
    await confirmed(telegram, token, [1])

    def answered_after_the_failures() -> bool:
        calls = polls(telegram)
        failed = [n for n, a in enumerate(calls) if a.status >= 500]
        return len(failed) == 3 and len(calls) > failed[-1] + 1

    await eventually(answered_after_the_failures, "the getUpdates after the failures answered")
    calls = polls(telegram)
    failed = [n for n, a in enumerate(calls) if a.status >= 500]
    assert failed == list(range(failed[0], failed[0] + 3))
    assert calls[failed[-1] + 1].status == 200
    times = [calls[n].at for n in [*failed, failed[-1] + 1]]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert [gap >= least for gap, least in zip(gaps, (0.2, 0.4, 0.8), strict=True)] == [True] * 3, gaps
    await wait_until_processed(app)
    assert (await analytics_counts(app, analytics.id, -7))["received"] == 1


async def test_a_network_failure_is_an_unreachable_bot_api_naming_its_cause():
    api = TelegramApi(unreachable_url())
    try:
        with pytest.raises(GatewayUnreachable, match="could not be reached: connection refused"):
            await api.get_updates(new_token(), None, 0, ["message"])
    finally:
        await api.close()


async def test_a_revoked_token_stops_polling_and_a_reconnect_with_the_new_token_resumes_it(app, owner, telegram):
    analytics = await install(app, owner, "analytics")
    gateway_id, token = await connect(app, owner, telegram)
    await long_polled(telegram, token)
    telegram.revoke(token)  # the poll waiting is answered 401
    await eventually(
        lambda: _is(status_of(app, gateway_id), (GatewayStatus.TOKEN_REJECTED, _reason())), "TOKEN_REJECTED"
    )

    async def let_go() -> bool:
        with app.db():
            return not await leases.holders(LEASE_PREFIX)

    await eventually(let_go, "the bot's lease given back")
    calls, cycles = len(polls(telegram)), app.platform.polling.cycles
    await eventually(lambda: app.platform.polling.cycles >= cycles + 3, "three more cycles")
    assert len(polls(telegram)) == calls  # nobody polls it any more
    assert not app.platform.polling.pollers

    fresh = new_token()
    telegram.replace_token(token, fresh)
    assert await connect(app, owner, telegram, fresh) == (gateway_id, fresh)  # the same gateway, back
    await long_polled(telegram, fresh)
    await telegram.deliver(fresh, message_update(1, chat_id=-7))
    await confirmed(telegram, fresh, [1])
    await wait_until_processed(app)
    assert (await analytics_counts(app, analytics.id, -7))["received"] == 1
    assert await status_of(app, gateway_id) == (GatewayStatus.ACTIVE, None)


def _reason() -> str:
    from app.gateways.status import TOKEN_REJECTED_REASON

    return TOKEN_REJECTED_REASON


async def test_switching_from_webhooks_to_polling_and_back_loses_no_update(make_app, telegram):
    webhooks = await make_app()  # PUBLIC_URL is HTTPS: webhooks
    owner = await webhooks.create_user("switch@example.com", "pro")
    analytics = await install(webhooks, owner, "analytics")
    gateway_id, token = await connect(webhooks, owner, telegram)
    assert telegram.bot(token).webhook_url is not None
    await webhooks.stop()
    # Down: Telegram cannot post (the public address leads nowhere), so it keeps the updates.
    for n in (1, 2):
        assert (await telegram.deliver(token, message_update(n, chat_id=-7))).status in ("failed", "pending")

    polled = await polling_app(make_app)  # restarted with polling: the bot moves over, the updates come
    await confirmed(telegram, token, [1, 2])
    assert telegram.bot(token).webhook_url is None
    assert (await gateway_row(polled, gateway_id)).delivery == Delivery.POLLING
    await wait_until_processed(polled)
    await polled.stop()
    for n in (3, 4):
        assert (await telegram.deliver(token, message_update(n, chat_id=-7))).status == "pending"

    back = await make_app()  # webhooks again: the start-up check registers the webhook
    telegram.route_webhooks(back.settings.public_url, to=back.url)
    await eventually(lambda: telegram.bot(token).webhook_url is not None, "the webhook registered again")
    await telegram.redeliver(token)  # Telegram sends what it holds to the new webhook
    await eventually(lambda: not telegram.bot(token).pending, "every update delivered")
    await wait_until_processed(back)
    assert await stored_updates(back, gateway_id) == ["1", "2", "3", "4"]
    assert (await analytics_counts(back, analytics.id, -7))["received"] == 4
    assert (await gateway_row(back, gateway_id)).delivery == Delivery.WEBHOOK


async def test_updates_that_cannot_be_stored_or_read_are_kept_as_rejected_and_polling_goes_on(app, owner, telegram):
    analytics = await install(app, owner, "analytics")
    gateway_id, token = await connect(app, owner, telegram)
    await long_polled(telegram, token)
    deep: Any = "bottom"
    for _ in range(80):
        deep = [deep]
    odd = message_update(1, chat_id=-7, text="Grüße, 世界 🙂")
    odd["message"]["big"] = 2**62 + 1  # beyond a double's 53 bits, in a field Plugboard does not read
    updates = [
        odd,
        {"update_id": 2, "message": {**message_update(2, chat_id=-7)["message"], "entities": deep}},
        message_update(3, chat_id=-7, text="nul \x00 inside"),
        {"update_id": 4, "message": "not a message"},
        message_update(5, chat_id=-7),
    ]
    for update in updates:
        await telegram.deliver(token, update)
    await confirmed(telegram, token, [1, 2, 3, 4, 5])
    await wait_until_processed(app)

    assert await stored_updates(app, gateway_id) == ["1", "5"]
    with app.db():
        stored = await GatewayEvent.get(gateway_id=gateway_id, key="1")
        rejected = {r.update_id: r for r in await RejectedUpdate.filter(gateway_id=gateway_id)}
    assert stored.payload == odd  # the same value a webhook would have stored
    assert sorted(rejected) == ["2", "3", "4"]
    assert "cannot be read" in rejected["2"].reason
    assert rejected["3"].reason.startswith("/message/text")
    assert rejected["4"].reason == "not an update Plugboard can read: not a message"
    assert bytes(rejected["3"].body) == update_body(updates[2])
    assert (await analytics_counts(app, analytics.id, -7))["received"] == 2


async def test_a_poller_stuck_on_the_database_makes_healthz_503_naming_it(make_app, telegram, database_url):
    app = await polling_app(
        make_app,
        Timing(cycle_seconds=0.1, lease_seconds=2.0, first_backoff=0.05, max_backoff=0.4, store_seconds=0.5),
        heartbeat_grace_seconds=0.5,
    )
    owner = await app.create_user("stuck@example.com", "pro")
    analytics = await install(app, owner, "analytics")
    _, token = await connect(app, owner, telegram)
    await long_polled(telegram, token)
    assert (await wait_for_health(app.http, 200))["telegram-polling"] == "ok"

    # PostgreSQL: storing waits on the locked table. SQLite: renewing the leases waits on the locked file.
    async with database_locked(database_url, "gateway_events"):
        await telegram.deliver(token, message_update(1, chat_id=-7))

        async def polling_stalled() -> dict[str, Any] | None:
            response = await app.http.get("/healthz")
            body = response.json()
            return body if "telegram-polling" in body.get("stalled", []) else None

        body = await eventually(polling_stalled, "/healthz naming telegram-polling stalled")
        assert body["status"] == "unavailable"
        assert body["telegram-polling"].startswith("stalled: no heartbeat for")

    assert (await wait_for_health(app.http, 200))["telegram-polling"] == "ok"
    await confirmed(telegram, token, [1])
    await wait_until_processed(app)
    assert (await analytics_counts(app, analytics.id, -7))["received"] == 1


async def test_a_bot_connected_again_by_another_owner_is_polled_for_its_new_gateway_without_a_conflict(
    app, owner, telegram
):
    first_gateway, token = await connect(app, owner, telegram)
    await long_polled(telegram, token)
    other = await app.create_user("other@example.com", "pro")
    analytics = await install(app, other, "analytics")
    second_gateway, _ = await connect(app, other, telegram, token)  # the first one is retired
    assert second_gateway != first_gateway
    await eventually(
        lambda: [p.gateway_id for p in app.platform.polling.pollers.values()] == [second_gateway],
        "the bot polled for its new gateway",
    )
    await long_polled(telegram, token)
    await telegram.deliver(token, message_update(1, chat_id=-7))
    await confirmed(telegram, token, [1])
    await wait_until_processed(app)
    assert await stored_updates(app, second_gateway) == ["1"]
    assert (await analytics_counts(app, analytics.id, -7))["received"] == 1
    # One lease per bot: the new gateway's poller starts once the old one's has stopped, so no live
    # poll is ever ended by another (the fake answers 409 to the old one's abandoned request, which
    # nobody reads: it cannot tell that its client went away).
    assert await status_of(app, second_gateway) == (GatewayStatus.ACTIVE, None)
    with app.db():
        assert not await AuditLog.filter(action="gateway.status").exists()


async def test_a_network_that_fails_is_backed_off_and_polling_resumes_when_it_returns(make_app, telegram, caplog):
    api = urlsplit(telegram.url)
    async with tcp_proxy(api.hostname or "127.0.0.1", api.port or 80) as proxy:
        app = await polling_app(make_app, telegram_api_url=f"http://127.0.0.1:{proxy.port}")
        owner = await app.create_user("network@example.com", "pro")
        analytics = await install(app, owner, "analytics")
        gateway_id, token = await connect(app, owner, telegram)
        await long_polled(telegram, token)
        with caplog.at_level(logging.WARNING, logger="app.gateways.polling"):
            await proxy.cut()  # the poll waiting is reset, and every new connection with it

            def unreachable() -> int:
                return sum("could not be reached" in r.getMessage() for r in caplog.records)

            await eventually(lambda: unreachable() >= 3, "getUpdates failing on the network, again and again")
            for n in (1, 2):
                await telegram.deliver(token, message_update(n, chat_id=-7))  # Telegram keeps them meanwhile
            await proxy.restore()
            await confirmed(telegram, token, [1, 2])
        await wait_until_processed(app)
        assert (await analytics_counts(app, analytics.id, -7))["received"] == 2
        assert await status_of(app, gateway_id) == (GatewayStatus.ACTIVE, None)  # the network is no conflict
        delays = [
            r.getMessage().rsplit("polling again in ", 1)[1]
            for r in caplog.records
            if "could not be reached" in r.getMessage()
        ]
        assert delays[:3] == ["0.05 s", "0.1 s", "0.2 s"]  # doubling
        assert token not in caplog.text


async def test_polling_stops_during_a_database_outage_and_resumes_after_it_storing_each_update_once(
    make_app, telegram, faulty_database_url, caplog
):
    app = await polling_app(make_app, database_url=faulty_database_url)
    with app.db() as db:
        await short_busy_timeout(db)
    owner = await app.create_user("outage@example.com", "pro")
    analytics = await install(app, owner, "analytics")
    gateway_id, token = await connect(app, owner, telegram)
    await long_polled(telegram, token)

    with caplog.at_level(logging.WARNING, logger="app.gateways.polling"):
        async with database_down(faulty_database_url):
            for n in (1, 2, 3):
                await telegram.deliver(token, message_update(n, chat_id=-7))
            # Its leases cannot be renewed: the poller stops before they could run out.
            await eventually(lambda: "could not be renewed in time" in caplog.text, "the poller stopping")
        await confirmed(telegram, token, [1, 2, 3])
    await wait_until_processed(app)
    assert await stored_updates(app, gateway_id) == ["1", "2", "3"]
    assert (await analytics_counts(app, analytics.id, -7))["received"] == 3
    assert app.platform.polling.running
