"""The happy path: a seat, a booking, a payment, a reference and one event."""

from __future__ import annotations

import json

from offline.stack import OfflineStack
from tests.conftest import book, unique_token


def test_confirmed_booking_holds_a_seat_is_paid_once_and_announced_once(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=5, price=12_345, currency="EUR")
    token = unique_token()

    outcome = book(stack, token=token)

    assert outcome.status == "SUCCEEDED"
    assert outcome.booking is not None
    assert outcome.booking["status"] == "CONFIRMED"
    reference = outcome.booking["bookingReference"]
    assert len(reference) == 6
    assert json.loads(outcome.execution["output"]) == {"status": "CONFIRMED", "bookingReference": reference}
    assert stack.seats_left("F1") == 4
    assert stack.flight("F1")["heldBy"] == {outcome.booking_id}  # type: ignore[index]
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures, charge.amount_captured, charge.currency) == (
        "captured",
        1,
        12_345,
        "EUR",
    )
    assert charge.refunds == 0
    events = stack.events()
    assert len(events) == 1
    assert events[0]["bookingId"] == outcome.booking_id
    assert events[0]["status"] == "confirmed"
    assert events[0]["bookingReference"] == reference
    assert (events[0]["amount"], events[0]["currency"]) == (12_345, "EUR")
    assert stack.dlq_messages() == []


def test_confirmed_path_takes_five_state_transitions(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=1)
    outcome = book(stack)

    states = stack.states_entered(outcome.arn)

    print(f"\nconfirmed booking: {len(states)} state transitions: {' → '.join(states)}")
    assert states == [
        "Reserve Flight",
        "Reserve Booking",
        "Collect Payment",
        "Confirm Booking",
        "Notify Booking Confirmed",
    ]


def test_every_confirmed_booking_gets_its_own_reference(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=8)

    outcomes = [book(stack, token=unique_token(), customer=f"customer-{n}") for n in range(8)]

    references = {outcome.booking["bookingReference"] for outcome in outcomes if outcome.booking}
    assert len(references) == 8
    assert stack.seats_left("F1") == 0
