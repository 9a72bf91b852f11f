"""A client follows its booking by subscription instead of polling, against `target`: `make run`'s
server by default (ws://…/graphql/realtime), AppSync's real-time endpoint under `make smoke`.

The pattern a client uses (schema.graphql, onBookingStatusChanged): subscribe, then read getBooking
once; a change made before the subscription started is in getBooking, one made after is pushed.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any

from simple_websocket.errors import ConnectionClosed

from offline.realtime import SUBPROTOCOL, RealtimeClient, WebSocketClient, connection_url
from tests.e2e.target import Target

BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
GET = "query($id: ID!) { getBooking(id: $id) { id status bookingReference } }"
ON_CHANGE = """subscription($id: ID!) {
  onBookingStatusChanged(id: $id) { id customer status bookingReference reason occurredAt }
}"""
FINAL = ("CONFIRMED", "CANCELLED")


def _book(target: Target) -> str:
    request = {
        "paymentToken": f"tok_visa_{uuid.uuid4().hex[:12]}",
        "bookingOutboundFlightId": target.flights[0],
    }
    status, body = target.graphql(BOOK, {"i": request}, as_="customer")
    assert (status, body.get("errors")) == (200, None), body
    return target.booked(body["data"]["processBooking"]["id"])


def _outcome(client: RealtimeClient, target: Target, booking_id: str, timeout: float) -> dict[str, Any]:
    """Subscribed already: getBooking once, then the pushes until the booking has its outcome."""
    status, body = target.graphql(GET, {"id": booking_id}, as_="customer")
    assert status == 200, body
    read = body["data"]["getBooking"]
    if read["status"] in FINAL:
        return dict(read)
    deadline = time.monotonic() + timeout
    while True:
        message = client.receive(max(0.1, deadline - time.monotonic()))
        assert message["type"] == "data", message
        change: dict[str, Any] = message["payload"]["data"]["onBookingStatusChanged"]
        assert change["id"] == booking_id
        if change["status"] in FINAL:
            return change


def test_a_customer_subscribes_to_its_booking_and_learns_its_outcome_without_polling(target: Target) -> None:
    token = target.token("customer")
    with RealtimeClient.connect(target.graphql_url, token, timeout=30) as client:
        booking_id = _book(target)
        assert client.subscribe("mine", ON_CHANGE, {"id": booking_id}, token) == {
            "type": "start_ack",
            "id": "mine",
        }
        target.subscribed()

        outcome = _outcome(client, target, booking_id, timeout=180 if target.online else 60)

    assert outcome["status"] == "CONFIRMED"
    _, body = target.graphql(GET, {"id": booking_id}, as_="customer")
    assert outcome["bookingReference"] == body["data"]["getBooking"]["bookingReference"]


def test_another_customer_cannot_subscribe_to_the_booking(target: Target) -> None:
    booking_id = _book(target)
    token = target.token("other")
    with RealtimeClient.connect(target.graphql_url, token, timeout=30) as client:
        answer = client.subscribe("theirs", ON_CHANGE, {"id": booking_id}, token)
        target.subscribed()
    assert answer["type"] == "error"
    assert answer["id"] == "theirs"
    assert [error["errorType"] for error in answer["payload"]["errors"]] == ["Unauthorized"]


def test_a_forged_token_gets_a_connection_error_not_a_connection(target: Target) -> None:
    host = target.graphql_url.split("://", 1)[1].split("/", 1)[0]
    forged = target.token("customer")[:-8] + "AAAAAAAA"
    ws = WebSocketClient.connect(
        connection_url(target.graphql_url, {"Authorization": forged, "host": host}),
        subprotocols=[SUBPROTOCOL],
    )
    try:
        # The endpoint answers a refused handshake at once and closes: the client's connection_init,
        # sent as the protocol says, may find the socket closed already; the answer is kept all the same.
        with contextlib.suppress(ConnectionClosed):
            ws.send(json.dumps({"type": "connection_init"}))
        message = json.loads(ws.receive(timeout=30))
    finally:
        if ws.connected:
            ws.close()
    assert message["type"] == "connection_error"
    assert [error["errorType"] for error in message["payload"]["errors"]] == ["UnauthorizedException"]
