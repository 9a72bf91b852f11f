"""The seat invariant, under any order of reserves and releases, retries included (hypothesis)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from booking.errors import FlightFull, FlightNotFound
from booking.flights import FlightRepository
from offline import aws
from offline.template import REGION

CAPACITY = 3
BOOKINGS = [f"b{n}" for n in range(6)]


@pytest.fixture(scope="module")
def flights() -> Iterator[FlightRepository]:
    aws.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="flights",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield FlightRepository("flights", client)


def _reset(repository: FlightRepository, flight_id: str) -> None:
    repository._client.put_item(
        TableName="flights",
        Item={
            "id": {"S": flight_id},
            "seatCapacity": {"N": str(CAPACITY)},
            "maximumSeating": {"N": str(CAPACITY)},
            "ticketPrice": {"N": "100"},
            "ticketCurrency": {"S": "EUR"},
        },
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["reserve", "release"]), st.sampled_from(BOOKINGS)), max_size=25))
def test_seat_count_always_equals_capacity_minus_holders(
    flights: FlightRepository, operations: list[tuple[str, str]]
) -> None:
    _reset(flights, "F1")
    holders: set[str] = set()
    for operation, booking_id in operations:
        if operation == "reserve":
            try:
                assert flights.reserve_seat("F1", booking_id) == "held"
                holders.add(booking_id)
            except FlightFull:
                assert booking_id not in holders
                assert len(holders) == CAPACITY
        else:
            outcome = flights.release_seat("F1", booking_id)
            assert outcome == ("released" if booking_id in holders else "not_held")
            holders.discard(booking_id)
        flight = flights.get("F1")
        assert flight is not None
        assert 0 <= flight.seat_capacity <= CAPACITY
        assert flight.seat_capacity == CAPACITY - len(holders)


def test_reserving_on_an_unknown_flight_creates_nothing(flights: FlightRepository) -> None:
    with pytest.raises(FlightNotFound):
        flights.reserve_seat("GHOST", "b1")
    assert flights.get("GHOST") is None
    assert flights.release_seat("GHOST", "b1") == "not_held"
    assert flights.get("GHOST") is None
