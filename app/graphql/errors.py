"""Every GraphQL error leaves with an `extensions.code`; unexpected ones are masked and logged."""

from __future__ import annotations

import logging
import traceback

from graphql.error import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from app.errors import ErrorCode, PlugboardError

log = logging.getLogger("app.graphql")

MASKED_MESSAGE = "Unexpected error."
MAX_LOGGED_LINE = 500  # a traceback line longer than this (a huge value in a message) is cut
MAX_LOGGED_LINES = 300


def bounded_traceback(exc: BaseException, max_line: int = MAX_LOGGED_LINE, max_lines: int = MAX_LOGGED_LINES) -> str:
    """The exception's traceback, cut to `max_lines` lines of at most `max_line` characters: an
    exception message may carry a request's value, and a 900 KB value has no place in a log."""
    lines = "".join(traceback.format_exception(exc)).splitlines()
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], f"… [{len(lines) - max_lines + 1} more lines]"]
    return "\n".join(
        line if len(line) <= max_line else f"{line[:max_line]}… [{len(line) - max_line} more characters]"
        for line in lines
    )


def _with_code(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message=message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


def request_error_code(error: GraphQLError) -> ErrorCode:
    if error.message.startswith("Syntax Error") or "tokens" in error.message and "exceeded" in error.message:
        return ErrorCode.GRAPHQL_PARSE_FAILED
    if error.message.startswith("Variable "):
        return ErrorCode.BAD_USER_INPUT
    return ErrorCode.GRAPHQL_VALIDATION_FAILED


# What strawberry raises about the request itself: over HTTP the view answers these (400 or
# OPERATION_RESOLUTION_FAILURE); over the websocket they arrive here, and are the client's mistakes.
REQUEST_PROBLEMS: dict[type[Exception], ErrorCode] = {
    CannotGetOperationTypeError: ErrorCode.OPERATION_RESOLUTION_FAILURE,
    MissingQueryError: ErrorCode.GRAPHQL_PARSE_FAILED,
    InvalidOperationTypeError: ErrorCode.GRAPHQL_VALIDATION_FAILED,
}


def request_problem_code(error: GraphQLError) -> ErrorCode | None:
    original = error.original_error
    return next((code for kind, code in REQUEST_PROBLEMS.items() if isinstance(original, kind)), None)


def is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    return (
        original is not None
        and not isinstance(original, (PlugboardError, GraphQLError))
        and request_problem_code(error) is None
    )


def ensure_code(error: GraphQLError) -> GraphQLError:
    """An error made outside the schema's extensions (the view's own request errors) bypasses
    ErrorCodes: code it here."""
    if error.extensions and "code" in error.extensions:
        return error
    return _with_code(error, error.message, {**(error.extensions or {}), "code": request_error_code(error)})


class ErrorCodes(MaskErrors):
    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self.coded(error) for error in errors]

    def coded(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, PlugboardError):
            return _with_code(error, original.message, original.extensions)
        if code := request_problem_code(error):
            return _with_code(error, error.message, {"code": code})
        if is_unexpected(error) and original is not None:
            log.error("unexpected error in %s\n%s", error.path, bounded_traceback(original))
            return _with_code(error, MASKED_MESSAGE, {"code": ErrorCode.INTERNAL_SERVER_ERROR})
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", request_error_code(error))
        return _with_code(error, error.message, extensions)
