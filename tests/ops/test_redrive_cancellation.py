"""`dlq redrive` finishing a customer's cancellation (kind CancellationFailed): the booking is booked
and cancelled through the offline AppSync as a client would, a step of the cancellation saga fails
for good, and the pager's tool finishes it once the cause is gone. End state in full: booking row,
seat count and holders, ledger, events, DLQ."""

from __future__ import annotations

import json
import uuid
from typing import Any

from offline.stack import OfflineStack
from tests.ops.conftest import Ops, in_dlq, visible_in_dlq

BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
CANCEL = "mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { id status } }"


def _execution(stack: OfflineStack, saga: str, booking_id: str) -> str:
    return stack.execution_arn(saga, booking_id)


def _confirmed_then_cancelled(
    stack: OfflineStack, before_cancel: Any = None
) -> tuple[str, str, dict[str, Any]]:
    """Alice books F1 with a card of her own and cancels once it is CONFIRMED; `before_cancel()`
    runs in between (to break something). Answers the booking id, the card and the DLQ message."""
    token = stack.tokens.mint("alice-sub", username="alice")
    card = f"tok_visa_{uuid.uuid4().hex[:12]}"
    answer = stack.graphql(BOOK, {"i": {"paymentToken": card, "bookingOutboundFlightId": "F1"}}, token=token)
    booking_id: str = answer["data"]["processBooking"]["id"]
    assert stack.wait(_execution(stack, "ProcessBooking", booking_id))["status"] == "SUCCEEDED"
    assert [event["status"] for event in stack.events()] == ["confirmed"]
    if before_cancel is not None:
        before_cancel(booking_id)
    cancelled = stack.graphql(CANCEL, {"i": {"id": booking_id}}, token=token)
    assert cancelled["data"]["cancelBooking"] == {"id": booking_id, "status": "CANCELLING"}, cancelled
    execution = stack.wait(_execution(stack, "CancelBookingSaga", booking_id))
    assert (execution["status"], execution["error"]) == ("FAILED", "CancellationIncomplete")
    queue = stack.resource("BookingDLQ")
    [raw] = stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    stack.sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=raw["ReceiptHandle"], VisibilityTimeout=0
    )
    message: dict[str, Any] = json.loads(raw["Body"])
    assert message["kind"] == "CancellationFailed"
    return booking_id, card, message


def _seat(stack: OfflineStack) -> tuple[int, set[str]]:
    flight = stack.flight("F1")
    assert flight is not None
    return int(flight["seatCapacity"]), set(flight.get("heldBy", set()))


def test_a_refund_that_failed_for_good_is_finished_once_the_payment_api_recovers(
    stack: OfflineStack, ops: Ops
) -> None:
    stack.put_flight("F1", seats=3, price=15_000)
    booking_id, card, message = _confirmed_then_cancelled(stack, lambda _: stack.gateway.set_outage(True))
    assert message["notUndone"] == ["refundPayment", "markCancelled", "notifyBookingCancelled"]
    booking = stack.booking(booking_id)
    assert booking is not None
    assert booking["status"] == "CANCELLING"  # not CANCELLED while the money is out
    assert _seat(stack) == (3, set())  # the seat went back first
    assert stack.events() == []
    listed = ops("dlq", "list")
    assert f"CancellationFailed  booking {booking_id}" in listed.text
    assert "error PaymentUnavailable" in listed.text  # the first step that failed
    stuck = ops("dlq", "redrive", "--booking", booking_id)  # still down: nothing changes
    assert stuck.code == 1, stuck.text
    assert "markCancelled: not run (refundPayment did not succeed)" in stuck.text
    assert "notifyBookingCancelled: not run (refundPayment did not succeed)" in stuck.text
    assert visible_in_dlq(stack) == 1
    assert stack.events() == []
    stack.gateway.set_outage(False)
    dry = ops("dlq", "redrive", "--booking", booking_id, "--dry-run")
    assert dry.code == 0, dry.text
    key = message["cancellationKey"]
    assert dry.lines[1:4] == [
        f'  would invoke booking-offline-refund-payment {{"bookingId": "{booking_id}"}}',
        f'  would invoke booking-offline-cancel-booking {{"bookingId": "{booking_id}", "action": "finish", '
        f'"cancellationKey": "{key}", "refund": "<refundPayment\'s answer>"}}',
        f'  would invoke booking-offline-notify-booking {{"bookingId": "{booking_id}", '
        '"customer": "alice-sub", "outboundFlightId": "F1", "status": "cancelled", '
        '"reason": "CustomerCancelled", "refund": "<refundPayment\'s answer>"}',
    ]
    untouched = stack.gateway.ledger(card)
    assert untouched is not None
    assert (untouched.status, untouched.refunds) == ("captured", 0)

    run = ops("dlq", "redrive", "--booking", booking_id)
    again = ops("dlq", "redrive", "--booking", booking_id)

    assert run.code == 0, run.text
    assert "checked: booking CANCELLED, no seat held, money refunded" in run.text
    assert (again.code, again.lines) == (0, [f"no DLQ message for booking {booking_id}"])
    booking = stack.booking(booking_id)
    assert booking is not None
    assert booking["status"] == "CANCELLED"
    assert _seat(stack) == (3, set())
    charge = stack.gateway.ledger(card)
    assert charge is not None
    assert (charge.status, charge.captures, charge.refunds, charge.amount_refunded) == (
        "refunded",
        1,
        1,
        15_000,
    )
    [event] = stack.events()
    assert {key: event[key] for key in ("bookingId", "status", "reason", "refund", "amount")} == {
        "bookingId": booking_id,
        "status": "cancelled",
        "reason": "CustomerCancelled",
        "refund": "refunded",
        "amount": 15_000,
    }
    assert in_dlq(stack) == 0


