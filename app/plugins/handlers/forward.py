"""Forward to webhook: POSTs the messages a bot receives, as signed JSON, to an HTTPS URL.

Each delivery carries `X-Plugboard-Timestamp` (Unix seconds) and `X-Plugboard-Signature:
sha256=<hex>`, the HMAC-SHA256 of `<timestamp>.<body>` keyed with the install's signing secret,
a secret setting (`writeOnly`): the receiver recomputes it, compares in constant time, and refuses
old timestamps. The request goes through `ctx.http` (app/outbound.py): HTTPS only, never to our
own network, no redirects. A delivery that is refused, times out or is not answered with a 2xx
fails the run; the error names the host and the status, never the secret or the URL's path.

Run on demand ("Send test"), it sends one delivery shaped as a real one, marked `"test": true`; as a
chain's step, the step before's output (its `text`, the rest as `data`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime
from typing import Any

from app.gateways.models import GatewayType
from app.outbound import OutboundError, parse_url
from app.plugins.contract import (
    EventType,
    PluginContext,
    PluginDefinition,
    PluginEvent,
    PluginHandler,
    RunTrigger,
    TelegramMessageEvent,
)

SLUG = "forward"
TEST_TEXT = "A test delivery from Plugboard"
MAX_TEXT = 4096
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
    message = event.light
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


def test_payload(input: dict[str, Any], previous: Any, gateway_id: str | None, now: datetime) -> dict[str, Any]:
    """A delivery shaped as `payload`'s, for a message that no chat sent: its text is the input's,
    or else the step before's (its `text`, or its JSON); what else the input holds is `data`."""
    data = {key: value for key, value in input.items() if key not in ("text", "chatTitle")}
    text = input.get("text")
    if text is None and previous is not None:
        if isinstance(previous, dict) and isinstance(previous.get("text"), str):
            text = previous["text"]
        else:
            text = json.dumps(previous, separators=(",", ":"), ensure_ascii=False)[:MAX_TEXT]
        data = data or (previous if isinstance(previous, dict) else {"value": previous})
    message: dict[str, Any] = {
        "event": EventType.TELEGRAM_MESSAGE,
        "gatewayId": gateway_id,
        "updateId": 0,
        "isChannelPost": False,
        "chat": {"id": 0, "type": "private", "title": input.get("chatTitle"), "username": None},
        "messageId": 0,
        "date": int(now.timestamp()),
        "text": text if text is not None else TEST_TEXT,
        "from": None,
        "test": True,
    }
    if data:
        message["data"] = data
    return message


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
        input_schema={
            "type": "object",
            "properties": {
                "text": {
                    "type": "string",
                    "title": "Text",
                    "description": "The test message's text. In a chain, leave it out to send the step before's "
                    "output: its text, or else its JSON",
                    "minLength": 1,
                    "maxLength": 4096,
                },
                "chatTitle": {
                    "type": "string",
                    "title": "Chat title",
                    "description": "The title of the chat the test message says it came from",
                    "maxLength": 255,
                },
            },
            # A step before's output comes in whole: what is not text or chatTitle is sent as `data`.
            "additionalProperties": True,
        },
        output_schema={
            "type": "object",
            "properties": {
                "status": {"type": "integer", "description": "The HTTP status the webhook answered"},
                "durationMs": {"type": "number", "description": "How long the delivery took"},
            },
            "required": ["status", "durationMs"],
        },
    )
    events = frozenset({EventType.TELEGRAM_MESSAGE})
    typed_events = False

    async def on_event(self, event: PluginEvent, ctx: PluginContext) -> Any:
        if not isinstance(event, TelegramMessageEvent):
            return None
        text = event.light.text if event.light.text is not None else event.light.caption
        if text is None or not matches(text, ctx.config.get("keywords") or []):
            return None
        status = await deliver(ctx, payload(event), f"{ctx.install_id}:{event.gateway_id}:{event.update_id}")
        return {"delivered": True, "status": status}

    async def run(self, input: dict[str, Any], ctx: PluginContext) -> Any:
        """ "Send test", or a chain's step: one delivery signed and shaped as a real one, marked
        `"test": true` when run on its own; in a chain, with the chain's run and the step's place."""
        gateway = await ctx.gateways.get(GatewayType.TELEGRAM_BOT)
        execution = ctx.execution
        body = test_payload(input, execution.previous_step_output, gateway.id if gateway else None, ctx.now())
        if execution.trigger == RunTrigger.WORKFLOW_STEP:
            body.update(test=False, workflowRunId=execution.workflow_run_id, stepIndex=execution.step_index)
        started = time.perf_counter()
        status = await deliver(ctx, body, f"{ctx.install_id}:run:{uuid.uuid4().hex}")
        return {"status": status, "durationMs": round((time.perf_counter() - started) * 1000, 1)}


async def deliver(ctx: PluginContext, message: dict[str, Any], delivery_id: str) -> int:
    """POSTs one delivery, signed, to the install's URL; its status, or DeliveryFailed."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(ctx.config["signingSecret"], timestamp, body),
        EVENT_HEADER: EventType.TELEGRAM_MESSAGE,
        DELIVERY_HEADER: delivery_id,
    }
    try:
        response = await ctx.http.post(ctx.config["url"], content=body, headers=headers)
    except OutboundError as exc:
        raise DeliveryFailed(f"Not delivered: {exc}") from None
    if not response.ok:
        hint = " (redirects are not followed)" if 300 <= response.status < 400 else ""
        where = parse_url(ctx.config["url"]).shown
        raise DeliveryFailed(f"Not delivered: {where} answered {response.status}{hint}")
    return response.status
