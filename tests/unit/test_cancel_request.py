"""What Cancel Booking takes from the two sagas (and from a redrive), refused before anything is written."""

from __future__ import annotations

import pytest

from booking.errors import InvalidSagaInput
from booking.models import CancelRequest, parse_task_input


def test_the_booking_sagas_compensation_names_the_booking_only() -> None:
    request = parse_task_input({"bookingId": "b-1"}, CancelRequest)

    assert (request.action, request.cancellation_key, request.refund) == ("compensate", None, None)


def test_the_cancellation_saga_names_its_step_and_key() -> None:
    refund = {"status": "refunded", "amount": 100, "currency": "EUR"}
    request = parse_task_input(
        {"bookingId": "b-1", "action": "finish", "cancellationKey": "cancel-key-1", "refund": refund},
        CancelRequest,
    )

    assert (request.action, request.cancellation_key, request.refund) == ("finish", "cancel-key-1", refund)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (
            {"bookingId": "b-1", "action": "delete"},
            "action: Input should be 'compensate' or 'begin' or 'finish'",
        ),
        (
            {"bookingId": "b-1", "action": "begin", "cancellationKey": "short"},
            "cancellationKey: String should match",
        ),
        ({"bookingId": "b 1", "action": "begin"}, "bookingId: String should match"),
        ({"bookingId": "b-1", "refund": "all of it"}, "refund: Input should be a valid dictionary"),
        ({"bookingId": "b-1", "status": "CANCELLED"}, "status: Extra inputs are not permitted"),
    ],
)
def test_a_malformed_request_is_refused_naming_the_field(payload: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidSagaInput, match=problem.replace("(", r"\(")):
        parse_task_input(payload, CancelRequest)
