"""Forward to webhook: POSTs the messages a bot receives, as signed JSON, to an HTTPS URL.

Each delivery carries `X-Plugboard-Timestamp` (Unix seconds) and `X-Plugboard-Signature:
sha256=<hex>`, the HMAC-SHA256 of `<timestamp>.<body>` keyed with the install's signing secret,
a secret setting (`writeOnly`): the receiver recomputes it, compares in constant time, and refuses
old timestamps. The request goes through `ctx.http` (app/outbound.py): HTTPS only, never to our
own network, no redirects. A delivery that is refused, times out or is not answered with a 2xx
fails the run; the error names the host and the status, never the secret or the URL's path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from app.gateways.models import GatewayType
from app.outbound import OutboundError, parse_url
from app.plugins.contract import (
    EventType,
    PluginContext,
    PluginDefinition,
    PluginEvent,
    PluginHandler,
    TelegramMessageEvent,
)

SLUG = "forward"
SIGNATURE_HEADER = "X-Plugboard-Signature"
TIMESTAMP_HEADER = "X-Plugboard-Timestamp"
DELIVERY_HEADER = "X-Plugboard-Delivery"
EVENT_HEADER = "X-Plugboard-Event"


class DeliveryFailed(Exception):
    """The webhook did not take the message. Its text names the host, never the secret."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does (its clock check of `timestamp` aside)."""
    if not timestamp.isdigit():
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def matches(text: str, keywords: list[str]) -> bool:
    """Plain case-insensitive substrings, no regular expressions: the cost stays linear."""
    if not keywords:
        return True
    folded = text.casefold()
    return any(keyword.casefold() in folded for keyword in keywords)


def payload(event: TelegramMessageEvent) -> dict[str, Any]:
    message = event.message
    sender = message.from_user
    return {
        "event": EventType.TELEGRAM_MESSAGE,
        "gatewayId": event.gateway_id,
        "updateId": event.update_id,
        "isChannelPost": event.is_channel_post,
        "chat": {
            "id": message.chat.id,
            "type": message.chat.type,
            "title": message.chat.title,
            "username": message.chat.username,
        },
        "messageId": message.message_id,
        "date": int(message.date.timestamp()),
        "text": message.text if message.text is not None else message.caption,
        "from": None
        if sender is None
        else {
            "id": sender.id,
            "isBot": sender.is_bot,
            "firstName": sender.first_name,
            "lastName": sender.last_name,
            "username": sender.username,
        },
    }


class ForwardHandler(PluginHandler):
    definition = PluginDefinition(
        slug=SLUG,
        name="Forward to webhook",
        description="Post the messages your bot receives, signed, to an HTTPS webhook of yours",
        version="1.0.0",
        required_gateways=(GatewayType.TELEGRAM_BOT,),
        category="integrations",
        icon="webhook",
        config_schema={
            "type": "object",
            "properties": {
                "url": {
                    "type": "string",
                    "title": "Webhook URL",
                    "description": "The https:// address each matching message is POSTed to, as JSON",
                    "pattern": "^https://[^/?#@\\s]+([/?#]\\S*)?$",
                    "maxLength": 2048,
                },
                "signingSecret": {
                    "type": "string",
                    "title": "Signing secret",
                    "description": "The key each delivery is signed with (an HMAC-SHA256 signature in the "
                    "X-Plugboard-Signature header); once saved it is never shown again",
                    "writeOnly": True,
                    "minLength": 16,
                    "maxLength": 256,
                },
                "keywords": {
                    "type": "array",
                    "title": "Keywords",
                    "description": "Forward only messages whose text contains one of these, ignoring case; "
                    "empty forwards every message with text or a caption",
                    "items": {"type": "string", "minLength": 1, "maxLength": 100},
                    "maxItems": 20,
                    "uniqueItems": True,
                    "default": [],
                },
            },
            "required": ["url", "signingSecret"],
        },
    )
    events = frozenset({EventType.TELEGRAM_MESSAGE})

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        if not isinstance(event, TelegramMessageEvent):
            return None
        text = event.message.text if event.message.text is not None else event.message.caption
        if text is None or not matches(text, ctx.config.get("keywords") or []):
            return None
        body = json.dumps(payload(event), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(ctx.config["signingSecret"], timestamp, body),
            EVENT_HEADER: EventType.TELEGRAM_MESSAGE,
            DELIVERY_HEADER: f"{ctx.install_id}:{event.gateway_id}:{event.update_id}",
        }
        try:
            response = await ctx.http.post(ctx.config["url"], content=body, headers=headers)
        except OutboundError as exc:
            raise DeliveryFailed(f"Not delivered: {exc}") from None
        if not response.ok:
            hint = " (redirects are not followed)" if 300 <= response.status < 400 else ""
            where = parse_url(ctx.config["url"]).shown
            raise DeliveryFailed(f"Not delivered: {where} answered {response.status}{hint}")
        return {"delivered": True, "status": response.status}
