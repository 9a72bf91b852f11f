"""The operator's tool against the offline stack, through its loopback AWS endpoint, as against `make run`.

`ops("dlq", "list")` runs `python -m booking.ops dlq list --endpoint-url <the stack's endpoint>` in
this process (its `main`), and answers its exit status and printed lines. Sagas end in the Booking
DLQ the way they do in production: faults injected into one booking's functions, or the Payment API
down.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from booking.ops.cli import main
from offline.stack import OfflineStack


@dataclass(frozen=True)
class Run:
    """What one command did: its exit status and every line it printed."""

    code: int
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


Ops = Callable[..., Run]


@pytest.fixture
def ops(stack: OfflineStack) -> Ops:
    def run(*args: str) -> Run:
        lines: list[str] = []
        code = main([*args, "--endpoint-url", stack.endpoint.url], out=lines.append)
        return Run(code, lines)

    return run


def in_dlq(stack: OfflineStack) -> int:
    """Messages in the Booking DLQ, visible or not, without receiving any (which would hide them)."""
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=stack.resource("BookingDLQ"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def visible_in_dlq(stack: OfflineStack) -> int:
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=stack.resource("BookingDLQ"), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def failing_booking(
    stack: OfflineStack,
    *,
    faults: dict[str, str] | None = None,
    flight_id: str = "F1",
    customer: str = "alice",
    token: str | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """Book with each function of `faults` failing for this booking only (after every retry), with the
    error name given; answer the booking id, its card and the ended execution."""
    booking_id = str(uuid.uuid4())
    token = token or f"tok_visa_{uuid.uuid4().hex[:12]}"
    for function, error_type in (faults or {}).items():
        stack.lambdas.inject(function, "error", times=50, error_type=error_type, booking_id=booking_id)
    arn = stack.start_booking(booking_id, customer=customer, flight_id=flight_id, token=token)
    execution = stack.wait(arn)
    return booking_id, token, execution
