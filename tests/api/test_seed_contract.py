"""The contract the seed's front end and its users rely on: its two documents unchanged, one field's
error never hiding another's booking, and nothing about other customers' bookings to learn."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from graphql import parse, validate

from offline import cli
from offline.appsync import load_schema
from offline.stack import SCHEMA, OfflineStack
from tests.conftest import unique_token

# The seed's Vue front end (store/bookings), verbatim.
SEED_BOOK = "mutation ProcessBooking($input: CreateBookingInput!) { processBooking(input: $input) { id } }"
SEED_LIST = """query GetBookingByStatus($customer: String, $status: ModelStringKeyConditionInput,
    $sortDirection: ModelSortDirection, $filter: ModelBookingFilterInput, $limit: Int,
    $nextToken: String) {
  getBookingByStatus(customer: $customer, status: $status, sortDirection: $sortDirection,
      filter: $filter, limit: $limit, nextToken: $nextToken) {
    items { id status outboundFlight { id departureDate departureAirportCode
      departureAirportName departureCity departureLocale arrivalDate arrivalAirportCode
      arrivalAirportName arrivalCity arrivalLocale ticketPrice ticketCurrency flightNumber
      seatAllocation seatCapacity } paymentToken checkedIn customer createdAt bookingReference }
    nextToken } }"""

LIST = """query($c: String, $s: ModelStringKeyConditionInput, $d: ModelSortDirection,
    $f: ModelBookingFilterInput, $n: String) {
  getBookingByStatus(customer: $c, status: $s, sortDirection: $d, filter: $f, nextToken: $n, limit: 2) {
    items { id status } nextToken } }"""
GET = "query($id: ID!) { getBooking(id: $id) { id paymentToken } }"
CHECK_IN = "mutation($id: ID!) { updateBooking(input: {id: $id, checkedIn: true}) { id checkedIn } }"


def _execution_arn(stack: OfflineStack, booking_id: str) -> str:
    return stack.execution_arn("ProcessBooking", booking_id)


def _executions(stack: OfflineStack) -> int:
    return len(stack.sfn.list_executions(stateMachineArn=stack.resource("ProcessBooking"))["executions"])


def _put_booking(
    stack: OfflineStack, customer: str, status: str, *, checked_in: bool = False, reference: str = "ABC234"
) -> str:
    booking_id = str(uuid.uuid4())
    stack.dynamodb.put_item(
        TableName=stack.resource("BookingTable"),
        Item={
            "id": {"S": booking_id},
            "customer": {"S": customer},
            "status": {"S": status},
            "bookingOutboundFlightId": {"S": "F1"},
            "paymentToken": {"S": unique_token()},
            "createdAt": {"S": "2021-11-25T08:00:00Z"},
            "updatedAt": {"S": "2021-11-25T08:00:00Z"},
            "checkedIn": {"BOOL": checked_in},
            "bookingReference": {"S": reference},
        },
    )
    return booking_id


# ---------------------------------------------------------------------- item 1: the seed's documents
def test_the_seed_front_ends_two_documents_book_a_seat_and_list_it(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3, price=8_900)
    token = stack.tokens.mint("seed-sub")
    card = unique_token()

    booked = stack.graphql(
        SEED_BOOK, {"input": {"paymentToken": card, "bookingOutboundFlightId": "F1"}}, token=token
    )
    assert "errors" not in booked, booked
    booking_id = booked["data"]["processBooking"]["id"]
    assert stack.wait(_execution_arn(stack, booking_id))["status"] == "SUCCEEDED"
    listed = stack.graphql(
        SEED_LIST,
        {"customer": "seed-sub", "status": {"eq": "CONFIRMED"}, "limit": 3, "nextToken": None},
        token=token,
    )

    assert "errors" not in listed, listed
    [item] = listed["data"]["getBookingByStatus"]["items"]
    assert (item["id"], item["status"], item["customer"]) == (booking_id, "CONFIRMED", "seed-sub")
    assert (item["outboundFlight"]["id"], item["outboundFlight"]["ticketPrice"]) == ("F1", 8_900)
    assert item["paymentToken"] == "****" + card[-4:]
    assert len(item["bookingReference"]) == 6
    assert listed["data"]["getBookingByStatus"]["nextToken"] is None
    assert stack.gateway.charges()[card].amount_captured == 8_900


def test_without_a_key_the_same_token_from_the_same_caller_is_the_same_booking(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=9)
    stack.put_flight("F2", seats=3)
    alice, bob = stack.tokens.mint("alice-sub"), stack.tokens.mint("bob-sub")
    request = {"paymentToken": unique_token(), "bookingOutboundFlightId": "F1"}

    first = stack.graphql(SEED_BOOK, {"input": request}, token=alice)["data"]["processBooking"]
    again = stack.graphql(SEED_BOOK, {"input": request}, token=alice)["data"]["processBooking"]
    assert stack.wait(_execution_arn(stack, first["id"]))["status"] == "SUCCEEDED"
    keyed = stack.graphql(SEED_BOOK, {"input": {**request, "idempotencyKey": "key-00001"}}, token=alice)
    other_flight = stack.graphql(
        SEED_BOOK, {"input": {**request, "bookingOutboundFlightId": "F2"}}, token=alice
    )
    bobs = stack.graphql(SEED_BOOK, {"input": request}, token=bob)["data"]["processBooking"]
    new_card = {**request, "paymentToken": unique_token()}
    second = stack.graphql(SEED_BOOK, {"input": new_card}, token=alice)["data"]["processBooking"]
    stack.drain(60)

    assert first == again == {"id": first["id"]}
    assert stack.booking(first["id"])["status"] == "CONFIRMED"  # type: ignore[index]
    assert keyed["data"]["processBooking"]["id"] not in {first["id"], bobs["id"]}  # a key names its own
    [error] = other_flight["errors"]
    assert (error["errorType"], error["message"]) == (
        "BadRequest",
        "paymentToken already pays for another booking; a charge pays for one",
    )
    assert bobs["id"] != first["id"]
    assert second["id"] != first["id"]  # another charge is another booking
    assert stack.booking(first["id"])["status"] == "CONFIRMED"  # type: ignore[index]
    assert stack.seats_left("F1") == 7  # one seat per charge: the keyed and bob's bookings were refused


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", "my-own-id"), ("status", "CONFIRMED"), ("customer", "alice-sub"), ("checkedIn", True)],
)
def test_a_field_the_server_sets_is_refused_when_a_client_sends_it(
    stack: OfflineStack, field: str, value: Any
) -> None:
    stack.put_flight("F1", seats=3)
    request = {"paymentToken": unique_token(), "bookingOutboundFlightId": "F1", field: value}

    answer = stack.graphql(SEED_BOOK, {"input": request}, token=stack.tokens.mint("bob-sub"))

    [error] = answer["errors"]
    assert (error["errorType"], error["message"]) == (
        "BadRequest",
        f"input.{field} is set by the server; leave it out",
    )
    assert answer["data"] == {"processBooking": None}
    assert _executions(stack) == 0
    assert stack.gateway.charges() == {}


def test_the_status_condition_reads_the_index_sort_key_in_either_direction(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=9)
    token = stack.tokens.mint("dora-sub")
    ids = {status: _put_booking(stack, "dora-sub", status) for status in ("CANCELLED", "UNCONFIRMED")}
    confirmed = {_put_booking(stack, "dora-sub", "CONFIRMED") for _ in range(2)}
    _put_booking(stack, "someone-else", "CONFIRMED")

    def statuses(condition: dict[str, Any] | None, direction: str | None = None) -> list[str]:
        seen, next_token = [], None
        while True:
            answer = stack.graphql(LIST, {"s": condition, "d": direction, "n": next_token}, token=token)
            assert "errors" not in answer, answer
            page = answer["data"]["getBookingByStatus"]
            seen += [item["status"] for item in page["items"]]
            if (next_token := page["nextToken"]) is None:
                return seen

    assert statuses({"eq": "CONFIRMED"}) == ["CONFIRMED"] * 2
    assert statuses({"beginsWith": "C"}) == ["CANCELLED", "CONFIRMED", "CONFIRMED"]
    assert statuses({"between": ["CANCELLED", "CONFIRMED"]}, "DESC") == [
        "CONFIRMED",
        "CONFIRMED",
        "CANCELLED",
    ]
    assert statuses({"gt": "CONFIRMED"}) == ["UNCONFIRMED"]
    assert statuses({"lt": "CONFIRMED"}) == ["CANCELLED"]
    assert statuses(None, "DESC") == ["UNCONFIRMED", "CONFIRMED", "CONFIRMED", "CANCELLED"]
    only = stack.graphql(LIST, {"s": {"eq": "CANCELLED"}}, token=token)["data"]["getBookingByStatus"]
    assert [item["id"] for item in only["items"]] == [ids["CANCELLED"]]
    assert confirmed


def test_a_filter_keeps_only_the_bookings_it_names(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=9)
    token = stack.tokens.mint("erin-sub")
    checked = _put_booking(stack, "erin-sub", "CONFIRMED", checked_in=True, reference="KXQ234")
    _put_booking(stack, "erin-sub", "CONFIRMED", reference="MPT567")

    def ids(spec: dict[str, Any]) -> list[str]:
        answer = stack.graphql(LIST, {"s": {"eq": "CONFIRMED"}, "f": spec}, token=token)
        assert "errors" not in answer, answer
        return [item["id"] for item in answer["data"]["getBookingByStatus"]["items"]]

    assert ids({"checkedIn": {"eq": True}}) == [checked]
    assert ids({"bookingReference": {"beginsWith": "KX"}, "status": {"ne": "CANCELLED"}}) == [checked]
    assert len(ids({"createdAt": {"between": ["2021-01-01", "2022-01-01"]}})) == 2
    assert ids({"createdAt": {"gt": "2022"}}) == []


@pytest.mark.parametrize(
    ("condition", "spec", "message"),
    [
        ({"eq": "CONFIRMED", "beginsWith": "C"}, None, "status takes one condition, not 2"),
        ({"eq": "CONFIRMD"}, None, "status.eq must be one of UNCONFIRMED, CONFIRMED, CANCELLING, CANCELLED"),
        ({"between": ["A"]}, None, "status.between takes two values"),
        (None, {"and": [{"checkedIn": {"eq": True}}]}, "filter.and is not supported"),
        (None, {"paymentToken": {"eq": "tok_visa"}}, "filter.paymentToken is not supported"),
        (None, {"createdAt": {"contains": "2021"}}, "filter.createdAt.contains is not supported"),
        (None, {"checkedIn": {"attributeExists": True}}, "filter.checkedIn.attributeExists is not supported"),
    ],
)
def test_a_condition_or_filter_part_we_do_not_support_is_refused_by_name(
    stack: OfflineStack, condition: dict[str, Any] | None, spec: dict[str, Any] | None, message: str
) -> None:
    answer = stack.graphql(LIST, {"s": condition, "f": spec}, token=stack.tokens.mint("erin-sub"))

    [error] = answer["errors"]
    assert error["errorType"] == "BadRequest"
    assert message in error["message"]
    assert answer["data"] == {"getBookingByStatus": None}


def test_a_next_token_is_bound_to_its_condition_and_filter(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=9)
    token = stack.tokens.mint("fred-sub")
    for _ in range(3):
        _put_booking(stack, "fred-sub", "CONFIRMED")
    first = stack.graphql(LIST, {"s": {"eq": "CONFIRMED"}}, token=token)["data"]["getBookingByStatus"]

    elsewhere = stack.graphql(LIST, {"s": {"beginsWith": "C"}, "n": first["nextToken"]}, token=token)
    filtered = stack.graphql(
        LIST,
        {"s": {"eq": "CONFIRMED"}, "f": {"checkedIn": {"eq": True}}, "n": first["nextToken"]},
        token=token,
    )

    for answer in (elsewhere, filtered):
        assert answer["errors"][0]["errorType"] == "BadRequest"
        assert "nextToken belongs to another query" in answer["errors"][0]["message"]


# ---------------------------------------------------------------------- item 2: errors stay local
def test_one_fields_error_does_not_hide_another_fields_booking(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3, price=8_900)
    card = unique_token()
    document = f"""mutation {{
  a0: processBooking(input: {{paymentToken: "{card}", bookingOutboundFlightId: "F1"}}) {{ id }}
  a1: processBooking(input: {{paymentToken: "bad-token!", bookingOutboundFlightId: "F1"}}) {{ id }}
}}"""

    status, body = stack.api.execute({"query": document}, authorization=stack.tokens.mint("alice-sub"))

    assert status == 200
    booking_id = body["data"]["a0"]["id"]
    assert body["data"] == {"a0": {"id": booking_id}, "a1": None}
    [error] = body["errors"]
    assert (error["path"], error["errorType"]) == (["a1"], "BadRequest")
    assert "paymentToken must be" in error["message"]
    assert stack.wait(_execution_arn(stack, booking_id))["status"] == "SUCCEEDED"
    assert stack.booking(booking_id)["status"] == "CONFIRMED"  # type: ignore[index]
    assert stack.gateway.charges()[card].amount_captured == 8_900
    assert _executions(stack) == 1


# ---------------------------------------------------------------------- item 4: no existence oracle
def test_another_customers_booking_and_a_missing_one_get_the_same_answer(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    alices = _put_booking(stack, "alice-sub", "CONFIRMED")
    missing = str(uuid.uuid4())
    bob = stack.tokens.mint("bob-sub")

    for document in (GET, CHECK_IN):
        theirs = stack.api.execute({"query": document, "variables": {"id": alices}}, authorization=bob)
        nobodys = stack.api.execute({"query": document, "variables": {"id": missing}}, authorization=bob)
        assert theirs == nobodys
        _, body = theirs
        assert body["errors"][0]["errorType"] == "Unauthorized"
    assert stack.booking(alices)["checkedIn"] is False  # type: ignore[index]


def test_the_owner_sees_the_payment_token_masked_and_admin_and_the_saga_see_it_whole(
    stack: OfflineStack,
) -> None:
    stack.put_flight("F1", seats=3)
    owner, admin = stack.tokens.mint("alice-sub"), stack.tokens.mint("carol-sub", groups=["Admin"])
    card = unique_token()
    booking_id = stack.graphql(
        SEED_BOOK, {"input": {"paymentToken": card, "bookingOutboundFlightId": "F1"}}, token=owner
    )["data"]["processBooking"]["id"]
    pending = stack.graphql(GET, {"id": booking_id}, token=owner)["data"]["getBooking"]  # from the execution
    stack.wait(_execution_arn(stack, booking_id))

    mine = stack.graphql(GET, {"id": booking_id}, token=owner)["data"]["getBooking"]
    listed = stack.graphql(LIST, {"c": "alice-sub", "s": {"eq": "CONFIRMED"}}, token=owner)
    checked_in = stack.graphql(
        "mutation($id: ID!) { updateBooking(input: {id: $id, checkedIn: true}) { paymentToken } }",
        {"id": booking_id},
        token=owner,
    )
    as_admin = stack.graphql(GET, {"id": booking_id}, token=admin)["data"]["getBooking"]
    every = stack.graphql("{ listBookings { items { id paymentToken } } }", token=admin)

    masked = "****" + card[-4:]
    assert pending["paymentToken"] == mine["paymentToken"] == masked
    listed_query = "query($c: String) { getBookingByStatus(customer: $c) { items { paymentToken } } }"
    assert stack.graphql(listed_query, {"c": "alice-sub"}, token=owner)["data"]["getBookingByStatus"] == {
        "items": [{"paymentToken": masked}]
    }
    assert listed["data"]["getBookingByStatus"]["items"][0]["id"] == booking_id
    assert checked_in["data"]["updateBooking"] == {"paymentToken": masked}
    assert as_admin["paymentToken"] == card
    assert every["data"]["listBookings"]["items"] == [{"id": booking_id, "paymentToken": card}]
    assert stack.booking(booking_id)["paymentToken"] == card  # type: ignore[index]
    assert stack.gateway.charges()[card].captures == 1  # the saga charged the whole token


def test_every_document_the_tree_shows_a_client_validates_against_the_schema() -> None:
    """The README's quick start, the query page's buttons and the demo speak the schema as it is."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    page = (root / "offline" / "static" / "index.html").read_text()
    quoted = re.findall(r"""'\{"query": ("(?:[^"\\]|\\.)*")""", readme)  # '{"query": "…" in a shell line
    readme_documents = [json.loads(text) for text in quoted]
    page_documents = [json.loads(f'"{text}"') for text in re.findall(r'/\* GraphQL \*/ "(.*?)";', page)]
    documents = [*readme_documents, *page_documents, cli.BOOK, cli.GET, cli.FLIGHTS, SEED_BOOK, SEED_LIST]
    schema = load_schema(SCHEMA)

    # Every document was found: the quick start books, reads, lists, cancels and reads again; the
    # page books, reads, lists and cancels (at least).
    assert len(readme_documents) == 5
    assert {"processBooking", "getBooking", "getBookingByStatus"} <= {
        operation for document in page_documents for operation in re.findall(r"\b(\w+)\(", document)
    }
    for document in documents:
        assert validate(schema, parse(document)) == [], document


def test_the_status_conditions_know_every_status_of_the_schema() -> None:
    from booking.conditions import STATUSES

    enum = load_schema(SCHEMA).get_type("BookingStatus")

    assert set(STATUSES) == set(enum.values)  # type: ignore[union-attr]
