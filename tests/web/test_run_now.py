""" "Run now" on /my-plugins: a plugin that takes input (its inputSchema) gets a form generated from
that schema, as Configure's is from the configSchema; submitting it runs the install once, now
(runPlugin), and the panel shows the finished run: its outcome, its output, its duration and API
calls, and its error when it failed. Forward calls it "Send test" (a signed test message to the
user's webhook, here a loopback HTTPS stand-in), Welcome "Send a test greeting" (through the fake
Telegram). It is offered while the install runs, and otherwise says why."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from playwright.async_api import expect

from app.plugins.contract import PluginContext, PluginDefinition, PluginHandler
from app.plugins.handlers.forward import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.support.runtime import connect_bot, install
from tests.web.browser import Tab, sent_variable

SECRET = "run-now-signing-secret-0123456"
RUNS = """{ myPlugins { plugin { slug } executionCount runs(first: 100) { edges { node {
  outcome trigger eventLabel output apiCalls error canRetry
} } } } }"""


async def runs_of(app, user, slug: str) -> list[dict[str, Any]]:
    mine = {i["plugin"]["slug"]: i for i in (await app.graphql(RUNS, user=user))["myPlugins"]}
    return [edge["node"] for edge in mine[slug]["runs"]["edges"]]


async def test_send_test_posts_a_signed_test_message_to_the_webhook_and_shows_the_run(
    forwarding, hook, browser, telegram
):
    app = forwarding
    user = await app.create_user("ops@example.com", "pro")
    await connect_bot(app, user, telegram)
    await install(app, user, "forward", {"url": hook.url("/in"), "signingSecret": SECRET})
    hook.respond(202)
    tab = await Tab.open(browser, app.url)
    try:
        sent = sent_variable(tab, "runPlugin", "input")
        await tab.sign_in(user.token)
        card = tab.page.get_by_role("article", name="Forward to webhook")
        open_it = card.get_by_role("button", name="Send test")
        await open_it.click()
        await expect(open_it).to_have_attribute("aria-expanded", "true")
        panel = card.get_by_role("region", name="Send test")
        text = panel.get_by_role("textbox", name="Text")
        await expect(text).to_be_focused()
        await expect(text).to_have_accessible_description(re.compile("The test message's text"))
        await text.fill("Deploy finished")
        await panel.get_by_role("button", name="Send", exact=True).click()

        result = panel.locator(".run-result")
        await expect(result).to_contain_text("Succeeded")
        await expect(panel.get_by_role("status").filter(has_text="The run succeeded.")).to_have_count(1)
        [received] = hook.received
        delivered = json.loads(received.body)
        assert (delivered["text"], delivered["test"], delivered["chat"]["title"]) == ("Deploy finished", True, None)
        assert verify(
            SECRET,
            received.headers[TIMESTAMP_HEADER.lower()],
            received.body,
            received.headers[SIGNATURE_HEADER.lower()],
        )
        assert sent == [{"text": "Deploy finished"}]  # the empty chat title is left out

        [run] = await runs_of(app, user, "forward")
        assert (run["trigger"], run["eventLabel"], run["apiCalls"], run["canRetry"]) == (
            "STANDALONE",
            "Run now",
            1,
            False,
        )
        output = result.locator("pre")
        await expect(output).to_contain_text('"status": 202')
        assert json.loads(await output.inner_text()) == run["output"]
        figures = result.locator("dl")
        await expect(figures).to_contain_text(re.compile(r"Duration(under )?[\d.]+ m?s"))
        await expect(figures).to_contain_text("API calls1")
        await expect(figures).not_to_contain_text("Tokens")  # the run reported none
        await expect(card.locator("dl.stats")).to_contain_text("Runs1")  # the card's counts follow
        await tab.screenshot("my-plugins-send-test")

        # The webhook fails: the run fails, and the page says why.
        hook.respond(503)
        await panel.get_by_role("button", name="Send", exact=True).click()
        await expect(result).to_contain_text("Failed")
        await expect(result).to_contain_text(f"Not delivered: localhost:{hook.port} answered 503")
        await expect(result.locator("pre")).to_have_count(0)  # it answered nothing
        await expect(result.locator("dl")).to_contain_text("API calls1")
        assert len(hook.received) == 2
        assert [r["outcome"] for r in await runs_of(app, user, "forward")] == ["FAILED", "SUCCEEDED"]

        await panel.get_by_role("button", name="Close").click()
        await expect(panel).to_be_hidden()
        await expect(open_it).to_be_focused()
        await expect(open_it).to_have_attribute("aria-expanded", "false")
        tab.assert_no_console_errors()
    finally:
        await tab.close()


async def test_send_a_test_greeting_sends_it_through_telegram_and_shows_its_message_id(app, tab, telegram):
    user = await app.create_user("host@example.com", "pro")
    bot = await connect_bot(app, user, telegram)
    await install(app, user, "welcome", {"message": "Hi {first_name}, welcome aboard!"})
    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Welcome Messages")
    await card.get_by_role("button", name="Runs").click()
    runs = card.get_by_role("region", name="Runs of Welcome Messages")
    await expect(runs).to_contain_text("No runs yet.")

    await card.get_by_role("button", name="Send a test greeting").click()
    panel = card.get_by_role("region", name="Send a test greeting")
    await panel.get_by_role("spinbutton", name="Chat id").fill("-100200")
    await panel.get_by_role("textbox", name="Name").fill("Grace")
    await panel.get_by_role("button", name="Send greeting").click()

    result = panel.locator(".run-result")
    await expect(result).to_contain_text("Succeeded")
    [sent] = telegram.bot(bot.token).sent_messages
    assert (sent["chat_id"], sent["text"]) == (-100200, "Hi Grace, welcome aboard!")
    await expect(result.locator("pre")).to_have_text(json.dumps({"messageId": sent["message"]["message_id"]}, indent=2))
    await expect(result.locator("dl")).to_contain_text("API calls1")
    # The run heads the open run list, as a run on demand: no Retry.
    await expect(runs.get_by_role("listitem")).to_have_count(1)
    await expect(runs.get_by_role("listitem").first).to_contain_text("Run now")
    await expect(runs.get_by_role("button", name="Retry")).to_have_count(0)
    tab.assert_no_console_errors()


async def test_input_the_server_refuses_is_shown_beside_its_field_and_nothing_runs(app, tab, telegram):
    user = await app.create_user("host@example.com", "pro")
    bot = await connect_bot(app, user, telegram)
    await install(app, user, "welcome")
    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Welcome Messages")
    await card.get_by_role("button", name="Send a test greeting").click()
    panel = card.get_by_role("region", name="Send a test greeting")
    name = panel.get_by_role("textbox", name="Name")
    await expect(name).to_have_attribute("aria-required", "true")
    await panel.get_by_role("spinbutton", name="Chat id").fill("-100200")
    await panel.get_by_role("button", name="Send greeting").click()

    await expect(name).to_have_attribute("aria-invalid", "true")
    await expect(name).to_have_accessible_description(re.compile("Is required."))
    await expect(name).to_be_focused()
    await expect(panel.locator(".run-result")).to_be_hidden()
    assert telegram.bot(bot.token).sent_messages == []
    assert await runs_of(app, user, "welcome") == []

    await name.fill("Linus")  # fixed: its error goes at once
    await expect(name).not_to_have_attribute("aria-invalid", "true")
    await panel.get_by_role("button", name="Send greeting").click()
    await expect(panel.locator(".run-result")).to_contain_text("Succeeded")
    assert [m["text"] for m in telegram.bot(bot.token).sent_messages] == ["Welcome, Linus!"]
    tab.assert_no_console_errors()


async def test_it_is_offered_while_the_install_runs_and_otherwise_says_why(app, tab, telegram):
    user = await app.create_user("host@example.com", "pro")
    await install(app, user, "welcome")  # no bot yet
    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Welcome Messages")
    await card.get_by_role("button", name="Send a test greeting").click()
    panel = card.get_by_role("region", name="Send a test greeting")
    await expect(panel).to_contain_text(
        "Send a test greeting works once the plugin runs. Waiting for a Telegram bot: connect one and this plugin starts."
    )
    await expect(panel.get_by_role("button", name="Send greeting")).to_have_count(0)

    await connect_bot(app, user, telegram)
    await tab.page.reload()
    await card.get_by_role("button", name="Send a test greeting").click()
    chat = panel.get_by_role("spinbutton", name="Chat id")
    await chat.fill("-100200")

    # Turned off, it cannot run: the form goes, and comes back as it was when it is turned on.
    await card.get_by_role("switch", name="Enabled").click()
    await expect(panel).to_contain_text("Send a test greeting works while the plugin is on: turn on Enabled first.")
    await expect(chat).to_be_hidden()
    await card.get_by_role("switch", name="Enabled").click()
    await expect(chat).to_have_value("-100200")
    await expect(panel).not_to_contain_text("turn on Enabled first")
    tab.assert_no_console_errors()


class EchoPlugin(PluginHandler):
    """Runs on demand and answers its input with a line too long for a phone's screen."""

    definition: ClassVar[PluginDefinition] = PluginDefinition(
        slug="echo",
        name="Echo",
        description="Test plugin that answers what it is given",
        input_schema={
            "type": "object",
            "properties": {"word": {"type": "string", "title": "Word", "maxLength": 20}},
            "required": ["word"],
        },
        output_schema={"type": "object"},
    )

    async def run(self, input: dict[str, Any], ctx: PluginContext) -> Any:
        return {"echo": input["word"], "line": " ".join([input["word"]] * 40)}


