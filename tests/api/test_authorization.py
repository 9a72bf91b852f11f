"""The authorization matrix: {owner, other customer, Admin, no token, expired, forged} x every operation.

Each cell asserts the answer and, where the caller must be refused, that nothing was written and
no saga was started.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest

from offline.stack import OfflineStack, departure_in
from tests.conftest import unique_token

OWNER, OTHER, ADMIN = "alice-sub", "bob-sub", "carol-sub"
CALLERS = ["owner", "other", "admin", "no token", "expired", "forged"]
DEPARTURE = departure_in(days=60, at="09:00")


@pytest.fixture(scope="module")
def world(shared_stack: OfflineStack) -> dict[str, Any]:
    """The process's stack for the whole matrix: a future flight and a confirmed booking of the owner's."""
    stack = shared_stack
    stack.reset()
    stack.put_flight("F1", seats=50, departure=DEPARTURE)
    owner_token = stack.tokens.mint(OWNER, username="alice")
    answer = stack.graphql(
        "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }",
        {
            "i": {
                "paymentToken": unique_token(),
                "bookingOutboundFlightId": "F1",
                "idempotencyKey": "owner-0001",
            }
        },
        token=owner_token,
    )
    booking_id = answer["data"]["processBooking"]["id"]
    stack.wait(stack.execution_arn("ProcessBooking", booking_id))
    tokens = {
        "owner": owner_token,
        "other": stack.tokens.mint(OTHER, username="bob"),
        "admin": stack.tokens.mint(ADMIN, username="carol", groups=["Admin"]),
        "no token": None,
        "expired": stack.tokens.mint(OWNER, username="alice", expires_in=-60),
        "forged": jwt.encode(
            {"sub": OWNER, "cognito:username": "alice", "token_use": "id", "exp": int(time.time()) + 600},
            "not-the-offline-key-but-long-enough-for-hs256",
            algorithm="HS256",
        ),
    }
    return {
        "stack": stack,
        "booking_id": booking_id,
        "tokens": tokens,
        "confirmed": lambda: _confirmed_booking(stack, owner_token),
    }


def _confirmed_booking(stack: OfflineStack, token: str) -> str:
    """A new CONFIRMED booking of the owner's: a cancellation that succeeds uses one up."""
    answer = stack.graphql(
        "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id } }",
        {"i": {"paymentToken": unique_token(), "bookingOutboundFlightId": "F1"}},
        token=token,
    )
    booking_id: str = answer["data"]["processBooking"]["id"]
    stack.wait(stack.execution_arn("ProcessBooking", booking_id))
    return booking_id


def _snapshot(stack: OfflineStack) -> tuple[Any, int]:
    """Every booking item and the number of executions of both sagas."""
    items = stack.dynamodb.scan(TableName=stack.resource("BookingTable"))["Items"]
    executions = sum(
        len(stack.sfn.list_executions(stateMachineArn=stack.resource(saga))["executions"])
        for saga in ("ProcessBooking", "CancelBookingSaga")
    )
    return sorted(items, key=lambda item: item["id"]["S"]), executions


OPERATIONS: dict[str, tuple[str, Any]] = {
    "processBooking": (
        "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }",
        lambda w: {
            "i": {
                "paymentToken": unique_token(),
                "bookingOutboundFlightId": "F1",
                "idempotencyKey": f"k-{uuid.uuid4().hex[:12]}",
            }
        },
    ),
    "getBooking": (
        "query($id: ID!) { getBooking(id: $id) { id status customer outboundFlight { id } } }",
        lambda w: {"id": w["booking_id"]},
    ),
    "getBookingByStatus": (
        'query($c: String) { getBookingByStatus(customer: $c, status: {eq: "CONFIRMED"}) { items { id } } }',
        lambda w: {"c": OWNER},
    ),
    "listBookings": ("query { listBookings(limit: 50) { items { id customer } } }", lambda w: {}),
    "updateBooking": (
        "mutation($id: ID!) { updateBooking(input: {id: $id, checkedIn: true}) { id checkedIn } }",
        lambda w: {"id": w["booking_id"]},
    ),
    "cancelBooking": (
        "mutation($id: ID!) { cancelBooking(input: {id: $id}) { id status } }",
        lambda w: {"id": w["confirmed"]()},
    ),
    "getFlight": ('query { getFlight(id: "F1") { id ticketPrice } }', lambda w: {}),
    "getFlightBySchedule": (
        'query { getFlightBySchedule(departureAirportCode: "LGW", arrivalAirportCode: "MAD", '
        f'departureDate: "{DEPARTURE[:10]}") {{ items {{ id }} }} }}',
        lambda w: {},
    ),
}

