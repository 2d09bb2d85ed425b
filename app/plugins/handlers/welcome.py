"""Welcome: greets new chat members with a configurable message."""

from __future__ import annotations

from typing import Any

from app.gateways.models import GatewayType
from app.plugins.contract import (
    EventType,
    PluginContext,
    PluginDefinition,
    PluginEvent,
    PluginHandler,
    TelegramMessageEvent,
    chat_id_schema,
)


class NoBot(Exception):
    """The user has no Telegram bot connected to send with."""


class _Placeholders(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, **values: str) -> str:
    """Fills {first_name} and friends; unknown placeholders stay as written."""
    return template.format_map(_Placeholders(values))


class WelcomeHandler(PluginHandler):
    definition = PluginDefinition(
        slug="welcome",
        name="Welcome Messages",
        description="Greet new members of your Telegram groups with a message of your own",
        version="1.0.0",
        required_gateways=(GatewayType.TELEGRAM_BOT,),
        category="engagement",
        icon="hand-wave",
        config_schema={
            "type": "object",
            "properties": {
                "message": {
                    "type": "string",
                    "title": "Greeting",
                    "description": "Sent to each new member; {first_name} is replaced by their name",
                    "minLength": 1,
                    "maxLength": 4096,
                    "default": "Welcome, {first_name}!",
                },
                "chats": {
                    "type": "array",
                    "title": "Chats",
                    "description": "Chat ids to greet in; empty means every chat",
                    "items": {"type": "integer"},
                    "uniqueItems": True,
                    "default": [],
                },
            },
        },
        input_schema={
            "type": "object",
            "properties": {
                "chatId": chat_id_schema(
                    "Where to send the test greeting: a chat your bot is in (e.g. -1001234567890)"
                ),
                "name": {
                    "type": "string",
                    "title": "Name",
                    "description": "The first name the greeting addresses, in place of {first_name}",
                    "minLength": 1,
                    "maxLength": 64,
                },
            },
            "required": ["chatId", "name"],
        },
        output_schema={
            "type": "object",
            "properties": {"messageId": {"type": "integer", "description": "The greeting's message id in its chat"}},
            "required": ["messageId"],
        },
    )
    events = frozenset({EventType.TELEGRAM_MESSAGE})
    typed_events = False

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        if not isinstance(event, TelegramMessageEvent) or not event.light.new_chat_members:
            return None
        chat_id = event.light.chat.id
        chats = ctx.config.get("chats") or []
        if chats and chat_id not in chats:
            return None
        greeted = []
        for member in event.light.new_chat_members:
            if member.is_bot:
                continue
            text = render(ctx.config["message"], first_name=member.first_name)
            await ctx.gateways.execute(event.gateway_id, "sendMessage", {"chat_id": chat_id, "text": text})
            greeted.append(member.id)
        return {"greeted": greeted}

    async def run(self, input: dict[str, Any], ctx: PluginContext) -> Any:
        """Sends the greeting as configured to one chat, through the send queue: a test greeting."""
        gateway = await ctx.gateways.get(GatewayType.TELEGRAM_BOT)
        if gateway is None:
            raise NoBot("No Telegram bot is connected: connect one to send the greeting")
        text = render(ctx.config["message"], first_name=input["name"])
        sent = await ctx.gateways.execute(gateway.id, "sendMessage", {"chat_id": input["chatId"], "text": text})
        return {"messageId": sent.message_id}
