"""The loopback HTTPS receiver the forward plugin delivers to, shared by its tests and the chains'."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import AppFactory
from tests.support.https_server import Certificates, HttpsStandIn, make_certificates
from tests.support.live import LiveApp


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
async def stand_in_server(certificates: Certificates) -> AsyncIterator[HttpsStandIn]:
    async with HttpsStandIn(certificates) as server:
        yield server


@pytest.fixture
def stand_in(stand_in_server: HttpsStandIn) -> HttpsStandIn:
    stand_in_server.reset()
    return stand_in_server


@pytest.fixture
async def forwarding_app(make_app: AppFactory, stand_in: HttpsStandIn, certificates: Certificates) -> LiveApp:
    """An app whose plugins may reach the stand-in (and nothing else inside)."""
    return await make_app(outbound_allowed_hosts=(f"localhost:{stand_in.port}",), outbound_ca_file=certificates.ca_file)
