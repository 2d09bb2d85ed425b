"""/plugins: a card per plugin, a category filter, "Install", and server errors in words."""

from __future__ import annotations

import re

from playwright.async_api import expect

from app.plugins.handlers.analytics import AnalyticsHandler
from tests.support.runtime import connect_bot, install

ANALYTICS = AnalyticsHandler.definition

MY_PLUGINS = "{ myPlugins { plugin { slug } } }"
INSTALLED = "{ myPlugins { plugin { slug } status config } }"


async def test_each_plugin_has_a_card_with_what_a_user_needs_to_choose_it(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await tab.sign_in(user.token, "/plugins")

    analytics = tab.page.get_by_role("article", name="Channel Analytics")
    await expect(analytics).to_contain_text(ANALYTICS.description)
    await expect(analytics).to_contain_text("Analytics")
    await expect(analytics).to_contain_text(f"Version {ANALYTICS.version}")
    await expect(analytics).to_contain_text("Requires: Telegram bot")
    await expect(analytics.locator(".plugin-icon svg")).to_be_visible()
    await expect(analytics.get_by_role("button", name="Install")).to_be_enabled()
    await expect(tab.page.get_by_role("article", name="Welcome Messages")).to_contain_text("Engagement")
    await expect(tab.page.get_by_text("0 of 10 plugins used on the Pro plan")).to_be_visible()
    tab.assert_no_console_errors()


async def test_the_category_filter_shows_one_category_and_is_kept_in_the_address(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await tab.sign_in(user.token, "/plugins")
    filters = tab.page.get_by_role("group", name="Category")
    await expect(tab.page.get_by_role("article")).to_have_count(3)

    await filters.get_by_role("button", name="Engagement").click()
    await expect(tab.page.get_by_role("article")).to_have_count(1)
    await expect(tab.page.get_by_role("article", name="Welcome Messages")).to_be_visible()
    await expect(filters.get_by_role("button", name="Engagement")).to_have_attribute("aria-pressed", "true")
    await expect(tab.page).to_have_url(f"{app.url}/plugins?category=engagement")

    await tab.page.reload()
    await expect(tab.page.get_by_role("article")).to_have_count(1)
    await filters.get_by_role("button", name="All").click()
    await expect(tab.page.get_by_role("article")).to_have_count(3)
    tab.assert_no_console_errors()


async def test_install_marks_the_plugin_installed_on_the_server_and_on_the_page(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await tab.sign_in(user.token, "/plugins")
    card = tab.page.get_by_role("article", name="Channel Analytics")

    await card.get_by_role("button", name="Install").click()
    await expect(card.get_by_text("Installed", exact=True)).to_be_visible()
    await expect(card.get_by_role("button", name="Install")).to_have_count(0)
    await expect(tab.page.get_by_role("status").filter(has_text="Channel Analytics is installed")).to_contain_text(
        "once you connect a Telegram bot"
    )
    assert (await app.graphql(MY_PLUGINS, user=user))["myPlugins"] == [{"plugin": {"slug": "analytics"}}]

    await tab.page.reload()
    await expect(card.get_by_text("Installed", exact=True)).to_be_visible()
    await expect(tab.page.get_by_text("1 of 10 plugins used on the Pro plan")).to_be_visible()
    tab.assert_no_console_errors()


async def test_the_plan_limit_is_explained_in_words_and_nothing_is_installed(app, tab):
    user = await app.create_user("ada@example.com", "free")  # one plugin allowed
    await install(app, user, "analytics")
    await tab.sign_in(user.token, "/plugins")
    card = tab.page.get_by_role("article", name="Welcome Messages")

    await card.get_by_role("button", name="Install").click()
    await expect(card.get_by_role("alert")).to_have_text(
        "Your Free plan allows 1 plugin, and you have used it. Uninstall one on My plugins, or upgrade your plan."
    )
    await expect(card.get_by_role("button", name="Install")).to_be_enabled()
    assert (await app.graphql(MY_PLUGINS, user=user))["myPlugins"] == [{"plugin": {"slug": "analytics"}}]
    tab.assert_no_console_errors()


async def test_a_plugin_with_required_settings_asks_for_them_before_it_installs(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await tab.sign_in(user.token, "/plugins")
    card = tab.page.get_by_role("article", name="Forward to webhook")
    await expect(card).to_contain_text("Asks for: Webhook URL, Signing secret")

    install = card.get_by_role("button", name="Install", exact=True)
    await install.click()
    await expect(install).to_have_attribute("aria-expanded", "true")
    url = card.get_by_role("textbox", name="Webhook URL")
    secret = card.get_by_role("textbox", name="Signing secret")
    await expect(url).to_be_focused()
    await expect(secret).to_have_accessible_description(re.compile(r"^Not set Required\."))

    # The server's field errors, beside their fields; nothing is installed.
    await url.fill("http://hooks.example.com/in")
    await secret.fill("too-short")
    await card.get_by_role("button", name="Install Forward to webhook").click()
    await expect(url).to_have_attribute("aria-invalid", "true")
    await expect(url).to_have_accessible_description(re.compile("Must be an https:// address."))
    await expect(secret).to_have_accessible_description(re.compile(r"Must be at least 16 characters long\.$"))
    assert (await app.graphql(MY_PLUGINS, user=user))["myPlugins"] == []

    await url.fill("https://hooks.example.com/in")
    await expect(url).not_to_have_attribute("aria-invalid", "true")  # fixed: its error goes
    await expect(card.get_by_text("Must be an https:// address.")).to_have_count(0)
    await secret.fill("a-signing-secret-long-enough")
    await secret.press("Enter")  # the keyboard submits the form
    await expect(card.get_by_text("Installed", exact=True)).to_be_visible()
    await expect(card.get_by_role("link", name="See it in My plugins")).to_be_focused()
    await expect(tab.page.get_by_role("status").locator(".toast")).to_have_text(
        "Forward to webhook is installed with your settings. It starts working once you connect a Telegram bot on My plugins."
    )
    [mine] = (await app.graphql(INSTALLED, user=user))["myPlugins"]
    assert mine == {
        "plugin": {"slug": "forward"},
        "status": "WAITING_FOR_GATEWAY",
        "config": {"url": "https://hooks.example.com/in", "keywords": [], "signingSecret": {"$secret": "set"}},
    }
    tab.assert_no_console_errors()


async def test_closing_the_settings_form_installs_nothing(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await tab.sign_in(user.token, "/plugins")
    card = tab.page.get_by_role("article", name="Forward to webhook")
    install = card.get_by_role("button", name="Install", exact=True)
    await install.click()
    await card.get_by_role("button", name="Close").click()
    await expect(card.get_by_role("textbox", name="Webhook URL")).to_have_count(0)
    await expect(install).to_be_focused()
    await expect(install).to_have_attribute("aria-expanded", "false")
    assert (await app.graphql(MY_PLUGINS, user=user))["myPlugins"] == []
    tab.assert_no_console_errors()


async def test_the_toast_after_filling_in_the_settings_says_it_is_set_up(app, tab, telegram):
    user = await app.create_user("ada@example.com", "pro")
    await connect_bot(app, user, telegram)
    await tab.sign_in(user.token, "/plugins")
    card = tab.page.get_by_role("article", name="Forward to webhook")
    await card.get_by_role("button", name="Install", exact=True).click()
    await card.get_by_role("textbox", name="Webhook URL").fill("https://hooks.example.com/in")
    await card.get_by_role("textbox", name="Signing secret").fill("a-signing-secret-long-enough")
    await card.get_by_role("button", name="Install Forward to webhook").click()
    toasts = tab.page.get_by_role("status").locator(".toast")
    await expect(toasts.filter(has_text="Forward to webhook is installed")).to_have_text(
        "Forward to webhook is installed with your settings and working."
    )

    await tab.page.get_by_role("article", name="Welcome Messages").get_by_role("button", name="Install").click()
    await expect(toasts.filter(has_text="Welcome Messages is installed")).to_have_text(
        "Welcome Messages is installed and working. Its settings are on My plugins."
    )
    tab.assert_no_console_errors()


async def box(locator) -> dict[str, float]:
    found = await locator.bounding_box()
    assert found is not None
    return found


async def test_the_settings_form_opens_across_the_row_and_leaves_the_other_cards_as_they_were(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await tab.sign_in(user.token, "/plugins")  # 1280 px wide: three cards a row
    forward = tab.page.get_by_role("article", name="Forward to webhook")
    others = [tab.page.get_by_role("article", name=name) for name in ("Channel Analytics", "Welcome Messages")]
    before = [await box(card) for card in others]
    closed = await box(forward)

    await forward.get_by_role("button", name="Install", exact=True).click()
    form = forward.locator("form")
    await expect(form).to_be_visible()
    opened, summary, form_box = await box(forward), await box(forward.locator(".card__summary")), await box(form)
    assert opened["width"] > 2.5 * closed["width"]  # the whole row
    assert form_box["x"] >= summary["x"] + summary["width"]  # beside the card's summary, which stays in view
    assert form_box["width"] > 1.5 * summary["width"]
    for card, was in zip(others, before, strict=True):
        now = await box(card)
        assert now["width"] == was["width"] and now["height"] <= was["height"]  # not stretched by the form

    await forward.get_by_role("button", name="Close").click()
    assert (await box(forward))["width"] == closed["width"]
    tab.assert_no_console_errors()
