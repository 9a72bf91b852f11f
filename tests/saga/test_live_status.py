"""A client learns its booking's final status by subscription, whenever it subscribes.

The pattern of decision 0011: subscribe, wait for start_ack, then read getBooking once. A subscriber
that was connected before the booking was made is pushed the outcome; one that comes after the saga
ended reads it and is pushed nothing. A customer's cancellation is pushed as CANCELLING then CANCELLED.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from booking.api import BOOKING_NAMESPACE
from offline.realtime import RealtimeClient
from offline.server import OfflineServer
from offline.stack import OfflineStack
from tests.conftest import unique_token
from tests.doubles.gate import gate_path

BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
CANCEL = "mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { id status } }"
GET = "query($id: ID!) { getBooking(id: $id) { status bookingReference } }"
ON_CHANGE = "subscription($id: ID!) { onBookingStatusChanged(id: $id) { id status bookingReference reason } }"
DOUBLES = Path(__file__).resolve().parents[1] / "doubles"


def _pushed(client: RealtimeClient, timeout: float = 60) -> dict[str, Any]:
    message = client.receive(timeout)
    assert message["type"] == "data", message
    change: dict[str, Any] = message["payload"]["data"]["onBookingStatusChanged"]
    return change


def _quiet(client: RealtimeClient, seconds: float = 1.0) -> None:
    try:
        message = client.receive(seconds)
    except TimeoutError:
        return
    pytest.fail(f"pushed after the outcome: {message}")


def test_a_subscriber_before_and_one_after_the_saga_both_learn_the_final_status(
    stack: OfflineStack, served: OfflineServer
) -> None:
    stack.put_flight("F1", seats=3)
    stack.lambdas.replace_handler("ConfirmBookingFunction", "gate.confirm_booking", code_path=str(DOUBLES))
    token = stack.tokens.mint("alice-sub")
    url = f"{served.url}/graphql"
    booking_id = str(uuid.uuid5(BOOKING_NAMESPACE, "alice-sub\nlive-before-after"))
    gate = gate_path(booking_id)
    gate.touch()
    try:
        with RealtimeClient.connect(url, token) as early:  # connected before processBooking
            request = {
                "paymentToken": unique_token(),
                "bookingOutboundFlightId": "F1",
                "idempotencyKey": "live-before-after",
            }
            assert (
                stack.graphql(BOOK, {"i": request}, token=token)["data"]["processBooking"]["id"] == booking_id
            )
            assert early.subscribe("s", ON_CHANGE, {"id": booking_id}, token)["type"] == "start_ack"
            read = stack.graphql(GET, {"id": booking_id}, token=token)["data"]["getBooking"]
            assert read["status"] == "UNCONFIRMED"  # not final: wait for the push
            gate.unlink()
            change = _pushed(early)
            assert (change["id"], change["status"]) == (booking_id, "CONFIRMED")
            reference = change["bookingReference"]
            _quiet(early)
    finally:
        gate.unlink(missing_ok=True)
    stack.wait(stack.execution_arn("ProcessBooking", booking_id))

    with RealtimeClient.connect(url, token) as late:  # after the saga ended
        assert late.subscribe("s", ON_CHANGE, {"id": booking_id}, token)["type"] == "start_ack"
        read = stack.graphql(GET, {"id": booking_id}, token=token)["data"]["getBooking"]
        assert read == {"status": "CONFIRMED", "bookingReference": reference}  # final: done
        _quiet(late)


def test_a_cancellation_is_pushed_as_cancelling_then_cancelled(
    stack: OfflineStack, served: OfflineServer
) -> None:
    stack.put_flight("F1", seats=3)
    token = stack.tokens.mint("alice-sub")
    request = {"paymentToken": unique_token(), "bookingOutboundFlightId": "F1"}
    booking_id = stack.graphql(BOOK, {"i": request}, token=token)["data"]["processBooking"]["id"]
    stack.wait(stack.execution_arn("ProcessBooking", booking_id))

    with RealtimeClient.connect(f"{served.url}/graphql", token) as client:
        assert client.subscribe("s", ON_CHANGE, {"id": booking_id}, token)["type"] == "start_ack"
        assert stack.graphql(CANCEL, {"i": {"id": booking_id}}, token=token)["data"]["cancelBooking"][
            "status"
        ] == ("CANCELLING")
        changes = [_pushed(client), _pushed(client)]
        _quiet(client)

    assert [(c["status"], c["reason"]) for c in changes] == [
        ("CANCELLING", None),
        ("CANCELLED", "CustomerCancelled"),
    ]
