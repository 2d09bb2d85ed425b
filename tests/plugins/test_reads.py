"""A user's installs read by hand (app/plugins/reads.py): the values tortoise's models give, on
SQLite and PostgreSQL, and a plugin's conversion kept only while its row is the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.plugins.models import InstallStatus, Plugin, UserPlugin
from app.plugins.reads import INSTALL_FIELDS, PLUGIN_FIELDS, InstallReads, PluginReads, installs_with_plugins
from tests.support.installs_api import install_via_api
from tests.support.live import LiveApp
from tests.support.plugins import RecordingPlugin, StepPlugin

SECRET_SCHEMA = {
    "type": "object",
    "properties": {"token": {"type": "string", "writeOnly": True}, "greeting": {"type": "string", "default": "hi"}},
}
MY_PLUGINS = (
    "{ myPlugins { id config status statusReason executionCount lastExecutedAt lastError createdAt "
    "plugin { slug description isActive configSchema inputSchema createdAt updatedAt } } }"
)


async def installed_app(make_app) -> tuple[LiveApp, str]:
    live = await make_app(
        handlers=[RecordingPlugin("recorder"), StepPlugin("greeter", config_schema=SECRET_SCHEMA)], inbox_concurrency=0
    )
    user = await live.create_user("ada@example.com", "business")
    await install_via_api(live, user, "recorder")
    await install_via_api(live, user, "greeter", {"token": "s3cret", "greeting": "hello"})
    return live, user.id


async def test_the_hand_read_gives_what_tortoise_gives(make_app):
    live, user_id = await installed_app(make_app)
    with live.db():
        # A run, an error and a state other than the default: every column with a value.
        ran_at = datetime(2026, 11, 25, 10, 30, 15, 123456, tzinfo=UTC)
        recorder_id = (await Plugin.get(slug="recorder")).id
        await UserPlugin.filter(user_id=user_id, plugin_id=recorder_id).update(
            run_count=7, last_run_at=ran_at, last_error="boom", consecutive_failures=2, status=InstallStatus.FAILING
        )
        read = await installs_with_plugins(user_id)
        models = await UserPlugin.filter(user_id=user_id).select_related("plugin").order_by("created_at", "id")

    assert [install.id for install in read] == [model.id for model in models]
    assert len(read) == 2
    for install, model in zip(read, models, strict=True):
        for name in INSTALL_FIELDS:
            assert getattr(install, name) == getattr(model, name), name
            assert type(getattr(install, name)) is type(getattr(model, name)), name
        for name in PLUGIN_FIELDS:
            assert getattr(install.plugin, name) == getattr(model.plugin, name), name
            assert type(getattr(install.plugin, name)) is type(getattr(model.plugin, name)), name
        for name in ("created_at", "updated_at"):
            assert getattr(install, name).tzinfo == getattr(model, name).tzinfo
            assert getattr(install, name).isoformat() == getattr(model, name).isoformat()
    [recorder] = [install for install in read if install.plugin.slug == "recorder"]
    assert recorder.last_run_at == ran_at and recorder.status is InstallStatus.FAILING
    [greeter] = [install for install in read if install.plugin.slug == "greeter"]
    assert greeter.plugin.secret_keys == frozenset({"token"})


async def test_my_plugins_shows_a_changed_plugin_row_at_once(make_app):
    """A plugin's conversion is kept by its row's values: a row changed without a new updated_at
    (as the catalog's sync marks a plugin inactive) is read anew, never served from before."""
    live, user_id = await installed_app(make_app)
    user = await live.create_user("grace@example.com", "business")
    await install_via_api(live, user, "recorder")
    before = {i["plugin"]["slug"]: i for i in (await live.graphql(MY_PLUGINS, user=user))["myPlugins"]}
    with live.db():
        await Plugin.filter(slug="recorder").update(description="Changed in place", is_active=False)

    after = {i["plugin"]["slug"]: i for i in (await live.graphql(MY_PLUGINS, user=user))["myPlugins"]}

    assert before["recorder"]["plugin"]["description"] == "Test plugin recorder"
    assert after["recorder"]["plugin"]["description"] == "Changed in place"
    assert after["recorder"]["plugin"]["isActive"] is False
    assert after["recorder"]["plugin"]["updatedAt"] == before["recorder"]["plugin"]["updatedAt"]


async def test_secrets_stay_hidden_in_the_hand_read(make_app):
    live, user_id = await installed_app(make_app)
    user = await live.create_user("grace@example.com", "business")
    await install_via_api(live, user, "greeter", {"token": "other", "greeting": "hey"})

    [greeter] = (await live.graphql(MY_PLUGINS, user=user))["myPlugins"]

    assert greeter["config"] == {"greeting": "hey", "token": {"$secret": "set"}}
    assert "other" not in str(greeter)


def plugin_values(slug: str, description: str = "d") -> tuple[object, ...]:
    """A plugins row's values as SQLite gives them (PLUGIN_FIELDS' order)."""
    stamp = "2026-11-25 10:30:15.123456+00:00"
    return (
        f"id-{slug}",
        slug,
        slug,
        description,
        "1.0.0",
        '["TELEGRAM_BOT"]',
        "{}",
        None,
        None,
        None,
        "general",
        1,
        1,
        stamp,
        stamp,
    )


def test_the_same_plugin_row_gives_the_same_read_and_another_row_a_new_one():
    reads = PluginReads(max_entries=2)

    first = reads.of(plugin_values("a"))
    again = reads.of(plugin_values("a"))
    changed = reads.of(plugin_values("a", description="new"))

    assert again is first
    assert changed is not first and changed.description == "new"
    assert first.is_builtin is True and first.required_gateways == ["TELEGRAM_BOT"]
    assert first.created_at == datetime(2026, 11, 25, 10, 30, 15, 123456, tzinfo=UTC)
    assert first.created_at.utcoffset() == timedelta(0)


def test_plugin_reads_keep_at_most_their_bound():
    reads = PluginReads(max_entries=2)
    for slug in ("a", "b", "c"):
        reads.of(plugin_values(slug))
    assert len(reads) == 2
    assert reads.of(plugin_values("c")) is reads.of(plugin_values("c"))


def install_values(plugin: tuple[object, ...], runs: int = 0) -> tuple[object, ...]:
    """An install's row with its plugin's, as SQLite gives them (INSTALL_FIELDS', then PLUGIN_FIELDS')."""
    stamp = "2026-11-25 10:30:15.123456+00:00"
    install = ("i-1", "u-1", plugin[0], '{"a": 1}', "1.0.0", 1, "ACTIVE", None, runs, None, None, 0, stamp, stamp)
    return install + plugin


def test_the_same_install_row_gives_the_same_read_and_another_row_a_new_one():
    plugins = PluginReads()
    reads = InstallReads(plugins, max_entries=2)

    first = reads.of(install_values(plugin_values("a")))
    again = reads.of(install_values(plugin_values("a")))
    ran = reads.of(install_values(plugin_values("a"), runs=3))
    plugin_changed = reads.of(install_values(plugin_values("a", description="new")))

    assert again is first and first.config == {"a": 1} and first.status is InstallStatus.ACTIVE
    assert ran is not first and ran.run_count == 3 and ran.plugin is first.plugin
    assert plugin_changed is not first and plugin_changed.plugin.description == "new"
    assert len(reads) == 2


async def test_my_plugins_shows_a_changed_install_row_at_once(make_app):
    live, user_id = await installed_app(make_app)
    user = await live.create_user("grace@example.com", "business")
    await install_via_api(live, user, "recorder")
    [before] = (await live.graphql(MY_PLUGINS, user=user))["myPlugins"]
    with live.db():
        await UserPlugin.filter(user_id=user.id).update(run_count=7, last_error="boom")

    [after] = (await live.graphql(MY_PLUGINS, user=user))["myPlugins"]

    assert (before["executionCount"], before["lastError"]) == (0, None)
    assert (after["executionCount"], after["lastError"]) == (7, "boom")
