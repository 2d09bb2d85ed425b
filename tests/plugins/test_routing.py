"""The routing cache (app/plugins/routing.py): the owners of a claim's gateways are loaded together,
each with only its own gateways and installs, and an owner is loaded again only when its routing
version moved."""

from __future__ import annotations

from app.plugins.routing import RoutingCache, load_owners
from tests.support.installs_api import DISCONNECT, toggle
from tests.support.runtime import connect_bot, install


async def test_one_refresh_loads_every_owner_with_only_their_own_routes(app, telegram):
    ada = await app.create_user("ada@example.com", "pro")
    bob = await app.create_user("bob@example.com", "pro")
    cy = await app.create_user("cy@example.com", "pro")
    ada_bot = await connect_bot(app, ada, telegram, "ada_bot")
    bob_bot = await connect_bot(app, bob, telegram, "bob_bot")
    cy_bot = await connect_bot(app, cy, telegram, "cy_bot")
    await install(app, ada, "analytics")
    await install(app, ada, "welcome")
    await install(app, bob, "analytics")
    assert (await app.graphql(DISCONNECT, {"id": cy_bot.gateway_id}, user=cy))["disconnectGateway"] is True

    cache = RoutingCache()
    with app.db():
        await cache.refresh([ada_bot.gateway_id, bob_bot.gateway_id, cy_bot.gateway_id])
        ada_routes = await cache.for_gateway(ada_bot.gateway_id)
        bob_routes = await cache.for_gateway(bob_bot.gateway_id)
        cy_routes = await cache.for_gateway(cy_bot.gateway_id)
        one_by_one = {owner.id: (await load_owners([owner.id]))[owner.id] for owner in (ada, bob, cy)}

    assert ada_routes is not None and bob_routes is not None
    assert (ada_routes.owner_id, ada_routes.active_gateways) == (ada.id, frozenset({ada_bot.gateway_id}))
    assert sorted(route.slug for route in ada_routes.installs) == ["analytics", "welcome"]
    assert {route.user_id for route in ada_routes.installs} == {ada.id}
    assert (bob_routes.owner_id, bob_routes.active_gateways) == (bob.id, frozenset({bob_bot.gateway_id}))
    assert [(route.slug, route.user_id) for route in bob_routes.installs] == [("analytics", bob.id)]
    assert cy_routes is None  # a disconnected gateway routes nothing
    # Loaded together, each owner's routes are what loading them alone gives.
    assert one_by_one[ada.id] == ada_routes
    assert one_by_one[bob.id] == bob_routes
    assert one_by_one[cy.id].active_gateways == frozenset()


async def test_a_refresh_loads_again_only_the_owners_whose_version_moved(app, telegram):
    ada = await app.create_user("ada@example.com", "pro")
    bob = await app.create_user("bob@example.com", "pro")
    ada_bot = await connect_bot(app, ada, telegram, "ada_bot")
    bob_bot = await connect_bot(app, bob, telegram, "bob_bot")
    await install(app, ada, "analytics")
    await install(app, bob, "analytics")
    cache = RoutingCache()
    with app.db():
        await cache.refresh([ada_bot.gateway_id, bob_bot.gateway_id])
        ada_before = await cache.for_gateway(ada_bot.gateway_id)
        bob_before = await cache.for_gateway(bob_bot.gateway_id)

    await toggle(app, ada, "analytics", False)
    with app.db():
        await cache.refresh([ada_bot.gateway_id, bob_bot.gateway_id])
        ada_after = await cache.for_gateway(ada_bot.gateway_id)
        bob_after = await cache.for_gateway(bob_bot.gateway_id)

    assert ada_before is not None and ada_after is not None
    assert ada_after.version > ada_before.version
    assert [route.slug for route in ada_before.installs] == ["analytics"]
    assert ada_after.installs == ()  # disabled: it no longer runs
    assert bob_after is bob_before  # unchanged: not read again


async def test_owners_that_do_not_exist_load_as_nothing(app):
    with app.db():
        assert await load_owners(["no-such-user"]) == {}
        assert await load_owners([]) == {}
