"""What is not a business rejection: compensated, and a DLQ message for a human where DESIGN §2 says."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from offline.payment_gateway import PaymentGateway
from offline.stack import OfflineStack
from tests.conftest import DOUBLES_PATH, authorisations_held, book, unique_token, with_task_timeout
from tests.doubles.gate import gate_path


def _assert_undone(stack: OfflineStack, token: str, seats: int, flight_id: str = "F1") -> None:
    assert stack.seats_left(flight_id) == seats
    assert stack.flight(flight_id).get("heldBy", set()) == set()  # type: ignore[union-attr]
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert charge.amount_captured == charge.amount_refunded  # no money kept


def test_reserve_booking_failure_gives_the_seat_back_and_pages(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    token = unique_token()
    stack.lambdas.inject("ReserveBookingFunction", "error", times=10, error_type="BookingStateConflict")

    outcome = book(stack, token=token)

    assert (outcome.status, outcome.error) == ("FAILED", "BookingStateConflict")
    assert outcome.booking is None
    assert stack.seats_left("F1") == 3
    assert stack.flight("F1").get("heldBy", set()) == set()  # type: ignore[union-attr]
    assert authorisations_held(stack, token) == []  # claimed by its Refund Payment and released
    [event] = stack.events()
    assert (event["status"], event["reason"]) == ("cancelled", "BookingStateConflict")
    [message] = stack.dlq_messages()
    assert message["kind"] == "BookingFailed"
    assert message["bookingId"] == outcome.booking_id
    assert message["error"]["Error"] == "BookingStateConflict"
    assert message["compensations"] == {
        "refundPayment": {"status": "released", "amount": 0, "currency": None},
        "cancelBooking": {"status": "absent"},
        "releaseFlightSeat": {"status": "released"},
        "notifyBookingFailed": {"status": "published"},
    }
    assert message["notUndone"] == []


def test_a_step_that_times_out_for_good_pages_and_ends_as_booking_failed(
    tmp_path: Path, other_stack: Callable[..., OfflineStack]
) -> None:
    """A Fail state may not report a States.* error (the ASL reserves the prefix; moto's interpreter
    fails the execution with States.Runtime when Booking Failed's ErrorPath names one): the DLQ
    message keeps States.Timeout and the execution ends BookingFailed. States.Timeout needs a task
    past its TimeoutSeconds: Reserve Flight's is 1 s in this copy of the definition, and the step is
    held at a gate for longer."""
    stack = other_stack(template=with_task_timeout(tmp_path, "Reserve Flight", 1))
    stack.put_flight("F1", seats=3)
    stack.lambdas.replace_handler("ReserveFlightFunction", "gate.reserve_flight", code_path=DOUBLES_PATH)
    booking_id, token = str(uuid.uuid4()), unique_token()
    gate_path(booking_id).touch()
    try:
        arn = stack.start_booking(booking_id, customer="alice", flight_id="F1", token=token)
        execution = stack.wait(arn)
    finally:
        gate_path(booking_id).unlink(missing_ok=True)

    assert (execution["status"], execution.get("error")) == ("FAILED", "BookingFailed")
    assert stack.states_entered(arn)[-2:] == ["Failed By Step Functions?", "Booking Failed In Step Functions"]
    [message] = stack.dlq_messages()
    assert (message["kind"], message["error"]["Error"]) == ("BookingFailed", "States.Timeout")
    assert authorisations_held(stack, token) == []


def test_confirm_failure_after_capture_refunds_the_money(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3, price=9_900)
    token = unique_token()
    stack.lambdas.inject("ConfirmBookingFunction", "error", times=10, error_type="BookingNotFound")

    outcome = book(stack, token=token)

    assert (outcome.status, outcome.error) == ("FAILED", "BookingNotFound")
    assert outcome.booking is not None
    assert outcome.booking["status"] == "CANCELLED"
    _assert_undone(stack, token, seats=3)
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures, charge.refunds, charge.amount_refunded) == (
        "refunded",
        1,
        1,
        9_900,
    )
    [event] = stack.events()
    assert (event["status"], event["amount"], event["refund"]) == ("cancelled", 9_900, "refunded")
    [message] = stack.dlq_messages()
    assert message["compensations"]["refundPayment"] == {
        "status": "refunded",
        "amount": 9_900,
        "currency": "EUR",
    }
    assert message["notUndone"] == []


def test_payment_api_down_twice_then_up_confirms_with_one_capture(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    token = unique_token("tok_processingError")

    outcome = book(stack, token=token)

    assert outcome.status == "SUCCEEDED"
    assert outcome.booking is not None
    assert outcome.booking["status"] == "CONFIRMED"
    assert stack.seats_left("F1") == 2
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures) == ("captured", 1)
    assert len(stack.lambdas.calls("CollectPaymentFunction")) == 3
    assert [event["status"] for event in stack.events()] == ["confirmed"]
    assert stack.dlq_messages() == []


def test_payment_api_down_for_good_cancels_gives_the_seat_back_and_pages(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    token = unique_token()
    stack.gateway.set_outage(True)

    outcome = book(stack, token=token)

    assert (outcome.status, outcome.error) == ("FAILED", "PaymentUnavailable")
    assert outcome.booking is not None
    assert outcome.booking["status"] == "CANCELLED"
    assert stack.seats_left("F1") == 3
    assert len(stack.lambdas.calls("CollectPaymentFunction")) == 5  # first try + 4 retries
    assert stack.gateway.ledger(token) is None  # the Payment API never took anything
    [message] = stack.dlq_messages()
    assert message["error"]["Error"] == "PaymentUnavailable"
    # The refund could not reach the Payment API either: the authorisation is still held.
    assert message["compensations"]["refundPayment"]["Error"] == "PaymentUnavailable"
    assert message["notUndone"] == ["refundPayment"]
    assert message["compensations"]["cancelBooking"] == {"status": "cancelled"}
    assert message["compensations"]["releaseFlightSeat"] == {"status": "released"}


def test_a_wrong_payment_api_url_cancels_and_pages_not_a_declined_card(
    other_stack: Callable[..., OfflineStack],
) -> None:
    """The functions reach a real gateway on a path it does not serve: its 404 is no declined card."""
    with PaymentGateway() as gateway:
        stack = other_stack(parameters={"PaymentApiUrl": gateway.url + "/v0"})
        stack.put_flight("F1", seats=3)
        token = unique_token()

        outcome = book(stack, token=token)

        assert (outcome.status, outcome.error) == ("FAILED", "PaymentUnavailable")
        assert outcome.booking is not None
        assert outcome.booking["status"] == "CANCELLED"
        assert stack.seats_left("F1") == 3
        assert gateway.requests["/v0/capture"] == 5  # retried as an outage: first try + 4 retries
        assert gateway.ledger(token) is None  # no money moved
        [message] = stack.dlq_messages()  # a human is paged
        assert message["error"]["Error"] == "PaymentUnavailable"
        assert message["notUndone"] == ["refundPayment"]


def test_failed_confirmation_notice_keeps_the_booking_paid_and_confirmed(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3, price=5_000)
    token = unique_token()
    stack.lambdas.inject("NotifyBookingFunction", "error", times=10, error_type="Lambda.ServiceException")

    outcome = book(stack, token=token)

    assert outcome.status == "SUCCEEDED"
    assert outcome.booking is not None
    assert outcome.booking["status"] == "CONFIRMED"
    assert json.loads(outcome.execution["output"])["status"] == "CONFIRMED"
    assert stack.seats_left("F1") == 2
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures, charge.refunds) == ("captured", 1, 0)
    assert stack.events() == []
    [message] = stack.dlq_messages()
    assert message["kind"] == "NotificationMissing"
    assert message["notDone"] == ["notifyBookingConfirmed"]
    assert message["booking"] == {
        "status": "CONFIRMED",
        "bookingReference": outcome.booking["bookingReference"],
    }
    assert (message["payment"]["amount"], message["payment"]["status"]) == (5_000, "captured")


def test_a_failing_compensation_does_not_stop_the_others(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    token = unique_token("tok_chargeDeclined")
    stack.lambdas.inject("CancelBookingFunction", "error", times=10, error_type="Lambda.ServiceException")

    outcome = book(stack, token=token)

    assert (outcome.status, outcome.error) == ("FAILED", "PaymentDeclined")
    assert outcome.booking is not None
    assert outcome.booking["status"] == "UNCONFIRMED"  # the one thing not undone
    assert stack.seats_left("F1") == 3  # the compensation after it still ran
    # So did Notify Booking Failed, which announces nothing: the booking is not CANCELLED. The event
    # waits, listed as not undone, for the human who finishes the cancellation (a redrive).
    assert stack.events() == []
    [message] = stack.dlq_messages()  # a rejection that could not be fully undone pages
    assert message["notUndone"] == ["cancelBooking", "notifyBookingFailed"]
    assert message["compensations"]["cancelBooking"]["Error"] == "Lambda.ServiceException"
    assert message["compensations"]["releaseFlightSeat"] == {"status": "released"}
    assert message["compensations"]["notifyBookingFailed"] == {"status": "not_announced"}


def test_no_payment_token_in_events_dlq_or_execution_result(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=2)
    confirmed_token = unique_token()
    failed_token = unique_token()
    book(stack, token=confirmed_token)
    stack.gateway.set_outage(True)
    failed = book(stack, token=failed_token)

    result = {key: failed.execution.get(key) for key in ("output", "error", "cause")}
    seen = json.dumps(stack.events()) + json.dumps(stack.dlq_messages()) + json.dumps(result)

    assert failed.error == "PaymentUnavailable"
    assert confirmed_token not in seen
    assert failed_token not in seen


def _assert_no_stack_trace(message: dict[str, Any]) -> None:
    text = json.dumps(message)
    assert "stackTrace" not in text
    assert ".py" not in text
    assert 'File \\"' not in text
    assert "/work/" not in text
    assert "/var/task" not in text


def test_dlq_messages_keep_each_errors_type_and_message_but_no_stack_trace(stack: OfflineStack) -> None:
    """The Cause Step Functions reports for a function error is its whole error body, stack trace and
    file paths included: the DLQ message keeps the type and the message only."""
    stack.put_flight("F1", seats=3)
    stack.gateway.set_outage(True)  # Collect Payment and Refund Payment raise for real, with a trace

    outcome = book(stack, token=unique_token())

    assert (outcome.status, outcome.error) == ("FAILED", "PaymentUnavailable")
    [message] = stack.dlq_messages()
    _assert_no_stack_trace(message)
    assert message["error"] == {
        "Error": "PaymentUnavailable",
        "Cause": "payment API answered 503 on /capture (service_unavailable)",
    }
    assert message["compensations"]["refundPayment"] == {
        "Error": "PaymentUnavailable",
        "Cause": "payment API answered 503 on /refund (service_unavailable)",
    }
    assert message["compensations"]["cancelBooking"] == {"status": "cancelled"}


@pytest.mark.own_stack
def test_a_missing_notification_message_carries_no_stack_trace(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    stack.sns.delete_topic(TopicArn=stack.resource("BookingTopic"))  # Notify Booking raises for real

    outcome = book(stack, token=unique_token())

    assert outcome.status == "SUCCEEDED"
    [message] = stack.dlq_messages()
    assert message["kind"] == "NotificationMissing"
    _assert_no_stack_trace(message)
    assert set(message["error"]) == {"Error", "Cause"}
    assert message["error"]["Cause"]
