"""Requests over AppSync's limits cost time linear in their size and run nothing (issue 9, items 1-2)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from graphql import Source

from offline.appsync import SERIAL_FIELDS, _IndexedSource
from offline.stack import OfflineStack
from tests.api.test_offline_appsync import PAGE, TOKENS, scripted_api
from tests.conftest import unique_token

FLIGHT = 'a{n}: getFlight(id: "SA1001-LGW-MAD") {{ id }}'


def aliases(count: int, field: str = FLIGHT) -> str:
    return "{ " + "\n".join(field.format(n=n) for n in range(count)) + " }"


def test_twenty_thousand_aliased_resolvers_are_refused_at_once_with_one_error() -> None:
    api, lambdas = scripted_api()
    query = aliases(20_000)
    assert len(query) > 900_000
    started = time.monotonic()
    status, body = api.execute({"query": query}, authorization=TOKENS.mint("ann"))
    took = time.monotonic() - started
    assert status == 200
    assert body["data"] is None
    [error] = body["errors"]
    assert error["errorType"] == "ResolverExecutionLimitReached"
    assert "more than 200" in error["message"]
    assert lambdas.payloads == []
    assert took < 30, took  # minutes before the document was counted up front


def test_fragments_spread_over_and_over_are_counted_where_they_are_spread() -> None:
    api, lambdas = scripted_api()
    fragments = ['fragment F0 on Query { getFlight(id: "F") { id } }'] + [
        f'fragment F{n} on Query {{ ...F{n - 1} x: getFlight(id: "F") {{ id }} ...F{n - 1} }}'
        for n in range(1, 60)
    ]
    query = "query { ...F59 }\n" + "\n".join(fragments)  # 2^60 resolvers, in 60 lines
    started = time.monotonic()
    _, body = api.execute({"query": query}, authorization=TOKENS.mint("ann"))
    assert time.monotonic() - started < 30  # counting 2^60 spreads one by one would never end
    assert [error["errorType"] for error in body["errors"]] == ["ResolverExecutionLimitReached"]
    assert lambdas.payloads == []


def test_a_document_at_the_limit_still_runs() -> None:
    api, lambdas = scripted_api(resolver_count_limit=3)
    _, body = api.execute({"query": aliases(3)}, authorization=TOKENS.mint("ann"))
    assert {error["errorType"] for error in body["errors"]} == {"FlightMissing"}  # the scripted service's
    assert len(lambdas.payloads) == 3
    _, body = api.execute({"query": PAGE, "variables": {"n": 1}}, authorization=TOKENS.mint("ann"))
    assert "errors" not in body, body  # getBookingByStatus and one outboundFlight: 2 of 3


def test_indexed_locations_are_graphql_cores() -> None:
    body = "{ a\r\n  b\n\r c\r d }\n\n"
    indexed, plain = _IndexedSource(body), Source(body)
    for position in range(len(body) + 1):
        assert indexed.get_location(position) == plain.get_location(position), position


def test_thousands_of_failing_fields_are_placed_on_their_lines_in_linear_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def scan(source: Source, position: int) -> None:
        raise AssertionError("graphql-core's get_location scans the document from the start for each error")

    monkeypatch.setattr(Source, "get_location", scan)

    def refuse(event: Any) -> Any:
        raise LookupError("no such flight")

    api, _ = scripted_api(refuse, resolver_count_limit=10_000)
    count = 6_000
    query = aliases(count)
    started = time.monotonic()
    _, body = api.execute({"query": query}, authorization=TOKENS.mint("ann"))
    took = time.monotonic() - started
    assert len(body["errors"]) == count
    assert body["errors"][-1]["locations"] == [{"line": count, "column": 1, "sourceName": None}]
    assert took < 30, took


def test_a_thousand_mutation_fields_are_refused_and_nothing_is_booked(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=9)
    token = stack.tokens.mint("many-sub")
    book = 'a{n}: processBooking(input: {{paymentToken: "%s", bookingOutboundFlightId: "F1"}}) {{ id }}'
    query = "mutation " + aliases(1_000, book % unique_token())
    status, body = stack.api.execute({"query": query}, authorization=token)
    assert status == 200
    assert [error["errorType"] for error in body["errors"]] == ["ResolverExecutionLimitReached"]
    assert stack.dynamodb.scan(TableName=stack.resource("BookingTable"))["Count"] == 0
    executions = stack.sfn.list_executions(stateMachineArn=stack.resource("ProcessBooking"))["executions"]
    assert executions == []


def test_a_mutation_request_graphql_core_cannot_chain_is_refused_whatever_the_limit() -> None:
    api, lambdas = scripted_api(resolver_count_limit=10_000)
    book = 'a{n}: processBooking(input: {{paymentToken: "tok_visa", bookingOutboundFlightId: "F1"}}) {{ id }}'
    status, body = api.execute(
        {"query": "mutation " + aliases(SERIAL_FIELDS * 2, book)}, authorization=TOKENS.mint("ann")
    )
    assert status == 200
    assert [error["errorType"] for error in body["errors"]] == ["ResolverExecutionLimitReached"]
    assert lambdas.payloads == []


def test_a_document_nested_past_what_the_parser_takes_is_a_malformed_request() -> None:
    api, _ = scripted_api()
    status, body = api.execute({"query": "{ a" * 5_000}, authorization=TOKENS.mint("ann"))
    assert status == 400
    assert body["errors"][0]["errorType"] == "MalformedHttpRequestException"
