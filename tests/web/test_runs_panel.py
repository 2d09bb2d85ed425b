"""An install's runs on /my-plugins: newest first, "Load more" for older ones, and "Retry" on a
failed run, which runs its stored event again and shows the new run. The plugin is the built-in
`forward`, posting to a loopback HTTPS stand-in that the allow-list lets through; it answers 503
until the test makes it answer 200."""

from __future__ import annotations

import json
import re

from playwright.async_api import expect

from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import message_update, new_members_update
from tests.support.telegram_updates import user as telegram_user
from tests.web.browser import Tab

SECRET = "runs-panel-signing-secret-0123"
RUNS = """{ myPlugins { status runs(first: 100) { edges { node {
  id outcome trigger eventType chatId error retryOf canRetry
} } } } }"""
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
FIGURES = r"(under )?[\d.]+ m?s · \d+ API calls?"  # a run's duration and its API calls


def chat_of(update_id: int) -> int:
    return -100_000 - update_id


async def runs_of(app, user) -> tuple[str, list[dict]]:
    [mine] = (await app.graphql(RUNS, user=user))["myPlugins"]
    return mine["status"], [edge["node"] for edge in mine["runs"]["edges"]]


async def shown_ids(card) -> list[str]:
    return await card.locator(".run").evaluate_all("rows => rows.map((row) => row.dataset.runId)")


async def test_runs_page_newest_first_and_a_failed_run_is_retried_from_the_page(forwarding, hook, browser, telegram):
    app = forwarding
    user = await app.create_user("ops@example.com", "pro")
    bot = await connect_bot(app, user, telegram)
    await install(app, user, "forward", {"url": hook.url("/in"), "signingSecret": SECRET})
    hook.respond(503)
    # One chat per update, so that a run's chat tells its update (runs recorded in one commit share
    # their time, and among those the order is the server's, not the updates').
    for update_id in range(1, 13):
        update = message_update(update_id, chat_id=chat_of(update_id))
        assert (await deliver(app, bot, update)).status_code == 200
    await wait_until_processed(app)
    status, runs = await runs_of(app, user)
    assert (
        status == "FAILING"
    )  # the breaker opened after 5 failures in a row (or more: a lane runs its events back to back)
    assert len(runs) == 12
    failed = [run for run in runs if run["outcome"] == "FAILED"]
    assert failed and failed[-1] is runs[-1]  # the oldest run failed
    assert sorted(int(run["chatId"]) for run in runs) == sorted(map(chat_of, range(1, 13)))

    tab = await Tab.open(browser, app.url)
    try:
        await tab.sign_in(user.token)
        card = tab.page.get_by_role("article", name="Forward to webhook")
        await expect(card.locator(".install-status")).to_have_text("Status: Failing")
        await expect(card).to_contain_text(re.compile(f"Next try: {TIME}"))
        await expect(card).to_contain_text(re.compile(r"Paused after \d+ failed runs in a row"))

        history = card.get_by_role("button", name="Runs")
        await history.click()
        await expect(history).to_have_attribute("aria-expanded", "true")
        panel = card.get_by_role("region", name="Runs of Forward to webhook")
        rows = panel.get_by_role("listitem")
        await expect(rows).to_have_count(10)
        assert await shown_ids(card) == [run["id"] for run in runs[:10]]
        oldest_failure = failed[-1]
        first_row = rows.first
        await expect(first_row).to_contain_text("Message")
        await expect(first_row).to_contain_text("telegram.message")
        await expect(first_row).to_contain_text(re.compile(TIME))
        await expect(first_row).to_contain_text(re.compile(rf"Chat {runs[0]['chatId']} · {FIGURES} · {TIME}"))
        shown_failure = panel.locator(f'[data-run-id="{failed[0]["id"]}"]')
        await expect(shown_failure).to_contain_text("Failed")
        await expect(shown_failure).to_contain_text(f"Not delivered: localhost:{hook.port} answered 503")

        load_more = panel.get_by_role("button", name="Load more")
        await load_more.click()
        await expect(rows).to_have_count(12)
        await expect(load_more).to_be_hidden()
        await expect(rows.nth(10)).to_be_focused()  # the first of the older runs
        assert await shown_ids(card) == [run["id"] for run in runs]

        # The webhook works again: retry the oldest failure, with the keyboard.
        hook.respond(200)
        delivered_before = len(hook.received)
        original = panel.locator(f'[data-run-id="{oldest_failure["id"]}"]')
        await original.get_by_role("button", name="Retry").focus()
        await tab.page.keyboard.press("Enter")
        retried = original.get_by_text("Retried: succeeded")
        await expect(retried).to_be_visible()
        await expect(retried).to_be_focused()
        await expect(rows).to_have_count(13)
        await expect(rows.first).to_contain_text("Succeeded")
        await expect(rows.first).to_contain_text("Retry · retries an earlier run")
        await expect(card.locator(".install-status")).to_have_text("Status: Active")  # a success closes the breaker
        await expect(card.get_by_text("Next try:")).to_have_count(0)

        _, after = await runs_of(app, user)
        assert after[0]["retryOf"] == oldest_failure["id"] and after[0]["outcome"] == "SUCCEEDED"
        assert await shown_ids(card) == [run["id"] for run in after]
        await tab.screenshot("my-plugins-run-retried")
        assert len(hook.received) == delivered_before + 1
        delivered = json.loads(hook.received[-1].body)  # the run's own event
        assert delivered["chat"]["id"] == int(oldest_failure["chatId"])
        assert chat_of(delivered["updateId"]) == delivered["chat"]["id"]

        # After a reload the retried run still says so, and offers no second retry.
        await tab.page.reload()
        await card.get_by_role("button", name="Runs").click()
        await expect(rows).to_have_count(10)
        await panel.get_by_role("button", name="Load more").click()
        await expect(original).to_contain_text("Retried: succeeded")
        await expect(original.get_by_role("button", name="Retry")).to_have_count(0)
        tab.assert_no_console_errors()
    finally:
        await tab.close()


