"""Opaque page cursors for lists ordered newest first by (created_at, id): unique and total."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.expressions import Q

from app.inputs import is_id

CURSOR_MAX = 200  # a cursor we hand out is about 80 characters


@dataclass(frozen=True)
class Position:
    created_at: datetime
    id: str


def encode(created_at: datetime, row_id: str) -> str:
    """The cursor of a row, for the rows after it; clients pass it back unread."""
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Position | None:
    """The position a cursor of ours names; None for anything we did not hand out."""
    if not cursor or len(cursor) > CURSOR_MAX or not cursor.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, row_id = raw.partition("|")
        created_at = datetime.fromisoformat(moment)
        if created_at.tzinfo is None:
            return None
        created_at = created_at.astimezone(UTC)
    except (binascii.Error, ValueError, OverflowError, UnicodeDecodeError):
        return None
    if not is_id(row_id):
        return None
    return Position(created_at, row_id)


def older_than(position: Position) -> Q:
    """The filter for the rows after `position` in newest-first order."""
    return Q(created_at__lt=position.created_at) | Q(created_at=position.created_at, id__lt=position.id)
