"""When the Booking DLQ itself refuses the message a human needs, a human is still paged: the saga
counts `BookingNotReported`, whose alarm pages, and ends in `Booking Not Reported`. A business
rejection pages nobody, DLQ or no DLQ (decision 0002)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from offline.stack import OfflineStack
from offline.template import REGION
from tests.conftest import book, unique_token


def _refuse_dlq_messages(stack: OfflineStack) -> None:
    """SQS refuses every send from now on: the queue is gone."""
    stack.sqs.delete_queue(QueueUrl=stack.resource("BookingDLQ"))


def _bookings_not_reported() -> float:
    """What the BookingNotReported alarm reads (template.yaml, BookingNotReportedAlarm)."""
    now = datetime.now(UTC)
    statistics = boto3.client("cloudwatch", region_name=REGION).get_metric_statistics(
        Namespace="ServerlessAirline",
        MetricName="BookingNotReported",
        Dimensions=[{"Name": "service", "Value": "booking"}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(hours=1),
        Period=60,
        Statistics=["Sum"],
    )
    return float(sum(point["Sum"] for point in statistics["Datapoints"]))


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
    assert _bookings_not_reported() == 1


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
    assert _bookings_not_reported() == 1


@pytest.mark.own_stack
def test_a_business_rejection_pages_nobody_even_when_the_dlq_refuses(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=2)
    _refuse_dlq_messages(stack)

    outcome = book(stack, token=unique_token("tok_chargeDeclined"))

    assert (outcome.status, outcome.error) == ("FAILED", "PaymentDeclined")
    assert "Page Without The DLQ" not in stack.states_entered(outcome.arn)
    assert _bookings_not_reported() == 0
