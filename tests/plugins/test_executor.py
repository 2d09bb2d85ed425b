"""The executor: isolation of failures, timeouts, lifecycle hooks and install-scoped storage."""

from __future__ import annotations

import pytest

from app.errors import NotFound, PluginFailed
from app.plugins.contract import ExecutionContext, RunTrigger
from app.plugins.handlers.analytics import AnalyticsHandler
from app.plugins.models import StoredValue, UserPlugin
from tests.support.live import LiveApp
from tests.support.plugins import BrokenInstallPlugin, FailingPlugin, RecordingPlugin, StallingPlugin
from tests.support.runtime import (
    connect_bot,
    deliver,
    install,
    messages_counted,
    reload,
    service_context,
    stored,
    wait_until_processed,
)
from tests.support.telegram_updates import message_update


@pytest.fixture
async def plugins():
    return {
        "recorder": RecordingPlugin(),
        "failing": FailingPlugin(),
        "stalling": StallingPlugin(),
        "broken": BrokenInstallPlugin(),
    }


@pytest.fixture
async def live(make_app, plugins) -> LiveApp:
    return await make_app(handlers=[AnalyticsHandler(), *plugins.values()], plugin_timeout_seconds=0.5)


@pytest.fixture
async def owner(live):
    return await live.create_user("owner@example.com", "business")


@pytest.fixture
async def bot(live, owner, telegram):
    return await connect_bot(live, owner, telegram)


async def test_a_failing_plugin_does_not_stop_the_others(live, owner, bot, plugins):
    failing = await install(live, owner, "failing")
    analytics = await install(live, owner, "analytics")

    assert (await deliver(live, bot, message_update(1, chat_id=-1))).status_code == 200
    await wait_until_processed(live)

    assert await messages_counted(live, analytics.id, -1) == 1
    failed = await reload(live, failing)
    assert failed.run_count == 1
    assert failed.last_error == "RuntimeError: boom"
    assert await stored(live, failing.id, "attempted") is None  # a failed run writes nothing


async def test_the_next_success_clears_the_last_error(live, owner, bot, plugins):
    failing = await install(live, owner, "failing")
    await deliver(live, bot, message_update(1))
    await wait_until_processed(live)
    assert (await reload(live, failing)).last_error

    plugins["failing"].failing = False
    await deliver(live, bot, message_update(2))
    await wait_until_processed(live)
    recovered = await reload(live, failing)
    assert recovered.last_error is None
    assert recovered.run_count == 2
    assert await stored(live, failing.id, "attempted") == 1


async def test_a_plugin_past_its_timeout_is_cancelled_and_recorded_as_failed(live, owner, bot, plugins):
    stalled = await install(live, owner, "stalling")
    analytics = await install(live, owner, "analytics")
    await deliver(live, bot, message_update(1, chat_id=-2))
    await wait_until_processed(live)

    result = await reload(live, stalled)
    assert result.run_count == 1
    assert result.last_error == "Timed out after 0.5 s"
    assert await stored(live, stalled.id, "finished") is None
    assert await messages_counted(live, analytics.id, -2) == 1


async def test_lifecycle_hooks_run_with_the_service(live, owner, plugins):
    recorder = plugins["recorder"]
    installed = await install(live, owner, "recorder")
    ctx = await service_context(live, owner)
    with live.db():
        await live.platform.plugins.toggle(ctx, installed.plugin_id, False)
        await live.platform.plugins.toggle(ctx, installed.plugin_id, True)
        await live.platform.plugins.uninstall(ctx, installed.plugin_id)
    assert recorder.hooks == ["on_install", "on_disable", "on_enable", "on_uninstall"]


async def test_install_hook_storage_lands_with_the_install(live, owner):
    installed = await install(live, owner, "recorder")
    assert await stored(live, installed.id, "installed") is True


async def test_a_failing_install_hook_leaves_no_install_behind(live, owner):
    with pytest.raises(PluginFailed, match="cannot install"):
        await install(live, owner, "broken-install")
    with live.db():
        assert await UserPlugin.filter(user_id=owner.id).count() == 0
        assert await StoredValue.all().count() == 0


async def test_storage_is_scoped_to_the_install(live, owner, bot):
    mine = await install(live, owner, "recorder")
    other_user = await live.create_user("other@example.com", "pro")
    theirs = await install(live, other_user, "recorder")
    await deliver(live, bot, message_update(1))
    await wait_until_processed(live)
    assert await stored(live, mine.id, "seen:telegram.message") == 1
    assert await stored(live, theirs.id, "seen:telegram.message") is None


async def test_a_plugin_cannot_use_another_users_gateway(live, owner, bot, telegram):
    intruder = await live.create_user("intruder@example.com", "pro")
    installed = await install(live, intruder, "recorder")
    with live.db():
        row = await UserPlugin.get(id=installed.id).select_related("plugin")
        plugin = live.platform.registry.get(row.plugin.slug)
        assert plugin is not None
        service = await service_context(live, intruder)
        execution = ExecutionContext(trigger=RunTrigger.STANDALONE, service=service)
        ctx = live.platform.executor.context(row.user_id, row.id, row.config, plugin.slug, execution)
        with pytest.raises(NotFound):
            await ctx.gateways.execute(bot.gateway_id, "sendMessage", {"chat_id": 1, "text": "spam"})
    assert telegram.bot(bot.token).sent_messages == []
