"""Domain errors. Each carries the `extensions.code` the GraphQL API reports."""

from __future__ import annotations

from dataclasses import dataclass


class PlugboardError(Exception):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code}


class Unauthenticated(PlugboardError):
    code = "UNAUTHENTICATED"


class NotFound(PlugboardError):
    code = "NOT_FOUND"


class NotInstalled(PlugboardError):
    code = "NOT_INSTALLED"


class AlreadyInstalled(PlugboardError):
    code = "ALREADY_INSTALLED"


class PlanLimitReached(PlugboardError):
    code = "PLAN_LIMIT_REACHED"


class GatewayUnreachable(PlugboardError):
    code = "GATEWAY_UNREACHABLE"


class TooManySubscriptions(PlugboardError):
    """A user's live subscriptions, over all their connections, are at MAX_SUBSCRIPTIONS_PER_USER."""

    code = "TOO_MANY_SUBSCRIPTIONS"


class PluginFailed(PlugboardError):
    """A plugin's lifecycle hook raised; the operation was undone."""

    code = "PLUGIN_ERROR"


@dataclass(frozen=True)
class FieldError:
    path: str  # a JSON Pointer, e.g. "/retention"
    message: str


class BadUserInput(PlugboardError):
    code = "BAD_USER_INPUT"

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []

    @property
    def extensions(self) -> dict[str, object]:
        return {
            "code": self.code,
            "errors": [{"path": e.path, "message": e.message} for e in self.errors],
        }
