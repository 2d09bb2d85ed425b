"""Secret settings (`"writeOnly": true`) in the settings form: a password input that starts empty,
"Set" or "Not set" beside it; left empty it keeps the stored secret, typed in it replaces it, and
"Clear" removes it. The secret itself never reaches the browser."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from playwright.async_api import expect

from app.plugins.contract import PluginDefinition, PluginHandler
from app.plugins.models import Plugin, UserPlugin
from app.plugins.sealed_config import open_config
from app.secrets_at_rest import is_sealed
from tests.support.runtime import install
from tests.web.browser import Tab, sent_variable

SECRET = "first-signing-secret-0123456789"
NEW_SECRET = "second-signing-secret-9876543210"
URL = "https://hooks.example.com/in"


class NotifyPlugin(PluginHandler):
    """A plugin whose secret is optional, so that it can be cleared."""

    definition: ClassVar[PluginDefinition] = PluginDefinition(
        slug="notify",
        name="Notify",
        description="Test plugin with an optional API key",
        config_schema={
            "type": "object",
            "properties": {
                "channel": {"type": "string", "title": "Channel", "default": "#general", "maxLength": 50},
                "apiKey": {"type": "string", "title": "API key", "writeOnly": True, "minLength": 8, "maxLength": 64},
            },
        },
    )


async def stored_config(app, slug: str, user) -> dict[str, Any]:
    """The config the database holds, its secrets opened (stored, each is sealed: never plain)."""
    with app.db():
        plugin = await Plugin.get(slug=slug)
        row = await UserPlugin.get(plugin_id=plugin.id, user_id=user.id)
    secret_names = [name for name, field in plugin.config_schema["properties"].items() if field.get("writeOnly")]
    assert all(is_sealed(row.config[name]) for name in secret_names if name in row.config), row.config
    return open_config(row.id, row.config)


async def test_a_secret_is_shown_as_set_kept_when_left_empty_and_replaced_when_typed(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await install(app, user, "forward", {"url": URL, "signingSecret": SECRET})
    saves = sent_variable(tab, "updatePluginConfig", "config")
    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Forward to webhook")
    await card.get_by_role("button", name="Configure").click()

    secret = card.get_by_role("textbox", name="Signing secret")
    await expect(secret).to_have_attribute("type", "password")
    await expect(secret).to_have_value("")
    await expect(secret).to_have_accessible_description(re.compile(r"^Set Leave this empty to keep it"))
    await expect(card.get_by_role("textbox", name="Webhook URL")).to_have_value(URL)
    await expect(card.get_by_role("button", name="Clear")).to_have_count(0)  # required: it can only be replaced
    html = await tab.page.content()
    assert "[object Object]" not in html and "$secret" not in html and SECRET not in html

    # Another setting changes; the secret, left empty, stays as it was.
    keywords = card.get_by_role("group", name="Keywords")
    await keywords.get_by_role("button", name="Add item").click()
    await keywords.get_by_role("textbox").last.fill("deploy")
    await card.get_by_role("button", name="Save").click()
    await expect(card.get_by_role("status")).to_have_text("Saved")
    assert saves[-1] == {"url": URL, "keywords": ["deploy"]}  # left out: kept
    assert await stored_config(app, "forward", user) == {"url": URL, "signingSecret": SECRET, "keywords": ["deploy"]}

    # Typed in, it replaces the stored one; the field is empty again and says "Set".
    await secret.fill(NEW_SECRET)
    await card.get_by_role("button", name="Save").click()
    await expect(secret).to_have_value("")
    await expect(secret).to_have_accessible_description(re.compile(r"^Set "))
    assert (await stored_config(app, "forward", user))["signingSecret"] == NEW_SECRET

    # Too short: the server's error is shown beside the field, and nothing changes.
    await secret.fill("short")
    await card.get_by_role("button", name="Save").click()
    await expect(secret).to_have_attribute("aria-invalid", "true")
    await expect(secret).to_have_accessible_description(re.compile("Must be at least 16 characters long"))
    assert (await stored_config(app, "forward", user))["signingSecret"] == NEW_SECRET

    await tab.page.reload()
    await card.get_by_role("button", name="Configure").click()
    await expect(secret).to_have_value("")
    await expect(secret).to_have_accessible_description(re.compile(r"^Set "))
    assert SECRET not in await tab.page.content() and NEW_SECRET not in await tab.page.content()
    tab.assert_no_console_errors()


async def test_an_optional_secret_is_cleared_with_clear_and_set_again(make_app, browser):
    app = await make_app(handlers=[NotifyPlugin()])
    user = await app.create_user("ada@example.com", "pro")
    await install(app, user, "notify", {"apiKey": "key-0123456789"})
    tab = await Tab.open(browser, app.url)
    try:
        await tab.sign_in(user.token)
        card = tab.page.get_by_role("article", name="Notify")
        await card.get_by_role("button", name="Configure").click()
        key = card.get_by_role("textbox", name="API key")
        await expect(key).to_have_accessible_description(re.compile(r"^Set "))

        clear = card.get_by_role("button", name="Clear API key")
        await clear.click()
        await expect(key).to_be_disabled()
        await expect(key).to_have_accessible_description(re.compile(r"^Clearing It is cleared when you save"))
        await card.get_by_role("button", name="Keep API key").click()  # changed one's mind
        await expect(key).to_be_enabled()
        await expect(key).to_have_accessible_description(re.compile(r"^Set "))
        assert (await stored_config(app, "notify", user))["apiKey"] == "key-0123456789"

        saves = sent_variable(tab, "updatePluginConfig", "config")
        await card.get_by_role("button", name="Clear API key").click()
        await card.get_by_role("button", name="Save").click()
        await expect(card.get_by_role("status")).to_have_text("Saved")
        await expect(key).to_have_accessible_description(re.compile(r"^Not set "))
        await expect(card.get_by_role("button", name="Clear API key")).to_have_count(0)
        assert saves == [{"channel": "#general", "apiKey": None}]
        assert await stored_config(app, "notify", user) == {"channel": "#general"}

        await tab.page.reload()
        await card.get_by_role("button", name="Configure").click()
        await expect(key).to_have_accessible_description(re.compile(r"^Not set "))
        await key.fill("another-key-42")
        await card.get_by_role("button", name="Save").click()
        await expect(key).to_have_accessible_description(re.compile(r"^Set "))
        assert await stored_config(app, "notify", user) == {"channel": "#general", "apiKey": "another-key-42"}
        tab.assert_no_console_errors()
    finally:
        await tab.close()
