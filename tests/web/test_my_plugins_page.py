"""/my-plugins: each install's "Enabled" switch, its settings form generated from configSchema
(with the server's per-field errors beside their fields), "Uninstall" after confirmation, and its stats."""

from __future__ import annotations

import re

from playwright.async_api import expect

from app.plugins.handlers.analytics import AnalyticsHandler
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import message_update

RETENTION = AnalyticsHandler.definition.config_schema["properties"]["retention"]
MINE = "{ myPlugins { isEnabled config executionCount plugin { slug } } }"


async def installs(app, user) -> dict[str, dict]:
    return {i["plugin"]["slug"]: i for i in (await app.graphql(MINE, user=user))["myPlugins"]}


async def test_no_installs_yet_points_to_the_catalog(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await tab.sign_in(user.token)

    empty = tab.page.get_by_text("No plugins installed yet")
    await expect(empty).to_be_visible()
    await tab.page.locator(".empty").get_by_role("link", name="Browse plugins").click()
    await expect(tab.page).to_have_url(f"{app.url}/plugins")
    tab.assert_no_console_errors()


async def test_an_install_shows_its_stats(app, tab, telegram):
    user = await app.create_user("ada@example.com", "pro")
    await install(app, user, "analytics")
    bot = await connect_bot(app, user, telegram)
    for update_id in (1, 2):
        assert (await deliver(app, bot, message_update(update_id))).status_code == 200
    await wait_until_processed(app)
    await tab.sign_in(user.token)

    card = tab.page.get_by_role("article", name="Channel Analytics")
    stats = card.locator("dl.stats")
    await expect(stats).to_contain_text("Runs2")
    await expect(stats).to_contain_text(re.compile(r"Last run\d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    await expect(stats).to_contain_text("Last errorNone")
    tab.assert_no_console_errors()


async def test_configure_opens_a_form_from_the_schema_shows_field_errors_and_saves(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await install(app, user, "analytics")
    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Channel Analytics")

    configure = card.get_by_role("button", name="Configure")
    await configure.click()
    await expect(configure).to_have_attribute("aria-expanded", "true")
    track = card.get_by_role("checkbox", name="Track users")
    retention = card.get_by_role("spinbutton", name="Retention (days)")
    await expect(track).to_be_checked()  # defaults filled in
    await expect(retention).to_have_value("30")
    await expect(retention).to_have_accessible_description(re.compile(re.escape(RETENTION["description"])))

    await retention.fill("0")
    await card.get_by_role("button", name="Save").click()
    await expect(retention).to_have_attribute("aria-invalid", "true")
    await expect(retention).to_have_accessible_description(re.compile("Must be at least 1."))
    assert (await installs(app, user))["analytics"]["config"] == {
        "trackUsers": True,
        "retention": 30,
        "timezone": "UTC",
    }

    await retention.fill("90")
    await track.uncheck()
    await card.get_by_role("button", name="Save").click()
    await expect(card.get_by_role("status")).to_have_text("Saved")
    await expect(retention).not_to_have_attribute("aria-invalid", "true")
    assert (await installs(app, user))["analytics"]["config"] == {
        "trackUsers": False,
        "retention": 90,
        "timezone": "UTC",
    }

    await tab.page.reload()
    await card.get_by_role("button", name="Configure").click()
    await expect(card.get_by_role("spinbutton", name="Retention (days)")).to_have_value("90")
    await expect(card.get_by_role("checkbox", name="Track users")).not_to_be_checked()
    tab.assert_no_console_errors()


async def test_strings_and_lists_of_numbers_are_edited_in_place(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await install(app, user, "welcome")
    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Welcome Messages")
    await card.get_by_role("button", name="Configure").click()

    greeting = card.get_by_role("textbox", name="Greeting")
    await expect(greeting).to_have_value("Welcome, {first_name}!")
    chats = card.get_by_role("group", name="Chats")
    await expect(chats).to_contain_text("No items yet.")

    await greeting.fill("")
    for chat_id in ("-100200", "-100200"):
        await chats.get_by_role("button", name="Add item").click()
        await chats.get_by_role("spinbutton").last.fill(chat_id)
    await card.get_by_role("button", name="Save").click()
    await expect(greeting).to_have_accessible_description(re.compile("Must not be empty."))
    await expect(greeting).to_have_attribute("aria-invalid", "true")
    await expect(chats).to_contain_text("Each item must be different.")
    assert (await installs(app, user))["welcome"]["config"]["chats"] == []

    # A field being fixed loses its error at once; the others keep theirs until they change.
    await greeting.fill("Hello {first_name}, glad you're here")
    await expect(greeting).not_to_have_accessible_description(re.compile("Must not be empty"))
    await expect(greeting).not_to_have_attribute("aria-invalid", "true")
    await expect(card.get_by_text("Must not be empty.")).to_have_count(0)
    await expect(chats).to_contain_text("Each item must be different.")
    await chats.get_by_role("button", name="Remove item 2 of Chats").click()
    await card.get_by_role("button", name="Save").click()
    await expect(card.get_by_role("status")).to_have_text("Saved")
    assert (await installs(app, user))["welcome"]["config"] == {
        "message": "Hello {first_name}, glad you're here",
        "chats": [-100200],
    }
    tab.assert_no_console_errors()


async def test_the_enabled_switch_pauses_and_resumes_a_plugin(app, tab, telegram):
    user = await app.create_user("ada@example.com", "pro")
    await install(app, user, "welcome")
    await connect_bot(app, user, telegram)
    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Welcome Messages")
    switch = card.get_by_role("switch", name="Enabled")
    await expect(switch).to_be_checked()

    await switch.click()
    await expect(switch).not_to_be_checked()
    await expect(card.get_by_text("Paused: turn on Enabled to run it again.")).to_be_visible()
    assert (await installs(app, user))["welcome"]["isEnabled"] is False

    await tab.page.reload()
    await expect(switch).not_to_be_checked()
    await switch.click()
    await expect(switch).to_be_checked()
    await expect(card.get_by_text("Paused: turn on Enabled to run it again.")).to_have_count(0)
    assert (await installs(app, user))["welcome"]["isEnabled"] is True
    tab.assert_no_console_errors()


async def test_uninstall_asks_first_and_cancel_keeps_the_plugin(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await install(app, user, "welcome")
    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Welcome Messages")

    await card.get_by_role("button", name="Uninstall").click()
    dialog = tab.page.get_by_role("dialog", name="Uninstall Welcome Messages?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_have_count(0)
    assert "welcome" in await installs(app, user)

    await card.get_by_role("button", name="Uninstall").click()
    await dialog.get_by_role("button", name="Uninstall").click()
    await expect(card).to_have_count(0)
    await expect(tab.page.get_by_text("No plugins installed yet")).to_be_visible()
    assert await installs(app, user) == {}
    tab.assert_no_console_errors()
