"""Fixtures for unit tests that talk to the embedded Payment API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from offline.payment_gateway import PaymentGateway


@pytest.fixture(scope="session")
def _gateway_server() -> Iterator[PaymentGateway]:
    """One server for the session: starting one per test would dominate the run time, and
    ``reset()`` gives each test a clean ledger anyway."""
    with PaymentGateway() as gateway:
        yield gateway


@pytest.fixture
def gateway(_gateway_server: PaymentGateway) -> Iterator[PaymentGateway]:
    """The shared gateway with an empty ledger and no fault switched on."""
    _gateway_server.reset()
    yield _gateway_server
    _gateway_server.reset()
