"""Hands each event to the installs that should see it: the gateway owner's, enabled, of an
active plugin that handles the event, and whose required gateway types the owner has active."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime

from aiogram.types import Message, Update

from app.accounts.context import ServiceContext
from app.accounts.models import Plan
from app.gateways import service as gateways
from app.plugins.contract import (
    ChatMemberEvent,
    ExecutionContext,
    ExecutionResult,
    MessageSentEvent,
    PluginEvent,
    PluginHandler,
    ScheduleTriggerEvent,
    TelegramCallbackEvent,
    TelegramMessageEvent,
)
from app.plugins.executor import EventKey, Executor
from app.plugins.models import UserPlugin
from app.plugins.registry import PluginRegistry


async def run_all(runs: list[Awaitable[ExecutionResult]]) -> list[ExecutionResult]:
    """Every run to its end, then the first failure of our own (a plugin's is in its result): a
    caller that retries the event never overlaps runs still going."""
    outcomes = await asyncio.gather(*runs, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return list(outcomes)  # type: ignore[arg-type]


class EventRouter:
    def __init__(self, registry: PluginRegistry, executor: Executor) -> None:
        self.registry = registry
        self.executor = executor

    async def route_telegram_message(self, gateway_id: str, update: Update, event_key: EventKey) -> list[ExecutionResult]:
        message = update.message or update.channel_post
        if message is None:
            return []
        event = TelegramMessageEvent(
            gateway_id=gateway_id,
            update_id=update.update_id,
            message=message,
            is_channel_post=update.channel_post is not None,
        )
        return await self._route_gateway_event(gateway_id, event, event_key)

    async def route_telegram_callback(self, gateway_id: str, update: Update, event_key: EventKey) -> list[ExecutionResult]:
        if update.callback_query is None:
            return []
        event = TelegramCallbackEvent(gateway_id=gateway_id, update_id=update.update_id, callback_query=update.callback_query)
        return await self._route_gateway_event(gateway_id, event, event_key)

    async def route_chat_member(self, gateway_id: str, update: Update, event_key: EventKey) -> list[ExecutionResult]:
        if update.chat_member is None:
            return []
        event = ChatMemberEvent(gateway_id=gateway_id, update_id=update.update_id, chat_member=update.chat_member)
        return await self._route_gateway_event(gateway_id, event, event_key)

    async def route_message_sent(self, gateway_id: str, message: Message, event_key: EventKey) -> list[ExecutionResult]:
        return await self._route_gateway_event(gateway_id, MessageSentEvent(gateway_id=gateway_id, message=message), event_key)

    async def route_schedule_trigger(self, slug: str, schedule: str, fired_at: datetime, event_key: EventKey) -> list[ExecutionResult]:
        """Fires one plugin's schedule for every user who has it installed and enabled."""
        handler = self.registry.get(slug)
        if handler is None:
            return []
        event = ScheduleTriggerEvent(schedule=schedule, fired_at=fired_at)
        installs = await UserPlugin.filter(
            plugin__slug=slug, plugin__is_active=True, is_enabled=True
        ).select_related("plugin", "user")
        runs = []
        for install in installs:
            if await self._has_required_gateways(install.user_id, handler):
                runs.append(self._run(install, handler, event, "schedule", event_key))
        return await run_all(runs)

    async def _route_gateway_event(self, gateway_id: str, event: PluginEvent, event_key: EventKey) -> list[ExecutionResult]:
        owner = await gateways.owner_of_active(gateway_id)
        if owner is None:
            return []
        owner_id, active = owner
        installs = await UserPlugin.filter(
            user_id=owner_id, is_enabled=True, plugin__is_active=True
        ).select_related("plugin", "user")
        runs = []
        for install in installs:
            handler = self.registry.get(install.plugin.slug)
            if handler is None or not handler.handles(event.type):
                continue
            if not set(handler.definition.required_gateways) <= active:
                continue
            runs.append(self._run(install, handler, event, "event", event_key))
        return await run_all(runs)

    async def _has_required_gateways(self, owner_id: str, handler: PluginHandler) -> bool:
        required = set(handler.definition.required_gateways)
        return not required or required <= await gateways.active_types(owner_id)

    async def _run(
        self, install: UserPlugin, handler: PluginHandler, event: PluginEvent, trigger: str, event_key: EventKey
    ) -> ExecutionResult:
        service = ServiceContext(user_id=install.user_id, plan=Plan(install.user.plan))
        execution = ExecutionContext(trigger=trigger, service=service)  # type: ignore[arg-type]
        return await self.executor.run(install, handler, event, execution, event_key)
