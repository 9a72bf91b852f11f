"""A customer cancels a confirmed booking: cancelBooking, the cancellation saga, and their races.

Every scenario asserts the whole end state: the booking row, the flight's seat count and holders,
the payment ledger, the events on the topic and the DLQ. The races run through the offline AppSync
into real parallel Api sandboxes; the one between a cancellation and a check-in is also run against
a deliberately racy Api (tests/doubles/racy_api.py), where its check must fail.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from booking.api import BOOKING_NAMESPACE
from offline.stack import OfflineStack
from tests.conftest import unique_token
from tests.doubles.gate import gate_path

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"
BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
CANCEL = "mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { id status } }"
CHECK_IN = "mutation($id: ID!) { updateBooking(input: {id: $id, checkedIn: true}) { id checkedIn } }"
GET = """query($id: ID!) { getBooking(id: $id) {
  id status checkedIn bookingReference refund { status amount currency } } }"""
ALICE, BOB = "alice-sub", "bob-sub"


def _execution(stack: OfflineStack, saga: str, booking_id: str) -> str:
    return stack.execution_arn(saga, booking_id)


def _cancellations(stack: OfflineStack) -> list[dict[str, Any]]:
    executions: list[dict[str, Any]] = stack.sfn.list_executions(
        stateMachineArn=stack.resource("CancelBookingSaga")
    )["executions"]
    return executions


def _book(stack: OfflineStack, token: str, card: str, flight: str = "F1", key: str | None = None) -> str:
    request = {"paymentToken": card, "bookingOutboundFlightId": flight}
    if key:
        request["idempotencyKey"] = key
    answer = stack.graphql(BOOK, {"i": request}, token=token)
    booking_id: str = answer["data"]["processBooking"]["id"]
    return booking_id


def _confirmed(stack: OfflineStack, token: str, flight: str = "F1") -> tuple[str, str]:
    """A CONFIRMED booking and its card; the confirmed event is drained."""
    card = unique_token()
    booking_id = _book(stack, token, card, flight)
    assert stack.wait(_execution(stack, "ProcessBooking", booking_id))["status"] == "SUCCEEDED"
    mine = [event["status"] for event in stack.events() if event["bookingId"] == booking_id]
    assert mine == ["confirmed"]
    return booking_id, card


def _cancel(stack: OfflineStack, token: str, booking_id: str, key: str | None = None) -> dict[str, Any]:
    request = {"id": booking_id} if key is None else {"id": booking_id, "idempotencyKey": key}
    return stack.graphql(CANCEL, {"i": request}, token=token)


def _refusal(answer: dict[str, Any]) -> tuple[str, str]:
    [error] = answer["errors"]
    assert answer["data"]["cancelBooking"] is None
    return error["errorType"], error["message"]


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the booking saga never got there"
        time.sleep(0.02)


def _world(stack: OfflineStack, booking_id: str, card: str) -> tuple[Any, ...]:
    """Everything a refused cancellation must leave as it was (events and DLQ are drained: empty)."""
    return (
        stack.booking(booking_id),
        stack.flight("F1"),
        stack.gateway.ledger(card),
        len(_cancellations(stack)),
        stack.events(),
        stack.dlq_messages(),
    )


# ---------------------------------------------------------------------------------------- scenarios


def test_a_cancelled_booking_gets_its_money_and_seat_back_and_is_announced(
    stack: OfflineStack, capfd: pytest.CaptureFixture[str]
) -> None:
    stack.put_flight("F1", seats=3, price=15_000, currency="EUR")
    alice = stack.tokens.mint(ALICE, username="alice")
    booking_id, card = _confirmed(stack, alice)
    assert stack.seats_left("F1") == 2
    capfd.readouterr()

    answer = _cancel(stack, alice, booking_id, key="cancel-key-01")

    assert answer == {"data": {"cancelBooking": {"id": booking_id, "status": "CANCELLING"}}}
    execution = stack.wait(_execution(stack, "CancelBookingSaga", booking_id))
    assert execution["status"] == "SUCCEEDED"
    row = stack.booking(booking_id)
    assert row is not None
    assert row["status"] == "CANCELLED"
    assert row["cancellationReason"] == "CustomerCancelled"
    assert row["cancellationKey"] == "cancel-key-01"
    assert row["cancellationRequestedBy"] == ALICE
    assert row["refund"] == {"status": "refunded", "amount": 15_000, "currency": "EUR"}
    assert row["checkedIn"] is False
    assert stack.seats_left("F1") == 3
    assert booking_id not in (stack.flight("F1") or {}).get("heldBy", set())
    charge = stack.gateway.ledger(card)
    assert charge is not None
    assert (charge.status, charge.captures, charge.refunds, charge.amount_refunded) == (
        "refunded",
        1,
        1,
        15_000,
    )
    [event] = stack.events()
    assert (event["bookingId"], event["status"], event["reason"]) == (
        booking_id,
        "cancelled",
        "CustomerCancelled",
    )
    assert (event["amount"], event["currency"], event["refund"]) == (15_000, "EUR", "refunded")
    assert card not in json.dumps(event)
    assert stack.dlq_messages() == []
    seen = stack.graphql(GET, {"id": booking_id}, token=alice)["data"]["getBooking"]
    assert (seen["status"], seen["refund"]) == (
        "CANCELLED",
        {"status": "refunded", "amount": 15_000, "currency": "EUR"},
    )
    assert stack.states_entered(_execution(stack, "CancelBookingSaga", booking_id)) == [
        "Mark Cancelling",
        "Release Flight Seat",
        "Refund Payment",
        "Mark Cancelled",
        "Notify Booking Cancelled",
    ]
    # The dashboards' SuccessfulCancellation counts a customer's cancellation once, as a failed booking's.
    logged = capfd.readouterr().out
    assert _metric_count(logged, "SuccessfulCancellation") == 1
    assert _metric_count(logged, "FailedCancellation") == 0
    assert card not in logged


def _metric_count(logged: str, name: str) -> int:
    """How many EMF lines of the functions' output carry the metric `name`."""
    count = 0
    for line in logged.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            emf = json.loads(line)
            names = {m["Name"] for d in emf["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
            count += name in names
    return count


def test_the_same_key_twice_is_one_cancellation_and_one_refund(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    alice = stack.tokens.mint(ALICE)
    booking_id, card = _confirmed(stack, alice)

    first = _cancel(stack, alice, booking_id, key="same-cancel-1")
    second = _cancel(stack, alice, booking_id, key="same-cancel-1")
    stack.wait(_execution(stack, "CancelBookingSaga", booking_id))
    third = _cancel(stack, alice, booking_id, key="same-cancel-1")

    assert first["data"]["cancelBooking"] == {"id": booking_id, "status": "CANCELLING"}
    assert second["data"]["cancelBooking"]["id"] == booking_id
    assert second["data"]["cancelBooking"]["status"] in {"CANCELLING", "CANCELLED"}
    assert third == {"data": {"cancelBooking": {"id": booking_id, "status": "CANCELLED"}}}
    assert len(_cancellations(stack)) == 1
    charge = stack.gateway.ledger(card)
    assert charge is not None
    assert (charge.refunds, stack.seats_left("F1")) == (1, 3)
    assert [event["status"] for event in stack.events()] == ["cancelled"]
    assert stack.dlq_messages() == []


@pytest.mark.parametrize(
    "keys", [("cancel-key-A", "cancel-key-B"), (None, None)], ids=["two keys", "no keys"]
)
def test_a_second_cancellation_with_another_key_is_refused_and_changes_nothing(
    stack: OfflineStack, keys: tuple[str | None, str | None]
) -> None:
    stack.put_flight("F1", seats=3)
    alice = stack.tokens.mint(ALICE)
    booking_id, card = _confirmed(stack, alice)
    assert _cancel(stack, alice, booking_id, key=keys[0])["data"]["cancelBooking"]["status"] == "CANCELLING"

    refused = _cancel(stack, alice, booking_id, key=keys[1])

    error_type, message = _refusal(refused)
    assert error_type == "BadRequest"
    assert message in {
        f"booking {booking_id} is already being cancelled",
        f"booking {booking_id} is already cancelled",
    }
    stack.wait(_execution(stack, "CancelBookingSaga", booking_id))
    after = _cancel(stack, alice, booking_id, key=keys[1])
    assert _refusal(after) == ("BadRequest", f"booking {booking_id} is already cancelled")
    assert len(_cancellations(stack)) == 1
    charge = stack.gateway.ledger(card)
    assert charge is not None
    assert charge.refunds == 1
    assert [event["status"] for event in stack.events()] == ["cancelled"]


def test_someone_elses_booking_is_not_theirs_to_cancel(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    alice, bob = stack.tokens.mint(ALICE), stack.tokens.mint(BOB)
    booking_id, card = _confirmed(stack, alice)
    before = _world(stack, booking_id, card)

    refused = _cancel(stack, bob, booking_id, key="bob-cancels-1")
    unknown = _cancel(stack, bob, str(uuid.uuid4()), key="bob-cancels-2")

    assert _refusal(refused) == ("Unauthorized", "Not Authorized to access cancelBooking on type Mutation")
    # A booking that does not exist gets the same answer: no existence oracle.
    assert _refusal(unknown) == ("Unauthorized", "Not Authorized to access cancelBooking on type Mutation")
    assert _world(stack, booking_id, card) == before


def test_a_cancellation_after_the_cut_off_is_refused_and_changes_nothing(stack: OfflineStack) -> None:
    # The template's default cut-off is 120 minutes; this flight leaves in 90.
    departure = (datetime.now(UTC) + timedelta(minutes=90)).replace(microsecond=0)
    stack.put_flight("F1", seats=3, departure=departure.isoformat().replace("+00:00", "Z"))
    alice = stack.tokens.mint(ALICE)
    booking_id, card = _confirmed(stack, alice)
    before = _world(stack, booking_id, card)

    error_type, message = _refusal(_cancel(stack, alice, booking_id, key="too-late-01"))

    closes = (departure - timedelta(minutes=120)).isoformat().replace("+00:00", "Z")
    assert (error_type, message) == (
        "BadRequest",
        f"too late to cancel booking {booking_id}: "
        f"cancellations close 120 minutes before departure ({closes})",
    )
    assert _world(stack, booking_id, card) == before


def test_a_checked_in_booking_is_cancelled_only_once_its_check_in_is_undone(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    alice = stack.tokens.mint(ALICE)
    booking_id, card = _confirmed(stack, alice)
    assert (
        stack.graphql(CHECK_IN, {"id": booking_id}, token=alice)["data"]["updateBooking"]["checkedIn"] is True
    )
    before = _world(stack, booking_id, card)

    refused = _refusal(_cancel(stack, alice, booking_id, key="checked-in-1"))

    assert refused == (
        "BadRequest",
        f"booking {booking_id} is checked in; "
        "undo the check-in (updateBooking checkedIn: false) to cancel it",
    )
    assert _world(stack, booking_id, card) == before
    undo = "mutation($id: ID!) { updateBooking(input: {id: $id, checkedIn: false}) { checkedIn } }"
    assert stack.graphql(undo, {"id": booking_id}, token=alice)["data"]["updateBooking"]["checkedIn"] is False
    assert (
        _cancel(stack, alice, booking_id, key="checked-in-2")["data"]["cancelBooking"]["status"]
        == "CANCELLING"
    )
    assert stack.wait(_execution(stack, "CancelBookingSaga", booking_id))["status"] == "SUCCEEDED"
    again = stack.graphql(CHECK_IN, {"id": booking_id}, token=alice)
    assert again["errors"][0]["message"] == (
        f"booking {booking_id} is CANCELLED: only a CONFIRMED booking can check in"
    )


@pytest.mark.parametrize(
    ("step", "double"),
    [("ReserveFlightFunction", "gate.reserve_flight"), ("ConfirmBookingFunction", "gate.confirm_booking")],
    ids=["before the row exists", "while UNCONFIRMED"],
)
def test_a_cancellation_while_the_booking_saga_runs_is_refused_and_changes_nothing(
    stack: OfflineStack, step: str, double: str
) -> None:
    stack.put_flight("F1", seats=3)
    stack.lambdas.replace_handler(step, double, code_path=str(DOUBLES))
    alice = stack.tokens.mint(ALICE)
    booking_id = str(uuid.uuid5(BOOKING_NAMESPACE, f"{ALICE}\nheld-booking-1"))
    gate = gate_path(booking_id)
    gate.touch()
    try:
        card = unique_token()
        assert _book(stack, alice, card, key="held-booking-1") == booking_id
        if step == "ConfirmBookingFunction":
            _until(lambda: (stack.booking(booking_id) or {}).get("status") == "UNCONFIRMED")
        row_before = stack.booking(booking_id)

        error_type, message = _refusal(_cancel(stack, alice, booking_id, key="too-early-1"))

        if step == "ReserveFlightFunction":  # no row yet: not a booking to cancel
            assert (error_type, message) == (
                "BadRequest",
                f"booking {booking_id} is not confirmed yet; cancel it once it is CONFIRMED",
            )
        else:  # the saga still runs: a cancellation would race it
            assert error_type == "BookingInProgress"
            assert message.startswith(f"booking {booking_id} is still being booked; cancel it once")
        assert stack.booking(booking_id) == row_before
        assert _cancellations(stack) == []
    finally:
        gate.unlink(missing_ok=True)
    assert stack.wait(_execution(stack, "ProcessBooking", booking_id))["status"] == "SUCCEEDED"
    assert (
        _cancel(stack, alice, booking_id, key="in-time-01")["data"]["cancelBooking"]["status"] == "CANCELLING"
    )
    assert stack.wait(_execution(stack, "CancelBookingSaga", booking_id))["status"] == "SUCCEEDED"
    assert stack.seats_left("F1") == 3


def test_a_refund_that_fails_twice_then_succeeds_cancels_once(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3, price=9_900)
    alice = stack.tokens.mint(ALICE)
    booking_id, card = _confirmed(stack, alice)
    stack.lambdas.inject(
        "RefundPaymentFunction", "error", times=2, error_type="PaymentUnavailable", booking_id=booking_id
    )

    _cancel(stack, alice, booking_id, key="retried-refund")

    assert stack.wait(_execution(stack, "CancelBookingSaga", booking_id))["status"] == "SUCCEEDED"
    assert (
        len(
            [
                call
                for call in stack.lambdas.calls("RefundPaymentFunction")
                if call.payload.get("bookingId") == booking_id
            ]
        )
        == 3
    )
    row = stack.booking(booking_id)
    assert row is not None
    assert (row["status"], row["refund"]["status"]) == ("CANCELLED", "refunded")
    charge = stack.gateway.ledger(card)
    assert charge is not None
    assert (charge.status, charge.refunds, charge.amount_refunded) == ("refunded", 1, 9_900)
    assert stack.seats_left("F1") == 3
    assert [event["status"] for event in stack.events()] == ["cancelled"]
    assert stack.dlq_messages() == []


def test_a_refund_whose_answer_is_lost_is_asked_again_with_the_same_key_and_moves_money_once(
    stack: OfflineStack,
) -> None:
    stack.put_flight("F1", seats=3, price=9_900)
    alice = stack.tokens.mint(ALICE)
    booking_id, card = _confirmed(stack, alice)
    stack.gateway.lose_next_answers("/refund", 1)

    _cancel(stack, alice, booking_id, key="lost-refund")

    assert stack.wait(_execution(stack, "CancelBookingSaga", booking_id))["status"] == "SUCCEEDED"
    assert stack.gateway.keys("/refund") == [f"booking-{booking_id}-refund"] * 2  # the booking's one key
    charge = stack.gateway.ledger(card)
    assert charge is not None
    assert (charge.status, charge.refunds, charge.amount_refunded) == ("refunded", 1, 9_900)
    row = stack.booking(booking_id)
    assert row is not None
    assert row["refund"] == {"status": "refunded", "amount": 9_900, "currency": "EUR"}


def test_a_refund_that_fails_for_good_frees_the_seat_keeps_the_booking_cancelling_and_pages(
    stack: OfflineStack,
) -> None:
    stack.put_flight("F1", seats=3)
    alice = stack.tokens.mint(ALICE)
    booking_id, card = _confirmed(stack, alice)
    stack.gateway.set_outage(True)

    _cancel(stack, alice, booking_id, key="refund-outage")

    execution = stack.wait(_execution(stack, "CancelBookingSaga", booking_id))
    assert (execution["status"], execution["error"]) == ("FAILED", "CancellationIncomplete")
    row = stack.booking(booking_id)
    assert row is not None
    assert row["status"] == "CANCELLING"  # CANCELLED only once the money is back
    assert "refund" not in row
    seen = stack.graphql(GET, {"id": booking_id}, token=alice)["data"]["getBooking"]
    assert (seen["status"], seen["refund"]) == ("CANCELLING", None)
    listed = stack.graphql(
        'query { getBookingByStatus(status: {eq: "CANCELLING"}) { items { id status } } }', token=alice
    )["data"]["getBookingByStatus"]["items"]
    assert listed == [{"id": booking_id, "status": "CANCELLING"}]
    assert stack.seats_left("F1") == 3  # someone else may book the seat meanwhile
    charge = stack.gateway.ledger(card)
    assert charge is not None
    assert (charge.status, charge.refunds) == ("captured", 0)
    assert stack.events() == []  # the cancelled event waits for the refund
    [message] = stack.dlq_messages()
    assert message["kind"] == "CancellationFailed"
    assert (message["bookingId"], message["customer"], message["cancellationKey"]) == (
        booking_id,
        ALICE,
        "refund-outage",
    )
    assert message["notUndone"] == ["refundPayment", "markCancelled", "notifyBookingCancelled"]
    assert message["steps"]["refundPayment"]["Error"] == "PaymentUnavailable"
    assert message["steps"]["releaseFlightSeat"] == {"status": "released"}
    assert message["steps"]["markCancelled"] == "not run"
    body = json.dumps(message)
    assert card not in body
    assert "Traceback" not in body
    assert "stackTrace" not in body


def test_a_release_that_fails_for_good_still_refunds_cancels_and_pages(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    alice = stack.tokens.mint(ALICE)
    booking_id, card = _confirmed(stack, alice)
    stack.lambdas.inject("ReleaseFlightFunction", "error", times=10, booking_id=booking_id)

    _cancel(stack, alice, booking_id, key="release-fails")

    execution = stack.wait(_execution(stack, "CancelBookingSaga", booking_id))
    assert (execution["status"], execution["error"]) == ("FAILED", "CancellationIncomplete")
    row = stack.booking(booking_id)
    assert row is not None
    assert (row["status"], row["refund"]["status"]) == ("CANCELLED", "refunded")
    assert stack.seats_left("F1") == 2
    assert (stack.flight("F1") or {})["heldBy"] == {booking_id}
    charge = stack.gateway.ledger(card)
    assert charge is not None
    assert charge.refunds == 1
    assert [event["status"] for event in stack.events()] == ["cancelled"]
    [message] = stack.dlq_messages()
    assert (message["kind"], message["notUndone"]) == ("CancellationFailed", ["releaseFlightSeat"])
    assert message["steps"]["releaseFlightSeat"]["Error"] == "Lambda.ServiceException"
    assert stack.states_entered(_execution(stack, "CancelBookingSaga", booking_id))[:6] == [
        "Mark Cancelling",
        "Release Flight Seat",
        "Release Not Done",
        "Refund Payment After A Failed Release",
        "Mark Cancelled After A Failed Release",
        "Notify Booking Cancelled After A Failed Release",
    ]


def test_a_cancellation_that_cannot_start_changes_nothing_and_lists_every_step(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    alice = stack.tokens.mint(ALICE)
    booking_id, card = _confirmed(stack, alice)
    stack.lambdas.inject("CancelBookingFunction", "error", times=10, booking_id=booking_id)

    _cancel(stack, alice, booking_id, key="cannot-start")

    assert stack.wait(_execution(stack, "CancelBookingSaga", booking_id))["status"] == "FAILED"
    row = stack.booking(booking_id)
    assert row is not None
    assert (row["status"], row["cancellationKey"]) == ("CONFIRMED", "cannot-start")
    assert stack.seats_left("F1") == 2
    charge = stack.gateway.ledger(card)
    assert charge is not None
    assert charge.refunds == 0
    [message] = stack.dlq_messages()
    assert message["notUndone"] == [
        "markCancelling",
        "releaseFlightSeat",
        "refundPayment",
        "markCancelled",
        "notifyBookingCancelled",
    ]


def _invoke(stack: OfflineStack, function: str, payload: dict[str, Any]) -> tuple[str | None, Any]:
    response = stack.lambdas.invoke(function, json.dumps(payload))
    body = json.loads(response.body)
    return (body["errorType"] if response.function_error else None), body


def test_every_step_of_the_cancellation_run_again_changes_nothing(stack: OfflineStack) -> None:
    # Step Functions' retries, a lost answer and `dlq redrive` all run a step again.
    stack.put_flight("F1", seats=3, price=5_000)
    alice = stack.tokens.mint(ALICE)
    booking_id, card = _confirmed(stack, alice)
    _cancel(stack, alice, booking_id, key="rerun-steps")
    stack.wait(_execution(stack, "CancelBookingSaga", booking_id))
    done = (stack.booking(booking_id), stack.flight("F1"), stack.gateway.ledger(card), stack.events())
    key = {"bookingId": booking_id, "cancellationKey": "rerun-steps"}
    refund = {"status": "refunded", "amount": 5_000, "currency": "EUR"}

    again = [
        _invoke(stack, "CancelBookingFunction", {**key, "action": "begin"}),
        _invoke(stack, "ReleaseFlightFunction", {"bookingId": booking_id, "outboundFlightId": "F1"}),
        _invoke(stack, "RefundPaymentFunction", {"bookingId": booking_id}),
        _invoke(stack, "CancelBookingFunction", {**key, "action": "finish", "refund": refund}),
    ]

    assert again == [
        (None, {"status": "CANCELLED"}),
        (None, {"status": "not_held"}),
        (None, refund),
        (None, {"status": "CANCELLED"}),
    ]
    row = stack.booking(booking_id)
    assert row is not None
    assert done[0] is not None
    assert {k: v for k, v in row.items() if k != "updatedAt"} == {
        k: v for k, v in done[0].items() if k != "updatedAt"
    }
    assert (stack.flight("F1"), stack.gateway.ledger(card)) == done[1:3]
    assert stack.events() == []


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"action": "begin"}, "InvalidSagaInput"),  # no key: a stray task cannot start a cancellation
        ({"action": "begin", "cancellationKey": "not-the-recorded-one"}, "BookingStateConflict"),
        ({"action": "finish", "cancellationKey": "recorded-key"}, "InvalidSagaInput"),  # no refund answer
        (
            {
                "action": "finish",
                "cancellationKey": "recorded-key",
                "refund": {"Error": "PaymentUnavailable"},
            },
            "InvalidSagaInput",
        ),
    ],
)
def test_a_cancellation_step_nobody_recorded_is_refused_and_writes_nothing(
    stack: OfflineStack, payload: dict[str, Any], error: str
) -> None:
    stack.put_flight("F1", seats=3)
    alice = stack.tokens.mint(ALICE)
    booking_id, card = _confirmed(stack, alice)
    before = _world(stack, booking_id, card)

    assert _invoke(stack, "CancelBookingFunction", {"bookingId": booking_id, **payload})[0] == error

    assert _world(stack, booking_id, card) == before


# ---------------------------------------------------------------------------------------- races


def test_two_cancellations_at_once_start_one_execution(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=9)
    alice = stack.tokens.mint(ALICE)
    bookings = [_confirmed(stack, alice) for _ in range(3)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = {
            booking_id: [
                pool.submit(_cancel, stack, alice, booking_id, f"{i}-{booking_id[:8]}") for i in "AB"
            ]
            for booking_id, _ in bookings
        }
        answers = {booking_id: [future.result() for future in sent] for booking_id, sent in futures.items()}

    for booking_id, card in bookings:
        won = [a for a in answers[booking_id] if a["data"]["cancelBooking"] is not None]
        lost = [a for a in answers[booking_id] if a["data"]["cancelBooking"] is None]
        assert (len(won), len(lost)) == (1, 1), answers[booking_id]
        assert _refusal(lost[0])[0] == "BadRequest"
        assert stack.wait(_execution(stack, "CancelBookingSaga", booking_id))["status"] == "SUCCEEDED"
        charge = stack.gateway.ledger(card)
        assert charge is not None
        assert charge.refunds == 1
    assert len(_cancellations(stack)) == 3
    assert stack.seats_left("F1") == 9


def test_the_same_cancellation_sent_twice_at_once_starts_one_execution(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    alice = stack.tokens.mint(ALICE)
    booking_id, card = _confirmed(stack, alice)

    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(pool.map(lambda _: _cancel(stack, alice, booking_id, "sent-twice"), range(3)))

    assert all(answer["data"]["cancelBooking"]["id"] == booking_id for answer in answers), answers
    assert stack.wait(_execution(stack, "CancelBookingSaga", booking_id))["status"] == "SUCCEEDED"
    assert len(_cancellations(stack)) == 1
    charge = stack.gateway.ledger(card)
    assert charge is not None
    assert charge.refunds == 1


def _cancel_and_check_in_at_once(stack: OfflineStack, rounds: int) -> list[str]:
    """Cancel and check in the same booking at once, `rounds` times; what went wrong, per booking."""
    alice = stack.tokens.mint(ALICE)
    problems = []
    for _ in range(rounds):
        booking_id, _ = _confirmed(stack, alice)
        with ThreadPoolExecutor(max_workers=2) as pool:
            cancel = pool.submit(_cancel, stack, alice, booking_id, None)
            check_in = pool.submit(stack.graphql, CHECK_IN, {"id": booking_id}, token=alice)
            cancelled = cancel.result()["data"]["cancelBooking"] is not None
            checked_in = (check_in.result()["data"]["updateBooking"] or {}).get("checkedIn") is True
        stack.drain(60)
        row = stack.booking(booking_id) or {}
        if cancelled == checked_in:
            outcome = {True: "won", False: "lost"}
            problems.append(f"{booking_id}: cancel {outcome[cancelled]}, check-in {outcome[checked_in]}")
        if row.get("status") == "CANCELLED" and row.get("checkedIn"):
            problems.append(f"{booking_id}: cancelled while checked in")
        if checked_in and not cancelled and (row.get("status"), row.get("checkedIn")) != ("CONFIRMED", True):
            problems.append(f"{booking_id}: check-in won but the row is {row.get('status')}")
    return problems


def test_a_cancellation_and_a_check_in_at_once_one_wins_the_other_is_refused(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=10)

    assert _cancel_and_check_in_at_once(stack, rounds=4) == []


def test_the_same_race_against_racy_writes_shows_both_winning(stack: OfflineStack) -> None:
    # Proof that the race test can fail: with the conditions removed from both writes (and a pause
    # between check and write), the cancellation and the check-in both win.
    stack.put_flight("F1", seats=10)
    stack.lambdas.replace_handler("ApiFunction", "racy_api.handler", code_path=str(DOUBLES))

    problems = _cancel_and_check_in_at_once(stack, rounds=2)

    assert any("cancel won, check-in won" in problem for problem in problems), problems


def test_a_seat_given_back_by_a_cancellation_can_be_booked_by_someone_else_at_once(
    stack: OfflineStack,
) -> None:
    stack.put_flight("F1", seats=1)
    alice, bob = stack.tokens.mint(ALICE), stack.tokens.mint(BOB)
    booking_id, _ = _confirmed(stack, alice)
    refused = _book(stack, bob, unique_token(), key="bob-too-soon")
    assert stack.wait(_execution(stack, "ProcessBooking", refused))["error"] == "FlightFull"
    stack.events()

    _cancel(stack, alice, booking_id, key="alice-gives-up")
    assert stack.wait(_execution(stack, "CancelBookingSaga", booking_id))["status"] == "SUCCEEDED"
    bobs = _book(stack, bob, unique_token(), key="bob-books-now")

    assert stack.wait(_execution(stack, "ProcessBooking", bobs))["status"] == "SUCCEEDED"
    assert stack.seats_left("F1") == 0
    assert (stack.flight("F1") or {})["heldBy"] == {bobs}
    assert [(event["bookingId"], event["status"]) for event in stack.events()] == [
        (booking_id, "cancelled"),
        (bobs, "confirmed"),
    ]
