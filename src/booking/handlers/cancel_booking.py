"""Cancel Booking: the booking becomes CANCELLED; with no row (never reserved) nothing happens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from booking.bookings import BookingRepository
from booking.clients import dynamodb
from booking.models import BookingIdentity, parse_task_input
from booking.observability import CORRELATION_ID_PATH, count, logger, metrics, tracer
from booking.settings import require

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

bookings = BookingRepository(require("BOOKING_TABLE_NAME"), dynamodb())


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_task_input(event, BookingIdentity)
    try:
        outcome = bookings.cancel(request.booking_id)
    except Exception:
        count("FailedCancellation")
        raise
    count("SuccessfulCancellation")
    logger.info("booking cancelled" if outcome == "cancelled" else "no booking to cancel", outcome=outcome)
    return {"status": outcome}
