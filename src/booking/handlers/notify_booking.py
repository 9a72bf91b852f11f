"""Notify Booking: announce `confirmed` or `cancelled` once, and only while it holds.

1. The booking is read first: a state that no longer holds (a cancellation came after it) is not
   announced, so no subscriber ever learns CONFIRMED after CANCELLING (`booking.lifecycle`). The
   event carries the transition's time and sequence number, read from the row.
2. The event is published on the booking topic once per booking and status (Powertools idempotency).
3. The change is pushed to the booking's live subscribers once per booking and status (an idempotent
   section of its own, after the publish), and never past one overall deadline below the function's
   timeout: a slow AppSync costs the push, never the step. A retry that meets the other invocation's
   record still in progress fails with `IdempotencyAlreadyInProgressError`, which the state machine
   retries with backoff until that record completes or expires; it is not a failure to page about.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from booking import lifecycle, notifications
from booking.bookings import BookingRepository
from booking.clients import dynamodb, sns
from booking.models import Notification, parse_task_input
from booking.observability import CORRELATION_ID_PATH, count, logger, metrics, tracer
from booking.settings import require
from booking.status_push import StatusPusher

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

TOPIC_ARN = require("BOOKING_TOPIC_ARN")
publisher = sns()
bookings = BookingRepository(require("BOOKING_TABLE_NAME"), dynamodb())
status_pusher = StatusPusher(require("GRAPHQL_API_URL"))
STATES = {"confirmed": lifecycle.CONFIRMED, "cancelled": lifecycle.CANCELLED}
DEADLINE_MARGIN_SECONDS = 1.5
"""Time kept back from the function's timeout: the push stops this long before it, so the function
answers (and its idempotency records complete) instead of being cut off mid-push."""

# The service's own DynamoDB client: left to make its own, the layer opens a new boto3 session,
# which loads every botocore model again (about 45 ms of each cold start). One layer per idempotent
# function: a layer keeps the configuration it was first given.
_KEY = 'join(`"#"`, [bookingId, status])'
publishing = IdempotencyConfig(event_key_jmespath=_KEY, expires_after_seconds=86400)
pushing = IdempotencyConfig(event_key_jmespath=_KEY, expires_after_seconds=86400)
published_events = DynamoDBPersistenceLayer(
    table_name=require("IDEMPOTENCY_TABLE_NAME"), boto3_client=dynamodb()
)
pushed_changes = DynamoDBPersistenceLayer(
    table_name=require("IDEMPOTENCY_TABLE_NAME"), boto3_client=dynamodb()
)


@idempotent_function(data_keyword_argument="request", config=publishing, persistence_store=published_events)
def publish_once(request: dict[str, Any]) -> dict[str, Any]:
    """The topic event, once per booking and status."""
    notification = parse_task_input(_notification_fields(request), Notification)
    return notifications.publish(
        publisher, TOPIC_ARN, notification, str(request["occurredAt"]), int(request["sequence"])
    )


@idempotent_function(data_keyword_argument="request", config=pushing, persistence_store=pushed_changes)
def push_once(request: dict[str, Any]) -> dict[str, Any]:
    """The live push, once per booking and status, by the deadline; a push that failed is counted by
    the pusher and not tried again (subscribers read the truth with getBooking)."""
    notification = parse_task_input(_notification_fields(request), Notification)
    pushed = status_pusher.push(
        notification.booking_id,
        notification.customer,
        STATES[notification.status],
        booking_reference=notification.booking_reference,
        reason=notification.reason,
        occurred_at=str(request["occurredAt"]),
        sequence=int(request["sequence"]),
        deadline=float(request["deadline"]),
    )
    return {"pushed": pushed}


def _notification_fields(request: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in request.items() if key not in ("occurredAt", "sequence", "deadline")}


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_SECONDS
    notification = parse_task_input(event, Notification)
    publishing.register_lambda_context(context)
    pushing.register_lambda_context(context)
    announced = STATES[notification.status]
    try:
        booking = bookings.get(notification.booking_id)
        if booking is not None and booking.status != announced:
            # Announced only while it holds: the booking has moved on, and its own move is announced.
            count("StaleNotification")
            logger.info("state no longer holds: not announced", announced=announced, current=booking.status)
            return {"status": "not_announced", "current": booking.status}
        # A booking the saga never wrote (refused before Reserve Booking) has one state: cancelled.
        occurred_at = booking.status_changed_at if booking is not None else None
        request = {
            **notification.as_payload(),
            "occurredAt": occurred_at or lifecycle.now(),
            "sequence": booking.status_sequence if booking is not None else 1,
        }
        result = publish_once(request=request)
        push_once(request={**request, "deadline": deadline})
    except IdempotencyAlreadyInProgressError:
        logger.info("another invocation is announcing this state: the state machine asks again later")
        raise
    except Exception:
        count("FailedNotification")
        raise
    count("SuccessfulNotification")
    logger.info("booking event published", status=notification.status)
    return result
