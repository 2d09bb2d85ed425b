"""The welcome plugin greets new members through the Bot API, and what it sends is counted."""

from __future__ import annotations

from app.plugins.handlers.welcome import render
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
