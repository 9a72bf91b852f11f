"""Metrics, logs and input validation as operations see them (DESIGN §2)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from offline.stack import OfflineStack
from tests.conftest import DASHBOARD_METRICS, book, unique_token


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


@pytest.mark.own_stack
def test_every_metric_is_emitted_with_the_names_and_dimensions_dashboards_read(
    stack: OfflineStack, capfd: pytest.CaptureFixture[str]
) -> None:
    stack.put_flight("F1", seats=10)
    shared = unique_token()
    book(stack, token=shared)  # Successful*: reservation, payment, booking, notification
    book(stack, flight_id="NOPE")  # FailedReservation
    book(stack, token=unique_token("tok_chargeDeclined"))  # FailedPayment
    stack.lambdas.inject("ReserveBookingFunction", "error", times=1, error_type="Lambda.ServiceException")
    stack.lambdas.inject("CancelBookingFunction", "error", times=1, error_type="Lambda.ServiceException")
    book(stack, token=unique_token())  # nothing: a retried ReserveBooking still succeeds
    stack.lambdas.inject("CancelBookingFunction", "error", times=10, error_type="BookingStoreUnavailable")
    book(stack, token=unique_token("tok_chargeDeclined"))
    stack.lambdas.inject("NotifyBookingFunction", "error", times=10, error_type="BookingStoreUnavailable")
    book(stack, token=unique_token())

    # FailedCancellation and FailedNotification count failures inside the function: take away the
    # topic and the booking table under them.
    stack.lambdas.clear_faults()
    stack.sns.delete_topic(TopicArn=stack.resource("BookingTopic"))
    failed_notice = stack.lambdas.invoke("NotifyBookingFunction", json.dumps(_notification()))
    stack.dynamodb.delete_table(TableName=stack.resource("BookingTable"))
    failed_cancel = stack.lambdas.invoke(
        "CancelBookingFunction", json.dumps({"bookingId": str(uuid.uuid4())})
    )
    assert failed_notice.function_error
    assert failed_cancel.function_error
    # InvalidPaymentRequest: the Payment API refuses the request itself (key reused for another charge).
    booking_id = str(uuid.uuid4())
    for token in (unique_token(), unique_token()):
        stack.lambdas.invoke(
            "CollectPaymentFunction",
            json.dumps({"bookingId": booking_id, "outboundFlightId": "F1", "paymentToken": token}),
        )

    emitted = [line for line in _json_lines(capfd.readouterr().out) if "_aws" in line]
    names = {
        metric["Name"]
        for line in emitted
        for directive in line["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    assert names >= DASHBOARD_METRICS | {"ColdStart"}
    for line in emitted:
        for directive in line["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "ServerlessAirline"
            metric_names = {metric["Name"] for metric in directive["Metrics"]}
            expected_dimensions = (
                [["function_name", "service"]] if "ColdStart" in metric_names else [["service"]]
            )
            assert directive["Dimensions"] == expected_dimensions, metric_names
        assert line["service"] == "booking"


def _notification() -> dict[str, Any]:
    return {
        "bookingId": str(uuid.uuid4()),
        "customer": "alice",
        "outboundFlightId": "F1",
        "status": "confirmed",
    }


def test_logs_are_json_carry_the_booking_id_and_never_the_payment_token(
    stack: OfflineStack, capfd: pytest.CaptureFixture[str]
) -> None:
    stack.put_flight("F1", seats=1)
    confirmed_token, declined_token = unique_token(), unique_token("tok_chargeDeclined")
    confirmed = book(stack, token=confirmed_token)
    declined = book(stack, token=declined_token)

    output = capfd.readouterr()
    logs = [line for line in _json_lines(output.out) if "level" in line]

    assert confirmed_token not in output.out + output.err
    assert declined_token not in output.out + output.err
    by_booking = {line.get("correlation_id") for line in logs}
    assert {confirmed.booking_id, declined.booking_id} <= by_booking
    assert {"booking seat held", "booking payment captured", "booking booking confirmed"} <= {
        f"{line['service']} {line['message']}" for line in logs
    }


@pytest.mark.parametrize(
    ("function", "payload", "problem"),
    [
        ("ReserveFlightFunction", {"bookingId": "b1"}, "outboundFlightId: Field required"),
        (
            "ReserveFlightFunction",
            {"bookingId": "b 1", "outboundFlightId": "F1"},
            "bookingId: String should match",
        ),
        (
            "ReserveBookingFunction",
            {"bookingId": "b1", "customer": "a", "outboundFlightId": "F1", "paymentToken": "tok_visa"},
            "createdAt: Field required",
        ),
        (
            "CollectPaymentFunction",
            {"bookingId": "b1", "outboundFlightId": "F1", "paymentToken": "tok visa secret", "amount": 1},
            "amount: Extra inputs are not permitted",
        ),
        (
            "RefundPaymentFunction",
            {"bookingId": "b1", "paymentToken": "bad token value"},
            "paymentToken: String",
        ),
        ("ConfirmBookingFunction", [], "the payload must be a JSON object"),
        ("CancelBookingFunction", {"bookingId": ""}, "bookingId: String should match"),
        ("NotifyBookingFunction", {**_notification(), "status": "maybe"}, "status: Input should be"),
    ],
)
def test_a_task_with_bad_input_fails_by_name_says_what_is_wrong_and_writes_nothing(
    stack: OfflineStack, function: str, payload: Any, problem: str
) -> None:
    stack.put_flight("F1", seats=2)

    response = stack.lambdas.invoke(function, json.dumps(payload))

    body = json.loads(response.body)
    assert response.function_error == "Unhandled"
    assert body["errorType"] == "InvalidSagaInput"
    assert problem in body["errorMessage"]
    assert "secret" not in body["errorMessage"]
    assert "bad token value" not in body["errorMessage"]
    assert stack.seats_left("F1") == 2
    assert stack.booking("b1") is None
    assert stack.gateway.charges() == {}
    assert stack.events() == []
