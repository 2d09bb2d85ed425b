"""OpenSockets (app/accounts/sessions.py): a notice ends exactly the sockets of the tokens and users it
names, found by token and by user, and never one that was already removed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from broadcaster import Broadcast

from app.accounts.context import ServiceContext
from app.accounts.models import Plan
from app.accounts.sessions import OpenSockets


class Closes:
    """Which sockets were closed, each awaited by name."""

    def __init__(self) -> None:
        self.done: dict[str, asyncio.Event] = {}

    def of(self, name: str) -> Callable[[], Awaitable[None]]:
        self.done[name] = asyncio.Event()

        async def close() -> None:
            self.done[name].set()

        return close

    async def closed(self, *names: str) -> None:
        async with asyncio.timeout(5):
            for name in names:
                await self.done[name].wait()

    def names(self) -> list[str]:
        return sorted(name for name, event in self.done.items() if event.is_set())


def signed_in(user_id: str, token_id: str) -> ServiceContext:
    return ServiceContext(user_id=user_id, plan=Plan.PRO, token_id=token_id)


async def test_a_notice_ends_the_sockets_of_the_tokens_and_users_it_names_and_no_other():
    sockets, closes = OpenSockets(Broadcast("memory://")), Closes()
    sockets.add(signed_in("ada", "phone"), closes.of("ada's phone"))
    sockets.add(signed_in("ada", "laptop"), closes.of("ada's laptop"))
    sockets.add(signed_in("bob", "desk"), closes.of("bob's desk"))
    left = sockets.add(signed_in("bob", "desk"), closes.of("bob's closed tab"))
    sockets.remove(left)

    assert sockets.end(token_ids=["phone"]) == 1
    assert sockets.end(user_ids=["bob"]) == 1  # the tab removed before is not ended again
    await closes.closed("ada's phone", "bob's desk")
    assert closes.names() == ["ada's phone", "bob's desk"]
    assert len(sockets) == 1

    assert sockets.end(token_ids=["phone", "unknown"], user_ids=["ada"]) == 1  # the phone's already ended
    await closes.closed("ada's laptop")
    assert len(sockets) == 0
    assert sockets.end(token_ids=["laptop"], user_ids=["ada", "bob"]) == 0
