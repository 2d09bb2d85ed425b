"""What a receiver of the forward plugin's deliveries checks."""

from __future__ import annotations

import hashlib
import hmac

from app.plugins.handlers.forward import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.support.https_server import Received


def signed_by(received: Received, secret: str) -> bool:
    """What a receiver checks: the signature over `<timestamp>.<body>` with its copy of the secret."""
    expected = hmac.new(
        secret.encode(), received.headers[TIMESTAMP_HEADER.lower()].encode() + b"." + received.body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(received.headers[SIGNATURE_HEADER.lower()], f"sha256={expected}")
