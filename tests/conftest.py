"""One fixture builds the offline stack for every test that needs it (DESIGN §4)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from offline.server import OfflineServer
from offline.stack import OfflineStack

DASHBOARD_METRICS = frozenset(
    {
        "SuccessfulCancellation",
        "FailedCancellation",
        "SuccessfulBooking",
        "SuccessfulNotification",
        "FailedNotification",
        "SuccessfulReservation",
        "FailedReservation",
        "SuccessfulPayment",
        "FailedPayment",
        "InvalidPaymentRequest",
    }
)
"""DESIGN §2: the metric names the ServerlessAirline dashboards read (namespace, dimension `service`)."""


FUNCTIONS = (
    "ReserveFlightFunction",
    "ReleaseFlightFunction",
    "ReserveBookingFunction",
    "CollectPaymentFunction",
    "RefundPaymentFunction",
    "ConfirmBookingFunction",
    "CancelBookingFunction",
    "NotifyBookingFunction",
    "ApiFunction",
)
"""The template's functions: the saga's eight task functions and the Api function. A new one must be
added here, and so gets every check of tests/template and tests/api."""


@pytest.fixture
def stack() -> Iterator[OfflineStack]:
    """A fresh moto, Payment API and deployment of template.yaml per test, with fast retries and
    preloaded sandboxes. The functions' log lines reach the test's captured stdout. The test fails if
    a function or a state machine made a call its role's policies do not allow."""
    with OfflineStack(fast_retries=True, sandboxes="preloaded") as offline:
        yield offline
    offline.assert_iam_allowed()  # what the roles did not allow would be AccessDenied in AWS (0012)


@pytest.fixture
def served(stack: OfflineStack) -> Iterator[OfflineServer]:
    """`make run`'s server (on a free port) over the test's stack: HTTP and the real-time endpoint."""
    server = OfflineServer(stack, port=0)
    server.start()
    yield server
    server.shutdown()


@dataclass(frozen=True)
class Outcome:
    """How one booking ended, as every party sees it."""

    booking_id: str
    arn: str
    execution: dict[str, Any]
    booking: dict[str, Any] | None

    @property
    def status(self) -> str:
        return str(self.execution["status"])

    @property
    def error(self) -> str | None:
        return self.execution.get("error")


def book(
    stack: OfflineStack,
    *,
    flight_id: str = "F1",
    token: str = "tok_visa",  # noqa: S107 - a test card token
    customer: str = "alice",
) -> Outcome:
    """Start the saga for a new booking and wait for it to end."""
    booking_id = str(uuid.uuid4())
    arn = stack.start_booking(booking_id, customer=customer, flight_id=flight_id, token=token)
    execution = stack.wait(arn)
    return Outcome(booking_id, arn, execution, stack.booking(booking_id))


def unique_token(prefix: str = "tok_visa") -> str:
    """Each booking its own pre-authorised charge, as in production."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"
