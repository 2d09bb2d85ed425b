"""graphql-transport-ws with the same limits as HTTP.

- A message over `max_body_bytes` closes the socket with 1009 (Message Too Big), unread.
- A subscribe message whose query document is over `max_query_bytes` gets an `error` message
  for its id, before anything parses the document; the connection stays open.
- The query's token, depth and alias limits and the config limits are the schema's and the
  services' own, so they hold here as over HTTP.

Subscriptions of whole states (`SHARED_FIELDS`) with the same document, variables and API token
share one execution in this process: each change is read, resolved and encoded once, then sent to
every socket that asked for it. The token's id is part of the key and is checked again when a
subscriber joins, so what one socket gets is exactly what its own execution would have given.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Hashable
from typing import Any

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived, WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types.execution import ExecutionResult, PreExecutionError

from app.graphql.documents import query_size_error, utf8_size_exceeds

MESSAGE_TOO_BIG = 1009

# Subscription fields whose events are the caller's whole current state, computed from the
# caller's token and the field's arguments alone: the same document, variables and token give the
# same events, and a subscriber that skips one loses nothing (the next one has it all).
SHARED_FIELDS = frozenset({"analyticsUpdated"})

# What a shared execution gives its followers: the JSON text of a `next` message's payload, or
# None when the operation fails before it runs (each follower then runs it alone, to get its error).
Rendered = str | bytes | None


class LimitedWebSocketAdapter(ASGIWebSocketAdapter):
    """Reads JSON messages, closing the socket on one larger than the body limit."""

    @property
    def max_message_bytes(self) -> int:
        return self.view.platform.settings.max_body_bytes  # type: ignore[attr-defined]

    async def send_text(self, text: str) -> None:
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if utf8_size_exceeds(text, self.max_message_bytes):
                    await self.ws.close(MESSAGE_TOO_BIG, f"Message larger than {self.max_message_bytes} bytes")
                    return
                try:
                    yield self.view.decode_json(text)
                except ValueError as exc:  # the view's decode_json raises JSONDecodeError only
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from exc
        except KeyError as exc:
            raise NonTextMessageReceived from exc
        except WebSocketDisconnect:
            pass


class LimitedTransportWSHandler(BaseGraphQLTransportWSHandler[Any, None]):
    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload = message.get("payload")
        if self.connection_acknowledged and not (isinstance(payload, dict) and isinstance(payload.get("query"), str)):
            await self.websocket.close(code=4400, reason="A subscribe message needs a payload with a query")
            return
        max_bytes = self.view.platform.settings.max_query_bytes  # type: ignore[attr-defined]
        error = query_size_error(payload.get("query") if isinstance(payload, dict) else None, max_bytes)
        if error is not None and self.connection_acknowledged and message["id"] not in self.operations:
            await self.send_message({"id": message["id"], "type": "error", "payload": [error.formatted]})
            return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Any, None]) -> None:
        key = await self._share_key(operation)
        if key is None:
            await super().run_operation(operation)
            return
        live = self.view.platform.live  # type: ignore[attr-defined]
        try:
            async with live.shared.follow(key, lambda: self._rendered(operation)) as payloads:
                async for payload in payloads:
                    if payload is None:
                        break
                    await self.websocket.send_text(  # type: ignore[attr-defined]
                        f'{{"id":{json.dumps(operation.id)},"type":"next","payload":{payload}}}'
                    )
                else:
                    await operation.send_operation_message({"id": operation.id, "type": "complete"})
                    return
        except WebSocketDisconnected:
            return
        await super().run_operation(operation)  # it failed before it ran: this subscriber's own error

    async def _share_key(self, operation: Operation[Any, None]) -> Hashable | None:
        """The key of the execution this operation may share, or None when it runs alone."""
        if not shares(operation.query, operation.operation_name, self.view.platform.settings.max_query_tokens):  # type: ignore[attr-defined]
            return None
        if not await self.context.recheck_token():  # a revoked token gets its error from its own run
            return None
        service = self.context.service
        if service.token_id is None:
            return None
        variables = json.dumps(operation.variables, sort_keys=True) if operation.variables else ""
        return (service.user_id, service.token_id, operation.query, operation.operation_name, variables)

    async def _rendered(self, operation: Operation[Any, None]) -> AsyncGenerator[Rendered, None]:
        """The operation's results, run with this socket's context, as `next` payloads."""
        stream = await self.schema.stream(
            operation.query,
            variable_values=operation.variables,
            context_value=self.context,
            root_value=self.root_value,
            operation_name=operation.operation_name,
        )
        async with contextlib.aclosing(stream):
            async for result in stream:
                if isinstance(result, PreExecutionError) or not isinstance(result, ExecutionResult):
                    yield None
                    return
                payload: dict[str, object] = {"data": result.data}
                if result.errors:
                    payload["errors"] = [error.formatted for error in result.errors]
                if result.extensions:
                    payload["extensions"] = result.extensions
                yield self.view.encode_json(payload)


def shares(query: str, operation_name: str | None, max_tokens: int) -> bool:
    """Whether the document's operation is a subscription of shared fields only."""
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation != OperationType.SUBSCRIPTION:
        return False
    selections = operations[0].selection_set.selections
    return all(isinstance(s, FieldNode) and s.name.value in SHARED_FIELDS for s in selections)
