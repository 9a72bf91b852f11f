"""Reserve Flight done wrong: read the seat count, pause, write it back minus one, with no condition.

Two sandboxes that read the same count both take "the last seat", and one decrement is lost: the
race that the real handler's conditional `UpdateItem` rules out. Runs in a sandbox of its own, with
Reserve Flight's environment, and reaches DynamoDB through the offline endpoint like the real one.
"""

from __future__ import annotations

import os
import time
from typing import Any

import boto3

PAUSE_SECONDS = 0.05
table = os.environ["FLIGHT_TABLE_NAME"]
dynamodb = boto3.client("dynamodb")


class FlightFull(Exception):
    """The name the state machine treats as a business rejection."""


class FlightNotFound(Exception):
    """The name the state machine treats as a business rejection."""


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    key = {"id": {"S": event["outboundFlightId"]}}
    item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    if item is None:
        raise FlightNotFound(event["outboundFlightId"])
    seats = int(item["seatCapacity"]["N"])
    if seats <= 0:
        raise FlightFull(event["outboundFlightId"])
    time.sleep(PAUSE_SECONDS)
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET seatCapacity = :seats ADD heldBy :booking",
        ExpressionAttributeValues={":seats": {"N": str(seats - 1)}, ":booking": {"SS": [event["bookingId"]]}},
    )
    return {"status": "held"}
