"""DynamoDB evaluates a condition and applies its write as one step; moto does not, so the offline
endpoint serialises each DynamoDB request (offline/aws.py, DYNAMODB_LOCK). These tests send
conditional writes over HTTP, as the sandboxes do, with moto's check-to-write window widened on
purpose: with the lock the count is exact, and without it the same requests oversell, so the first
test could not pass if the lock stopped covering the endpoint.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import moto.dynamodb.models as moto_dynamodb
import pytest
from botocore.exceptions import ClientError

from offline import aws
from offline.stack import OfflineStack
from offline.template import REGION

SEATS = 5
CUSTOMERS = 20


@pytest.fixture
def slow_conditions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto pause between evaluating a condition and applying the write."""
    original = moto_dynamodb.create_condition_expression_parser

    def parser_with_a_pause(*args: Any, **kwargs: Any) -> Any:
        parser = original(*args, **kwargs)
        parse = parser.parse

        def parse_then_pause() -> Any:
            condition = parse()
            evaluate: Callable[[Any], bool] = condition.expr

            def evaluate_then_pause(item: Any) -> bool:
                verdict = evaluate(item)
                time.sleep(0.02)
                return verdict

            condition.expr = evaluate_then_pause
            return condition

        parser.parse = parse_then_pause
        return parser

    monkeypatch.setattr(moto_dynamodb, "create_condition_expression_parser", parser_with_a_pause)


def take_seats_at_once(stack: OfflineStack) -> tuple[int, int]:
    """CUSTOMERS conditional decrements of one seat count, sent together over HTTP."""
    stack.put_flight("F1", seats=SEATS)
    client = boto3.client(
        "dynamodb",
        endpoint_url=stack.endpoint.url,
        region_name=REGION,
        aws_access_key_id="offline",
        aws_secret_access_key="offline",
    )
    barrier = threading.Barrier(CUSTOMERS)
    taken: list[int] = []

    def take() -> None:
        barrier.wait()
        with contextlib.suppress(ClientError):
            client.update_item(
                TableName=stack.resource("FlightTable"),
                Key={"id": {"S": "F1"}},
                UpdateExpression="SET seatCapacity = seatCapacity - :one",
                ConditionExpression="seatCapacity > :zero",
                ExpressionAttributeValues={":one": {"N": "1"}, ":zero": {"N": "0"}},
            )
            taken.append(1)

    threads = [threading.Thread(target=take) for _ in range(CUSTOMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(taken), stack.seats_left("F1")


@pytest.mark.usefixtures("slow_conditions")
def test_conditional_writes_over_the_endpoint_are_atomic(stack: OfflineStack) -> None:
    assert take_seats_at_once(stack) == (SEATS, 0)


@pytest.mark.usefixtures("slow_conditions")
def test_without_the_lock_the_same_writes_oversell(
    stack: OfflineStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aws, "DYNAMODB_LOCK", contextlib.nullcontext())

    taken, left = take_seats_at_once(stack)

    assert taken > SEATS or left < 0, (taken, left)


def test_an_in_process_request_reaches_moto_once(stack: OfflineStack) -> None:
    """botocore calls every `before-send` handler: the offline routing must replace moto's, not sit
    beside it, or each in-process write would run twice (once under the lock, once outside it)."""
    stack.put_flight("F1", seats=SEATS)

    stack.dynamodb.update_item(
        TableName=stack.resource("FlightTable"),
        Key={"id": {"S": "F1"}},
        UpdateExpression="ADD seatCapacity :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )

    assert stack.seats_left("F1") == SEATS + 1
