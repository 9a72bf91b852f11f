"""The one place AWS clients are made.

Handlers call these at module level, so a warm invocation reuses the client and its connection
pool. The SDK's own retries absorb short throttling; what is left surfaces as
`BookingStoreUnavailable`, which the state machine retries with backoff.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from booking.errors import BookingStoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)


@cache
def dynamodb() -> DynamoDBClient:
    """The DynamoDB client shared by the repositories of one function."""
    return boto3.client("dynamodb", config=_CONFIG)


@cache
def sns() -> SNSClient:
    """The SNS client the notifier publishes with."""
    return boto3.client("sns", config=_CONFIG)


def is_throttling(error: Any) -> bool:
    """Tell a throttled or unavailable DynamoDB from a request that is simply wrong."""
    code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
    return code in {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }


def store_error(error: Any) -> Exception:
    """Throttling is worth a retry by the state machine; anything else is a defect to surface."""
    if is_throttling(error):
        return BookingStoreUnavailable(f"DynamoDB: {error.response['Error']['Code']}")
    return error