class QuietPlugin(PluginHandler):
    """Runs only on its events: it has no input schema."""

    definition: ClassVar[PluginDefinition] = PluginDefinition(
        slug="quiet", name="Quiet", description="Test plugin that takes no input"
    )


async def test_a_long_output_scrolls_inside_the_panel_and_a_plugin_without_input_offers_no_run(make_app, browser):
    app = await make_app(handlers=[EchoPlugin(), QuietPlugin()])
    user = await app.create_user("ada@example.com", "pro")
    await install(app, user, "echo")
    await install(app, user, "quiet")
    tab = await Tab.open(browser, app.url, {"width": 390, "height": 844})
    try:
        await tab.sign_in(user.token)
        quiet = tab.page.get_by_role("article", name="Quiet")
        await expect(quiet.get_by_role("button", name="Configure")).to_be_visible()
        await expect(quiet.get_by_role("button", name="Run now")).to_have_count(0)

        card = tab.page.get_by_role("article", name="Echo")
        await card.get_by_role("button", name="Run now").click()
        panel = card.get_by_role("region", name="Run now")
        await panel.get_by_role("textbox", name="Word").fill("supercalifragilistic")
        await panel.get_by_role("button", name="Run", exact=True).click()
        output = panel.locator("pre")
        await expect(output).to_contain_text('"echo": "supercalifragilistic"')
        scroll = await output.evaluate("(pre) => ({ scrollWidth: pre.scrollWidth, clientWidth: pre.clientWidth })")
        assert scroll["scrollWidth"] > scroll["clientWidth"]  # it scrolls inside itself…
        assert await tab.overflow() is None  # …and the page does not
        await tab.screenshot("my-plugins-run-now-long-output")
        tab.assert_no_console_errors()
    finally:
        await tab.close()
