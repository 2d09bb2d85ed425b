"""The API's error codes, and the domain errors that carry them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Every `extensions.code` the API answers with: the schema's `ErrorCode` enum, and the
    README's table (a test holds both to this list)."""

    description: str

    def __new__(cls, value: str, description: str) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    UNAUTHENTICATED = (
        "UNAUTHENTICATED",
        "No valid API token or session came with the request: send `Authorization: Bearer <token>`, or sign in.",
    )
    BAD_USER_INPUT = (
        "BAD_USER_INPUT",
        "An argument or a variable is invalid; nothing changed. `extensions.errors` lists each problem: its "
        "`path` (a JSON Pointer), a `message`, and for a setting checked against its JSON Schema the "
        '`keyword` it failed and that keyword\'s `params` (for example `minLength` with `{"limit": 16}`).',
    )
    NOT_FOUND = ("NOT_FOUND", "No such thing, or none of the caller's: the two are not told apart.")
    NOT_INSTALLED = ("NOT_INSTALLED", "The caller has not installed that plugin.")
    ALREADY_INSTALLED = ("ALREADY_INSTALLED", "The caller has installed that plugin already.")
    PLAN_LIMIT_REACHED = ("PLAN_LIMIT_REACHED", "The caller's plan allows no more installs.")
    GATEWAY_UNREACHABLE = (
        "GATEWAY_UNREACHABLE",
        "Telegram could not be reached, or refused the call; the message says which and why.",
    )
    SECRET_UNREADABLE = (
        "SECRET_UNREADABLE",
        "A stored secret cannot be decrypted with this server's SECRET_KEY: the bot must be connected again.",
    )
    RATE_LIMITED = (
        "RATE_LIMITED",
        "A limit was reached: Telegram's limits for the bot would hold the call longer than it may wait, or the "
        "caller started more runs on demand (runPlugin, runChain) than RUNS_PER_MINUTE allows; try again later.",
    )
    PLUGIN_ERROR = ("PLUGIN_ERROR", "A plugin's lifecycle hook failed; the operation was undone.")
    TOO_MANY_SUBSCRIPTIONS = (
        "TOO_MANY_SUBSCRIPTIONS",
        "The caller has MAX_SUBSCRIPTIONS_PER_USER live subscriptions open, over all their connections.",
    )
    GRAPHQL_PARSE_FAILED = (
        "GRAPHQL_PARSE_FAILED",
        "The document is not GraphQL, is missing, or is larger than MAX_QUERY_BYTES or MAX_QUERY_TOKENS.",
    )
    GRAPHQL_VALIDATION_FAILED = (
        "GRAPHQL_VALIDATION_FAILED",
        "The document does not fit the schema, or is deeper or has more aliases than allowed.",
    )
    OPERATION_RESOLUTION_FAILURE = (
        "OPERATION_RESOLUTION_FAILURE",
        "The document's operations and `operationName` do not name exactly one operation to run.",
    )
    VARIABLES_TOO_LARGE = ("VARIABLES_TOO_LARGE", "The variables are larger than MAX_VARIABLES_BYTES (HTTP 413).")
    REQUEST_TOO_LARGE = (
        "REQUEST_TOO_LARGE",
        "The request body is larger than MAX_QUERY_BYTES plus twice MAX_VARIABLES_BYTES; refused before it is parsed "
        "(HTTP 413).",
    )
    SUBSCRIPTION_OVER_HTTP = (
        "SUBSCRIPTION_OVER_HTTP",
        "A subscription was sent over HTTP: subscriptions run over the websocket at /graphql "
        "(graphql-transport-ws) (HTTP 400).",
    )
    INTERNAL_SERVER_ERROR = (
        "INTERNAL_SERVER_ERROR",
        "Something unexpected failed on the server: the error is logged and its message withheld.",
    )


class PlugboardError(Exception):
    code = ErrorCode.INTERNAL_SERVER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code}


class Unauthenticated(PlugboardError):
    code = ErrorCode.UNAUTHENTICATED


class NotFound(PlugboardError):
    code = ErrorCode.NOT_FOUND


class NotInstalled(PlugboardError):
    code = ErrorCode.NOT_INSTALLED


class AlreadyInstalled(PlugboardError):
    code = ErrorCode.ALREADY_INSTALLED


class PlanLimitReached(PlugboardError):
    code = ErrorCode.PLAN_LIMIT_REACHED


class GatewayUnreachable(PlugboardError):
    code = ErrorCode.GATEWAY_UNREACHABLE


class TooManySubscriptions(PlugboardError):
    """A user's live subscriptions, over all their connections, are at MAX_SUBSCRIPTIONS_PER_USER."""

    code = ErrorCode.TOO_MANY_SUBSCRIPTIONS


class RateLimited(PlugboardError):
    code = ErrorCode.RATE_LIMITED


class PluginFailed(PlugboardError):
    """A plugin's lifecycle hook raised; the operation was undone."""

    code = ErrorCode.PLUGIN_ERROR


@dataclass(frozen=True)
class FieldError:
    path: str  # a JSON Pointer, e.g. "/retention"
    message: str
    keyword: str | None = None  # the JSON Schema keyword that failed, e.g. "minLength"
    params: dict[str, Any] = field(default_factory=dict, compare=False)  # that keyword's parameters: {"limit": 16}

    def as_json(self) -> dict[str, Any]:
        if self.keyword is None:
            return {"path": self.path, "message": self.message}
        return {"path": self.path, "message": self.message, "keyword": self.keyword, "params": self.params}


class BadUserInput(PlugboardError):
    code = ErrorCode.BAD_USER_INPUT

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []

    @property
    def extensions(self) -> dict[str, object]:
        return {
            "code": self.code,
            "errors": [error.as_json() for error in self.errors],
        }
