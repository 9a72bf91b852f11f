"""The API as front ends use it: book, poll, page, check in — and bad input that changes nothing."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from offline import aws
from offline.stack import OfflineStack
from tests.conftest import unique_token

BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
GET = """query($id: ID!) {
  getBooking(id: $id) { id status customer bookingReference checkedIn outboundFlight { id } } }"""
BY_STATUS = """query($c: String, $s: String, $n: String, $l: Int) {
  getBookingByStatus(customer: $c, status: {eq: $s}, limit: $l, nextToken: $n) {
    items { id status outboundFlight { id ticketPrice } } nextToken } }"""


def booking_input(
    flight: str = "F1", key: str = "valid-key-1", **overrides: str
) -> dict[str, dict[str, str]]:
    """The variables of BOOK: a fresh pre-authorised token unless one is given."""
    request = {"paymentToken": unique_token(), "bookingOutboundFlightId": flight, "idempotencyKey": key}
    return {"i": {**request, **overrides}}


def _execution_arn(stack: OfflineStack, booking_id: str) -> str:
    return stack.execution_arn("ProcessBooking", booking_id)


def _state(stack: OfflineStack) -> tuple[int, int]:
    """(booking table items, executions): what a refused request must leave as it was."""
    items = stack.dynamodb.scan(TableName=stack.resource("BookingTable"))["Count"]
    executions = stack.sfn.list_executions(stateMachineArn=stack.resource("ProcessBooking"))["executions"]
    return items, len(executions)


def test_process_booking_runs_the_saga_to_confirmed_and_get_booking_shows_it(
    stack: OfflineStack, capfd: pytest.CaptureFixture[str]
) -> None:
    stack.put_flight("F1", seats=3, price=15_000)
    token = stack.tokens.mint("alice-sub", username="alice")
    card = unique_token()

    answer = stack.graphql(BOOK, booking_input(key="first-booking", paymentToken=card), token=token)

    booking = answer["data"]["processBooking"]
    assert booking["status"] == "UNCONFIRMED"
    assert uuid.UUID(booking["id"])  # the booking id, not an execution ARN
    assert stack.wait(_execution_arn(stack, booking["id"]))["status"] == "SUCCEEDED"
    seen = stack.graphql(GET, {"id": booking["id"]}, token=token)["data"]["getBooking"]
    assert seen["status"] == "CONFIRMED"
    assert seen["customer"] == "alice-sub"
    assert len(seen["bookingReference"]) == 6
    assert seen["outboundFlight"] == {"id": "F1"}
    assert stack.seats_left("F1") == 2
    logs = capfd.readouterr()
    api_lines = [line for line in logs.out.splitlines() if '"operation":"processBooking"' in line]
    assert any(booking["id"] in line and '"caller":"alice-sub"' in line for line in api_lines)
    assert card not in logs.out + logs.err  # the payment token is in no log line, API or saga


def test_the_same_idempotency_key_twice_is_one_booking_and_one_execution(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    token = stack.tokens.mint("alice-sub")
    request = {
        "paymentToken": unique_token(),
        "bookingOutboundFlightId": "F1",
        "idempotencyKey": "same-key-01",
    }

    first = stack.graphql(BOOK, {"i": request}, token=token)["data"]["processBooking"]
    second = stack.graphql(BOOK, {"i": request}, token=token)["data"]["processBooking"]
    stack.wait(_execution_arn(stack, first["id"]))
    third = stack.graphql(BOOK, {"i": request}, token=token)["data"]["processBooking"]

    assert first["id"] == second["id"] == third["id"]
    assert third["status"] == "CONFIRMED"
    assert _state(stack)[1] == 1
    assert stack.seats_left("F1") == 2
    other_charge = stack.graphql(BOOK, booking_input(key="same-key-01"), token=token)
    assert other_charge["errors"][0]["errorType"] == "BadRequest"
    assert "idempotencyKey" in other_charge["errors"][0]["message"]
    # Another customer using the same key is another booking.
    bob = stack.tokens.mint("bob-sub")
    theirs = stack.graphql(BOOK, booking_input(key="same-key-01"), token=bob)["data"]["processBooking"]
    assert theirs["id"] != first["id"]


def test_get_booking_answers_before_the_saga_has_written_the_row(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    stack.put_flight("FULL", seats=0, maximum=3)
    token = stack.tokens.mint("alice-sub")
    stack.lambdas.inject("ReserveFlightFunction", "error", times=3, error_type="Lambda.ServiceException")

    pending = stack.graphql(
        BOOK,
        {
            "i": {
                "paymentToken": unique_token(),
                "bookingOutboundFlightId": "F1",
                "idempotencyKey": "slow-0001",
            }
        },
        token=token,
    )["data"]["processBooking"]
    early = stack.graphql(GET, {"id": pending["id"]}, token=token)["data"]["getBooking"]
    rejected = stack.graphql(
        BOOK,
        {
            "i": {
                "paymentToken": unique_token(),
                "bookingOutboundFlightId": "FULL",
                "idempotencyKey": "full-0001",
            }
        },
        token=token,
    )["data"]["processBooking"]
    stack.wait(_execution_arn(stack, rejected["id"]))
    stack.wait(_execution_arn(stack, pending["id"]))

    assert stack.booking(rejected["id"]) is None  # the saga never wrote this row
    assert early["status"] == "UNCONFIRMED"
    assert early["outboundFlight"] == {"id": "F1"}
    late = stack.graphql(GET, {"id": rejected["id"]}, token=token)["data"]["getBooking"]
    assert late["status"] == "CANCELLED"
    admin = stack.tokens.mint("carol-sub", groups=["Admin"])
    assert stack.graphql(GET, {"id": str(uuid.uuid4())}, token=admin)["data"]["getBooking"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bookingOutboundFlightId": "NOPE"}, "flight NOPE does not exist"),
        ({"bookingOutboundFlightId": "GONE"}, "already departed"),
        ({"paymentToken": "tok visa"}, "paymentToken must be"),
        ({"paymentToken": "t" * 200}, "paymentToken must be"),
        ({"idempotencyKey": "short"}, "idempotencyKey must be"),
        ({"idempotencyKey": "k" * 65}, "idempotencyKey must be"),
        ({"bookingOutboundFlightId": "F1; DROP"}, "bookingOutboundFlightId must be"),
    ],
)
def test_bad_booking_input_is_refused_with_a_clear_error_and_changes_nothing(
    stack: OfflineStack, change: dict[str, str], message: str
) -> None:
    stack.put_flight("F1", seats=3)
    stack.put_flight("GONE", seats=3, departure="2020-01-01T08:00:00Z")
    before = _state(stack)
    request = {
        "paymentToken": unique_token(),
        "bookingOutboundFlightId": "F1",
        "idempotencyKey": "valid-key-1",
    }

    answer = stack.graphql(BOOK, {"i": {**request, **change}}, token=stack.tokens.mint("alice-sub"))

    [error] = answer["errors"]
    assert error["errorType"] == "BadRequest"
    assert message in error["message"]
    assert answer["data"] == {"processBooking": None}
    assert _state(stack) == before
    assert stack.gateway.charges() == {}


def test_a_missing_payment_token_never_reaches_the_resolver(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    before = _state(stack)

    answer = stack.graphql(
        'mutation { processBooking(input: {bookingOutboundFlightId: "F1", idempotencyKey: "k-000001"}) '
        "{ id } }",
        token=stack.tokens.mint("alice-sub"),
    )

    assert "paymentToken" in answer["errors"][0]["message"]
    assert stack.lambdas.calls("ApiFunction") == []
    assert _state(stack) == before


def _put_bookings(stack: OfflineStack, customer: str, count: int) -> set[str]:
    ids = set()
    for n in range(count):
        booking_id = str(uuid.uuid4())
        ids.add(booking_id)
        stack.dynamodb.put_item(
            TableName=stack.resource("BookingTable"),
            Item={
                "id": {"S": booking_id},
                "customer": {"S": customer},
                "status": {"S": "CONFIRMED"},
                "bookingOutboundFlightId": {"S": f"F{n % 3}"},
                "paymentToken": {"S": "tok_visa"},
                "createdAt": {"S": "2021-11-25T08:00:00Z"},
                "updatedAt": {"S": "2021-11-25T08:00:00Z"},
                "checkedIn": {"BOOL": False},
            },
        )
    return ids


def test_paging_25_bookings_10_at_a_time_returns_each_once(stack: OfflineStack) -> None:
    for n in range(3):
        stack.put_flight(f"F{n}", seats=9, price=1_000 * (n + 1))
    expected = _put_bookings(stack, "pager-sub", 25)
    _put_bookings(stack, "someone-else", 4)
    token = stack.tokens.mint("pager-sub")

    seen: list[str] = []
    sizes = []
    next_token = None
    for _ in range(5):
        page = stack.graphql(
            BY_STATUS, {"c": "pager-sub", "s": "CONFIRMED", "l": 10, "n": next_token}, token=token
        )
        items = page["data"]["getBookingByStatus"]["items"]
        sizes.append(len(items))
        seen += [item["id"] for item in items]
        assert all(item["outboundFlight"]["ticketPrice"] > 0 for item in items)
        next_token = page["data"]["getBookingByStatus"]["nextToken"]
        if next_token is None:
            break

    assert sorted(seen) == sorted(expected)
    assert sizes[:3] == [10, 10, 5]


def test_a_tampered_or_foreign_next_token_is_refused(stack: OfflineStack) -> None:
    for n in range(3):
        stack.put_flight(f"F{n}", seats=9)
    _put_bookings(stack, "alice-sub", 3)
    _put_bookings(stack, "bob-sub", 3)
    alice, bob = stack.tokens.mint("alice-sub"), stack.tokens.mint("bob-sub")
    page = stack.graphql(BY_STATUS, {"c": "bob-sub", "s": "CONFIRMED", "l": 1}, token=bob)
    bobs_token = page["data"]["getBookingByStatus"]["nextToken"]
    body, _, signature = bobs_token.partition(".")
    forged_body = json.loads(base64.urlsafe_b64decode(body))
    forged_body["s"] = forged_body["s"].replace("bob-sub", "alice-sub")
    forged = base64.urlsafe_b64encode(json.dumps(forged_body).encode()).decode() + "." + signature
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")

    def page_of(customer: str, next_token: str, token: str) -> dict[str, Any]:
        return stack.graphql(BY_STATUS, {"c": customer, "s": "CONFIRMED", "n": next_token}, token=token)

    tampered = page_of("bob-sub", f"{body}.{flipped}", bob)
    replayed_elsewhere = page_of("alice-sub", bobs_token, alice)
    rewritten = page_of("alice-sub", forged, alice)

    for answer in (tampered, replayed_elsewhere, rewritten):
        assert answer["errors"][0]["errorType"] == "BadRequest"
        assert "nextToken" in answer["errors"][0]["message"]
    assert page_of("bob-sub", bobs_token, bob)["data"]["getBookingByStatus"]["items"]  # the real one works


MALFORMED_TOKENS = ["abc.\u00e9", "\u00e9", "\u00e9.\u00e9", "\ud800.x", ".", "abc", "W10=.00"]


@pytest.mark.parametrize("next_token", MALFORMED_TOKENS)
def test_a_malformed_next_token_is_a_bad_request_in_every_paged_query(
    stack: OfflineStack, next_token: str
) -> None:
    admin = stack.tokens.mint("admin-sub", groups=["Admin"])
    by_status = stack.graphql(BY_STATUS, {"c": "admin-sub", "s": "CONFIRMED", "n": next_token}, token=admin)
    listed = stack.graphql(
        "query($n: String) { listBookings(nextToken: $n) { nextToken } }", {"n": next_token}, token=admin
    )
    for answer in (by_status, listed):
        [error] = answer["errors"]
        assert (error["errorType"], error["message"]) == (
            "BadRequest",
            "nextToken is not a token this API issued",
        ), answer


def test_a_page_of_ten_bookings_reads_their_flights_in_one_batch(stack: OfflineStack) -> None:
    for n in range(3):
        stack.put_flight(f"F{n}", seats=9)
    _put_bookings(stack, "alice-sub", 10)
    token = stack.tokens.mint("alice-sub")
    calls_before = len(stack.lambdas.calls("ApiFunction"))
    aws.dynamodb_calls.clear()

    page = stack.graphql(BY_STATUS, {"c": "alice-sub", "s": "CONFIRMED", "l": 10}, token=token)

    assert len(page["data"]["getBookingByStatus"]["items"]) == 10
    reads = list(aws.dynamodb_calls)
    print(f"\ntable reads for a page of 10 bookings with their flights: {reads}")
    assert reads == ["Query", "BatchGetItem"]
    api_calls = stack.lambdas.calls("ApiFunction")[calls_before:]
    assert len(api_calls) == 2  # the query, then one batched invocation for all ten flights
    assert isinstance(api_calls[1].payload, list)
    assert len(api_calls[1].payload) == 10


def test_the_owner_checks_in_and_nothing_else_is_writable(stack: OfflineStack) -> None:
    stack.put_flight("F0", seats=9)
    [booking_id] = _put_bookings(stack, "alice-sub", 1)
    token = stack.tokens.mint("alice-sub")

    checked = stack.graphql(
        "mutation($id: ID!) { updateBooking(input: {id: $id, checkedIn: true}) { id checkedIn status } }",
        {"id": booking_id},
        token=token,
    )
    status_attempt = stack.graphql(
        "mutation($id: ID!) { updateBooking(input: {id: $id, checkedIn: true, status: CANCELLED}) { id } }",
        {"id": booking_id},
        token=token,
    )

    assert checked["data"]["updateBooking"] == {"id": booking_id, "checkedIn": True, "status": "CONFIRMED"}
    assert status_attempt["errors"]
    row = stack.booking(booking_id)
    assert row is not None
    assert (row["status"], row["checkedIn"]) == ("CONFIRMED", True)


def test_an_unconfirmed_booking_cannot_check_in(stack: OfflineStack) -> None:
    stack.put_flight("F0", seats=9)
    [booking_id] = _put_bookings(stack, "alice-sub", 1)
    stack.dynamodb.update_item(
        TableName=stack.resource("BookingTable"),
        Key={"id": {"S": booking_id}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "UNCONFIRMED"}},
    )

    answer = stack.graphql(
        "mutation($id: ID!) { updateBooking(input: {id: $id, checkedIn: true}) { id } }",
        {"id": booking_id},
        token=stack.tokens.mint("alice-sub"),
    )

    assert answer["errors"][0]["errorType"] == "BadRequest"
    assert "only a CONFIRMED booking" in answer["errors"][0]["message"]
    assert stack.booking(booking_id)["checkedIn"] is False  # type: ignore[index]


def test_refused_requests_are_counted_by_operation(
    stack: OfflineStack, capfd: pytest.CaptureFixture[str]
) -> None:
    stack.put_flight("F1", seats=3)
    stack.graphql(BOOK, booking_input("NOPE", "metric-key"), token=stack.tokens.mint("alice-sub"))

    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    counted = [
        (line["operation"], directive["Dimensions"])
        for line in lines
        for directive in line["_aws"]["CloudWatchMetrics"]
        if any(metric["Name"] == "InvalidBookingRequest" for metric in directive["Metrics"])
    ]
    assert counted == [("processBooking", [["operation", "service"]])]


@pytest.mark.own_stack
def test_an_unexpected_failure_in_the_api_function_names_no_python_exception(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=9)
    stack.dynamodb.delete_table(TableName=stack.resource("BookingTable"))
    answer = stack.graphql(GET, {"id": "some-booking"}, token=stack.tokens.mint("alice-sub"))
    [error] = answer["errors"]
    assert answer["data"] == {"getBooking": None}
    assert (error["errorType"], error["message"]) == (
        "InternalFailure",
        "getBooking failed; it has been logged, try again",
    )
