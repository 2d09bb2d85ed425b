"""Whether Telegram can deliver webhooks to PUBLIC_URL: an HTTPS address on an allowed port that
is not private. Kept apart from the Bot API client, so that `serve` can check it without aiogram."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

# The only ports Telegram sends webhooks to.
WEBHOOK_PORTS = (443, 80, 88, 8443)
PORTS_IN_WORDS = "443, 80, 88 or 8443"
HTTPS_ADVICE = f"Set PUBLIC_URL to this server's public HTTPS address (port {PORTS_IN_WORDS})."


def public_url_problem(public_url: str, subject: str | None = None) -> str | None:
    """Why Telegram would refuse (or never reach) webhooks under `public_url`; None when it looks fine.
    `subject` names the address in the sentence (default: "PUBLIC_URL '<url>'")."""
    subject = subject or f"PUBLIC_URL {public_url!r}"
    try:
        parts = urlsplit(public_url)
        port = parts.port
    except ValueError:
        return f"{subject} is not a URL. {HTTPS_ADVICE}"
    if parts.scheme != "https":
        return f"{subject} is not HTTPS: Telegram refuses webhooks that are not HTTPS. {HTTPS_ADVICE}"
    if port is not None and port not in WEBHOOK_PORTS:
        return f"{subject} uses port {port}: Telegram sends webhooks only to port {PORTS_IN_WORDS}. {HTTPS_ADVICE}"
    host = parts.hostname or ""
    if _is_private(host):
        return f"{subject} names {host}, which Telegram cannot reach. {HTTPS_ADVICE}"
    return None


def _is_private(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global
