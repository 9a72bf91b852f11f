"""The seed's Vue front end against `make run`'s server, over HTTP: its two documents, verbatim."""

from __future__ import annotations

import time
import uuid

from offline.auth import TokenIssuer
from tests.api.test_seed_contract import SEED_BOOK, SEED_LIST
from tests.e2e.conftest import Server

FLIGHT = "SA1001-LGW-MAD"


def test_the_seed_front_end_books_a_seat_and_lists_it_with_its_own_documents(
    server: Server, tokens: TokenIssuer
) -> None:
    customer = f"seed-{uuid.uuid4().hex[:8]}"
    token = tokens.mint(customer)
    card = f"tok_visa_{uuid.uuid4().hex[:8]}"

    status, booked = server.graphql(
        SEED_BOOK, {"input": {"paymentToken": card, "bookingOutboundFlightId": FLIGHT}}, token=token
    )
    assert (status, list(booked)) == (200, ["data"]), booked
    booking_id = booked["data"]["processBooking"]["id"]

    variables = {"customer": customer, "status": {"eq": "CONFIRMED"}, "limit": 3, "nextToken": None}
    deadline = time.monotonic() + 60
    while True:  # the front end's bookings page, refreshed until the saga has confirmed the seat
        status, listed = server.graphql(SEED_LIST, variables, token=token)
        assert (status, list(listed)) == (200, ["data"]), listed
        items = listed["data"]["getBookingByStatus"]["items"]
        if items or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    [item] = items
    assert (item["id"], item["status"], item["customer"]) == (booking_id, "CONFIRMED", customer)
    assert item["outboundFlight"]["id"] == FLIGHT
    assert item["outboundFlight"]["departureAirportCode"] == "LGW"
    assert item["paymentToken"] == "****" + card[-4:]
    assert item["checkedIn"] is False
    assert len(item["bookingReference"]) == 6
    assert listed["data"]["getBookingByStatus"]["nextToken"] is None
    [charge] = [c for c in server.ledger() if c.get("charge_id", c.get("id")) == card]
    assert charge["captures"] == 1
