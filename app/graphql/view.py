"""Strawberry's ASGI view, made to follow the GraphQL-over-HTTP specification.

- `application/graphql-response+json` when the client's Accept prefers it: a request error
  (unparsable, invalid) is then a 400 with no `data` key; `application/json` keeps 200.
- a mutation over GET is 405; an unsupported content type 415; a body that is not a JSON object 400;
  a subscription (GET or POST) is 400 with SUBSCRIPTION_OVER_HTTP: subscriptions run over the websocket;
  variables over MAX_VARIABLES_BYTES are 413 with VARIABLES_TOO_LARGE (a body too large for any
  request, 413 with REQUEST_TOO_LARGE before its JSON is parsed: app/graphql/routes.py).
- GraphiQL is our own build (frontend/dist), never a CDN page, with the web pages' security headers
  (Content-Security-Policy with `frame-ancestors 'none'`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from app.db_errors import is_database_unavailable
from app.errors import ErrorCode
from app.graphql.context import GraphQLContext, build_context
from app.graphql.documents import query_size_error, variables_size_error
from app.graphql.encoding import encode_json
from app.graphql.errors import ensure_code
from app.graphql.operations import operation_resolution_error
from app.graphql.websocket import LimitedTransportWSHandler, LimitedWebSocketAdapter
from app.platform import Platform
from app.web import SECURITY_HEADERS

GRAPHQL_RESPONSE = "application/graphql-response+json"
STATUS_OF_CODE: dict[object, int] = {ErrorCode.SUBSCRIPTION_OVER_HTTP: 400, ErrorCode.VARIABLES_TOO_LARGE: 413}
JSON = "application/json"
FRONTEND_DIST = Path(__file__).resolve().parents[2] / "frontend" / "dist"
GRAPHIQL_HTML = FRONTEND_DIST / "graphiql" / "index.html"
# The web pages' headers; GraphiQL's stylesheet also carries fonts inline (vite inlines small files).
GRAPHIQL_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"] + "; font-src 'self' data:",
}
GRAPHIQL_MISSING = """<!doctype html><meta charset="utf-8"><title>Plugboard GraphQL</title>
<h1>GraphiQL is not built</h1><p>Run <code>make install</code> to build it (frontend/dist).
The API itself answers POST requests at this address.</p>"""


@lru_cache(maxsize=256)  # clients send a handful of distinct Accept headers; each request asks twice
def negotiate(accept: str) -> str | None:
    """The response media type for an Accept header, or None when we can give none it accepts."""
    if not accept.strip():
        return JSON
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, media.lower()))
    for _, _, media in sorted(ranked):
        if media in (GRAPHQL_RESPONSE, JSON):
            return media
        if media in ("application/*", "*/*"):
            return JSON
    return None


def built_graphiql_page(dist: Path = FRONTEND_DIST, expected: Path = GRAPHIQL_HTML) -> Path | None:
    """The built GraphiQL page: where the vite build puts it, else the first index.html under dist."""
    if expected.is_file():
        return expected
    if not dist.is_dir():
        return None
    return min(dist.rglob("index.html"), key=lambda page: len(page.parts), default=None)


class MethodNotAllowed(HTTPException):
    def __init__(self, reason: str, allow: str) -> None:
        super().__init__(405, reason)
        self.allow = allow


class DatabaseUnavailable(HTTPException):
    """The caller could not be told apart (their token is in the database) while it is gone."""

    retry_after_seconds = 5

    def __init__(self) -> None:
        super().__init__(503, "The database cannot be reached; try again shortly")


def error_response(exc: HTTPException) -> Response:
    headers = None
    if isinstance(exc, MethodNotAllowed):
        headers = {"Allow": exc.allow}
    elif isinstance(exc, DatabaseUnavailable):
        headers = {"Retry-After": str(exc.retry_after_seconds)}
    return Response(exc.reason, status_code=exc.status_code, media_type="text/plain", headers=headers)


def subscription_over_http_error() -> GraphQLError:
    return GraphQLError(
        "Subscriptions run over the websocket at /graphql (graphql-transport-ws), not over HTTP GET or POST.",
        extensions={"code": ErrorCode.SUBSCRIPTION_OVER_HTTP},
    )


def codes(result: ExecutionResult) -> list[object]:
    return [(error.extensions or {}).get("code") for error in result.errors or ()]


def is_request_error(result: ExecutionResult) -> bool:
    """Parsing or validation failed, so nothing ran (field errors carry a path; these do not)."""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


class PlugboardGraphQL(GraphQL[GraphQLContext, None]):
    websocket_adapter_class = LimitedWebSocketAdapter
    graphql_transport_ws_handler_class = LimitedTransportWSHandler

    def __init__(self, platform: Platform) -> None:
        from app.graphql.schema import build_schema

        super().__init__(
            build_schema(platform.settings),
            graphql_ide="graphiql",
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        )
        self.platform = platform

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> GraphQLContext:
        try:
            return await build_context(request, self.platform, request.headers.get("authorization"))
        except Exception as exc:
            if isinstance(request, Request) and is_database_unavailable(exc):
                raise DatabaseUnavailable() from None  # a 503 with Retry-After, not a bare 500
            raise

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        """Browsers cannot set headers on a websocket: the token comes in connection_init's payload."""
        params = context.connection_params or {}
        authorization = params.get("Authorization") or params.get("authorization")
        if authorization is None:
            return UNSET
        fresh = await build_context(context.request, self.platform, str(authorization))
        if fresh.service is None:
            raise ConnectionRejectionError()
        context.service = fresh.service
        context.bad_token, context.authorization_hint = False, None
        return UNSET

    async def render_graphql_ide(self, request: Request) -> Response:
        page = built_graphiql_page()
        if page is None:
            return HTMLResponse(GRAPHIQL_MISSING, headers=GRAPHIQL_HEADERS)
        return HTMLResponse(page.read_text(encoding="utf-8"), headers=GRAPHIQL_HEADERS)

    def decode_json(self, data: str | bytes) -> object:
        # Strawberry turns only JSONDecodeError into a 400 (and, on a websocket, a 4400 close):
        # bad UTF-8 or absurd nesting would be a 500.
        try:
            return json.loads(data)
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError) as exc:
            raise json.JSONDecodeError("Unable to parse the message as JSON", "", 0) from exc

    def encode_json(self, data: object) -> str:
        return encode_json(data)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate(request.headers.get("accept", ""))
        request.state.graphql_sub_response = sub_response
        return sub_response

    async def parse_http_body(self, request: Any) -> Any:
        if request.headers.get("accept") is not None and negotiate(request.headers["accept"]) is None:
            raise HTTPException(406, f"Acceptable media types: {GRAPHQL_RESPONSE}, {JSON}")
        if request.method == "POST":
            content_type = (request.content_type or "").split(";")[0].strip().lower()
            if content_type != JSON:
                raise HTTPException(415, f"Send GraphQL requests as {JSON}")
            # Whether it is an object at all, without parsing it twice (strawberry parses it next).
            if not (await request.get_body()).lstrip(b" \t\r\n").startswith(b"{"):
                raise HTTPException(400, "The request body must be a JSON object")
        return await super().parse_http_body(request)

    async def execute_operation(
        self, request: Request, request_adapter: Any, request_data: Any, *args: Any, **kwargs: Any
    ) -> Any:
        if isinstance(request_data, GraphQLRequestData):
            settings = self.platform.settings
            # Request errors, before the parser or its cache sees the document, and before
            # graphql-core coerces (copies) the variables.
            error = query_size_error(request_data.query, settings.max_query_bytes) or variables_size_error(
                request_data.variables, settings.max_variables_bytes
            )
            if error is not None:
                return ExecutionResult(data=None, errors=[error])
        return await super().execute_operation(request, request_adapter, request_data, *args, **kwargs)

    async def execute_single(  # noqa: PLR0913 - strawberry's signature, called with keywords
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Any,
        context: GraphQLContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Strawberry's, except that subscriptions are the websocket's: over HTTP (which strawberry
        lets through, to run them as if they were queries) one is a request error."""
        get = request_adapter.method == "GET"
        allowed = {OperationType.QUERY} if get else {OperationType.QUERY, OperationType.MUTATION}
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as exc:
            if exc.operation_type == OperationType.SUBSCRIPTION:
                return ExecutionResult(data=None, errors=[subscription_over_http_error()])
            raise MethodNotAllowed("Mutations need POST", allow="POST") from exc
        except CannotGetOperationTypeError as exc:  # operationName names no operation
            return ExecutionResult(data=None, errors=[operation_resolution_error(exc.as_http_error_reason())])
        except MissingQueryError as exc:
            raise HTTPException(400, "No GraphQL query found in the request") from exc

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            result.errors = [ensure_code(error) for error in result.errors]
        response = process_result(result)
        sub_response: Response = request.state.graphql_sub_response
        # Some request errors have their own status, in either media type: a subscription (no HTTP
        # request can run it), variables too large.
        status = next((STATUS_OF_CODE[code] for code in codes(result) if code in STATUS_OF_CODE), None)
        if status is None and sub_response.media_type == GRAPHQL_RESPONSE and is_request_error(result):
            status = 400
        if status is not None:
            sub_response.status_code = status
            response.pop("data", None)
        return response

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = f"{sub_response.media_type or JSON}; charset=utf-8"
        return response

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            if scope["method"] not in ("GET", "POST"):
                raise MethodNotAllowed("GraphQL takes GET and POST", allow="GET, POST")
            response = await self.run(Request(scope, receive))
        except HTTPException as exc:
            response = error_response(exc)
        await response(scope, receive, send)
