"""graphql-transport-ws with the same limits as HTTP.

- A message over `max_body_bytes` closes the socket with 1009 (Message Too Big), unread.
- A subscribe message whose query document is over `max_query_bytes`, or whose variables are
  over `max_variables_bytes`, gets an `error` message for its id, before anything parses the
  document or coerces the variables; the connection stays open.
- The query's token, depth and alias limits and the config limits are the schema's and the
  services' own, so they hold here as over HTTP.
- A signed-in user's subscriptions hold a slot each (app/live_slots.py), given back however they
  end: one past MAX_SUBSCRIPTIONS_PER_USER gets an `error` message (TOO_MANY_SUBSCRIPTIONS) and the
  connection goes on.
- Messages go out through a bounded queue (app/graphql/outgoing.py): no operation waits for a
  client, and a shared subscription's summary still waiting is replaced by its newer one. A client
  that takes nothing while one subscription's replaced summaries pass WEBSOCKET_SEND_BUFFER_BYTES,
  or whose other messages waiting pass it, is cut off (1008): its operations end, and their slots
  are free.
- A socket signed in with an API token closes with 4403 Forbidden as soon as the token is revoked
  or expires, or its user is deleted, whatever it is doing (app/accounts/sessions.py).

Subscriptions of whole states (`SHARED_FIELDS`) of one user with the same document and variables
share one execution in this process, whichever of the user's API tokens each socket signed in with:
each change is read, resolved and encoded once, then sent to every socket that asked for it. The
state depends on the user and the arguments alone (the summary is the user's own install's), so
what one socket gets is exactly what its own execution would have given. Each socket's token is
checked when it joins and again before each state it is sent (`platform.token_checks`: what the
token cache verified within its bound, else one query for the sockets that ask together); a socket
whose token stopped working gets its own error, and its connection closes (app/accounts/sessions.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncGenerator, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived, WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage, SubscribeMessage
from strawberry.types.execution import ExecutionResult, PreExecutionError

from app.accounts.sessions import FORBIDDEN_CODE, FORBIDDEN_REASON, OpenSocket
from app.errors import TooManySubscriptions
from app.graphql.documents import query_size_error, utf8_size_exceeds, variables_size_error
from app.graphql.outgoing import Gone, Outgoing
from app.live_slots import Slot

log = logging.getLogger("app.graphql")

MESSAGE_TOO_BIG = 1009
POLICY_VIOLATION = 1008
# How long a cut-off connection's close frame may wait for room in a send buffer that is full.
CUT_OFF_CLOSE_WAIT_SECONDS = 1.0

# Subscription fields whose events are the caller's whole current state, computed from the
# caller's user and the field's arguments alone: the same document, variables and user give the
# same events, and a subscriber that skips one loses nothing (the next one has it all): so one shared
# execution serves them all, and a `next` still waiting to be sent is replaced by the newer one.
SHARED_FIELDS = frozenset({"analyticsUpdated"})


@dataclass(frozen=True)
class SharedPush:
    """A shared execution's result, for each of its followers: the JSON text of a `next` message's
    payload, and whether each of the followers' tokens worked once it was made (by the token cache,
    else checked together: one query for every execution that asks at the same moment)."""

    payload: str
    tokens: Mapping[str, bool]


# What a shared execution gives its followers, or None when the operation fails before it runs
# (each follower then runs it alone, to get its error).
Rendered = SharedPush | None


class LimitedWebSocketAdapter(ASGIWebSocketAdapter):
    """Reads JSON messages, closing the socket on one larger than the body limit. Sends through a
    bounded queue (app/graphql/outgoing.py): no operation waits for the client, and a client that
    falls behind past the bound is cut off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outgoing = Outgoing(self.ws.send_text, self.ws.close, self.max_waiting_bytes)

    @property
    def max_message_bytes(self) -> int:
        return self.view.platform.settings.max_body_bytes  # type: ignore[attr-defined]

    @property
    def max_waiting_bytes(self) -> int:
        return self.view.platform.settings.websocket_send_buffer_bytes  # type: ignore[attr-defined]

    async def send_text(self, text: str, operation_id: str | None = None) -> None:
        """Queues the message: it goes out in order, whenever the client reads."""
        try:
            self.outgoing.put(text, operation_id)
        except Gone as exc:
            raise WebSocketDisconnected from exc

    def put_latest(self, operation_id: str, text: str) -> None:
        """Queues a `next` message of a whole state, in place of the operation's one still waiting
        (or hands it over at once when nothing waits)."""
        try:
            self.outgoing.put_latest(operation_id, text)
        except Gone as exc:
            raise WebSocketDisconnected from exc

    async def send_json(self, message: Any) -> None:
        operation_id = message.get("id") if isinstance(message, dict) else None
        await self.send_text(
            _text(self.view.encode_json(message)), operation_id if isinstance(operation_id, str) else None
        )

    async def close(self, code: int, reason: str) -> None:
        await self.outgoing.close(code, reason)

    async def _receive_text(self, cut_off: asyncio.Future[Any]) -> str | None:
        """The next message, or None once the connection is cut off."""
        receiving = asyncio.ensure_future(self.ws.receive_text())
        await asyncio.wait((receiving, cut_off), return_when=asyncio.FIRST_COMPLETED)
        if receiving.done():
            return receiving.result()
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
        return None

    async def _close_cut_off(self) -> None:
        reason = self.outgoing.reason
        log.info("a websocket client was cut off (1008): %s", reason)
        with contextlib.suppress(Exception):  # a full buffer may never take the close frame
            async with asyncio.timeout(CUT_OFF_CLOSE_WAIT_SECONDS):
                await self.ws.close(POLICY_VIOLATION, reason)

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        cut_off = asyncio.ensure_future(self.outgoing.cut_off.wait())
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self._receive_text(cut_off)
                if text is None:
                    await self._close_cut_off()
                    return
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
        finally:
            cut_off.cancel()


