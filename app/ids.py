import os
import secrets
import time


def new_id() -> str:
    """A collision-resistant, URL-safe string id: 128 random bits as 32 hex digits."""
    return os.urandom(16).hex()


def new_ordered_id() -> str:
    """Like `new_id`, but an id made later sorts after one made earlier (to the millisecond; then
    80 random bits): rows keyed by it are added at the end of their primary key's index instead of
    all over it, which on a table written as fast as the run records halves the cost of an insert."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def new_secret(nbytes: int = 32) -> str:
    """A random secret made of A-Z a-z 0-9 _ - (what Telegram allows in a webhook secret)."""
    return secrets.token_urlsafe(nbytes)
