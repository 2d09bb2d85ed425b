from __future__ import annotations

from typing import Any

from app.accounts.context import ServiceContext
from app.audit.models import AuditLog


async def record(
    ctx: ServiceContext, action: str, target_type: str, target_id: str, metadata: dict[str, Any] | None = None
) -> AuditLog:
    return await AuditLog.create(
        actor_id=ctx.user_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        metadata=metadata or {},
    )


async def list_events(ctx: ServiceContext, limit: int = 50) -> list[AuditLog]:
    limit = max(0, min(limit, 500))
    return await AuditLog.filter(actor_id=ctx.user_id).order_by("-created_at", "-id").limit(limit)
