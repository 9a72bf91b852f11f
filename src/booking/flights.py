"""Seats on a flight, guarded in the write itself.

A seat is one conditional `UpdateItem`: the count goes down only while it is above zero and only
if this booking is not already in the flight's `heldBy` set, and both happen in the same write.
When the condition fails, the item as it was (returned with the failure) tells why: this booking
already holds its seat (a retry after a lost answer: success, no second seat), the flight is
unknown, or it is full. Giving a seat back is the mirror image and only the holder can do it, so
the count stays within 0..maximumSeating under retries and concurrency.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from booking.clients import plain, read_page, rejected_item, store_error
from booking.errors import FlightFull, FlightNotFound

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class Flight:
    """The parts of a flight the saga reads: its price and its seats."""

    id: str
    seat_capacity: int
    maximum_seating: int
    ticket_price: int
    ticket_currency: str

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Flight:
        return cls(
            id=item["id"]["S"],
            seat_capacity=int(item["seatCapacity"]["N"]),
            maximum_seating=int(item["maximumSeating"]["N"]),
            ticket_price=int(item["ticketPrice"]["N"]),
            ticket_currency=item["ticketCurrency"]["S"],
        )


SeatOutcome = Literal["held", "released", "not_held"]


class FlightRepository:
    """Reads flights and moves one seat at a time for one booking."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def get(self, flight_id: str) -> Flight | None:
        """A strongly consistent read: the price charged must be the price stored now."""
        try:
            item = self._client.get_item(
                TableName=self._table, Key={"id": {"S": flight_id}}, ConsistentRead=True
            ).get("Item")
        except ClientError as error:
            raise store_error(error) from None
        return Flight.from_item(item) if item else None

    def get_item(self, flight_id: str) -> dict[str, Any] | None:
        """The whole flight as the API shows it (`heldBy` left out: it lists other customers' bookings)."""
        try:
            item = self._client.get_item(TableName=self._table, Key={"id": {"S": flight_id}}).get("Item")
        except ClientError as error:
            raise store_error(error) from None
        return _public(item) if item else None

    def get_items(self, flight_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Many flights in one BatchGetItem (100 keys a call), so a page of bookings costs one read."""
        wanted = sorted(set(flight_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 100):
            request: dict[str, Any] = {
                self._table: {"Keys": [{"id": {"S": i}} for i in wanted[start : start + 100]]}
            }
            for _ in range(5):  # UnprocessedKeys come back under throttling: ask again for those only
                try:
                    answer = self._client.batch_get_item(RequestItems=request)
                except ClientError as error:
                    raise store_error(error) from None
                for item in answer["Responses"].get(self._table, []):
                    found[item["id"]["S"]] = _public(item)
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
        return found

    def by_schedule(
        self, departure: str, arrival: str, date: str, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Flights leaving `departure` on `date` for `arrival`, from the BySchedule index."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "BySchedule",
            "KeyConditionExpression": "departureAirportCode = :departure AND departureDate = :date",
            "FilterExpression": "arrivalAirportCode = :arrival",
            "ExpressionAttributeValues": {
                ":departure": {"S": departure},
                ":date": {"S": date},
                ":arrival": {"S": arrival},
            },
            "Limit": limit,
        }
        return read_page(self._client.query, request, start_key, _public)

    def reserve_seat(self, flight_id: str, booking_id: str) -> SeatOutcome:
        """Take one seat for the booking, or see that it already holds one."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": flight_id}},
                UpdateExpression="SET seatCapacity = seatCapacity - :one ADD heldBy :booking_set",
                ConditionExpression=(
                    "attribute_exists(id) AND seatCapacity > :zero AND NOT contains(heldBy, :booking)"
                ),
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":zero": {"N": "0"},
                    ":booking": {"S": booking_id},
                    ":booking_set": {"SS": [booking_id]},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            before = rejected_item(error)
            if not before:
                raise FlightNotFound(f"flight {flight_id} does not exist") from None
            if booking_id in before.get("heldBy", {}).get("SS", []):
                return "held"
            raise FlightFull(f"flight {flight_id} has no free seat") from None
        return "held"

    def release_seat(self, flight_id: str, booking_id: str) -> SeatOutcome:
        """Give back the seat this booking holds; a no-op when it holds none (or never did)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": flight_id}},
                UpdateExpression="SET seatCapacity = seatCapacity + :one DELETE heldBy :booking_set",
                ConditionExpression="contains(heldBy, :booking) AND seatCapacity < maximumSeating",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":booking": {"S": booking_id},
                    ":booking_set": {"SS": [booking_id]},
                },
            )
        except ClientError as error:
            rejected_item(error)
            return "not_held"
        return "released"


def _public(item: dict[str, Any]) -> dict[str, Any]:
    """A flight as the schema shows it: no seat holders; `seatAllocation` (the seed's name for the
    seats a flight was given) is its maximumSeating."""
    flight = plain(item)
    flight.pop("heldBy", None)
    flight.setdefault("seatAllocation", flight.get("maximumSeating"))
    return flight
