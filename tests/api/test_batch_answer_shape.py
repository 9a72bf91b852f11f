"""What a batched direct Lambda resolver must answer, and what the offline AppSync does with anything else.

AWS documents one shape for the answer to a batch (`Booking.outboundFlight`, MaxBatchSize 25): a list in
the order of the events, each item `{"data": …}` or `{"data": …, "errorMessage": …, "errorType": …}`, or
null. Decision 0013 keeps that shape, and makes the offline AppSync refuse every other answer with a
`MappingTemplate` error instead of reading it as a value or as a null: a bare item, an item with neither
`data` nor `errorMessage`, a list of the wrong length. The tests with the `stack` fixture run the real
Api function, and doubles of it (tests/doubles/wrong_batch_answers.py) that answer the wrong shapes; the
others put a scripted function behind the same `AppSyncApi`. `make smoke`'s check of a page
(`tests.e2e.target.flights_by_booking`) is run on each answer too: it must fail on every wrong one.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from offline import template as cfn
from offline.appsync import AppSyncApi
from offline.auth import TokenIssuer
from offline.stack import SCHEMA, TEMPLATE, OfflineStack, departure_in
from tests.api.scripted import ScriptedLambdas
from tests.e2e.target import flights_by_booking

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"
TOKENS = TokenIssuer(b"batch-answer-shape-test-key-0123456789")
PAGE = """query($c: String!) {
  getBookingByStatus(customer: $c, status: {eq: "CONFIRMED"}, limit: 10) {
    items { id outboundFlight { id } }
  }
}"""
REFUNDS = """{ getBookingByStatus(customer: "c", status: {eq: "CONFIRMED"}, limit: 3) {
  items { id refund { status } } } }"""


# ---------------------------------------------------------------------- the real Api function
def _put_booking(stack: OfflineStack, booking_id: str, customer: str, flight_id: str) -> None:
    stack.dynamodb.put_item(
        TableName=stack.resource("BookingTable"),
        Item={
            "id": {"S": booking_id},
            "customer": {"S": customer},
            "status": {"S": "CONFIRMED"},
            "bookingOutboundFlightId": {"S": flight_id},
            "paymentToken": {"S": "tok_visa"},
            "createdAt": {"S": "2021-11-25T08:00:00Z"},
            "updatedAt": {"S": "2021-11-25T08:00:00Z"},
            "checkedIn": {"BOOL": False},
        },
    )


@pytest.fixture
def page_of_three(stack: OfflineStack) -> dict[str, str]:
    """Three CONFIRMED bookings of alice-sub on two flights: their flight ids by booking id."""
    stack.put_flight("F1", seats=5, departure=departure_in(days=60))
    stack.put_flight("F2", seats=5, departure=departure_in(days=61))
    flights = {"b-1": "F1", "b-2": "F2", "b-3": "F1"}
    for booking_id, flight_id in flights.items():
        _put_booking(stack, booking_id, "alice-sub", flight_id)
    return flights


def test_the_api_function_answers_each_item_as_data_and_every_booking_gets_its_flight(
    stack: OfflineStack, page_of_three: dict[str, str]
) -> None:
    before = len(stack.lambdas.invocations)

    answer = stack.graphql(PAGE, {"c": "alice-sub"}, token=stack.tokens.mint("alice-sub"))

    assert "errors" not in answer, answer
    assert flights_by_booking(200, answer) == page_of_three
    [batch] = [call for call in list(stack.lambdas.invocations)[before:] if isinstance(call.payload, list)]
    # The same batch again, straight to the function: the answer AppSync got, item by item.
    response = stack.lambdas.invoke("ApiFunction", json.dumps(batch.payload))
    assert response.function_error is None
    sent = json.loads(response.body)
    assert [set(item) for item in sent] == [{"data"}] * 3
    assert [item["data"]["id"] for item in sent] == [
        event["source"]["bookingOutboundFlightId"] for event in batch.payload
    ]


def test_an_api_answering_bare_flights_makes_the_field_an_error_not_a_flight_nor_a_null(
    stack: OfflineStack, page_of_three: dict[str, str]
) -> None:
    stack.lambdas.replace_handler("ApiFunction", "wrong_batch_answers.bare_items", code_path=str(DOUBLES))

    answer = stack.graphql(PAGE, {"c": "alice-sub"}, token=stack.tokens.mint("alice-sub"))

    assert answer["data"] == {"getBookingByStatus": None}  # [Booking!]! of Flight!: the null climbs
    [error] = answer["errors"]  # graphql-core reports the first error that nulls the list
    assert error["path"] == ["getBookingByStatus", "items", 0, "outboundFlight"]
    assert error["errorType"] == "MappingTemplate"
    assert "answered item 0 of a batch for Booking.outboundFlight with an object" in error["message"]
    assert '{"data": …}' in error["message"]
    with pytest.raises(AssertionError, match="did not resolve outboundFlight"):
        flights_by_booking(200, answer)


def test_an_api_answering_one_item_short_fails_the_field_of_every_booking_of_the_batch(
    stack: OfflineStack, page_of_three: dict[str, str]
) -> None:
    stack.lambdas.replace_handler("ApiFunction", "wrong_batch_answers.one_item_short", code_path=str(DOUBLES))

    answer = stack.graphql(PAGE, {"c": "alice-sub"}, token=stack.tokens.mint("alice-sub"))

    assert answer["data"] == {"getBookingByStatus": None}
    [error] = answer["errors"]
    assert error["path"] == ["getBookingByStatus", "items", 0, "outboundFlight"]
    assert error["errorType"] == "MappingTemplate"
    assert "answered a batch of 3 events with a list of 2" in error["message"]
    with pytest.raises(AssertionError, match="did not resolve outboundFlight"):
        flights_by_booking(200, answer)


# ---------------------------------------------------------------------- scripted functions
def _booking_page(event: dict[str, Any]) -> dict[str, Any]:
    items = [{"id": f"b-{i}", "status": "CONFIRMED", "flight": f"F{i}"} for i in range(3)]
    return {"items": items, "nextToken": None}


def _api(batch_answer: Any, template: Any = TEMPLATE) -> AppSyncApi:
    """The API over a function that pages three bookings and answers every batch with
    `batch_answer(events)`."""

    def function(event: Any) -> Any:
        return batch_answer(event) if isinstance(event, list) else _booking_page(event)

    return AppSyncApi(SCHEMA, template, ScriptedLambdas(function), TOKENS)


def _flight_errors(body: dict[str, Any]) -> list[tuple[Any, str]]:
    return [(error["path"][-2:], error["errorType"]) for error in body.get("errors", [])]


@pytest.mark.parametrize(
    "item",
    [
        pytest.param({"id": "F0"}, id="bare-flight"),
        pytest.param({}, id="empty-object"),
        pytest.param({"errorType": "NotFound"}, id="type-without-message"),
        pytest.param({"errorMessage": "", "id": "F0"}, id="empty-message"),
        pytest.param(["F0"], id="a-list"),
        pytest.param("F0", id="a-string"),
    ],
)
def test_an_item_with_neither_data_nor_an_error_message_is_a_mapping_template_error(item: Any) -> None:
    api = _api(lambda events: [item] + [{"data": {"id": e["source"]["flight"]}} for e in events[1:]])

    _, body = api.execute({"query": PAGE, "variables": {"c": "c"}}, authorization=TOKENS.mint("c"))

    assert body["data"] == {"getBookingByStatus": None}
    assert _flight_errors(body) == [([0, "outboundFlight"], "MappingTemplate")]


@pytest.mark.parametrize(
    ("answer", "described"),
    [
        pytest.param(lambda events: [{"data": {"id": "F0"}}] * (len(events) - 1), "a list of 2", id="short"),
        pytest.param(lambda events: [{"data": {"id": "F0"}}] * (len(events) + 1), "a list of 4", id="long"),
        pytest.param(lambda events: {"data": [{"id": "F0"}] * len(events)}, "dict", id="not-a-list"),
        pytest.param(lambda events: None, "NoneType", id="null"),
    ],
)
def test_an_answer_that_is_not_a_list_of_the_batchs_length_fails_every_item(
    answer: Any, described: str
) -> None:
    api = _api(answer)

    _, body = api.execute({"query": PAGE, "variables": {"c": "c"}}, authorization=TOKENS.mint("c"))

    assert body["data"] == {"getBookingByStatus": None}
    [error] = body["errors"]
    assert (error["errorType"], error["path"][-1]) == ("MappingTemplate", "outboundFlight")
    assert f"answered a batch of 3 events with {described}:" in error["message"]


def _with_batched_refund() -> dict[str, Any]:
    """template.yaml with one more batched resolver, on the nullable `Booking.refund`: where a misread
    answer would be a silent null rather than a non-null error."""
    template = copy.deepcopy(cfn.load(TEMPLATE))
    resolver = copy.deepcopy(template["Resources"]["BookingOutboundFlightResolver"])
    resolver["Properties"]["FieldName"] = "refund"
    template["Resources"]["BookingRefundResolver"] = resolver
    return template


def test_on_a_nullable_field_a_bare_item_is_an_error_beside_the_null_and_data_and_null_items_resolve() -> (
    None
):
    answers = [{"data": {"status": "REFUNDED"}}, None, {"status": "REFUNDED"}]
    api = _api(lambda events: answers[: len(events)], template=_with_batched_refund())

    _, body = api.execute({"query": REFUNDS}, authorization=TOKENS.mint("c"))

    assert body["data"]["getBookingByStatus"]["items"] == [
        {"id": "b-0", "refund": {"status": "REFUNDED"}},
        {"id": "b-1", "refund": None},  # a null item is valid: `$ctx.result` is null
        {"id": "b-2", "refund": None},
    ]
    assert _flight_errors(body) == [([2, "refund"], "MappingTemplate")]  # the bare one is not silent


def test_the_smoke_check_refuses_a_page_whose_booking_came_back_without_its_flight() -> None:
    """What AppSync would answer if it read the batch as null on a nullable field: no error at all."""
    body = {"data": {"getBookingByStatus": {"items": [{"id": "b-1", "outboundFlight": None}]}}}
    with pytest.raises(AssertionError, match=r"left null or without an id: \['b-1'\]"):
        flights_by_booking(200, body)