RUN_PLUGIN = "mutation($id: ID!, $input: JSON) { runPlugin(pluginId: $id, input: $input) { id outcome output } }"
RUN_CHAIN = "mutation($steps: [ChainStepInput!]!) { runChain(steps: $steps) { steps { id outcome output } } }"


async def test_each_run_shows_its_trigger_its_api_calls_and_its_output_folded(app, tab, telegram):
    """Runs for events, on demand (runPlugin) and as a chain's step: each says why it ran and how
    many API calls it made, and its output (if any) is folded under "Output"; a run on demand that
    failed offers no Retry (retryRun runs an event again, and it had none)."""
    user = await app.create_user("host@example.com", "pro")
    bot = await connect_bot(app, user, telegram)
    await install(app, user, "welcome")
    welcome = (await app.graphql('{ plugin(slug: "welcome") { id } }'))["plugin"]["id"]
    for update in (new_members_update(1, telegram_user(7, "Grace")), message_update(2)):
        assert (await deliver(app, bot, update)).status_code == 200
        await wait_until_processed(app)
    greeting = {"chatId": -100200, "name": "Ada"}
    on_demand = (await app.graphql(RUN_PLUGIN, {"id": welcome, "input": greeting}, user=user))["runPlugin"]
    telegram.fail_next("sendMessage", 400, "Bad Request: chat not found")
    refused = (await app.graphql(RUN_PLUGIN, {"id": welcome, "input": greeting}, user=user))["runPlugin"]
    chained = await app.graphql(RUN_CHAIN, {"steps": [{"pluginId": welcome, "input": greeting}]}, user=user)
    [step] = chained["runChain"]["steps"]
    assert (on_demand["outcome"], refused["outcome"], step["outcome"]) == ("SUCCEEDED", "FAILED", "SUCCEEDED")
    _, runs = await runs_of(app, user)
    [message, joined] = [run for run in runs if run["trigger"] == "EVENT"]  # newest first

    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Welcome Messages")
    await card.get_by_role("button", name="Runs").click()
    panel = card.get_by_role("region", name="Runs of Welcome Messages")
    await expect(panel.get_by_role("listitem")).to_have_count(5)

    def row(run):
        return panel.locator(f'[data-run-id="{run["id"]}"]')

    await expect(row(step)).to_contain_text(re.compile(rf"Chain step.* · 1 API call · Step 1 of a chain · {TIME}"))
    await expect(row(refused)).to_contain_text(re.compile(rf"Failed\s*Run now.* · 1 API call · On demand · {TIME}"))
    await expect(row(refused)).to_contain_text("chat not found")
    await expect(row(refused).get_by_role("button", name="Retry")).to_have_count(0)
    await expect(row(refused).get_by_text("Output", exact=True)).to_have_count(0)  # it answered nothing
    await expect(row(joined)).to_contain_text(re.compile(rf"Message\s*telegram\.message.* · 1 API call · {TIME}"))
    await expect(row(message)).to_contain_text(re.compile(rf" · 0 API calls · {TIME}"))
    await expect(row(message).get_by_text("Output", exact=True)).to_have_count(0)

    # Folded until asked for; then pretty JSON, as the run answered it.
    for run, output in ((on_demand, on_demand["output"]), (joined, {"greeted": [7]})):
        block = row(run).locator("pre")
        await expect(block).to_be_hidden()
        await row(run).get_by_text("Output", exact=True).click()
        await expect(block).to_be_visible()
        await expect(block).to_have_text(json.dumps(output, indent=2))
    assert on_demand["output"] == {"messageId": telegram.bot(bot.token).sent_messages[1]["message"]["message_id"]}
    tab.assert_no_console_errors()


