"""Every step keyed by booking id: a second run changes nothing and answers the same (DESIGN §2).

Step Functions retries, Lambda retries and redrives all run a step again; the retry that matters
most is the one after a write that succeeded but whose answer was lost.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from offline.stack import OfflineStack
from tests.conftest import book, unique_token

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"


def invoke(stack: OfflineStack, function: str, payload: dict[str, Any]) -> tuple[str | None, Any]:
    """Invoke a task function as the state machine does; return (function error type, result)."""
    response = stack.lambdas.invoke(function, json.dumps(payload))
    body = json.loads(response.body)
    return (body["errorType"] if response.function_error else None), body


def _payloads(booking_id: str, token: str) -> dict[str, dict[str, Any]]:
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "seat": {"bookingId": booking_id, "outboundFlightId": "F1"},
        "booking": {
            "bookingId": booking_id,
            "customer": "alice",
            "outboundFlightId": "F1",
            "paymentToken": token,
            "createdAt": created,
        },
        "payment": {"bookingId": booking_id, "outboundFlightId": "F1", "paymentToken": token},
        "refund": {"bookingId": booking_id, "paymentToken": token},
        "id": {"bookingId": booking_id},
        "confirmed": {
            "bookingId": booking_id,
            "customer": "alice",
            "outboundFlightId": "F1",
            "status": "confirmed",
            "bookingReference": "ABCDEF",
            "amount": 100,
            "currency": "EUR",
        },
    }


def test_every_forward_task_run_twice_has_one_effect_and_one_answer(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3, price=4_200)
    booking_id, token = str(uuid.uuid4()), unique_token()
    payload = _payloads(booking_id, token)
    steps = [
        ("ReserveFlightFunction", payload["seat"]),
        ("ReserveBookingFunction", payload["booking"]),
        ("CollectPaymentFunction", payload["payment"]),
        ("ConfirmBookingFunction", payload["id"]),
        ("NotifyBookingFunction", payload["confirmed"]),
    ]
    for function, step_input in steps:
        first = invoke(stack, function, step_input)
        second = invoke(stack, function, step_input)
        assert first[0] is None, (function, first)
        assert second == first, function

    assert stack.seats_left("F1") == 2
    booking = stack.booking(booking_id)
    assert booking is not None
    assert booking["status"] == "CONFIRMED"
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.captures, charge.amount_captured) == (1, 4_200)
    assert len(stack.events()) == 1


def test_every_compensation_run_twice_has_one_effect_and_one_answer(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    outcome = book(stack, token=(token := unique_token()))
    assert outcome.status == "SUCCEEDED"
    stack.events()
    payload = _payloads(outcome.booking_id, token)
    steps = [
        (
            "RefundPaymentFunction",
            payload["refund"],
            {"status": "refunded", "amount": 10_000, "currency": "EUR"},
        ),
        ("CancelBookingFunction", payload["id"], {"status": "cancelled"}),
        ("ReleaseFlightFunction", payload["seat"], None),
    ]
    for function, step_input, expected in steps:
        first = invoke(stack, function, step_input)
        second = invoke(stack, function, step_input)
        assert first[0] is None, (function, first)
        if expected is not None:
            assert first[1] == expected
            assert second[1] == expected
    # Releasing is the one whose second answer differs: the seat is no longer held.
    assert invoke(stack, "ReleaseFlightFunction", payload["seat"]) == (None, {"status": "not_held"})

    assert stack.seats_left("F1") == 3
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.refunds, charge.amount_refunded) == (1, 10_000)
    booking = stack.booking(outcome.booking_id)
    assert booking is not None
    assert booking["status"] == "CANCELLED"


def test_compensations_whose_forward_step_never_ran_change_nothing(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=2, maximum=3)
    booking_id = str(uuid.uuid4())
    payload = _payloads(booking_id, token := unique_token())

    assert invoke(stack, "ReleaseFlightFunction", payload["seat"]) == (None, {"status": "not_held"})
    assert invoke(stack, "CancelBookingFunction", payload["id"]) == (None, {"status": "absent"})
    refund = invoke(stack, "RefundPaymentFunction", payload["refund"])
    declined = invoke(
        stack, "RefundPaymentFunction", _payloads(str(uuid.uuid4()), "tok_chargeDeclined")["refund"]
    )

    # Reserve Booking never ran: Refund Payment claims the charge nobody claimed and gives back what it
    # holds (an authorisation is released; a declined charge holds nothing), and says so.
    assert refund == (None, {"status": "released", "amount": 0, "currency": None})
    assert declined == (None, {"status": "nothing_to_refund", "amount": 0, "currency": None})
    assert stack.seats_left("F1") == 2  # never above what it was, though below maximumSeating
    assert stack.booking(booking_id) is None
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures) == ("released", 0)
    # Run again, it changes nothing more: the same key, the same answer.
    assert invoke(stack, "RefundPaymentFunction", payload["refund"]) == refund
    assert stack.gateway.ledger(token) == charge


def lost_answer(stack: OfflineStack, function: str) -> list[str]:
    """Let `function` write, then lose its answer once; every way the end state shows a second effect."""
    stack.put_flight("F1", seats=3, price=7_000)
    token = unique_token()
    stack.lambdas.inject(function, "timeout_after_run", times=1)

    outcome = book(stack, token=token)

    found = []
    if outcome.status != "SUCCEEDED" or outcome.booking is None or outcome.booking["status"] != "CONFIRMED":
        found.append(f"not confirmed: execution {outcome.status} {outcome.error}")
    if [call.error_type for call in stack.lambdas.calls(function)] != ["Sandbox.Timedout", None]:
        found.append("the step was not retried exactly once")
    if stack.seats_left("F1") != 2 or stack.flight("F1").get("heldBy") != {outcome.booking_id}:  # type: ignore[union-attr]
        found.append("not exactly one seat held by the booking")
    charge = stack.gateway.ledger(token)
    if charge is None or (charge.captures, charge.amount_captured, charge.refunds) != (1, 7_000, 0):
        found.append(f"money moved other than once: {charge}")
    if [event["status"] for event in stack.events()] != ["confirmed"]:
        found.append("not exactly one confirmed event")
    if stack.dlq_messages():
        found.append("a DLQ message")
    return found


@pytest.mark.parametrize(
    "function",
    [
        "ReserveFlightFunction",
        "ReserveBookingFunction",
        "CollectPaymentFunction",
        "ConfirmBookingFunction",
        "NotifyBookingFunction",
    ],
)
def test_a_step_that_wrote_then_timed_out_is_retried_without_a_second_effect(
    stack: OfflineStack, function: str
) -> None:
    assert lost_answer(stack, function) == []


def test_the_same_lost_answer_catches_a_capture_keyed_per_attempt(stack: OfflineStack) -> None:
    """tests/doubles/keyless_capture.py asks for a second capture on the retry: the check must see it."""
    stack.lambdas.replace_handler("CollectPaymentFunction", "keyless_capture.handler", code_path=str(DOUBLES))

    found = lost_answer(stack, "CollectPaymentFunction")

    assert any(problem.startswith(("not confirmed", "money moved")) for problem in found), found


def test_the_same_booking_started_twice_runs_once(stack: OfflineStack) -> None:
    """Step Functions' own guard: a second start with the same name is the same execution while it
    runs (same input) and is refused once it has ended."""
    stack.put_flight("F1", seats=3)
    booking_id, token = str(uuid.uuid4()), unique_token()
    saga_input = json.dumps(stack.saga_input(booking_id, customer="alice", flight_id="F1", token=token))
    machine = stack.resource("ProcessBooking")
    arn = stack.sfn.start_execution(stateMachineArn=machine, name=booking_id, input=saga_input)[
        "executionArn"
    ]

    again = stack.sfn.start_execution(stateMachineArn=machine, name=booking_id, input=saga_input)[
        "executionArn"
    ]
    stack.wait(arn)
    with pytest.raises(ClientError) as refused:
        stack.sfn.start_execution(stateMachineArn=machine, name=booking_id, input=saga_input)

    assert again == arn
    assert refused.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    executions = stack.sfn.list_executions(stateMachineArn=machine)["executions"]
    assert [execution["name"] for execution in executions] == [booking_id]
    assert stack.seats_left("F1") == 2
    assert stack.gateway.ledger(token).captures == 1  # type: ignore[union-attr]


def test_a_second_booking_on_the_same_charge_is_refused_and_never_refunds_the_first(
    stack: OfflineStack,
) -> None:
    """A reused pre-authorisation: the second booking is cancelled, the first keeps its money."""
    stack.put_flight("F1", seats=3)
    token = unique_token()

    first = book(stack, token=token)
    second = book(stack, token=token)

    assert first.status == "SUCCEEDED"
    assert (second.status, second.error) == ("FAILED", "PaymentTokenInUse")
    assert second.booking is None
    assert stack.seats_left("F1") == 2
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.captures, charge.refunds) == ("captured", 1, 0)
    assert [event["status"] for event in stack.events()] == ["confirmed", "cancelled"]
    assert stack.dlq_messages() == []
