"""graphql-transport-ws with the same limits as HTTP.

- A message over `max_body_bytes` closes the socket with 1009 (Message Too Big), unread.
- A subscribe message whose query document is over `max_query_bytes` gets an `error` message
  for its id, before anything parses the document; the connection stays open.
- The query's token, depth and alias limits and the config limits are the schema's and the
  services' own, so they hold here as over HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage

from app.graphql.documents import query_size_error, utf8_size_exceeds

MESSAGE_TOO_BIG = 1009


class LimitedWebSocketAdapter(ASGIWebSocketAdapter):
    """Reads JSON messages, closing the socket on one larger than the body limit."""

    @property
    def max_message_bytes(self) -> int:
        return self.view.platform.settings.max_body_bytes  # type: ignore[attr-defined]

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