class LimitedTransportWSHandler(BaseGraphQLTransportWSHandler[Any, None]):
    _session: OpenSocket | None = None  # held while signed in with a token (app/accounts/sessions.py)

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            self.platform.sockets.remove(self._session)
            await self.websocket.outgoing.stop()  # type: ignore[attr-defined]

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        """Once acknowledged with a token, the socket lasts only as long as the token does: its
        revocation or expiry, or its user's deletion, closes it with 4403 Forbidden."""
        await super().handle_connection_init(message)
        service = self.context.service
        if self.connection_acknowledged and self._session is None and service is not None:
            self._session = self.platform.sockets.add(service, self._forbid)

    async def _forbid(self) -> None:
        """Closes the socket after what is queued; a client that takes none of it is cut off, so
        that its operations end now all the same."""
        try:
            async with asyncio.timeout(CUT_OFF_CLOSE_WAIT_SECONDS):
                await self.websocket.close(FORBIDDEN_CODE, FORBIDDEN_REASON)
        except TimeoutError:
            self.websocket.outgoing.cut(f"{FORBIDDEN_REASON}: its API token stopped working")  # type: ignore[attr-defined]

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload = message.get("payload")
        if self.connection_acknowledged and not (isinstance(payload, dict) and isinstance(payload.get("query"), str)):
            await self.websocket.close(code=4400, reason="A subscribe message needs a payload with a query")
            return
        settings = self.view.platform.settings  # type: ignore[attr-defined]
        query, variables = (
            (payload.get("query"), payload.get("variables")) if isinstance(payload, dict) else (None, None)
        )
        error = query_size_error(query, settings.max_query_bytes) or variables_size_error(
            variables, settings.max_variables_bytes
        )
        if error is not None and self.connection_acknowledged and message["id"] not in self.operations:
            await self.send_message({"id": message["id"], "type": "error", "payload": [error.formatted]})
            return
        await super().handle_subscribe(message)

    @property
    def platform(self) -> Any:
        return self.view.platform  # type: ignore[attr-defined]

    async def run_operation(self, operation: Operation[Any, None]) -> None:
        definition = operation_of(operation.query, operation.operation_name, self.platform.settings.max_query_tokens)
        slot: Slot | None = None
        service = self.context.service
        # Only a signed-in user's subscription holds a slot: without a token, it fails at once.
        if definition is not None and definition.operation == OperationType.SUBSCRIPTION and service is not None:
            slot = await self.platform.subscriptions.acquire(service.user_id)
            if slot is None:
                await self._refuse(operation)
                return
        try:
            await self._run(operation, definition)
        finally:
            if slot is not None:
                self.platform.subscriptions.release(slot)

    async def _refuse(self, operation: Operation[Any, None]) -> None:
        limit = self.platform.subscriptions.limit
        refusal = TooManySubscriptions(
            f"Too many live subscriptions: one user may hold {limit} at once, over all connections. "
            "Complete one to start another."
        )
        error = GraphQLError(refusal.message, extensions=refusal.extensions, original_error=refusal)
        with contextlib.suppress(WebSocketDisconnected):
            await operation.send_operation_message({"id": operation.id, "type": "error", "payload": [error.formatted]})

    async def _run(self, operation: Operation[Any, None], definition: OperationDefinitionNode | None) -> None:
        key = await self._share_key(operation, definition)
        if key is None:
            await super().run_operation(operation)
            return
        assert self._session is not None  # _share_key shares only a signed-in socket's operation
        shared = self.platform.live.shared
        delivery = _Delivery(self.websocket, operation.id, self._session)  # type: ignore[arg-type]
        try:
            async with shared.follow(
                key, lambda: self._rendered(operation, key), self._session.token_id, delivery.take
            ) as pushes:
                async for push in pushes:
                    if push is None or not await self._still_signed_in(push.tokens):
                        break  # it runs alone: its own error (a token that stopped working: UNAUTHENTICATED)
                    delivery.send(push.payload)
                else:
                    await operation.send_operation_message({"id": operation.id, "type": "complete"})
                    return
        except WebSocketDisconnected:
            return
        await super().run_operation(operation)  # it failed before it ran: this subscriber's own error

    async def _still_signed_in(self, checked: Mapping[str, bool]) -> bool:
        """Whether this socket's token still works, checked before each summary it is sent: by the
        shared execution with its followers' (`checked`), or else now (a socket that joined since)."""
        session = self._session
        if session is None:
            return False
        known = _checked_signed_in(session, checked)
        if known is not None:
            return known
        return bool(await self.platform.token_checks.valid(session.token_id))

    async def handle_task_exception(self, error: Exception) -> None:
        if not isinstance(error, WebSocketDisconnected):  # a client gone or cut off is no error of ours
            await super().handle_task_exception(error)

    async def _share_key(
        self, operation: Operation[Any, None], definition: OperationDefinitionNode | None
    ) -> Hashable | None:
        """The key of the execution this operation may share, or None when it runs alone."""
        if definition is None or not shares(definition):
            return None
        if not await self.context.recheck_token():  # a revoked token gets its error from its own run
            return None
        service = self.context.service
        if service.token_id is None:
            return None
        if self._session is None or self._session.token_id != service.token_id:
            return None  # the token this socket signed in with is the one each push is checked against
        variables = json.dumps(operation.variables, sort_keys=True) if operation.variables else ""
        return (service.user_id, operation.query, operation.operation_name, variables)

    async def _rendered(self, operation: Operation[Any, None], key: Hashable) -> AsyncGenerator[Rendered, None]:
        """The operation's results, run with this socket's context, as `next` payloads with the
        state of the tokens of the sockets that follow it (`key`'s)."""
        stream = await self.schema.stream(
            operation.query,
            variable_values=operation.variables,
            context_value=dataclasses.replace(self.context, shared=True),
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
                yield SharedPush(_text(self.view.encode_json(payload)), await self._tokens_now(key))

    async def _tokens_now(self, key: Hashable) -> dict[str, bool]:
        """Whether each token of `key`'s followers works now; nothing when that cannot be told (the
        database is away: each follower then checks its own, and fails as it would have)."""
        tokens = [token for token in self.platform.live.shared.tags(key) if isinstance(token, str)]
        try:
            return await self.platform.token_checks.valid_each(tokens)
        except Exception:  # noqa: BLE001 - each follower's own check raises it
            return {}


class _Delivery:
    """One socket's `next` messages of a shared execution. A push whose tokens say this socket's
    still works is taken in the shared execution's task (`take`), while the socket's own task waits:
    no wake-up for each socket of each push. Any other push (the token unknown, one that stopped
    working, the stream's end) is left to the socket's task, which checks it on its own."""

    __slots__ = ("_websocket", "_operation_id", "_session", "_sent")

    def __init__(self, websocket: LimitedWebSocketAdapter, operation_id: str, session: OpenSocket) -> None:
        self._websocket = websocket
        self._operation_id = operation_id
        self._session = session
        self._sent: str | None = None  # the payload last sent

    def take(self, push: Rendered) -> bool:
        if push is None or _checked_signed_in(self._session, push.tokens) is not True:
            return False
        try:
            self.send(push.payload)
        except WebSocketDisconnected:
            return False  # the socket's task meets it too, and ends
        return True

    def send(self, payload: str) -> None:
        """Queues the `next` of `payload` (raises WebSocketDisconnected when the socket is gone)."""
        if payload == self._sent:
            return  # another follower's token changed, not the state: no news for this one
        text = f'{{"id":{json.dumps(self._operation_id)},"type":"next","payload":{payload}}}'
        self._websocket.put_latest(self._operation_id, text)
        self._sent = payload


def _checked_signed_in(session: OpenSocket, checked: Mapping[str, bool]) -> bool | None:
    """Whether the socket's token works by `checked` (a push's checks); None when they do not say."""
    if session.ended:
        return False
    return checked.get(session.token_id)


def _text(encoded: str | bytes) -> str:
    """The view's JSON as text (strawberry lets a view's encode_json give bytes)."""
    return encoded.decode() if isinstance(encoded, bytes) else encoded


def operation_of(query: str, operation_name: str | None, max_tokens: int) -> OperationDefinitionNode | None:
    """The document's operation that would run; None when it does not parse or names none."""
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    return operations[0] if len(operations) == 1 else None


def shares(operation: OperationDefinitionNode) -> bool:
    """Whether the operation is a subscription of shared fields only."""
    if operation.operation != OperationType.SUBSCRIPTION:
        return False
    return all(isinstance(s, FieldNode) and s.name.value in SHARED_FIELDS for s in operation.selection_set.selections)
