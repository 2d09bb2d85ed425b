"""app/analytics/live_summaries.py: one user's summary (chat filter, days) is read once per change
for every socket that shows it, whatever its document or token; users' summaries read together
stay each user's own; the last state always arrives."""

from __future__ import annotations

import asyncio
import contextlib

from tests.analytics.test_live import CREATE_TOKEN, LIVE, analytics_owner, analytics_reads_for_one_change, total
from tests.support.runtime import deliver, wait_until_processed
from tests.support.subscriptions import Subscription, subscribe
from tests.support.telegram_updates import message_update

# Another document over the same summary (no chat filter, 7 days): other fields, an alias, a fragment.
OTHER = """subscription { analyticsUpdated { ...figures busiest: chats(limit: 2) { chatId messages } hourly } }
fragment figures on AnalyticsSummary { totalMessages period { totalMessages uniqueUsers } }"""


@contextlib.asynccontextmanager
async def sockets(app, *subscriptions: tuple[str, str]):
    """One socket per (token, document), each past its first event."""
    async with contextlib.AsyncExitStack() as stack:
        lives: list[Subscription] = []
        for token, query in subscriptions:
            lives.append(await stack.enter_async_context(subscribe(app.url, query, token=token)))
        for live in lives:
            await live.next()
        yield lives


async def test_sockets_of_other_tokens_and_documents_share_each_changes_reads(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    tablet = (await app.graphql(CREATE_TOKEN, {"name": "tablet"}, user=owner))["createApiToken"]["token"]
    await deliver(app, bot, message_update(1, chat_id=-1))  # the chat's and the sender's first message: more writes
    await wait_until_processed(app)
    async with sockets(app, (owner.token, LIVE)) as one:
        alone = await analytics_reads_for_one_change(app, bot, one, 2)
    shown = [(owner.token, LIVE), (tablet, LIVE), (tablet, OTHER), (owner.token, OTHER)]
    async with sockets(app, *shown) as four:
        shared = await analytics_reads_for_one_change(app, bot, four, 3)
    assert alone > 0
    assert shared == alone


async def test_each_document_and_token_gets_its_own_answer_from_the_shared_read(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    tablet = (await app.graphql(CREATE_TOKEN, {"name": "tablet"}, user=owner))["createApiToken"]["token"]
    async with sockets(app, (owner.token, LIVE), (tablet, OTHER)) as (live, other):
        await deliver(app, bot, message_update(1, chat_id=-1, sender_id=5))
        await deliver(app, bot, message_update(2, chat_id=-2, sender_id=6))
        await deliver(app, bot, message_update(3, chat_id=-2, sender_id=5))
        # The last state arrives (an event read while the changes were being counted may show some
        # of them: its statements are not one transaction; the next change's event follows it).
        expected = {"totalMessages": 3, "messagesToday": 3, "uniqueUsers": 2}
        await live.until(lambda d: d["analyticsUpdated"] == expected)
        want = {
            "period": {"totalMessages": 3, "uniqueUsers": 2},
            "busiest": [{"chatId": "-2", "messages": 2}, {"chatId": "-1", "messages": 1}],
        }
        data, _ = await other.until(lambda d: {k: d["analyticsUpdated"][k] for k in want} == want)
        summary = data["analyticsUpdated"]
        assert list(summary) == ["totalMessages", "period", "busiest", "hourly"]
        assert summary["totalMessages"] == 3
        assert sum(summary["hourly"]) == 3
        # What a query reads now is what both were pushed.
        query = "{ analytics { totalMessages messagesToday uniqueUsers } }"
        assert (await app.graphql(query, user=owner))["analytics"] == {
            "totalMessages": 3,
            "messagesToday": 3,
            "uniqueUsers": 2,
        }


async def test_users_whose_summaries_are_read_together_each_see_only_their_own(app, telegram):
    """A burst across users: their summaries are read in the same statements, never mixed up."""
    owners = [await analytics_owner(app, telegram, f"burst{n}@example.com") for n in range(3)]
    async with contextlib.AsyncExitStack() as stack:
        lives = [
            [await stack.enter_async_context(subscribe(app.url, query, token=owner.token)) for query in (LIVE, OTHER)]
            for owner, _ in owners
        ]
        for pair in lives:
            for live in pair:
                assert total(await live.next()) == 0
        updates = []
        for n, (_, bot) in enumerate(owners):  # user n gets 2n + 1 messages
            updates += [(bot, message_update(100 * n + m, chat_id=-1 - n)) for m in range(1, 2 * n + 2)]
        statuses = await asyncio.gather(*(deliver(app, bot, update) for bot, update in updates))
        assert {s.status_code for s in statuses} == {200}
        for n, pair in enumerate(lives):
            for live in pair:
                seen, data = await totals_until(live, 2 * n + 1)
                assert all(t <= 2 * n + 1 for t in seen), (n, seen)  # never another user's figures
                chats = data["analyticsUpdated"].get("busiest")
                if chats is not None:
                    assert [c["chatId"] for c in chats] == [str(-1 - n)]


async def totals_until(live: Subscription, final: int) -> tuple[list[int], dict]:
    """The totals of each event until one shows `final`, and that event's data."""
    seen: list[int] = []
    while True:
        data = await live.next()
        seen.append(total(data))
        if seen[-1] == final:
            return seen, data


async def test_the_last_state_reaches_every_document_and_token(app, telegram):
    owner, bot = await analytics_owner(app, telegram)
    tablet = (await app.graphql(CREATE_TOKEN, {"name": "tablet"}, user=owner))["createApiToken"]["token"]
    async with sockets(app, (owner.token, LIVE), (tablet, LIVE), (tablet, OTHER)) as lives:
        statuses = await asyncio.gather(*(deliver(app, bot, message_update(n, chat_id=-1)) for n in range(1, 41)))
        assert {s.status_code for s in statuses} == {200}
        for live in lives:
            await live.until(lambda d: total(d) == 40)
