"""The one place AWS clients are made.

Handlers call these at module level, so a warm invocation reuses the client and its connection pool.
The SDK's own retries (standard mode, `max_attempts` 3: 3 retries, 4 attempts, exponential backoff
with jitter) absorb short throttling and dropped connections; what is left surfaces by the name the
state machine retries with backoff: `BookingStoreUnavailable` from DynamoDB,
`NotificationUnavailable` from SNS (decision 0014). Both are raised from botocore's own events, so
every call through these clients is covered, the repositories' and Powertools' idempotency layer's
alike, without a try at each call.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore import exceptions as botocore_errors
from botocore.config import Config
from botocore.exceptions import ClientError

from booking.errors import BookingError, BookingStoreUnavailable, NotificationUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)

THROTTLED_OR_DOWN = frozenset(
    {
        # DynamoDB
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        # SNS (the Query protocol's codes)
        "Throttling",
        "ThrottledException",
        "KMSThrottlingException",
        "InternalError",
        "InternalFailure",
    }
)
"""Error codes a later attempt can succeed after: the service is throttling or failing, not refusing."""

_UNREACHABLE = (
    botocore_errors.ConnectionError,
    botocore_errors.ConnectionClosedError,
    botocore_errors.ReadTimeoutError,
    botocore_errors.HTTPClientError,
)
"""botocore's exceptions for a request that got no answer (EndpointConnectionError and the connect
and read timeouts are ConnectionError or ReadTimeoutError subclasses)."""


def _raising(unavailable: type[BookingError]) -> Any:
    """botocore event handlers that turn what is left of throttling and unreachability, after the SDK's
    retries, into `unavailable`: `after-call` sees an error answer, `after-call-error` an exception."""

    def on_answer(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        code = (parsed or {}).get("Error", {}).get("Code", "")
        if code in THROTTLED_OR_DOWN:
            raise unavailable(f"{model.service_model.service_name} {model.name}: {code}")

    def on_exception(exception: Exception, **kwargs: Any) -> None:
        if isinstance(exception, _UNREACHABLE):
            raise unavailable(f"{kwargs.get('event_name', 'AWS call')}: {type(exception).__name__}") from None

    return on_answer, on_exception


def _client(service: str, unavailable: type[BookingError]) -> Any:
    client = boto3.client(service, config=_CONFIG)
    on_answer, on_exception = _raising(unavailable)
    events = client.meta.events
    events.register(f"after-call.{client.meta.service_model.service_id.hyphenize()}", on_answer)
    events.register(f"after-call-error.{client.meta.service_model.service_id.hyphenize()}", on_exception)
    return client


@cache
def dynamodb() -> DynamoDBClient:
    """The DynamoDB client shared by the repositories of one function."""
    client: DynamoDBClient = _client("dynamodb", BookingStoreUnavailable)
    return client


@cache
def sns() -> SNSClient:
    """The SNS client the notifier publishes with."""
    client: SNSClient = _client("sns", NotificationUnavailable)
    return client


def is_throttling(error: Any) -> bool:
    """Tell a throttled or unavailable service from a request that is simply wrong."""
    code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
    return code in THROTTLED_OR_DOWN


def store_error(error: Any) -> Exception:
    """Throttling is worth a retry by the state machine; anything else is a defect to surface."""
    if is_throttling(error):
        return BookingStoreUnavailable(f"DynamoDB: {error.response['Error']['Code']}")
    return error


def rejected_item(error: Any) -> dict[str, Any]:
    """A conditional write refused: the item as it was (with ReturnValuesOnConditionCheckFailure
    ALL_OLD), `{}` when there was none or it was not asked for. Any other error is the store's
    (`store_error`: throttling is retried by the state machine) and is raised."""
    if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
        raise store_error(error) from None
    item: dict[str, Any] = error.response.get("Item") or {}
    return item


@cache
def stepfunctions() -> Any:
    """The Step Functions client the API starts and reads sagas with."""
    return boto3.client("stepfunctions", config=_CONFIG)


@cache
def secretsmanager() -> Any:
    """Read once per cold start: the key that signs page tokens."""
    return boto3.client("secretsmanager", config=_CONFIG)


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as JSON-ready Python: numbers as int (or float), sets as sorted lists."""
    from decimal import Decimal

    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()

    def convert(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, set):
            return sorted(convert(v) for v in value)
        if isinstance(value, list):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    return {key: convert(deserializer.deserialize(value)) for key, value in item.items()}


def read_page(
    call: Callable[..., Any],
    request: dict[str, Any],
    start_key: dict[str, Any] | None,
    convert: Callable[[dict[str, Any]], dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of a Query or Scan: the converted items and the key the next page starts after."""
    if start_key:
        request["ExclusiveStartKey"] = start_key
    try:
        answer = call(**request)
    except ClientError as error:
        raise store_error(error) from None
    return [convert(item) for item in answer.get("Items", [])], answer.get("LastEvaluatedKey")
