"""`payments check`: every ended booking whose customer's authorisation is still held, and only those."""

from __future__ import annotations

import uuid

import pytest

from offline.stack import OfflineStack
from tests.conftest import DOUBLES_PATH, book, unique_token
from tests.doubles.gate import gate_path
from tests.ops.conftest import Ops


def test_payments_check_names_each_ended_booking_that_still_holds_its_authorisation(
    stack: OfflineStack, ops: Ops
) -> None:
    stack.put_flight("F1", seats=3)
    stack.put_flight("FULL", seats=0, maximum=3)
    cards = {name: unique_token() for name in ("confirmed", "refused", "outage", "stopped")}
    book(stack, token=cards["confirmed"])  # captured
    book(stack, flight_id="FULL", token=cards["refused"])  # released by its Refund Payment
    for path in ("/capture", "/refund"):  # the Payment API down for good for this charge
        stack.gateway.fail_charge(cards["outage"], path, 100)
    outage = book(stack, token=cards["outage"])
    assert outage.error == "PaymentUnavailable"
    # Stopped at Reserve Flight (held at a gate), before any compensation could run: as when an
    # execution times out or an operator stops it.
    stack.lambdas.replace_handler("ReserveFlightFunction", "gate.reserve_flight", code_path=DOUBLES_PATH)
    stopped_id = str(uuid.uuid4())
    gate_path(stopped_id).touch()
    try:
        arn = stack.start_booking(stopped_id, customer="carol", flight_id="F1", token=cards["stopped"])
        stack.wait_for_state(arn, "Reserve Flight")
        stack.sfn.stop_execution(executionArn=arn, error="OperatorStopped")
    finally:
        gate_path(stopped_id).unlink(missing_ok=True)
    stack.wait(arn)

    run = ops("payments", "check")

    assert run.code == 1, run.text
    held = sorted(line for line in run.lines if line.startswith("booking "))
    assert [line.split("  started ")[0] for line in held] == sorted(
        [
            f"booking {outage.booking_id}  saga FAILED PaymentUnavailable  charge authorised",
            f"booking {stopped_id}  saga ABORTED  charge never claimed",
        ]
    )
    assert run.lines[-1].startswith("2 of 4 ended bookings started in the last 168 h still hold")
    assert not any(card in run.text for card in cards.values())  # never a payment token

    # The Payment API is back: the pager's redrive releases the outage's charge, and the check agrees.
    stack.gateway.fail_charge(cards["outage"], "/refund", 0)
    assert ops("dlq", "redrive", "--booking", outage.booking_id).code == 0
    after = ops("payments", "check")
    assert after.code == 1
    assert [line.split("  saga ")[0] for line in after.lines if line.startswith("booking ")] == [
        f"booking {stopped_id}"
    ]


def test_with_no_authorisation_held_the_check_says_how_many_it_checked_and_exits_0(
    stack: OfflineStack, ops: Ops
) -> None:
    stack.put_flight("F1", seats=3)
    book(stack, token=unique_token())
    book(stack, token=unique_token("tok_chargeDeclined"))

    run = ops("payments", "check", "--since", "1")

    assert run.code == 0, run.text
    assert run.lines == [
        f"no authorisation held: 2 ended bookings started in the last 1 h checked, on stage 'offline' in "
        f"eu-west-1 at {stack.endpoint.url}"
    ]


def test_a_window_that_is_not_a_number_of_hours_is_refused_before_anything_is_read(
    ops: Ops, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        ops("payments", "check", "--since", "a week")

    assert exit_.value.code == 2
    assert "invalid --since 'a week': hours, more than 0, at most a year" in capsys.readouterr().err
