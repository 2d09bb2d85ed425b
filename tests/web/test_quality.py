"""Each page, at a phone's width (390 px) and a desktop's (1280 px): no serious or critical
accessibility violations (axe-core), nothing sticking out sideways, no console errors, and a
screenshot kept in tests/artifacts/web/."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import message_update, new_members_update
from tests.support.telegram_updates import user as telegram_user
from tests.web.browser import DESKTOP, PHONE, Tab

VIEWPORTS = [pytest.param(PHONE, id="390px"), pytest.param(DESKTOP, id="1280px")]


async def check_page(tab: Tab, name: str) -> None:
    """Audits the page as it is now, keeps its screenshot, and fails on what it found."""
    shot = await tab.screenshot(name)
    assert shot.stat().st_size > 0
    print(f"screenshot: {shot}")
    violations = await tab.audit()
    overflow = await tab.overflow()
    assert violations == [], f"{name}: axe-core found serious or critical violations: {violations}"
    assert overflow is None, f"{name}: content wider than the viewport: {overflow}"
    elsewhere = [url for url, _ in tab.requests if not url.startswith((tab.base_url, "blob:", "data:"))]
    assert elsewhere == [], f"{name}: requests to other servers (no CDN at run time): {elsewhere}"
    tab.assert_no_console_errors()


@pytest.fixture
async def product(app, telegram):
    """A pro user with both plugins, a connected bot, and a little traffic."""
    user = await app.create_user("grace.hopper@example.com", "pro")
    await install(app, user, "analytics")
    await install(app, user, "welcome")
    bot = await connect_bot(app, user, telegram)
    updates = [message_update(i, text=f"message {i}", sender_id=1000 + i % 3) for i in range(1, 6)]
    updates.append(new_members_update(6, telegram_user(2001, "Linus")))
    for update in updates:
        assert (await deliver(app, bot, update)).status_code == 200
    await wait_until_processed(app)
    return user


@pytest.mark.parametrize("viewport", VIEWPORTS)
async def test_sign_in_page(app, browser, viewport):
    tab = await Tab.open(browser, app.url, viewport)
    try:
        await tab.goto("/sign-in")
        await expect(tab.page.get_by_label("API token")).to_be_visible()
        await check_page(tab, "sign-in")
        await tab.page.get_by_label("API token").fill("pb_unknown-token-000000000000000")
        await tab.page.get_by_role("button", name="Sign in").click()
        await expect(tab.page.get_by_role("alert")).to_be_visible()
        await check_page(tab, "sign-in-refused")
    finally:
        await tab.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
async def test_plugins_page(app, browser, product, viewport):
    tab = await Tab.open(browser, app.url, viewport)
    try:
        await tab.sign_in(product.token, "/plugins")
        await expect(tab.page.get_by_role("article")).to_have_count(3)
        await check_page(tab, "plugins")
    finally:
        await tab.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
async def test_my_plugins_page_with_the_widget_and_an_open_form(app, browser, product, viewport):
    tab = await Tab.open(browser, app.url, viewport)
    try:
        await tab.sign_in(product.token, "/my-plugins")
        widget = tab.page.locator("plugboard-analytics")
        await expect(widget.locator('[data-kpi="totalMessages"]')).not_to_have_text("0")
        card = tab.page.get_by_role("article", name="Welcome Messages")
        await card.get_by_role("button", name="Configure").click()
        await card.get_by_role("group", name="Chats").get_by_role("button", name="Add item").click()
        await check_page(tab, "my-plugins")

        await tab.page.get_by_role("article", name="Channel Analytics").get_by_role("button", name="Uninstall").click()
        await expect(tab.page.get_by_role("dialog")).to_be_visible()
        await check_page(tab, "my-plugins-confirm-uninstall")
    finally:
        await tab.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
async def test_my_plugins_page_with_nothing_installed(app, browser, viewport):
    user = await app.create_user("new@example.com", "free")
    tab = await Tab.open(browser, app.url, viewport)
    try:
        await tab.sign_in(user.token, "/my-plugins")
        await expect(tab.page.get_by_text("No plugins installed yet")).to_be_visible()
        await check_page(tab, "my-plugins-empty")
    finally:
        await tab.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
async def test_plugins_page_with_an_install_form_and_its_errors(app, browser, viewport):
    user = await app.create_user("new@example.com", "pro")
    tab = await Tab.open(browser, app.url, viewport)
    try:
        await tab.sign_in(user.token, "/plugins")
        card = tab.page.get_by_role("article", name="Forward to webhook")
        await card.get_by_role("button", name="Install", exact=True).click()
        await card.get_by_role("button", name="Install Forward to webhook").click()  # nothing filled in
        await expect(card.get_by_role("textbox", name="Webhook URL")).to_have_attribute("aria-invalid", "true")
        await check_page(tab, "plugins-install-form")
    finally:
        await tab.close()


@pytest.fixture
async def long_titled(app, telegram):
    """A pro user with both plugins and a bot, in a chat whose title is longer than a phone is wide."""
    user = await app.create_user("grace.hopper@example.com", "pro")
    await install(app, user, "analytics")
    await install(app, user, "welcome")
    bot = await connect_bot(app, user, telegram)
    update = message_update(1, text="hello", chat_id=-100_900)
    update["message"]["chat"]["title"] = "The weekend hiking club of the northern valleys and all their friends " * 2
    assert (await deliver(app, bot, update)).status_code == 200
    await wait_until_processed(app)
    return user


@pytest.mark.parametrize("viewport", VIEWPORTS)
async def test_my_plugins_page_with_a_run_now_form_and_a_finished_run(app, browser, long_titled, viewport):
    """Welcome's "Send a test greeting" form, with an error, then its result; Channel Analytics' run,
    whose output names the long-titled chat; and the Runs panel with that output unfolded."""
    tab = await Tab.open(browser, app.url, viewport)
    try:
        await tab.sign_in(long_titled.token, "/my-plugins")
        card = tab.page.get_by_role("article", name="Welcome Messages")
        await card.get_by_role("button", name="Send a test greeting").click()
        panel = card.get_by_role("region", name="Send a test greeting")
        await expect(panel.get_by_role("spinbutton", name="Chat id")).to_be_focused()
        await check_page(tab, "my-plugins-run-now-form")

        await panel.get_by_role("button", name="Send greeting").click()  # nothing filled in
        await expect(panel.get_by_role("textbox", name="Name")).to_have_attribute("aria-invalid", "true")
        await panel.get_by_role("spinbutton", name="Chat id").fill("-100200")
        await panel.get_by_role("textbox", name="Name").fill("Grace")
        await panel.get_by_role("button", name="Send greeting").click()
        await expect(panel.locator(".run-result")).to_contain_text("Succeeded")
        await check_page(tab, "my-plugins-run-now-result")

        analytics = tab.page.get_by_role("article", name="Channel Analytics")
        await analytics.get_by_role("button", name="Run now").click()
        await analytics.get_by_role("button", name="Run", exact=True).click()
        await expect(analytics.locator(".run-result pre")).to_contain_text("The weekend hiking club")
        await analytics.get_by_role("button", name="Runs").click()
        runs = analytics.get_by_role("region", name="Runs of Channel Analytics")
        await expect(runs.get_by_role("listitem").first).to_contain_text("Run now")
        await runs.get_by_role("listitem").first.get_by_text("Output").click()
        await expect(runs.locator("pre").first).to_contain_text("The weekend hiking club")
        await check_page(tab, "my-plugins-run-now-long-output")
    finally:
        await tab.close()


@pytest.fixture
async def failing(app, telegram):
    """A pro user whose webhook plugin fails (its URL is refused: loopback) until the breaker opens,
    and whose welcome plugin is off."""
    user = await app.create_user("ops@example.com", "pro")
    bot = await connect_bot(app, user, telegram)
    await install(
        app, user, "forward", {"url": "https://127.0.0.1/hook", "signingSecret": "a-signing-secret-0123456789"}
    )
    await install(app, user, "welcome")
    await app.graphql(
        'mutation { togglePlugin(pluginId: "%s", enabled: false) { id } }'
        % (await app.graphql('{ plugin(slug: "welcome") { id } }'))["plugin"]["id"],
        user=user,
    )
    for update_id in range(1, 8):
        assert (await deliver(app, bot, message_update(update_id))).status_code == 200
    await wait_until_processed(app)
    return user


@pytest.mark.parametrize("viewport", VIEWPORTS)
async def test_my_plugins_page_with_a_failing_plugin_its_runs_and_its_secret_setting(app, browser, failing, viewport):
    tab = await Tab.open(browser, app.url, viewport)
    try:
        await tab.sign_in(failing.token, "/my-plugins")
        card = tab.page.get_by_role("article", name="Forward to webhook")
        await expect(card.locator(".install-status")).to_have_text("Status: Failing")
        await card.get_by_role("button", name="Runs").click()
        await expect(card.locator(".run")).to_have_count(7)
        await card.get_by_role("button", name="Configure").click()
        await expect(card.get_by_role("textbox", name="Signing secret")).to_be_visible()
        await check_page(tab, "my-plugins-failing-runs")
    finally:
        await tab.close()
