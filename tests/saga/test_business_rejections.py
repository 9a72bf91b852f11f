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
    # The charge was never claimed by this booking: it is not this booking's to release (it may be
    # about to pay for another one), and the Payment API was never called.
    assert stack.gateway.ledger(token) is None
    [event] = stack.events()
    assert (event["bookingId"], event["status"], event["reason"], event["amount"], event["refund"]) == (
        outcome.booking_id,
        "cancelled",
        "FlightFull",
        0,
        "not_claimed",
    )
    assert stack.dlq_messages() == []


def test_a_rejected_booking_leaves_alone_a_charge_another_booking_has_yet_to_claim(
    stack: OfflineStack,
) -> None:
    """B reuses A's token and fails at Reserve Flight before A's Reserve Booking has claimed it: B's
    Refund Payment must not release A's authorisation. Then A runs and is paid."""
    stack.put_flight("FULL", seats=0, maximum=3)
    stack.put_flight("F1", seats=2)
    token = unique_token()

    b = book(stack, flight_id="FULL", token=token, customer="bob")
    assert (b.status, b.error) == ("FAILED", "FlightFull")
    assert stack.lambdas.calls("RefundPaymentFunction")  # B's compensation ran, before any claim on T
    assert stack.gateway.ledger(token) is None  # and left A's authorisation untouched

    a = book(stack, flight_id="F1", token=token, customer="alice")

    assert a.status == "SUCCEEDED"
    assert a.booking is not None
    assert a.booking["status"] == "CONFIRMED"
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures, charge.refunds, charge.amount_refunded) == ("captured", 1, 0, 0)
    assert stack.seats_left("F1") == 1
    assert stack.dlq_messages() == []


def test_unknown_flight_cancels_and_nothing_is_written(stack: OfflineStack) -> None:
    token = unique_token()

    outcome = book(stack, flight_id="NOPE", token=token)

    assert (outcome.status, outcome.error) == ("FAILED", "FlightNotFound")
    assert outcome.booking is None
    assert stack.flight("NOPE") is None  # a seat update must not create the flight
    assert stack.gateway.ledger(token) is None  # never claimed, never captured, never touched
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