def test_a_release_that_failed_for_good_is_finished_after_the_fault_clears(
    stack: OfflineStack, ops: Ops
) -> None:
    stack.put_flight("F1", seats=3, price=9_000)

    def break_release(booking_id: str) -> None:
        stack.lambdas.inject(
            "ReleaseFlightFunction",
            "error",
            times=50,
            error_type="Lambda.ServiceException",
            booking_id=booking_id,
        )

    booking_id, card, message = _confirmed_then_cancelled(stack, break_release)
    assert message["notUndone"] == ["releaseFlightSeat"]
    assert _seat(stack) == (2, {booking_id})
    [event] = stack.events()  # the money went back and the customer was told, without waiting for the seat
    assert (event["status"], event["refund"]) == ("cancelled", "refunded")
    stack.lambdas.clear_faults()

    run = ops("dlq", "redrive", "--booking", booking_id)

    assert run.code == 0, run.text
    assert 'releaseFlightSeat: booking-offline-release-flight answered {"status": "released"}' in run.text
    assert _seat(stack) == (3, set())
    booking = stack.booking(booking_id)
    assert booking is not None
    assert booking["status"] == "CANCELLED"
    charge = stack.gateway.ledger(card)
    assert charge is not None
    assert (charge.status, charge.refunds, charge.amount_refunded) == ("refunded", 1, 9_000)
    assert stack.events() == []
    assert in_dlq(stack) == 0


def test_a_cancellation_that_never_began_is_run_whole_and_nothing_follows_a_failed_begin(
    stack: OfflineStack, ops: Ops
) -> None:
    stack.put_flight("F1", seats=3, price=7_000)

    def break_cancel(booking_id: str) -> None:
        stack.lambdas.inject(
            "CancelBookingFunction",
            "error",
            times=50,
            error_type="BookingStoreUnavailable",
            booking_id=booking_id,
        )

    booking_id, card, message = _confirmed_then_cancelled(stack, break_cancel)
    assert message["notUndone"] == [
        "markCancelling",
        "releaseFlightSeat",
        "refundPayment",
        "markCancelled",
        "notifyBookingCancelled",
    ]
    refunds = len(stack.lambdas.calls("RefundPaymentFunction"))
    releases = len(stack.lambdas.calls("ReleaseFlightFunction"))

    stuck = ops("dlq", "redrive", "--booking", booking_id)  # the booking store still refuses

    assert stuck.code == 1, stuck.text
    assert "markCancelling: booking-offline-cancel-booking failed: BookingStoreUnavailable" in stuck.text
    assert stuck.text.count("not run (markCancelling failed)") == 4
    assert len(stack.lambdas.calls("RefundPaymentFunction")) == refunds
    assert len(stack.lambdas.calls("ReleaseFlightFunction")) == releases
    booking = stack.booking(booking_id)
    assert booking is not None
    assert booking["status"] == "CONFIRMED"
    assert _seat(stack) == (2, {booking_id})
    assert visible_in_dlq(stack) == 1
    stack.lambdas.clear_faults()

    run = ops("dlq", "redrive", "--booking", booking_id)

    assert run.code == 0, run.text
    assert "checked: booking CANCELLED, no seat held, money refunded" in run.text
    booking = stack.booking(booking_id)
    assert booking is not None
    assert booking["status"] == "CANCELLED"
    assert _seat(stack) == (3, set())
    charge = stack.gateway.ledger(card)
    assert charge is not None
    assert (charge.status, charge.refunds, charge.amount_refunded) == ("refunded", 1, 7_000)
    [event] = stack.events()
    assert (event["status"], event["reason"], event["refund"]) == (
        "cancelled",
        "CustomerCancelled",
        "refunded",
    )
    assert in_dlq(stack) == 0
