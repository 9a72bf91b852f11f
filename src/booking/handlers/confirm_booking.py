"""Confirm Booking: UNCONFIRMED → CONFIRMED with a booking reference no other booking has, and the
charge recorded as captured (Collect Payment ran just before)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from booking.bookings import BookingRepository
from booking.clients import dynamodb
from booking.models import ConfirmRequest, parse_task_input
from booking.observability import CORRELATION_ID_PATH, count, logger, metrics, tracer
from booking.settings import require

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

bookings = BookingRepository(require("BOOKING_TABLE_NAME"), dynamodb())


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_task_input(event, ConfirmRequest)
    booking = bookings.confirm(request.booking_id, request.payment_token)
    count("SuccessfulBooking")
    logger.info("booking confirmed", booking_reference=booking.booking_reference)
    return booking.as_output()
