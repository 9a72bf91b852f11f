"""`dlq redrive` on what the booking saga could not undo (kind BookingFailed), and on a confirmed
booking whose event was never published (kind NotificationMissing), against the offline stack's AWS
endpoint as against `make run`. Each test asserts what every party sees afterwards: the booking
row, the seat count and its holders, the Payment API's ledger, the events on the topic, the DLQ."""

from __future__ import annotations

import json
from pathlib import Path

from offline.stack import OfflineStack
from tests.ops.conftest import Ops, failing_booking, in_dlq, visible_in_dlq

DOUBLES = Path(__file__).resolve().parent / "doubles"


def _seat(stack: OfflineStack, flight_id: str = "F1") -> tuple[int, set[str]]:
    flight = stack.flight(flight_id)
    assert flight is not None
    return int(flight["seatCapacity"]), set(flight.get("heldBy", set()))


def _only_message(stack: OfflineStack) -> dict[str, object]:
    """Read the one DLQ message and put it back (the tests read it before the tool does)."""
    queue = stack.resource("BookingDLQ")
    [raw] = stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    stack.sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=raw["ReceiptHandle"], VisibilityTimeout=0
    )
    body: dict[str, object] = json.loads(raw["Body"])
    return body


def test_a_refund_left_by_a_payment_outage_is_settled_once_the_api_is_back(
    stack: OfflineStack, ops: Ops
) -> None:
    stack.put_flight("F1", seats=3, price=12_000)
    stack.gateway.set_outage(True)
    booking_id, token, execution = failing_booking(stack)
    assert (execution["status"], execution["error"]) == ("FAILED", "PaymentUnavailable")
    message = _only_message(stack)
    assert (message["kind"], message["notUndone"]) == ("BookingFailed", ["refundPayment"])
    assert [event["status"] for event in stack.events()] == ["cancelled"]  # the saga's own
    stack.gateway.set_outage(False)

    run = ops("dlq", "redrive", "--booking", booking_id)

    assert run.code == 0, run.text
    assert "refundPayment: booking-offline-refund-payment answered" in run.text
    assert "settled: message deleted" in run.text
    assert in_dlq(stack) == 0
    booking = stack.booking(booking_id)
    assert booking is not None
    assert booking["status"] == "CANCELLED"
    assert _seat(stack) == (3, set())
    charge = stack.gateway.ledger(token)
    assert charge is not None  # the authorisation the outage kept is released, once
    assert (charge.status, charge.captures, charge.refunds, charge.amount_captured) == ("released", 0, 1, 0)
    assert stack.events() == []  # notifyBookingFailed was done: nothing published again


def test_captured_money_is_refunded_once_and_a_second_redrive_finds_nothing(
    stack: OfflineStack, ops: Ops
) -> None:
    stack.put_flight("F1", seats=3, price=12_000)
    booking_id, token, execution = failing_booking(
        stack,
        faults={"ConfirmBookingFunction": "BookingNotFound", "RefundPaymentFunction": "PaymentUnavailable"},
    )
    assert (execution["status"], execution["error"]) == ("FAILED", "BookingNotFound")
    assert _only_message(stack)["notUndone"] == ["refundPayment"]
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.amount_captured, charge.refunds) == ("captured", 12_000, 0)
    stack.events()
    stack.lambdas.clear_faults()
    others = ("CancelBookingFunction", "ReleaseFlightFunction", "NotifyBookingFunction")
    calls_before = {function: len(stack.lambdas.calls(function)) for function in others}

    first = ops("dlq", "redrive", "--booking", booking_id)
    second = ops("dlq", "redrive", "--booking", booking_id)
    everything = ops("dlq", "redrive", "--all")

    assert first.code == 0, first.text
    assert '"status": "refunded", "amount": 12000, "currency": "EUR"' in first.text
    assert "checked: booking CANCELLED, no seat held, money refunded" in first.text
    assert (second.code, second.lines) == (0, [f"no DLQ message for booking {booking_id}"])
    assert (everything.code, everything.lines) == (0, ["the Booking DLQ is empty"])
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures, charge.refunds, charge.amount_refunded) == (
        "refunded",
        1,
        1,
        12_000,
    )
    assert stack.gateway.requests["/refund"] == 1  # the saga's attempts never reached it; ours once
    # exactly what the message listed: the compensations that were done are not run again
    assert {function: len(stack.lambdas.calls(function)) for function in others} == calls_before
    booking = stack.booking(booking_id)
    assert booking is not None
    assert booking["status"] == "CANCELLED"
    assert _seat(stack) == (3, set())
    assert in_dlq(stack) == 0
    assert stack.events() == []


def test_a_seat_whose_release_failed_for_good_is_given_back(stack: OfflineStack, ops: Ops) -> None:
    stack.put_flight("F1", seats=3)
    booking_id, token, execution = failing_booking(
        stack, token="tok_chargeDeclined_r1", faults={"ReleaseFlightFunction": "Lambda.ServiceException"}
    )
    assert (execution["status"], execution["error"]) == ("FAILED", "PaymentDeclined")
    assert _only_message(stack)["notUndone"] == ["releaseFlightSeat"]  # a rejection not undone pages
    assert _seat(stack) == (2, {booking_id})
    stack.lambdas.clear_faults()

    run = ops("dlq", "redrive", "--booking", booking_id)

    assert run.code == 0, run.text
    assert 'releaseFlightSeat: booking-offline-release-flight answered {"status": "released"}' in run.text
    assert _seat(stack) == (3, set())
    booking = stack.booking(booking_id)
    assert booking is not None
    assert booking["status"] == "CANCELLED"
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures, charge.amount_captured) == ("declined", 0, 0)
    assert in_dlq(stack) == 0
    assert [event["status"] for event in stack.events()] == ["cancelled"]  # the saga's, not a second