async def test_an_install_without_runs_says_so(app, tab):
    user = await app.create_user("ada@example.com", "pro")
    await install(app, user, "welcome")
    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Welcome Messages")
    await card.get_by_role("button", name="Runs").click()
    panel = card.get_by_role("region", name="Runs of Welcome Messages")
    await expect(panel).to_contain_text("No runs yet.")
    await expect(panel.get_by_role("button", name="Load more")).to_be_hidden()
    await card.get_by_role("button", name="Runs").click()
    await expect(panel).to_be_hidden()
    tab.assert_no_console_errors()


async def test_a_retry_the_server_refuses_is_explained_and_runs_nothing(app, tab, telegram):
    user = await app.create_user("ops@example.com", "pro")
    bot = await connect_bot(app, user, telegram)
    # Loopback, and no allow-list here: every delivery is refused.
    await install(app, user, "forward", {"url": "https://127.0.0.1/hook", "signingSecret": SECRET})
    assert (await deliver(app, bot, message_update(1))).status_code == 200
    await wait_until_processed(app)
    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Forward to webhook")
    await card.get_by_role("switch", name="Enabled").click()
    await expect(card.locator(".install-status")).to_have_text("Status: Off")

    await card.get_by_role("button", name="Runs").click()
    panel = card.get_by_role("region", name="Runs of Forward to webhook")
    rows = panel.get_by_role("listitem")
    await expect(rows).to_have_count(1)
    row = rows.first
    await expect(row).to_contain_text("Not delivered: 127.0.0.1 is refused: it is a loopback address")
    await row.get_by_role("button", name="Retry").click()
    await expect(panel.get_by_role("alert")).to_have_text(re.compile(r"^That was not accepted: The plugin is DISABLED"))
    await expect(row.get_by_role("button", name="Retry")).to_be_enabled()
    await expect(rows).to_have_count(1)
    _, runs = await runs_of(app, user)
    assert len(runs) == 1
    tab.assert_no_console_errors()


async def box(locator) -> dict[str, float]:
    found = await locator.bounding_box()
    assert found is not None
    return found


async def test_runs_open_beside_the_card_name_their_chats_and_keep_the_card_in_view(app, tab, telegram):
    """On a desktop (1280 px) the runs take the row's width beside the card's summary, which stays
    on screen however long the list; each run names its chat as the analytics widget does."""
    user = await app.create_user("ada@example.com", "pro")
    bot = await connect_bot(app, user, telegram)
    await install(app, user, "analytics")
    await install(app, user, "welcome")
    for update_id in range(1, 11):
        update = message_update(update_id, chat_id=-100_200)
        update["message"]["chat"]["title"] = "Weekend Hikers"
        assert (await deliver(app, bot, update)).status_code == 200
    await wait_until_processed(app)
    await tab.sign_in(user.token)
    card = tab.page.get_by_role("article", name="Welcome Messages")
    closed = await box(card)

    await card.get_by_role("button", name="Runs").click()
    panel = card.get_by_role("region", name="Runs of Welcome Messages")
    rows = panel.get_by_role("listitem")
    await expect(rows).to_have_count(10)
    await expect(rows.first).to_contain_text(re.compile(rf"^.*Weekend Hikers · {FIGURES} · {TIME}"))
    await expect(panel).not_to_contain_text("Chat -100200")
    summary, runs = await box(card.locator(".card__summary")), await box(panel)
    assert runs["x"] >= summary["x"] + summary["width"] and runs["width"] > 1.5 * closed["width"]

    await rows.last.scroll_into_view_if_needed()
    await expect(card.get_by_role("heading", name="Welcome Messages", exact=True)).to_be_in_viewport()
    await expect(card.get_by_role("button", name="Runs")).to_be_in_viewport()
    await card.get_by_role("button", name="Runs").click()
    await expect(panel).to_be_hidden()
    assert (await box(card))["width"] == closed["width"]
    tab.assert_no_console_errors()
