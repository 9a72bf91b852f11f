"""Full flight, unknown flight, declined card: an ordinary outcome. Nothing kept, nobody paged."""

from __future__ import annotations

from offline.stack import OfflineStack
from tests.conftest import book, unique_token


def test_full_flight_cancels_without_a_seat_a_charge_or_a_page(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=0, maximum=3)
    token = unique_token()

    outcome = book(stack, token=token)

    assert (outcome.status, outcome.error) == ("FAILED", "FlightFull")
    assert outcome.booking is None  # the booking row is never written before a seat is held
    assert stack.seats_left("F1") == 0
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures, charge.amount_captured) == ("released", 0, 0)
    [event] = stack.events()
    assert (event["bookingId"], event["status"], event["reason"], event["amount"]) == (
        outcome.booking_id,
        "cancelled",
        "FlightFull",
        0,
    )
    assert stack.dlq_messages() == []


def test_unknown_flight_cancels_and_nothing_is_written(stack: OfflineStack) -> None:
    token = unique_token()

    outcome = book(stack, flight_id="NOPE", token=token)

    assert (outcome.status, outcome.error) == ("FAILED", "FlightNotFound")
    assert outcome.booking is None
    assert stack.flight("NOPE") is None  # a seat update must not create the flight
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert charge.captures == 0
    [event] = stack.events()
    assert (event["status"], event["reason"]) == ("cancelled", "FlightNotFound")
    assert stack.dlq_messages() == []


def test_declined_card_releases_the_seat_and_keeps_no_money(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=2)
    token = unique_token("tok_chargeDeclined")

    outcome = book(stack, token=token)

    assert (outcome.status, outcome.error) == ("FAILED", "PaymentDeclined")
    assert outcome.booking is not None
    assert outcome.booking["status"] == "CANCELLED"
    assert "bookingReference" not in outcome.booking
    assert stack.seats_left("F1") == 2
    assert stack.flight("F1").get("heldBy", set()) == set()  # type: ignore[union-attr]
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures, charge.amount_captured) == ("declined", 0, 0)
    [event] = stack.events()
    assert (event["bookingId"], event["status"], event["reason"], event["refund"]) == (
        outcome.booking_id,
        "cancelled",
        "PaymentDeclined",
        "nothing_to_refund",
    )
    assert stack.dlq_messages() == []
