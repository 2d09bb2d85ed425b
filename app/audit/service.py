"""The audit log, read: the caller's events, newest first, a page at a time. Events are written by
the service that made the change, inside its transaction (app/audit/writes.py)."""

from __future__ import annotations

from app import cursors
from app.accounts.context import ServiceContext
from app.audit.models import AuditLog
from app.inputs import text_problem

LIMIT_MAX = 500
ACTION_MAX = 64  # the column's length (app/audit/models.py)

Position = cursors.Position


def cursor_of(event: AuditLog) -> str:
    """An opaque cursor for the events after `event`; clients pass it back unread."""
    return cursors.encode(event.created_at, event.id)


def parse_cursor(cursor: str) -> Position | None:
    """The position a cursor of ours names; None for anything we did not hand out."""
    return cursors.decode(cursor)


def could_be_action(action: str) -> bool:
    return len(action) <= ACTION_MAX and text_problem(action) is None


class AuditService:
    """The caller's own audit events (built by app/platform.py, reached as `platform.audit`)."""

    async def page_of_events(
        self, ctx: ServiceContext, first: int, after: Position | None = None, action: str | None = None
    ) -> tuple[list[AuditLog], bool]:
        """A page of the caller's events, newest first, and whether more follow (`first` ≤ LIMIT_MAX)."""
        rows = await self._events(ctx, after, action, min(first, LIMIT_MAX) + 1)
        return rows[:first], len(rows) > first

    async def list_events(
        self, ctx: ServiceContext, limit: int = 50, after: Position | None = None, action: str | None = None
    ) -> list[AuditLog]:
        """The caller's events, newest first (ties of created_at broken by id), after a position."""
        return await self._events(ctx, after, action, max(0, min(limit, LIMIT_MAX)))

    async def _events(
        self, ctx: ServiceContext, after: Position | None, action: str | None, limit: int
    ) -> list[AuditLog]:
        query = AuditLog.filter(actor_id=ctx.user_id)
        if action is not None:
            if not could_be_action(action):
                return []
            query = query.filter(action=action)
        if after is not None:
            query = query.filter(cursors.older_than(after))
        return await query.order_by("-created_at", "-id").limit(limit)
