"""EMF offline: the metrics the functions print reach moto's CloudWatch, as CloudWatch Logs puts them."""

from __future__ import annotations

import json

import boto3

from offline.metrics import metric_data
from offline.stack import OfflineStack
from offline.template import REGION
from tests.conftest import book, booking_metric_sum

POWERTOOLS_LINE = {
    "_aws": {
        "Timestamp": 1795626108075,
        "CloudWatchMetrics": [
            {
                "Namespace": "ServerlessAirline",
                "Dimensions": [["service"]],
                "Metrics": [{"Name": "SuccessfulBooking", "Unit": "Count"}],
            }
        ],
    },
    "service": "booking",
    "SuccessfulBooking": [1.0],
}


def test_a_powertools_line_is_one_datum_per_metric_with_its_dimensions() -> None:
    [(namespace, [datum])] = metric_data(json.loads(json.dumps(POWERTOOLS_LINE)))

    assert namespace == "ServerlessAirline"
    assert (datum["MetricName"], datum["Dimensions"], datum["Values"], datum["Unit"]) == (
        "SuccessfulBooking",
        [{"Name": "service", "Value": "booking"}],
        [1.0],
        "Count",
    )
    assert metric_data({"level": "INFO", "message": "seat held"}) == []


def test_a_confirmed_and_a_declined_booking_are_listed_by_cloudwatch(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    stack.lambdas.retire_sandboxes()  # ColdStart is counted on a cold start only
    book(stack, token="tok_visa_metrics")
    book(stack, token="tok_chargeDeclined")

    listed = boto3.client("cloudwatch", region_name=REGION).list_metrics(
        Namespace="ServerlessAirline", Dimensions=[{"Name": "service", "Value": "booking"}]
    )["Metrics"]

    names = {metric["MetricName"] for metric in listed}
    assert {"SuccessfulPayment", "SuccessfulBooking", "SuccessfulNotification", "FailedPayment"} <= names
    assert "ColdStart" in names
    assert booking_metric_sum("SuccessfulBooking") == 1.0  # the confirmed booking, at its own time
