"""Full flight, unknown flight, declined card: an ordinary outcome. Nothing kept, nobody paged."""

from __future__ import annotations

from offline.stack import OfflineStack
from tests.conftest import authorisations_held, book, unique_token


def test_full_flight_cancels_without_a_seat_a_charge_or_a_page(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=0, maximum=3)
    token = unique_token()

    outcome = book(stack, token=token)

    assert (outcome.status, outcome.error) == ("FAILED", "FlightFull")
    assert outcome.booking is None  # the booking row is never written before a seat is held
    assert stack.seats_left("F1") == 0
    # Refused before Reserve Booking claimed the charge: Refund Payment claims it now and releases the
    # authorisation the front end made; the customer's money is not held for a booking that is not.
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures, charge.refunds) == ("released", 0, 1)
    assert authorisations_held(stack, token) == []
    [event] = stack.events()
    assert (event["bookingId"], event["status"], event["reason"], event["amount"], event["refund"]) == (
        outcome.booking_id,
        "cancelled",
        "FlightFull",
        0,
        "released",
    )
    assert stack.dlq_messages() == []


def test_a_charge_released_by_a_rejected_booking_cannot_pay_for_another(stack: OfflineStack) -> None:
    """B fails at Reserve Flight before anyone claimed token T: B claims T to release it. A, on the same
    token, is then refused at its Reserve Booking (the first claim wins) and releases nothing of B's:
    no booking is ever paid with an authorisation already given back, and none stays held."""
    stack.put_flight("FULL", seats=0, maximum=3)
    stack.put_flight("F1", seats=2)
    token = unique_token()

    b = book(stack, flight_id="FULL", token=token, customer="bob")
    assert (b.status, b.error) == ("FAILED", "FlightFull")
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.refunds) == ("released", 1)

    a = book(stack, flight_id="F1", token=token, customer="alice")

    assert (a.status, a.error) == ("FAILED", "PaymentTokenInUse")
    assert a.booking is None  # its row and claim are written together, or neither
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures, charge.refunds) == ("released", 0, 1)  # nothing more
    assert stack.seats_left("F1") == 2
    assert stack.dlq_messages() == []


def test_unknown_flight_cancels_and_nothing_is_written(stack: OfflineStack) -> None:
    token = unique_token()

    outcome = book(stack, flight_id="NOPE", token=token)

    assert (outcome.status, outcome.error) == ("FAILED", "FlightNotFound")
    assert outcome.booking is None
    assert stack.flight("NOPE") is None  # a seat update must not create the flight
    assert authorisations_held(stack, token) == []  # released, never captured
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
