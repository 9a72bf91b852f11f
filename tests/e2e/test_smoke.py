"""The paths a deployed stack must prove, run against `target`: offline by default, and by `make smoke`
against this branch's stack in AWS, with real Cognito users and ID tokens (tests/e2e/target.py).

Only what a client and an operator can see is read: GraphQL answers, the execution, the Flight table,
the DLQ's counts and CloudWatch's metric names. Each customer is one of the run's users; flights are the
run's own, so the tests hold on a stack that other people use too.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import pytest

from tests.api.test_seed_contract import SEED_BOOK, SEED_LIST
from tests.e2e.target import Target, flights_by_booking

GET = "query($id: ID!) { getBooking(id: $id) { id status customer bookingReference } }"
BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
PAGE = """query($c: String, $n: String) {
  getBookingByStatus(customer: $c, status: {eq: "CONFIRMED"}, limit: 2, nextToken: $n) {
    items { id status outboundFlight { id flightNumber } } nextToken } }"""
RUN_METRICS = frozenset(
    {
        "SuccessfulReservation",
        "SuccessfulPayment",
        "SuccessfulBooking",
        "SuccessfulNotification",
        "FailedPayment",
        "SuccessfulCancellation",
    }
)
"""The dashboard metrics a confirmed booking and a declined card publish (DESIGN §2)."""


def card(kind: str = "tok_visa") -> str:
    """A card of its own for each booking (a charge pays for one booking), of a Payment API test kind."""
    return f"{kind}_{uuid.uuid4().hex[:12]}"


def settled(target: Target, booking_id: str, as_: str, timeout: float = 120) -> dict[str, Any]:
    """getBooking until the saga has an outcome (CONFIRMED or CANCELLED), as a client polls."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = target.graphql(GET, {"id": booking_id}, as_=as_)
        assert (status, body.get("errors")) == (200, None), body
        booking = body["data"]["getBooking"]
        if booking["status"] != "UNCONFIRMED":
            return dict(booking)
        assert time.monotonic() < deadline, f"booking {booking_id} still UNCONFIRMED after {timeout}s"
        time.sleep(1 if target.online else 0.2)


def book(target: Target, as_: str, flight: str, payment: str) -> str:
    status, body = target.graphql(
        BOOK, {"i": {"paymentToken": payment, "bookingOutboundFlightId": flight}}, as_=as_
    )
    assert (status, body.get("errors")) == (200, None), body
    assert body["data"]["processBooking"]["status"] == "UNCONFIRMED"
    return target.booked(body["data"]["processBooking"]["id"])


def seats(target: Target, flight: str) -> int:
    item = target.aws("dynamodb").get_item(
        TableName=target.stack.outputs["FlightTableName"], Key={"id": {"S": flight}}, ConsistentRead=True
    )["Item"]
    return int(item["seatCapacity"]["N"])


@pytest.fixture(scope="module")
def seed_booking(target: Target) -> tuple[str, str]:
    """The seed front end's booking document, verbatim, for the run's customer: (booking id, card)."""
    payment = card()
    status, body = target.graphql(
        SEED_BOOK,
        {"input": {"paymentToken": payment, "bookingOutboundFlightId": target.flights[0]}},
        as_="customer",
    )
    assert (status, list(body)) == (200, ["data"]), body
    booking_id = target.booked(body["data"]["processBooking"]["id"])
    assert settled(target, booking_id, "customer")["status"] == "CONFIRMED"
    return booking_id, payment


@pytest.fixture(scope="module")
def declined_booking(target: Target) -> tuple[str, dict[str, Any], int]:
    """A booking paid with a card the Payment API declines: (id, its final state, seats before)."""
    before = seats(target, target.flights[0])
    booking_id = book(target, "customer", target.flights[0], card("tok_chargeDeclined"))
    return booking_id, settled(target, booking_id, "customer"), before


def test_the_seed_front_end_lists_its_booking_confirmed_with_the_flight_resolved(
    target: Target, seed_booking: tuple[str, str]
) -> None:
    booking_id, payment = seed_booking
    customer = target.users["customer"].sub

    # The seed's list view, page after page (the run's other tests may have confirmed bookings of
    # this customer too, before or after this one).
    listed: dict[str, dict[str, Any]] = {}
    token = None
    while True:
        status, page = target.graphql(
            SEED_LIST,
            {"customer": customer, "status": {"eq": "CONFIRMED"}, "limit": 3, "nextToken": token},
            as_="customer",
        )
        assert (status, list(page)) == (200, ["data"]), page
        flights_by_booking(status, page)  # batched, never null
        answer = page["data"]["getBookingByStatus"]
        assert len(answer["items"]) <= 3
        for each in answer["items"]:
            assert each["id"] not in listed, f"{each['id']} listed twice"
            listed[each["id"]] = each
        token = answer["nextToken"]
        if token is None:
            break

    assert {(each["status"], each["customer"]) for each in listed.values()} == {("CONFIRMED", customer)}
    assert booking_id in listed, sorted(listed)
    item = listed[booking_id]
    assert (item["id"], item["status"], item["customer"]) == (booking_id, "CONFIRMED", customer)
    flight = item["outboundFlight"]
    assert (flight["id"], flight["departureAirportCode"], flight["arrivalAirportCode"]) == (
        target.flights[0],
        "LGW",
        "MAD",
    )
    assert (flight["ticketPrice"], flight["ticketCurrency"]) == (100, "EUR")
    assert item["paymentToken"] == "****" + payment[-4:]
    assert item["checkedIn"] is False
    assert len(item["bookingReference"]) == 6


