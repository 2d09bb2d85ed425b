"""The audit write: one event per change, made by the service that changed something, inside its
own transaction. A function, not a service: every service writes its row without holding the
audit service (app/audit/service.py reads the log)."""

from __future__ import annotations

from typing import Any

from app.accounts.context import ServiceContext
from app.audit.models import AuditLog


async def record(
    ctx: ServiceContext, action: str, target_type: str, target_id: str, metadata: dict[str, Any] | None = None
) -> AuditLog:
    return await record_for(ctx.user_id, action, target_type, target_id, metadata)


async def record_for(
    user_id: str, action: str, target_type: str, target_id: str, metadata: dict[str, Any] | None = None
) -> AuditLog:
    """An event in `user_id`'s audit log, for what happened to their things because of someone else."""
    return await AuditLog.create(
        actor_id=user_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        metadata=metadata or {},
    )
