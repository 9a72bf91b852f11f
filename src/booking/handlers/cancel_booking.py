"""Cancel Booking: the booking becomes CANCELLED (and, for a customer's cancellation, first CANCELLING,
pushed to the booking's live subscribers; Notify Booking pushes the CANCELLED).

Two sagas call it. The booking saga's compensation (`compensate`) cancels any booking and finds no
row a no-op. The cancellation saga moves a customer's CONFIRMED booking to CANCELLING (`begin`)
and, once the money and the seat are given back, to CANCELLED with the refund's outcome (`finish`);
both only for the cancellation the API recorded (its key), so a stray or replayed task cannot cancel
a booking nobody asked to cancel.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from booking.bookings import BookingRepository
from booking.clients import dynamodb
from booking.errors import InvalidSagaInput
from booking.models import CancelRequest, parse_task_input
from booking.observability import CORRELATION_ID_PATH, count, logger, metrics, tracer
from booking.settings import require
from booking.status_push import StatusPusher

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

bookings = BookingRepository(require("BOOKING_TABLE_NAME"), dynamodb())
status_pusher = StatusPusher(require("GRAPHQL_API_URL"))

REFUND_OUTCOMES = frozenset({"refunded", "released", "nothing_to_refund", "not_claimed", "not_this_booking"})


def refund_outcome(result: dict[str, Any] | None) -> dict[str, Any]:
    """What the row keeps of Refund Payment's answer. A booking is CANCELLED only once its money is
    back, so anything but an answer of Refund Payment (an error, nothing) is refused."""
    result = result or {}
    status = result.get("status")
    if status not in REFUND_OUTCOMES:
        raise InvalidSagaInput(
            "CancelRequest: refund: must be Refund Payment's answer to finish a cancellation"
        )
    amount = int(result.get("amount") or 0)
    return {"status": status, "amount": amount, "currency": result.get("currency")}


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_task_input(event, CancelRequest)
    if request.action != "compensate" and request.cancellation_key is None:
        raise InvalidSagaInput(f"CancelRequest: cancellationKey: Field required for {request.action}")
    try:
        if request.action == "begin":
            record, changed = bookings.begin_cancellation(request.booking_id, str(request.cancellation_key))
            logger.info("booking cancelling", status=record.status)
            if changed:  # a rerun pushes nothing: the first run did
                status_pusher.push(
                    record.id,
                    record.customer,
                    record.status,
                    occurred_at=record.status_changed_at,
                    sequence=record.status_sequence,
                    deadline=time.monotonic() + context.get_remaining_time_in_millis() / 1000 - 1.5,
                )
            return {"status": record.status}
        if request.action == "finish":
            refund = refund_outcome(request.refund)
            record, _ = bookings.finish_cancellation(
                request.booking_id, str(request.cancellation_key), refund
            )
            outcome = record.status
        else:
            outcome = bookings.cancel(request.booking_id)
    except Exception:
        count("FailedCancellation")
        raise
    if outcome in ("cancelled", "CANCELLED"):
        count("SuccessfulCancellation")
    logger.info("booking cancelled" if outcome != "absent" else "no booking to cancel", outcome=outcome)
    return {"status": outcome}