def test_a_declined_card_cancels_the_booking_and_gives_the_seat_back(
    target: Target, declined_booking: tuple[str, dict[str, Any], int]
) -> None:
    booking_id, booking, before = declined_booking
    execution = target.aws("stepfunctions").describe_execution(executionArn=target.execution_arn(booking_id))
    while execution["status"] == "RUNNING":  # the seat comes back after the booking reads CANCELLED
        time.sleep(0.5)
        execution = target.aws("stepfunctions").describe_execution(
            executionArn=target.execution_arn(booking_id)
        )

    assert (booking["status"], booking["bookingReference"]) == ("CANCELLED", None)
    assert (execution["status"], execution.get("error")) == ("FAILED", "PaymentDeclined")
    assert seats(target, target.flights[0]) == before


def test_another_customer_reading_a_booking_gets_unauthorized_and_admin_reads_it(
    target: Target, seed_booking: tuple[str, str]
) -> None:
    booking_id, _ = seed_booking

    status, refused = target.graphql(GET, {"id": booking_id}, as_="other")
    _, admin = target.graphql(GET, {"id": booking_id}, as_="admin")

    assert status == 200
    assert refused["data"] == {"getBooking": None}
    [error] = refused["errors"]
    assert (error["errorType"], error["path"]) == ("Unauthorized", ["getBooking"])
    assert admin["data"]["getBooking"]["customer"] == target.users["customer"].sub


def test_a_booking_on_an_unknown_flight_is_a_bad_request_and_starts_nothing(target: Target) -> None:
    flight = f"SMOKE-{uuid.uuid4().hex[:6]}-nowhere"

    status, body = target.graphql(
        BOOK, {"i": {"paymentToken": card(), "bookingOutboundFlightId": flight}}, as_="customer"
    )

    assert (status, body["data"]) == (200, {"processBooking": None})
    [error] = body["errors"]
    assert (error["errorType"], error["message"]) == ("BadRequest", f"flight {flight} does not exist")


def test_get_booking_by_status_pages_two_at_a_time_and_returns_each_booking_once(target: Target) -> None:
    flight = target.flights[1]
    ids = [book(target, "admin", flight, card()) for _ in range(3)]
    assert [settled(target, booking_id, "admin")["status"] for booking_id in ids] == ["CONFIRMED"] * 3
    customer = target.users["admin"].sub

    pages, token = [], None
    while True:
        status, body = target.graphql(PAGE, {"c": customer, "n": token}, as_="admin")
        flights = flights_by_booking(status, body)  # every booking of the page has its outboundFlight
        assert flights == dict.fromkeys(flights, flight)
        page = body["data"]["getBookingByStatus"]
        pages.append([item["id"] for item in page["items"]])
        token = page["nextToken"]
        if token is None:
            break

    assert [len(page) for page in pages] in ([2, 1], [2, 1, 0])
    assert sorted(booking_id for page in pages for booking_id in page) == sorted(ids)


def test_after_the_run_the_dlq_is_empty_and_the_dashboard_metrics_are_listed(
    target: Target, seed_booking: tuple[str, str], declined_booking: tuple[str, dict[str, Any], int]
) -> None:
    """Last in this module: every booking of the run has ended, and none needed a human. CloudWatch lists
    a new metric within minutes (ListMetrics up to 15), hence the wait online."""
    assert set(target.wait_for_executions().values()) <= {"SUCCEEDED", "FAILED"}
    attributes = target.aws("sqs").get_queue_attributes(
        QueueUrl=target.stack.outputs["BookingDLQUrl"],
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    assert {name: int(value) for name, value in attributes.items()} == dict.fromkeys(attributes, 0)

    cloudwatch = target.aws("cloudwatch")
    wait = float(os.environ.get("E2E_METRICS_WAIT", 900 if target.online else 30))
    deadline = time.monotonic() + wait
    while True:
        listed = {
            metric["MetricName"]
            for page in cloudwatch.get_paginator("list_metrics").paginate(
                Namespace="ServerlessAirline", Dimensions=[{"Name": "service", "Value": "booking"}]
            )
            for metric in page["Metrics"]
        }
        if listed >= RUN_METRICS or time.monotonic() > deadline:
            break
        time.sleep(15 if target.online else 0.5)
    assert sorted(RUN_METRICS - listed) == []
