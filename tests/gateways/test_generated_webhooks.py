"""The webhook under generated hostile deliveries, sent in concurrent batches beside valid updates
(so a poison update shares a group commit with good ones). Whatever arrives:

- never a 5xx (the database is up: a 503 here would make Telegram resend a poison update for 24 h);
- a 2xx for an update of a kind we handle means it is kept: in the inbox, or in rejected_updates
  when no column can take it; a 2xx for anything that is not an update is a silent loss;
- a refused delivery (4xx) keeps nothing;
- every valid update of the batch gets its 200 and its inbox row, whatever came with it;
- everything kept is processed (done or failed);
- /healthz answers 200 after every batch.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from app.gateways.models import EventKind, EventStatus, Gateway, GatewayEvent, RejectedUpdate
from tests.support.eventually import eventually
from tests.support.hostile import generated_settings, report_or_fail
from tests.support.hostile_updates import Delivery, deliveries, parsed_update, valid_deliveries
from tests.support.hostile_world import World
from tests.support.runtime import connect_bot


class WebhookWorld:
    def __init__(self, world: World) -> None:
        self.world = world
        self.app = world.app
        self.secrets: dict[str, str] = {}
        self.handled = frozenset(world.app.platform.update_types)

    def __repr__(self) -> str:
        return f"<WebhookWorld at {self.app.url}>"

    def secret_of(self, gateway_id: str) -> str | None:
        return self.secrets.get(gateway_id)

    async def add_inactive_gateway(self) -> None:
        """A bot of the pro user's that was replaced: its gateway is inactive, its secret known."""
        old = await connect_bot(self.app, self.world.mine, self.world.telegram, "old_bot")
        with self.app.db():
            await Gateway.filter(id=old.gateway_id).update(is_active=False)
        self.world.refs["gateway:inactive"] = old.gateway_id
        self.secrets[old.gateway_id] = old.secret
        for bot in self.world.bots.values():
            self.secrets[bot.gateway_id] = bot.secret


@pytest.fixture
async def hooks(make_app, telegram) -> WebhookWorld:
    world = WebhookWorld(await World.create(await make_app(), telegram))
    await world.add_inactive_gateway()
    return world


async def kept(hooks: WebhookWorld, update_ids: list[int]) -> tuple[dict[str, str], dict[str, str]]:
    """For each update_id (as text): the gateway of its inbox row, and of its rejected_updates row."""
    keys = [str(u) for u in update_ids]
    with hooks.app.db():
        events = await GatewayEvent.filter(kind=EventKind.UPDATE, key__in=keys).values_list("key", "gateway_id")
        rejected = await RejectedUpdate.filter(update_id__in=keys).values_list("update_id", "gateway_id")
    return dict(events), dict(rejected)


async def wait_until_processed(hooks: WebhookWorld) -> list[str]:
    """Nothing when every acknowledged update was processed; else what never was (the deadline
    is a hang guard, not a bound on speed)."""

    async def none_open() -> bool:
        with hooks.app.db():
            return not await GatewayEvent.filter(status__in=[EventStatus.PENDING, EventStatus.PROCESSING]).exists()

    try:
        await eventually(none_open, "every acknowledged update processed")
    except AssertionError as exc:
        return [str(exc)]
    return []


def expected_to_keep(hooks: WebhookWorld, update: dict[str, Any] | None) -> bool:
    return update is not None and any(key in hooks.handled for key in update if key != "update_id")


async def deliver_batch(hooks: WebhookWorld, batch: list[Delivery], companions: list[Delivery]) -> None:
    world = hooks.world
    http = hooks.app.http
    assert http is not None
    everything = [*batch, *companions]
    encoded = [d.encode(world.resolve, hooks.secret_of) for d in everything]  # before the clock starts

    async def post(path: str, headers: dict[str, Any], body: bytes) -> httpx.Response:
        return await http.post(path, content=body, headers=headers)

    responses = await asyncio.gather(*(post(path, headers, body) for path, headers, body, _ in encoded))

    update_ids = [update_id for *_, update_id in encoded if update_id is not None]
    events, rejected = await kept(hooks, update_ids)
    problems: list[str] = []
    for delivery, (_path, _, body, update_id), response in zip(everything, encoded, responses):
        event(f"{delivery.family}: {response.status_code}")
        where = f"{delivery!r} -> {response.status_code} {response.text[:200]!r}"
        update = parsed_update(body)
        if response.status_code >= 500:
            problems.append(f"{response.status_code}: {where}")
        elif 200 <= response.status_code < 300:
            if update is None:
                problems.append(f"acknowledged something that is not an update: {where}")
            elif expected_to_keep(hooks, update) and update_id is not None:
                if str(update_id) not in events and str(update_id) not in rejected:
                    problems.append(f"acknowledged but kept nowhere (lost): {where}")
        elif update_id is not None and (str(update_id) in events or str(update_id) in rejected):
            problems.append(f"refused with {response.status_code} but kept: {where}")
    for delivery, (_, _, _, update_id), response in zip(companions, encoded[len(batch) :], responses[len(batch) :]):
        if expected_to_keep(hooks, delivery.body) and str(update_id) not in events:
            problems.append(f"a valid update beside hostile ones was not stored ({response.status_code}): {delivery!r}")
        elif response.status_code != 200:
            problems.append(f"a valid update beside hostile ones got {response.status_code}: {delivery!r}")
    problems.extend(await wait_until_processed(hooks))
    health = await http.get("/healthz")
    if health.status_code != 200:
        problems.append(f"/healthz {health.status_code} {health.text[:200]}")
    report_or_fail("a batch of " + ", ".join(repr(d) for d in batch), problems)


@pytest.mark.slow
@generated_settings(examples=100)
@given(
    batch=st.lists(deliveries(), min_size=1, max_size=6),
    companions=st.lists(valid_deliveries(), min_size=1, max_size=3),
)
async def test_hostile_deliveries_are_answered_without_a_5xx_and_every_acknowledged_update_is_kept(
    hooks: WebhookWorld, batch: list[Delivery], companions: list[Delivery]
):
    await deliver_batch(hooks, batch, companions)
