"""`python -m app analytics forget-user TELEGRAM_USER_ID`, run as an operator runs it: one person's
rows leave every install's personal tables, everyone else's and the counters without ids stay, and
a bad id deletes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.analytics.models import AnalyticsVersion
from app.analytics.personal import PERSONAL
from tests.analytics.test_content import analytics_models
from tests.support.live import LiveApp
from tests.support.redis_server import shared_redis_url
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.subscriptions import subscribe
from tests.support.telegram_updates import message
from tests.test_cli import one_error_line, only_once, run_cli

NOW = datetime(2026, 6, 15, 12, 30, tzinfo=UTC)
# Every other analytics table: counters without ids, which forgetting a person leaves as they are.
# Derived from the rest, and moved on when a person is forgotten (app/analytics/closed_days.py).
ROLLED_UP = ("analytics_closed_days", "analytics_versions")
AGGREGATES = tuple(
    sorted(m._meta.db_table for m in analytics_models() if m not in PERSONAL and m._meta.db_table not in ROLLED_UP)
)
POSTERS = "{ analytics { topPosters { userId firstName } } }"
LIVE_POSTERS = "subscription { analyticsUpdated { topPosters { userId } } }"


async def rows_by_table(app: LiveApp) -> dict[str, list[dict[str, Any]]]:
    tables = [model._meta.db_table for model in PERSONAL] + list(AGGREGATES)
    with app.db() as ctx:
        conn = ctx.db()
        return {t: await conn.execute_query_dict(f'SELECT * FROM "{t}" ORDER BY id') for t in tables}


async def two_communities(app: LiveApp, telegram) -> list:
    """Two owners' installs, where users 10 and 11 post in two chats each."""
    app.platform.clock = lambda: NOW
    owners = []
    for n in range(2):
        owner = await app.create_user(f"owner{n}@example.com", "pro")
        bot = await connect_bot(app, owner, telegram, username=f"owner{n}_bot")
        await install(app, owner, "analytics")
        for update_id, (sender, chat) in enumerate(((10, -1), (11, -1), (10, -2), (11, -2), (10, -1)), start=1):
            value = message(chat, "supergroup", **{"from": {"id": sender, "is_bot": False, "first_name": "P"}})
            value.update(date=int(NOW.timestamp()), text="hi")
            assert (await deliver(app, bot, {"update_id": update_id, "message": value})).status_code == 200
        owners.append(owner)
    await wait_until_processed(app)
    return owners


async def test_forget_user_removes_one_person_from_every_install_and_says_how_many(app, telegram, database_url):
    owners = await two_communities(app, telegram)
    before = await rows_by_table(app)
    personal = [model._meta.db_table for model in PERSONAL]
    theirs = {t: [r for r in before[t] if r["user_id"] == 10] for t in personal}
    assert all(theirs[t] for t in personal), theirs  # every personal table had some of theirs
    assert len({r["install_id"] for r in theirs["analytics_poster_names"]}) == 2

    code, out, err = await run_cli("analytics", "forget-user", "10", database_url=database_url)
    assert code == 0, err
    total = sum(len(found) for found in theirs.values())
    each = ", ".join(f"{t}: {len(theirs[t])}" for t in personal)
    assert out.strip() == f"Removed {total} rows of Telegram user 10 from every install ({each})."

    after = await rows_by_table(app)
    for table in personal:
        assert after[table] == [r for r in before[table] if r["user_id"] != 10], table
    assert {"analytics_chats", "analytics_content"} <= set(AGGREGATES)
    for table in AGGREGATES:
        assert after[table] == before[table], table  # counters without ids stay
    with app.db():  # and what was rolled up with them is rolled up again
        versions = await AnalyticsVersion.all().values_list("install_id", "day", "version")
    assert sorted(versions) == sorted({(r["install_id"], -1, 1) for r in theirs["analytics_poster_names"]})
    for owner in owners:
        assert (await app.graphql(POSTERS, user=owner))["analytics"]["topPosters"] == [
            {"userId": "11", "firstName": "P"}
        ]

    code, out, err = await run_cli("analytics", "forget-user", "10", database_url=database_url)
    assert code == 0 and out.startswith("Removed 0 rows"), err


async def test_a_bad_id_is_one_line_and_deletes_nothing(app, telegram, database_url):
    await two_communities(app, telegram)
    before = await rows_by_table(app)
    for bad in ("abc", "0", "-10", "\uff11\uff10", "99999999999999999999", "10.0"):
        code, out, err = await run_cli("analytics", "forget-user", bad, database_url=database_url)
        assert code == 1 and out == "", (bad, out)
        assert "TELEGRAM_USER_ID must be a Telegram user id" in one_error_line(err), bad
    assert await rows_by_table(app) == before


async def test_help_names_the_verb_and_what_it_keeps(backend):
    only_once(backend)
    code, out, _ = await run_cli("--help")
    assert code == 0 and "    analytics" in out
    code, out, _ = await run_cli("analytics", "forget-user", "--help")
    flat = " ".join(out.split())
    assert code == 0 and "TELEGRAM_USER_ID" in flat and "Counters without ids" in flat


async def test_open_summaries_of_the_installs_touched_read_again(make_app, telegram, database_url):
    redis_url = await shared_redis_url()
    app = await make_app(broadcast_url=redis_url)
    owner, _ = await two_communities(app, telegram)
    async with subscribe(app.url, LIVE_POSTERS, token=owner.token) as live:
        assert (await live.next())["analyticsUpdated"]["topPosters"] == [{"userId": "10"}, {"userId": "11"}]
        env = {"BROADCAST_URL": redis_url}
        code, _, err = await run_cli("analytics", "forget-user", "10", database_url=database_url, env=env)
        assert code == 0, err
        assert (await live.next())["analyticsUpdated"]["topPosters"] == [{"userId": "11"}]
