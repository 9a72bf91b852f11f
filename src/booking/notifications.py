"""Booking events on the SNS topic.

An event carries what subscribers need to act without calling back: the booking id (their
deduplication key), the status that really happened, when it happened (`occurredAt`, the time of the
transition, not of the publish) and the booking's sequence number for it (`sequence`, see
`booking.lifecycle`), so a subscriber can order a booking's events and drop a stale or repeated one,
the amount and the reference. It never carries the payment token. Publishing is wrapped in
Powertools idempotency keyed by booking id and status, so a retried Notify Booking step does not
publish twice; should the function die between the publish and the idempotency record, the retry
publishes again, which is why subscribers get the booking id and sequence to deduplicate on.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

    from booking.models import Notification

STATUS_ATTRIBUTE = "Booking.Status"


def build_event(notification: Notification, occurred_at: str, sequence: int) -> dict[str, Any]:
    """The message body subscribers receive."""
    event: dict[str, Any] = {
        "bookingId": notification.booking_id,
        "customer": notification.customer,
        "outboundFlightId": notification.outbound_flight_id,
        "status": notification.status,
        "bookingReference": notification.booking_reference,
        "amount": notification.amount,
        "currency": notification.currency,
        "occurredAt": occurred_at,
        "sequence": sequence,
    }
    if notification.status == "cancelled":
        refund = notification.refund or {}
        refunded = refund.get("status") == "refunded"
        event["reason"] = notification.reason
        event["amount"] = int(refund.get("amount", 0)) if refunded else 0
        event["currency"] = refund.get("currency") if refunded else None
        event["refund"] = refund.get("status", "unknown") if "Error" not in refund else "failed"
    return event


def publish(
    client: SNSClient, topic_arn: str, notification: Notification, occurred_at: str, sequence: int
) -> dict[str, Any]:
    """Publish one event with the `Booking.Status` attribute subscribers filter on."""
    event = build_event(notification, occurred_at, sequence)
    response = client.publish(
        TopicArn=topic_arn,
        Message=json.dumps(event),
        MessageAttributes={STATUS_ATTRIBUTE: {"DataType": "String", "StringValue": notification.status}},
    )
    return {"status": "published", "messageId": response["MessageId"], "event": notification.status}
