"""A booking's life across its two sagas and across time: status in order, each state announced once
and only while it holds, with the transition's time and sequence (booking.lifecycle).

The interleavings are forced, never hoped for: Notify Booking Confirmed is held at a gate
(tests/doubles/gate.py) while the customer cancels; a late confirmation is replayed after the
cancellation as a retry or a redrive would send it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from booking import lifecycle
from booking.api import BOOKING_NAMESPACE
from booking.bookings import charge_claim_id
from offline.stack import OfflineStack
from tests.conftest import unique_token
from tests.doubles.gate import gate_path
from tests.saga.test_cancellation import DOUBLES, _book, _cancel, _refusal

ALICE = "alice-sub"


def _pushed(pushes: list[dict[str, Any]], booking_id: str) -> list[tuple[str, int]]:
    return [(push["status"], push["sequence"]) for push in pushes if push["id"] == booking_id]


def _published(events: list[dict[str, Any]], booking_id: str) -> list[tuple[str, int]]:
    return [(event["status"], event["sequence"]) for event in events if event["bookingId"] == booking_id]


def test_a_cancellation_while_notify_runs_is_refused_and_confirmed_never_follows_cancelling(
    stack: OfflineStack, pushes: list[dict[str, Any]]
) -> None:
    stack.put_flight("F1", seats=3)
    stack.lambdas.replace_handler("NotifyBookingFunction", "gate.notify_booking", code_path=str(DOUBLES))
    alice = stack.tokens.mint(ALICE)
    booking_id = str(uuid.uuid5(BOOKING_NAMESPACE, f"{ALICE}\nheld-notify-1"))
    saga = stack.execution_arn("ProcessBooking", booking_id)
    gate = gate_path(booking_id)
    gate.touch()
    try:
        assert _book(stack, alice, unique_token(), key="held-notify-1") == booking_id
        stack.wait_for_state(saga, "Notify Booking Confirmed")
        row = stack.booking(booking_id)
        assert row is not None
        assert row["status"] == "CONFIRMED"  # confirmed, not yet announced

        error_type, _ = _refusal(_cancel(stack, alice, booking_id, key="during-notify"))

        assert error_type == "BookingInProgress"
        assert stack.booking(booking_id) == row  # nothing written
        assert stack.running_executions() == [saga]  # nothing started
    finally:
        gate.unlink(missing_ok=True)
    assert stack.wait(saga)["status"] == "SUCCEEDED"
    assert _cancel(stack, alice, booking_id, key="after-notify")["data"]["cancelBooking"]["status"] == (
        "CANCELLING"
    )
    assert stack.wait(stack.execution_arn("CancelBookingSaga", booking_id))["status"] == "SUCCEEDED"

    expected = [("CONFIRMED", 2), ("CANCELLING", 3), ("CANCELLED", 4)]
    assert _pushed(pushes, booking_id) == expected
    events = stack.events()
    assert _published(events, booking_id) == [("confirmed", 2), ("cancelled", 4)]
    final = stack.booking(booking_id)
    assert final is not None
    assert (final["status"], final["statusSequence"], final["charge"]) == ("CANCELLED", 4, "refunded")
    # Each announcement carries the time of its transition, so they come in the order they happened.
    times = [push["occurredAt"] for push in pushes if push["id"] == booking_id]
    assert times == sorted(times)
    assert times[-1] == final["statusChangedAt"]


def test_a_late_confirmation_after_a_cancellation_is_not_announced(
    stack: OfflineStack, pushes: list[dict[str, Any]]
) -> None:
    """Notify Booking Confirmed failed for good (NotificationMissing); the customer then cancelled. A
    retry or a redrive of that notification now finds the booking CANCELLED: it announces nothing."""
    stack.put_flight("F1", seats=3)
    alice = stack.tokens.mint(ALICE)
    card = unique_token()
    stack.lambdas.inject("NotifyBookingFunction", "error", times=20, error_type="Lambda.ServiceException")
    booking_id = _book(stack, alice, card)
    assert stack.wait(stack.execution_arn("ProcessBooking", booking_id))["status"] == "SUCCEEDED"
    [missing] = stack.dlq_messages()
    assert missing["kind"] == "NotificationMissing"
    stack.lambdas.clear_faults()
    _cancel(stack, alice, booking_id, key="cancel-first")
    assert stack.wait(stack.execution_arn("CancelBookingSaga", booking_id))["status"] == "SUCCEEDED"
    before = stack.events()
    late = {
        "bookingId": booking_id,
        "customer": ALICE,
        "outboundFlightId": "F1",
        "status": "confirmed",
        "bookingReference": missing["booking"]["bookingReference"],
        "amount": missing["payment"]["amount"],
        "currency": missing["payment"]["currency"],
    }

    answer = stack.lambdas.invoke("NotifyBookingFunction", json.dumps(late))

    assert answer.function_error is None
    assert json.loads(answer.body) == {"status": "not_announced", "current": "CANCELLED"}
    assert _published(before, booking_id) == [("cancelled", 4)]
    assert _published(stack.events(), booking_id) == []  # nothing more
    assert _pushed(pushes, booking_id) == [("CANCELLING", 3), ("CANCELLED", 4)]


def test_every_status_write_moves_along_the_lifecycle_and_numbers_the_change(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    alice = stack.tokens.mint(ALICE)
    card = unique_token()
    booking_id = _book(stack, alice, card)
    stack.wait(stack.execution_arn("ProcessBooking", booking_id))
    confirmed = stack.booking(booking_id)
    _cancel(stack, alice, booking_id, key="numbered-1")
    stack.wait(stack.execution_arn("CancelBookingSaga", booking_id))
    cancelled = stack.booking(booking_id)

    assert confirmed is not None
    assert cancelled is not None
    assert (confirmed["status"], confirmed["statusSequence"], confirmed["charge"]) == (
        "CONFIRMED",
        2,
        lifecycle.CAPTURED,
    )
    assert (cancelled["status"], cancelled["statusSequence"]) == ("CANCELLED", 4)
    assert confirmed["statusChangedAt"] < cancelled["statusChangedAt"]
    claim = stack.booking(charge_claim_id(card))
    assert claim is not None
    assert (claim["bookingId"], claim["charge"]) == (booking_id, lifecycle.REFUNDED)


def test_the_lifecycle_has_exactly_the_designed_moves() -> None:
    assert {
        ("UNCONFIRMED", "CONFIRMED"),
        ("CONFIRMED", "CANCELLING"),
        ("CANCELLING", "CANCELLED"),
        ("UNCONFIRMED", "CANCELLED"),
    } == lifecycle.TRANSITIONS
    for source in lifecycle.STATUSES:
        for target in lifecycle.STATUSES:
            if (source, target) not in lifecycle.TRANSITIONS:
                with pytest.raises(lifecycle.IllegalTransition):
                    lifecycle.transition(source, target, lifecycle.now())