# What each authenticated caller gets: "ok" or the errorType of a refusal.
EXPECTED = {
    "processBooking": {"owner": "ok", "other": "ok", "admin": "ok"},
    "getBooking": {"owner": "ok", "other": "Unauthorized", "admin": "ok"},
    "getBookingByStatus": {"owner": "ok", "other": "Unauthorized", "admin": "ok"},
    "listBookings": {"owner": "Unauthorized", "other": "Unauthorized", "admin": "ok"},
    "updateBooking": {"owner": "ok", "other": "Unauthorized", "admin": "ok"},
    "cancelBooking": {"owner": "ok", "other": "Unauthorized", "admin": "ok"},
    "getFlight": {"owner": "ok", "other": "ok", "admin": "ok"},
    "getFlightBySchedule": {"owner": "ok", "other": "ok", "admin": "ok"},
}
MUTATIONS = {"processBooking", "updateBooking", "cancelBooking"}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_authorization_matrix(world: dict[str, Any], operation: str, caller: str) -> None:
    stack: OfflineStack = world["stack"]
    query, variables = OPERATIONS[operation]
    arguments = variables(world)
    stack.drain(60)
    before = _snapshot(stack)

    status, body = stack.api.execute(
        {"query": query, "variables": arguments}, authorization=world["tokens"][caller]
    )

    expected = EXPECTED[operation].get(caller, "UnauthorizedException")
    if expected == "UnauthorizedException":  # no, expired or forged token: AppSync's 401, no resolver runs
        assert status == 401
        assert body["errors"][0]["errorType"] == "UnauthorizedException"
        assert "data" not in body or body["data"] is None
        assert _snapshot(stack) == before
        return
    assert status == 200
    if expected == "ok":
        assert "errors" not in body, body
        assert body["data"][operation] is not None
        if operation == "getBookingByStatus":
            assert world["booking_id"] in {item["id"] for item in body["data"][operation]["items"]}
        if operation == "listBookings":
            assert world["booking_id"] in {item["id"] for item in body["data"][operation]["items"]}
        if operation in ("processBooking", "cancelBooking"):
            assert _snapshot(stack)[1] == before[1] + 1  # one saga started, for this caller
            stack.drain(60)  # its writes must not leak into the next cell's "nothing changed"
        if operation == "cancelBooking":
            assert body["data"][operation]["status"] == "CANCELLING"
            assert stack.booking(arguments["id"])["status"] == "CANCELLED"  # type: ignore[index]
        return
    [error] = body["errors"]
    assert error["errorType"] == expected
    assert error["path"] == [operation]
    assert body["data"] is None or body["data"][operation] is None
    assert _snapshot(stack) == before


def test_a_new_booking_belongs_to_the_caller_whatever_the_client_sends(world: dict[str, Any]) -> None:
    stack: OfflineStack = world["stack"]
    answer = stack.graphql(
        "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id } }",
        {
            "i": {
                "paymentToken": unique_token(),
                "bookingOutboundFlightId": "F1",
                "idempotencyKey": "bob-key-0001",
            }
        },
        token=world["tokens"]["other"],
    )
    booking_id = answer["data"]["processBooking"]["id"]
    execution = stack.sfn.describe_execution(
        executionArn=stack.resource("ProcessBooking").replace(":stateMachine:", ":execution:")
        + f":{booking_id}"
    )
    assert '"customer": "bob-sub"' in execution["input"]
    # CreateBookingInput (the seed's) has a customer field; the resolver refuses any value in it.
    stack.drain(60)
    before = _snapshot(stack)
    refused = stack.graphql(
        'mutation { processBooking(input: {paymentToken: "tok_visa", bookingOutboundFlightId: "F1", '
        'idempotencyKey: "bob-key-0002", customer: "alice-sub"}) { id } }',
        token=world["tokens"]["other"],
    )
    [error] = refused["errors"]
    assert (error["errorType"], error["message"]) == (
        "BadRequest",
        "input.customer is set by the server; leave it out",
    )
    assert _snapshot(stack) == before
