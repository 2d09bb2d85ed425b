"""An app whose plugins may reach the loopback HTTPS receiver (tests/conftest.py's stand_in): the forward
plugin's tests and the chains'."""

from __future__ import annotations

import pytest

from tests.conftest import AppFactory
from tests.support.https_server import Certificates, HttpsStandIn
from tests.support.live import LiveApp


@pytest.fixture
async def forwarding_app(make_app: AppFactory, stand_in: HttpsStandIn, certificates: Certificates) -> LiveApp:
    """An app whose plugins may reach the stand-in (and nothing else inside)."""
    return await make_app(outbound_allowed_hosts=(f"localhost:{stand_in.port}",), outbound_ca_file=certificates.ca_file)
