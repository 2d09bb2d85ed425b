from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (what both databases store and give back)."""
    return datetime.now(UTC)
