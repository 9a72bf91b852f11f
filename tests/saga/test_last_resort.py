"""When the Booking DLQ itself refuses the message a human needs, a human is still paged: the saga
counts `BookingNotReported`, whose alarm pages, and ends in `Booking Not Reported`. A business
rejection pages nobody, DLQ or no DLQ (decision 0002)."""

from __future__ import annotations

import pytest

from offline.stack import OfflineStack
from tests.conftest import book, booking_metric_sum, unique_token


def _refuse_dlq_messages(stack: OfflineStack) -> None:
    """SQS refuses every send from now on: the queue is gone."""
    stack.sqs.delete_queue(QueueUrl=stack.resource("BookingDLQ"))


@pytest.mark.own_stack
def test_a_failure_the_dlq_refuses_to_record_still_pages(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    stack.gateway.set_outage(True)
    _refuse_dlq_messages(stack)

    outcome = book(stack, token=unique_token())

    assert (outcome.status, outcome.error) == ("FAILED", "BookingNotReported")
    assert outcome.booking is not None
    assert outcome.booking["status"] == "CANCELLED"  # the compensations ran before the DLQ refused
    assert stack.seats_left("F1") == 3
    assert "Page Without The DLQ" in stack.states_entered(outcome.arn)
    assert booking_metric_sum("BookingNotReported") == 1


@pytest.mark.own_stack
def test_a_missing_notification_the_dlq_refuses_to_record_still_pages(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    token = unique_token()
    stack.lambdas.inject("NotifyBookingFunction", "error", times=10, error_type="Lambda.ServiceException")
    _refuse_dlq_messages(stack)

    outcome = book(stack, token=token)

    assert (outcome.status, outcome.error) == ("FAILED", "BookingNotReported")
    assert outcome.booking is not None
    assert outcome.booking["status"] == "CONFIRMED"  # paid and confirmed: nothing is undone
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures, charge.refunds) == ("captured", 1, 0)
    assert booking_metric_sum("BookingNotReported") == 1


@pytest.mark.own_stack
def test_a_business_rejection_pages_nobody_even_when_the_dlq_refuses(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=2)
    _refuse_dlq_messages(stack)

    outcome = book(stack, token=unique_token("tok_chargeDeclined"))

    assert (outcome.status, outcome.error) == ("FAILED", "PaymentDeclined")
    assert "Page Without The DLQ" not in stack.states_entered(outcome.arn)
    assert booking_metric_sum("BookingNotReported") == 0
