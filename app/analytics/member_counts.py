"""Reading chats' member counts in the analytics schedules' runs: getChatMemberCount through the
run's gateways, so in the bot's send queue and under its limits like any other call, and what to
write of it. An event's run only asks for a reading (`mark_due`): it never waits for Telegram."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from app.analytics import member_store
from app.analytics.member_rules import MEMBERS_TOPIC, unavailable_reason
from app.analytics.member_store import ChatState, DueChat
from app.errors import PlugboardError
from app.gateways.models import GatewayType
from app.gateways.sendqueue import SendRateLimited
from app.gateways.telegram import TelegramRefused
from app.plugins.contract import BatchedWrite, PluginContext

ACTION = "getChatMemberCount"
# Chats one schedule run reads at most (the rest, at its next run): far within a run's timeout
# under the send limits, one chat apart from another.
MAX_READS_PER_RUN = 50
# The share of the run's time left that one read may take, and that a schedule run may spend
# starting reads: a slow Bot API must never make the run outlive its timeout, which would lose the
# readings it made. What is not read now is read at a later hour. A context without a bound (none
# of the executor's) gets the fallbacks.
SHARE_OF_RUN = 0.5
READ_SECONDS = 3.0
SCHEDULE_SECONDS = 5.0


def _bound(ctx: PluginContext, fallback: float) -> float:
    left = ctx.seconds_left()
    return fallback if left is None else left * SHARE_OF_RUN


def counted_chat(chat_type: str | None) -> bool:
    """Groups, supergroups and channels have member counts worth reading; a private chat does not."""
    return chat_type != "private"


async def read(ctx: PluginContext, chat: DueChat) -> ChatState | None:
    """A reading of the chat's count, or that it is unavailable; None when nothing was learnt (no
    active bot, the network, the send queue's limits): the daily schedule tries again."""
    gateway_id = chat.gateway_id
    if gateway_id is None:
        gateway = await ctx.gateways.get(GatewayType.TELEGRAM_BOT)
        if gateway is None:
            return None
        gateway_id = gateway.id
    seconds = _bound(ctx, READ_SECONDS)
    try:
        async with asyncio.timeout(seconds):
            count = await ctx.gateways.execute(gateway_id, ACTION, {"chat_id": chat.chat_id})
    except TimeoutError:
        ctx.log.info("member count of chat %s not read: Telegram took longer than %.3g s", chat.chat_id, seconds)
        return None
    except TelegramRefused as exc:
        reason = unavailable_reason(exc.error_code, exc.description)
        if reason is None:
            ctx.log.warning("member count of chat %s not read: %s", chat.chat_id, exc.message)
            return None
        return ChatState(chat.chat_id, gateway_id, chat.title, _now(ctx), unavailable=reason)
    except SendRateLimited:
        raise
    except PlugboardError as exc:
        ctx.log.info("member count of chat %s not read: %s", chat.chat_id, exc.message)
        return None
    if type(count) is not int or count < 0:
        ctx.log.warning("member count of chat %s not read: Telegram answered %r", chat.chat_id, type(count).__name__)
        return None
    return ChatState(chat.chat_id, gateway_id, chat.title, _now(ctx), count=count)


def record(ctx: PluginContext, state: ChatState) -> None:
    """Writes the state with the run, and tells the summaries' subscribers."""
    ctx.write(BatchedWrite(member_store.record_states, (ctx.install_id, state)))
    ctx.notify()
    ctx.notify(f"chat:{state.chat_id}")
    ctx.notify(MEMBERS_TOPIC)  # the open summaries read their member counts again


def mark_due(ctx: PluginContext, chat: DueChat, *, available: bool = False) -> None:
    """Asks for a reading of the chat soon (the `member-reads` schedule), written with the run:
    the run that saw the chat never waits for Telegram, so its chat's next events do not either.
    `available`: the bot is known to be in the chat (it was just added)."""
    record(ctx, ChatState(chat.chat_id, chat.gateway_id, chat.title, _now(ctx), available=available, due=True))


async def read_soon(ctx: PluginContext) -> dict[str, int]:
    """The `member-reads` schedule: reads the chats that asked for a reading. One that could not
    be read is left to the daily schedule, so an unreachable Telegram is not asked every minute."""
    due = await member_store.chats_due_soon(ctx.install_id, MAX_READS_PER_RUN)
    return {"due": len(due), **await _read_all(ctx, due, failed_is_settled=True)}


async def read_due(ctx: PluginContext, fired_at: datetime) -> dict[str, int]:
    """The `members` schedule: reads the chats not read yet on `fired_at`'s UTC day (each chat at
    most once a UTC day), until the send queue would make the run wait too long."""
    day_start = datetime.combine(fired_at.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    due = await member_store.due_chats(ctx.install_id, day_start, MAX_READS_PER_RUN)
    return {"due": len(due), **await _read_all(ctx, due, failed_is_settled=False)}


async def _read_all(ctx: PluginContext, chats: list[DueChat], *, failed_is_settled: bool) -> dict[str, int]:
    read_now = unavailable = 0
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + _bound(ctx, SCHEDULE_SECONDS)
    for chat in chats:
        if loop.time() >= stop_at:
            break
        try:
            state = await read(ctx, chat)
        except SendRateLimited as exc:
            ctx.log.info("member counts: stopped for now: %s", exc.message)
            break
        if state is None and failed_is_settled:
            state = ChatState(chat.chat_id, chat.gateway_id, chat.title, _now(ctx), due=False)
        if state is None:
            continue
        record(ctx, state)
        read_now += state.count is not None
        unavailable += state.unavailable is not None
    return {"read": read_now, "unavailable": unavailable}


def _now(ctx: PluginContext) -> datetime:
    return ctx.now().astimezone(UTC)
