"""The welcome plugin greets new members through the Bot API, and what it sends is counted."""

from __future__ import annotations

from app.plugins.handlers.welcome import render
from tests.support.installs_api import my_install, run_plugin, runs_of
from tests.support.runtime import (
    analytics_counts,
    connect_bot,
    deliver,
    install,
    messages_counted,
    wait_until_processed,
)
from tests.support.telegram_updates import message_update, new_members_update, user


def test_the_template_fills_first_name_and_keeps_unknown_placeholders():
    assert render("Hi {first_name}, see {rules}", first_name="Ada") == "Hi Ada, see {rules}"


async def test_new_members_are_greeted_through_the_gateway(app, telegram):
    owner = await app.create_user("host@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "welcome", {"message": "Welcome aboard, {first_name}!"})

    update = new_members_update(1, user(7, "Grace"), user(8, "Helper", is_bot=True), user(9, "Linus"), chat_id=-42)
    assert (await deliver(app, bot, update)).status_code == 200
    await wait_until_processed(app)

    sent = telegram.bot(bot.token).sent_messages
    assert [(int(m["chat_id"]), m["text"]) for m in sent] == [
        (-42, "Welcome aboard, Grace!"),
        (-42, "Welcome aboard, Linus!"),
    ]


async def test_only_the_configured_chats_get_greetings(app, telegram):
    owner = await app.create_user("host@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "welcome", {"chats": [-1]})
    await deliver(app, bot, new_members_update(1, user(7, "Grace"), chat_id=-2))
    await deliver(app, bot, new_members_update(2, user(8, "Linus"), chat_id=-1))
    await wait_until_processed(app)
    assert [m["text"] for m in telegram.bot(bot.token).sent_messages] == ["Welcome, Linus!"]


async def test_ordinary_messages_get_no_greeting(app, telegram):
    owner = await app.create_user("host@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "welcome")
    await deliver(app, bot, message_update(1))
    await wait_until_processed(app)
    assert telegram.bot(bot.token).sent_messages == []


async def test_sent_greetings_reach_analytics_as_message_sent(app, telegram):
    owner = await app.create_user("host@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "welcome")
    analytics = await install(app, owner, "analytics")

    await deliver(app, bot, new_members_update(1, user(7, "Grace"), chat_id=-42))
    await wait_until_processed(app)
    await wait_until_processed(app)  # the greeting's own message_sent event

    counts = await analytics_counts(app, analytics.id, -42)
    assert counts is not None and (counts["received"], counts["sent"]) == (1, 1)
    assert await messages_counted(app, analytics.id, -42) == 2


# --- "Send a test greeting" (runPlugin) and what an event's run answers ---------------------------


async def test_a_test_greeting_is_sent_as_configured_and_answers_its_message_id(app, telegram):
    owner = await app.create_user("host@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "welcome", {"message": "Hi {first_name}, read the rules"})

    first = await run_plugin(app, owner, "welcome", {"chatId": -42, "name": "Grace"})
    second = await run_plugin(app, owner, "welcome", {"chatId": -42, "name": "Linus"})

    sent = telegram.bot(bot.token).sent_messages
    assert [(m["chat_id"], m["text"]) for m in sent] == [
        (-42, "Hi Grace, read the rules"),
        (-42, "Hi Linus, read the rules"),
    ]
    assert [run["output"] for run in (first, second)] == [{"messageId": m["message"]["message_id"]} for m in sent]
    assert first["output"] != second["output"]  # the fake's own ids, one per message
    assert [(run["outcome"], run["trigger"], run["apiCalls"]) for run in (first, second)] == [
        ("SUCCEEDED", "STANDALONE", 1),
        ("SUCCEEDED", "STANDALONE", 1),
    ]


async def test_every_attempt_to_telegram_counts_retries_included(make_app, telegram):
    app = await make_app(send_retry_backoff_seconds=0.01)
    owner = await app.create_user("host@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "welcome")
    telegram.fail_next("sendMessage", 502, "Bad Gateway")

    run = await run_plugin(app, owner, "welcome", {"chatId": -42, "name": "Grace"})

    assert [a.status for a in telegram.sends(-42)] == [502, 200]
    [sent] = telegram.bot(bot.token).sent_messages
    assert (run["outcome"], run["output"], run["apiCalls"]) == (
        "SUCCEEDED",
        {"messageId": sent["message"]["message_id"]},
        2,
    )


async def test_a_greeting_telegram_refuses_fails_the_run_with_telegrams_words(app, telegram):
    owner = await app.create_user("host@example.com", "pro")
    await connect_bot(app, owner, telegram)
    await install(app, owner, "welcome")
    telegram.fail_next("sendMessage", 403, "Forbidden: bot is not a member of the supergroup chat")

    run = await run_plugin(app, owner, "welcome", {"chatId": -42, "name": "Grace"})

    assert run["outcome"] == "FAILED"
    assert "bot is not a member of the supergroup chat" in run["error"]
    assert (run["output"], run["apiCalls"]) == (None, 1)  # a 4xx is not tried again
    assert (await my_install(app, owner, "welcome"))["lastError"] == run["error"]


async def test_an_event_run_answers_whom_it_greeted_and_counts_each_send(make_app, telegram):
    app = await make_app(send_retry_backoff_seconds=0.01)
    owner = await app.create_user("host@example.com", "pro")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "welcome")
    telegram.fail_next("sendMessage", 500)  # the first greeting is sent on its second attempt

    update = new_members_update(1, user(7, "Grace"), user(8, "Helper", is_bot=True), user(9, "Linus"), chat_id=-42)
    await deliver(app, bot, update)
    await wait_until_processed(app)

    [run] = await runs_of(app, owner, "welcome")
    assert (run["trigger"], run["outcome"]) == ("EVENT", "SUCCEEDED")
    assert run["output"] == {"greeted": [7, 9]}
    assert run["apiCalls"] == 3
