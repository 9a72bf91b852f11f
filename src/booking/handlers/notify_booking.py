"""Notify Booking: publish `confirmed` or `cancelled` on the booking topic, once per booking and status,
and push the change (CONFIRMED or CANCELLED) to the booking's live subscribers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from booking import notifications
from booking.clients import dynamodb, sns
from booking.models import Notification, parse_task_input
from booking.observability import CORRELATION_ID_PATH, count, logger, metrics, tracer
from booking.settings import require
from booking.status_push import StatusPusher

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

TOPIC_ARN = require("BOOKING_TOPIC_ARN")
publisher = sns()
status_pusher = StatusPusher(require("GRAPHQL_API_URL"))
STATUSES = {"confirmed": "CONFIRMED", "cancelled": "CANCELLED"}
# The service's own DynamoDB client: left to make its own, the layer opens a new boto3 session,
# which loads every botocore model again (about 45 ms of each cold start).
persistence = DynamoDBPersistenceLayer(table_name=require("IDEMPOTENCY_TABLE_NAME"), boto3_client=dynamodb())
idempotency = IdempotencyConfig(
    event_key_jmespath='join(`"#"`, [bookingId, status])', expires_after_seconds=86400
)


@idempotent_function(data_keyword_argument="request", config=idempotency, persistence_store=persistence)
def publish_once(request: dict[str, Any]) -> dict[str, Any]:
    """Keyed on the raw payload's booking id and status: the same event is published (and pushed) once.

    The push comes after the event: a push that fails is counted and given up, never raised, so it
    cannot make the step retry and publish the event twice."""
    notification = parse_task_input(request, Notification)
    published = notifications.publish(publisher, TOPIC_ARN, notification)
    status_pusher.push(
        notification.booking_id,
        notification.customer,
        STATUSES[notification.status],
        booking_reference=notification.booking_reference,
        reason=notification.reason,
    )
    return published


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    notification = parse_task_input(event, Notification)
    idempotency.register_lambda_context(context)
    try:
        result = publish_once(request=notification.as_payload())
    except Exception:
        count("FailedNotification")
        raise
    count("SuccessfulNotification")
    logger.info("booking event published", status=notification.status)
    return result
