import os
import secrets


def new_id() -> str:
    """A collision-resistant, URL-safe string id: 128 random bits as 32 hex digits."""
    return os.urandom(16).hex()


def new_secret(nbytes: int = 32) -> str:
    """A random secret made of A-Z a-z 0-9 _ - (what Telegram allows in a webhook secret)."""
    return secrets.token_urlsafe(nbytes)
