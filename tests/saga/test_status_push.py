"""The sagas push every status change once to the booking's subscribers, and a push never fails a booking.

The pushes are watched where they arrive: the stack's GraphQL endpoint, which the functions call
with SigV4 (`publishBookingStatus`). Who may publish is checked there too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from booking.status_push import TIMEOUT_SECONDS as STATUS_PUSH_TIMEOUT
from offline import template as cfn
from offline.auth import IamCaller
from offline.stack import TEMPLATE, OfflineStack
from offline.template import ACCOUNT_ID
from tests.conftest import book, unique_token

BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
CANCEL = "mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { id status } }"
FUNCTION_TIMEOUT = float(cfn.load(TEMPLATE)["Globals"]["Function"]["Timeout"])
PUSH_DEADLINE = FUNCTION_TIMEOUT - 1.5
"""Notify Booking stops waiting for AppSync 1.5 s before its timeout (DEADLINE_MARGIN_SECONDS)."""
PUBLISH = "mutation($i: BookingStatusChangeInput!) { publishBookingStatus(input: $i) { id customer status } }"


def _statuses(pushes: list[dict[str, Any]], booking_id: str) -> list[tuple[str, str | None]]:
    return [(p["status"], p.get("reason")) for p in pushes if p["id"] == booking_id]


def test_a_confirmed_booking_is_pushed_once_with_its_reference(
    stack: OfflineStack, pushes: list[dict[str, Any]]
) -> None:
    stack.put_flight("F1", seats=3)

    outcome = book(stack, customer="alice-sub")

    assert outcome.status == "SUCCEEDED"
    assert outcome.booking is not None
    [push] = [p for p in pushes if p["id"] == outcome.booking_id]
    assert (push["customer"], push["status"], push["bookingReference"]) == (
        "alice-sub",
        "CONFIRMED",
        outcome.booking["bookingReference"],
    )
    assert push["occurredAt"].endswith("Z")


def test_a_declined_card_is_pushed_once_as_cancelled_with_the_reason(
    stack: OfflineStack, pushes: list[dict[str, Any]]
) -> None:
    stack.put_flight("F1", seats=3)

    outcome = book(stack, token=unique_token("tok_chargeDeclined"))

    assert _statuses(pushes, outcome.booking_id) == [("CANCELLED", "PaymentDeclined")]


def test_a_customers_cancellation_is_pushed_as_cancelling_then_cancelled_once_each(
    stack: OfflineStack, pushes: list[dict[str, Any]]
) -> None:
    stack.put_flight("F1", seats=3)
    alice = stack.tokens.mint("alice-sub")
    booked = stack.graphql(
        BOOK, {"i": {"paymentToken": unique_token(), "bookingOutboundFlightId": "F1"}}, token=alice
    )
    booking_id = booked["data"]["processBooking"]["id"]
    stack.wait(stack.execution_arn("ProcessBooking", booking_id))
    stack.graphql(CANCEL, {"i": {"id": booking_id}}, token=alice)
    arn = stack.execution_arn("CancelBookingSaga", booking_id)
    assert stack.wait(arn)["status"] == "SUCCEEDED"

    # Run the status steps again, as a retry or a redrive would: nothing more is pushed.
    key = json.loads(stack.sfn.describe_execution(executionArn=arn)["input"])["cancellationKey"]
    stack.lambdas.invoke(
        "CancelBookingFunction",
        json.dumps({"bookingId": booking_id, "action": "begin", "cancellationKey": key}),
    )

    assert _statuses(pushes, booking_id) == [
        ("CONFIRMED", None),
        ("CANCELLING", None),
        ("CANCELLED", "CustomerCancelled"),
    ]


def test_a_push_that_fails_is_counted_and_the_booking_confirms_all_the_same(
    stack: OfflineStack, capfd: pytest.CaptureFixture[str]
) -> None:
    stack.put_flight("F1", seats=3)
    attempts: list[bytes] = []

    def down(body: bytes, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        attempts.append(body)
        return 503, {"errors": [{"errorType": "ServiceUnavailable", "message": "AppSync is down"}]}

    stack.endpoint_app.graphql = down

    outcome = book(stack)

    assert outcome.status == "SUCCEEDED"
    assert outcome.booking is not None
    assert outcome.booking["status"] == "CONFIRMED"
    assert [event["status"] for event in stack.events()] == ["confirmed"]  # the event, once
    assert stack.dlq_messages() == []  # a missed push pages nobody
    emitted = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    failed = [line for line in emitted if "FailedStatusPush" in line]
    assert len(failed) == 1
    assert failed[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert len(attempts) == 3  # refused three times: tried three times
    assert len({json.loads(body)["variables"]["i"]["occurredAt"] for body in attempts}) == 1  # one change


def test_a_slow_push_within_the_deadline_arrives_once_and_is_not_counted_as_failed(
    stack: OfflineStack, pushes: list[dict[str, Any]], capfd: pytest.CaptureFixture[str]
) -> None:
    # AppSync answering after 5 s: longer than an attempt without a deadline (4 s), well inside
    # Notify's deadline. The push waits for it: cut off at 4 s it would be lost (never repeated).
    stack.put_flight("F1", seats=3)
    watched = stack.endpoint_app.graphql
    assert watched is not None

    def slow(body: bytes, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        time.sleep(STATUS_PUSH_TIMEOUT + 1.0)
        return watched(body, **kwargs)

    stack.endpoint_app.graphql = slow

    outcome = book(stack)

    assert outcome.status == "SUCCEEDED"
    assert _statuses(pushes, outcome.booking_id) == [("CONFIRMED", None)]
    logged = capfd.readouterr().out
    assert not any('"FailedStatusPush"' in line for line in logged.splitlines() if line.startswith('{"_aws"'))


def test_a_push_left_unanswered_is_not_repeated_and_counted(
    stack: OfflineStack, capfd: pytest.CaptureFixture[str]
) -> None:
    # It may have reached the subscribers: a second attempt could push the change twice.
    stack.put_flight("F1", seats=3)
    answer = stack.endpoint_app.graphql
    assert answer is not None
    attempts: list[bytes] = []

    def slow(body: bytes, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        attempts.append(body)
        time.sleep(PUSH_DEADLINE + 0.5)  # past the push's deadline, within the function's timeout
        return answer(body, **kwargs)

    stack.endpoint_app.graphql = slow

    outcome = book(stack)

    assert outcome.status == "SUCCEEDED"
    assert len(attempts) == 1
    assert [call.error_type for call in stack.lambdas.calls("NotifyBookingFunction")] == [None]  # no retry
    logged = capfd.readouterr().out
    assert (
        sum('"FailedStatusPush"' in line for line in logged.splitlines() if line.startswith('{"_aws"')) == 1
    )


def _signed(stack: OfflineStack, caller: IamCaller, body: bytes) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url="https://appsync.offline.test/graphql",
        data=body,
        headers={"Content-Type": "application/json", "Host": "appsync.offline.test"},
    )
    SigV4Auth(Credentials(caller.access_key_id, caller.secret_access_key), "appsync", "eu-west-1").add_auth(
        request
    )
    return dict(request.headers.items())


@pytest.mark.parametrize(
    ("who", "answer"),
    [
        ("notify function", "ok"),
        ("cancel function", "ok"),
        ("another role", "Unauthorized"),
        ("customer", "Unauthorized"),
    ],
)
def test_only_the_stacks_pushing_functions_may_publish(stack: OfflineStack, who: str, answer: str) -> None:
    change = {
        "id": "b-1",
        "customer": "alice-sub",
        "status": "CONFIRMED",
        "occurredAt": "2020-01-15T08:00:00Z",
    }
    body = json.dumps({"query": PUBLISH, "variables": {"i": change}}).encode()
    if who == "customer":
        status, result = stack.api.execute(body, authorization=stack.tokens.mint("alice-sub"))
    else:
        role = {
            "notify function": f"booking-{stack.stage}-NotifyBookingFunctionRole",
            "cancel function": f"booking-{stack.stage}-CancelBookingFunctionRole",
            "another role": f"booking-{stack.stage}-ReserveFlightFunctionRole",
        }[who]
        caller = stack.api.iam.add(IamCaller.role_session(f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"))
        headers = _signed(stack, caller, body)
        status, result = stack.api.execute(body, authorization=None, headers=headers, path="/graphql")

    assert status == 200, result
    if answer == "ok":
        assert result == {
            "data": {"publishBookingStatus": {"id": "b-1", "customer": "alice-sub", "status": "CONFIRMED"}}
        }
    else:
        [error] = result["errors"]
        assert error["errorType"] == "Unauthorized"
        assert result["data"]["publishBookingStatus"] is None


def test_a_trusted_reading_service_may_not_publish_either(other_stack: Callable[..., OfflineStack]) -> None:
    reader = f"arn:aws:iam::{ACCOUNT_ID}:role/services/booking-reader"
    stack = other_stack(parameters={"TrustedServiceRoleArns": reader})
    caller = stack.api.iam.add(IamCaller.role_session(reader))
    body = json.dumps(
        {
            "query": PUBLISH,
            "variables": {
                "i": {
                    "id": "b-1",
                    "customer": "x",
                    "status": "CONFIRMED",
                    "occurredAt": "2020-01-15T08:00:00Z",
                }
            },
        }
    ).encode()
    status, result = stack.api.execute(body, authorization=None, headers=_signed(stack, caller, body))
    read = stack.api.execute(
        json.dumps({"query": 'query { getFlight(id: "nope") { id } }'}).encode(),
        authorization=None,
        headers=_signed(
            stack, caller, json.dumps({"query": 'query { getFlight(id: "nope") { id } }'}).encode()
        ),
    )

    assert read == (200, {"data": {"getFlight": None}})  # it is a service the API trusts to read
    assert status == 200
    assert result["errors"][0]["message"] == "Not Authorized to access publishBookingStatus on type Mutation"