def test_a_message_it_cannot_settle_stays_visible_with_the_reason(stack: OfflineStack, ops: Ops) -> None:
    stack.put_flight("F1", seats=3)
    stack.gateway.set_outage(True)
    booking_id, token, _ = failing_booking(stack)

    run = ops("dlq", "redrive", "--booking", booking_id)

    assert run.code == 1, run.text
    assert "refundPayment: booking-offline-refund-payment failed: PaymentUnavailable" in run.text
    assert "left in the DLQ: the money is not given back (refundPayment did not succeed)" in run.text
    assert "Traceback" not in run.text
    assert "stackTrace" not in run.text
    assert run.lines[-1] == "0 settled, 1 left in the DLQ"
    assert visible_in_dlq(stack) == 1  # left, and visible again at once for the next try
    assert stack.gateway.ledger(token) is None
    booking = stack.booking(booking_id)
    assert booking is not None
    assert booking["status"] == "CANCELLED"
    assert _seat(stack) == (3, set())


def test_a_dry_run_invokes_nothing_and_leaves_the_message_visible(stack: OfflineStack, ops: Ops) -> None:
    stack.put_flight("F1", seats=3, price=8_000)
    booking_id, token, _ = failing_booking(
        stack,
        faults={"ConfirmBookingFunction": "BookingNotFound", "RefundPaymentFunction": "PaymentUnavailable"},
    )
    stack.lambdas.clear_faults()
    refunds_before = len(stack.lambdas.calls("RefundPaymentFunction"))
    stack.events()

    run = ops("dlq", "redrive", "--booking", booking_id, "--dry-run")

    assert run.code == 0, run.text
    assert f'would invoke booking-offline-refund-payment {{"bookingId": "{booking_id}"}}' in run.text
    assert len(stack.lambdas.calls("RefundPaymentFunction")) == refunds_before
    assert visible_in_dlq(stack) == 1
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.refunds) == ("captured", 0)
    assert _seat(stack) == (3, set())
    assert stack.events() == []
    # and the real redrive still finds it at once
    assert ops("dlq", "redrive", "--booking", booking_id).code == 0
    assert in_dlq(stack) == 0


def test_a_missing_confirmation_is_published_once(stack: OfflineStack, ops: Ops) -> None:
    stack.put_flight("F1", seats=3, price=5_000)
    booking_id, token, execution = failing_booking(
        stack, faults={"NotifyBookingFunction": "Lambda.ServiceException"}
    )
    assert execution["status"] == "SUCCEEDED"
    message = _only_message(stack)
    assert (message["kind"], message["notDone"]) == ("NotificationMissing", ["notifyBookingConfirmed"])
    assert stack.events() == []
    stack.lambdas.clear_faults()

    run = ops("dlq", "redrive", "--all")
    again = ops("dlq", "redrive", "--all")

    assert run.code == 0, run.text
    assert "checked: booking CONFIRMED, seat held" in run.text
    assert (again.code, again.lines) == (0, ["the Booking DLQ is empty"])
    booking = stack.booking(booking_id)
    assert booking is not None
    [event] = stack.events()
    assert {key: event[key] for key in ("bookingId", "status", "bookingReference", "amount", "currency")} == {
        "bookingId": booking_id,
        "status": "confirmed",
        "bookingReference": booking["bookingReference"],
        "amount": 5_000,
        "currency": "EUR",
    }
    assert booking["status"] == "CONFIRMED"
    assert _seat(stack) == (2, {booking_id})
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures, charge.refunds) == ("captured", 1, 0)
    assert in_dlq(stack) == 0


def test_a_release_that_says_released_but_kept_the_seat_leaves_the_message(
    stack: OfflineStack, ops: Ops
) -> None:
    """The end state is read back, not taken from the functions' answers."""
    stack.put_flight("F1", seats=3)
    booking_id, _, _ = failing_booking(
        stack, token="tok_chargeDeclined_r2", faults={"ReleaseFlightFunction": "Lambda.ServiceException"}
    )
    stack.lambdas.clear_faults()
    stack.lambdas.replace_handler("ReleaseFlightFunction", "lying_release.handler", code_path=str(DOUBLES))

    run = ops("dlq", "redrive", "--booking", booking_id)

    assert run.code == 1, run.text
    assert "left in the DLQ: the seat is still held" in run.text
    assert _seat(stack) == (2, {booking_id})
    assert visible_in_dlq(stack) == 1


def test_a_cancel_that_says_cancelled_but_wrote_nothing_leaves_the_message(
    stack: OfflineStack, ops: Ops
) -> None:
    stack.put_flight("F1", seats=3)
    booking_id, _, _ = failing_booking(
        stack, token="tok_chargeDeclined_c1", faults={"CancelBookingFunction": "Lambda.ServiceException"}
    )
    assert _only_message(stack)["notUndone"] == ["cancelBooking", "notifyBookingFailed"]
    stack.lambdas.clear_faults()
    stack.lambdas.replace_handler("CancelBookingFunction", "lying_cancel.handler", code_path=str(DOUBLES))

    run = ops("dlq", "redrive", "--booking", booking_id)

    assert run.code == 1, run.text
    assert "left in the DLQ: booking is UNCONFIRMED, not CANCELLED" in run.text
    booking = stack.booking(booking_id)
    assert booking is not None
    assert booking["status"] == "UNCONFIRMED"
    assert visible_in_dlq(stack) == 1
